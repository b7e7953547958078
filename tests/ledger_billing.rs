//! The money: every routed request is one ledger entry with all its attempts, priced
//! at the catalog price in force, never billed twice, and flushed on shutdown.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::openai_wire::{completion, text_chunks};
use support::{MockUpstream, Reply, StreamEnd, TestGateway};
use switchyard::ledger::{AttemptOutcome, AttemptRecord, LedgerStore, Outcome, RequestRecord};

/// Two upstreams priced as a test catalog entry: $2 per 1M input tokens, $8 per 1M
/// output tokens, so 1,000 in + 500 out costs exactly 2,000 + 4,000 = 6,000 µ$.
fn priced_config(primary: &MockUpstream, secondary: &MockUpstream) -> String {
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

fn hello(stream: bool) -> Value {
    json!({"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "hello"}]})
}

async fn ledger(gateway: &TestGateway) -> (LedgerStore, Vec<(RequestRecord, Vec<AttemptRecord>)>) {
    gateway.flush_ledger().await;
    let store = LedgerStore::connect(&gateway.ledger_url).await.unwrap();
    let mut out = Vec::new();
    for request in store.requests_since(chrono::DateTime::UNIX_EPOCH).await.unwrap() {
        let attempts = store.attempts_for(&request.id).await.unwrap();
        out.push((request, attempts));
    }
    (store, out)
}

async fn setup() -> (MockUpstream, MockUpstream, TestGateway) {
    let primary = MockUpstream::start().await;
    let secondary = MockUpstream::start().await;
    let gateway = TestGateway::start(&priced_config(&primary, &secondary)).await;
    (primary, secondary, gateway)
}

#[tokio::test]
async fn a_successful_request_is_one_row_priced_at_the_catalog_price() {
    let (primary, _secondary, gateway) = setup().await;
    primary.set_default(Reply::json(200, completion("model-a", "ok", (1000, 500))));
    assert_eq!(gateway.post_chat(&hello(false)).await.status(), 200);

    let (_, rows) = ledger(&gateway).await;
    assert_eq!(rows.len(), 1);
    let (request, attempts) = &rows[0];
    assert_eq!(request.outcome, Outcome::Success);
    assert_eq!(request.status, 200);
    assert_eq!(&*request.route, "chat");
    assert_eq!(&*request.key_id, "anonymous");
    assert_eq!(request.target.as_deref(), Some("primary/model-a"));
    assert_eq!(request.provider_kind.as_deref(), Some("openai-compatible"));
    assert_eq!((request.usage.input_tokens, request.usage.output_tokens), (1000, 500));
    assert_eq!(request.cost_micros, 6_000);
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0].priced);
    assert_eq!(attempts[0].cost_micros, 6_000);
    assert_eq!(attempts[0].status, Some(200), "the answering attempt keeps the upstream's status");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_failover_records_the_failed_attempt_and_bills_only_the_answer() {
    let (primary, secondary, gateway) = setup().await;
    primary.set_default(Reply::openai_error(503, "service_unavailable_error", "busy"));
    secondary.set_default(Reply::json(200, completion("model-b", "ok", (1000, 500))));
    assert_eq!(gateway.post_chat(&hello(false)).await.status(), 200);

    let (_, rows) = ledger(&gateway).await;
    let (request, attempts) = &rows[0];
    assert_eq!(request.attempt_count, 2);
    assert_eq!(request.failover_reason.as_deref(), Some("overloaded"));
    assert_eq!(request.target.as_deref(), Some("secondary/model-b"));
    assert_eq!(request.cost_micros, 6_000);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Failed);
    assert_eq!(attempts[0].status, Some(503));
    assert_eq!(attempts[0].error_kind.as_deref(), Some("overloaded"));
    assert_eq!(attempts[0].cost_micros, 0);
    assert_eq!(attempts[1].outcome, AttemptOutcome::Success);
    assert_eq!(attempts[1].status, Some(200));
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_request_every_target_failed_is_recorded_with_its_status_and_no_cost() {
    let (primary, secondary, gateway) = setup().await;
    primary.set_default(Reply::openai_error(500, "server_error", "a"));
    secondary.set_default(Reply::Reset);
    assert_eq!(gateway.post_chat(&hello(false)).await.status(), 502);

    let (_, rows) = ledger(&gateway).await;
    let (request, attempts) = &rows[0];
    assert_eq!(request.outcome, Outcome::UpstreamError);
    assert_eq!(request.status, 502);
    assert_eq!(request.target, None);
    assert_eq!(request.cost_micros, 0);
    assert_eq!(attempts.iter().map(|a| a.error_kind.clone().unwrap()).collect::<Vec<_>>(), ["upstream_5xx", "connect_error"]);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_stream_is_billed_from_its_usage_report_even_when_the_client_did_not_ask_for_it() {
    let (primary, _secondary, gateway) = setup().await;
    primary.set_default(Reply::sse(text_chunks("model-a", &["a", "b"], Some((1000, 500)))));
    let body = gateway.post_chat(&hello(true)).await.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"));

    let (_, rows) = ledger(&gateway).await;
    let (request, attempts) = &rows[0];
    assert!(request.stream);
    assert_eq!(request.cost_micros, 6_000);
    assert!(request.ttft_ms.is_some());
    assert_eq!(attempts[0].ttft_ms, request.ttft_ms);
    assert_eq!(attempts[0].status, Some(200));
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_stream_broken_after_content_is_recorded_as_a_stream_error() {
    let (primary, _secondary, gateway) = setup().await;
    let mut chunks = text_chunks("model-a", &["a", "b"], None);
    chunks.truncate(2);
    primary.set_default(Reply::sse(chunks).with_end(StreamEnd::Cut));
    let _ = gateway.post_chat(&hello(true)).await.text().await.unwrap();

    let (_, rows) = ledger(&gateway).await;
    let (request, attempts) = &rows[0];
    assert_eq!(request.outcome, Outcome::StreamError);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Failed);
    assert_eq!(attempts[0].error_kind.as_deref(), Some("stream_cut"));
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_leaves_exactly_one_cancelled_row() {
    let (primary, _secondary, gateway) = setup().await;
    let chunks = text_chunks("model-a", &["a", "b", "c", "d", "e", "f"], Some((10, 6)));
    primary.set_default(Reply::sse(chunks).with_gap(Duration::from_millis(200)));
    let mut response = gateway.post_chat(&hello(true)).await;
    let first = response.chunk().await.unwrap();
    assert!(first.is_some());
    drop(response);

    // The settlement is written when the gateway notices the broken connection.
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = ledger(&gateway).await.1;
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0.outcome, Outcome::Cancelled);
    assert_eq!(rows[0].1[0].outcome, AttemptOutcome::Cancelled);
    gateway.shutdown().await;
}

#[tokio::test]
async fn concurrent_requests_are_each_billed_exactly_once() {
    let (primary, _secondary, gateway) = setup().await;
    primary.set_default(Reply::json(200, completion("model-a", "ok", (1000, 500))));
    let gateway = std::sync::Arc::new(gateway);
    let calls = (0..40).map(|_| {
        let gateway = gateway.clone();
        tokio::spawn(async move { gateway.post_chat(&hello(false)).await.text().await.unwrap() })
    });
    for call in calls {
        call.await.unwrap();
    }
    let (_, rows) = ledger(&gateway).await;
    assert_eq!(rows.len(), 40);
    let ids: std::collections::HashSet<_> = rows.iter().map(|(r, _)| r.id.clone()).collect();
    assert_eq!(ids.len(), 40);
    assert_eq!(rows.iter().map(|(r, _)| r.cost_micros).sum::<i64>(), 40 * 6_000);
}

#[tokio::test]
async fn shutdown_flushes_every_entry_to_the_ledger_file() {
    let (primary, _secondary, mut gateway) = setup().await;
    primary.set_default(Reply::json(200, completion("model-a", "ok", (1, 1))));
    for _ in 0..5 {
        gateway.post_chat(&hello(false)).await.text().await.unwrap();
    }
    let url = gateway.ledger_url.clone();
    // Keep the ledger file's directory alive past the gateway.
    let _dir = std::mem::replace(&mut gateway.dir, tempfile::tempdir().unwrap());
    gateway.shutdown().await;
    let store = LedgerStore::connect(&url).await.unwrap();
    assert_eq!(store.count_requests().await.unwrap(), 5);
}

/// The `x-switchyard-request-id` header of a reply.
fn named_entry(response: &reqwest::Response) -> Option<String> {
    response.headers().get("x-switchyard-request-id").map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_routed_reply_names_its_own_ledger_entry_answered_streamed_or_failed() {
    let (primary, secondary, gateway) = setup().await;
    // In order: answered at once, answered after a failover, streamed, failed on both targets.
    primary.push(Reply::json(200, completion("model-a", "ok", (10, 5))));
    primary.push(Reply::openai_error(503, "service_unavailable_error", "busy"));
    secondary.push(Reply::json(200, completion("model-b", "ok", (10, 5))));
    primary.push(Reply::sse(text_chunks("model-a", &["a", "b"], Some((10, 5)))));
    primary.push(Reply::openai_error(500, "server_error", "down"));
    secondary.push(Reply::Reset);

    let mut named = Vec::new();
    for (stream, status) in [(false, 200), (false, 200), (true, 200), (false, 502)] {
        let response = gateway.post_chat(&hello(stream)).await;
        assert_eq!(response.status(), status);
        let id = named_entry(&response).expect("a routed request's reply names its ledger entry");
        let _ = response.text().await.unwrap();
        named.push(id);
    }

    let (_, rows) = ledger(&gateway).await;
    let by_id = |id: &str| rows.iter().find(|(request, _)| &*request.id == id).unwrap_or_else(|| panic!("no ledger entry {id}"));
    let (answered, _) = by_id(&named[0]);
    assert_eq!((answered.outcome, answered.attempt_count), (Outcome::Success, 1));
    let (failed_over, attempts) = by_id(&named[1]);
    assert_eq!((failed_over.outcome, failed_over.attempt_count), (Outcome::Success, 2));
    assert_eq!(attempts[0].status, Some(503));
    let (streamed, _) = by_id(&named[2]);
    assert!(streamed.stream);
    let (failed, _) = by_id(&named[3]);
    assert_eq!((failed.outcome, failed.status), (Outcome::UpstreamError, 502));
    assert_eq!(rows.len(), 4, "one entry per request, each named once");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_request_refused_before_routing_names_no_ledger_entry() {
    let (_primary, _secondary, gateway) = setup().await;
    let unknown_route = gateway.post_chat(&json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(unknown_route.status(), 404);
    assert_eq!(named_entry(&unknown_route), None);
    let no_messages = gateway.post_chat(&json!({"model": "chat"})).await;
    assert_eq!(no_messages.status(), 400);
    assert_eq!(named_entry(&no_messages), None);

    let (_, rows) = ledger(&gateway).await;
    assert!(rows.is_empty());
    gateway.shutdown().await;
}

#[tokio::test]
async fn the_answering_attempt_records_the_upstreams_own_success_status() {
    let (primary, _secondary, gateway) = setup().await;
    primary.set_default(Reply::json(203, completion("model-a", "ok", (1000, 500))));
    assert_eq!(gateway.post_chat(&hello(false)).await.status(), 200);

    let (_, rows) = ledger(&gateway).await;
    let (request, attempts) = &rows[0];
    assert_eq!(request.status, 200, "the client's status");
    assert_eq!(attempts[0].status, Some(203), "the upstream's status");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_requests_id_carries_its_start_and_its_attempts_start_in_order_within_it() {
    let (primary, secondary, gateway) = setup().await;
    primary.set_default(Reply::delayed(Duration::from_millis(40), Reply::openai_error(503, "service_unavailable_error", "busy")));
    secondary.set_default(Reply::json(200, completion("model-b", "ok", (10, 5))));
    for _ in 0..3 {
        assert_eq!(gateway.post_chat(&hello(false)).await.status(), 200);
    }

    let (_, rows) = ledger(&gateway).await;
    assert_eq!(rows.len(), 3);
    let ids: Vec<&str> = rows.iter().map(|(r, _)| &*r.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "ids sort in the order the requests were made (rows come back by start time)");
    for (request, attempts) in &rows {
        let (seconds, nanos) = uuid::Uuid::parse_str(&request.id).unwrap().get_timestamp().expect("a v7 id has a timestamp").to_unix();
        assert_eq!(seconds as i64 * 1000 + i64::from(nanos / 1_000_000), request.started_at.timestamp_millis(), "the id's time is the start's");
        let [failed, answered] = &attempts[..] else { panic!("two attempts expected: {attempts:?}") };
        let end = request.started_at + chrono::TimeDelta::milliseconds(request.latency_ms as i64 + 1);
        assert!(request.started_at <= failed.started_at && failed.started_at < answered.started_at && answered.started_at <= end, "{request:?} {attempts:?}");
        assert!(answered.started_at - failed.started_at >= chrono::TimeDelta::milliseconds(40), "the answering attempt started after the failed one's 40 ms");
    }
    gateway.shutdown().await;
}
