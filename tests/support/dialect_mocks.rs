//! [`Reply::Handler`]s that play an Anthropic, a Bedrock and a Gemini upstream, each in
//! its provider's exact wire format, for tests (such as the Python SDK tests) that
//! cannot script each reply in advance. They mirror [`chat_handler`]'s semantics:
//!
//! - the last user text contains `[mock:status=NNN]` → an error with that status, in
//!   the provider's own error shape (a 429 carries a one-second retry hint where the
//!   provider gives one: Anthropic's `retry-after`, Gemini's `RetryInfo`);
//! - tools are given and the last turn is not a tool result → a call to the first
//!   tool with arguments [`TOOL_ARGUMENTS`]; with [`PREAMBLE_MARKER`] in the last user
//!   text, the call follows a text block saying [`PREAMBLE`], as Claude often does;
//! - the last turn carries a tool result → the text `tool {id} said: {result}` (Gemini
//!   matches results to calls by function name, so there it is `tool {name} said: …`);
//! - otherwise → the text `echo: {last user text}`;
//! - a stream whose last user text contains [`FAIL_MID_STREAM_MARKER`] breaks off after
//!   its first text piece with the provider's in-stream error (Anthropic's `error`
//!   event, Bedrock's `modelStreamErrorException` frame, Gemini's `{"error": …}` chunk).
//!
//! Usage is always [`USAGE`] (input, output tokens). Streams split text after each
//! space and tool arguments into 8-byte fragments, where the dialect streams them.
//!
//! Each mock also refuses what its provider refuses, with the provider's status and
//! wording: a missing credential header, a body without its required fields, tool
//! results that do not answer the tool calls just before them, and (Bedrock) turns
//! that do not alternate or tool blocks without a `toolConfig`, (Gemini) a function
//! call in the current turn without its thought signature.
//!
//! Wire references: <https://platform.claude.com/docs/en/api/messages> and
//! <https://platform.claude.com/docs/en/build-with-claude/streaming>;
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>
//! and `API_runtime_ConverseStream.html`; <https://ai.google.dev/api/generate-content>
//! and <https://ai.google.dev/gemini-api/docs/thought-signatures>.
//!
//! [`chat_handler`]: super::openai_wire::chat_handler

use std::time::Duration;

use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use switchyard::providers::bedrock::eventstream::{encode_event, encode_exception};

use super::mock_upstream::{RecordedRequest, Reply};
use super::openai_wire::{HANDLER_TOOL_ARGUMENTS, HANDLER_USAGE};

/// The usage every answer reports: (input, output) tokens. Same as `chat_handler`'s.
pub const USAGE: (u64, u64) = HANDLER_USAGE;

/// The arguments of every tool call, as JSON text. Same as `chat_handler`'s.
pub const TOOL_ARGUMENTS: &str = HANDLER_TOOL_ARGUMENTS;

/// The `tool_use` id the Anthropic mock gives its tool call.
pub const ANTHROPIC_TOOL_USE_ID: &str = "toolu_01MockWeatherA1b2C3d4E5f6";

/// The `toolUseId` the Bedrock mock gives its tool call.
pub const BEDROCK_TOOL_USE_ID: &str = "tooluse_MockWeather_Q1w2E3r4T5y6";

/// The thought signature the Gemini mock puts on its function call, as Gemini 2.5 and
/// later do when thinking is on.
pub const GEMINI_THOUGHT_SIGNATURE: &str = "CiQB0e2Kb7mockSignatureForTheWeatherCall0123456789abcdef==";

/// In the last user text, asks for a text block before the tool call.
pub const PREAMBLE_MARKER: &str = "[mock:think-aloud]";

/// The text said before a tool call when [`PREAMBLE_MARKER`] asks for it.
pub const PREAMBLE: &str = "Let me look that up.";

/// In the last user text, asks a stream to fail after its first text piece.
pub const FAIL_MID_STREAM_MARKER: &str = "[mock:fail-mid-stream]";

/// A conversation reduced to what the handlers decide on, whatever the dialect.
#[derive(Debug, Default)]
struct Conversation {
    turns: Vec<Turn>,
    /// The name of the first tool offered.
    first_tool: Option<String>,
}

#[derive(Debug, Default)]
struct Turn {
    assistant: bool,
    text: String,
    /// (id, name) of each tool call; Gemini calls may have no id.
    calls: Vec<(Option<String>, String)>,
    /// (id or function name, result text) of each tool result.
    results: Vec<(String, String)>,
}

/// What to answer.
#[derive(Debug)]
enum Plan {
    Fail(u16),
    Answer(Vec<Block>),
}

#[derive(Debug, Clone)]
enum Block {
    Text(String),
    Tool(String),
}

fn calls_a_tool(blocks: &[Block]) -> bool {
    blocks.iter().any(|b| matches!(b, Block::Tool(_)))
}

