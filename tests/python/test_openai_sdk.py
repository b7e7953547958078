"""The official `openai` Python SDK talking to Switchyard's OpenAI front door.

Each test is one sentence about what a real application would see. The upstream is
the mock described in conftest.py; its token counts are fixed.
"""

import json

import openai
import pytest

# Mirrors openai_wire::HANDLER_USAGE and HANDLER_TOOL_* in tests/support/openai_wire.rs.
PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
TOOL_ARGUMENTS = {"city": "Paris"}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_a_plain_completion_returns_the_upstream_text_and_usage(client, route):
    completion = client.chat.completions.create(
        model=route,
        messages=[{"role": "user", "content": "hello gateway"}],
    )

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "echo: hello gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == PROMPT_TOKENS
    assert completion.usage.completion_tokens == COMPLETION_TOKENS
    assert completion.usage.total_tokens == PROMPT_TOKENS + COMPLETION_TOKENS


def test_the_raw_response_names_the_ledger_entry_and_the_target_that_answered(client, route):
    raw = client.chat.completions.with_raw_response.create(
        model=route,
        messages=[{"role": "user", "content": "hello gateway"}],
    )

    assert raw.parse().choices[0].message.content == "echo: hello gateway"
    request_id = raw.headers["x-switchyard-request-id"]
    # A uuid v7, hyphenated: what the ledger's rows are keyed by.
    assert len(request_id) == 36 and request_id[14] == "7", request_id
    assert raw.headers["x-switchyard-attempts"] == "1"
    assert raw.headers["x-switchyard-route"] == route


def test_a_stream_with_include_usage_yields_content_deltas_then_a_usage_chunk_with_no_choices(client, route):
    stream = client.chat.completions.create(
        model=route,
        messages=[{"role": "user", "content": "stream this please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert chunks, "the stream yielded no chunks"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "echo: stream this please"
    finish_reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish_reasons == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert len({chunk.id for chunk in chunks}) == 1, "every chunk of one stream has the same id"


def test_a_streamed_tool_call_round_trip_delivers_the_tool_result_to_the_upstream(client, route, upstream):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]

    # The SDK's stream helper accumulates the tool-call deltas into a final message.
    with client.chat.completions.stream(model=route, messages=messages, tools=[WEATHER_TOOL]) as stream:
        for _event in stream:
            pass
        asked = stream.get_final_completion()

    assert asked.choices[0].finish_reason == "tool_calls"
    tool_calls = asked.choices[0].message.tool_calls
    assert tool_calls is not None and len(tool_calls) == 1
    call = tool_calls[0]
    assert call.type == "function"
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
    answer = client.chat.completions.create(model=route, messages=messages, tools=[WEATHER_TOOL])

    assert answer.choices[0].message.content == f"tool {call.id} said: 18 degrees and sunny"
    sent = upstream.chat_requests()[-1]["body"]["messages"]
    tool_messages = [m for m in sent if m["role"] == "tool"]
    assert len(tool_messages) == 1
    assert tool_messages[0]["tool_call_id"] == call.id
    assert "18 degrees and sunny" in json.dumps(tool_messages[0]["content"])
    assistant = [m for m in sent if m["role"] == "assistant"]
    assert assistant[-1]["tool_calls"][0]["id"] == call.id


def test_an_unknown_route_raises_not_found_listing_the_routes(client, route):
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(
            model="no-such-route",
            messages=[{"role": "user", "content": "hello"}],
        )

    message = str(raised.value)
    assert "no-such-route" in message
    assert route in message, f"the error should list the known routes: {message}"


def test_a_request_without_messages_raises_bad_request_naming_the_field_and_never_reaches_the_upstream(
    client, route, upstream
):
    before = len(upstream.chat_requests())

    with pytest.raises(openai.BadRequestError) as raised:
        # The typed method will not send a request without messages; the raw post will.
        client.post("/chat/completions", body={"model": route}, cast_to=object)

    assert "messages" in str(raised.value)
    assert len(upstream.chat_requests()) == before
