//! The upstream side: one fixture module per upstream dialect that answers a scenario in
//! that provider's exact wire format (complete and streamed, with its own framing:
//! OpenAI `data:` chunks, Anthropic named events, Bedrock eventstream frames, Gemini
//! `alt=sse` chunks), its error bodies, and what it must have received for each
//! scenario: the translated request, checked field by field.

use bytes::Bytes;
use serde_json::{json, Value};
use switchyard::providers::bedrock::eventstream::{encode_event, encode_exception};

use super::scenarios::*;
use crate::support::{MockUpstream, RecordedRequest, Reply};

/// The target model of each upstream.
pub fn model(up: Up) -> &'static str {
    match up {
        Up::OpenAi => "gpt-4.1-mini",
        Up::Anthropic => "claude-sonnet-4-5",
        Up::Bedrock => "anthropic.claude-3-5-haiku-20241022-v1:0",
        Up::Gemini => "gemini-2.5-flash",
    }
}

/// The `[providers.NAME]` block of an upstream served by `mock`.
pub fn provider_block(name: &str, up: Up, mock: &MockUpstream) -> String {
    let base = mock.base_url();
    let settings = match up {
        Up::OpenAi => format!("kind = \"openai\"\nbase_url = \"{base}/v1\"\napi_key = \"sk-matrix\""),
        Up::Anthropic => format!("kind = \"anthropic\"\nbase_url = \"{base}\"\napi_key = \"sk-ant-matrix\""),
        Up::Bedrock => format!(
            "kind = \"bedrock\"\nregion = \"us-east-1\"\nendpoint = \"{base}\"\naccess_key_id = \"AKIDMATRIX\"\nsecret_access_key = \"matrix/secret\""
        ),
        Up::Gemini => format!("kind = \"gemini\"\nbase_url = \"{base}\"\napi_key = \"AIza-matrix\""),
    };
    format!("[providers.{name}]\n{settings}\n")
}

/// A gateway config with route `m` over the given `(provider name, upstream, mock)`
/// targets in order, no retries.
pub fn config(targets: &[(&str, Up, &MockUpstream)]) -> String {
    let mut text = String::from("[ledger]\nurl = \"{LEDGER}\"\n\n");
    for (name, up, mock) in targets {
        text.push_str(&provider_block(name, *up, mock));
        text.push('\n');
    }
    let list: Vec<String> =
        targets.iter().map(|(name, up, _)| format!("{{ provider = \"{name}\", model = \"{}\" }}", model(*up))).collect();
    text.push_str(&format!("[routes.m]\nretries = 0\nrequire_independent_fallback = \"off\"\ntargets = [{}]\n", list.join(", ")));
    text
}

/// The id `up` gives the `n`th tool call (from 0) of an answer. Gemini sends none;
/// the gateway makes them up from the response id.
pub fn call_id(up: Up, n: usize) -> String {
    match up {
        Up::OpenAi => format!("call_matrix{n}"),
        Up::Anthropic => format!("toolu_01Matrix{n}"),
        Up::Bedrock => format!("tooluse_matrix{n}"),
        Up::Gemini => format!("call_{}_{n}", gemini::RESPONSE_ID),
    }
}

/// `up`'s answer to `scenario`.
pub fn answer(up: Up, scenario: Scenario, stream: bool) -> Reply {
    let answer = scenario.answer(up);
    let usage = scenario.usage(up);
    match (up, stream) {
        (Up::OpenAi, false) => openai::complete(&answer, usage),
        (Up::OpenAi, true) => openai::stream(&answer, usage),
        (Up::Anthropic, false) => anthropic::complete(&answer, usage),
        (Up::Anthropic, true) => anthropic::stream(&answer, usage),
        (Up::Bedrock, false) => bedrock::complete(&answer, usage),
        (Up::Bedrock, true) => bedrock::stream(&answer, usage),
        (Up::Gemini, false) => gemini::complete(&answer, usage),
        (Up::Gemini, true) => gemini::stream(&answer, usage),
    }
}

/// Splits text in two (on a character boundary), as streams deliver it.
fn halves(text: &str) -> Vec<String> {
    if text.chars().count() < 2 {
        return vec![text.to_owned()];
    }
    let middle = text.char_indices().nth(text.chars().count() / 2).map(|(i, _)| i).unwrap_or(0);
    vec![text[..middle].to_owned(), text[middle..].to_owned()]
}

/// A response written byte for byte: status line, headers, then `chunks` as a chunked
/// body (each one HTTP chunk, as a streaming server flushes them).
pub fn chunked(status: u16, headers: &[(&str, &str)], chunks: &[Bytes]) -> Reply {
    let mut out = format!("HTTP/1.1 {status} {}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n", reason(status)).into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    for chunk in chunks {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    Reply::RawBytes(out)
}

/// A complete response with exactly `body` as its bytes.
pub fn exact(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut out = format!("HTTP/1.1 {status} {}\r\ncontent-length: {}\r\nconnection: close\r\n", reason(status), body.len()).into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Reply::RawBytes(out)
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Unknown")
}

/// How an upstream says each kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Rate limited, with a 7-second retry hint where the dialect has one.
    RateLimited,
    /// Overloaded for everyone (Anthropic 529, Gemini 503 UNAVAILABLE, Bedrock
    /// ServiceUnavailableException, OpenAI 503).
    Overloaded,
    /// Bedrock's other overload: the model is not ready (a 429 that is no rate limit).
    ModelNotReady,
    /// The prompt does not fit the model's context window.
    ContextTooLong,
}

/// `up`'s HTTP error answer for `failure`.
pub fn failure(up: Up, failure: Failure) -> Reply {
    match up {
        Up::OpenAi => openai::failure(failure),
        Up::Anthropic => anthropic::failure(failure),
        Up::Bedrock => bedrock::failure(failure),
        Up::Gemini => gemini::failure(failure),
    }
}