impl Conversation {
    /// Whether a stream should break off after its first text piece.
    fn fails_mid_stream(&self) -> bool {
        self.last_user_text().contains(FAIL_MID_STREAM_MARKER)
    }

    /// The text of the last user turn that has any text.
    fn last_user_text(&self) -> String {
        self.turns.iter().rev().find(|t| !t.assistant && !t.text.is_empty()).map(|t| t.text.clone()).unwrap_or_default()
    }

    fn plan(&self) -> Plan {
        let user_text = self.last_user_text();
        if let Some(status) = forced_status(&user_text) {
            return Plan::Fail(status);
        }
        let last = self.turns.last();
        if let Some((key, result)) = last.filter(|t| !t.assistant).and_then(|t| t.results.first()) {
            return Plan::Answer(vec![Block::Text(format!("tool {key} said: {result}"))]);
        }
        match &self.first_tool {
            Some(tool) => {
                let mut blocks = Vec::new();
                if user_text.contains(PREAMBLE_MARKER) {
                    blocks.push(Block::Text(PREAMBLE.to_owned()));
                }
                blocks.push(Block::Tool(tool.clone()));
                Plan::Answer(blocks)
            }
            None => Plan::Answer(vec![Block::Text(format!("echo: {user_text}"))]),
        }
    }

    /// Every tool result answers a call of the turn just before it, and every call of
    /// an assistant turn that is followed by another turn is answered there. `by_name`
    /// matches results to calls by function name (Gemini) rather than by id.
    fn check_tool_pairing(&self, by_name: bool) -> Result<(), PairingError> {
        let key = |call: &(Option<String>, String)| if by_name { call.1.clone() } else { call.0.clone().unwrap_or_default() };
        for (i, turn) in self.turns.iter().enumerate() {
            if !turn.results.is_empty() {
                let previous = i.checked_sub(1).map(|p| &self.turns[p]).filter(|p| p.assistant && !p.calls.is_empty());
                let Some(previous) = previous else {
                    return Err(PairingError::ResultWithoutCall { turn: i, key: turn.results[0].0.clone() });
                };
                let called: Vec<String> = previous.calls.iter().map(key).collect();
                if let Some((unknown, _)) = turn.results.iter().find(|(k, _)| !called.contains(k)) {
                    return Err(PairingError::ResultWithoutCall { turn: i, key: unknown.clone() });
                }
            }
            if turn.assistant && !turn.calls.is_empty() {
                if let Some(next) = self.turns.get(i + 1) {
                    let answered: Vec<&String> = next.results.iter().map(|(k, _)| k).collect();
                    let missing: Vec<String> = turn.calls.iter().map(key).filter(|k| next.assistant || !answered.contains(&k)).collect();
                    if !missing.is_empty() {
                        return Err(PairingError::CallWithoutResult { turn: i + 1, keys: missing });
                    }
                }
            }
        }
        Ok(())
    }
}

enum PairingError {
    /// Turn `turn` holds a result for `key`, which the turn before did not call.
    ResultWithoutCall { turn: usize, key: String },
    /// Turn `turn` should hold results for `keys` and does not.
    CallWithoutResult { turn: usize, keys: Vec<String> },
}

/// `[mock:status=NNN]` in the user text asks the handler to fail with NNN.
fn forced_status(text: &str) -> Option<u16> {
    let start = text.find("[mock:status=")? + "[mock:status=".len();
    let end = start + text[start..].find(']')?;
    text[start..end].parse().ok()
}

/// The text split after each space, as the handlers stream it.
fn text_pieces(text: &str) -> Vec<&str> {
    text.split_inclusive(' ').collect()
}

/// `text` in pieces of at most `max` bytes, on character boundaries.
fn fragments(text: &str, max: usize) -> Vec<&str> {
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

fn tool_input() -> Value {
    serde_json::from_str(TOOL_ARGUMENTS).expect("TOOL_ARGUMENTS is JSON")
}

/// Hex SHA-256 of `seed`: deterministic ids.
fn digest(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))
}

