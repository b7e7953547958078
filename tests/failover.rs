//! Failover over real HTTP: a route of two mock OpenAI upstreams, the primary scripted
//! to fail in each way an upstream can, the client's view and the attempt count checked.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::openai_wire::{completion, text_chunks};
use support::{read_json, MockUpstream, Reply, StreamEnd, TestGateway};

/// A route `chat` over `primary` then `secondary`, with the given route settings.
fn two_targets(primary: &MockUpstream, secondary: &MockUpstream, route_settings: &str) -> String {
    format!(
        r#"
[ledger]
url = "{{LEDGER}}"

[providers.primary]
kind = "openai-compatible"
base_url = "{}/v1"
api_key = "sk-primary-secret-key"

[providers.secondary]
kind = "openai"
base_url = "{}/v1"
api_key = "sk-secondary-secret-key"

[routes.chat]
targets = [{{ provider = "primary", model = "model-a" }}, {{ provider = "secondary", model = "model-b" }}]
backoff = "10ms"
max_backoff = "50ms"
{route_settings}
"#,
        primary.base_url(),
        secondary.base_url()
    )
}

fn hello() -> Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": "hello"}]})
}

fn hello_streamed() -> Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": "hello"}], "stream": true})
}

async fn upstreams() -> (MockUpstream, MockUpstream) {
    let primary = MockUpstream::start().await;
    let secondary = MockUpstream::start().await;
    secondary.set_default(Reply::json(200, completion("model-b", "from secondary", (5, 3))));
    (primary, secondary)
}

