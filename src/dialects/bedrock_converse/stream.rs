//! ConverseStream events to and from canonical stream events.
//!
//! This module sees events as `(event type, JSON payload)` pairs; the binary
//! `application/vnd.amazon.eventstream` framing around them belongs to the transport
//! (the Bedrock provider decodes it). Event reference:
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html>.
//!
//! Two quirks shape the decoder. Text and reasoning blocks have no `contentBlockStart`:
//! their first delta opens them. And usage arrives in `metadata` *after*
//! `messageStop`, so the canonical `MessageDelta` (stop reason plus usage) waits for
//! both, or for the end of the body if `metadata` never comes.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::response::{converse_stop_reason, stop_reason, usage_from_wire, usage_to_wire};
use super::wire::*;
use crate::canonical::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    RedactedThinking,
    ToolUse,
}

#[derive(Debug, Clone, Copy)]
struct OpenBlock {
    /// The canonical index: blocks are numbered in the order they open.
    index: usize,
    kind: BlockKind,
}

/// Turns ConverseStream events into canonical events. One per stream.
#[derive(Debug)]
pub struct ConverseStreamDecoder {
    id: String,
    model: String,
    started: bool,
    next_block: usize,
    /// Converse `contentBlockIndex` → the block it opened, while it is open.
    open: BTreeMap<usize, OpenBlock>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
    done: bool,
}

impl ConverseStreamDecoder {
    /// `id` and `model` label the message: Converse events carry neither.
    pub fn new(id: impl Into<String>, model: impl Into<String>) -> Self {
        ConverseStreamDecoder {
            id: id.into(),
            model: model.into(),
            started: false,
            next_block: 0,
            open: BTreeMap::new(),
            stop: None,
            usage: None,
            done: false,
        }
    }

    /// Decodes one event. Unknown event types and delta kinds are skipped (AWS adds
    /// them over time); a payload that does not match its type is an error.
    pub fn push(&mut self, event_type: &str, payload: &[u8]) -> Result<Vec<StreamEvent>, String> {
        let mut events = Vec::new();
        if self.done {
            return Ok(events);
        }
        if !self.started {
            self.started = true;
            events.push(StreamEvent::MessageStart { id: self.id.clone(), model: self.model.clone(), usage: Usage::default() });
        }
        match event_type {
            "messageStart" => {
                parse::<ConverseMessageStart>(event_type, payload)?;
            }
            "contentBlockStart" => {
                let event: ConverseBlockStartEvent = parse(event_type, payload)?;
                // Other start kinds open their block with its first delta, like text.
                if let Some(tool) = event.start.get("toolUse") {
                    let start: ConverseToolUseStart =
                        serde_json::from_value(tool.clone()).map_err(|e| format!("malformed contentBlockStart event: {e}"))?;
                    self.close(event.content_block_index, &mut events);
                    let block = ToolUseOrOther::Tool { id: start.tool_use_id, name: start.name };
                    self.open_block(event.content_block_index, block, &mut events);
                }
            }
            "contentBlockDelta" => {
                let event: ConverseBlockDeltaEvent = parse(event_type, payload)?;
                self.delta(event, &mut events)?;
            }
            "contentBlockStop" => {
                let event: ConverseBlockStopEvent = parse(event_type, payload)?;
                self.close(event.content_block_index, &mut events);
            }
            "messageStop" => {
                let event: ConverseMessageStop = parse(event_type, payload)?;
                self.stop = Some(stop_reason(&event.stop_reason));
                if self.usage.is_some() {
                    events.extend(self.finish());
                } else {
                    self.close_all(&mut events);
                }
            }
            "metadata" => {
                let event: ConverseMetadata = parse(event_type, payload)?;
                self.usage = Some(event.usage.map(usage_from_wire).unwrap_or_default());
                if self.stop.is_some() {
                    events.extend(self.finish());
                }
            }
            _ => {}
        }
        Ok(events)
    }

