"""The official `anthropic` Python SDK talking to Switchyard's Anthropic front door,
routed to an OpenAI-dialect upstream.

The gateway translates each Messages request into a Chat Completions request for the
mock described in conftest.py, and its answer back into Anthropic's shape. Each test
is one sentence about what a real application would see; token counts are the mock's.

The `anthropic_client` fixture uses the SDK as shipped (it sends its own default
`anthropic-version`, 2026-10-21); the first test checks that default is accepted.
"""

import json

import anthropic
import pytest

# Mirrors openai_wire::HANDLER_USAGE and HANDLER_TOOL_* in tests/support/openai_wire.rs.
INPUT_TOKENS = 11
OUTPUT_TOKENS = 7
TOOL_INPUT = {"city": "Paris"}

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": WEATHER_SCHEMA,
}


def test_the_sdks_default_api_version_is_accepted(anthropic_client_as_shipped, route):
    message = anthropic_client_as_shipped.messages.create(
        model=route,
        max_tokens=256,
        messages=[{"role": "user", "content": "hello gateway"}],
    )
    count = anthropic_client_as_shipped.messages.count_tokens(
        model=route, messages=[{"role": "user", "content": "hello gateway"}]
    )

    assert message.content[0].text == "echo: hello gateway"
    assert count.input_tokens > 0


def test_a_plain_message_returns_the_upstream_text_usage_and_end_turn(anthropic_client, route):
    message = anthropic_client.messages.create(
        model=route,
        max_tokens=256,
        messages=[{"role": "user", "content": "hello gateway"}],
    )

    assert message.type == "message"
    assert message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "echo: hello gateway"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == INPUT_TOKENS
    assert message.usage.output_tokens == OUTPUT_TOKENS
    assert message.id