/// A phrase of `up`'s context-too-long message the client's error must repeat.
pub fn context_phrase(up: Up) -> &'static str {
    match up {
        Up::OpenAi => "maximum context length is 128000 tokens",
        Up::Anthropic => "prompt is too long: 215304 tokens > 200000 maximum",
        Up::Bedrock => "Input is too long for requested model",
        Up::Gemini => "exceeds the maximum number of tokens allowed (1048576)",
    }
}

/// A 200 stream that sends the text "Hello, " and then fails with the upstream's
/// own in-stream error.
pub fn fails_mid_stream(up: Up) -> Reply {
    match up {
        Up::OpenAi => openai::fails_mid_stream(),
        Up::Anthropic => anthropic::fails_mid_stream(),
        Up::Bedrock => bedrock::fails_mid_stream(),
        Up::Gemini => gemini::fails_mid_stream(),
    }
}

/// The text [`fails_mid_stream`] sends before failing.
pub const TEXT_BEFORE_FAILURE: &str = "Hello, ";

/// A 200 stream that fails with "overloaded" before its first content.
pub fn overloaded_in_stream(up: Up) -> Reply {
    match up {
        Up::OpenAi => openai::overloaded_in_stream(),
        Up::Anthropic => anthropic::overloaded_in_stream(),
        Up::Bedrock => bedrock::overloaded_in_stream(),
        Up::Gemini => gemini::overloaded_in_stream(),
    }
}

pub mod openai {
    use super::*;

    const ID: &str = "chatcmpl-Matrix0001";
    const CREATED: i64 = 1_760_000_000;
    const MODEL_VERSION: &str = "gpt-4.1-mini-2025-04-14";

    fn finish_reason(stop: Stop) -> &'static str {
        match stop {
            Stop::EndTurn | Stop::StopSequence => "stop",
            Stop::MaxTokens => "length",
            Stop::ToolUse => "tool_calls",
        }
    }

    /// OpenAI counts cached tokens inside `prompt_tokens` and has no cache-write figure.
    pub fn usage(usage: Usage) -> Value {
        assert_eq!(usage.cache_write, 0, "OpenAI cannot report cache writes");
        let prompt = usage.input + usage.cache_read;
        json!({
            "prompt_tokens": prompt,
            "completion_tokens": usage.output,
            "total_tokens": prompt + usage.output,
            "prompt_tokens_details": {"cached_tokens": usage.cache_read, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        })
    }

    pub fn complete(answer: &Answer, usage_: Usage) -> Reply {
        let tool_calls: Vec<Value> = answer
            .calls
            .iter()
            .enumerate()
            .map(|(n, c)| json!({"id": call_id(Up::OpenAi, n), "type": "function", "function": {"name": c.name, "arguments": c.args.to_string()}}))
            .collect();
        let mut message = json!({
            "role": "assistant",
            "content": if answer.text.is_empty() { Value::Null } else { json!(answer.text) },
            "refusal": null,
            "annotations": [],
        });
        if !tool_calls.is_empty() {
            message["tool_calls"] = json!(tool_calls);
        }
        Reply::json(
            200,
            json!({
                "id": ID,
                "object": "chat.completion",
                "created": CREATED,
                "model": MODEL_VERSION,
                "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(answer.stop)}],
                "usage": usage(usage_),
                "service_tier": "default",
                "system_fingerprint": "fp_matrix",
            }),
        )
        .with_header("x-request-id", "req_matrix")
    }

    fn chunk(delta: Value, finish: Option<&str>) -> String {
        json!({
            "id": ID, "object": "chat.completion.chunk", "created": CREATED, "model": MODEL_VERSION,
            "service_tier": "default", "system_fingerprint": "fp_matrix",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            "usage": null,
        })
        .to_string()
    }

    /// Chunks as OpenAI streams them with `include_usage`: a role chunk, content
    /// pieces, each tool call opened with its id and name then filled with argument
    /// fragments, a finish chunk, a usage chunk with no choices, `[DONE]`.
    pub fn chunks(answer: &Answer, usage_: Usage) -> Vec<String> {
        let mut chunks = vec![chunk(json!({"role": "assistant", "content": "", "refusal": null}), None)];
        if !answer.text.is_empty() {
            for piece in halves(answer.text) {
                chunks.push(chunk(json!({"content": piece}), None));
            }
        }
        for (n, call) in answer.calls.iter().enumerate() {
            let open = json!({"index": n, "id": call_id(Up::OpenAi, n), "type": "function", "function": {"name": call.name, "arguments": ""}});
            chunks.push(chunk(json!({"tool_calls": [open]}), None));
            for piece in halves(&call.args.to_string()) {
                chunks.push(chunk(json!({"tool_calls": [{"index": n, "function": {"arguments": piece}}]}), None));
            }
        }
        chunks.push(chunk(json!({}), Some(finish_reason(answer.stop))));
        chunks.push(
            json!({
                "id": ID, "object": "chat.completion.chunk", "created": CREATED, "model": MODEL_VERSION,
                "service_tier": "default", "system_fingerprint": "fp_matrix", "choices": [], "usage": usage(usage_),
            })
            .to_string(),
        );
        chunks.push("[DONE]".to_owned());
        chunks
    }

    pub fn stream(answer: &Answer, usage: Usage) -> Reply {
        Reply::sse(chunks(answer, usage))
    }

    fn error(status: u16, message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Reply {
        Reply::json(status, json!({"error": {"message": message, "type": kind, "param": param, "code": code}}))
    }

    pub fn failure(failure: Failure) -> Reply {
        match failure {
            Failure::RateLimited => Reply::rate_limited(7),
            Failure::Overloaded | Failure::ModelNotReady => {
                error(503, "The engine is currently overloaded, please try again later.", "server_error", None, None)
            }
            Failure::ContextTooLong => error(
                400,
                "This model's maximum context length is 128000 tokens. However, your messages resulted in 130004 tokens. Please reduce the length of the messages.",
                "invalid_request_error",
                Some("messages"),
                Some("context_length_exceeded"),
            ),
        }
    }

    pub fn overloaded_in_stream() -> Reply {
        Reply::sse([json!({"error": {"message": "The server is overloaded.", "type": "server_error", "param": null, "code": "server_is_overloaded"}}).to_string()])
    }

    pub fn fails_mid_stream() -> Reply {
        Reply::sse([
            chunk(json!({"role": "assistant", "content": "", "refusal": null}), None),
            chunk(json!({"content": TEXT_BEFORE_FAILURE}), None),
            json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}}).to_string(),
        ])
    }
}

