//! How an upstream attempt failed, classified once by the adapter that saw it, so the
//! failover engine can decide without knowing any wire format.

use std::fmt;
use std::time::Duration;


/// What went wrong with an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No TCP/TLS connection could be made, or it was reset before an answer.
    Connect,
    /// No response headers within the attempt's timeout.
    Timeout,
    /// Headers arrived but no first content event within the time-to-first-token timeout.
    FirstTokenTimeout,
    /// A stream went silent for longer than the idle timeout after it started.
    StreamIdle,
    /// A stream ended or broke before it was complete.
    StreamCut,
    /// The upstream answered 5xx.
    ServerError,
    /// The upstream is overloaded (Anthropic 529, OpenAI `server_is_overloaded`).
    Overloaded,
    /// 429: rate or quota limit.
    RateLimited,
    /// The upstream rejected the request as malformed or invalid (400, 422).
    InvalidRequest,
    /// The prompt does not fit the model's context window.
    ContextTooLong,
    /// The upstream refused the content on policy grounds.
    ContentPolicy,
    /// The provider's credentials were refused (401, 403): a gateway configuration fault.
    Auth,
    /// The model or deployment does not exist at this provider (404).
    NotFound,
    /// The answer could not be understood (bad JSON, unexpected shape).
    Protocol,
    /// The answer, or one event of its stream, was larger than the provider's
    /// `max_answer_bytes`; asked again, it would most likely be as large.
    TooLarge,
    /// The request uses a feature this target cannot express.
    Unsupported,
    /// The gateway's own concurrency limit for the target was reached and no slot
    /// came free in time (no upstream call was made).
    Saturated,
    /// The target's circuit is open or it is cooling down after a rate limit (no
    /// upstream call was made).
    Unavailable,
}

impl ErrorKind {
    /// A short stable name, used in the ledger, metrics and error summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::FirstTokenTimeout => "first_token_timeout",
            ErrorKind::StreamIdle => "stream_idle",
            ErrorKind::StreamCut => "stream_cut",
            ErrorKind::ServerError => "upstream_5xx",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::ContextTooLong => "context_too_long",
            ErrorKind::ContentPolicy => "content_policy",
            ErrorKind::Auth => "upstream_auth",
            ErrorKind::NotFound => "upstream_not_found",
            ErrorKind::Protocol => "protocol_error",
            ErrorKind::TooLarge => "answer_too_large",
            ErrorKind::Unsupported => "unsupported_feature",
            ErrorKind::Saturated => "target_saturated",
            ErrorKind::Unavailable => "target_unavailable",
        }
    }

    /// Whose fault the failure is.
    pub fn fault(self) -> Fault {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::ContextTooLong | ErrorKind::ContentPolicy | ErrorKind::Unsupported => {
                Fault::Client
            }
            ErrorKind::Auth | ErrorKind::NotFound => Fault::Configuration,
            ErrorKind::Connect
            | ErrorKind::Timeout
            | ErrorKind::FirstTokenTimeout
            | ErrorKind::StreamIdle
            | ErrorKind::StreamCut
            | ErrorKind::ServerError
            | ErrorKind::Overloaded
            | ErrorKind::RateLimited
            | ErrorKind::Saturated
            | ErrorKind::Unavailable
            | ErrorKind::Protocol
            | ErrorKind::TooLarge => Fault::Upstream,
        }
    }

    /// Whether trying the same target again may help. Silent upstreams are not retried
    /// in place: the next target is a better bet than waiting the same timeout again.
    pub fn retry_same_target(self) -> bool {
        matches!(self, ErrorKind::Connect | ErrorKind::ServerError | ErrorKind::Overloaded | ErrorKind::RateLimited | ErrorKind::StreamCut | ErrorKind::Protocol)
    }

    /// Whether another target may succeed where this one failed. Client faults would
    /// fail everywhere, except a feature one target lacks and another may have.
    pub fn try_next_target(self) -> bool {
        self.fault() != Fault::Client || self == ErrorKind::Unsupported
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client's request is at fault; it is answered, not retried.
    Client,
    /// The upstream failed; another attempt may succeed.
    Upstream,
    /// The gateway's own configuration (a provider's key, a model name) is wrong.
    Configuration,
}

/// A classified attempt failure. `message` is safe to show a client: adapters build it
/// from the upstream's error text and never include credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamError {
    pub kind: ErrorKind,
    /// The upstream's HTTP status, when it sent one.
    pub status: Option<u16>,
    pub message: String,
    /// How long the upstream asked us to wait before trying again.
    pub retry_after: Option<Duration>,
    /// The upstream's own error code or type, when it gave one (e.g. `context_length_exceeded`).
    pub code: Option<String>,
}