/// A reply whose body is exactly `body` (framed by `content-length`), with `headers`.
fn raw_body(status: u16, content_type: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
    let mut reply = Reply::trickle(status, body, usize::MAX, Duration::ZERO).with_header("content-type", content_type);
    for (name, value) in headers {
        reply = reply.with_header(name, value);
    }
    reply
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Anthropic Messages
// ---------------------------------------------------------------------------

/// A [`Reply::Handler`] playing the Claude API's `POST /v1/messages` (see the module
/// docs). It wants a key (`x-api-key` or `authorization: Bearer`) and a known `anthropic-version` (under `2026-10-21` it
/// refuses `temperature`, `top_p` and `top_k`, as the API does), and `model`,
/// `max_tokens` and `messages` in the body. With `stream: true` it answers with SSE events, each with
/// its `event:` line, in the order and shape the API sends them (`message_start`,
/// `content_block_start`, `ping`, deltas, `content_block_stop`, `message_delta`,
/// `message_stop`); tool input streams as `input_json_delta`s, the first one empty.
pub fn anthropic_handler() -> Reply {
    Reply::handler(anthropic_reply)
}

fn anthropic_reply(request: &RecordedRequest) -> Reply {
    let path = request.path.split('?').next().unwrap_or_default();
    if request.method != "POST" || path != "/v1/messages" {
        return anthropic_error(404, "not_found_error", &format!("mock upstream: no route {} {path}", request.method));
    }
    // The API takes the key as `x-api-key` or, as the SDKs since 2.0 send it, a bearer token.
    let bearer = request.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).filter(|k| !k.is_empty());
    if request.header("x-api-key").is_none_or(str::is_empty) && bearer.is_none() {
        return anthropic_error(401, "authentication_error", "x-api-key header is required");
    }
    let version = match request.header("anthropic-version") {
        None => return anthropic_error(400, "invalid_request_error", "anthropic-version: header is required"),
        Some(version @ ("2023-01-01" | "2023-06-01" | "2026-10-21")) => version,
        Some(other) => return anthropic_error(400, "invalid_request_error", &format!("anthropic-version: '{other}' is not a valid version")),
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
        return anthropic_error(400, "invalid_request_error", "The request body is not valid JSON.");
    };
    if version == "2026-10-21" {
        // API version 2026-10-21 removed the sampling parameters.
        if let Some(removed) = ["temperature", "top_p", "top_k"].into_iter().find(|k| body.contains_key(*k)) {
            return anthropic_error(400, "invalid_request_error", &format!("{removed}: Extra inputs are not permitted"));
        }
    }
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return anthropic_error(400, "invalid_request_error", "model: Field required");
    };
    if body.get("max_tokens").and_then(Value::as_u64).is_none() {
        return anthropic_error(400, "invalid_request_error", "max_tokens: Field required");
    }
    let conversation = match anthropic_conversation(&body) {
        Ok(conversation) => conversation,
        Err(message) => return anthropic_error(400, "invalid_request_error", &message),
    };
    if let Err(error) = conversation.check_tool_pairing(false) {
        let message = match error {
            PairingError::ResultWithoutCall { turn, key } => format!(
                "messages.{turn}.content.0: unexpected `tool_use_id` found in `tool_result` blocks: {key}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            ),
            PairingError::CallWithoutResult { turn, keys } => format!(
                "messages.{turn}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                keys.join(", ")
            ),
        };
        return anthropic_error(400, "invalid_request_error", &message);
    }
    let blocks = match conversation.plan() {
        Plan::Fail(status) => return anthropic_forced_error(status),
        Plan::Answer(blocks) => blocks,
    };
    let stop_reason = if calls_a_tool(&blocks) { "tool_use" } else { "end_turn" };
    let seed = format!("{model}\n{blocks:?}");
    let id = format!("msg_01{}", &digest(&seed)[..22]);
    let request_id = format!("req_01{}", &digest(&format!("request\n{seed}"))[..22]);
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let mut events = anthropic_events(&id, model, &blocks, stop_reason);
        if conversation.fails_mid_stream() {
            let first_delta = events.iter().position(|(name, _)| *name == "content_block_delta").unwrap_or(0);
            events.truncate(first_delta + 1);
            events.push(("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": request_id})));
        }
        let body = events
            .into_iter()
            .map(|(event, data)| format!("event: {event}\ndata: {data}\n\n"))
            .collect::<String>();
        return raw_body(200, "text/event-stream; charset=utf-8", body.into_bytes(), &[("cache-control", "no-cache"), ("request-id", &request_id)]);
    }
    let content: Vec<Value> = blocks
        .iter()
        .map(|block| match block {
            Block::Text(text) => json!({"type": "text", "text": text}),
            Block::Tool(name) => json!({"type": "tool_use", "id": ANTHROPIC_TOOL_USE_ID, "name": name, "input": tool_input()}),
        })
        .collect();
    let message = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": anthropic_usage(USAGE.1),
    });
    Reply::json(200, message).with_header("request-id", &request_id)
}

