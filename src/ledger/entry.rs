//! The ledger's rows as Rust values: one [`LedgerEntry`] per request, holding the
//! [`RequestRecord`] and every [`AttemptRecord`] made while serving it.
//!
//! These are plain data: the pipeline fills them in, the writer persists them, the
//! store reads them back. Nothing here knows about SQL or about how prices are found.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::canonical::Usage;

/// One request and every upstream attempt made for it: what the ledger records.
///
/// The ledger is append-only and keyed by `request.id`, so recording the same entry
/// twice (a retried batch) bills it once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub request: RequestRecord,
    pub attempts: Vec<AttemptRecord>,
}

/// What the client asked for and what it got, summed over all attempts.
///
/// Names that come from the configuration (route, target, provider, its kind, the
/// configured model) are shared (`Arc<str>`): every request repeats them, and the
/// gateway hands out one copy per configuration instead of allocating them per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// A uuid v7 string (hyphenated, lower case), made as the request arrives; the
    /// ledger's primary key. Reports by time rely on ids sorting by the time they
    /// were made (`store::lowest_id_since`).
    pub id: Arc<str>,
    pub started_at: DateTime<Utc>,
    pub route: Arc<str>,
    /// Id of the client key, never the secret ("anonymous" when auth is off).
    pub key_id: Arc<str>,
    /// Dialect name of the front door, e.g. "openai-chat".
    pub front_door: Arc<str>,
    pub stream: bool,
    /// Answering target "provider/model"; `None` if no attempt succeeded.
    pub target: Option<Arc<str>>,
    /// Configured provider name of the answering target.
    pub provider: Option<Arc<str>>,
    /// "openai", "azure-openai", "openai-compatible", "sim", ...
    pub provider_kind: Option<Arc<str>>,
    pub model: Option<Arc<str>>,
    /// Sum over all attempts that consumed tokens.
    pub usage: Usage,
    /// Sum over attempts, in micro-dollars.
    pub cost_micros: i64,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    pub outcome: Outcome,
    /// HTTP status the client got.
    pub status: u16,
    pub attempt_count: u32,
    /// Why the first target did not answer, e.g. "upstream_5xx".
    pub failover_reason: Option<String>,
}

/// One upstream call made while serving a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The request's [`RequestRecord::id`], shared with it.
    pub request_id: Arc<str>,
    /// 0 for the first attempt; unique within a request.
    pub index: u32,
    pub target: Arc<str>,
    pub provider: Arc<str>,
    pub provider_kind: Arc<str>,
    pub model: Arc<str>,
    pub started_at: DateTime<Utc>,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    pub usage: Usage,
    pub cost_micros: i64,
    /// False when no catalog price matched, so `cost_micros` is 0 for lack of a price,
    /// not because the attempt was free: reports can tell the two apart.
    pub priced: bool,
    pub outcome: AttemptOutcome,
    pub error_kind: Option<String>,
    /// Upstream HTTP status, if the upstream answered at all.
    pub status: Option<u16>,
    pub retry_after_ms: Option<u64>,
}

/// How a request ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    UpstreamError,
    ClientError,
    Cancelled,
    StreamError,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Success,
        Outcome::UpstreamError,
        Outcome::ClientError,
        Outcome::Cancelled,
        Outcome::StreamError,
    ];

    /// The name stored in the ledger; stable, because reports filter on it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::UpstreamError => "upstream_error",
            Outcome::ClientError => "client_error",
            Outcome::Cancelled => "cancelled",
            Outcome::StreamError => "stream_error",
        }
    }

    /// The inverse of [`Outcome::as_str`].
    pub fn parse(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// How one upstream attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Success,
    Failed,
    Cancelled,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 3] = [
        AttemptOutcome::Success,
        AttemptOutcome::Failed,
        AttemptOutcome::Cancelled,
    ];

    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Cancelled => "cancelled",
        }
    }

    /// The inverse of [`AttemptOutcome::as_str`].
    pub fn parse(name: &str) -> Option<AttemptOutcome> {
        AttemptOutcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_round_trip_and_match_serde() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
        }
        for outcome in AttemptOutcome::ALL {
            assert_eq!(AttemptOutcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(Outcome::parse("nope"), None);
    }
}
