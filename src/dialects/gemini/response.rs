//! Gemini answers to and from the canonical [`ChatResponse`], usage accounting, and the
//! `google.rpc.Status` error shape.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::request::{media_part, with_signatures, SKIP_THOUGHT_SIGNATURE};
use super::wire::*;
use crate::canonical::*;

/// The `functionResponse.response` keys Google's SDKs use for a result and a failure
/// (<https://ai.google.dev/api/caching#FunctionResponse>).
pub(super) const GEMINI_OUTPUT_KEY: &str = "output";
pub(super) const GEMINI_ERROR_KEY: &str = "error";

/// What a Gemini answer may lack and the caller knows.
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext<'a> {
    /// The target's model id, used when the answer has no `modelVersion`.
    pub model: &'a str,
    /// Unix seconds, used when the answer has no `createTime` (the Gemini API never does).
    pub created: i64,
}

/// Why an answer (or a stream chunk) cannot become canonical content.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerError {
    /// The prompt (`promptFeedback.blockReason`) or the answer (a safety finish reason)
    /// was blocked on policy grounds. `reason` is Gemini's word for it.
    Blocked { reason: String, message: Option<String> },
    /// The upstream sent a `google.rpc.Status` instead of an answer (inside a 200 stream).
    Upstream(GeminiStatus),
    /// Not a `GenerateContentResponse`, or one with no candidate.
    Malformed(String),
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::Blocked { reason, message: Some(message) } => write!(f, "blocked ({reason}): {message}"),
            AnswerError::Blocked { reason, message: None } => write!(f, "blocked ({reason})"),
            AnswerError::Upstream(status) => write!(
                f,
                "{}: {}",
                status.status.as_deref().unwrap_or("error"),
                status.message.as_deref().unwrap_or("the upstream ended the answer with an error")
            ),
            AnswerError::Malformed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for AnswerError {}

/// Converts an upstream's answer. Only the first candidate is read (the gateway never
/// asks for more). Parts the gateway does not model (code execution, …) are skipped.
pub fn decode_response(wire: GeminiResponse, context: ResponseContext<'_>) -> Result<ChatResponse, AnswerError> {
    if let Some(blocked) = prompt_blocked(&wire) {
        return Err(blocked);
    }
    let id = wire.response_id.unwrap_or_default();
    let candidate = wire.candidates.into_iter().next().ok_or_else(|| AnswerError::Malformed("the answer has no candidates".to_owned()))?;
    if let Some(reason) = candidate.finish_reason.as_deref().filter(|r| is_policy_block(r)) {
        return Err(AnswerError::Blocked { reason: reason.to_owned(), message: candidate.finish_message });
    }
    let mut content = Vec::new();
    let mut calls = 0;
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        answer_part(part, &id, &mut calls, &mut content);
    }
    let created = wire
        .create_time
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map_or(context.created, |t| t.timestamp());
    Ok(ChatResponse {
        model: wire.model_version.unwrap_or_else(|| context.model.to_owned()),
        stop_reason: candidate.finish_reason.as_deref().map(|r| stop_reason(r, calls > 0)),
        // Gemini ends on a stop sequence with plain `STOP` and does not say which.
        stop_sequence: None,
        usage: wire.usage_metadata.as_ref().map(usage_from_wire).unwrap_or_default(),
        id,
        content,
        created,
    })
}

pub(super) fn prompt_blocked(wire: &GeminiResponse) -> Option<AnswerError> {
    let feedback = wire.prompt_feedback.as_ref()?;
    let reason = feedback.block_reason.as_ref().filter(|r| r.as_str() != "BLOCK_REASON_UNSPECIFIED")?;
    Some(AnswerError::Blocked { reason: reason.clone(), message: feedback.block_reason_message.clone() })
}

/// One answer part as canonical content (see the module docs for signatures).
fn answer_part(part: GeminiPart, response_id: &str, calls: &mut usize, out: &mut Vec<ContentPart>) {
    let signature = part.thought_signature.filter(|s| s != SKIP_THOUGHT_SIGNATURE);
    if part.thought == Some(true) {
        out.push(ContentPart::Thinking { text: part.text.unwrap_or_default(), signature });
        return;
    }
    if let Some(signature) = signature {
        out.push(ContentPart::Thinking { text: String::new(), signature: Some(signature) });
    }
    if let Some(text) = part.text.filter(|t| !t.is_empty()) {
        out.push(ContentPart::Text { text });
    } else if let Some(call) = part.function_call {
        let id = tool_call_id(call.id, response_id, *calls);
        *calls += 1;
        out.push(ContentPart::ToolUse { id, name: call.name, input: call.args.unwrap_or_else(|| Value::Object(Map::new())) });
    } else if let Some(blob) = part.inline_data {
        out.push(media_part(&blob.mime_type, MediaSource::Base64 { media_type: blob.mime_type.clone(), data: blob.data }));
    }
}

