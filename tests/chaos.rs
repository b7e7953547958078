//! Chaos: every way an upstream can fail, one fault at a time, for plain and streamed
//! requests, over real HTTP. For each fault:
//!
//! - with a healthy secondary the client gets 200 and the secondary's answer, and the
//!   ledger holds one entry listing the failed attempt (its error kind and status) and
//!   billing only the answer;
//! - with every target failing that way the client gets the right status in OpenAI's
//!   error shape (502; 429 with `retry-after` when all were rate-limited; 503 when all
//!   were overloaded), and the ledger bills nothing.
//!
//! Faults after the first content byte cannot fail over: the client gets what was
//! sent, then an error event, and the ledger a `stream_error`. A seeded chaos soak then
//! mixes all faults over many requests and checks the same invariants in bulk.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::openai_wire::{completion, invalid_json_chunk, text_chunks};
use support::{MockUpstream, RecordedRequest, Reply, StreamEnd, TestGateway};
use switchyard::ledger::{AttemptOutcome, AttemptRecord, LedgerStore, Outcome, RequestRecord};

/// Every answer is 1,000 tokens in and 500 out; at $2 / $8 per million that is
/// 2,000 + 4,000 = 6,000 micro-dollars, for either target.
const USAGE: (u64, u64) = (1000, 500);
const ANSWER_COST: i64 = 6_000;

/// Attempt, first-token and stream-idle timeouts of the route: short, so that silent
/// and slow faults are detected quickly.
const TIMEOUT: &str = "300ms";

fn config(primary: &MockUpstream, secondary: &MockUpstream) -> String {
    format!(
        r#"
[ledger]
url = "{{LEDGER}}"
flush_interval = "10ms"

[providers.primary]
kind = "openai-compatible"
base_url = "{}/v1"
catalog = "test"

[providers.secondary]
kind = "openai-compatible"
base_url = "{}/v1"
catalog = "test"

[routes.chat]
targets = [{{ provider = "primary", model = "model-a" }}, {{ provider = "secondary", model = "model-b" }}]
retries = 0
attempt_timeout = "{TIMEOUT}"
first_token_timeout = "{TIMEOUT}"
stream_idle_timeout = "{TIMEOUT}"

[[prices]]
provider = "test"
model = "model-a"
effective_from = "2020-01-01"
input_per_mtok = 2.0
output_per_mtok = 8.0

[[prices]]
provider = "test"
model = "model-b"
effective_from = "2020-01-01"
input_per_mtok = 2.0
output_per_mtok = 8.0
"#,
        primary.base_url(),
        secondary.base_url()
    )
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Plain,
    Stream,
}

impl Mode {
    fn request(self) -> Value {
        json!({"model": "chat", "stream": self == Mode::Stream, "messages": [{"role": "user", "content": "hello"}]})
    }
}

/// A fault an upstream can have before the first content byte, so failover can hide it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Http500,
    Http502,
    Http503,
    /// 429 with `retry-after: 1`.
    RateLimited,
    /// The connection is reset (TCP RST) after the request is read.
    Reset,
    /// The request is read, then nothing comes back for far longer than the timeouts.
    StallBeforeHeaders,
    /// Streams only: 200, the role chunk, then the connection drops.
    TruncatedBeforeContent,
    /// Plain: a 200 JSON body that does not parse. Stream: a first chunk that does not.
    InvalidJson,
    /// A valid answer sent a few bytes at a time, slower than the route's timeouts.
    Trickle,
}

impl Fault {
    const ALL: [Fault; 9] = [
        Fault::Http500,
        Fault::Http502,
        Fault::Http503,
        Fault::RateLimited,
        Fault::Reset,
        Fault::StallBeforeHeaders,
        Fault::TruncatedBeforeContent,
        Fault::InvalidJson,
        Fault::Trickle,
    ];

    fn applies_to(self, mode: Mode) -> bool {
        !(self == Fault::TruncatedBeforeContent && mode == Mode::Plain)
    }