impl UpstreamError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        UpstreamError { kind, status: None, message: message.into(), retry_after: None, code: None }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    pub fn with_code(mut self, code: Option<String>) -> Self {
        self.code = code;
        self
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "{} (HTTP {status}): {}", self.kind.as_str(), self.message),
            None => write!(f, "{}: {}", self.kind.as_str(), self.message),
        }
    }
}

/// What an upstream's rate-limit headers said about the quota left.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RateLimitHint {
    pub limit_requests: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub limit_tokens: Option<u64>,
    pub remaining_tokens: Option<u64>,
    /// When the most constrained quota resets.
    pub reset_after: Option<Duration>,
}

impl RateLimitHint {
    /// Nothing left of some quota: the next request would be a 429.
    pub fn exhausted(&self) -> bool {
        self.remaining_requests == Some(0) || self.remaining_tokens == Some(0)
    }

    /// The smallest known fraction of a quota left.
    pub fn fraction_left(&self) -> Option<f64> {
        let requests = self.limit_requests.zip(self.remaining_requests).filter(|(l, _)| *l > 0).map(|(l, r)| r as f64 / l as f64);
        let tokens = self.limit_tokens.zip(self.remaining_tokens).filter(|(l, _)| *l > 0).map(|(l, r)| r as f64 / l as f64);
        match (requests, tokens) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Reads OpenAI-style (`x-ratelimit-*`, also Azure, Groq and others) or Anthropic
    /// (`anthropic-ratelimit-*`) headers. `None` when the upstream sends neither.
    ///
    /// One pass over the answer's headers, usually a handful: looking up each of the
    /// twelve names instead hashed every name, and most answers of most upstreams carry
    /// none of them.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<RateLimitHint> {
        let (mut openai, mut anthropic) = (QuotaHeaders::default(), QuotaHeaders::default());
        for (name, value) in headers {
            let name = name.as_str();
            let slot = if let Some(figure) = name.strip_prefix("x-ratelimit-") {
                openai.slot(figure, Vendor::OpenAi)
            } else if let Some(figure) = name.strip_prefix("anthropic-ratelimit-") {
                anthropic.slot(figure, Vendor::Anthropic)
            } else {
                None
            };
            // The first of repeated headers counts, as with `HeaderMap::get`.
            if let Some(slot @ None) = slot {
                *slot = Some(value);
            }
        }
        openai.hint(parse_go_duration).or_else(|| anthropic.hint(reset_at_rfc3339))
    }
}

/// Whose naming a rate-limit header follows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Vendor {
    /// `x-ratelimit-limit-requests`, …: OpenAI's, also sent by Azure OpenAI, Groq,
    /// OpenRouter and others (see the reference notes).
    OpenAi,
    /// `anthropic-ratelimit-requests-limit`, …, with RFC 3339 instants for resets.
    Anthropic,
}

/// One vendor's rate-limit headers as found (the first of each).
#[derive(Default)]
struct QuotaHeaders<'a> {
    limit_requests: Option<&'a http::HeaderValue>,
    remaining_requests: Option<&'a http::HeaderValue>,
    limit_tokens: Option<&'a http::HeaderValue>,
    remaining_tokens: Option<&'a http::HeaderValue>,
    reset_requests: Option<&'a http::HeaderValue>,
    reset_tokens: Option<&'a http::HeaderValue>,
}

impl<'a> QuotaHeaders<'a> {
    /// Where the header named `figure` (after the vendor's prefix) goes.
    fn slot(&mut self, figure: &str, vendor: Vendor) -> Option<&mut Option<&'a http::HeaderValue>> {
        use Vendor::{Anthropic, OpenAi};
        Some(match (vendor, figure) {
            (OpenAi, "limit-requests") | (Anthropic, "requests-limit") => &mut self.limit_requests,
            (OpenAi, "remaining-requests") | (Anthropic, "requests-remaining") => &mut self.remaining_requests,
            (OpenAi, "limit-tokens") | (Anthropic, "tokens-limit") => &mut self.limit_tokens,
            (OpenAi, "remaining-tokens") | (Anthropic, "tokens-remaining") => &mut self.remaining_tokens,
            (OpenAi, "reset-requests") | (Anthropic, "requests-reset") => &mut self.reset_requests,
            (OpenAi, "reset-tokens") | (Anthropic, "tokens-reset") => &mut self.reset_tokens,
            _ => return None,
        })
    }

    /// The hint, or `None` when neither "remaining" header was there.
    fn hint(self, reset: impl Fn(&str) -> Option<Duration>) -> Option<RateLimitHint> {
        let text = |value: &'a http::HeaderValue| value.to_str().ok();
        let number = |value: Option<&'a http::HeaderValue>| value.and_then(text).and_then(|v| v.trim().parse::<u64>().ok());
        let remaining_requests = number(self.remaining_requests);
        let remaining_tokens = number(self.remaining_tokens);
        if remaining_requests.is_none() && remaining_tokens.is_none() {
            return None;
        }
        Some(RateLimitHint {
            limit_requests: number(self.limit_requests),
            remaining_requests,
            limit_tokens: number(self.limit_tokens),
            remaining_tokens,
            reset_after: [self.reset_requests, self.reset_tokens].into_iter().flatten().filter_map(text).filter_map(reset).max(),
        })
    }
}

