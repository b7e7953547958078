//! The client's side: what a client of each front door reads back, normalized into one
//! [`Observed`] shape so one assertion per cell compares it with the scenario's
//! expectation. Stream readers accumulate deltas the way the official SDKs do, and
//! check the stream's framing rules along the way (an SDK would choke on a violation).

use std::collections::BTreeMap;

use serde_json::Value;

use super::scenarios::{stop_name, Answer, Front, Usage};

/// What a client saw, in its own dialect's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub text: String,
    /// `(name, arguments)` of each tool call, in order.
    pub calls: Vec<(String, Value)>,
    pub stop: String,
    /// The usage figures of the client's dialect (see [`client_usage`]).
    pub usage: ClientUsage,
}

/// Usage as a client of each dialect reads it. OpenAI: `prompt` is `prompt_tokens`
/// (cached tokens included), `cache_read` is `cached_tokens`, `cache_write` has no
/// field (always 0), `reasoning` is `completion_tokens_details.reasoning_tokens`.
/// Anthropic: `prompt` is `input_tokens` (cache excluded), `cache_read` and
/// `cache_write` are `cache_read_input_tokens` and `cache_creation_input_tokens`,
/// `reasoning` is `output_tokens_details.thinking_tokens` when present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientUsage {
    pub prompt: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

/// The usage a client of `front` must read for canonical `usage`, per the mapping
/// rules in `src/dialects`.
pub fn client_usage(front: Front, usage: Usage) -> ClientUsage {
    match front {
        Front::OpenAi => ClientUsage {
            prompt: usage.input + usage.cache_read + usage.cache_write,
            output: usage.output,
            cache_read: usage.cache_read,
            cache_write: 0,
            reasoning: usage.reasoning,
        },
        Front::Anthropic => ClientUsage {
            prompt: usage.input,
            output: usage.output,
            cache_read: usage.cache_read,
            cache_write: usage.cache_write,
            reasoning: usage.reasoning,
        },
    }
}

/// What a client of `front` must observe for `answer` with canonical `usage`.
pub fn expected(front: Front, answer: &Answer, usage: Usage) -> Observed {
    Observed {
        text: answer.text.to_owned(),
        calls: answer.calls.iter().map(|c| (c.name.to_owned(), c.args.clone())).collect(),
        stop: stop_name(front, answer.stop).to_owned(),
        usage: client_usage(front, usage),
    }
}

/// A client's observation and the tool call ids it saw (checked separately: ids are
/// the upstream's, or made up for upstreams that have none).
pub struct Read {
    pub observed: Observed,
    pub call_ids: Vec<String>,
}

pub fn read(front: Front, stream: bool, body: &str) -> Read {
    match (front, stream) {
        (Front::OpenAi, false) => read_openai(&parse(body)),
        (Front::OpenAi, true) => read_openai_stream(body),
        (Front::Anthropic, false) => read_anthropic(&parse(body)),
        (Front::Anthropic, true) => read_anthropic_stream(body),
    }
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {body}"))
}

fn num(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

fn arguments(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Object(Default::default());
    }
    serde_json::from_str(text).unwrap_or_else(|e| panic!("tool arguments are not JSON ({e}): {text}"))
}

// ---- OpenAI chat completions ----

fn openai_usage(usage: &Value) -> ClientUsage {
    assert!(usage.is_object(), "no usage object: {usage}");
    let prompt = num(&usage["prompt_tokens"]);
    let output = num(&usage["completion_tokens"]);
    assert_eq!(num(&usage["total_tokens"]), prompt + output, "total_tokens is prompt + completion: {usage}");
    ClientUsage {
        prompt,
        output,
        cache_read: num(&usage["prompt_tokens_details"]["cached_tokens"]),
        cache_write: 0,
        reasoning: num(&usage["completion_tokens_details"]["reasoning_tokens"]),
    }
}

fn read_openai(body: &Value) -> Read {
    assert_eq!(body["object"], "chat.completion", "{body}");
    let choices = body["choices"].as_array().unwrap_or_else(|| panic!("no choices: {body}"));
    assert_eq!(choices.len(), 1, "{body}");
    let message = &choices[0]["message"];
    assert_eq!(message["role"], "assistant", "{body}");
    let mut call_ids = Vec::new();
    let mut calls = Vec::new();
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        assert_eq!(call["type"], "function", "{call}");
        call_ids.push(call["id"].as_str().unwrap_or_default().to_owned());
        let arguments_text = call["function"]["arguments"].as_str().unwrap_or_else(|| panic!("arguments are not a string: {call}"));
        calls.push((call["function"]["name"].as_str().unwrap_or_default().to_owned(), arguments(arguments_text)));
    }
    Read {
        observed: Observed {
            text: message["content"].as_str().unwrap_or_default().to_owned(),
            calls,
            stop: choices[0]["finish_reason"].as_str().unwrap_or_default().to_owned(),
            usage: openai_usage(&body["usage"]),
        },
        call_ids,
    }
}