/// Reads `messages` and `tools`; a malformed one is the API's 400 message.
fn anthropic_conversation(body: &Map<String, Value>) -> Result<Conversation, String> {
    let Some(messages) = body.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()) else {
        return Err("messages: Field required".to_owned());
    };
    let mut conversation = Conversation::default();
    for (i, message) in messages.iter().enumerate() {
        let assistant = match message["role"].as_str() {
            Some("user") => false,
            Some("assistant") => true,
            _ => return Err(format!("messages.{i}.role: Input should be 'user' or 'assistant'")),
        };
        let mut turn = Turn { assistant, ..Turn::default() };
        match &message["content"] {
            Value::String(text) => turn.text = text.clone(),
            Value::Array(blocks) => {
                let mut seen_other = false;
                for (j, block) in blocks.iter().enumerate() {
                    match block["type"].as_str() {
                        Some("text") => turn.text.push_str(block["text"].as_str().unwrap_or_default()),
                        Some("tool_use") => {
                            let (Some(id), Some(name)) = (block["id"].as_str(), block["name"].as_str()) else {
                                return Err(format!("messages.{i}.content.{j}.tool_use: id and name are required"));
                            };
                            if !block["input"].is_object() {
                                return Err(format!("messages.{i}.content.{j}.tool_use.input: Input should be a valid dictionary"));
                            }
                            turn.calls.push((Some(id.to_owned()), name.to_owned()));
                        }
                        Some("tool_result") => {
                            if assistant {
                                return Err(format!("messages.{i}.content.{j}: tool_result blocks are only allowed in user messages"));
                            }
                            if seen_other {
                                return Err(format!(
                                    "messages.{i}: tool_result blocks must come first in the content of a user message, before any other block"
                                ));
                            }
                            let Some(id) = block["tool_use_id"].as_str() else {
                                return Err(format!("messages.{i}.content.{j}.tool_result.tool_use_id: Field required"));
                            };
                            turn.results.push((id.to_owned(), text_of(&block["content"])));
                            continue;
                        }
                        _ => {}
                    }
                    seen_other = true;
                }
            }
            _ => return Err(format!("messages.{i}.content: Input should be a valid string or list")),
        }
        conversation.turns.push(turn);
    }
    if let Some(tools) = body.get("tools") {
        let Some(tools) = tools.as_array() else {
            return Err("tools: Input should be a valid list".to_owned());
        };
        for (i, tool) in tools.iter().enumerate() {
            if tool["name"].as_str().is_none() {
                return Err(format!("tools.{i}.custom.name: Field required"));
            }
            if tool["input_schema"]["type"] != "object" {
                return Err(format!("tools.{i}.custom.input_schema: Input schema must have 'type': 'object'"));
            }
        }
        conversation.first_tool = tools.first().and_then(|t| t["name"].as_str()).map(str::to_owned);
    }
    Ok(conversation)
}

/// `usage` as the API reports it on a message.
fn anthropic_usage(output_tokens: u64) -> Value {
    json!({
        "input_tokens": USAGE.0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard"
    })
}

