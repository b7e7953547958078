//! OpenAI chat completion chunks to and from canonical stream events.

use std::collections::HashMap;

use bytes::BytesMut;
use serde_json::{json, Value};

use super::error::error_body;
use super::response::{finish_reason, stop_reason, usage_from_wire, usage_to_wire};
use super::wire::OpenAiChunk;
use crate::canonical::*;
use crate::dialects::sse::write_data;

/// Turns an upstream's chunks into canonical events, opening and closing content
/// blocks as text and tool-call deltas come and go.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    started: bool,
    next_block: usize,
    text_block: Option<usize>,
    thinking_block: Option<usize>,
    /// OpenAI tool-call index → canonical block index.
    tool_blocks: HashMap<u32, usize>,
    open: Vec<usize>,
    stop: Option<StopReason>,
    usage: Usage,
    done: bool,
}

impl ChunkDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one SSE `data` payload. `[DONE]` ends the message.
    pub fn push(&mut self, data: &str) -> Result<Vec<StreamEvent>, String> {
        if data.trim() == "[DONE]" {
            return Ok(self.finish());
        }
        let chunk: OpenAiChunk = serde_json::from_str(data).map_err(|e| format!("malformed stream chunk: {e}"))?;
        let mut events = Vec::new();
        if !self.started {
            self.started = true;
            events.push(StreamEvent::MessageStart { id: chunk.id.clone(), model: chunk.model.clone(), usage: Usage::default() });
        }
        if let Some(usage) = chunk.usage {
            self.usage = usage_from_wire(usage);
        }
        // Only the first choice is followed; `n > 1` is served by passthrough.
        let Some(choice) = chunk.choices.unwrap_or_default().into_iter().find(|c| c.index == 0) else {
            return Ok(events);
        };
        let delta = choice.delta;
        if let Some(text) = delta.reasoning_content.filter(|t| !t.is_empty()) {
            let index = self.open_block(&mut events, BlockKind::Thinking);
            events.push(StreamEvent::BlockDelta { index, delta: BlockDelta::Thinking { text } });
        }
        for text in [delta.content, delta.refusal].into_iter().flatten().filter(|t| !t.is_empty()) {
            let index = self.open_block(&mut events, BlockKind::Text);
            events.push(StreamEvent::BlockDelta { index, delta: BlockDelta::Text { text } });
        }
        for call in delta.tool_calls.unwrap_or_default() {
            let function = call.function;
            let index = match self.tool_blocks.get(&call.index) {
                Some(&index) => index,
                None => {
                    self.close_text_blocks(&mut events);
                    let index = self.next_block;
                    self.next_block += 1;
                    self.tool_blocks.insert(call.index, index);
                    self.open.push(index);
                    let name = function.as_ref().and_then(|f| f.name.clone()).unwrap_or_default();
                    let id = call.id.clone().unwrap_or_else(|| format!("call_{index}"));
                    events.push(StreamEvent::BlockStart { index, block: BlockStart::ToolUse { id, name } });
                    index
                }
            };
            if let Some(arguments) = function.and_then(|f| f.arguments).filter(|a| !a.is_empty()) {
                events.push(StreamEvent::BlockDelta { index, delta: BlockDelta::ToolInputJson { partial_json: arguments } });
            }
        }
        if let Some(reason) = choice.finish_reason {
            self.stop = Some(stop_reason(&reason));
            self.close_all(&mut events);
        }
        Ok(events)
    }

    /// Ends the message: closes what is open and reports stop reason and usage.
    /// Called on `[DONE]`, or by the caller when a stream ends without it.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut events = Vec::new();
        self.close_all(&mut events);
        events.push(StreamEvent::MessageDelta { stop_reason: self.stop, stop_sequence: None, usage: self.usage });
        events.push(StreamEvent::MessageStop);
        events
    }

    /// Whether the upstream said why it stopped: a stream that ends after this without
    /// `[DONE]` is complete, one that ends before it was cut.
    pub fn saw_finish_reason(&self) -> bool {
        self.stop.is_some()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The latest usage the upstream reported.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    fn open_block(&mut self, events: &mut Vec<StreamEvent>, kind: BlockKind) -> usize {
        let current = match kind {
            BlockKind::Text => self.text_block,
            BlockKind::Thinking => self.thinking_block,
        };
        if let Some(index) = current {
            return index;
        }
        // A new kind of content closes the previous one, as blocks are sequential.
        self.close_all(events);
        let index = self.next_block;
        self.next_block += 1;
        self.open.push(index);
        match kind {
            BlockKind::Text => {
                self.text_block = Some(index);
                events.push(StreamEvent::BlockStart { index, block: BlockStart::Text });
            }
            BlockKind::Thinking => {
                self.thinking_block = Some(index);
                events.push(StreamEvent::BlockStart { index, block: BlockStart::Thinking });
            }
        }
        index
    }

    fn close_text_blocks(&mut self, events: &mut Vec<StreamEvent>) {
        for index in [self.text_block.take(), self.thinking_block.take()].into_iter().flatten() {
            self.open.retain(|&i| i != index);
            events.push(StreamEvent::BlockStop { index });
        }
    }

    fn close_all(&mut self, events: &mut Vec<StreamEvent>) {
        self.text_block = None;
        self.thinking_block = None;
        for index in self.open.drain(..) {
            events.push(StreamEvent::BlockStop { index });
        }
    }
}