pub mod anthropic {
    use super::*;

    const ID: &str = "msg_01MatrixAnswer";
    const MODEL_VERSION: &str = "claude-sonnet-4-5-20250929";

    fn stop_reason(stop: Stop) -> &'static str {
        match stop {
            Stop::EndTurn => "end_turn",
            Stop::MaxTokens => "max_tokens",
            Stop::StopSequence => "stop_sequence",
            Stop::ToolUse => "tool_use",
        }
    }

    fn stop_sequence(stop: Stop) -> Value {
        if stop == Stop::StopSequence {
            json!(STOP_SEQUENCE)
        } else {
            Value::Null
        }
    }

    /// Anthropic's `input_tokens` excludes cache reads and writes; it has no reasoning figure.
    pub fn usage(usage: Usage) -> Value {
        assert_eq!(usage.reasoning, 0, "Anthropic does not report reasoning tokens separately");
        json!({
            "input_tokens": usage.input,
            "cache_creation_input_tokens": usage.cache_write,
            "cache_read_input_tokens": usage.cache_read,
            "output_tokens": usage.output,
            "service_tier": "standard",
        })
    }

    fn blocks(answer: &Answer) -> Vec<Value> {
        let mut blocks = Vec::new();
        if !answer.text.is_empty() {
            blocks.push(json!({"type": "text", "text": answer.text}));
        }
        for (n, call) in answer.calls.iter().enumerate() {
            blocks.push(json!({"type": "tool_use", "id": call_id(Up::Anthropic, n), "name": call.name, "input": call.args}));
        }
        blocks
    }

    pub fn complete(answer: &Answer, usage_: Usage) -> Reply {
        Reply::json(
            200,
            json!({
                "id": ID, "type": "message", "role": "assistant", "model": MODEL_VERSION,
                "content": blocks(answer),
                "stop_reason": stop_reason(answer.stop), "stop_sequence": stop_sequence(answer.stop),
                "usage": usage(usage_),
            }),
        )
        .with_header("request-id", "req_011Matrix")
    }

    /// One SSE event as Anthropic writes it.
    pub fn event(data: Value) -> String {
        let name = data["type"].as_str().unwrap_or_default().to_owned();
        format!("event: {name}\ndata: {data}\n\n")
    }

    /// The events of a streamed answer, as the Messages API sends them: usage for the
    /// prompt in `message_start`, the output count in `message_delta`, a `ping`.
    pub fn events(answer: &Answer, usage: Usage) -> Vec<String> {
        let mut start_usage = super::anthropic::usage(Usage { output: 1, ..usage });
        start_usage.as_object_mut().map(|u| u.remove("service_tier"));
        let mut events = vec![event(json!({"type": "message_start", "message": {
            "id": ID, "type": "message", "role": "assistant", "model": MODEL_VERSION, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": start_usage,
        }}))];
        let mut index = 0;
        if !answer.text.is_empty() {
            events.push(event(json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
            events.push(event(json!({"type": "ping"})));
            for piece in halves(answer.text) {
                events.push(event(json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}})));
            }
            events.push(event(json!({"type": "content_block_stop", "index": index})));
            index += 1;
        }
        for (n, call) in answer.calls.iter().enumerate() {
            let block = json!({"type": "tool_use", "id": call_id(Up::Anthropic, n), "name": call.name, "input": {}});
            events.push(event(json!({"type": "content_block_start", "index": index, "content_block": block})));
            events.push(event(json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": ""}})));
            for piece in halves(&call.args.to_string()) {
                events.push(event(json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})));
            }
            events.push(event(json!({"type": "content_block_stop", "index": index})));
            index += 1;
        }
        events.push(event(json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(answer.stop), "stop_sequence": stop_sequence(answer.stop)}, "usage": {"output_tokens": usage.output}})));
        events.push(event(json!({"type": "message_stop"})));
        events
    }

    pub fn sse(events: &[String]) -> Reply {
        let chunks: Vec<Bytes> = events.iter().map(|e| Bytes::from(e.clone())).collect();
        chunked(200, &[("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"), ("request-id", "req_011Matrix")], &chunks)
    }

    pub fn stream(answer: &Answer, usage: Usage) -> Reply {
        sse(&events(answer, usage))
    }

    fn error(status: u16, kind: &str, message: &str) -> Reply {
        Reply::json(status, json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011MatrixError"}))
    }

    pub fn failure(failure: Failure) -> Reply {
        match failure {
            Failure::RateLimited => error(
                429,
                "rate_limit_error",
                "This request would exceed the rate limit for your organization of 50 requests per minute. Please try again later.",
            )
            .with_header("retry-after", "7")
            .with_header("anthropic-ratelimit-requests-remaining", "0"),
            Failure::Overloaded | Failure::ModelNotReady => error(529, "overloaded_error", "Overloaded"),
            Failure::ContextTooLong => error(400, "invalid_request_error", "prompt is too long: 215304 tokens > 200000 maximum"),
        }
    }

    pub fn overloaded_in_stream() -> Reply {
        let start = json!({"type": "message_start", "message": {
            "id": ID, "type": "message", "role": "assistant", "model": MODEL_VERSION, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 1},
        }});
        sse(&[event(start), event(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))])
    }

    pub fn fails_mid_stream() -> Reply {
        let mut events = events(&Answer { text: TEXT_BEFORE_FAILURE, calls: Vec::new(), stop: Stop::EndTurn }, Usage::plain(10, 2));
        // message_start, content_block_start, ping, two deltas; then the failure.
        events.truncate(5);
        events.push(event(json!({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}})));
        sse(&events)
    }
}