    /// Ends the message: closes what is open and reports stop reason and usage. Called
    /// when `metadata` follows `messageStop`, or by the caller when the body ends after
    /// `messageStop` without `metadata` (usage is then unknown, reported as zero).
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        if self.done {
            return events;
        }
        self.done = true;
        self.close_all(&mut events);
        events.push(StreamEvent::MessageDelta { stop_reason: self.stop, stop_sequence: None, usage: self.usage.unwrap_or_default() });
        events.push(StreamEvent::MessageStop);
        events
    }

    /// Whether `messageStop` arrived: a body that ends before it was cut.
    pub fn saw_message_stop(&self) -> bool {
        self.stop.is_some()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    fn delta(&mut self, event: ConverseBlockDeltaEvent, events: &mut Vec<StreamEvent>) -> Result<(), String> {
        let at = event.content_block_index;
        // Delta kinds the gateway does not model (citations, …) are skipped, not errors.
        if !["text", "toolUse", "reasoningContent"].iter().any(|k| event.delta.contains_key(*k)) {
            return Ok(());
        }
        let delta: ConverseBlockDelta = serde_json::from_value(Value::Object(event.delta))
            .map_err(|e| format!("malformed contentBlockDelta event: {e}"))?;
        let (kind, delta) = match delta {
            ConverseBlockDelta::Text(text) => (BlockKind::Text, BlockDelta::Text { text }),
            ConverseBlockDelta::ToolUse(tool) => (BlockKind::ToolUse, BlockDelta::ToolInputJson { partial_json: tool.input }),
            ConverseBlockDelta::ReasoningContent(ConverseReasoningDelta::Text(text)) => (BlockKind::Thinking, BlockDelta::Thinking { text }),
            ConverseBlockDelta::ReasoningContent(ConverseReasoningDelta::Signature(signature)) => {
                (BlockKind::Thinking, BlockDelta::ThinkingSignature { signature })
            }
            ConverseBlockDelta::ReasoningContent(ConverseReasoningDelta::RedactedContent(data)) => {
                // Redacted reasoning has no deltas in the canonical model: the data opens
                // the block; more data for an open block cannot be expressed and is dropped.
                if !self.open.contains_key(&at) {
                    self.open_block(at, ToolUseOrOther::Redacted { data }, events);
                }
                return Ok(());
            }
        };
        let index = match self.open.get(&at) {
            Some(open) if open.kind == kind => open.index,
            Some(open) => return Err(format!("content block {at} is {:?} but received a {kind:?} delta", open.kind)),
            None if kind == BlockKind::ToolUse => return Err(format!("tool input for content block {at}, which never started")),
            None => self.open_block(at, ToolUseOrOther::Other(kind), events),
        };
        events.push(StreamEvent::BlockDelta { index, delta });
        Ok(())
    }

    fn open_block(&mut self, at: usize, block: ToolUseOrOther, events: &mut Vec<StreamEvent>) -> usize {
        let index = self.next_block;
        self.next_block += 1;
        let (kind, start) = match block {
            ToolUseOrOther::Tool { id, name } => (BlockKind::ToolUse, BlockStart::ToolUse { id, name }),
            ToolUseOrOther::Redacted { data } => (BlockKind::RedactedThinking, BlockStart::RedactedThinking { data }),
            ToolUseOrOther::Other(kind) => (kind, if kind == BlockKind::Thinking { BlockStart::Thinking } else { BlockStart::Text }),
        };
        self.open.insert(at, OpenBlock { index, kind });
        events.push(StreamEvent::BlockStart { index, block: start });
        index
    }

    fn close(&mut self, at: usize, events: &mut Vec<StreamEvent>) {
        if let Some(open) = self.open.remove(&at) {
            events.push(StreamEvent::BlockStop { index: open.index });
        }
    }

    fn close_all(&mut self, events: &mut Vec<StreamEvent>) {
        let mut open: Vec<usize> = self.open.values().map(|b| b.index).collect();
        open.sort_unstable();
        self.open.clear();
        events.extend(open.into_iter().map(|index| StreamEvent::BlockStop { index }));
    }
}

enum ToolUseOrOther {
    Tool { id: String, name: String },
    Redacted { data: String },
    Other(BlockKind),
}

fn parse<T: DeserializeOwned>(event_type: &str, payload: &[u8]) -> Result<T, String> {
    serde_json::from_slice(payload).map_err(|e| format!("malformed {event_type} event: {e}"))
}

/// Turns canonical events into ConverseStream `(event type, payload)` pairs, the way
/// Bedrock orders them: `messageStop` then `metadata` with the usage.
#[derive(Debug, Default)]
pub struct ConverseStreamEncoder {
    pending: Option<(Option<StopReason>, Usage)>,
}

impl ConverseStreamEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn event(&mut self, event: &StreamEvent) -> Vec<(&'static str, Value)> {
        match event {
            StreamEvent::MessageStart { .. } => vec![("messageStart", json!({"role": "assistant"}))],
            StreamEvent::BlockStart { index, block: BlockStart::ToolUse { id, name } } => vec![(
                "contentBlockStart",
                json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": id, "name": name}}}),
            )],
            StreamEvent::BlockStart { index, block: BlockStart::RedactedThinking { data } } => {
                vec![delta(*index, json!({"reasoningContent": {"redactedContent": data}}))]
            }
            // Converse opens text and reasoning blocks with their first delta.
            StreamEvent::BlockStart { .. } => Vec::new(),
            StreamEvent::BlockDelta { index, delta: d } => {
                let body = match d {
                    BlockDelta::Text { text } => json!({"text": text}),
                    BlockDelta::ToolInputJson { partial_json } => json!({"toolUse": {"input": partial_json}}),
                    BlockDelta::Thinking { text } => json!({"reasoningContent": {"text": text}}),
                    BlockDelta::ThinkingSignature { signature } => json!({"reasoningContent": {"signature": signature}}),
                };
                vec![delta(*index, body)]
            }
            StreamEvent::BlockStop { index } => vec![("contentBlockStop", json!({"contentBlockIndex": index}))],
            StreamEvent::MessageDelta { stop_reason, usage, .. } => {
                self.pending = Some((*stop_reason, *usage));
                Vec::new()
            }
            StreamEvent::MessageStop => {
                let (stop, usage) = self.pending.take().unwrap_or((None, Usage::default()));
                vec![
                    ("messageStop", json!({"stopReason": converse_stop_reason(stop)})),
                    ("metadata", json!({"usage": usage_to_wire(&usage), "metrics": {"latencyMs": 0}})),
                ]
            }
        }
    }
}

fn delta(index: usize, delta: Value) -> (&'static str, Value) {
    ("contentBlockDelta", json!({"contentBlockIndex": index, "delta": delta}))
}