    /// The mock reply that plays this fault for a target serving `model`.
    fn reply(self, mode: Mode, model: &str) -> Reply {
        match (self, mode) {
            (Fault::Http500, _) => Reply::openai_error(500, "server_error", "chaos: the server had an error"),
            (Fault::Http502, _) => Reply::openai_error(502, "server_error", "chaos: bad gateway"),
            (Fault::Http503, _) => Reply::openai_error(503, "service_unavailable_error", "chaos: overloaded"),
            (Fault::RateLimited, _) => Reply::rate_limited(1),
            (Fault::Reset, _) => Reply::Reset,
            (Fault::StallBeforeHeaders, _) => Reply::StallBeforeHeaders(Duration::from_secs(5)),
            (Fault::TruncatedBeforeContent, _) => {
                let mut chunks = text_chunks(model, &["never ", "sent"], Some(USAGE));
                chunks.truncate(1);
                Reply::sse(chunks).with_end(StreamEnd::Cut)
            }
            (Fault::InvalidJson, Mode::Plain) => Reply::invalid_json(),
            (Fault::InvalidJson, Mode::Stream) => {
                let mut chunks = text_chunks(model, &["after ", "garbage"], Some(USAGE));
                chunks[0] = invalid_json_chunk(model);
                Reply::sse(chunks)
            }
            // ~16 bytes every 100 ms: the first chunk of a stream (~230 bytes) would
            // take well over a second, a whole completion several.
            (Fault::Trickle, Mode::Plain) => {
                Reply::json(200, completion(model, "too slow", USAGE)).trickled(16, Duration::from_millis(100))
            }
            (Fault::Trickle, Mode::Stream) => {
                Reply::sse(text_chunks(model, &["too ", "slow"], Some(USAGE))).trickled(16, Duration::from_millis(100))
            }
        }
    }

    /// The error kind and upstream status the ledger records for a failed attempt.
    fn recorded_as(self, mode: Mode) -> (&'static str, Option<u16>) {
        match (self, mode) {
            (Fault::Http500, _) => ("upstream_5xx", Some(500)),
            (Fault::Http502, _) => ("upstream_5xx", Some(502)),
            (Fault::Http503, _) => ("overloaded", Some(503)),
            (Fault::RateLimited, _) => ("rate_limited", Some(429)),
            (Fault::Reset, _) => ("connect_error", None),
            (Fault::StallBeforeHeaders | Fault::Trickle, Mode::Plain) => ("timeout", None),
            (Fault::StallBeforeHeaders | Fault::Trickle, Mode::Stream) => ("first_token_timeout", None),
            (Fault::TruncatedBeforeContent, _) => ("stream_cut", None),
            (Fault::InvalidJson, _) => ("protocol_error", None),
        }
    }

    /// The status and OpenAI error `type` a client gets when every target fails so.
    fn client_error_when_everywhere(self) -> (u16, &'static str) {
        match self {
            Fault::RateLimited => (429, "rate_limit_error"),
            Fault::Http503 => (503, "service_unavailable_error"),
            _ => (502, "upstream_error"),
        }
    }
}

/// A healthy upstream serving `model`: a JSON answer or, when asked to stream, SSE
/// chunks; either says "from {name}" and reports [`USAGE`].
fn healthy(model: &'static str, name: &'static str) -> Reply {
    Reply::handler(move |request: &RecordedRequest| {
        let text = format!("from {name}");
        if request.json()["stream"] == true {
            Reply::sse(text_chunks(model, &["from ", name], Some(USAGE)))
        } else {
            Reply::json(200, completion(model, &text, USAGE))
        }
    })
}

type LedgerRows = Vec<(RequestRecord, Vec<AttemptRecord>)>;

async fn ledger(gateway: &TestGateway) -> LedgerRows {
    gateway.flush_ledger().await;
    let store = LedgerStore::connect(&gateway.ledger_url).await.unwrap();
    let mut rows = Vec::new();
    for request in store.requests_since(chrono::DateTime::UNIX_EPOCH).await.unwrap() {
        let attempts = store.attempts_for(&request.id).await.unwrap();
        rows.push((request, attempts));
    }
    rows
}

/// The `data:` payloads of an SSE body, in order.
fn data_lines(body: &str) -> Vec<String> {
    body.split("\n\n").filter_map(|event| event.strip_prefix("data: ")).map(str::to_owned).collect()
}