pub mod bedrock {
    use super::*;

    fn stop_reason(stop: Stop) -> &'static str {
        match stop {
            Stop::EndTurn => "end_turn",
            Stop::MaxTokens => "max_tokens",
            Stop::StopSequence => "stop_sequence",
            Stop::ToolUse => "tool_use",
        }
    }

    /// Converse's `inputTokens` excludes cache reads and writes; the cache fields are
    /// present only when used; there is no reasoning figure.
    pub fn usage(usage: Usage) -> Value {
        assert_eq!(usage.reasoning, 0, "Converse does not report reasoning tokens separately");
        let mut wire = json!({
            "inputTokens": usage.input,
            "outputTokens": usage.output,
            "totalTokens": usage.input + usage.cache_read + usage.cache_write + usage.output,
        });
        if usage.cache_read > 0 {
            wire["cacheReadInputTokens"] = json!(usage.cache_read);
        }
        if usage.cache_write > 0 {
            wire["cacheWriteInputTokens"] = json!(usage.cache_write);
        }
        wire
    }

    pub fn complete(answer: &Answer, usage_: Usage) -> Reply {
        let mut content = Vec::new();
        if !answer.text.is_empty() {
            content.push(json!({"text": answer.text}));
        }
        for (n, call) in answer.calls.iter().enumerate() {
            content.push(json!({"toolUse": {"toolUseId": call_id(Up::Bedrock, n), "name": call.name, "input": call.args}}));
        }
        Reply::json(
            200,
            json!({
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop_reason(answer.stop),
                "usage": usage(usage_),
                "metrics": {"latencyMs": 412},
            }),
        )
        .with_header("x-amzn-requestid", "5c6b1c1e-0000-4000-8000-matrix000001")
    }

    fn frame(event_type: &str, payload: Value) -> Bytes {
        encode_event(event_type, payload.to_string().as_bytes()).expect("frame an event")
    }

    /// ConverseStream frames: `messageStart`, text opened by its first delta, tool
    /// blocks opened by `contentBlockStart`, `messageStop`, then `metadata` with usage.
    pub fn frames(answer: &Answer, usage_: Usage) -> Vec<Bytes> {
        let mut frames = vec![frame("messageStart", json!({"role": "assistant", "p": "abcd"}))];
        let mut index = 0;
        if !answer.text.is_empty() {
            for piece in halves(answer.text) {
                frames.push(frame("contentBlockDelta", json!({"contentBlockIndex": index, "delta": {"text": piece}, "p": "abcdefgh"})));
            }
            frames.push(frame("contentBlockStop", json!({"contentBlockIndex": index, "p": "ab"})));
            index += 1;
        }
        for (n, call) in answer.calls.iter().enumerate() {
            let start = json!({"toolUse": {"toolUseId": call_id(Up::Bedrock, n), "name": call.name}});
            frames.push(frame("contentBlockStart", json!({"contentBlockIndex": index, "start": start, "p": "abc"})));
            for piece in halves(&call.args.to_string()) {
                frames.push(frame("contentBlockDelta", json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}, "p": "a"})));
            }
            frames.push(frame("contentBlockStop", json!({"contentBlockIndex": index, "p": "abcd"})));
            index += 1;
        }
        frames.push(frame("messageStop", json!({"stopReason": stop_reason(answer.stop), "p": "abcdef"})));
        frames.push(frame("metadata", json!({"usage": usage(usage_), "metrics": {"latencyMs": 530}, "p": "abc"})));
        frames
    }

    fn eventstream(frames: &[Bytes]) -> Reply {
        chunked(200, &[("content-type", "application/vnd.amazon.eventstream"), ("x-amzn-requestid", "5c6b1c1e-0000-4000-8000-matrix000002")], frames)
    }

    pub fn stream(answer: &Answer, usage: Usage) -> Reply {
        eventstream(&frames(answer, usage))
    }

    /// An AWS error: the type in `x-amzn-errortype`, the text in `message`.
    fn error(status: u16, error_type: &str, message: &str) -> Reply {
        Reply::json(status, json!({"message": message}))
            .with_header("x-amzn-errortype", &format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"))
            .with_header("x-amzn-requestid", "5c6b1c1e-0000-4000-8000-matrixerror1")
    }

    pub fn failure(failure: Failure) -> Reply {
        match failure {
            Failure::RateLimited => error(429, "ThrottlingException", "Too many requests, please wait before trying again."),
            Failure::Overloaded => error(503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
            Failure::ModelNotReady => {
                error(429, "ModelNotReadyException", "Model is not ready for inference. Wait and try your request again. Refer to the retry guidance.")
            }
            Failure::ContextTooLong => error(400, "ValidationException", "Input is too long for requested model."),
        }
    }

    pub fn overloaded_in_stream() -> Reply {
        let exception = encode_exception("serviceUnavailableException", json!({"message": "Bedrock is unable to process your request."}).to_string().as_bytes())
            .expect("frame an exception");
        eventstream(&[frame("messageStart", json!({"role": "assistant"})), exception])
    }

    pub fn fails_mid_stream() -> Reply {
        let exception = encode_exception(
            "modelStreamErrorException",
            json!({"message": "The model stream failed.", "originalStatusCode": 500}).to_string().as_bytes(),
        )
        .expect("frame an exception");
        eventstream(&[
            frame("messageStart", json!({"role": "assistant"})),
            frame("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": TEXT_BEFORE_FAILURE}})),
            exception,
        ])
    }
}

