//! Converse answers to and from the canonical [`ChatResponse`].
//!
//! A Converse answer carries no id, model or timestamp: the caller supplies them (the
//! provider uses the `x-amzn-requestid` header and the target's model id).

use super::wire::*;
use crate::canonical::*;

/// What a Converse answer lacks and the caller knows.
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext<'a> {
    pub id: &'a str,
    pub model: &'a str,
    /// Unix seconds.
    pub created: i64,
}

/// Converts an upstream's answer. Block kinds an answer cannot meaningfully carry to a
/// client (cache points, citations and other kinds the gateway does not model) are skipped.
pub fn decode_response(wire: ConverseResponse, context: ResponseContext<'_>) -> ChatResponse {
    let content = wire.output.message.content.into_iter().filter_map(answer_part).collect();
    ChatResponse {
        id: context.id.to_owned(),
        model: context.model.to_owned(),
        content,
        stop_reason: Some(stop_reason(&wire.stop_reason)),
        // Converse does not say which stop sequence matched.
        stop_sequence: None,
        usage: wire.usage.map(usage_from_wire).unwrap_or_default(),
        created: context.created,
    }
}

fn answer_part(block: ConverseBlock) -> Option<ContentPart> {
    match block {
        ConverseBlock::Known(ConverseContentBlock::Text(text)) => Some(ContentPart::Text { text }),
        ConverseBlock::Known(ConverseContentBlock::ToolUse(call)) => {
            Some(ContentPart::ToolUse { id: call.tool_use_id, name: call.name, input: call.input })
        }
        ConverseBlock::Known(ConverseContentBlock::ReasoningContent(ConverseReasoningBlock::ReasoningText(r))) => {
            Some(ContentPart::Thinking { text: r.text, signature: r.signature })
        }
        ConverseBlock::Known(ConverseContentBlock::ReasoningContent(ConverseReasoningBlock::RedactedContent(data))) => {
            Some(ContentPart::RedactedThinking { data })
        }
        ConverseBlock::Known(
            ConverseContentBlock::Image(_)
            | ConverseContentBlock::Document(_)
            | ConverseContentBlock::ToolResult(_)
            | ConverseContentBlock::CachePoint(_),
        )
        | ConverseBlock::Unknown(_) => None,
    }
}

/// Encodes a canonical answer as a Converse response body.
pub fn encode_response(response: &ChatResponse) -> ConverseResponse {
    let content = response
        .content
        .iter()
        .filter_map(|part| match part {
            ContentPart::Text { text } => Some(ConverseContentBlock::Text(text.clone())),
            ContentPart::ToolUse { id, name, input } => Some(ConverseContentBlock::ToolUse(ConverseToolUseBlock {
                tool_use_id: id.clone(),
                name: name.clone(),
                input: input.clone(),
            })),
            ContentPart::Thinking { text, signature } => Some(ConverseContentBlock::ReasoningContent(
                ConverseReasoningBlock::ReasoningText(ConverseReasoningText { text: text.clone(), signature: signature.clone() }),
            )),
            ContentPart::RedactedThinking { data } => {
                Some(ConverseContentBlock::ReasoningContent(ConverseReasoningBlock::RedactedContent(data.clone())))
            }
            // Nothing else appears in an assistant answer.
            ContentPart::Image { .. } | ContentPart::Document { .. } | ContentPart::ToolResult { .. } => None,
        })
        .map(ConverseBlock::Known)
        .collect();
    ConverseResponse {
        output: ConverseOutput { message: ConverseMessage { role: ConverseRole::Assistant, content } },
        stop_reason: converse_stop_reason(response.stop_reason).to_owned(),
        usage: Some(usage_to_wire(&response.usage)),
        metrics: None,
        additional_model_response_fields: None,
    }
}

/// Converse stop reasons
/// (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_MessageStopEvent.html>).
/// Guardrail interventions and content filtering both end as a content filter; a reason
/// added after this was written reads as a natural end.
pub fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "tool_use" => StopReason::ToolUse,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "guardrail_intervened" | "content_filtered" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

pub fn converse_stop_reason(stop: Option<StopReason>) -> &'static str {
    match stop {
        None | Some(StopReason::EndTurn) | Some(StopReason::PauseTurn) => "end_turn",
        Some(StopReason::ToolUse) => "tool_use",
        Some(StopReason::MaxTokens) => "max_tokens",
        Some(StopReason::StopSequence) => "stop_sequence",
        Some(StopReason::ContentFilter) => "content_filtered",
    }
}

/// Converse's `inputTokens` already excludes cache reads and writes, as canonical
/// input does, so the figures map one to one.
pub fn usage_from_wire(u: ConverseUsage) -> Usage {
    Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cache_read_tokens: u.cache_read_input_tokens.unwrap_or(0),
        cache_write_tokens: u.cache_write_input_tokens.unwrap_or(0),
        // Converse does not break reasoning out of the output count.
        reasoning_tokens: 0,
    }
}

pub fn usage_to_wire(u: &Usage) -> ConverseUsage {
    ConverseUsage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        total_tokens: u.total_tokens(),
        cache_read_input_tokens: (u.cache_read_tokens > 0).then_some(u.cache_read_tokens),
        cache_write_input_tokens: (u.cache_write_tokens > 0).then_some(u.cache_write_tokens),
    }
}
