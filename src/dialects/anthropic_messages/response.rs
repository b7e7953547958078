//! Anthropic messages to and from the canonical [`ChatResponse`], and the stop reasons
//! and usage both the complete and the streamed answer share.

use super::content::part_from_block;
use super::wire::AnthropicBlock;
use super::wire_response::*;
use crate::canonical::*;

/// Reads from an answer that is passed through unchanged only who answered and what it
/// consumed; the content is checked to be JSON and skipped without being built.
pub fn decode_passthrough_response(body: &[u8]) -> Result<ChatResponse, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Summary {
        id: String,
        model: String,
        #[allow(dead_code)]
        content: serde::de::IgnoredAny,
        #[serde(default)]
        stop_reason: Option<String>,
        #[serde(default)]
        stop_sequence: Option<String>,
        #[serde(default)]
        usage: AnthropicUsage,
    }
    let summary: Summary = crate::dialects::json::from_bytes(body)?;
    Ok(ChatResponse {
        id: summary.id,
        model: summary.model,
        content: Vec::new(),
        stop_reason: summary.stop_reason.as_deref().map(stop_reason),
        stop_sequence: summary.stop_sequence,
        usage: usage_from_wire(&summary.usage),
        created: 0,
    })
}

/// Converts an upstream's answer. Blocks the canonical model cannot hold (server-tool
/// calls and results) are left out: their outcome reaches the answer as text.
///
/// Anthropic does not say when an answer was created, so `created` is 0; the caller
/// stamps the time it received the answer.
pub fn decode_response(wire: AnthropicResponse) -> ChatResponse {
    let content = wire
        .content
        .into_iter()
        .filter_map(|block| part_from_block("content", block).ok())
        .collect();
    ChatResponse {
        id: wire.id,
        model: wire.model,
        content,
        stop_reason: wire.stop_reason.as_deref().map(stop_reason),
        stop_sequence: wire.stop_sequence,
        usage: usage_from_wire(&wire.usage),
        created: 0,
    }
}

/// Encodes a canonical answer as an Anthropic message. An answer without an id gets a
/// fresh `msg_…` one, since SDKs expect one.
pub fn encode_response(response: &ChatResponse) -> AnthropicResponse {
    let content = response
        .content
        .iter()
        .filter_map(|part| match part {
            ContentPart::Text { text } => Some(AnthropicBlock::Text { text: text.clone(), citations: None, cache_control: None }),
            // An answer always shows its reasoning, even another vendor's unsigned one:
            // the client reads it, it is not sent back to Claude from here.
            ContentPart::Thinking { text, signature } => {
                Some(AnthropicBlock::Thinking { thinking: text.clone(), signature: signature.clone().unwrap_or_default() })
            }
            ContentPart::RedactedThinking { data } => Some(AnthropicBlock::RedactedThinking { data: data.clone() }),
            ContentPart::ToolUse { id, name, input } => {
                Some(AnthropicBlock::ToolUse { id: id.clone(), name: name.clone(), input: input.clone(), cache_control: None })
            }
            // Nothing else can appear in an assistant answer.
            ContentPart::Image { .. } | ContentPart::Document { .. } | ContentPart::ToolResult { .. } => None,
        })
        .collect();
    AnthropicResponse {
        id: if response.id.is_empty() { new_message_id() } else { response.id.clone() },
        kind: "message".to_owned(),
        role: "assistant".to_owned(),
        model: response.model.clone(),
        content,
        stop_reason: Some(stop_reason_name(response.stop_reason).to_owned()),
        stop_sequence: response.stop_sequence.clone(),
        usage: usage_to_wire(&response.usage),
    }
}

/// A fresh message id in Anthropic's `msg_` form.
pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// Anthropic's `stop_reason` in canonical terms. `refusal` is the content filter;
/// `model_context_window_exceeded` is running out of room, like `max_tokens`.
pub fn stop_reason(name: &str) -> StopReason {
    match name {
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "pause_turn" => StopReason::PauseTurn,
        "refusal" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

/// The `stop_reason` Anthropic clients expect; an unknown reason is a natural end.
pub fn stop_reason_name(stop: Option<StopReason>) -> &'static str {
    match stop {
        None | Some(StopReason::EndTurn) => "end_turn",
        Some(StopReason::MaxTokens) => "max_tokens",
        Some(StopReason::StopSequence) => "stop_sequence",
        Some(StopReason::ToolUse) => "tool_use",
        Some(StopReason::ContentFilter) => "refusal",
        Some(StopReason::PauseTurn) => "pause_turn",
    }
}

/// Anthropic's `input_tokens` already excludes cache reads and writes, exactly as the
/// canonical count does, so the figures map one to one.
pub fn usage_from_wire(u: &AnthropicUsage) -> Usage {
    Usage {
        input_tokens: u.input_tokens.unwrap_or(0),
        output_tokens: u.output_tokens,
        cache_read_tokens: u.cache_read_input_tokens.unwrap_or(0),
        cache_write_tokens: u.cache_creation_input_tokens.unwrap_or(0),
        reasoning_tokens: u.output_tokens_details.map_or(0, |d| d.thinking_tokens),
    }
}

pub fn usage_to_wire(u: &Usage) -> AnthropicUsage {
    AnthropicUsage {
        input_tokens: Some(u.input_tokens),
        cache_creation_input_tokens: Some(u.cache_write_tokens),
        cache_read_input_tokens: Some(u.cache_read_tokens),
        output_tokens: u.output_tokens,
        output_tokens_details: (u.reasoning_tokens > 0).then_some(AnthropicOutputTokensDetails { thinking_tokens: u.reasoning_tokens }),
    }
}