pub mod gemini {
    use super::*;

    pub const RESPONSE_ID: &str = "respMatrix01";
    const MODEL_VERSION: &str = "gemini-2.5-flash";

    fn finish_reason(stop: Stop) -> &'static str {
        match stop {
            // A function call ends with STOP too.
            Stop::EndTurn | Stop::ToolUse | Stop::StopSequence => "STOP",
            Stop::MaxTokens => "MAX_TOKENS",
        }
    }

    /// Gemini counts cached tokens inside `promptTokenCount`, keeps thoughts out of
    /// `candidatesTokenCount`, and has no cache-write figure.
    pub fn usage(usage: Usage) -> Value {
        assert_eq!(usage.cache_write, 0, "Gemini cannot report cache writes");
        let prompt = usage.input + usage.cache_read;
        let mut wire = json!({
            "promptTokenCount": prompt,
            "candidatesTokenCount": usage.output - usage.reasoning,
            "totalTokenCount": prompt + usage.output,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        });
        if usage.cache_read > 0 {
            wire["cachedContentTokenCount"] = json!(usage.cache_read);
        }
        if usage.reasoning > 0 {
            wire["thoughtsTokenCount"] = json!(usage.reasoning);
        }
        wire
    }

    fn response(parts: Vec<Value>, finish: Option<&str>, usage: Value) -> Value {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if let Some(reason) = finish {
            candidate["finishReason"] = json!(reason);
        }
        json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": MODEL_VERSION, "responseId": RESPONSE_ID})
    }

    fn call_part(call: &Call) -> Value {
        json!({"functionCall": {"name": call.name, "args": call.args}})
    }

    pub fn complete(answer: &Answer, usage_: Usage) -> Reply {
        let mut parts = Vec::new();
        if !answer.text.is_empty() {
            parts.push(json!({"text": answer.text}));
        }
        parts.extend(answer.calls.iter().map(call_part));
        Reply::json(200, response(parts, Some(finish_reason(answer.stop)), usage(usage_)))
    }

    /// `streamGenerateContent?alt=sse` chunks: each a whole response with the next
    /// parts and the running usage; function calls arrive whole; the last chunk has
    /// the finish reason and the final usage.
    pub fn chunks(answer: &Answer, usage_: Usage) -> Vec<Value> {
        let running = json!({"promptTokenCount": usage_.input + usage_.cache_read, "totalTokenCount": usage_.input + usage_.cache_read});
        let mut groups: Vec<Vec<Value>> = Vec::new();
        if !answer.text.is_empty() {
            groups.extend(halves(answer.text).into_iter().map(|piece| vec![json!({"text": piece})]));
        }
        if !answer.calls.is_empty() {
            groups.push(answer.calls.iter().map(call_part).collect());
        }
        let last = groups.len() - 1;
        groups
            .into_iter()
            .enumerate()
            .map(|(i, parts)| {
                if i == last {
                    response(parts, Some(finish_reason(answer.stop)), usage(usage_))
                } else {
                    response(parts, None, running.clone())
                }
            })
            .collect()
    }

    /// Google frames SSE events with CRLF line endings.
    fn sse(chunks: &[Value]) -> Reply {
        let frames: Vec<Bytes> = chunks.iter().map(|c| Bytes::from(format!("data: {c}\r\n\r\n"))).collect();
        super::chunked(200, &[("content-type", "text/event-stream"), ("x-goog-request-id", "matrix")], &frames)
    }

    pub fn stream(answer: &Answer, usage: Usage) -> Reply {
        sse(&chunks(answer, usage))
    }

    fn error(code: u16, status: &str, message: &str, details: Value) -> Reply {
        Reply::json(code, json!({"error": {"code": code, "message": message, "status": status, "details": details}}))
    }

    pub fn failure(failure: Failure) -> Reply {
        match failure {
            Failure::RateLimited => error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
                json!([
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"},
                ]),
            ),
            Failure::Overloaded | Failure::ModelNotReady => {
                error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.", json!([]))
            }
            Failure::ContextTooLong => error(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1215304) exceeds the maximum number of tokens allowed (1048576).",
                json!([]),
            ),
        }
    }

    pub fn overloaded_in_stream() -> Reply {
        sse(&[json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}})])
    }

    pub fn fails_mid_stream() -> Reply {
        let running = json!({"promptTokenCount": 10, "totalTokenCount": 10});
        sse(&[
            response(vec![json!({"text": TEXT_BEFORE_FAILURE})], None, running),
            json!({"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}),
        ])
    }
}

// ---- what each upstream must have received ----

/// Checks the translated request `up` received for `scenario` from a `front` client.
pub fn check_request(up: Up, front: Front, scenario: Scenario, stream: bool, request: &RecordedRequest) {
    let body = request.json();
    let context = format!("{up:?} upstream, {front:?} client, {scenario:?}, stream={stream}: {} {}\n{body:#}", request.method, request.path);
    let result = match up {
        Up::OpenAi => check_openai(front, scenario, stream, request, &body),
        Up::Anthropic => check_anthropic(front, scenario, stream, request, &body),
        Up::Bedrock => check_bedrock(front, scenario, stream, request, &body),
        Up::Gemini => check_gemini(scenario, stream, request, &body),
    };
    if let Err(problem) = result {
        panic!("{problem}\n--- {context}");
    }
}

type Check = Result<(), String>;

fn same(what: &str, got: &Value, want: &Value) -> Check {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got}, want {want}"))
    }
}

fn truthy(what: &str, ok: bool) -> Check {
    if ok {
        Ok(())
    } else {
        Err(what.to_owned())
    }
}

/// The text of a content value that is a string or a list of text parts.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}