/// The text a client got: a completion's message, or a stream's content deltas.
fn answer_text(mode: Mode, body: &str) -> String {
    match mode {
        Mode::Plain => {
            let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
            value["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned()
        }
        Mode::Stream => {
            assert!(body.ends_with("data: [DONE]\n\n"), "an unfinished stream: {body}");
            data_lines(body)
                .iter()
                .filter(|l| *l != "[DONE]")
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
                .collect()
        }
    }
}

/// Checks an OpenAI error body: `{"error": {"message", "type", "param", "code"}}`.
fn assert_openai_error(body: &str, error_type: &str, code: &str) -> Value {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {body}"));
    let error = &value["error"];
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(error["type"], error_type, "{body}");
    assert_eq!(error["code"], code, "{body}");
    assert!(error.as_object().unwrap().contains_key("param"), "{body}");
    value
}

/// The primary fails with `fault`; the secondary is healthy.
async fn with_a_healthy_secondary(fault: Fault, mode: Mode) {
    assert!(fault.applies_to(mode));
    let primary = MockUpstream::start().await;
    let secondary = MockUpstream::start().await;
    primary.set_default(fault.reply(mode, "model-a"));
    secondary.set_default(healthy("model-b", "secondary"));
    let gateway = TestGateway::start(&config(&primary, &secondary)).await;

    let response = gateway.post_chat(&mode.request()).await;
    assert_eq!(response.status(), 200, "{fault:?} {mode:?}");
    assert_eq!(response.headers()["x-switchyard-target"], "secondary/model-b");
    assert_eq!(response.headers()["x-switchyard-attempts"], "2");
    let body = response.text().await.unwrap();
    assert_eq!(answer_text(mode, &body), "from secondary", "{body}");
    assert_eq!((primary.request_count(), secondary.request_count()), (1, 1));

    let rows = ledger(&gateway).await;
    assert_eq!(rows.len(), 1, "one ledger entry per request");
    let (request, attempts) = &rows[0];
    let (kind, status) = fault.recorded_as(mode);
    assert_eq!(request.outcome, Outcome::Success);
    assert_eq!(request.status, 200);
    assert_eq!(request.stream, mode == Mode::Stream);
    assert_eq!(request.target.as_deref(), Some("secondary/model-b"));
    assert_eq!(request.failover_reason.as_deref(), Some(kind));
    assert_eq!(request.attempt_count, 2);
    assert_eq!(attempts.len(), 2);
    let failed = &attempts[0];
    assert_eq!(&*failed.target, "primary/model-a");
    assert_eq!(failed.outcome, AttemptOutcome::Failed);
    assert_eq!(failed.error_kind.as_deref(), Some(kind), "{fault:?} {mode:?}");
    assert_eq!(failed.status, status, "{fault:?} {mode:?}");
    assert_eq!(failed.retry_after_ms, (fault == Fault::RateLimited).then_some(1000));
    assert_eq!((failed.usage.input_tokens, failed.usage.output_tokens, failed.cost_micros), (0, 0, 0));
    let answered = &attempts[1];
    assert_eq!(answered.outcome, AttemptOutcome::Success);
    assert_eq!(answered.error_kind, None);
    assert_eq!(answered.cost_micros, ANSWER_COST);
    // Billed once: the answer, and only the answer.
    assert_eq!(request.cost_micros, ANSWER_COST);
    assert_eq!((request.usage.input_tokens, request.usage.output_tokens), USAGE);
    gateway.shutdown().await;
}

/// Both targets fail with `fault`.
async fn with_no_healthy_alternative(fault: Fault, mode: Mode) {
    assert!(fault.applies_to(mode));
    let primary = MockUpstream::start().await;
    let secondary = MockUpstream::start().await;
    primary.set_default(fault.reply(mode, "model-a"));
    secondary.set_default(fault.reply(mode, "model-b"));
    let gateway = TestGateway::start(&config(&primary, &secondary)).await;

    let response = gateway.post_chat(&mode.request()).await;
    let (status, error_type) = fault.client_error_when_everywhere();
    assert_eq!(response.status(), status, "{fault:?} {mode:?}");
    assert_eq!(response.headers()["content-type"], "application/json", "an error before the first byte is not a stream");
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    let error = assert_openai_error(&body, error_type, "all_targets_failed");
    let message = error["error"]["message"].as_str().unwrap();
    let (kind, _) = fault.recorded_as(mode);
    assert!(message.contains("primary/model-a") && message.contains("secondary/model-b") && message.contains(kind), "{message}");
    if fault == Fault::RateLimited {
        assert_eq!(retry_after.as_deref(), Some("1"));
    }
    assert_eq!((primary.request_count(), secondary.request_count()), (1, 1));

    let rows = ledger(&gateway).await;
    assert_eq!(rows.len(), 1);
    let (request, attempts) = &rows[0];
    assert_eq!(request.outcome, Outcome::UpstreamError);
    assert_eq!(request.status, status);
    assert_eq!(request.target, None);
    assert_eq!(request.cost_micros, 0, "nothing answered, nothing billed");
    let kinds: Vec<_> = attempts.iter().map(|a| (a.outcome, a.error_kind.clone().unwrap_or_default())).collect();
    assert_eq!(kinds, vec![(AttemptOutcome::Failed, kind.to_owned()); 2]);
    gateway.shutdown().await;
}

/// One `#[tokio::test]` per row: `name: runner(fault, mode);`.
macro_rules! chaos_cases {
    ($($name:ident: $runner:ident($fault:ident, $mode:ident);)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                $runner(Fault::$fault, Mode::$mode).await;
            }
        )*
    };
}