/// The id of an answer's `n`th tool call (from 0): Gemini's own when it sent one,
/// otherwise `call_<responseId>_<n>` (`call_<n>` without a response id). The same answer
/// gets the same ids streamed or not; the response id keeps calls of different turns
/// apart, which clients and other vendors expect when the conversation comes back.
pub fn tool_call_id(given: Option<String>, response_id: &str, n: usize) -> String {
    if let Some(id) = given.filter(|id| !id.is_empty()) {
        return id;
    }
    let scope: String = response_id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).collect();
    if scope.is_empty() {
        format!("call_{n}")
    } else {
        format!("call_{scope}_{n}")
    }
}

/// Encodes a canonical answer as a Gemini response body.
pub fn encode_response(response: &ChatResponse) -> GeminiResponse {
    let parts = with_signatures(&response.content, |part| {
        Ok(match part {
            ContentPart::Text { text } if !text.is_empty() => Some(GeminiPart::text(text.clone())),
            ContentPart::ToolUse { id, name, input } => {
                let args = match input {
                    Value::String(raw) => serde_json::from_str(raw).unwrap_or_else(|_| input.clone()),
                    other => other.clone(),
                };
                let call = GeminiFunctionCall { id: Some(id.clone()), name: name.clone(), args: Some(args) };
                Some(GeminiPart { function_call: Some(call), ..GeminiPart::default() })
            }
            ContentPart::Image { source: MediaSource::Base64 { media_type, data }, .. } => {
                Some(GeminiPart { inline_data: Some(GeminiBlob { mime_type: media_type.clone(), data: data.clone() }), ..GeminiPart::default() })
            }
            // Nothing else appears in an assistant answer Gemini can show.
            _ => None,
        })
    })
    .unwrap_or_default();
    GeminiResponse {
        candidates: vec![GeminiCandidate {
            content: Some(GeminiContent { role: Some("model".to_owned()), parts }),
            finish_reason: Some(finish_reason(response.stop_reason).to_owned()),
            finish_message: None,
            index: Some(0),
        }],
        prompt_feedback: None,
        usage_metadata: Some(usage_to_wire(&response.usage)),
        model_version: Some(response.model.clone()),
        response_id: (!response.id.is_empty()).then(|| response.id.clone()),
        create_time: None,
    }
}

/// Gemini finish reasons
/// (<https://ai.google.dev/api/generate-content#FinishReason>). A function call ends
/// with `STOP`, so `called_tools` tells a tool turn from a natural end. Reasons added
/// after this was written read as a natural end.
pub fn stop_reason(finish_reason: &str, called_tools: bool) -> StopReason {
    match finish_reason {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "RECITATION" | "LANGUAGE" => StopReason::ContentFilter,
        reason if is_policy_block(reason) => StopReason::ContentFilter,
        _ if called_tools => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

/// Finish reasons that mean the answer was withheld on policy grounds: the adapter
/// reports them as content-policy errors, not as answers.
pub fn is_policy_block(finish_reason: &str) -> bool {
    matches!(
        finish_reason,
        "SAFETY" | "PROHIBITED_CONTENT" | "BLOCKLIST" | "SPII" | "IMAGE_SAFETY" | "IMAGE_PROHIBITED_CONTENT" | "MODEL_ARMOR"
    )
}

pub fn finish_reason(stop: Option<StopReason>) -> &'static str {
    match stop {
        None | Some(StopReason::EndTurn) | Some(StopReason::StopSequence) | Some(StopReason::ToolUse) | Some(StopReason::PauseTurn) => "STOP",
        Some(StopReason::MaxTokens) => "MAX_TOKENS",
        Some(StopReason::ContentFilter) => "SAFETY",
    }
}

/// Gemini counts differently from the canonical [`Usage`] in two ways:
/// - `promptTokenCount` *includes* the cached tokens (`cachedContentTokenCount`): "When
///   cached_content is set, this is still the total effective prompt size meaning this
///   includes the number of tokens in the cached content"
///   (<https://ai.google.dev/api/generate-content#UsageMetadata>). Canonical input
///   excludes them, so they are subtracted.
/// - `thoughtsTokenCount` is *not* part of `candidatesTokenCount`: the total "is the sum
///   of prompt_token_count, candidates_token_count, tool_use_prompt_token_count, and
///   thoughts_token_count"
///   (<https://googleapis.github.io/js-genai/release_docs/classes/types.GenerateContentResponseUsageMetadata.html>),
///   and thinking is billed at the output price
///   (<https://ai.google.dev/gemini-api/docs/pricing>: "Output price (including thinking
///   tokens)"). Canonical output includes reasoning, so thoughts are added.
///
/// `toolUsePromptTokenCount` (results of Google-run tools such as search, fed back to
/// the model) is input the model read, and is counted as input.
pub fn usage_from_wire(u: &GeminiUsageMetadata) -> Usage {
    let prompt = u.prompt_token_count.unwrap_or(0);
    let cached = u.cached_content_token_count.unwrap_or(0).min(prompt);
    let thoughts = u.thoughts_token_count.unwrap_or(0);
    Usage {
        input_tokens: prompt - cached + u.tool_use_prompt_token_count.unwrap_or(0),
        output_tokens: u.candidates_token_count.unwrap_or(0) + thoughts,
        cache_read_tokens: cached,
        // Explicit caches are written by a separate call, never by generateContent.
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
    }
}

pub fn usage_to_wire(u: &Usage) -> GeminiUsageMetadata {
    let some = |n: u64| (n > 0).then_some(n);
    GeminiUsageMetadata {
        prompt_token_count: Some(u.prompt_tokens()),
        candidates_token_count: Some(u.output_tokens.saturating_sub(u.reasoning_tokens)),
        cached_content_token_count: some(u.cache_read_tokens),
        thoughts_token_count: some(u.reasoning_tokens),
        tool_use_prompt_token_count: None,
        total_token_count: Some(u.prompt_tokens() + u.output_tokens.max(u.reasoning_tokens)),
    }
}

// ---- errors ----

/// Reads a `google.rpc.Status` error body; `None` when the body is not one.
pub fn parse_error_body(body: &[u8]) -> Option<GeminiStatus> {
    serde_json::from_slice::<GeminiErrorBody>(body).ok().map(|b| b.error)
}

/// The `retryDelay` of a `google.rpc.RetryInfo` detail (a protobuf Duration in JSON:
/// `"37s"`, `"0.5s"`), which Gemini sends with quota errors.
pub fn retry_delay(status: &GeminiStatus) -> Option<Duration> {
    let delay = detail(status, "google.rpc.RetryInfo")?.get("retryDelay")?.as_str()?;
    let seconds: f64 = delay.trim().strip_suffix('s')?.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// The `reason` of a `google.rpc.ErrorInfo` detail (`API_KEY_INVALID`,
/// `SERVICE_DISABLED`, …): a stable, non-secret word for what went wrong.
pub fn error_reason(status: &GeminiStatus) -> Option<String> {
    detail(status, "google.rpc.ErrorInfo")?.get("reason")?.as_str().map(str::to_owned)
}

fn detail<'a>(status: &'a GeminiStatus, type_name: &str) -> Option<&'a Value> {
    status.details.iter().find(|d| d.get("@type").and_then(Value::as_str).is_some_and(|t| t.ends_with(type_name)))
}