fn check_openai(front: Front, scenario: Scenario, stream: bool, request: &RecordedRequest, body: &Value) -> Check {
    same("path", &json!(request.path), &json!("/v1/chat/completions"))?;
    same("authorization", &json!(request.header("authorization")), &json!("Bearer sk-matrix"))?;
    same("model", &body["model"], &json!(model(Up::OpenAi)))?;
    if stream {
        same("stream", &body["stream"], &json!(true))?;
        same("stream_options.include_usage", &body["stream_options"]["include_usage"], &json!(true))?;
    } else {
        truthy("a complete request must not ask for a stream", body["stream"] != json!(true))?;
    }
    let messages = body["messages"].as_array().ok_or("no messages")?;
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap_or("?")).collect();
    let limit = body.get("max_completion_tokens").or_else(|| body.get("max_tokens")).and_then(Value::as_u64);
    same("output limit (max_completion_tokens or max_tokens)", &json!(limit), &json!(scenario.max_tokens(front)))?;
    match scenario {
        Scenario::TextSystem => {
            same("roles", &json!(roles), &json!(["system", "user"]))?;
            same("system message", &json!(text_of(&messages[0]["content"])), &json!(SYSTEM))?;
        }
        Scenario::MultiTurn => {
            same("roles", &json!(roles), &json!(["user", "assistant", "user"]))?;
            let texts: Vec<String> = messages.iter().map(|m| text_of(&m["content"])).collect();
            same("turns", &json!(texts), &json!(["My name is Ada.", "Hello Ada.", "What is my name?"]))?;
        }
        Scenario::Image => {
            let parts = messages[0]["content"].as_array().ok_or("the image turn is not a list of parts")?;
            let image = parts.iter().find(|p| p["type"] == "image_url").ok_or("no image_url part")?;
            same("image url", &image["image_url"]["url"], &json!(format!("data:image/png;base64,{PNG}")))?;
            truthy("the text part is kept", parts.iter().any(|p| p["text"] == "What is in this image?"))?;
        }
        Scenario::ToolChoice | Scenario::ToolChoiceAny | Scenario::ToolChoiceNone | Scenario::ParallelTools | Scenario::ToolResult => {
            let tool = &body["tools"][0];
            same("tools[0].type", &tool["type"], &json!("function"))?;
            same("tools[0].function.name", &tool["function"]["name"], &json!(TOOL))?;
            same("tools[0].function.description", &tool["function"]["description"], &json!(TOOL_DESCRIPTION))?;
            same("tools[0].function.parameters", &tool["function"]["parameters"], &tool_schema())?;
            match scenario {
                Scenario::ToolChoice => same("tool_choice", &body["tool_choice"], &json!({"type": "function", "function": {"name": TOOL}}))?,
                Scenario::ToolChoiceAny => same("tool_choice", &body["tool_choice"], &json!("required"))?,
                Scenario::ToolChoiceNone => same("tool_choice", &body["tool_choice"], &json!("none"))?,
                Scenario::ParallelTools => {
                    same("tool_choice", &body["tool_choice"], &json!("auto"))?;
                    same("parallel_tool_calls", &body["parallel_tool_calls"], &json!(true))?;
                }
                _ => {
                    same("roles", &json!(roles), &json!(["user", "assistant", "tool"]))?;
                    let call = &messages[1]["tool_calls"][0];
                    same("call id", &call["id"], &json!(HISTORY_CALL_ID))?;
                    same("call name", &call["function"]["name"], &json!(TOOL))?;
                    let arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("")).map_err(|e| format!("arguments: {e}"))?;
                    same("call arguments", &arguments, &json!({"city": "Paris"}))?;
                    same("tool_call_id", &messages[2]["tool_call_id"], &json!(HISTORY_CALL_ID))?;
                    same("tool result", &json!(text_of(&messages[2]["content"])), &json!(TOOL_RESULT))?;
                }
            }
        }
        Scenario::JsonOutput => {
            same("response_format.type", &body["response_format"]["type"], &json!("json_schema"))?;
            same("response_format.json_schema.schema", &body["response_format"]["json_schema"]["schema"], &output_schema())?;
        }
        Scenario::StopSequence => same("stop", &body["stop"], &json!([STOP_SEQUENCE]))?,
        Scenario::MaxTokens | Scenario::UsageDetails => {}
    }
    Ok(())
}