/// The (event name, data) pairs of a streamed message.
fn anthropic_events(id: &str, model: &str, blocks: &[Block], stop_reason: &str) -> Vec<(&'static str, Value)> {
    let mut events = vec![(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": anthropic_usage(1)
        }}),
    )];
    for (index, block) in blocks.iter().enumerate() {
        let (start, deltas): (Value, Vec<Value>) = match block {
            Block::Text(text) => (
                json!({"type": "text", "text": ""}),
                text_pieces(text).into_iter().map(|piece| json!({"type": "text_delta", "text": piece})).collect(),
            ),
            Block::Tool(name) => (
                json!({"type": "tool_use", "id": ANTHROPIC_TOOL_USE_ID, "name": name, "input": {}}),
                std::iter::once("")
                    .chain(fragments(TOOL_ARGUMENTS, 8))
                    .map(|piece| json!({"type": "input_json_delta", "partial_json": piece}))
                    .collect(),
            ),
        };
        events.push(("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": start})));
        if index == 0 {
            events.push(("ping", json!({"type": "ping"})));
        }
        for delta in deltas {
            events.push(("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": delta})));
        }
        events.push(("content_block_stop", json!({"type": "content_block_stop", "index": index})));
    }
    events.push((
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": USAGE.1}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    events
}

/// An error in the API's shape: `{"type":"error","error":{"type","message"},"request_id"}`.
pub fn anthropic_error(status: u16, error_type: &str, message: &str) -> Reply {
    let request_id = format!("req_01{}", &digest(&format!("{status}\n{message}"))[..22]);
    Reply::json(status, json!({"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}))
        .with_header("request-id", &request_id)
}

fn anthropic_forced_error(status: u16) -> Reply {
    let error_type = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    let reply = anthropic_error(status, error_type, &format!("mock upstream: forced {status}"));
    if status == 429 {
        reply.with_header("retry-after", "1").with_header("anthropic-ratelimit-requests-remaining", "0")
    } else {
        reply
    }
}

// ---------------------------------------------------------------------------
// Bedrock Converse
// ---------------------------------------------------------------------------

/// A [`Reply::Handler`] playing Bedrock Runtime's `POST /model/{modelId}/converse` and
/// `/converse-stream` (see the module docs). It wants a SigV4 `authorization` for the
/// `bedrock` service and `x-amz-date` (it does not check the signature itself:
/// `tests/bedrock.rs` does), and a body whose turns start with the user and alternate.
/// Streams are `application/vnd.amazon.eventstream` frames (`messageStart`,
/// `contentBlockStart` for tool use only, `contentBlockDelta`s, `contentBlockStop`,
/// `messageStop`, then `metadata` with the usage), each payload carrying Bedrock's
/// random-length `p` padding.
pub fn bedrock_handler() -> Reply {
    Reply::handler(bedrock_reply)
}

fn bedrock_reply(request: &RecordedRequest) -> Reply {
    let path = request.path.split('?').next().unwrap_or_default();
    let operation = path.strip_prefix("/model/").and_then(|rest| rest.rsplit_once('/'));
    let Some((encoded_model, operation @ ("converse" | "converse-stream"))) = operation.filter(|_| request.method == "POST") else {
        return bedrock_error(404, "UnknownOperationException", &format!("mock upstream: no operation {} {path}", request.method));
    };
    let model = percent_decode_str(encoded_model).decode_utf8_lossy().into_owned();
    let authorization = request.header("authorization").unwrap_or_default();
    if !authorization.starts_with("AWS4-HMAC-SHA256 Credential=") || request.header("x-amz-date").is_none() {
        return bedrock_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
    }
    if !authorization.contains("/bedrock/aws4_request") {
        return bedrock_error(403, "InvalidSignatureException", "Credential should be scoped to correct service: 'bedrock'.");
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
        return bedrock_error(400, "SerializationException", "Unable to parse the request body as JSON.");
    };
    let conversation = match bedrock_conversation(&body) {
        Ok(conversation) => conversation,
        Err(message) => return bedrock_error(400, "ValidationException", &message),
    };
    if let Err(error) = conversation.check_tool_pairing(false) {
        let message = match error {
            PairingError::ResultWithoutCall { turn, .. } => format!(
                "The number of toolResult blocks at messages.{turn}.content exceeds the number of toolUse blocks of previous turn."
            ),
            PairingError::CallWithoutResult { turn, keys } => {
                format!("Expected toolResult blocks at messages.{turn}.content for the following Ids: {}", keys.join(", "))
            }
        };
        return bedrock_error(400, "ValidationException", &message);
    }
    let blocks = match conversation.plan() {
        Plan::Fail(status) => return bedrock_forced_error(status),
        Plan::Answer(blocks) => blocks,
    };
    let stop_reason = if calls_a_tool(&blocks) { "tool_use" } else { "end_turn" };
    let request_id = uuid_like(&format!("{model}\n{blocks:?}"));
    let usage = json!({"inputTokens": USAGE.0, "outputTokens": USAGE.1, "totalTokens": USAGE.0 + USAGE.1});
    if operation == "converse-stream" {
        let mut events = bedrock_events(&blocks, stop_reason, usage);
        let fail = conversation.fails_mid_stream();
        if fail {
            let first_delta = events.iter().position(|(name, _)| *name == "contentBlockDelta").unwrap_or(0);
            events.truncate(first_delta + 1);
        }
        let mut frames = Vec::new();
        for (n, (event_type, mut payload)) in events.into_iter().enumerate() {
            // Bedrock pads every event with a random-length `p` against side channels.
            payload["p"] = json!(&PADDING[..(7 + 13 * n) % PADDING.len()]);
            frames.extend_from_slice(&encode_event(event_type, payload.to_string().as_bytes()).expect("frame an event"));
        }
        if fail {
            let error = json!({"message": "The system encountered an unexpected error during processing. Try your request again.", "originalStatusCode": 500});
            frames.extend_from_slice(&encode_exception("modelStreamErrorException", error.to_string().as_bytes()).expect("frame an exception"));
        }
        return raw_body(200, "application/vnd.amazon.eventstream", frames, &[("x-amzn-requestid", &request_id)]);
    }
    let content: Vec<Value> = blocks
        .iter()
        .map(|block| match block {
            Block::Text(text) => json!({"text": text}),
            Block::Tool(name) => json!({"toolUse": {"toolUseId": BEDROCK_TOOL_USE_ID, "name": name, "input": tool_input()}}),
        })
        .collect();
    let answer = json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": usage,
        "metrics": {"latencyMs": 412},
    });
    Reply::json(200, answer).with_header("x-amzn-requestid", &request_id)
}

const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Reads `messages` and `toolConfig`; a malformed one is Bedrock's validation message.
fn bedrock_conversation(body: &Map<String, Value>) -> Result<Conversation, String> {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err("1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null".to_owned());
    };
    let mut conversation = Conversation::default();
    let mut tool_blocks = false;
    for (i, message) in messages.iter().enumerate() {
        let assistant = match message["role"].as_str() {
            Some("user") => false,
            Some("assistant") => true,
            other => return Err(format!("1 validation error detected: Value '{}' at 'messages.{}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]", other.unwrap_or("null"), i + 1)),
        };
        if i == 0 && assistant {
            return Err("A conversation must start with a user message. Try again with a conversation that starts with a user message.".to_owned());
        }
        if conversation.turns.last().is_some_and(|t| t.assistant == assistant) {
            return Err("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".to_owned());
        }
        let Some(blocks) = message["content"].as_array().filter(|b| !b.is_empty()) else {
            return Err(format!("The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."));
        };
        let mut turn = Turn { assistant, ..Turn::default() };
        for (j, block) in blocks.iter().enumerate() {
            if let Some(text) = block.get("text") {
                let Some(text) = text.as_str().filter(|t| !t.trim().is_empty()) else {
                    return Err(format!("The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again."));
                };
                turn.text.push_str(text);
            } else if let Some(tool_use) = block.get("toolUse") {
                tool_blocks = true;
                let (Some(id), Some(name)) = (tool_use["toolUseId"].as_str(), tool_use["name"].as_str()) else {
                    return Err(format!("messages.{i}.content.{j}.toolUse: toolUseId and name are required"));
                };
                turn.calls.push((Some(id.to_owned()), name.to_owned()));
            } else if let Some(result) = block.get("toolResult") {
                tool_blocks = true;
                let Some(id) = result["toolUseId"].as_str() else {
                    return Err(format!("messages.{i}.content.{j}.toolResult: toolUseId is required"));
                };
                let text: String = result["content"]
                    .as_array()
                    .map(|parts| {
                        parts
                            .iter()
                            .map(|p| p["text"].as_str().map(str::to_owned).unwrap_or_else(|| p["json"].to_string()))
                            .collect::<Vec<_>>()
                            .join("")
                    })
                    .unwrap_or_default();
                turn.results.push((id.to_owned(), text));
            }
        }
        conversation.turns.push(turn);
    }
    if conversation.turns.is_empty() {
        return Err("A conversation must start with a user message. Try again with a conversation that starts with a user message.".to_owned());
    }
    match body.get("toolConfig") {
        Some(config) => {
            let Some(tools) = config["tools"].as_array().filter(|t| !t.is_empty()) else {
                return Err("The toolConfig field must have at least one tool.".to_owned());
            };
            for (i, tool) in tools.iter().enumerate() {
                let spec = &tool["toolSpec"];
                if spec.is_null() && tool.get("cachePoint").is_some() {
                    continue;
                }
                if spec["name"].as_str().is_none() || !spec["inputSchema"]["json"].is_object() {
                    return Err(format!("toolConfig.tools.{i}.toolSpec: name and inputSchema.json are required"));
                }
            }
            conversation.first_tool = tools.iter().find_map(|t| t["toolSpec"]["name"].as_str()).map(str::to_owned);
        }
        None if tool_blocks => {
            return Err("The toolConfig field must be defined when using toolUse and toolResult content blocks.".to_owned());
        }
        None => {}
    }
    Ok(conversation)
}

/// The (event type, payload) pairs of a streamed answer, without padding.
fn bedrock_events(blocks: &[Block], stop_reason: &str, usage: Value) -> Vec<(&'static str, Value)> {
    let mut events = vec![("messageStart", json!({"role": "assistant"}))];
    for (index, block) in blocks.iter().enumerate() {
        match block {
            Block::Text(text) => {
                for piece in text_pieces(text) {
                    events.push(("contentBlockDelta", json!({"contentBlockIndex": index, "delta": {"text": piece}})));
                }
            }
            Block::Tool(name) => {
                events.push((
                    "contentBlockStart",
                    json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": BEDROCK_TOOL_USE_ID, "name": name}}}),
                ));
                for piece in fragments(TOOL_ARGUMENTS, 8) {
                    events.push(("contentBlockDelta", json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}})));
                }
            }
        }
        events.push(("contentBlockStop", json!({"contentBlockIndex": index})));
    }
    events.push(("messageStop", json!({"stopReason": stop_reason})));
    events.push(("metadata", json!({"usage": usage, "metrics": {"latencyMs": 412}})));
    events
}