def test_a_streamed_text_answer_yields_text_deltas_and_the_final_usage(anthropic_client, route):
    with anthropic_client.messages.stream(
        model=route,
        max_tokens=256,
        messages=[{"role": "user", "content": "stream this please"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "echo: stream this please"
    assert final.content[0].text == "echo: stream this please"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (INPUT_TOKENS, OUTPUT_TOKENS)


def test_a_streamed_tool_call_becomes_a_tool_use_block_and_the_upstream_got_the_tool_in_openai_format(
    anthropic_client, route, upstream
):
    with anthropic_client.messages.stream(
        model=route,
        max_tokens=256,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        for _event in stream:
            pass
        final = stream.get_final_message()

    assert final.stop_reason == "tool_use"
    tool_uses = [block for block in final.content if block.type == "tool_use"]
    assert len(tool_uses) == 1
    assert tool_uses[0].name == "get_weather"
    assert tool_uses[0].input == TOOL_INPUT
    assert tool_uses[0].id

    sent = upstream.chat_requests()[-1]["body"]
    assert sent["stream"] is True
    assert len(sent["tools"]) == 1
    tool = sent["tools"][0]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["description"] == "Current weather for a city."
    assert tool["function"]["parameters"] == WEATHER_SCHEMA
    assert 256 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))


def test_a_tool_result_round_trip_reaches_the_upstream_as_an_openai_tool_message(anthropic_client, route, upstream):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    asked = anthropic_client.messages.create(model=route, max_tokens=256, messages=messages, tools=[WEATHER_TOOL])
    assert asked.stop_reason == "tool_use"
    call = next(block for block in asked.content if block.type == "tool_use")

    messages.append(
        {"role": "assistant", "content": [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}]}
    )
    messages.append(
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 degrees and sunny"}]}
    )
    answer = anthropic_client.messages.create(model=route, max_tokens=256, messages=messages, tools=[WEATHER_TOOL])

    sent = upstream.chat_requests()[-1]["body"]["messages"]
    assistant = [m for m in sent if m["role"] == "assistant"]
    assert len(assistant) == 1 and len(assistant[0]["tool_calls"]) == 1
    sent_call = assistant[0]["tool_calls"][0]
    assert sent_call["function"]["name"] == "get_weather"
    assert json.loads(sent_call["function"]["arguments"]) == TOOL_INPUT
    tool_messages = [m for m in sent if m["role"] == "tool"]
    assert len(tool_messages) == 1
    assert tool_messages[0]["tool_call_id"] == sent_call["id"]
    assert "18 degrees and sunny" in json.dumps(tool_messages[0]["content"])

    assert answer.stop_reason == "end_turn"
    assert answer.content[0].text == f"tool {sent_call['id']} said: 18 degrees and sunny"


def test_count_tokens_returns_a_positive_estimate_that_grows_with_tools_without_calling_the_upstream(
    anthropic_client, route, upstream
):
    before = len(upstream.requests())
    messages = [{"role": "user", "content": "How many tokens is this question?"}]

    plain = anthropic_client.messages.count_tokens(model=route, messages=messages)
    with_tools = anthropic_client.messages.count_tokens(model=route, messages=messages, tools=[WEATHER_TOOL])

    assert plain.input_tokens > 0
    assert with_tools.input_tokens > plain.input_tokens
    assert len(upstream.requests()) == before


def test_an_unknown_route_raises_not_found_in_anthropic_error_shape(anthropic_client, route):
    with pytest.raises(anthropic.NotFoundError) as raised:
        anthropic_client.messages.create(
            model="no-such-route",
            max_tokens=256,
            messages=[{"role": "user", "content": "hello"}],
        )

    error = raised.value
    assert error.status_code == 404
    assert error.type == "not_found_error"
    assert error.body["type"] == "error"
    assert "no-such-route" in error.api_message
    assert route in error.api_message, f"the error should list the known routes: {error.api_message}"


def test_a_wrong_client_key_raises_authentication_error(gateway_url, route):
    stranger = anthropic.Anthropic(
        base_url=gateway_url,
        api_key="sk-not-a-key-of-this-gateway",
        max_retries=0,
        default_headers={"anthropic-version": "2023-06-01"},
    )

    with pytest.raises(anthropic.AuthenticationError) as raised:
        stranger.messages.create(model=route, max_tokens=256, messages=[{"role": "user", "content": "hello"}])

    assert raised.value.type == "authentication_error"


def test_a_request_without_max_tokens_raises_bad_request_naming_the_field_and_never_reaches_the_upstream(
    anthropic_client, route, upstream
):
    before = len(upstream.requests())

    with pytest.raises(anthropic.BadRequestError) as raised:
        # The typed method will not send a request without max_tokens; the raw post will.
        anthropic_client.post(
            "/v1/messages",
            body={"model": route, "messages": [{"role": "user", "content": "hello"}]},
            cast_to=object,
        )

    assert raised.value.type == "invalid_request_error"
    assert "max_tokens" in raised.value.api_message
    assert len(upstream.requests()) == before


def test_an_upstream_429_raises_rate_limit_error_with_a_retry_hint(anthropic_client, error_routes):
    with pytest.raises(anthropic.RateLimitError) as raised:
        anthropic_client.messages.create(
            model=error_routes["rate_limited"],
            max_tokens=256,
            messages=[{"role": "user", "content": "[mock:status=429] too fast"}],
        )

    assert raised.value.status_code == 429
    assert raised.value.type == "rate_limit_error"
    assert raised.value.response.headers.get("retry-after"), "a 429 should say when to retry"


def test_an_upstream_429_before_a_stream_starts_raises_rate_limit_error_when_the_stream_opens(
    anthropic_client, error_routes
):
    with pytest.raises(anthropic.RateLimitError) as raised:
        with anthropic_client.messages.stream(
            model=error_routes["rate_limited_stream"],
            max_tokens=256,
            messages=[{"role": "user", "content": "[mock:status=429] too fast"}],
        ) as stream:
            for _event in stream:
                pass

    assert raised.value.type == "rate_limit_error"


def test_an_upstream_500_on_the_only_target_raises_internal_server_error_with_status_502(
    anthropic_client, error_routes
):
    # The SDK maps any status >= 500 it has no dedicated class for to InternalServerError.
    with pytest.raises(anthropic.InternalServerError) as raised:
        anthropic_client.messages.create(
            model=error_routes["failing"],
            max_tokens=256,
            messages=[{"role": "user", "content": "[mock:status=500] break"}],
        )

    assert raised.value.status_code == 502
    assert raised.value.type == "api_error"
    assert error_routes["failing"] in raised.value.api_message
