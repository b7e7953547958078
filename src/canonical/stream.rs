//! Canonical stream events: what an upstream stream decodes into and what a front door
//! encodes from.
//!
//! The vocabulary is block-structured: a message holds content blocks (text, tool use,
//! thinking), each opened, filled by deltas and closed. Dialects with flatter streams
//! (OpenAI chunks) open and close blocks implicitly when they convert.

use serde::{Deserialize, Serialize};

use super::{StopReason, Usage};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    MessageStart {
        id: String,
        model: String,
        /// Usage known at the start (typically input tokens).
        usage: Usage,
    },
    BlockStart {
        index: usize,
        block: BlockStart,
    },
    BlockDelta {
        index: usize,
        delta: BlockDelta,
    },
    BlockStop {
        index: usize,
    },
    /// Stop reason and cumulative usage; sent once, near the end.
    MessageDelta {
        stop_reason: Option<StopReason>,
        stop_sequence: Option<String>,
        usage: Usage,
    },
    MessageStop,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockStart {
    Text,
    ToolUse { id: String, name: String },
    Thinking,
    RedactedThinking { data: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    Text { text: String },
    /// A fragment of a tool call's JSON arguments.
    ToolInputJson { partial_json: String },
    Thinking { text: String },
    ThinkingSignature { signature: String },
}

impl StreamEvent {
    /// Whether this event carries content a user would see as the answer starting:
    /// what "time to first token" measures.
    pub fn is_content(&self) -> bool {
        matches!(self, StreamEvent::BlockStart { .. } | StreamEvent::BlockDelta { .. })
    }
}
