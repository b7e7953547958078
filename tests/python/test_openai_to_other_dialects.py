"""The official `openai` Python SDK talking to Switchyard's OpenAI front door, routed
to upstreams that speak Anthropic Messages, Bedrock Converse and Gemini.

Every test runs once per dialect (the `dialect` fixture in conftest.py). The mocks
(tests/support/dialect_mocks.rs) answer in their provider's exact wire format:
Anthropic SSE with `event:` lines, Bedrock eventstream frames, Gemini SSE chunks.
"""

import json

import anthropic
import httpx
import openai
import pytest

# Mirrors dialect_mocks::USAGE, TOOL_ARGUMENTS, PREAMBLE_MARKER, PREAMBLE and FAIL_MID_STREAM_MARKER.
PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
TOOL_ARGUMENTS = {"city": "Paris"}
PREAMBLE_MARKER = "[mock:think-aloud]"
PREAMBLE = "Let me look that up."
FAIL_MID_STREAM_MARKER = "[mock:fail-mid-stream]"

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": WEATHER_SCHEMA,
    },
}


def accumulate_tool_calls(chunks) -> dict[int, dict]:
    """Joins `delta.tool_calls` fragments by index, as an application would."""
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for fragment in choice.delta.tool_calls or []:
                call = calls.setdefault(fragment.index, {"id": None, "name": "", "arguments": ""})
                if fragment.id:
                    call["id"] = fragment.id
                if fragment.function and fragment.function.name:
                    call["name"] += fragment.function.name
                if fragment.function and fragment.function.arguments:
                    call["arguments"] += fragment.function.arguments
    return calls


def finish_reasons(chunks) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


def test_a_non_streamed_answer_returns_the_upstream_text_and_usage(client, dialect):
    completion = client.chat.completions.create(
        model=dialect.route,
        messages=[{"role": "user", "content": "hello gateway"}],
    )

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "echo: hello gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert completion.usage.total_tokens == PROMPT_TOKENS + COMPLETION_TOKENS


