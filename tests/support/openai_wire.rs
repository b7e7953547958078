//! Fixtures in OpenAI Chat Completions' exact wire format, for scripting a
//! [`MockUpstream`](super::mock_upstream::MockUpstream) that plays OpenAI.
//!
//! Shapes follow OpenAI's API reference and `openai-python`'s generated types
//! (`types/chat/chat_completion.py`, `chat_completion_chunk.py`,
//! `completion_usage.py`): a response or chunk carries `id` (`chatcmpl-…`, the same
//! on every chunk of a stream), `object`, `created` (same on every chunk), `model`,
//! `service_tier`, `system_fingerprint` and `choices[{index, message|delta,
//! logprobs: null, finish_reason}]`. With `stream_options.include_usage` every chunk
//! carries `"usage": null` except one extra chunk before `[DONE]` whose `choices` is
//! empty and whose `usage` is set.
//!
//! Everything is deterministic (fixed `created`, ids derived from the content) so
//! gateway output built from these fixtures can be snapshotted.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::mock_upstream::{RecordedRequest, Reply};

/// The `created` timestamp of every fixture (2023-11-14T22:13:20Z).
pub const CREATED: u64 = 1_700_000_000;

/// The `system_fingerprint` of every fixture.
pub const SYSTEM_FINGERPRINT: &str = "fp_mock0001";

/// The usage reported by [`tool_call_completion`]: (prompt, completion) tokens.
pub const TOOL_CALL_USAGE: (u64, u64) = (21, 9);

/// The usage every [`chat_handler`] answer reports: (prompt, completion) tokens.
pub const HANDLER_USAGE: (u64, u64) = (11, 7);

/// The tool call id [`chat_handler`] uses when it asks for a tool.
pub const HANDLER_TOOL_CALL_ID: &str = "call_mock_1";

/// The arguments [`chat_handler`] passes to the tool it calls.
pub const HANDLER_TOOL_ARGUMENTS: &str = r#"{"city":"Paris"}"#;

/// A deterministic `chatcmpl-…` id derived from the fixture's content.
pub fn completion_id(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    format!("chatcmpl-mock{}", &hex::encode(digest)[..20])
}

/// OpenAI's `usage` object, including the detail objects OpenAI sends (all zero).
pub fn usage(prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": { "cached_tokens": 0, "audio_tokens": 0 },
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

/// A non-streaming `chat.completion` whose single choice says `text` and stops.
/// `usage` is (prompt tokens, completion tokens).
pub fn completion(model: &str, text: &str, usage_tokens: (u64, u64)) -> Value {
    response(
        &completion_id(&format!("{model}\n{text}")),
        model,
        json!({
            "role": "assistant",
            "content": text,
            "refusal": null,
            "annotations": []
        }),
        "stop",
        usage_tokens,
    )
}

/// A non-streaming `chat.completion` asking for tool calls: each call is
/// (id, function name, arguments as a JSON string). `content` is null,
/// `finish_reason` is `tool_calls`, usage is [`TOOL_CALL_USAGE`].
pub fn tool_call_completion(model: &str, calls: &[(&str, &str, &str)]) -> Value {
    let tool_calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, arguments)| {
            json!({
                "id": id,
                "type": "function",
                "function": { "name": name, "arguments": arguments }
            })
        })
        .collect();
    let seed: Vec<&str> = calls.iter().map(|(id, _, _)| *id).collect();
    response(
        &completion_id(&format!("{model}\n{}", seed.join(","))),
        model,
        json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "annotations": [],
            "tool_calls": tool_calls
        }),
        "tool_calls",
        TOOL_CALL_USAGE,
    )
}

fn response(
    id: &str,
    model: &str,
    message: Value,
    finish_reason: &str,
    tokens: (u64, u64),
) -> Value {
    json!({
        "id": id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason
        }],
        "usage": usage(tokens.0, tokens.1),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT
    })
}

/// The SSE `data:` payloads of a streamed text answer, ready for `Reply::sse`:
/// a role chunk, one content chunk per piece, a finish chunk (`stop`), then — when
/// `usage` is given, as with `stream_options.include_usage` — a usage chunk with
/// `choices: []`, and finally `[DONE]`.
pub fn text_chunks(model: &str, pieces: &[&str], usage_tokens: Option<(u64, u64)>) -> Vec<String> {
    let stream = ChunkStream::new(
        model,
        &format!("{model}\n{}", pieces.concat()),
        usage_tokens,
    );
    let mut events = vec![stream.delta(
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    )];
    for piece in pieces {
        events.push(stream.delta(json!({ "content": piece }), None));
    }
    events.push(stream.delta(json!({}), Some("stop")));
    stream.finish(events)
}