fn check_anthropic(front: Front, scenario: Scenario, stream: bool, request: &RecordedRequest, body: &Value) -> Check {
    same("path", &json!(request.path), &json!("/v1/messages"))?;
    same("x-api-key", &json!(request.header("x-api-key")), &json!("sk-ant-matrix"))?;
    same("anthropic-version", &json!(request.header("anthropic-version")), &json!("2023-06-01"))?;
    same("model", &body["model"], &json!(model(Up::Anthropic)))?;
    same("stream", &json!(body["stream"] == json!(true)), &json!(stream))?;
    let max_tokens = body["max_tokens"].as_u64().ok_or("max_tokens is required by the Messages API")?;
    if let Some(limit) = scenario.max_tokens(front) {
        same("max_tokens", &json!(max_tokens), &json!(limit))?;
    }
    let messages = body["messages"].as_array().ok_or("no messages")?;
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap_or("?")).collect();
    match scenario {
        Scenario::TextSystem => {
            same("system", &json!(text_of(&body["system"])), &json!(SYSTEM))?;
            same("roles", &json!(roles), &json!(["user"]))?;
            same("user turn", &json!(text_of(&messages[0]["content"])), &json!("Say hi."))?;
        }
        Scenario::MultiTurn => {
            same("roles", &json!(roles), &json!(["user", "assistant", "user"]))?;
            let texts: Vec<String> = messages.iter().map(|m| text_of(&m["content"])).collect();
            same("turns", &json!(texts), &json!(["My name is Ada.", "Hello Ada.", "What is my name?"]))?;
        }
        Scenario::Image => {
            let blocks = messages[0]["content"].as_array().ok_or("the image turn is not a list of blocks")?;
            let image = blocks.iter().find(|b| b["type"] == "image").ok_or("no image block")?;
            same("image source", &image["source"], &json!({"type": "base64", "media_type": "image/png", "data": PNG}))?;
            truthy("the text block is kept", blocks.iter().any(|b| b["text"] == "What is in this image?"))?;
        }
        Scenario::ToolChoice | Scenario::ToolChoiceAny | Scenario::ToolChoiceNone | Scenario::ParallelTools | Scenario::ToolResult => {
            let tool = &body["tools"][0];
            same("tools[0].name", &tool["name"], &json!(TOOL))?;
            same("tools[0].description", &tool["description"], &json!(TOOL_DESCRIPTION))?;
            same("tools[0].input_schema", &tool["input_schema"], &tool_schema())?;
            match scenario {
                Scenario::ToolChoice => {
                    same("tool_choice.type", &body["tool_choice"]["type"], &json!("tool"))?;
                    same("tool_choice.name", &body["tool_choice"]["name"], &json!(TOOL))?;
                }
                Scenario::ToolChoiceAny => same("tool_choice", &body["tool_choice"], &json!({"type": "any"}))?,
                Scenario::ToolChoiceNone => same("tool_choice", &body["tool_choice"], &json!({"type": "none"}))?,
                Scenario::ParallelTools => {
                    same("tool_choice.type", &body["tool_choice"]["type"], &json!("auto"))?;
                    same("tool_choice.disable_parallel_tool_use", &body["tool_choice"]["disable_parallel_tool_use"], &json!(false))?;
                }
                _ => {
                    same("roles", &json!(roles), &json!(["user", "assistant", "user"]))?;
                    let call = &messages[1]["content"][0];
                    same("assistant tool_use", call, &json!({"type": "tool_use", "id": HISTORY_CALL_ID, "name": TOOL, "input": {"city": "Paris"}}))?;
                    let result = &messages[2]["content"][0];
                    same("tool_result.type", &result["type"], &json!("tool_result"))?;
                    same("tool_result.tool_use_id", &result["tool_use_id"], &json!(HISTORY_CALL_ID))?;
                    same("tool_result.content", &json!(text_of(&result["content"])), &json!(TOOL_RESULT))?;
                }
            }
        }
        Scenario::JsonOutput => {
            same("output_config.format.type", &body["output_config"]["format"]["type"], &json!("json_schema"))?;
            same("output_config.format.schema", &body["output_config"]["format"]["schema"], &output_schema())?;
        }
        Scenario::StopSequence => same("stop_sequences", &body["stop_sequences"], &json!([STOP_SEQUENCE]))?,
        Scenario::MaxTokens | Scenario::UsageDetails => {}
    }
    Ok(())
}

fn check_bedrock(front: Front, scenario: Scenario, stream: bool, request: &RecordedRequest, body: &Value) -> Check {
    let operation = if stream { "converse-stream" } else { "converse" };
    same("path", &json!(request.path), &json!(format!("/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/{operation}")))?;
    let authorization = request.header("authorization").unwrap_or_default();
    truthy(
        &format!("a SigV4 authorization for bedrock in us-east-1, got {authorization:?}"),
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDMATRIX/") && authorization.contains("/us-east-1/bedrock/aws4_request"),
    )?;
    same("inferenceConfig.maxTokens", &body["inferenceConfig"]["maxTokens"], &json!(scenario.max_tokens(front)))?;
    let messages = body["messages"].as_array().ok_or("no messages")?;
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap_or("?")).collect();
    let texts = |m: &Value| -> String { m["content"].as_array().into_iter().flatten().filter_map(|b| b["text"].as_str()).collect() };
    match scenario {
        Scenario::TextSystem => {
            same("system", &body["system"], &json!([{"text": SYSTEM}]))?;
            same("messages", &body["messages"], &json!([{"role": "user", "content": [{"text": "Say hi."}]}]))?;
        }
        Scenario::MultiTurn => {
            same("roles", &json!(roles), &json!(["user", "assistant", "user"]))?;
            let texts: Vec<String> = messages.iter().map(texts).collect();
            same("turns", &json!(texts), &json!(["My name is Ada.", "Hello Ada.", "What is my name?"]))?;
        }
        Scenario::Image => {
            let blocks = messages[0]["content"].as_array().ok_or("no content")?;
            let image = blocks.iter().find(|b| b.get("image").is_some()).ok_or("no image block")?;
            same("image", &image["image"], &json!({"format": "png", "source": {"bytes": PNG}}))?;
            same("text", &json!(texts(&messages[0])), &json!("What is in this image?"))?;
        }
        Scenario::ToolChoice | Scenario::ToolChoiceAny | Scenario::ParallelTools | Scenario::ToolResult => {
            let spec = &body["toolConfig"]["tools"][0]["toolSpec"];
            same("toolSpec.name", &spec["name"], &json!(TOOL))?;
            same("toolSpec.description", &spec["description"], &json!(TOOL_DESCRIPTION))?;
            same("toolSpec.inputSchema.json", &spec["inputSchema"]["json"], &tool_schema())?;
            match scenario {
                Scenario::ToolChoice => same("toolChoice", &body["toolConfig"]["toolChoice"], &json!({"tool": {"name": TOOL}}))?,
                Scenario::ToolChoiceAny => same("toolChoice", &body["toolConfig"]["toolChoice"], &json!({"any": {}}))?,
                Scenario::ParallelTools => same("toolChoice", &body["toolConfig"]["toolChoice"], &json!({"auto": {}}))?,
                _ => {
                    same("roles", &json!(roles), &json!(["user", "assistant", "user"]))?;
                    same(
                        "assistant toolUse",
                        &messages[1]["content"],
                        &json!([{"toolUse": {"toolUseId": HISTORY_CALL_ID, "name": TOOL, "input": {"city": "Paris"}}}]),
                    )?;
                    same(
                        "user toolResult",
                        &messages[2]["content"],
                        &json!([{"toolResult": {"toolUseId": HISTORY_CALL_ID, "content": [{"text": TOOL_RESULT}]}}]),
                    )?;
                }
            }
        }
        Scenario::JsonOutput => {
            let format = &body["outputConfig"]["textFormat"];
            same("outputConfig.textFormat.type", &format["type"], &json!("json_schema"))?;
            let schema_text = format["structure"]["jsonSchema"]["schema"].as_str().ok_or("jsonSchema.schema is not a string")?;
            let schema: Value = serde_json::from_str(schema_text).map_err(|e| format!("jsonSchema.schema: {e}"))?;
            same("outputConfig.textFormat.structure.jsonSchema.schema", &schema, &output_schema())?;
        }
        // Converse has no "none" choice: the tools are left out.
        Scenario::ToolChoiceNone => same("toolConfig", &body["toolConfig"], &Value::Null)?,
        Scenario::StopSequence => same("inferenceConfig.stopSequences", &body["inferenceConfig"]["stopSequences"], &json!([STOP_SEQUENCE]))?,
        Scenario::MaxTokens | Scenario::UsageDetails => {}
    }
    Ok(())
}

