//! A dialect-neutral description of an error a client must see. The gateway decides
//! the status and category once; each dialect renders it in its own error shape.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    InvalidRequest,
    Authentication,
    PermissionDenied,
    NotFound,
    RequestTooLarge,
    RateLimited,
    Overloaded,
    /// Every upstream failed, or one failed mid-stream.
    Upstream,
    Timeout,
    Internal,
}

/// An error ready to be rendered for a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub status: u16,
    pub category: ErrorCategory,
    pub message: String,
    /// The request field at fault, when there is one (OpenAI's `param`).
    pub param: Option<String>,
    /// A stable machine-readable code (OpenAI's `code`).
    pub code: Option<String>,
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: u16, category: ErrorCategory, message: impl Into<String>) -> Self {
        ApiError { status, category, message: message.into(), param: None, code: None, retry_after: None }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}
