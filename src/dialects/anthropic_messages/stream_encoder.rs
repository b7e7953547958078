//! Canonical stream events out as the server-sent events Anthropic's SDKs read.
//!
//! Events may come from any upstream's decoder, so the encoder keeps Anthropic's
//! guarantees itself: a `message_start` first, contiguous block indexes, every block
//! stopped before `message_delta`, a non-null `stop_reason`, `message_stop` last.
//! In passthrough it forwards the upstream's own events and adds only what a complete
//! upstream stream left out.

use std::collections::HashMap;

use bytes::BytesMut;
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::error_body;
use super::response::{stop_reason_name, usage_to_wire};
use super::wire::AnthropicBlock;
use super::wire_response::*;
use crate::canonical::*;

/// Writes canonical events as the SSE stream Anthropic's SDKs read:
/// `event: <type>\ndata: <json>\n\n`, compact JSON, `type` first.
#[derive(Debug)]
pub struct EventEncoder {
    id: String,
    passthrough: bool,
    started: bool,
    /// Canonical block index → Anthropic index, for blocks opened so far.
    indexes: HashMap<usize, usize>,
    /// Canonical indexes of open blocks, in opening order.
    open: Vec<usize>,
    usage: Usage,
    sent_delta: bool,
    /// Passthrough: whether the upstream's own `message_stop` was forwarded.
    sent_stop: bool,
    finished: bool,
}

impl EventEncoder {
    /// `id` is used when the upstream's message has none (a `msg_…` id, see
    /// [`super::new_message_id`]). `passthrough`: the upstream also speaks this
    /// dialect and its events are forwarded with [`Self::raw`]; canonical events then
    /// only complete what the upstream left out.
    pub fn new(id: String, passthrough: bool) -> Self {
        EventEncoder {
            id,
            passthrough,
            started: false,
            indexes: HashMap::new(),
            open: Vec::new(),
            usage: Usage::default(),
            sent_delta: false,
            sent_stop: false,
            finished: false,
        }
    }

