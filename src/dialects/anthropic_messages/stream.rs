//! Anthropic's server-sent events into canonical stream events.
//!
//! The two vocabularies are the same shape (the canonical one was modelled on this
//! one), so decoding is mostly renaming. The work is at the edges: blocks the canonical
//! model cannot hold (server tools) are skipped with all their deltas, and an `error`
//! event after a 200 becomes an `Err` the adapter classifies.
//!
//! Event shapes: <https://platform.claude.com/docs/en/build-with-claude/streaming>.

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

use super::error::{error_object_body, UpstreamErrorBody};
use super::response::{stop_reason, usage_from_wire};
use super::wire::AnthropicBlock;
use super::wire_response::{AnthropicDelta, AnthropicStreamEvent};
use crate::canonical::*;

/// Why a stream could not be decoded further.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamError {
    /// The upstream sent an `error` event (e.g. `overloaded_error` after a 200);
    /// classify it with [`super::classify`] and [`super::status_for_error_type`].
    Upstream(UpstreamErrorBody),
    /// An event that is not valid JSON of a known shape.
    Malformed(String),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Upstream(body) => write!(
                f,
                "{}: {}",
                body.kind.as_deref().unwrap_or("error"),
                body.message.as_deref().unwrap_or("the upstream ended the stream with an error")
            ),
            StreamError::Malformed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for StreamError {}

/// Turns an upstream's SSE events into canonical events. Block indexes are kept as
/// Anthropic numbered them.
#[derive(Debug, Default)]
pub struct EventDecoder {
    started: bool,
    /// Blocks of types the canonical model cannot hold; their deltas and stop are dropped.
    skipped: HashSet<usize>,
    stop: Option<StopReason>,
    stop_sequence: Option<String>,
    usage: Usage,
    done: bool,
}

impl EventDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one SSE event's `data`. The `event:` name is not needed: Anthropic
    /// repeats it as the data's `type`.
    pub fn push(&mut self, data: &str) -> Result<Vec<StreamEvent>, StreamError> {
        let event: AnthropicStreamEvent =
            serde_json::from_str(data).map_err(|e| StreamError::Malformed(format!("malformed stream event: {e}")))?;
        let mut events = Vec::new();
        match event {
            AnthropicStreamEvent::MessageStart { message } => {
                self.started = true;
                self.usage = usage_from_wire(&message.usage);
                events.push(StreamEvent::MessageStart { id: message.id, model: message.model, usage: self.usage });
            }
            AnthropicStreamEvent::ContentBlockStart { index, content_block } => self.block_start(index, content_block, &mut events),
            AnthropicStreamEvent::ContentBlockDelta { index, delta } if !self.skipped.contains(&index) => {
                let delta = match delta {
                    AnthropicDelta::TextDelta { text } => Some(BlockDelta::Text { text }),
                    AnthropicDelta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                        Some(BlockDelta::ToolInputJson { partial_json })
                    }
                    AnthropicDelta::ThinkingDelta { thinking } => Some(BlockDelta::Thinking { text: thinking }),
                    AnthropicDelta::SignatureDelta { signature } => Some(BlockDelta::ThinkingSignature { signature }),
                    // Citations have no canonical home yet; the text they annotate still arrives.
                    AnthropicDelta::InputJsonDelta { .. } | AnthropicDelta::CitationsDelta { .. } | AnthropicDelta::Other(_) => None,
                };
                events.extend(delta.map(|delta| StreamEvent::BlockDelta { index, delta }));
            }
            AnthropicStreamEvent::ContentBlockStop { index } if !self.skipped.contains(&index) => {
                events.push(StreamEvent::BlockStop { index });
            }
            AnthropicStreamEvent::ContentBlockDelta { .. } | AnthropicStreamEvent::ContentBlockStop { .. } => {}
            AnthropicStreamEvent::MessageDelta { delta, usage } => {
                self.stop = delta.stop_reason.as_deref().map(stop_reason).or(self.stop);
                self.stop_sequence = delta.stop_sequence.or(self.stop_sequence.take());
                // Counts here are cumulative; older API versions sent only output_tokens.
                self.usage.merge_max(&usage_from_wire(&usage));
                events.push(StreamEvent::MessageDelta { stop_reason: self.stop, stop_sequence: self.stop_sequence.clone(), usage: self.usage });
            }
            AnthropicStreamEvent::MessageStop => {
                self.done = true;
                events.push(StreamEvent::MessageStop);
            }
            AnthropicStreamEvent::Error { error } => return Err(StreamError::Upstream(error_object_body(error, None))),
            AnthropicStreamEvent::Ping | AnthropicStreamEvent::Other(_) => {}
        }
        Ok(events)
    }

    fn block_start(&mut self, index: usize, block: AnthropicBlock, events: &mut Vec<StreamEvent>) {
        let (start, initial) = match block {
            AnthropicBlock::Text { text, .. } => (BlockStart::Text, (!text.is_empty()).then_some(BlockDelta::Text { text })),
            AnthropicBlock::ToolUse { id, name, input, .. } => {
                // The input arrives as `input_json_delta`s; a start that already carries
                // one (never seen, but allowed by the schema) is sent as a first delta.
                let initial = match &input {
                    Value::Object(map) if map.is_empty() => None,
                    Value::Null => None,
                    other => Some(BlockDelta::ToolInputJson { partial_json: other.to_string() }),
                };
                (BlockStart::ToolUse { id, name }, initial)
            }
            AnthropicBlock::Thinking { thinking, .. } => {
                (BlockStart::Thinking, (!thinking.is_empty()).then_some(BlockDelta::Thinking { text: thinking }))
            }
            AnthropicBlock::RedactedThinking { data } => (BlockStart::RedactedThinking { data }, None),
            AnthropicBlock::Image { .. } | AnthropicBlock::Document { .. } | AnthropicBlock::ToolResult { .. } | AnthropicBlock::Other(_) => {
                self.skipped.insert(index);
                return;
            }
        };
        events.push(StreamEvent::BlockStart { index, block: start });
        events.extend(initial.map(|delta| StreamEvent::BlockDelta { index, delta }));
    }

    /// Ends a stream that stopped without `message_stop`: reports what is known.
    /// Whether that counts as complete is the caller's call ([`Self::saw_stop_reason`]).
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        vec![
            StreamEvent::MessageDelta { stop_reason: self.stop, stop_sequence: self.stop_sequence.clone(), usage: self.usage },
            StreamEvent::MessageStop,
        ]
    }

    /// Whether `message_delta` said why the model stopped.
    pub fn saw_stop_reason(&self) -> bool {
        self.stop.is_some()
    }

    pub fn is_started(&self) -> bool {
        self.started
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Usage so far (cumulative), for the ledger when a stream breaks.
    pub fn usage(&self) -> Usage {
        self.usage
    }
}
