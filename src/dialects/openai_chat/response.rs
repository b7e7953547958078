//! OpenAI chat completions to and from the canonical [`ChatResponse`].

use super::summary::{scan_passthrough_summary, PassthroughSummary};
use super::wire::*;
use crate::canonical::*;

/// Reads from an answer that is passed through unchanged only what the gateway itself
/// needs: who answered and what it consumed. The rest is checked to be JSON and skipped
/// without being built, so passthrough costs little more than the bytes it copies.
///
/// The hand-written scanner in `summary.rs` reads the usual answer; whatever it is not
/// sure of goes to serde, so results and error messages are serde's either way.
pub fn decode_passthrough_response(body: &[u8]) -> Result<ChatResponse, String> {
    let summary = match scan_passthrough_summary(body) {
        Some(summary) => summary,
        None => read_passthrough_summary_with_serde(body)?,
    };
    Ok(passthrough_response(summary))
}

/// [`decode_passthrough_response`] without its fast path, for `examples/summary_cost.rs`
/// to compare the two.
#[doc(hidden)]
pub fn decode_passthrough_response_serde_only(body: &[u8]) -> Result<ChatResponse, String> {
    read_passthrough_summary_with_serde(body).map(passthrough_response)
}

/// The reading the scanner must agree with wherever it answers.
pub(super) fn read_passthrough_summary_with_serde(body: &[u8]) -> Result<PassthroughSummary, String> {
    #[derive(serde::Deserialize)]
    struct Summary {
        #[serde(default)]
        id: String,
        model: String,
        #[serde(default)]
        created: i64,
        choices: Vec<serde::de::IgnoredAny>,
        #[serde(default)]
        usage: Option<OpenAiUsage>,
    }
    let summary: Summary = crate::dialects::json::from_bytes(body).map_err(|e| e.to_string())?;
    if summary.choices.is_empty() {
        return Err("the answer has no choices".to_owned());
    }
    Ok(PassthroughSummary { id: summary.id, model: summary.model, created: summary.created, usage: summary.usage })
}

fn passthrough_response(summary: PassthroughSummary) -> ChatResponse {
    ChatResponse {
        id: summary.id,
        model: summary.model,
        content: Vec::new(),
        stop_reason: None,
        stop_sequence: None,
        usage: summary.usage.map(usage_from_wire).unwrap_or_default(),
        created: summary.created,
    }
}

/// Converts an upstream's answer. Only the first choice is read: the canonical answer
/// has one (a client asking for `n > 1` is served by passthrough, which keeps them all).
pub fn decode_response(wire: OpenAiChatResponse) -> Result<ChatResponse, String> {
    let usage = wire.usage.map(usage_from_wire).unwrap_or_default();
    let choice = wire.choices.into_iter().next().ok_or("the answer has no choices")?;
    let mut content = Vec::new();
    let message = choice.message;
    if let Some(reasoning) = message.reasoning_content.filter(|r| !r.is_empty()) {
        content.push(ContentPart::Thinking { text: reasoning, signature: None });
    }
    if let Some(text) = message.content.filter(|t| !t.is_empty()) {
        content.push(ContentPart::Text { text });
    }
    if let Some(refusal) = message.refusal.filter(|t| !t.is_empty()) {
        content.push(ContentPart::Text { text: refusal });
    }
    for call in message.tool_calls.unwrap_or_default() {
        let input = serde_json::from_str(&call.function.arguments).unwrap_or(serde_json::Value::String(call.function.arguments));
        content.push(ContentPart::ToolUse { id: call.id, name: call.function.name, input });
    }
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        content,
        stop_reason: choice.finish_reason.as_deref().map(stop_reason),
        stop_sequence: None,
        usage,
        created: wire.created,
    })
}

/// Encodes a canonical answer as an OpenAI chat completion.
pub fn encode_response(response: &ChatResponse) -> OpenAiChatResponse {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for part in &response.content {
        match part {
            ContentPart::Text { text: t } => text.push_str(t),
            ContentPart::Thinking { text: t, .. } => reasoning.push_str(t),
            ContentPart::ToolUse { id, name, input } => tool_calls.push(OpenAiToolCall {
                id: id.clone(),
                kind: "function".to_owned(),
                function: OpenAiFunctionCall {
                    name: name.clone(),
                    arguments: match input {
                        serde_json::Value::String(raw) => raw.clone(),
                        other => other.to_string(),
                    },
                },
            }),
            // Nothing else can appear in an assistant answer the chat API can show.
            ContentPart::Image { .. }
            | ContentPart::Document { .. }
            | ContentPart::ToolResult { .. }
            | ContentPart::RedactedThinking { .. } => {}
        }
    }
    OpenAiChatResponse {
        id: if response.id.is_empty() { "chatcmpl-switchyard".to_owned() } else { response.id.clone() },
        object: "chat.completion".to_owned(),
        created: response.created,
        model: response.model.clone(),
        choices: vec![OpenAiChoice {
            index: 0,
            message: OpenAiResponseMessage {
                role: "assistant".to_owned(),
                content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
                refusal: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
            },
            logprobs: None,
            finish_reason: Some(finish_reason(response.stop_reason).to_owned()),
        }],
        usage: Some(usage_to_wire(&response.usage)),
        system_fingerprint: None,
    }
}

pub fn stop_reason(finish_reason: &str) -> StopReason {
    match finish_reason {
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

pub fn finish_reason(stop: Option<StopReason>) -> &'static str {
    match stop {
        None | Some(StopReason::EndTurn) | Some(StopReason::StopSequence) | Some(StopReason::PauseTurn) => "stop",
        Some(StopReason::MaxTokens) => "length",
        Some(StopReason::ToolUse) => "tool_calls",
        Some(StopReason::ContentFilter) => "content_filter",
    }
}

/// OpenAI's `prompt_tokens` includes cached tokens; canonical input does not.
pub(super) fn usage_from_wire(u: OpenAiUsage) -> Usage {
    let cached = u.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0).min(u.prompt_tokens);
    Usage {
        input_tokens: u.prompt_tokens - cached,
        output_tokens: u.completion_tokens,
        cache_read_tokens: cached,
        cache_write_tokens: 0,
        reasoning_tokens: u.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
    }
}

pub(super) fn usage_to_wire(u: &Usage) -> OpenAiUsage {
    OpenAiUsage {
        prompt_tokens: u.prompt_tokens(),
        completion_tokens: u.output_tokens,
        total_tokens: u.total_tokens(),
        prompt_tokens_details: Some(OpenAiPromptTokensDetails { cached_tokens: Some(u.cache_read_tokens) }),
        completion_tokens_details: Some(OpenAiCompletionTokensDetails { reasoning_tokens: Some(u.reasoning_tokens) }),
    }
}