/// The SSE payloads of a streamed tool-call answer; each call is (id, name,
/// arguments JSON) and its arguments are sent in fragments of at most 8 bytes.
/// See [`tool_call_chunks_from_fragments`] for the exact sequence.
pub fn tool_call_chunks(
    model: &str,
    calls: &[(&str, &str, &str)],
    usage_tokens: Option<(u64, u64)>,
) -> Vec<String> {
    let fragmented: Vec<(&str, &str, Vec<&str>)> = calls
        .iter()
        .map(|(id, name, arguments)| (*id, *name, split_fragments(arguments, 8)))
        .collect();
    let borrowed: Vec<(&str, &str, &[&str])> = fragmented
        .iter()
        .map(|(id, name, fragments)| (*id, *name, fragments.as_slice()))
        .collect();
    tool_call_chunks_from_fragments(model, &borrowed, usage_tokens)
}

/// The SSE payloads of a streamed tool-call answer with explicit argument
/// fragments: a role chunk (`content: null`), then per call (its `index` is its
/// position) a first fragment carrying `id`, `type: "function"`, the name and
/// empty `arguments`, then one chunk per argument fragment carrying only `index`
/// and `function.arguments`; then the finish chunk (`tool_calls`), the usage chunk
/// when `usage` is given, and `[DONE]`.
pub fn tool_call_chunks_from_fragments(
    model: &str,
    calls: &[(&str, &str, &[&str])],
    usage_tokens: Option<(u64, u64)>,
) -> Vec<String> {
    let seed: Vec<&str> = calls.iter().map(|(id, _, _)| *id).collect();
    let stream = ChunkStream::new(model, &format!("{model}\n{}", seed.join(",")), usage_tokens);
    let mut events = vec![stream.delta(
        json!({"role": "assistant", "content": null, "refusal": null}),
        None,
    )];
    for (index, (id, name, fragments)) in calls.iter().enumerate() {
        events.push(stream.delta(
            json!({"tool_calls": [{
                "index": index,
                "id": id,
                "type": "function",
                "function": { "name": name, "arguments": "" }
            }]}),
            None,
        ));
        for fragment in fragments.iter() {
            events.push(stream.delta(
                json!({"tool_calls": [{
                    "index": index,
                    "function": { "arguments": fragment }
                }]}),
                None,
            ));
        }
    }
    events.push(stream.delta(json!({}), Some("tool_calls")));
    stream.finish(events)
}

/// The error object OpenAI sends inside a stream that fails after it started
/// (`data: {"error": {...}}`), as a raw SSE payload.
pub fn stream_error(error_type: &str, message: &str) -> String {
    json!({
        "error": { "message": message, "type": error_type, "param": null, "code": null }
    })
    .to_string()
}

/// A chunk of a stream whose JSON breaks off in the middle (the role chunk, cut),
/// as a raw SSE payload: what a buggy proxy or a truncating middlebox produces.
pub fn invalid_json_chunk(model: &str) -> String {
    let whole = text_chunks(model, &[], None).remove(0);
    whole[..whole.len() / 2].to_string()
}

/// Shared fields of the chunks of one stream.
struct ChunkStream<'a> {
    id: String,
    model: &'a str,
    usage: Option<(u64, u64)>,
}

impl<'a> ChunkStream<'a> {
    fn new(model: &'a str, seed: &str, usage: Option<(u64, u64)>) -> Self {
        ChunkStream {
            id: completion_id(seed),
            model,
            usage,
        }
    }

    fn chunk(&self, choices: Value, usage: Option<Value>) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        });
        // With include_usage every chunk carries `usage`; null except on the last.
        if self.usage.is_some() {
            chunk["usage"] = usage.unwrap_or(Value::Null);
        }
        chunk
    }

    fn delta(&self, delta: Value, finish_reason: Option<&str>) -> String {
        self.chunk(
            json!([{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason
            }]),
            None,
        )
        .to_string()
    }

    /// Appends the usage chunk (when asked for) and `[DONE]`.
    fn finish(&self, mut events: Vec<String>) -> Vec<String> {
        if let Some((prompt, completion)) = self.usage {
            events.push(
                self.chunk(json!([]), Some(usage(prompt, completion)))
                    .to_string(),
            );
        }
        events.push("[DONE]".to_string());
        events
    }
}