def test_a_stream_with_include_usage_yields_the_text_then_a_usage_chunk_with_no_choices(client, dialect):
    stream = client.chat.completions.create(
        model=dialect.route,
        messages=[{"role": "user", "content": "stream this please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert chunks, "the stream yielded no chunks"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "echo: stream this please"
    assert finish_reasons(chunks) == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert len({chunk.id for chunk in chunks}) == 1, "every chunk of one stream has the same id"


def test_a_streamed_tool_call_accumulates_into_one_call_with_json_arguments(client, dialect):
    stream = client.chat.completions.create(
        model=dialect.route,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chunks = list(stream)

    calls = accumulate_tool_calls(chunks)
    assert list(calls) == [0], f"one call, at index 0: {calls}"
    assert calls[0]["id"]
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == TOOL_ARGUMENTS
    assert finish_reasons(chunks) == ["tool_calls"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ""

    body = dialect.last_body()
    [(name, schema)] = dialect.tools_sent(body)
    assert name == "get_weather"
    assert set(schema["properties"]) == {"city"}
    assert schema["required"] == ["city"]


def test_text_before_a_tool_call_streams_as_content_then_the_call(client, dialect):
    with client.chat.completions.stream(
        model=dialect.route,
        messages=[{"role": "user", "content": f"{PREAMBLE_MARKER} What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        for _event in stream:
            pass
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == PREAMBLE
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == TOOL_ARGUMENTS


def test_a_tool_result_round_trip_reaches_the_upstream_in_its_dialect(client, dialect):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    asked = client.chat.completions.create(model=dialect.route, messages=messages, tools=[WEATHER_TOOL])

    assert asked.choices[0].finish_reason == "tool_calls"
    [call] = asked.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == TOOL_ARGUMENTS
    assert call.id

    messages.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        }
    )
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"})
    answer = client.chat.completions.create(model=dialect.route, messages=messages, tools=[WEATHER_TOOL])

    # The mock checks that the result answers the call just before it, in its own terms.
    key = dialect.tool_result_key(call.id, "get_weather")
    assert answer.choices[0].message.content == f"tool {key} said: 18 degrees and sunny"
    assert answer.choices[0].finish_reason == "stop"


def test_an_upstream_rate_limit_in_the_dialects_shape_raises_rate_limit_error(client, dialect):
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(
            model=dialect.rate_limited_route,
            messages=[{"role": "user", "content": "[mock:status=429] too fast"}],
        )

    assert raised.value.status_code == 429
    if dialect.name != "bedrock":
        # Anthropic sends `retry-after`, Gemini a RetryInfo detail; Bedrock says nothing.
        assert raised.value.response.headers.get("retry-after") == "1"


def test_an_upstream_error_after_the_first_token_raises_an_api_error_instead_of_ending_quietly(client, dialect):
    stream = client.chat.completions.create(
        model=dialect.faulty_route,
        messages=[{"role": "user", "content": f"{FAIL_MID_STREAM_MARKER} tell me"}],
        stream=True,
    )
    received = []

    # The SDK raises APIError for a chunk that carries an `error` object.
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)

    text = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    assert text == "echo: ", "the text before the failure arrives, and nothing after it"
    assert finish_reasons(received) == [], "a broken answer must not look finished"


# The mocks themselves: evidence that what the tests above accept is what the real
# services would have accepted.


def test_the_anthropic_mock_is_understood_by_the_official_anthropic_sdk(dialects):
    mock = anthropic.Anthropic(base_url=dialects["anthropic"].upstream.url, api_key="sk-ant-test", max_retries=0)
    tool = {"name": "get_weather", "description": "Current weather for a city.", "input_schema": WEATHER_SCHEMA}

    with mock.messages.stream(
        model="claude-mock",
        max_tokens=64,
        messages=[{"role": "user", "content": f"{PREAMBLE_MARKER} weather?"}],
        tools=[tool],
    ) as stream:
        final = stream.get_final_message()
    plain = mock.messages.create(model="claude-mock", max_tokens=64, messages=[{"role": "user", "content": "hi"}])

    assert [block.type for block in final.content] == ["text", "tool_use"]
    assert final.content[0].text == PREAMBLE
    assert final.content[1].input == TOOL_ARGUMENTS
    assert (final.stop_reason, final.usage.input_tokens, final.usage.output_tokens) == (
        "tool_use",
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )
    assert plain.content[0].text == "echo: hi"


def _post_to_mock(dialect, body: dict):
    """Posts a non-streaming request straight to a mock, with plausible credentials."""
    if dialect.name == "anthropic":
        path, headers = "/v1/messages", {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    elif dialect.name == "bedrock":
        path = "/model/amazon.nova-micro-v1%3A0/converse"
        headers = {
            "authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/bedrock/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=0000",
            "x-amz-date": "20260101T000000Z",
        }
    else:
        path, headers = "/v1beta/models/gemini-3-flash-preview:generateContent", {"x-goog-api-key": "AIza-test"}
    return httpx.post(dialect.upstream.url + path, json=body, headers=headers, timeout=10.0)


ORPHAN_TOOL_RESULTS = {
    "anthropic": {
        "model": "claude-mock",
        "max_tokens": 64,
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "I will not call anything."},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "18"}]},
        ],
    },
    "bedrock": {
        "messages": [
            {"role": "user", "content": [{"text": "weather?"}]},
            {"role": "assistant", "content": [{"text": "I will not call anything."}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_x", "content": [{"text": "18"}]}}]},
        ],
        "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": WEATHER_SCHEMA}}}]},
    },
    "gemini": {
        "contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"text": "I will not call anything."}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "18"}}}]},
        ],
    },
}


def test_each_mock_refuses_a_tool_result_without_its_call_in_its_providers_error_shape(dialect):
    response = _post_to_mock(dialect, ORPHAN_TOOL_RESULTS[dialect.name])

    assert response.status_code == 400
    body = response.json()
    if dialect.name == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    elif dialect.name == "bedrock":
        assert response.headers["x-amzn-errortype"].startswith("ValidationException:")
        assert "toolResult" in body["message"]
    else:
        assert body["error"]["status"] == "INVALID_ARGUMENT"
        assert "function response" in body["error"]["message"]