/// An error as Bedrock sends one: the type in `x-amzn-errortype`, the text in `message`.
pub fn bedrock_error(status: u16, error_type: &str, message: &str) -> Reply {
    Reply::json(status, json!({"message": message}))
        .with_header("x-amzn-errortype", &format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"))
        .with_header("x-amzn-requestid", &uuid_like(&format!("{status}\n{message}")))
}

fn bedrock_forced_error(status: u16) -> Reply {
    let (error_type, message) = match status {
        400 => ("ValidationException", "mock upstream: forced validation error"),
        403 => ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
        404 => ("ResourceNotFoundException", "mock upstream: forced not found"),
        408 => ("ModelTimeoutException", "mock upstream: forced model timeout"),
        424 => ("ModelErrorException", "mock upstream: forced model error"),
        429 => ("ThrottlingException", "Too many requests, please wait before trying again."),
        503 => ("ServiceUnavailableException", "mock upstream: forced unavailability"),
        500..=599 => ("InternalServerException", "mock upstream: forced server error"),
        _ => ("ValidationException", "mock upstream: forced client error"),
    };
    bedrock_error(status, error_type, message)
}

/// A request id in AWS's UUID form, derived from `seed`.
fn uuid_like(seed: &str) -> String {
    let h = digest(seed);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

// ---------------------------------------------------------------------------
// Gemini
// ---------------------------------------------------------------------------

/// A [`Reply::Handler`] playing the Gemini API's `POST /v1beta/models/{model}:generateContent`
/// and `:streamGenerateContent?alt=sse` (see the module docs). It wants `x-goog-api-key`
/// and `contents`. A function call part carries [`GEMINI_THOUGHT_SIGNATURE`] and no
/// id, as Gemini 2.5+ sends them; like Gemini 3, the mock refuses a conversation whose
/// current turn holds a model function call without a thought signature (the
/// documented `skip_thought_signature_validator` counts as one). A stream is SSE
/// (`data: {GenerateContentResponse}` and CRLF line ends) with one part per chunk,
/// running usage on each, and the finish reason on the last.
pub fn gemini_handler() -> Reply {
    Reply::handler(gemini_reply)
}

fn gemini_reply(request: &RecordedRequest) -> Reply {
    let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
    let method = path.strip_prefix("/v1beta/models/").and_then(|rest| rest.rsplit_once(':'));
    let Some((model, method @ ("generateContent" | "streamGenerateContent"))) = method.filter(|_| request.method == "POST") else {
        return gemini_error(404, "NOT_FOUND", &format!("mock upstream: no method {} {path}", request.method));
    };
    let model = percent_decode_str(model).decode_utf8_lossy().into_owned();
    let stream = method == "streamGenerateContent";
    if stream && !query.split('&').any(|p| p == "alt=sse") {
        return gemini_error(400, "INVALID_ARGUMENT", "mock upstream: only alt=sse streams are played");
    }
    if request.header("x-goog-api-key").is_none_or(str::is_empty) {
        return gemini_error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        );
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
        return gemini_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    let conversation = match gemini_conversation(&body) {
        Ok(conversation) => conversation,
        Err(message) => return gemini_error(400, "INVALID_ARGUMENT", &message),
    };
    if let Err(error) = conversation.check_tool_pairing(true) {
        let message = match error {
            PairingError::ResultWithoutCall { .. } => {
                "Please ensure that function response turn comes immediately after a function call turn.".to_owned()
            }
            PairingError::CallWithoutResult { .. } => "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.".to_owned(),
        };
        return gemini_error(400, "INVALID_ARGUMENT", &message);
    }
    let blocks = match conversation.plan() {
        Plan::Fail(status) => return gemini_forced_error(status),
        Plan::Answer(blocks) => blocks,
    };
    let response_id = gemini_response_id(&format!("{model}\n{blocks:?}"));
    let part = |block: &Block| match block {
        Block::Text(text) => json!({"text": text}),
        Block::Tool(name) => json!({"functionCall": {"name": name, "args": tool_input()}, "thoughtSignature": GEMINI_THOUGHT_SIGNATURE}),
    };
    let usage = |candidates: u64| {
        json!({
            "promptTokenCount": USAGE.0,
            "candidatesTokenCount": candidates,
            "totalTokenCount": USAGE.0 + candidates,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": USAGE.0}]
        })
    };
    let chunk = |parts: Vec<Value>, finish: bool, candidates: u64| {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if finish {
            candidate["finishReason"] = json!("STOP");
        }
        json!({"candidates": [candidate], "usageMetadata": usage(candidates), "modelVersion": model, "responseId": response_id})
    };
    if !stream {
        return Reply::json(200, chunk(blocks.iter().map(part).collect(), true, USAGE.1));
    }
    let mut parts: Vec<Value> = Vec::new();
    for block in &blocks {
        match block {
            Block::Text(text) => parts.extend(text_pieces(text).into_iter().map(|piece| json!({"text": piece}))),
            Block::Tool(_) => parts.push(part(block)),
        }
    }
    let count = parts.len() as u64;
    let mut chunks: Vec<Value> = parts
        .into_iter()
        .enumerate()
        .map(|(n, part)| {
            let n = n as u64 + 1;
            // Running candidate counts that reach the total on the last chunk.
            let candidates = if n == count { USAGE.1 } else { (USAGE.1 * n / count).min(USAGE.1 - 1) };
            chunk(vec![part], n == count, candidates)
        })
        .collect();
    if conversation.fails_mid_stream() {
        chunks.truncate(1);
        chunks.push(json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}));
    }
    let body: String = chunks.iter().map(|chunk| format!("data: {chunk}\r\n\r\n")).collect();
    raw_body(200, "text/event-stream", body.into_bytes(), &[])
}