/// Splits `text` into pieces of at most `max` bytes, on character boundaries.
fn split_fragments(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// A [`Reply::Handler`] that plays a plausible OpenAI Chat Completions upstream, for
/// tests (such as the Python SDK tests) that cannot script each reply in advance:
///
/// - a path not ending in `/chat/completions` → 404 OpenAI error;
/// - a body that is not a JSON object with a `messages` array → 400 naming the field;
/// - the last user message contains `[mock:status=NNN]` → an OpenAI error with that
///   status (429 comes with `retry-after: 1`);
/// - `tools` present and the last message is not a `tool` result → a call to the
///   first tool, id [`HANDLER_TOOL_CALL_ID`], arguments [`HANDLER_TOOL_ARGUMENTS`];
/// - the last message is a `tool` result → the text `tool {tool_call_id} said: {content}`;
/// - otherwise → the text `echo: {last user message}`.
///
/// The answer echoes the request's `model`. With `stream: true` it is SSE chunks
/// (text split after each space, tool arguments in 8-byte fragments), with the usage
/// chunk only when `stream_options.include_usage` is true, as OpenAI does. Usage is
/// [`HANDLER_USAGE`].
pub fn chat_handler() -> Reply {
    Reply::handler(chat_reply)
}

fn chat_reply(request: &RecordedRequest) -> Reply {
    let path = request.path.split('?').next().unwrap_or_default();
    if !path.ends_with("/chat/completions") {
        return Reply::openai_error(
            404,
            "invalid_request_error",
            &format!("mock upstream: unknown path {path}"),
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return Reply::openai_error(
            400,
            "invalid_request_error",
            "mock upstream: body is not JSON",
        );
    };
    let Some(messages) = body["messages"].as_array() else {
        return Reply::openai_error(
            400,
            "invalid_request_error",
            "mock upstream: 'messages' is a required array",
        );
    };
    let model = body["model"].as_str().unwrap_or("unknown-model");
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);

    let last_user_text = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| message_text(&m["content"]))
        .unwrap_or_default();
    if let Some(status) = forced_status(&last_user_text) {
        return match status {
            429 => Reply::rate_limited(1),
            400..=499 => Reply::openai_error(
                status,
                "invalid_request_error",
                "mock upstream: forced client error",
            ),
            _ => Reply::openai_error(status, "server_error", "mock upstream: forced server error"),
        };
    }

    let last = messages.last().cloned().unwrap_or(Value::Null);
    let first_tool = body["tools"]
        .as_array()
        .and_then(|tools| tools.first())
        .and_then(|tool| tool["function"]["name"].as_str());
    if let (Some(tool), false) = (first_tool, last["role"] == "tool") {
        let calls = [(HANDLER_TOOL_CALL_ID, tool, HANDLER_TOOL_ARGUMENTS)];
        return if stream {
            Reply::sse(tool_call_chunks(
                model,
                &calls,
                include_usage.then_some(HANDLER_USAGE),
            ))
        } else {
            let mut completion = tool_call_completion(model, &calls);
            completion["usage"] = usage(HANDLER_USAGE.0, HANDLER_USAGE.1);
            Reply::json(200, completion)
        };
    }

    let text = if last["role"] == "tool" {
        format!(
            "tool {} said: {}",
            last["tool_call_id"].as_str().unwrap_or("?"),
            message_text(&last["content"])
        )
    } else {
        format!("echo: {last_user_text}")
    };
    if stream {
        let pieces: Vec<&str> = text.split_inclusive(' ').collect();
        Reply::sse(text_chunks(
            model,
            &pieces,
            include_usage.then_some(HANDLER_USAGE),
        ))
    } else {
        Reply::json(200, completion(model, &text, HANDLER_USAGE))
    }
}

/// The text of a message's `content`: a string, or the `text` parts of an array.
fn message_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// `[mock:status=NNN]` in a user message asks the handler to fail with NNN.
fn forced_status(text: &str) -> Option<u16> {
    let start = text.find("[mock:status=")? + "[mock:status=".len();
    let end = start + text[start..].find(']')?;
    text[start..end].parse().ok()
}
