//! The canonical chat response.

use serde::{Deserialize, Serialize};

use super::{ContentPart, Usage};

/// A complete (non-streamed) answer from one upstream attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The upstream's id for this answer, if it gave one.
    pub id: String,
    /// The model that actually answered, as the upstream named it.
    pub model: String,
    /// The assistant's content: text, tool calls, thinking.
    pub content: Vec<ContentPart>,
    pub stop_reason: Option<StopReason>,
    /// The stop sequence that ended the answer, where the upstream says which.
    pub stop_sequence: Option<String>,
    pub usage: Usage,
    /// Unix seconds when the upstream created the answer.
    pub created: i64,
}

impl ChatResponse {
    /// The concatenated text of the answer.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|part| match part {
                ContentPart::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A natural end of turn.
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    /// The upstream filtered or refused the content.
    ContentFilter,
    /// The upstream paused a long-running turn (Anthropic `pause_turn`).
    PauseTurn,
}