/// The `data:` payloads of an SSE body, in order, checking that every event is
/// `data:` only (as OpenAI frames it).
pub fn data_events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            event.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data event: {event:?} in\n{body}")).to_owned()
        })
        .collect()
}

fn read_openai_stream(body: &str) -> Read {
    let events = data_events(body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "the stream must end with [DONE]:\n{body}");
    let mut text = String::new();
    // OpenAI tool-call index → (id, name, arguments so far).
    let mut calls: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
    let mut stop = None;
    let mut usage = None;
    for data in &events[..events.len() - 1] {
        let chunk = parse(data);
        assert!(chunk.get("error").is_none(), "an error chunk: {data}\n{body}");
        assert_eq!(chunk["object"], "chat.completion.chunk", "{data}");
        if chunk["usage"].is_object() {
            assert!(usage.is_none(), "two usage chunks:\n{body}");
            usage = Some(openai_usage(&chunk["usage"]));
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            assert_eq!(choice["index"], 0, "{data}");
            let delta = &choice["delta"];
            if let Some(piece) = delta["content"].as_str() {
                text.push_str(piece);
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let index = call["index"].as_u64().unwrap_or_else(|| panic!("a tool call delta without index: {data}"));
                let entry = calls.entry(index).or_default();
                if let Some(id) = call["id"].as_str() {
                    assert!(entry.0.is_empty(), "tool call {index} got a second id: {data}");
                    entry.0 = id.to_owned();
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    entry.1.push_str(name);
                }
                if let Some(piece) = call["function"]["arguments"].as_str() {
                    entry.2.push_str(piece);
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                assert!(stop.is_none(), "two finish reasons:\n{body}");
                stop = Some(reason.to_owned());
            }
        }
    }
    let call_ids = calls.values().map(|(id, _, _)| id.clone()).collect();
    Read {
        observed: Observed {
            text,
            calls: calls.into_values().map(|(_, name, args)| (name, arguments(&args))).collect(),
            stop: stop.unwrap_or_else(|| panic!("no finish_reason in the stream:\n{body}")),
            usage: usage.unwrap_or_else(|| panic!("no usage chunk although include_usage was asked:\n{body}")),
        },
        call_ids,
    }
}

// ---- Anthropic messages ----

fn anthropic_usage(usage: &Value) -> ClientUsage {
    assert!(usage.is_object(), "no usage object: {usage}");
    ClientUsage {
        prompt: num(&usage["input_tokens"]),
        output: num(&usage["output_tokens"]),
        cache_read: num(&usage["cache_read_input_tokens"]),
        cache_write: num(&usage["cache_creation_input_tokens"]),
        reasoning: num(&usage["output_tokens_details"]["thinking_tokens"]),
    }
}

fn read_anthropic(body: &Value) -> Read {
    assert_eq!(body["type"], "message", "{body}");
    assert_eq!(body["role"], "assistant", "{body}");
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut call_ids = Vec::new();
    for block in body["content"].as_array().unwrap_or_else(|| panic!("no content: {body}")) {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => {
                call_ids.push(block["id"].as_str().unwrap_or_default().to_owned());
                assert!(block["input"].is_object(), "tool input is not an object: {block}");
                calls.push((block["name"].as_str().unwrap_or_default().to_owned(), block["input"].clone()));
            }
            other => panic!("unexpected content block {other:?}: {body}"),
        }
    }
    Read {
        observed: Observed {
            text,
            calls,
            stop: body["stop_reason"].as_str().unwrap_or_default().to_owned(),
            usage: anthropic_usage(&body["usage"]),
        },
        call_ids,
    }
}

/// `(event name, data)` of each event of an Anthropic SSE body.
pub fn named_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let (name_line, data_line) = event.split_once('\n').unwrap_or_else(|| panic!("not an event: {event:?}\n{body}"));
            let name = name_line.strip_prefix("event: ").unwrap_or_else(|| panic!("no event name: {event:?}\n{body}"));
            let data = data_line.strip_prefix("data: ").unwrap_or_else(|| panic!("no data: {event:?}\n{body}"));
            let data = parse(data);
            assert_eq!(data["type"], name, "the event name and the data's type differ: {event:?}");
            (name.to_owned(), data)
        })
        .collect()
}

#[derive(Default)]
struct Block {
    kind: String,
    id: String,
    name: String,
    text: String,
    json: String,
    open: bool,
}