#[derive(Clone, Copy)]
enum BlockKind {
    Text,
    Thinking,
}

/// Turns canonical events into the chunk stream an OpenAI client expects, byte for byte
/// the way OpenAI frames it: `data: {chunk}\n\n` … `data: [DONE]\n\n`.
#[derive(Debug)]
pub struct ChunkEncoder {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    passthrough: bool,
    tool_indexes: HashMap<usize, u32>,
    usage: Usage,
}

impl ChunkEncoder {
    /// `passthrough`: the upstream also speaks this dialect and its chunks are forwarded
    /// verbatim with [`ChunkEncoder::raw`]; events then only mark the end.
    pub fn new(id: String, created: i64, include_usage: bool, passthrough: bool) -> Self {
        ChunkEncoder { id, model: String::new(), created, include_usage, passthrough, tool_indexes: HashMap::new(), usage: Usage::default() }
    }

    /// Forwards an upstream chunk unchanged.
    pub fn raw(&mut self, data: &str, out: &mut BytesMut) {
        write_data(out, data);
    }

    pub fn event(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        if self.passthrough {
            if let StreamEvent::MessageStop = event {
                write_data(out, "[DONE]");
            }
            return;
        }
        match event {
            StreamEvent::MessageStart { id, model, .. } => {
                if !id.is_empty() {
                    self.id = id.clone();
                }
                self.model = model.clone();
                self.chunk(out, json!({"role": "assistant", "content": ""}), None);
            }
            StreamEvent::BlockStart { index, block: BlockStart::ToolUse { id, name } } => {
                let tool_index = self.tool_indexes.len() as u32;
                self.tool_indexes.insert(*index, tool_index);
                let call = json!({"index": tool_index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}});
                self.chunk(out, json!({"tool_calls": [call]}), None);
            }
            StreamEvent::BlockStart { .. } | StreamEvent::BlockStop { .. } => {}
            StreamEvent::BlockDelta { index, delta } => match delta {
                BlockDelta::Text { text } => self.chunk(out, json!({"content": text}), None),
                BlockDelta::Thinking { text } => self.chunk(out, json!({"reasoning_content": text}), None),
                BlockDelta::ToolInputJson { partial_json } => {
                    let tool_index = self.tool_indexes.get(index).copied().unwrap_or(0);
                    let call = json!({"index": tool_index, "function": {"arguments": partial_json}});
                    self.chunk(out, json!({"tool_calls": [call]}), None);
                }
                BlockDelta::ThinkingSignature { .. } => {}
            },
            StreamEvent::MessageDelta { stop_reason, usage, .. } => {
                self.usage = *usage;
                self.chunk(out, json!({}), Some(finish_reason(*stop_reason)));
            }
            StreamEvent::MessageStop => {
                if self.include_usage {
                    let chunk = json!({
                        "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "choices": [], "usage": usage_to_wire(&self.usage),
                    });
                    write_data(out, &chunk.to_string());
                }
                write_data(out, "[DONE]");
            }
        }
    }

    /// Ends the stream with an error chunk, which the OpenAI SDKs raise as an API error.
    /// No `[DONE]` follows, so no client mistakes a broken answer for a finished one.
    pub fn error(&mut self, err: &ApiError, out: &mut BytesMut) {
        write_data(out, &error_body(err).to_string());
    }

    fn chunk(&self, out: &mut BytesMut, delta: Value, finish: Option<&str>) {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        write_data(out, &chunk.to_string());
    }
}
