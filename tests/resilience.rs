//! Resilience over real HTTP: circuit breakers, rate-limit cooldowns and quota hints,
//! the routing strategies, hedging, concurrency limits, share caps, context-window
//! escalation, honest attribution, and `switchyard check`'s independence warning.
//!
//! Time-based behaviour (a circuit's `open_for`, a `retry-after`) uses short real
//! durations, and tests wait for it by sending requests until the expected target
//! answers, within a bound, never by sleeping for background work.
//!
//! The Prometheus recorder is shared by every gateway in this process, so tests that
//! read `/metrics` give their providers names no other test uses.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::openai_wire::{completion, text_chunks};
use support::{client, MockUpstream, Reply, StreamEnd, TestGateway};
use switchyard::ledger::{AttemptOutcome, AttemptRecord, LedgerStore, Outcome, RequestRecord};

/// Every answer is 1,000 tokens in and 500 out: 6,000 µ$ at the default test price.
const USAGE: (u64, u64) = (1000, 500);
const ANSWER_COST: i64 = 6_000;

/// One target of the route under test: its provider (named `name`, pointing at
/// `mock`) and the model it serves.
struct Target<'a> {
    name: &'a str,
    mock: &'a MockUpstream,
    model: &'a str,
    /// Extra provider settings, one TOML line each (`breaker = {…}`, `topology = {…}`).
    provider: &'a str,
    /// Extra fields of the route's target table (`weight = 3`).
    target: &'a str,
    /// (input, output) dollars per million tokens.
    price: (f64, f64),
}