chaos_cases! {
    a_500_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(Http500, Plain);
    a_500_before_a_stream_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(Http500, Stream);
    a_502_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(Http502, Plain);
    a_502_before_a_stream_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(Http502, Stream);
    a_503_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(Http503, Plain);
    a_503_before_a_stream_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(Http503, Stream);
    a_429_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(RateLimited, Plain);
    a_429_before_a_stream_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(RateLimited, Stream);
    a_connection_reset_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(Reset, Plain);
    a_connection_reset_before_a_stream_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(Reset, Stream);
    a_stall_before_headers_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(StallBeforeHeaders, Plain);
    a_stall_before_a_streams_headers_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(StallBeforeHeaders, Stream);
    a_stream_truncated_before_content_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(TruncatedBeforeContent, Stream);
    an_invalid_json_body_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(InvalidJson, Plain);
    an_invalid_json_chunk_before_content_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(InvalidJson, Stream);
    an_answer_trickled_slower_than_the_attempt_timeout_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(Trickle, Plain);
    a_stream_trickled_slower_than_the_first_token_timeout_fails_over_to_a_healthy_secondary: with_a_healthy_secondary(Trickle, Stream);

    a_500_everywhere_is_a_502: with_no_healthy_alternative(Http500, Plain);
    a_500_everywhere_before_a_stream_is_a_502: with_no_healthy_alternative(Http500, Stream);
    a_502_everywhere_is_a_502: with_no_healthy_alternative(Http502, Plain);
    a_502_everywhere_before_a_stream_is_a_502: with_no_healthy_alternative(Http502, Stream);
    a_503_everywhere_is_a_503: with_no_healthy_alternative(Http503, Plain);
    a_503_everywhere_before_a_stream_is_a_503: with_no_healthy_alternative(Http503, Stream);
    a_429_everywhere_is_a_429_with_retry_after: with_no_healthy_alternative(RateLimited, Plain);
    a_429_everywhere_before_a_stream_is_a_429_with_retry_after: with_no_healthy_alternative(RateLimited, Stream);
    a_reset_everywhere_is_a_502: with_no_healthy_alternative(Reset, Plain);
    a_reset_everywhere_before_a_stream_is_a_502: with_no_healthy_alternative(Reset, Stream);
    a_stall_everywhere_is_a_502: with_no_healthy_alternative(StallBeforeHeaders, Plain);
    a_stall_everywhere_before_a_stream_is_a_502: with_no_healthy_alternative(StallBeforeHeaders, Stream);
    a_truncated_stream_everywhere_is_a_502: with_no_healthy_alternative(TruncatedBeforeContent, Stream);
    invalid_json_everywhere_is_a_502: with_no_healthy_alternative(InvalidJson, Plain);
    an_invalid_json_chunk_everywhere_is_a_502: with_no_healthy_alternative(InvalidJson, Stream);
    a_trickle_everywhere_is_a_502: with_no_healthy_alternative(Trickle, Plain);
    a_trickled_stream_everywhere_is_a_502: with_no_healthy_alternative(Trickle, Stream);
}

