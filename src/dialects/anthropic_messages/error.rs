//! Anthropic's error shape: rendering the gateway's errors, reading upstreams' ones, and
//! naming what an upstream error means so the provider adapter can classify it.
//!
//! Error types and statuses are from <https://platform.claude.com/docs/en/api/errors>
//! and the SDK's `types/shared/error_object.py`. This module must not depend on
//! `providers`: [`ErrorClass`] is the dialect's own vocabulary, which the adapter maps
//! onto its error kinds.

use serde_json::{json, Value};

use super::wire_response::{AnthropicErrorObject, AnthropicErrorResponse};
use crate::canonical::{ApiError, ErrorCategory};

/// `{"type": "error", "error": {"type", "message"}}`, which Anthropic's SDKs raise as
/// the matching exception. The status is the caller's; Anthropic's own statuses for
/// each type are in [`status_for_error_type`].
pub fn error_body(err: &ApiError) -> Value {
    json!({"type": "error", "error": {"type": error_type(err.category), "message": err.message}})
}

/// The `error.type` Anthropic uses for a category.
pub fn error_type(category: ErrorCategory) -> &'static str {
    match category {
        ErrorCategory::InvalidRequest => "invalid_request_error",
        ErrorCategory::Authentication => "authentication_error",
        ErrorCategory::PermissionDenied => "permission_error",
        ErrorCategory::NotFound => "not_found_error",
        ErrorCategory::RequestTooLarge => "request_too_large",
        ErrorCategory::RateLimited => "rate_limit_error",
        ErrorCategory::Overloaded => "overloaded_error",
        ErrorCategory::Timeout => "timeout_error",
        // Anthropic has one type for "something broke on our side".
        ErrorCategory::Upstream | ErrorCategory::Internal => "api_error",
    }
}

/// The HTTP status Anthropic pairs with an error type; used to classify an `error`
/// event that arrives inside a stream after a 200. Unknown types count as 500.
pub fn status_for_error_type(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "conflict_error" => 409,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// The parts of an upstream's error body the gateway uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpstreamErrorBody {
    /// `error.type`, e.g. `overloaded_error`.
    pub kind: Option<String>,
    pub message: Option<String>,
    /// `error.details.error_code`, e.g. `enforced_spend_limit_reached` on a 429.
    pub code: Option<String>,
    pub request_id: Option<String>,
}

/// Reads an upstream error body. Proxies in front of the API (Cloudflare's 413, a
/// load balancer's 502) answer in other shapes, so anything unreadable yields an
/// empty result rather than an error.
pub fn parse_error_body(body: &[u8]) -> UpstreamErrorBody {
    match serde_json::from_slice::<AnthropicErrorResponse>(body) {
        Ok(response) => error_object_body(response.error, response.request_id),
        Err(_) => UpstreamErrorBody::default(),
    }
}

/// The parts of an error object the gateway uses, from a body or a stream's `error` event.
pub(super) fn error_object_body(error: AnthropicErrorObject, request_id: Option<String>) -> UpstreamErrorBody {
    UpstreamErrorBody {
        code: error.details.as_ref().and_then(|d| d.get("error_code")).and_then(Value::as_str).map(str::to_owned),
        kind: Some(error.kind).filter(|k| !k.is_empty()),
        message: Some(error.message).filter(|m| !m.is_empty()),
        request_id,
    }
}

/// What an Anthropic error means for routing. The names match the gateway's error
/// kinds where one exists (`ErrorKind::as_str`), so the adapter's mapping is obvious.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 400/413/422 and other 4xx: the request itself is at fault.
    InvalidRequest,
    /// The prompt does not fit the model's context window (a 400 that says so).
    ContextTooLong,
    /// 401/403: the gateway's credentials.
    Auth,
    /// 402, or a 429 for a spend limit: the account cannot pay. Retrying the same
    /// target will not help until someone acts; another target may.
    Billing,
    /// 404: model not found at this provider.
    NotFound,
    /// 429: rate limited; honour `retry-after`.
    RateLimited,
    /// 529 (and 503): overloaded for everyone, safe to retry.
    Overloaded,
    /// 504 `timeout_error`.
    Timeout,
    /// 500 and other 5xx.
    ServerError,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::InvalidRequest => "invalid_request",
            ErrorClass::ContextTooLong => "context_too_long",
            ErrorClass::Auth => "upstream_auth",
            ErrorClass::Billing => "billing",
            ErrorClass::NotFound => "upstream_not_found",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::Timeout => "timeout",
            ErrorClass::ServerError => "upstream_5xx",
        }
    }
}

/// Classifies an upstream error from its status and body. For a stream's `error`
/// event, pass [`status_for_error_type`] of its type as the status.
///
/// Anthropic reports an over-long prompt as a plain 400 `invalid_request_error` whose
/// message starts "prompt is too long" (or, when `max_tokens` is what overflows,
/// "input length and `max_tokens` exceed context limit"), so the message is read.
pub fn classify(status: u16, body: &UpstreamErrorBody) -> ErrorClass {
    let kind = body.kind.as_deref().unwrap_or("");
    let message = body.message.as_deref().unwrap_or("").to_ascii_lowercase();
    let context_too_long = message.contains("prompt is too long") || message.contains("exceed context limit");
    match (status, kind) {
        (_, "overloaded_error") | (529 | 503, _) => ErrorClass::Overloaded,
        (_, "billing_error") | (402, _) => ErrorClass::Billing,
        (429, _) if body.code.as_deref() == Some("enforced_spend_limit_reached") => ErrorClass::Billing,
        (_, "rate_limit_error") | (429, _) => ErrorClass::RateLimited,
        (_, "timeout_error") | (504 | 408, _) => ErrorClass::Timeout,
        (400 | 413, _) if context_too_long => ErrorClass::ContextTooLong,
        (_, "authentication_error" | "permission_error") | (401 | 403, _) => ErrorClass::Auth,
        (_, "not_found_error") | (404, _) => ErrorClass::NotFound,
        (400..=499, _) | (_, "invalid_request_error" | "request_too_large") => ErrorClass::InvalidRequest,
        _ => ErrorClass::ServerError,
    }
}