fn check_gemini(scenario: Scenario, stream: bool, request: &RecordedRequest, body: &Value) -> Check {
    let method = if stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
    same("path", &json!(request.path), &json!(format!("/v1beta/models/gemini-2.5-flash:{method}")))?;
    same("x-goog-api-key", &json!(request.header("x-goog-api-key")), &json!("AIza-matrix"))?;
    let contents = body["contents"].as_array().ok_or("no contents")?;
    let roles: Vec<&str> = contents.iter().map(|c| c["role"].as_str().unwrap_or("?")).collect();
    let texts = |c: &Value| -> String { c["parts"].as_array().into_iter().flatten().filter_map(|p| p["text"].as_str()).collect() };
    let limit = body["generationConfig"]["maxOutputTokens"].as_u64();
    match scenario {
        Scenario::MaxTokens => same("generationConfig.maxOutputTokens", &json!(limit), &json!(5))?,
        // An Anthropic client's required max_tokens is passed on too.
        _ => truthy("maxOutputTokens is the client's limit", limit.is_none() || limit == Some(256))?,
    }
    match scenario {
        Scenario::TextSystem => {
            same("systemInstruction", &body["systemInstruction"]["parts"], &json!([{"text": SYSTEM}]))?;
            same("contents", &body["contents"], &json!([{"role": "user", "parts": [{"text": "Say hi."}]}]))?;
        }
        Scenario::MultiTurn => {
            same("roles", &json!(roles), &json!(["user", "model", "user"]))?;
            let texts: Vec<String> = contents.iter().map(texts).collect();
            same("turns", &json!(texts), &json!(["My name is Ada.", "Hello Ada.", "What is my name?"]))?;
        }
        Scenario::Image => {
            let parts = contents[0]["parts"].as_array().ok_or("no parts")?;
            let image = parts.iter().find(|p| p.get("inlineData").is_some()).ok_or("no inlineData part")?;
            same("inlineData", &image["inlineData"], &json!({"mimeType": "image/png", "data": PNG}))?;
            same("text", &json!(texts(&contents[0])), &json!("What is in this image?"))?;
        }
        Scenario::ToolChoice | Scenario::ToolChoiceAny | Scenario::ToolChoiceNone | Scenario::ParallelTools | Scenario::ToolResult => {
            let declaration = &body["tools"][0]["functionDeclarations"][0];
            same("functionDeclarations[0].name", &declaration["name"], &json!(TOOL))?;
            same("functionDeclarations[0].description", &declaration["description"], &json!(TOOL_DESCRIPTION))?;
            same("functionDeclarations[0].parametersJsonSchema", &declaration["parametersJsonSchema"], &tool_schema())?;
            let calling = &body["toolConfig"]["functionCallingConfig"];
            match scenario {
                Scenario::ToolChoice => same("functionCallingConfig", calling, &json!({"mode": "ANY", "allowedFunctionNames": [TOOL]}))?,
                Scenario::ToolChoiceAny => same("functionCallingConfig", calling, &json!({"mode": "ANY"}))?,
                Scenario::ToolChoiceNone => same("functionCallingConfig", calling, &json!({"mode": "NONE"}))?,
                Scenario::ParallelTools => same("functionCallingConfig.mode", &calling["mode"], &json!("AUTO"))?,
                _ => {
                    same("roles", &json!(roles), &json!(["user", "model", "user"]))?;
                    let call = &contents[1]["parts"][0]["functionCall"];
                    same("functionCall", &json!({"name": call["name"], "args": call["args"]}), &json!({"name": TOOL, "args": {"city": "Paris"}}))?;
                    same(
                        "functionResponse",
                        &contents[2]["parts"][0]["functionResponse"],
                        &json!({"name": TOOL, "response": {"output": TOOL_RESULT}}),
                    )?;
                }
            }
        }
        Scenario::JsonOutput => {
            same("generationConfig.responseMimeType", &body["generationConfig"]["responseMimeType"], &json!("application/json"))?;
            same("generationConfig.responseJsonSchema", &body["generationConfig"]["responseJsonSchema"], &output_schema())?;
        }
        Scenario::StopSequence => same("generationConfig.stopSequences", &body["generationConfig"]["stopSequences"], &json!([STOP_SEQUENCE]))?,
        Scenario::MaxTokens | Scenario::UsageDetails => {}
    }
    Ok(())
}