// ---------------------------------------------------------------------------
// Faults after the first content byte: no failover is possible
// ---------------------------------------------------------------------------

/// How a stream breaks after its first content chunk reached the client.
#[derive(Clone, Copy, Debug)]
enum LateFault {
    /// Nothing more for longer than the stream idle timeout.
    Stall,
    /// The connection drops.
    Cut,
    /// The next chunk is not JSON.
    InvalidJson,
}

/// The primary sends its role chunk and "partial ", then breaks; the secondary is
/// healthy but must not be used: the client already has bytes of the primary's answer.
async fn a_stream_broken_after_content(late: LateFault, error_kind: &str) {
    let primary = MockUpstream::start().await;
    let secondary = MockUpstream::start().await;
    let mut chunks = text_chunks("model-a", &["partial ", "answer"], Some(USAGE));
    chunks.truncate(2);
    let reply = match late {
        LateFault::Stall => Reply::sse(chunks).with_end(StreamEnd::StallThenClose(Duration::from_secs(5))),
        LateFault::Cut => Reply::sse(chunks).with_end(StreamEnd::Cut),
        LateFault::InvalidJson => {
            chunks.push(invalid_json_chunk("model-a"));
            Reply::sse(chunks)
        }
    };
    primary.set_default(reply);
    secondary.set_default(healthy("model-b", "secondary"));
    let gateway = TestGateway::start(&config(&primary, &secondary)).await;

    let response = gateway.post_chat(&Mode::Stream.request()).await;
    assert_eq!(response.status(), 200, "the stream had started");
    assert_eq!(response.headers()["x-switchyard-target"], "primary/model-a");
    let body = response.text().await.unwrap();
    let lines = data_lines(&body);
    assert!(lines.iter().any(|l| l.contains(r#""content":"partial ""#)), "{body}");
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(last["error"]["code"], "stream_interrupted", "{body}");
    assert_eq!(last["error"]["type"], "upstream_error", "{body}");
    assert!(last["error"]["message"].as_str().unwrap().contains(error_kind), "{body}");
    assert!(!body.contains("[DONE]"), "a broken answer must not look finished: {body}");
    assert_eq!(secondary.request_count(), 0, "no failover after the first byte");

    let rows = ledger(&gateway).await;
    assert_eq!(rows.len(), 1);
    let (request, attempts) = &rows[0];
    assert_eq!(request.outcome, Outcome::StreamError);
    assert_eq!(request.status, 200);
    assert_eq!(request.target.as_deref(), Some("primary/model-a"), "the partial answer is attributed");
    assert!(request.ttft_ms.is_some(), "the answer had started");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Failed);
    assert_eq!(attempts[0].error_kind.as_deref(), Some(error_kind));
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_stream_that_stalls_after_content_ends_with_an_error_event_and_a_stream_error_entry() {
    a_stream_broken_after_content(LateFault::Stall, "stream_idle").await;
}

#[tokio::test]
async fn a_stream_cut_after_content_ends_with_an_error_event_and_a_stream_error_entry() {
    a_stream_broken_after_content(LateFault::Cut, "stream_cut").await;
}

#[tokio::test]
async fn an_invalid_json_chunk_after_content_ends_the_stream_with_an_error_event() {
    a_stream_broken_after_content(LateFault::InvalidJson, "protocol_error").await;
}

/// Some OpenAI-compatible servers (vLLM's `continuous_usage_stats`, among others)
/// report running usage on every chunk. When such a stream breaks, the ledger should
/// keep the usage reported so far: the upstream bills those tokens.
#[tokio::test]
async fn a_stream_broken_after_content_keeps_the_usage_reported_so_far() {
    let primary = MockUpstream::start().await;
    let secondary = MockUpstream::start().await;
    let mut chunks: Vec<Value> =
        text_chunks("model-a", &["partial ", "answer"], None).iter().take(2).map(|c| serde_json::from_str(c).unwrap()).collect();
    chunks[1]["usage"] = json!({"prompt_tokens": 1000, "completion_tokens": 250, "total_tokens": 1250});
    primary.set_default(Reply::sse(chunks.iter().map(Value::to_string)).with_end(StreamEnd::Cut));
    let gateway = TestGateway::start(&config(&primary, &secondary)).await;

    let body = gateway.post_chat(&Mode::Stream.request()).await.text().await.unwrap();
    assert!(body.contains("stream_interrupted"), "{body}");

    let rows = ledger(&gateway).await;
    let (request, _) = &rows[0];
    assert_eq!(request.outcome, Outcome::StreamError);
    assert_eq!((request.usage.input_tokens, request.usage.output_tokens), (1000, 250));
    assert_eq!(request.cost_micros, 2_000 + 2_000);
    gateway.shutdown().await;
}

/// OpenAI's `include_usage` puts usage in a chunk just before `[DONE]`. If the
/// upstream then goes silent instead of sending `[DONE]`, the answer and its usage
/// were complete, and the upstream bills them; so should the ledger.
#[tokio::test]
async fn a_stream_that_stalls_after_its_usage_report_is_billed_for_that_usage() {
    let primary = MockUpstream::start().await;
    let secondary = MockUpstream::start().await;
    let mut chunks = text_chunks("model-a", &["whole ", "answer"], Some(USAGE));
    chunks.pop(); // everything but [DONE], then silence
    primary.set_default(Reply::sse(chunks).with_end(StreamEnd::StallThenClose(Duration::from_secs(5))));
    let gateway = TestGateway::start(&config(&primary, &secondary)).await;

    let body = gateway.post_chat(&Mode::Stream.request()).await.text().await.unwrap();
    assert!(body.contains(r#""content":"answer""#), "{body}");

    let rows = ledger(&gateway).await;
    let (request, _) = &rows[0];
    assert_eq!((request.usage.input_tokens, request.usage.output_tokens), USAGE);
    assert_eq!(request.cost_micros, ANSWER_COST);
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------
// Seeded chaos over many requests
// ---------------------------------------------------------------------------

/// A chaos upstream serving `model`: with probability `rate` one of every fault that
/// applies to `mode`, otherwise a healthy answer.
fn chaos_upstream(seed: u64, rate: f64, mode: Mode, model: &'static str, name: &'static str) -> Reply {
    let faults = Fault::ALL.iter().filter(|f| f.applies_to(mode)).map(|f| f.reply(mode, model)).collect();
    Reply::chaos(seed, rate, faults, healthy(model, name))
}

/// Sends `n` requests, `parallel` at a time; returns (status, body) of each.
async fn send_many(gateway: &Arc<TestGateway>, mode: Mode, n: usize, parallel: usize) -> Vec<(u16, String)> {
    let mut results = Vec::new();
    for batch in (0..n).collect::<Vec<_>>().chunks(parallel) {
        let calls: Vec<_> = batch
            .iter()
            .map(|_| {
                let gateway = gateway.clone();
                tokio::spawn(async move {
                    let response = gateway.post_chat(&mode.request()).await;
                    (response.status().as_u16(), response.text().await.unwrap())
                })
            })
            .collect();
        for call in calls {
            results.push(call.await.unwrap());
        }
    }
    results
}

/// Every entry lists its attempts, at most one of them answered and it is the last,
/// failed attempts cost nothing, and the entry's cost is its answer's.
fn assert_each_entry_billed_once(rows: &LedgerRows) {
    for (request, attempts) in rows {
        assert_eq!(request.attempt_count as usize, attempts.len(), "{request:?}");
        let answered: Vec<_> = attempts.iter().filter(|a| a.outcome == AttemptOutcome::Success).collect();
        assert!(answered.len() <= 1, "{attempts:?}");
        if request.outcome == Outcome::Success {
            assert_eq!(answered.len(), 1, "{attempts:?}");
            assert_eq!(attempts.last().unwrap().outcome, AttemptOutcome::Success, "{attempts:?}");
            assert_eq!(request.cost_micros, ANSWER_COST, "{request:?}");
        } else {
            assert_eq!(request.cost_micros, 0, "{request:?}");
        }
        for failed in attempts.iter().filter(|a| a.outcome != AttemptOutcome::Success) {
            assert!(failed.error_kind.is_some(), "{failed:?}");
            assert_eq!(failed.cost_micros, 0, "{failed:?}");
        }
        assert_eq!(request.cost_micros, attempts.iter().map(|a| a.cost_micros).sum::<i64>());
    }
}

async fn a_chaotic_primary_never_reaches_the_client(mode: Mode, seed: u64) {
    let primary = MockUpstream::start().await;
    let secondary = MockUpstream::start().await;
    primary.set_default(chaos_upstream(seed, 0.6, mode, "model-a", "primary"));
    secondary.set_default(healthy("model-b", "secondary"));
    let gateway = Arc::new(TestGateway::start(&config(&primary, &secondary)).await);

    let results = send_many(&gateway, mode, 30, 3).await;
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
        let text = answer_text(mode, body);
        assert!(text == "from primary" || text == "from secondary", "{body}");
    }
    assert!(secondary.request_count() > 0, "the chaos never struck: pick another seed");

    let rows = ledger(&gateway).await;
    assert_eq!(rows.len(), 30, "one entry per request");
    assert!(rows.iter().all(|(r, _)| r.outcome == Outcome::Success));
    assert_each_entry_billed_once(&rows);
    assert_eq!(rows.iter().map(|(r, _)| r.cost_micros).sum::<i64>(), 30 * ANSWER_COST);
}

#[tokio::test]
async fn with_a_chaotic_primary_and_a_healthy_secondary_every_request_succeeds_and_is_billed_once() {
    a_chaotic_primary_never_reaches_the_client(Mode::Plain, 42).await;
}

#[tokio::test]
async fn with_a_chaotic_primary_and_a_healthy_secondary_every_stream_succeeds_and_is_billed_once() {
    a_chaotic_primary_never_reaches_the_client(Mode::Stream, 4242).await;
}

#[tokio::test]
async fn with_both_targets_chaotic_every_request_ends_in_an_answer_or_a_proper_error_and_is_recorded_once() {
    let primary = MockUpstream::start().await;
    let secondary = MockUpstream::start().await;
    primary.set_default(chaos_upstream(7, 0.5, Mode::Plain, "model-a", "primary"));
    secondary.set_default(chaos_upstream(11, 0.5, Mode::Plain, "model-b", "secondary"));
    let gateway = Arc::new(TestGateway::start(&config(&primary, &secondary)).await);

    let results = send_many(&gateway, Mode::Plain, 30, 3).await;
    let mut answered = 0;
    for (status, body) in &results {
        match status {
            200 => {
                answered += 1;
                assert!(answer_text(Mode::Plain, body).starts_with("from "), "{body}");
            }
            429 => {
                assert_openai_error(body, "rate_limit_error", "all_targets_failed");
            }
            502 => {
                assert_openai_error(body, "upstream_error", "all_targets_failed");
            }
            503 => {
                let value: Value = serde_json::from_str(body).unwrap();
                assert_eq!(value["error"]["type"], "service_unavailable_error", "{body}");
                let code = value["error"]["code"].as_str().unwrap();
                assert!(code == "all_targets_failed" || code == "no_target_available", "{body}");
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert!(answered > 0 && answered < 30, "{answered} of 30 answered: pick other seeds");

    let rows = ledger(&gateway).await;
    assert_eq!(rows.len(), 30, "one entry per request, answered or not");
    assert_each_entry_billed_once(&rows);
    let successes = rows.iter().filter(|(r, _)| r.outcome == Outcome::Success).count();
    assert_eq!(successes, answered);
    assert_eq!(rows.iter().map(|(r, _)| r.cost_micros).sum::<i64>(), answered as i64 * ANSWER_COST);
    let mut statuses: Vec<u16> = rows.iter().map(|(r, _)| r.status).collect();
    let mut seen: Vec<u16> = results.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    seen.sort();
    assert_eq!(statuses, seen, "the ledger records the status each client got");
}
