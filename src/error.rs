//! The gateway's one error type for what a client gets back, and the mapping of each
//! variant to a status and category. Dialects render the result in their own shape.
//! Errors are logged once, by the HTTP layer, and never carry a secret: upstream
//! messages are scrubbed by the adapters before they get here.

use std::time::Duration;

use crate::canonical::{ApiError, ErrorCategory};
use crate::providers::{ErrorKind, UpstreamError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// The request could not be decoded or is invalid (400).
    #[error("bad request: {}", .0.message)]
    BadRequest(ApiError),
    /// The client's key is missing or unknown (401).
    #[error("invalid client key")]
    Unauthorized,
    /// `model` names no route (404).
    #[error("no route named {route}")]
    RouteNotFound { route: String, known: Vec<String> },
    /// The body exceeds `server.max_body_bytes` (413).
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// An upstream rejected the request as the client's fault; its status and reason
    /// are passed on (400, 413, 422).
    #[error("upstream rejected the request: {0}")]
    UpstreamRejected(UpstreamError),
    /// Every attempt failed (502; 429 or 503 when all were rate-limited or overloaded).
    #[error("all targets of route {route} failed")]
    AllTargetsFailed { route: String, summary: Vec<String>, kinds: Vec<ErrorKind>, retry_after: Option<Duration> },
    /// No target of the route could take an attempt: circuits open, cooling down (503).
    #[error("no target of route {route} is available")]
    NoTargetAvailable { route: String, reasons: Vec<String>, retry_after: Option<Duration> },
    /// The route's concurrency limit was reached and no slot came free in time (429).
    #[error("route {route} is at its concurrency limit")]
    RouteSaturated { route: String, limit: u32 },
    /// The gateway is shutting down (503).
    #[error("shutting down")]
    ShuttingDown,
}

impl GatewayError {
    pub fn to_api_error(&self) -> ApiError {
        match self {
            GatewayError::BadRequest(err) => err.clone(),
            GatewayError::Unauthorized => ApiError::new(
                401,
                ErrorCategory::Authentication,
                "Missing or invalid API key: send a Switchyard client key as 'Authorization: Bearer <key>'.",
            )
            .with_code("invalid_api_key"),
            GatewayError::RouteNotFound { route, known } => ApiError::new(
                404,
                ErrorCategory::NotFound,
                format!("The model '{route}' is not a route of this gateway. Available routes: {}.", known.join(", ")),
            )
            .with_param("model")
            .with_code("model_not_found"),
            GatewayError::BodyTooLarge { limit } => ApiError::new(
                413,
                ErrorCategory::RequestTooLarge,
                format!("The request body is larger than the gateway's limit of {limit} bytes."),
            )
            .with_code("request_too_large"),
            GatewayError::UpstreamRejected(err) => {
                let status = err.status.filter(|s| (400..500).contains(s) && *s != 429).unwrap_or(400);
                let mut api = ApiError::new(status, ErrorCategory::InvalidRequest, err.message.clone());
                // Kinds with a gateway-wide meaning get one code whatever the upstream called them.
                api.code = Some(match err.kind {
                    ErrorKind::ContextTooLong => "context_length_exceeded".to_owned(),
                    ErrorKind::Unsupported => "unsupported_feature".to_owned(),
                    _ => err.code.clone().unwrap_or_else(|| err.kind.as_str().to_owned()),
                });
                api
            }
            GatewayError::AllTargetsFailed { route, summary, kinds, retry_after } => {
                let all_rate_limited = !kinds.is_empty() && kinds.iter().all(|k| *k == ErrorKind::RateLimited);
                let (status, category) = if all_rate_limited {
                    (429, ErrorCategory::RateLimited)
                } else if !kinds.is_empty()
                    && kinds.iter().all(|k| matches!(k, ErrorKind::RateLimited | ErrorKind::Overloaded | ErrorKind::Saturated | ErrorKind::Unavailable))
                {
                    (503, ErrorCategory::Overloaded)
                } else {
                    (502, ErrorCategory::Upstream)
                };
                let mut api = ApiError::new(
                    status,
                    category,
                    format!("Every target of route '{route}' failed ({} attempts): {}", kinds.len(), summary.join("; ")),
                )
                .with_code("all_targets_failed");
                // A 429 always says when to come back; upstreams that gave no hint
                // (Bedrock's throttling has none) get a conservative second.
                api.retry_after = retry_after.or(all_rate_limited.then_some(Duration::from_secs(1)));
                api
            }
            GatewayError::NoTargetAvailable { route, reasons, retry_after } => {
                let mut api = ApiError::new(
                    503,
                    ErrorCategory::Overloaded,
                    format!("No target of route '{route}' is available right now: {}.", reasons.join("; ")),
                )
                .with_code("no_target_available");
                api.retry_after = *retry_after;
                api
            }
            GatewayError::RouteSaturated { route, limit } => {
                let mut api = ApiError::new(
                    429,
                    ErrorCategory::RateLimited,
                    format!("Route '{route}' is serving its limit of {limit} concurrent requests; retry shortly."),
                )
                .with_code("route_concurrency_limit");
                api.retry_after = Some(Duration::from_secs(1));
                api
            }
            GatewayError::ShuttingDown => {
                ApiError::new(503, ErrorCategory::Overloaded, "The gateway is shutting down; retry on another instance.")
                    .with_code("shutting_down")
            }
        }
    }
}