/// Scripts the primary with `failure`, sends one request, and checks the secondary
/// answered after exactly `primary_calls` primary attempts.
async fn assert_fails_over(failure: Reply, route_settings: &str, primary_calls: usize) {
    let (primary, secondary) = upstreams().await;
    primary.set_default(failure);
    let gateway = TestGateway::start(&two_targets(&primary, &secondary, route_settings)).await;

    let response = gateway.post_chat(&hello()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchyard-target"], "secondary/model-b");
    assert_eq!(response.headers()["x-switchyard-attempts"], (primary_calls + 1).to_string().as_str());
    let body = read_json(response).await;
    assert_eq!(body["choices"][0]["message"]["content"], "from secondary");
    assert_eq!(primary.request_count(), primary_calls);
    assert_eq!(secondary.request_count(), 1);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_5xx_is_retried_then_fails_over() {
    assert_fails_over(Reply::openai_error(500, "server_error", "boom"), "retries = 1", 2).await;
}

#[tokio::test]
async fn a_502_and_a_503_fail_over() {
    assert_fails_over(Reply::openai_error(502, "server_error", "bad gateway"), "retries = 0", 1).await;
    assert_fails_over(Reply::openai_error(503, "service_unavailable_error", "overloaded"), "retries = 0", 1).await;
}

#[tokio::test]
async fn a_connection_reset_fails_over() {
    assert_fails_over(Reply::Reset, "retries = 1", 2).await;
}

#[tokio::test]
async fn an_upstream_that_sends_no_headers_times_out_and_fails_over_without_a_retry_in_place() {
    assert_fails_over(Reply::StallBeforeHeaders(Duration::from_secs(5)), "retries = 2\nattempt_timeout = \"300ms\"", 1).await;
}

#[tokio::test]
async fn an_unreadable_answer_fails_over() {
    let garbage = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\nnot json!".to_vec();
    assert_fails_over(Reply::RawBytes(garbage), "retries = 0", 1).await;
}

#[tokio::test]
async fn a_rejected_provider_key_fails_over_to_another_provider() {
    assert_fails_over(Reply::openai_error(401, "invalid_request_error", "Incorrect API key provided: sk-prim***-key"), "retries = 1", 1).await;
}

#[tokio::test]
async fn a_429_with_a_long_retry_after_moves_on_at_once() {
    let started = Instant::now();
    assert_fails_over(Reply::rate_limited(30), "retries = 2\nmax_retry_after = \"5s\"", 1).await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_429_retry_after_is_honoured_before_retrying_the_same_target() {
    let (primary, secondary) = upstreams().await;
    primary.push(Reply::rate_limited(1));
    primary.push(Reply::json(200, completion("model-a", "from primary", (5, 3))));
    let gateway = TestGateway::start(&two_targets(&primary, &secondary, "retries = 1")).await;

    let started = Instant::now();
    let response = gateway.post_chat(&hello()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchyard-target"], "primary/model-a");
    assert!(started.elapsed() >= Duration::from_secs(1), "retried after only {:?}", started.elapsed());
    assert_eq!(primary.request_count(), 2);
    assert_eq!(secondary.request_count(), 0);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_client_fault_400_is_returned_and_not_retried_anywhere() {
    let (primary, secondary) = upstreams().await;
    primary.set_default(Reply::openai_error(400, "invalid_request_error", "Invalid 'temperature': must be <= 2"));
    let gateway = TestGateway::start(&two_targets(&primary, &secondary, "retries = 2")).await;

    let response = gateway.post_chat(&hello()).await;
    assert_eq!(response.status(), 400);
    let body = read_json(response).await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("Invalid 'temperature': must be <= 2"), "{body}");
    assert_eq!(primary.request_count(), 1);
    assert_eq!(secondary.request_count(), 0);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_context_too_long_answer_is_returned_with_its_code_and_not_retried() {
    let (primary, secondary) = upstreams().await;
    primary.set_default(Reply::json(
        400,
        json!({"error": {"message": "This model's maximum context length is 8192 tokens.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
    ));
    let gateway = TestGateway::start(&two_targets(&primary, &secondary, "retries = 2")).await;

    let response = gateway.post_chat(&hello()).await;
    assert_eq!(response.status(), 400);
    let body = read_json(response).await;
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(primary.request_count(), 1);
    assert_eq!(secondary.request_count(), 0);
    gateway.shutdown().await;
}

#[tokio::test]
async fn when_every_target_fails_the_client_gets_502_with_a_per_attempt_summary_and_no_secret() {
    let (primary, secondary) = upstreams().await;
    primary.set_default(Reply::openai_error(500, "server_error", "primary exploded"));
    secondary.set_default(Reply::openai_error(401, "invalid_request_error", "Incorrect API key provided: sk-secondary-secret-key"));
    let gateway = TestGateway::start(&two_targets(&primary, &secondary, "retries = 1")).await;

    let response = gateway.post_chat(&hello()).await;
    assert_eq!(response.status(), 502);
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Every target of route 'chat' failed (3 attempts)"), "{message}");
    assert!(message.contains("#1 primary/model-a: upstream_5xx (HTTP 500): primary: primary exploded"), "{message}");
    assert!(message.contains("#3 secondary/model-b: upstream_auth (HTTP 401)"), "{message}");
    assert!(!text.contains("sk-primary-secret-key") && !text.contains("sk-secondary-secret-key"), "secret leaked: {text}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn when_every_target_is_rate_limited_the_client_gets_429_with_retry_after() {
    let (primary, secondary) = upstreams().await;
    primary.set_default(Reply::rate_limited(30));
    secondary.set_default(Reply::rate_limited(20));
    let gateway = TestGateway::start(&two_targets(&primary, &secondary, "retries = 0")).await;

    let response = gateway.post_chat(&hello()).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "20");
    let body = read_json(response).await;
    assert_eq!(body["error"]["type"], "rate_limit_error");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_stream_fails_over_before_its_first_byte() {
    let (primary, secondary) = upstreams().await;
    primary.set_default(Reply::openai_error(503, "service_unavailable_error", "busy"));
    secondary.set_default(Reply::sse(text_chunks("model-b", &["Hel", "lo"], Some((5, 2)))));
    let gateway = TestGateway::start(&two_targets(&primary, &secondary, "retries = 0")).await;

    let response = gateway.post_chat(&hello_streamed()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchyard-target"], "secondary/model-b");
    let text = response.text().await.unwrap();
    assert!(text.contains(r#""content":"Hel""#) && text.ends_with("data: [DONE]\n\n"), "{text}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_stream_with_no_first_token_in_time_fails_over() {
    let (primary, secondary) = upstreams().await;
    // Headers arrive at once, then nothing: only the time-to-first-token timeout catches it.
    primary.set_default(Reply::sse(Vec::<String>::new()).with_end(StreamEnd::StallThenClose(Duration::from_secs(5))));
    secondary.set_default(Reply::sse(text_chunks("model-b", &["fast"], Some((5, 1)))));
    let gateway = TestGateway::start(&two_targets(&primary, &secondary, "retries = 2\nfirst_token_timeout = \"300ms\"")).await;

    let started = Instant::now();
    let response = gateway.post_chat(&hello_streamed()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchyard-attempts"], "2");
    assert!(response.text().await.unwrap().contains(r#""content":"fast""#));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(primary.request_count(), 1, "a silent upstream is not retried in place");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_stream_cut_before_any_content_fails_over() {
    let (primary, secondary) = upstreams().await;
    primary.set_default(Reply::sse(Vec::<String>::new()).with_end(StreamEnd::Cut));
    secondary.set_default(Reply::sse(text_chunks("model-b", &["whole"], None)));
    let gateway = TestGateway::start(&two_targets(&primary, &secondary, "retries = 0")).await;

    let response = gateway.post_chat(&hello_streamed()).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains(r#""content":"whole""#));
    gateway.shutdown().await;
}

/// `two_targets`, with the primary provider reading answers of at most 4 KiB.
fn primary_capped_at_4_kib(primary: &MockUpstream, secondary: &MockUpstream) -> String {
    let config = two_targets(primary, secondary, "retries = 1");
    config.replacen("api_key = \"sk-primary-secret-key\"", "api_key = \"sk-primary-secret-key\"\nmax_answer_bytes = 4096", 1)
}

#[tokio::test]
async fn an_answer_larger_than_the_providers_max_answer_bytes_fails_over_and_is_not_retried_in_place() {
    let big = completion("model-a", &"x".repeat(10_000), (5, 3));
    let body = serde_json::to_vec(&big).unwrap();
    // Declared by content-length (refused before reading), then chunked with no length
    // (refused once the bytes read pass the limit).
    let mut chunked = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for piece in body.chunks(1000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    for failure in [Reply::json(200, big.clone()), Reply::RawBytes(chunked)] {
        let (primary, secondary) = upstreams().await;
        primary.set_default(failure);
        let gateway = TestGateway::start(&primary_capped_at_4_kib(&primary, &secondary)).await;

        let response = gateway.post_chat(&hello()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-switchyard-target"], "secondary/model-b");
        assert_eq!(read_json(response).await["choices"][0]["message"]["content"], "from secondary");
        assert_eq!(primary.request_count(), 1, "an answer too large is not asked for again");
        gateway.shutdown().await;
    }
}

#[tokio::test]
async fn with_every_answer_too_large_the_502_names_max_answer_bytes() {
    let (primary, secondary) = upstreams().await;
    primary.set_default(Reply::json(200, completion("model-a", &"x".repeat(10_000), (5, 3))));
    let config = primary_capped_at_4_kib(&primary, &secondary).replace("{ provider = \"secondary\", model = \"model-b\" }", "");
    let gateway = TestGateway::start(&config.replace("}, ]", "}]")).await;

    let response = gateway.post_chat(&hello()).await;
    assert_eq!(response.status(), 502);
    let message = read_json(response).await["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("#1 primary/model-a: ") && message.contains("larger than the provider's max_answer_bytes (4096 bytes)"), "{message}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_stream_event_that_grows_past_max_answer_bytes_before_it_ends_fails_over() {
    let (primary, secondary) = upstreams().await;
    let huge = "x".repeat(10_000);
    primary.set_default(Reply::sse(text_chunks("model-a", &[&huge], None)).trickled(1024, Duration::from_millis(1)));
    secondary.set_default(Reply::sse(text_chunks("model-b", &["small"], None)));
    let gateway = TestGateway::start(&primary_capped_at_4_kib(&primary, &secondary)).await;

    let response = gateway.post_chat(&hello_streamed()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchyard-target"], "secondary/model-b");
    let text = response.text().await.unwrap();
    assert!(text.contains(r#""content":"small""#) && !text.contains("xxxx"), "{text}");
    assert_eq!(primary.request_count(), 1);
    gateway.shutdown().await;
}