/// Reads an Anthropic stream as the SDK's message accumulator does, checking the
/// protocol: `message_start` first, contiguous block indexes, deltas only to open
/// blocks of their kind, every block stopped before `message_delta`, `message_stop` last.
fn read_anthropic_stream(body: &str) -> Read {
    let events = named_events(body);
    assert_eq!(events.first().map(|e| e.0.as_str()), Some("message_start"), "{body}");
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("message_stop"), "{body}");
    let mut usage = Value::Null;
    let mut blocks: Vec<Block> = Vec::new();
    let mut stop = None;
    for (name, data) in &events {
        match name.as_str() {
            "message_start" => {
                assert!(usage.is_null(), "two message_start events:\n{body}");
                assert_eq!(data["message"]["content"], serde_json::json!([]), "{data}");
                usage = data["message"]["usage"].clone();
            }
            "content_block_start" => {
                let index = data["index"].as_u64().unwrap_or(u64::MAX) as usize;
                assert_eq!(index, blocks.len(), "block indexes must be contiguous from 0:\n{body}");
                assert!(stop.is_none(), "a block after message_delta:\n{body}");
                let block = &data["content_block"];
                let kind = block["type"].as_str().unwrap_or_default().to_owned();
                assert!(kind == "text" || kind == "tool_use", "unexpected block {block}");
                blocks.push(Block {
                    id: block["id"].as_str().unwrap_or_default().to_owned(),
                    name: block["name"].as_str().unwrap_or_default().to_owned(),
                    text: block["text"].as_str().unwrap_or_default().to_owned(),
                    kind,
                    json: String::new(),
                    open: true,
                });
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap_or(u64::MAX) as usize;
                let block = blocks.get_mut(index).unwrap_or_else(|| panic!("a delta to a block never started:\n{body}"));
                assert!(block.open, "a delta to a stopped block:\n{body}");
                let delta = &data["delta"];
                match (block.kind.as_str(), delta["type"].as_str()) {
                    ("text", Some("text_delta")) => block.text.push_str(delta["text"].as_str().unwrap_or_default()),
                    ("tool_use", Some("input_json_delta")) => block.json.push_str(delta["partial_json"].as_str().unwrap_or_default()),
                    other => panic!("delta {other:?} does not fit its block:\n{body}"),
                }
            }
            "content_block_stop" => {
                let index = data["index"].as_u64().unwrap_or(u64::MAX) as usize;
                let block = blocks.get_mut(index).unwrap_or_else(|| panic!("a stop for a block never started:\n{body}"));
                assert!(block.open, "a block stopped twice:\n{body}");
                block.open = false;
            }
            "message_delta" => {
                assert!(stop.is_none(), "two message_delta events:\n{body}");
                assert!(blocks.iter().all(|b| !b.open), "message_delta before every block stopped:\n{body}");
                stop = Some(data["delta"]["stop_reason"].as_str().unwrap_or_else(|| panic!("a null stop_reason: {data}")).to_owned());
                // The SDK takes each figure message_delta reports over message_start's.
                if let Some(fields) = data["usage"].as_object() {
                    for (key, value) in fields {
                        if !value.is_null() {
                            usage[key] = value.clone();
                        }
                    }
                }
            }
            "message_stop" | "ping" => {}
            "error" => panic!("an error event:\n{body}"),
            other => panic!("unknown event {other}:\n{body}"),
        }
    }
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut call_ids = Vec::new();
    for block in blocks {
        match block.kind.as_str() {
            "text" => text.push_str(&block.text),
            _ => {
                call_ids.push(block.id);
                calls.push((block.name, arguments(&block.json)));
            }
        }
    }
    Read {
        observed: Observed {
            text,
            calls,
            stop: stop.unwrap_or_else(|| panic!("no message_delta:\n{body}")),
            usage: anthropic_usage(&usage),
        },
        call_ids,
    }
}

// ---- errors ----

/// The message of an error body in `front`'s shape, checking the shape.
pub fn error_message(front: Front, body: &Value) -> (String, String) {
    match front {
        Front::OpenAi => {
            let error = body["error"].as_object().unwrap_or_else(|| panic!("not an OpenAI error: {body}"));
            for field in ["message", "type", "param", "code"] {
                assert!(error.contains_key(field), "the error lacks '{field}': {body}");
            }
            (body["error"]["type"].as_str().unwrap_or_default().to_owned(), body["error"]["message"].as_str().unwrap_or_default().to_owned())
        }
        Front::Anthropic => {
            assert_eq!(body["type"], "error", "not an Anthropic error: {body}");
            (body["error"]["type"].as_str().unwrap_or_default().to_owned(), body["error"]["message"].as_str().unwrap_or_default().to_owned())
        }
    }
}