/// The gateway's error as a `google.rpc.Status` body, as Google's SDKs read it.
pub fn error_body(err: &ApiError) -> Value {
    let status = match err.category {
        ErrorCategory::InvalidRequest | ErrorCategory::RequestTooLarge => "INVALID_ARGUMENT",
        ErrorCategory::Authentication => "UNAUTHENTICATED",
        ErrorCategory::PermissionDenied => "PERMISSION_DENIED",
        ErrorCategory::NotFound => "NOT_FOUND",
        ErrorCategory::RateLimited => "RESOURCE_EXHAUSTED",
        ErrorCategory::Overloaded | ErrorCategory::Upstream => "UNAVAILABLE",
        ErrorCategory::Timeout => "DEADLINE_EXCEEDED",
        ErrorCategory::Internal => "INTERNAL",
    };
    let mut details = Vec::new();
    if let Some(after) = err.retry_after {
        details.push(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{}s", after.as_secs_f64())}));
    }
    json!({"error": {"code": err.status, "message": err.message, "status": status, "details": details}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_tokens_are_taken_out_of_the_prompt_and_thoughts_added_to_the_output() {
        let wire = GeminiUsageMetadata {
            prompt_token_count: Some(1000),
            candidates_token_count: Some(50),
            cached_content_token_count: Some(800),
            thoughts_token_count: Some(200),
            tool_use_prompt_token_count: None,
            total_token_count: Some(1250),
        };
        let usage = usage_from_wire(&wire);
        assert_eq!(usage, Usage { input_tokens: 200, output_tokens: 250, cache_read_tokens: 800, cache_write_tokens: 0, reasoning_tokens: 200 });
        assert_eq!(usage.total_tokens(), 1250, "the canonical total is Gemini's total");
        assert_eq!(usage_from_wire(&usage_to_wire(&usage)), usage);
    }

    #[test]
    fn retry_delays_are_protobuf_durations() {
        let status = |delay: &str| GeminiStatus {
            details: vec![json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})],
            ..GeminiStatus::default()
        };
        assert_eq!(retry_delay(&status("37s")), Some(Duration::from_secs(37)));
        assert_eq!(retry_delay(&status("1.500s")), Some(Duration::from_millis(1500)));
        assert_eq!(retry_delay(&status("soon")), None);
    }

    #[test]
    fn synthesized_tool_call_ids_are_scoped_by_the_response_id() {
        assert_eq!(tool_call_id(None, "abc-_/+=", 2), "call_abc-__2");
        assert_eq!(tool_call_id(None, "", 0), "call_0");
        assert_eq!(tool_call_id(Some("given".to_owned()), "abc", 0), "given");
    }
}