impl<'a> Target<'a> {
    fn new(name: &'a str, mock: &'a MockUpstream, model: &'a str) -> Target<'a> {
        Target { name, mock, model, provider: "", target: "", price: (2.0, 8.0) }
    }

    fn provider(mut self, settings: &'a str) -> Self {
        self.provider = settings;
        self
    }

    fn target(mut self, fields: &'a str) -> Self {
        self.target = fields;
        self
    }

    fn price(mut self, input: f64, output: f64) -> Self {
        self.price = (input, output);
        self
    }
}

/// A route `chat` over `targets` in order, with `route` settings (TOML lines) after
/// fast retry defaults; every provider is priced in a `test` catalog.
fn config(targets: &[Target<'_>], route: &str) -> String {
    let mut toml = String::from("[ledger]\nurl = \"{LEDGER}\"\nflush_interval = \"10ms\"\n");
    for t in targets {
        toml += &format!(
            "\n[providers.{}]\nkind = \"openai-compatible\"\nbase_url = \"{}/v1\"\ncatalog = \"test\"\n{}\n",
            t.name,
            t.mock.base_url(),
            t.provider
        );
    }
    let list: Vec<String> = targets
        .iter()
        .map(|t| {
            let extra = if t.target.is_empty() { String::new() } else { format!(", {}", t.target) };
            format!("{{ provider = \"{}\", model = \"{}\"{extra} }}", t.name, t.model)
        })
        .collect();
    toml += &format!("\n[routes.chat]\ntargets = [{}]\nbackoff = \"10ms\"\nmax_backoff = \"20ms\"\n{route}\n", list.join(", "));
    for t in targets {
        toml += &format!(
            "\n[[prices]]\nprovider = \"test\"\nmodel = \"{}\"\neffective_from = \"2020-01-01\"\ninput_per_mtok = {:?}\noutput_per_mtok = {:?}\n",
            t.model, t.price.0, t.price.1
        );
    }
    toml
}

fn hello(stream: bool) -> Value {
    json!({"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "hello"}]})
}

/// A successful answer from `model`, saying `text`.
fn answer(model: &str, text: &str) -> Reply {
    Reply::json(200, completion(model, text, USAGE))
}

fn failing() -> Reply {
    Reply::openai_error(500, "server_error", "the server had an error")
}

/// What the client saw of one request.
#[derive(Debug)]
struct Seen {
    status: u16,
    target: Option<String>,
    attempts: Option<String>,
    retry_after: Option<String>,
    body: String,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn answered_by(&self, target: &str) -> bool {
        self.status == 200 && self.target.as_deref() == Some(target)
    }
}

async fn ask(gateway: &TestGateway, stream: bool) -> Seen {
    let response = gateway.post_chat(&hello(stream)).await;
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (status, target, attempts, retry_after) =
        (response.status().as_u16(), header("x-switchyard-target"), header("x-switchyard-attempts"), header("retry-after"));
    Seen { status, target, attempts, retry_after, body: response.text().await.unwrap() }
}

/// Sends requests every 20 ms until `target` answers one; panics after `limit`.
/// Returns that answer and when it came.
async fn until_answered_by(gateway: &TestGateway, target: &str, limit: Duration) -> (Seen, Instant) {
    let started = Instant::now();
    loop {
        let seen = ask(gateway, false).await;
        if seen.answered_by(target) {
            return (seen, Instant::now());
        }
        assert!(started.elapsed() < limit, "{target} did not answer within {limit:?}; last: {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

/// Nothing billed twice: each entry costs what its one answering attempt cost, failed,
/// cancelled and skipped attempts cost nothing, and the total is `answers × each`.
fn assert_billed_once(rows: &LedgerRows, each: i64) {
    let mut answers = 0;
    for (request, attempts) in rows {
        assert_eq!(request.attempt_count as usize, attempts.len());
        let answering: Vec<_> = attempts.iter().filter(|a| a.outcome == AttemptOutcome::Success).collect();
        assert!(answering.len() <= 1, "{attempts:?}");
        for other in attempts.iter().filter(|a| a.outcome != AttemptOutcome::Success) {
            assert_eq!((other.usage.output_tokens, other.cost_micros), (0, 0), "{other:?}");
        }
        if request.outcome == Outcome::Success {
            answers += 1;
            assert_eq!(request.cost_micros, each, "{request:?}");
        } else {
            assert_eq!(request.cost_micros, 0, "{request:?}");
        }
    }
    assert_eq!(rows.iter().map(|(r, _)| r.cost_micros).sum::<i64>(), answers * each);
}

/// The value of `switchyard_circuit_state{target="…"}` on `/metrics`.
async fn circuit_state(gateway: &TestGateway, target: &str) -> Option<f64> {
    let text = client().get(format!("{}/metrics", gateway.url)).send().await.unwrap().text().await.unwrap();
    let series = format!("switchyard_circuit_state{{target=\"{target}\"}}");
    text.lines().find_map(|line| line.strip_prefix(&series)).map(|value| value.trim().parse().unwrap())
}

// ---------------------------------------------------------------------------
// Circuit breakers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn consecutive_5xx_open_the_primarys_circuit_and_a_successful_half_open_probe_closes_it() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(failing());
    secondary.set_default(answer("model-b", "from secondary"));
    let targets = [
        Target::new("brk-open-primary", &primary, "model-a")
            .provider(r#"breaker = { consecutive_failures = 3, open_for = "500ms" }"#),
        Target::new("brk-open-secondary", &secondary, "model-b"),
    ];
    let gateway = TestGateway::start(&config(&targets, "retries = 0")).await;
    let label = "brk-open-primary/model-a";

    for _ in 0..3 {
        let seen = ask(&gateway, false).await;
        assert!(seen.answered_by("brk-open-secondary/model-b"), "{seen:?}");
        assert_eq!(seen.attempts.as_deref(), Some("2"));
    }
    let opened = Instant::now();
    assert_eq!(primary.request_count(), 3);
    assert_eq!(circuit_state(&gateway, label).await, Some(2.0), "open");

    // Open: requests go straight to the secondary; the primary sees nothing.
    for _ in 0..3 {
        let seen = ask(&gateway, false).await;
        assert!(seen.answered_by("brk-open-secondary/model-b"), "{seen:?}");
        assert_eq!(seen.attempts.as_deref(), Some("1"), "an open circuit costs no attempt");
    }
    assert_eq!(primary.request_count(), 3, "no request reaches an open circuit");

    // The primary recovers; after open_for a half-open probe finds out and closes it.
    primary.set_default(answer("model-a", "from primary"));
    let (probe, probed) = until_answered_by(&gateway, label, Duration::from_secs(3)).await;
    assert!(probed - opened >= Duration::from_millis(450), "probed after only {:?}", probed - opened);
    assert_eq!(probe.attempts.as_deref(), Some("1"));
    assert_eq!(primary.request_count(), 4, "exactly one probe");
    assert_eq!(circuit_state(&gateway, label).await, Some(0.0), "closed");
    for _ in 0..3 {
        assert!(ask(&gateway, false).await.answered_by(label), "traffic returns to the primary");
    }

    let rows = ledger(&gateway).await;
    assert_billed_once(&rows, ANSWER_COST);
    let first_three: Vec<_> = rows[..3].iter().map(|(_, a)| (a[0].error_kind.clone(), a[0].status)).collect();
    assert_eq!(first_three, vec![(Some("upstream_5xx".to_owned()), Some(500)); 3]);
    gateway.shutdown().await;
}

#[tokio::test]
async fn streams_that_break_after_their_first_token_open_the_circuit_of_the_target_that_broke_them() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    let mut broken = text_chunks("model-a", &["partial ", "answer"], None);
    broken.truncate(2); // the role chunk and the first piece, then the connection drops
    primary.set_default(Reply::sse(broken).with_end(StreamEnd::Cut));
    secondary.set_default(Reply::sse(text_chunks("model-b", &["from secondary"], None)));
    let targets = [
        Target::new("brk-stream-primary", &primary, "model-a")
            .provider(r#"breaker = { consecutive_failures = 2, open_for = "60s" }"#),
        Target::new("brk-stream-secondary", &secondary, "model-b"),
    ];
    let gateway = TestGateway::start(&config(&targets, "retries = 0")).await;
    let label = "brk-stream-primary/model-a";

    // Once content has reached the client there is no switch: each break is the
    // client's to see, and the primary's to answer for.
    for _ in 0..2 {
        let seen = ask(&gateway, true).await;
        assert_eq!(seen.target.as_deref(), Some(label), "{seen:?}");
        assert!(seen.body.contains("stream_interrupted") && !seen.body.contains("[DONE]"), "{}", seen.body);
    }
    assert_eq!(circuit_state(&gateway, label).await, Some(2.0), "open after two broken streams");
    let seen = ask(&gateway, true).await;
    assert_eq!(seen.target.as_deref(), Some("brk-stream-secondary/model-b"), "{seen:?}");
    assert!(seen.body.contains("from secondary") && seen.body.contains("[DONE]"), "{}", seen.body);
    assert_eq!(primary.request_count(), 2, "no request reaches the open circuit");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_failed_probe_reopens_the_circuit_and_with_every_circuit_open_the_client_gets_503_with_retry_after() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(failing());
    secondary.set_default(failing());
    let breaker = r#"breaker = { consecutive_failures = 1, open_for = "400ms" }"#;
    let targets = [
        Target::new("brk-probe-primary", &primary, "model-a").provider(breaker),
        Target::new("brk-probe-secondary", &secondary, "model-b").provider(breaker),
    ];
    let gateway = TestGateway::start(&config(&targets, "retries = 0")).await;

    let first = ask(&gateway, false).await;
    assert_eq!(first.status, 502, "{first:?}");

    // Both circuits are open: no target can take the request.
    let refused = ask(&gateway, false).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.retry_after.as_deref(), Some("1"), "when a circuit may half-open, rounded up");
    let error = refused.json();
    assert_eq!(error["error"]["type"], "service_unavailable_error");
    assert_eq!(error["error"]["code"], "no_target_available");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("brk-probe-primary/model-a: circuit_open") && message.contains("brk-probe-secondary/model-b: circuit_open"), "{message}");
    assert_eq!((primary.request_count(), secondary.request_count()), (1, 1));

    // After open_for, one probe per target; both fail, so both circuits open again. The
    // secondary's circuit opened a moment after the primary's, so a request may find
    // only the primary half-open: keep asking until both have been probed.
    let started = Instant::now();
    while primary.request_count() < 2 || secondary.request_count() < 2 {
        assert!(started.elapsed() < Duration::from_secs(3), "no half-open probe within 3 s");
        let seen = ask(&gateway, false).await;
        assert!(seen.status == 503 || seen.status == 502, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((primary.request_count(), secondary.request_count()), (2, 2), "one probe each");
    let again = ask(&gateway, false).await;
    assert_eq!(again.status, 503, "{again:?}");
    assert!(again.json()["error"]["message"].as_str().unwrap().contains("brk-probe-primary/model-a: circuit_open"), "{again:?}");
    assert_eq!((primary.request_count(), secondary.request_count()), (2, 2));
    assert_eq!(circuit_state(&gateway, "brk-probe-primary/model-a").await, Some(2.0));
    assert_eq!(circuit_state(&gateway, "brk-probe-secondary/model-b").await, Some(2.0));

    let rows = ledger(&gateway).await;
    assert_billed_once(&rows, ANSWER_COST);
    let refused_rows: Vec<_> = rows.iter().filter(|(r, _)| r.status == 503).collect();
    assert!(!refused_rows.is_empty());
    assert!(refused_rows.iter().all(|(r, a)| a.is_empty() && r.outcome == Outcome::UpstreamError && r.cost_micros == 0));
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_high_error_rate_opens_the_circuit_without_consecutive_failures() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    // Every other request fails: never two in a row.
    primary.set_default(Reply::schedule(vec![failing(), answer("model-a", "from primary")]));
    secondary.set_default(answer("model-b", "from secondary"));
    let targets = [
        Target::new("brk-rate-primary", &primary, "model-a")
            .provider(r#"breaker = { consecutive_failures = 100, error_rate = 0.5, min_requests = 4, window = "30s", open_for = "30s" }"#),
        Target::new("brk-rate-secondary", &secondary, "model-b"),
    ];
    let gateway = TestGateway::start(&config(&targets, "retries = 0")).await;

    // Fail, ok, fail, ok: 2 of 4 failed. The fifth (a failure) makes it 3 of 5.
    for _ in 0..5 {
        assert_eq!(ask(&gateway, false).await.status, 200);
    }
    assert_eq!(primary.request_count(), 5);
    assert_eq!(circuit_state(&gateway, "brk-rate-primary/model-a").await, Some(2.0));
    let skipped = ask(&gateway, false).await;
    assert!(skipped.answered_by("brk-rate-secondary/model-b"), "{skipped:?}");
    assert_eq!(skipped.attempts.as_deref(), Some("1"));
    assert_eq!(primary.request_count(), 5);
    gateway.shutdown().await;
}

#[tokio::test]
async fn while_a_half_open_probe_is_in_flight_other_requests_skip_the_target() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.push(failing());
    primary.set_default(Reply::delayed(Duration::from_millis(500), answer("model-a", "slow probe")));
    secondary.set_default(answer("model-b", "from secondary"));
    let targets = [
        Target::new("brk-halfopen-primary", &primary, "model-a")
            .provider(r#"breaker = { consecutive_failures = 1, open_for = "300ms", half_open_probes = 1 }"#),
        Target::new("brk-halfopen-secondary", &secondary, "model-b"),
    ];
    let gateway = Arc::new(TestGateway::start(&config(&targets, "retries = 0")).await);

    assert!(ask(&gateway, false).await.answered_by("brk-halfopen-secondary/model-b"));
    // Once open_for has passed, the next request is the probe.
    tokio::time::sleep_until((Instant::now() + Duration::from_millis(350)).into()).await;
    let probe = tokio::spawn({
        let gateway = gateway.clone();
        async move { ask(&gateway, false).await }
    });
    primary.wait_for_requests(2).await;
    for _ in 0..3 {
        let seen = ask(&gateway, false).await;
        assert!(seen.answered_by("brk-halfopen-secondary/model-b"), "{seen:?}");
        assert_eq!(seen.attempts.as_deref(), Some("1"), "one probe at a time");
    }
    assert_eq!(primary.request_count(), 2);
    assert!(probe.await.unwrap().answered_by("brk-halfopen-primary/model-a"));
    assert_eq!(circuit_state(&gateway, "brk-halfopen-primary/model-a").await, Some(0.0));
}

// ---------------------------------------------------------------------------
// Rate-limit cooldowns and quota hints
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_429_with_retry_after_makes_the_next_requests_skip_the_primary_until_it_has_passed() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.push(Reply::rate_limited(1));
    primary.set_default(answer("model-a", "from primary"));
    secondary.set_default(answer("model-b", "from secondary"));
    let targets = [Target::new("primary", &primary, "model-a"), Target::new("secondary", &secondary, "model-b")];
    let gateway = TestGateway::start(&config(&targets, "retries = 0")).await;

    let limited = ask(&gateway, false).await;
    let limited_at = Instant::now();
    assert!(limited.answered_by("secondary/model-b"), "{limited:?}");
    assert_eq!(limited.attempts.as_deref(), Some("2"));

    let skipped = ask(&gateway, false).await;
    assert!(skipped.answered_by("secondary/model-b"), "{skipped:?}");
    assert_eq!(skipped.attempts.as_deref(), Some("1"), "the cooling primary is not even tried");
    assert_eq!(primary.request_count(), 1);

    let (_, back_at) = until_answered_by(&gateway, "primary/model-a", Duration::from_secs(3)).await;
    assert!(back_at - limited_at >= Duration::from_millis(900), "back after only {:?}", back_at - limited_at);
    assert_eq!(primary.request_count(), 2);

    let rows = ledger(&gateway).await;
    let limited_attempt = &rows[0].1[0];
    assert_eq!(limited_attempt.error_kind.as_deref(), Some("rate_limited"));
    assert_eq!((limited_attempt.status, limited_attempt.retry_after_ms), (Some(429), Some(1000)));
    assert_billed_once(&rows, ANSWER_COST);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_primary_reporting_its_quota_used_up_is_skipped_until_the_quota_resets() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(
        answer("model-a", "from primary")
            .with_header("x-ratelimit-limit-requests", "100")
            .with_header("x-ratelimit-remaining-requests", "0")
            .with_header("x-ratelimit-reset-requests", "1s"),
    );
    secondary.set_default(answer("model-b", "from secondary"));
    let targets = [Target::new("primary", &primary, "model-a"), Target::new("secondary", &secondary, "model-b")];
    let gateway = TestGateway::start(&config(&targets, "retries = 0")).await;

    assert!(ask(&gateway, false).await.answered_by("primary/model-a"));
    let exhausted_at = Instant::now();
    let skipped = ask(&gateway, false).await;
    assert!(skipped.answered_by("secondary/model-b"), "{skipped:?}");
    assert_eq!(skipped.attempts.as_deref(), Some("1"), "steered away before a 429, not after");
    assert_eq!(primary.request_count(), 1);

    let (_, back_at) = until_answered_by(&gateway, "primary/model-a", Duration::from_secs(3)).await;
    assert!(back_at - exhausted_at >= Duration::from_millis(900), "back after only {:?}", back_at - exhausted_at);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_primary_nearly_out_of_quota_is_tried_after_the_secondary_but_still_tried() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(
        answer("model-a", "from primary")
            .with_header("x-ratelimit-limit-requests", "1000")
            .with_header("x-ratelimit-remaining-requests", "10")
            .with_header("x-ratelimit-reset-requests", "30s"),
    );
    secondary.set_default(answer("model-b", "from secondary"));
    let targets = [Target::new("primary", &primary, "model-a"), Target::new("secondary", &secondary, "model-b")];
    let gateway = TestGateway::start(&config(&targets, "retries = 0")).await;

    assert!(ask(&gateway, false).await.answered_by("primary/model-a"));
    let demoted = ask(&gateway, false).await;
    assert!(demoted.answered_by("secondary/model-b"), "1% of quota left: the secondary goes first; {demoted:?}");
    assert_eq!(demoted.attempts.as_deref(), Some("1"));

    secondary.set_default(failing());
    let fallback = ask(&gateway, false).await;
    assert!(fallback.answered_by("primary/model-a"), "a demoted target still answers; {fallback:?}");
    assert_eq!(fallback.attempts.as_deref(), Some("2"));
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_weighted_strategy_splits_traffic_in_proportion_to_the_weights() {
    let (heavy, light) = (MockUpstream::start().await, MockUpstream::start().await);
    heavy.set_default(answer("model-a", "heavy"));
    light.set_default(answer("model-b", "light"));
    let targets = [
        Target::new("heavy", &heavy, "model-a").target("weight = 3"),
        Target::new("light", &light, "model-b").target("weight = 1"),
    ];
    let gateway = Arc::new(TestGateway::start(&config(&targets, "strategy = \"weighted\"")).await);

    for _ in 0..20 {
        let calls: Vec<_> = (0..10)
            .map(|_| {
                let gateway = gateway.clone();
                tokio::spawn(async move { ask(&gateway, false).await.status })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap(), 200);
        }
    }

    // 200 draws at 3:1: mean 150, standard deviation about 6; allow four of them.
    let (h, l) = (heavy.request_count(), light.request_count());
    assert_eq!(h + l, 200, "every request answered by one target, once");
    assert!((125..=175).contains(&h), "heavy {h}, light {l}");
    let rows = ledger(&gateway).await;
    assert_eq!(rows.len(), 200);
    assert_billed_once(&rows, ANSWER_COST);
}

#[tokio::test]
async fn the_cheapest_strategy_sends_traffic_to_the_cheaper_target_and_bills_its_price() {
    let (pricey, cheap) = (MockUpstream::start().await, MockUpstream::start().await);
    pricey.set_default(answer("model-a", "pricey"));
    cheap.set_default(answer("model-b", "cheap"));
    let targets = [
        Target::new("pricey", &pricey, "model-a").price(10.0, 30.0),
        Target::new("cheap", &cheap, "model-b").price(0.1, 0.4),
    ];
    let gateway = TestGateway::start(&config(&targets, "strategy = \"cheapest\"\nretries = 0")).await;

    for _ in 0..5 {
        assert!(ask(&gateway, false).await.answered_by("cheap/model-b"));
    }
    assert_eq!(pricey.request_count(), 0);

    cheap.set_default(failing());
    assert!(ask(&gateway, false).await.answered_by("pricey/model-a"), "the pricier target is the fallback");

    // 1,000 × $0.10/M + 500 × $0.40/M = 100 + 200 µ$; 1,000 × $10/M + 500 × $30/M = 25,000 µ$.
    let rows = ledger(&gateway).await;
    let costs: Vec<i64> = rows.iter().map(|(r, _)| r.cost_micros).collect();
    assert_eq!(costs, [300, 300, 300, 300, 300, 25_000]);
    gateway.shutdown().await;
}

#[tokio::test]
async fn the_least_latency_strategy_sends_most_traffic_to_the_faster_target() {
    let (slow, fast) = (MockUpstream::start().await, MockUpstream::start().await);
    slow.set_default(Reply::delayed(Duration::from_millis(150), answer("model-a", "slow")));
    fast.set_default(answer("model-b", "fast"));
    let targets = [Target::new("slow", &slow, "model-a"), Target::new("fast", &fast, "model-b")];
    let gateway = TestGateway::start(&config(&targets, "strategy = \"least-latency\"")).await;

    for _ in 0..20 {
        assert_eq!(ask(&gateway, false).await.status, 200);
    }

    // Each target is measured once (unmeasured targets go first), then the faster wins.
    let (s, f) = (slow.request_count(), fast.request_count());
    assert_eq!(s + f, 20);
    assert!(s >= 1, "the slow target was never measured");
    assert!(s <= 3, "slow {s}, fast {f}");
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------
// Hedging
// ---------------------------------------------------------------------------

async fn hedged(stream: bool) {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(Reply::StallBeforeHeaders(Duration::from_secs(2)));
    secondary.set_default(if stream {
        Reply::sse(text_chunks("model-b", &["from ", "secondary"], Some(USAGE)))
    } else {
        answer("model-b", "from secondary")
    });
    let targets = [Target::new("primary", &primary, "model-a"), Target::new("secondary", &secondary, "model-b")];
    let gateway = TestGateway::start(&config(&targets, "hedge_after = \"100ms\"\nretries = 0")).await;

    let started = Instant::now();
    let seen = ask(&gateway, stream).await;
    let took = started.elapsed();
    assert!(seen.answered_by("secondary/model-b"), "{seen:?}");
    assert!(seen.body.contains("secondary"), "{seen:?}");
    assert!(took < Duration::from_millis(1000), "the hedge should win long before the 2 s stall ends: {took:?}");
    assert!(took >= Duration::from_millis(100), "the hedge started before hedge_after: {took:?}");
    assert_eq!(seen.attempts.as_deref(), Some("2"));
    assert_eq!((primary.request_count(), secondary.request_count()), (1, 1));

    let rows = ledger(&gateway).await;
    assert_eq!(rows.len(), 1);
    let (request, attempts) = &rows[0];
    assert_eq!(request.outcome, Outcome::Success);
    assert_eq!(request.target.as_deref(), Some("secondary/model-b"));
    assert_eq!(attempts.len(), 2);
    assert_eq!(&*attempts[0].target, "primary/model-a");
    assert_eq!(attempts[0].outcome, AttemptOutcome::Cancelled);
    assert_eq!(attempts[0].error_kind.as_deref(), Some("hedge_lost"));
    assert_eq!(attempts[1].outcome, AttemptOutcome::Success);
    assert_eq!(request.cost_micros, ANSWER_COST, "the lost hedge costs nothing");
    assert_billed_once(&rows, ANSWER_COST);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_stalled_primary_is_hedged_after_hedge_after_and_the_faster_secondary_answers() {
    hedged(false).await;
}

#[tokio::test]
async fn a_stalled_primary_is_hedged_for_a_stream_too() {
    hedged(true).await;
}

#[tokio::test]
async fn a_primary_answering_before_hedge_after_is_not_hedged() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(answer("model-a", "from primary"));
    secondary.set_default(answer("model-b", "from secondary"));
    let targets = [Target::new("primary", &primary, "model-a"), Target::new("secondary", &secondary, "model-b")];
    let gateway = TestGateway::start(&config(&targets, "hedge_after = \"500ms\"")).await;

    let seen = ask(&gateway, false).await;
    assert!(seen.answered_by("primary/model-a"), "{seen:?}");
    assert_eq!(seen.attempts.as_deref(), Some("1"));
    assert_eq!(secondary.request_count(), 0);
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------
// Concurrency limits
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_provider_at_its_concurrency_limit_sends_the_next_request_to_the_secondary() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(Reply::delayed(Duration::from_millis(800), answer("model-a", "slow primary")));
    secondary.set_default(answer("model-b", "from secondary"));
    let targets = [
        Target::new("primary", &primary, "model-a").provider("max_concurrency = 1"),
        Target::new("secondary", &secondary, "model-b"),
    ];
    let gateway = Arc::new(TestGateway::start(&config(&targets, "queue_timeout = \"100ms\"\nretries = 0")).await);

    let first = tokio::spawn({
        let gateway = gateway.clone();
        async move { ask(&gateway, false).await }
    });
    primary.wait_for_requests(1).await;
    let second = ask(&gateway, false).await;
    assert!(second.answered_by("secondary/model-b"), "{second:?}");
    assert_eq!(second.attempts.as_deref(), Some("2"));
    assert_eq!(primary.request_count(), 1, "the busy primary was not sent a second request");
    let first = first.await.unwrap();
    assert!(first.answered_by("primary/model-a"), "{first:?}");

    let rows = ledger(&gateway).await;
    let (_, attempts) = rows.iter().find(|(r, _)| r.target.as_deref() == Some("secondary/model-b")).unwrap();
    assert_eq!(attempts[0].error_kind.as_deref(), Some("target_saturated"));
    assert_eq!(attempts[0].status, None, "no upstream call was made");
    assert_billed_once(&rows, ANSWER_COST);
}

#[tokio::test]
async fn a_route_at_its_concurrency_limit_answers_429_route_concurrency_limit() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(Reply::delayed(Duration::from_millis(800), answer("model-a", "slow primary")));
    secondary.set_default(answer("model-b", "from secondary"));
    let targets = [Target::new("primary", &primary, "model-a"), Target::new("secondary", &secondary, "model-b")];
    let gateway = Arc::new(TestGateway::start(&config(&targets, "max_concurrency = 1\nqueue_timeout = \"100ms\"")).await);

    let first = tokio::spawn({
        let gateway = gateway.clone();
        async move { ask(&gateway, false).await }
    });
    primary.wait_for_requests(1).await;
    let started = Instant::now();
    let refused = ask(&gateway, false).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(started.elapsed() >= Duration::from_millis(100), "refused before queue_timeout");
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    let error = refused.json();
    assert_eq!(error["error"]["type"], "rate_limit_error");
    assert_eq!(error["error"]["code"], "route_concurrency_limit");
    assert_eq!((primary.request_count(), secondary.request_count()), (1, 0), "a refused request reaches no upstream");

    assert!(first.await.unwrap().answered_by("primary/model-a"));
    assert!(ask(&gateway, false).await.answered_by("primary/model-a"), "the slot is free again");
}

// ---------------------------------------------------------------------------
// Share caps
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_cloud_share_cap_keeps_the_split_near_the_cap_even_though_the_first_target_has_priority() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(answer("model-a", "aws"));
    secondary.set_default(answer("model-b", "gcp"));
    let targets = [
        Target::new("primary", &primary, "model-a").provider(r#"topology = { cloud = "aws" }"#),
        Target::new("secondary", &secondary, "model-b").provider(r#"topology = { cloud = "gcp" }"#),
    ];
    let gateway = TestGateway::start(&config(&targets, "max_share = { cloud = 0.5 }\nshare_window = \"5m\"")).await;

    let mut answered_by_primary = Vec::new();
    for _ in 0..40 {
        let seen = ask(&gateway, false).await;
        assert_eq!(seen.status, 200);
        answered_by_primary.push(seen.target.as_deref() == Some("primary/model-a"));
    }

    // Below ten answers in the window a cap is noise, so priority rules...
    assert!(answered_by_primary[..10].iter().all(|p| *p), "{answered_by_primary:?}");
    // ...then the capped cloud waits until its share is back under the cap.
    let total = answered_by_primary.iter().filter(|p| **p).count();
    let last_20 = answered_by_primary[20..].iter().filter(|p| **p).count();
    assert!((18..=22).contains(&total), "aws answered {total} of 40: {answered_by_primary:?}");
    assert!((8..=12).contains(&last_20), "aws answered {last_20} of the last 20: {answered_by_primary:?}");
    assert!(answered_by_primary[10..].iter().any(|p| !p));

    let rows = ledger(&gateway).await;
    assert_eq!(rows.len(), 40);
    assert!(rows.iter().all(|(r, a)| r.attempt_count == 1 && a.len() == 1), "a cap reorders; it costs no failed attempt");
    assert_billed_once(&rows, ANSWER_COST);

    // A cap never makes the route fail: with the other cloud down, the capped one answers.
    secondary.set_default(failing());
    for _ in 0..2 {
        let seen = ask(&gateway, false).await;
        assert!(seen.answered_by("primary/model-a"), "{seen:?}");
    }
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------
// Context-window escalation
// ---------------------------------------------------------------------------

fn context_too_long(limit: u64) -> Reply {
    Reply::json(
        400,
        json!({"error": {
            "message": format!("This model's maximum context length is {limit} tokens. However, your messages resulted in 9000 tokens."),
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded"
        }}),
    )
}

#[tokio::test]
async fn a_prompt_too_long_for_the_primary_is_answered_by_a_target_with_a_larger_context_window() {
    let (small, smaller, large) = (MockUpstream::start().await, MockUpstream::start().await, MockUpstream::start().await);
    small.set_default(context_too_long(8192));
    smaller.set_default(answer("model-b", "never asked"));
    large.set_default(answer("model-c", "from the large window"));
    let targets = [
        Target::new("small", &small, "model-a").target("context_window = 8192"),
        Target::new("smaller", &smaller, "model-b").target("context_window = 4096"),
        Target::new("large", &large, "model-c").target("context_window = 128000"),
    ];
    let gateway = TestGateway::start(&config(&targets, "retries = 2")).await;

    let seen = ask(&gateway, false).await;
    assert!(seen.answered_by("large/model-c"), "{seen:?}");
    assert_eq!(seen.json()["choices"][0]["message"]["content"], "from the large window");
    assert_eq!(seen.attempts.as_deref(), Some("2"));
    assert_eq!(small.request_count(), 1, "a prompt too long is not retried in place");
    assert_eq!(smaller.request_count(), 0, "a smaller window cannot help");

    let rows = ledger(&gateway).await;
    let (request, attempts) = &rows[0];
    assert_eq!(request.failover_reason.as_deref(), Some("context_too_long"));
    assert_eq!((attempts[0].error_kind.as_deref(), attempts[0].status), (Some("context_too_long"), Some(400)));
    assert_billed_once(&rows, ANSWER_COST);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_prompt_too_long_for_every_larger_window_is_a_400_with_the_upstreams_code_and_message() {
    let (small, smaller) = (MockUpstream::start().await, MockUpstream::start().await);
    small.set_default(context_too_long(8192));
    smaller.set_default(answer("model-b", "never asked"));
    let targets = [
        Target::new("small", &small, "model-a").target("context_window = 8192"),
        Target::new("smaller", &smaller, "model-b").target("context_window = 4096"),
    ];
    let gateway = TestGateway::start(&config(&targets, "retries = 2")).await;

    let seen = ask(&gateway, false).await;
    assert_eq!(seen.status, 400, "{seen:?}");
    let error = seen.json();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["code"], "context_length_exceeded");
    assert!(error["error"]["message"].as_str().unwrap().contains("This model's maximum context length is 8192 tokens"), "{error}");
    assert_eq!((small.request_count(), smaller.request_count()), (1, 0));

    let rows = ledger(&gateway).await;
    assert_eq!(rows[0].0.outcome, Outcome::ClientError);
    assert_eq!(rows[0].0.status, 400);
    assert_eq!(rows[0].0.cost_micros, 0);
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------
// Honest attribution
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_answer_names_the_model_and_target_that_really_answered() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(failing());
    // Upstreams answer with the dated snapshot they ran, not the id they were asked for.
    secondary.set_default(Reply::handler(|request| {
        if request.json()["stream"] == true {
            Reply::sse(text_chunks("model-b-2025-01-01", &["from ", "secondary"], Some(USAGE)))
        } else {
            answer("model-b-2025-01-01", "from secondary")
        }
    }));
    let targets = [Target::new("primary", &primary, "model-a"), Target::new("secondary", &secondary, "model-b")];
    let gateway = TestGateway::start(&config(&targets, "retries = 1")).await;

    let plain = ask(&gateway, false).await;
    assert!(plain.answered_by("secondary/model-b"), "{plain:?}");
    assert_eq!(plain.attempts.as_deref(), Some("3"), "two primary attempts, then the secondary");
    assert_eq!(plain.json()["model"], "model-b-2025-01-01");

    let streamed = ask(&gateway, true).await;
    assert!(streamed.answered_by("secondary/model-b"), "{streamed:?}");
    let chunks: Vec<Value> = streamed
        .body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(!chunks.is_empty() && chunks.iter().all(|c| c["model"] == "model-b-2025-01-01"), "{}", streamed.body);
    assert!(!streamed.body.contains("\"model\":\"chat\""), "the route name is not a model");

    let rows = ledger(&gateway).await;
    for ((request, attempts), seen) in rows.iter().zip([&plain, &streamed]) {
        assert_eq!(request.target.as_deref(), seen.target.as_deref());
        assert_eq!(Some(request.attempt_count.to_string()), seen.attempts);
        // The ledger names the snapshot the upstream said answered, as the client sees it.
        assert_eq!(request.model.as_deref(), Some("model-b-2025-01-01"));
        assert_eq!(&*attempts.last().unwrap().target, "secondary/model-b");
    }
    assert_billed_once(&rows, ANSWER_COST);
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------
// `switchyard check`: independent fallbacks
// ---------------------------------------------------------------------------

/// Runs `switchyard check` on a route over two providers in clouds `a` and `b`.
fn check(cloud_a: &str, cloud_b: &str, route_settings: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    let toml = format!(
        r#"
[providers.one]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
topology = {{ cloud = "{cloud_a}" }}

[providers.two]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
topology = {{ cloud = "{cloud_b}" }}

[routes.chat]
targets = [{{ provider = "one", model = "m" }}, {{ provider = "two", model = "m" }}]
{route_settings}
"#
    );
    std::fs::write(&path, toml).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_switchyard")).args(["check", "--config"]).arg(&path).output().unwrap()
}

const SAME_CLOUD: &str = r#"routes.chat.targets: every target runs with cloud "aws": an outage there takes the whole route down"#;

#[test]
fn check_warns_when_every_target_of_a_route_runs_in_one_cloud() {
    let output = check("aws", "aws", "");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&format!("warning: {SAME_CLOUD}")), "{stdout}");
}

#[test]
fn check_fails_when_the_route_requires_an_independent_fallback() {
    let output = check("aws", "aws", "require_independent_fallback = \"error\"");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(stderr.contains(SAME_CLOUD), "{stderr}");
}

#[test]
fn check_is_quiet_about_targets_in_different_clouds() {
    let output = check("aws", "gcp", "require_independent_fallback = \"error\"");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!stdout.contains("every target runs with"), "{stdout}");
}

// ---------------------------------------------------------------------------
// Deadlines and departures
// ---------------------------------------------------------------------------

#[tokio::test]
async fn when_the_total_deadline_passes_the_error_counts_only_the_attempts_made() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(Reply::StallBeforeHeaders(Duration::from_secs(5)));
    secondary.set_default(answer("model-b", "too late to ask"));
    let targets = [Target::new("primary", &primary, "model-a"), Target::new("secondary", &secondary, "model-b")];
    let gateway = TestGateway::start(&config(&targets, "total_timeout = \"300ms\"")).await;

    let started = Instant::now();
    let seen = ask(&gateway, false).await;
    assert!(started.elapsed() < Duration::from_secs(2), "the deadline bounds the request: {:?}", started.elapsed());
    assert_eq!(seen.status, 502, "{seen:?}");
    let message = seen.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("total deadline"), "{message}");
    assert_eq!(secondary.request_count(), 0, "no time was left for the secondary");

    let rows = ledger(&gateway).await;
    assert_eq!(rows[0].0.attempt_count, 1);
    assert!(message.starts_with("Every target of route 'chat' failed (1 attempts)"), "one attempt was made: {message}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_client_that_leaves_during_failover_still_leaves_one_entry_listing_the_attempts_made() {
    let (primary, secondary) = (MockUpstream::start().await, MockUpstream::start().await);
    primary.set_default(Reply::StallBeforeHeaders(Duration::from_secs(10)));
    secondary.set_default(answer("model-b", "nobody is listening"));
    let targets = [Target::new("primary", &primary, "model-a"), Target::new("secondary", &secondary, "model-b")];
    let gateway = TestGateway::start(&config(&targets, "attempt_timeout = \"10s\"")).await;

    let impatient = reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(300)).build().unwrap();
    let gone = impatient
        .post(format!("{}/v1/chat/completions", gateway.url))
        .header("content-type", "application/json")
        .body(hello(false).to_string())
        .send()
        .await;
    assert!(gone.unwrap_err().is_timeout());
    primary.wait_for_requests(1).await;

    // The gateway notices the closed connection and settles the request.
    let started = Instant::now();
    let rows = loop {
        let rows = ledger(&gateway).await;
        if !rows.is_empty() {
            break rows;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "no ledger entry 3 s after the client left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(rows.len(), 1);
    let (request, attempts) = &rows[0];
    assert_eq!(request.outcome, Outcome::Cancelled);
    assert_eq!(request.cost_micros, 0);
    assert_eq!(attempts.len(), 1, "the primary was called, so its attempt is listed: {request:?}");
    assert_eq!(&*attempts[0].target, "primary/model-a");
    assert_eq!(attempts[0].outcome, AttemptOutcome::Cancelled);
    gateway.shutdown().await;
}