    /// Forwards one upstream event unchanged. `data` may be just the event's data,
    /// whose `type` names the event (Anthropic always repeats the `event:` name there),
    /// or a whole SSE event (`event: x\ndata: {...}`), written verbatim.
    pub fn raw(&mut self, data: &str, out: &mut BytesMut) {
        let text = data.trim_end_matches('\n');
        let name = if let Some(rest) = text.strip_prefix("event:") {
            rest.lines().next().map(|name| name.trim().to_owned())
        } else {
            event_type(text.strip_prefix("data:").map_or(text, str::trim_start))
        };
        match name.as_deref() {
            Some("message_delta") => self.sent_delta = true,
            Some("message_stop") => self.sent_stop = true,
            _ => {}
        }
        if text.starts_with("event:") || text.starts_with("data:") {
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\n\n");
            return;
        }
        match name {
            Some(name) => write_event_raw(out, &name, text),
            // Not Anthropic's shape: forward it as a bare data event rather than drop it.
            None => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b"\n\n");
            }
        }
    }

    pub fn event(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        if self.finished {
            return;
        }
        if self.passthrough {
            self.passthrough_event(event, out);
            return;
        }
        match event {
            StreamEvent::MessageStart { id, model, usage } => {
                if !self.started {
                    if !id.is_empty() {
                        self.id = id.clone();
                    }
                    self.usage = *usage;
                    self.start(model, out);
                }
            }
            StreamEvent::BlockStart { index, block } => {
                self.ensure_started(out);
                self.open_block(*index, block, out);
            }
            StreamEvent::BlockDelta { index, delta } => {
                self.ensure_started(out);
                let Some(anthropic_index) = self.block_for_delta(*index, delta, out) else { return };
                let delta = match delta {
                    BlockDelta::Text { text } => AnthropicDelta::TextDelta { text: text.clone() },
                    BlockDelta::ToolInputJson { partial_json } => AnthropicDelta::InputJsonDelta { partial_json: partial_json.clone() },
                    BlockDelta::Thinking { text } => AnthropicDelta::ThinkingDelta { thinking: text.clone() },
                    BlockDelta::ThinkingSignature { signature } => AnthropicDelta::SignatureDelta { signature: signature.clone() },
                };
                write_event(out, &AnthropicStreamEvent::ContentBlockDelta { index: anthropic_index, delta });
            }
            StreamEvent::BlockStop { index } => self.close_block(*index, out),
            StreamEvent::MessageDelta { stop_reason, stop_sequence, usage } => {
                self.ensure_started(out);
                self.close_all(out);
                self.usage.merge_max(usage);
                self.message_delta(*stop_reason, stop_sequence.clone(), out);
            }
            StreamEvent::MessageStop => {
                self.ensure_started(out);
                self.close_all(out);
                if !self.sent_delta {
                    self.message_delta(None, None, out);
                }
                write_event(out, &AnthropicStreamEvent::MessageStop);
                self.finished = true;
            }
        }
    }

    /// In passthrough the upstream's events are already on the wire (each item's raw
    /// data is written before its events). Only when the upstream stream ended complete
    /// but without its own `message_delta`/`message_stop` (the decoder's `finish`) are
    /// those written here, so the client's SDK sees a finished message.
    fn passthrough_event(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        match event {
            StreamEvent::MessageDelta { stop_reason, stop_sequence, usage } if !self.sent_delta => {
                self.usage.merge_max(usage);
                self.message_delta(*stop_reason, stop_sequence.clone(), out);
            }
            StreamEvent::MessageStop => {
                if !self.sent_stop {
                    write_event(out, &AnthropicStreamEvent::MessageStop);
                }
                self.finished = true;
            }
            _ => {}
        }
    }

    /// Ends the stream with an `error` event, which Anthropic's SDKs raise as an API
    /// error. No `message_stop` follows, so a broken answer never looks finished.
    pub fn error(&mut self, err: &ApiError, out: &mut BytesMut) {
        write_event_raw(out, "error", &error_body(err).to_string());
        self.finished = true;
    }

    fn ensure_started(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.start("", out);
        }
    }

    /// `message_start` carries the message shell: no content, no stop reason yet, and
    /// the usage known so far.
    fn start(&mut self, model: &str, out: &mut BytesMut) {
        self.started = true;
        let message = AnthropicResponse {
            id: self.id.clone(),
            kind: "message".to_owned(),
            role: "assistant".to_owned(),
            model: model.to_owned(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: usage_to_wire(&self.usage),
        };
        write_event(out, &AnthropicStreamEvent::MessageStart { message });
    }

    fn open_block(&mut self, index: usize, block: &BlockStart, out: &mut BytesMut) -> usize {
        if let Some(&existing) = self.indexes.get(&index) {
            return existing;
        }
        let anthropic_index = self.indexes.len();
        self.indexes.insert(index, anthropic_index);
        self.open.push(index);
        let content_block = match block {
            BlockStart::Text => AnthropicBlock::Text { text: String::new(), citations: None, cache_control: None },
            BlockStart::ToolUse { id, name } => {
                AnthropicBlock::ToolUse { id: id.clone(), name: name.clone(), input: Value::Object(Map::new()), cache_control: None }
            }
            BlockStart::Thinking => AnthropicBlock::Thinking { thinking: String::new(), signature: String::new() },
            BlockStart::RedactedThinking { data } => AnthropicBlock::RedactedThinking { data: data.clone() },
        };
        write_event(out, &AnthropicStreamEvent::ContentBlockStart { index: anthropic_index, content_block });
        anthropic_index
    }

    /// The Anthropic index for a delta, opening a block of the delta's kind if no
    /// upstream decoder did (deltas to a stopped block are dropped: SDKs reject them).
    fn block_for_delta(&mut self, index: usize, delta: &BlockDelta, out: &mut BytesMut) -> Option<usize> {
        if let Some(&anthropic_index) = self.indexes.get(&index) {
            return self.open.contains(&index).then_some(anthropic_index);
        }
        let block = match delta {
            BlockDelta::Text { .. } => BlockStart::Text,
            BlockDelta::ToolInputJson { .. } => BlockStart::ToolUse { id: format!("toolu_{index}"), name: String::new() },
            BlockDelta::Thinking { .. } | BlockDelta::ThinkingSignature { .. } => BlockStart::Thinking,
        };
        Some(self.open_block(index, &block, out))
    }

    fn close_block(&mut self, index: usize, out: &mut BytesMut) {
        let Some(position) = self.open.iter().position(|&i| i == index) else { return };
        self.open.remove(position);
        if let Some(&anthropic_index) = self.indexes.get(&index) {
            write_event(out, &AnthropicStreamEvent::ContentBlockStop { index: anthropic_index });
        }
    }

    fn close_all(&mut self, out: &mut BytesMut) {
        for index in std::mem::take(&mut self.open) {
            if let Some(&anthropic_index) = self.indexes.get(&index) {
                write_event(out, &AnthropicStreamEvent::ContentBlockStop { index: anthropic_index });
            }
        }
    }

    /// `stop_reason` is never null here: SDKs expect one once the message ends.
    fn message_delta(&mut self, stop: Option<StopReason>, stop_sequence: Option<String>, out: &mut BytesMut) {
        self.sent_delta = true;
        let delta = AnthropicMessageDelta { stop_reason: Some(stop_reason_name(stop).to_owned()), stop_sequence };
        write_event(out, &AnthropicStreamEvent::MessageDelta { delta, usage: usage_to_wire(&self.usage) });
    }
}

fn write_event(out: &mut BytesMut, event: &AnthropicStreamEvent) {
    let name = match event {
        AnthropicStreamEvent::MessageStart { .. } => "message_start",
        AnthropicStreamEvent::ContentBlockStart { .. } => "content_block_start",
        AnthropicStreamEvent::ContentBlockDelta { .. } => "content_block_delta",
        AnthropicStreamEvent::ContentBlockStop { .. } => "content_block_stop",
        AnthropicStreamEvent::MessageDelta { .. } => "message_delta",
        AnthropicStreamEvent::MessageStop => "message_stop",
        AnthropicStreamEvent::Ping => "ping",
        AnthropicStreamEvent::Error { .. } => "error",
        AnthropicStreamEvent::Other(_) => "unknown",
    };
    write_event_raw(out, name, &to_json(event));
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn write_event_raw(out: &mut BytesMut, name: &str, data: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// The `type` of an event's JSON data. Anthropic writes it first, so the fast path
/// reads only the prefix; anything else is parsed.
fn event_type(data: &str) -> Option<String> {
    if let Some(rest) = data.strip_prefix("{\"type\":\"") {
        if let Some(end) = rest.find('"') {
            return Some(rest[..end].to_owned());
        }
    }
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Typed>(data).ok().map(|t| t.kind)
}
