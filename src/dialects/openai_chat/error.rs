//! OpenAI's error shape: rendering the gateway's errors and reading upstreams' ones.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::canonical::{ApiError, ErrorCategory};

/// `{"error":{"message","type","param","code"}}`, as OpenAI's API and SDKs expect.
pub fn error_body(err: &ApiError) -> Value {
    let kind = match err.category {
        ErrorCategory::InvalidRequest | ErrorCategory::NotFound | ErrorCategory::RequestTooLarge => "invalid_request_error",
        ErrorCategory::Authentication => "authentication_error",
        ErrorCategory::PermissionDenied => "permission_error",
        ErrorCategory::RateLimited => "rate_limit_error",
        ErrorCategory::Overloaded => "service_unavailable_error",
        ErrorCategory::Upstream => "upstream_error",
        ErrorCategory::Timeout => "timeout_error",
        ErrorCategory::Internal => "server_error",
    };
    json!({"error": {"message": err.message, "type": kind, "param": err.param, "code": err.code}})
}

/// The parts of an upstream's OpenAI-shaped error body the gateway uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpstreamErrorBody {
    pub message: Option<String>,
    pub kind: Option<String>,
    pub code: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: Inner,
}

#[derive(Deserialize)]
struct Inner {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<Value>,
}

/// Reads an upstream error body; servers that are only "compatible" vary, so anything
/// unreadable yields an empty result rather than an error.
pub fn parse_error_body(body: &[u8]) -> UpstreamErrorBody {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error }) => UpstreamErrorBody {
            message: error.message,
            kind: error.kind,
            code: error.code.map(|c| match c {
                Value::String(s) => s,
                other => other.to_string(),
            }),
        },
        Err(_) => UpstreamErrorBody::default(),
    }
}