/// Anthropic's resets are instants (RFC 3339): the time left until then.
fn reset_at_rfc3339(text: &str) -> Option<Duration> {
    let at = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

/// Parses OpenAI's reset durations, written the way Go prints them: `20ms`, `1s`, `6m0s`, `1h2m3.5s`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += value * seconds;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

/// Parses a `retry-after` header: delta-seconds (possibly fractional) or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    delta.to_std().ok().or(Some(Duration::ZERO))
}

/// Reads the retry hint from response headers: Azure's `retry-after-ms` wins over
/// `retry-after` because it is more precise.
pub fn retry_after_from_headers(headers: &http::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers.get("retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    headers.get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_fractions_and_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn go_style_reset_durations_parse() {
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_go_duration("1h2m3.5s"), Some(Duration::from_secs_f64(3723.5)));
        assert_eq!(parse_go_duration("soon"), None);
    }

    #[test]
    fn rate_limit_headers_of_both_families_are_read() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-ratelimit-limit-requests", "100".parse().unwrap());
        headers.insert("x-ratelimit-remaining-requests", "3".parse().unwrap());
        headers.insert("x-ratelimit-reset-requests", "1s".parse().unwrap());
        let hint = RateLimitHint::from_headers(&headers).unwrap();
        assert_eq!(hint.fraction_left(), Some(0.03));
        assert_eq!(hint.reset_after, Some(Duration::from_secs(1)));

        let mut headers = http::HeaderMap::new();
        headers.insert("anthropic-ratelimit-requests-limit", "50".parse().unwrap());
        headers.insert("anthropic-ratelimit-requests-remaining", "0".parse().unwrap());
        assert!(RateLimitHint::from_headers(&headers).unwrap().exhausted());
        assert_eq!(RateLimitHint::from_headers(&http::HeaderMap::new()), None);
    }

    #[test]
    fn every_rate_limit_figure_is_read_among_other_headers_and_the_first_of_repeats_counts() {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("x-ratelimit-limit-tokens", "30000".parse().unwrap());
        headers.insert("x-ratelimit-remaining-tokens", "29000".parse().unwrap());
        headers.append("x-ratelimit-remaining-requests", "9".parse().unwrap());
        headers.append("x-ratelimit-remaining-requests", "0".parse().unwrap());
        headers.insert("x-ratelimit-limit-requests", "10".parse().unwrap());
        headers.insert("x-ratelimit-reset-requests", "6m0s".parse().unwrap());
        headers.insert("x-ratelimit-reset-tokens", "20ms".parse().unwrap());
        headers.insert("x-ratelimit-reset-everything", "1h".parse().unwrap());
        let expected = RateLimitHint {
            limit_requests: Some(10),
            remaining_requests: Some(9),
            limit_tokens: Some(30_000),
            remaining_tokens: Some(29_000),
            reset_after: Some(Duration::from_secs(360)),
        };
        assert_eq!(RateLimitHint::from_headers(&headers), Some(expected));

        let mut headers = http::HeaderMap::new();
        headers.insert("anthropic-ratelimit-tokens-limit", "80000".parse().unwrap());
        headers.insert("anthropic-ratelimit-tokens-remaining", "100".parse().unwrap());
        let reset = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
        headers.insert("anthropic-ratelimit-tokens-reset", reset.parse().unwrap());
        let hint = RateLimitHint::from_headers(&headers).unwrap();
        assert_eq!((hint.limit_tokens, hint.remaining_tokens, hint.remaining_requests), (Some(80_000), Some(100), None));
        assert!(hint.reset_after.is_some_and(|r| r > Duration::from_secs(25) && r <= Duration::from_secs(30)), "{hint:?}");
    }

    #[test]
    fn client_faults_are_not_retried_anywhere_but_missing_features_may_be() {
        assert!(!ErrorKind::InvalidRequest.try_next_target());
        assert!(!ErrorKind::ContextTooLong.try_next_target());
        assert!(ErrorKind::Unsupported.try_next_target());
        assert!(ErrorKind::Auth.try_next_target());
        assert!(!ErrorKind::Timeout.retry_same_target());
    }
}