/// Reads `contents` and `tools`; a malformed one is Gemini's 400 message.
fn gemini_conversation(body: &Map<String, Value>) -> Result<Conversation, String> {
    let Some(contents) = body.get("contents").and_then(Value::as_array).filter(|c| !c.is_empty()) else {
        return Err("* GenerateContentRequest.contents: contents is not specified".to_owned());
    };
    let mut conversation = Conversation::default();
    // Model turns with function calls: (index, whether the first call is signed).
    let mut calling_turns = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        let assistant = match content["role"].as_str() {
            Some("user") | None => false,
            Some("model") => true,
            Some(other) => return Err(format!("Please use a valid role: user, model. (got '{other}' in contents[{i}])")),
        };
        let Some(parts) = content["parts"].as_array().filter(|p| !p.is_empty()) else {
            return Err(format!("* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."));
        };
        let mut turn = Turn { assistant, ..Turn::default() };
        for part in parts {
            if let Some(call) = part.get("functionCall") {
                let Some(name) = call["name"].as_str() else {
                    return Err(format!("* GenerateContentRequest.contents[{i}].parts.function_call.name: Name cannot be empty."));
                };
                if turn.calls.is_empty() {
                    calling_turns.push((i, name.to_owned(), part["thoughtSignature"].as_str().is_some_and(|s| !s.is_empty())));
                }
                turn.calls.push((call["id"].as_str().map(str::to_owned), name.to_owned()));
            } else if let Some(response) = part.get("functionResponse") {
                let Some(name) = response["name"].as_str() else {
                    return Err(format!("* GenerateContentRequest.contents[{i}].parts.function_response.name: Name cannot be empty."));
                };
                if !response["response"].is_object() {
                    return Err(format!("* GenerateContentRequest.contents[{i}].parts.function_response.response: must be an object"));
                }
                let output = match &response["response"]["output"] {
                    Value::Null => response["response"].to_string(),
                    other => text_of(other),
                };
                turn.results.push((name.to_owned(), output));
            } else if part["thought"] != true {
                if let Some(text) = part["text"].as_str() {
                    turn.text.push_str(text);
                }
            }
        }
        conversation.turns.push(turn);
    }
    // Gemini 3: in the current turn (since the last user text), the first function
    // call of each model step must carry its thought signature.
    let current_turn_start = conversation.turns.iter().rposition(|t| !t.assistant && !t.text.is_empty() && t.results.is_empty()).unwrap_or(0);
    if let Some((i, name, _)) = calling_turns.iter().find(|(i, _, signed)| *i > current_turn_start && !signed) {
        return Err(format!(
            "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{name}` , position {}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
            i + 1
        ));
    }
    if let Some(tools) = body.get("tools") {
        let Some(tools) = tools.as_array() else {
            return Err("* GenerateContentRequest.tools: must be a list".to_owned());
        };
        for (i, tool) in tools.iter().enumerate() {
            for (j, declaration) in tool["functionDeclarations"].as_array().into_iter().flatten().enumerate() {
                if declaration["name"].as_str().is_none_or(str::is_empty) {
                    return Err(format!("* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: Name cannot be empty."));
                }
                if declaration.get("parameters").is_some() && declaration.get("parametersJsonSchema").is_some() {
                    return Err(format!(
                        "* GenerateContentRequest.tools[{i}].function_declarations[{j}]: parameters and parameters_json_schema are mutually exclusive"
                    ));
                }
            }
        }
        conversation.first_tool =
            tools.iter().flat_map(|t| t["functionDeclarations"].as_array().into_iter().flatten()).find_map(|d| d["name"].as_str()).map(str::to_owned);
    }
    Ok(conversation)
}

/// A `responseId` in Gemini's form (22-odd base64url characters), derived from `seed`.
fn gemini_response_id(seed: &str) -> String {
    let h = digest(seed);
    h.chars().take(22).enumerate().map(|(i, c)| if i % 3 == 0 { c.to_ascii_uppercase() } else { c }).collect()
}

/// A `google.rpc.Status` error: `{"error":{"code","message","status"}}`.
pub fn gemini_error(code: u16, status: &str, message: &str) -> Reply {
    gemini_error_with_details(code, status, message, Vec::new())
}

fn gemini_error_with_details(code: u16, status: &str, message: &str, details: Vec<Value>) -> Reply {
    let mut error = json!({"code": code, "message": message, "status": status});
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    Reply::json(code, json!({"error": error}))
}

fn gemini_forced_error(code: u16) -> Reply {
    match code {
        429 => gemini_error_with_details(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            vec![json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"})],
        ),
        400 => gemini_error(400, "INVALID_ARGUMENT", "mock upstream: forced invalid argument"),
        403 => gemini_error(403, "PERMISSION_DENIED", "mock upstream: forced permission denied"),
        404 => gemini_error(404, "NOT_FOUND", "mock upstream: forced not found"),
        503 => gemini_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        504 => gemini_error(504, "DEADLINE_EXCEEDED", "mock upstream: forced deadline"),
        500..=599 => gemini_error(code, "INTERNAL", "An internal error has occurred."),
        _ => gemini_error(code, "INVALID_ARGUMENT", "mock upstream: forced client error"),
    }
}
