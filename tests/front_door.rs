//! The OpenAI front door's contract with clients: errors in OpenAI's shape with the
//! right status and a message naming what was wrong, client keys, and the operational
//! endpoints.

mod support;

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::openai_wire::completion;
use support::{client, mock_config, read_json, JsonBody, MockUpstream, Reply, TestGateway};

async fn gateway() -> (MockUpstream, TestGateway) {
    let upstream = MockUpstream::start().await;
    upstream.set_default(Reply::json(200, completion("gpt-4.1-mini", "hi", (3, 1))));
    let gateway = TestGateway::start(&mock_config(&upstream)).await;
    (upstream, gateway)
}

async fn post_raw(gateway: &TestGateway, body: &'static str) -> (u16, Value) {
    let response = client().post(format!("{}/v1/chat/completions", gateway.url)).header("content-type", "application/json").body(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, read_json(response).await)
}

fn assert_openai_error_shape(body: &Value) {
    let error = body["error"].as_object().unwrap_or_else(|| panic!("not an OpenAI error: {body}"));
    for field in ["message", "type", "param", "code"] {
        assert!(error.contains_key(field), "error lacks '{field}': {body}");
    }
}

#[tokio::test]
async fn an_unknown_route_is_404_listing_the_routes() {
    let (_upstream, gateway) = gateway().await;
    let (status, body) = post_raw(&gateway, r#"{"model":"gpt-5","messages":[{"role":"user","content":"x"}]}"#).await;
    assert_eq!(status, 404);
    assert_openai_error_shape(&body);
    assert_eq!(body["error"]["message"], "The model 'gpt-5' is not a route of this gateway. Available routes: chat.");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(body["error"]["param"], "model");
}

#[tokio::test]
async fn malformed_json_is_400_naming_line_and_column() {
    let (upstream, gateway) = gateway().await;
    let (status, body) = post_raw(&gateway, "{\"model\": \"chat\",\n \"messages\": [}").await;
    assert_eq!(status, 400);
    assert_openai_error_shape(&body);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("line 2 column 15"), "{message}");
    assert_eq!(upstream.request_count(), 0);
}

#[tokio::test]
async fn a_missing_field_is_400_naming_it() {
    let (_upstream, gateway) = gateway().await;
    let (status, body) = post_raw(&gateway, r#"{"model":"chat"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "messages");
    assert!(body["error"]["message"].as_str().unwrap().contains("missing field `messages`"), "{body}");
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_400_naming_its_path() {
    let (_upstream, gateway) = gateway().await;
    let (status, body) = post_raw(&gateway, r#"{"model":"chat","messages":[{"role":"user","content":"x"}],"max_tokens":"lots"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "max_tokens");
    let (status, body) = post_raw(&gateway, r#"{"model":"chat","messages":[{"role":"wizard","content":"x"}]}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "messages[0].role");
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown variant `wizard`"), "{body}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_before_any_upstream_call() {
    let upstream = MockUpstream::start().await;
    let config = mock_config(&upstream).replace("[ledger]", "[server]\nmax_body_bytes = 2048\n\n[ledger]");
    let gateway = TestGateway::start(&config).await;
    let big = "x".repeat(4096);
    let response = gateway.post_chat(&json!({"model": "chat", "messages": [{"role": "user", "content": big}]})).await;
    assert_eq!(response.status(), 413);
    let body = read_json(response).await;
    assert_openai_error_shape(&body);
    assert!(body["error"]["message"].as_str().unwrap().contains("2048 bytes"));
    assert_eq!(upstream.request_count(), 0);
}

/// Posts `pieces` as a chunked body (no content-length), one chunk each, with a pause
/// between them so that the gateway reads them as separate frames.
async fn post_chunked(gateway: &TestGateway, pieces: Vec<String>) -> reqwest::Response {
    let chunks = futures_util::stream::iter(pieces).then(|piece| async move {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        Ok::<_, std::io::Error>(piece)
    });
    client()
        .post(format!("{}/v1/chat/completions", gateway.url))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_body_sent_in_several_chunks_is_read_whole() {
    let (upstream, gateway) = gateway().await;
    let body = r#"{"model":"chat","messages":[{"role":"user","content":"split across chunks"}]}"#;
    let pieces = body.as_bytes().chunks(9).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
    let response = post_chunked(&gateway, pieces).await;
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.last_request().json()["messages"][0]["content"], "split across chunks");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_without_a_declared_length() {
    let upstream = MockUpstream::start().await;
    let config = mock_config(&upstream).replace("[ledger]", "[server]\nmax_body_bytes = 2048\n\n[ledger]");
    let gateway = TestGateway::start(&config).await;
    let pieces = std::iter::once(r#"{"model":"chat","messages":[{"role":"user","content":""#.to_owned())
        .chain(std::iter::repeat_n("x".repeat(500), 5))
        .chain(std::iter::once(r#""}]}"#.to_owned()))
        .collect();
    let response = post_chunked(&gateway, pieces).await;
    assert_eq!(response.status(), 413);
    let body = read_json(response).await;
    assert_openai_error_shape(&body);
    assert!(body["error"]["message"].as_str().unwrap().contains("2048 bytes"), "{body}");
    assert_eq!(upstream.request_count(), 0);
}

/// Reads from `connection` until the server closes it; how long that took.
async fn closed_after(connection: &mut tokio::net::TcpStream) -> std::time::Duration {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buffer = [0; 4096];
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), connection.read(&mut buffer)).await.expect("the server kept the connection open") {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn a_connection_that_does_not_finish_its_headers_or_sits_idle_is_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let upstream = MockUpstream::start().await;
    upstream.set_default(Reply::json(200, completion("gpt-4.1-mini", "hi", (3, 1))));
    let gateway = TestGateway::start(&mock_config(&upstream).replace("[ledger]", "[server]\nheader_timeout = \"300ms\"\n\n[ledger]")).await;
    let address = gateway.url.trim_start_matches("http://").to_owned();

    // Half a request head, then nothing.
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: appl").await.unwrap();
    let waited = closed_after(&mut slow).await;
    assert!(waited >= std::time::Duration::from_millis(250), "closed after only {waited:?}");

    // A whole request answered, then an idle keep-alive connection.
    let body = r#"{"model":"chat","messages":[{"role":"user","content":"x"}]}"#;
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    idle.write_all(format!("POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes())
        .await
        .unwrap();
    let mut answer = vec![0; 8192];
    let read = tokio::io::AsyncReadExt::read(&mut idle, &mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..read]));
    let waited = closed_after(&mut idle).await;
    assert!(waited >= std::time::Duration::from_millis(200), "closed after only {waited:?}");
    assert_eq!(upstream.requests().len(), 1, "only the whole request reached the upstream");
}

#[tokio::test]
async fn a_get_on_the_chat_path_is_405() {
    let (upstream, gateway) = gateway().await;
    let response = client().get(format!("{}/v1/chat/completions", gateway.url)).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(upstream.request_count(), 0);
}

#[tokio::test]
async fn unmodelled_fields_are_forwarded_unchanged_to_an_openai_upstream() {
    let (upstream, gateway) = gateway().await;
    let request = json!({
        "model": "chat",
        "messages": [{"role": "user", "content": "x"}],
        "logprobs": true, "top_logprobs": 2, "service_tier": "flex", "prediction": {"type": "content", "content": "y"},
        "metadata": {"team": "search"}, "seed": 7, "user": "u-1",
    });
    assert_eq!(gateway.post_chat(&request).await.status(), 200);
    let sent = upstream.last_request().json();
    assert_eq!(sent["model"], "gpt-4.1-mini", "the route name is replaced by the target's model");
    for field in ["logprobs", "top_logprobs", "service_tier", "prediction", "metadata", "seed", "user", "messages"] {
        assert_eq!(sent[field], request[field], "field {field}");
    }
    assert_eq!(upstream.last_request().header("authorization"), Some("Bearer sk-test"));
}

#[tokio::test]
async fn the_models_endpoint_lists_routes_and_labels_simulated_ones() {
    let upstream = MockUpstream::start().await;
    let config = mock_config(&upstream)
        + "\n[providers.sim]\nkind = \"sim\"\n\n[routes.demo]\ntargets = [{ provider = \"sim\", model = \"m\" }]\n";
    let gateway = TestGateway::start(&config).await;
    let body = read_json(client().get(format!("{}/v1/models", gateway.url)).send().await.unwrap()).await;
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["chat", "demo"]);
    assert_eq!(body["data"][0]["simulated"], false);
    assert_eq!(body["data"][1]["simulated"], true);
    assert_eq!(body["data"][1]["owned_by"], "switchyard (simulated targets)");
}

#[tokio::test]
async fn a_simulated_target_refuses_several_choices_so_the_route_fails_over_or_says_why() {
    let upstream = MockUpstream::start().await;
    upstream.set_default(Reply::json(200, completion("gpt-4.1-mini", "hi", (3, 1))));
    let config = mock_config(&upstream)
        + "\n[providers.sim]\nkind = \"sim\"\nsim = { time_to_first_token = \"1ms\", tokens_per_second = 10000 }\n\n\
           [routes.demo]\ntargets = [{ provider = \"sim\", model = \"m\" }, { provider = \"mock\", model = \"gpt-4.1-mini\" }]\n\n\
           [routes.sim_only]\ntargets = [{ provider = \"sim\", model = \"m\" }]\n";
    let gateway = TestGateway::start(&config).await;
    let several = |route: &str| json!({"model": route, "n": 2, "messages": [{"role": "user", "content": "x"}]});

    let answered = gateway.post_chat(&several("demo")).await;
    assert_eq!(answered.status(), 200);
    assert_eq!(answered.headers()["x-switchyard-target"], "mock/gpt-4.1-mini");
    assert_eq!(answered.headers()["x-switchyard-attempts"], "2");
    assert_eq!(upstream.last_request().json()["n"], 2);

    let refused = gateway.post_chat(&several("sim_only")).await;
    assert_eq!(refused.status(), 400);
    let body = read_json(refused).await;
    assert_openai_error_shape(&body);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("n > 1"), "{message}");

    let one = gateway.post_chat(&json!({"model": "sim_only", "n": 1, "messages": [{"role": "user", "content": "x"}]})).await;
    assert_eq!(one.status(), 200);
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let (_upstream, gateway) = gateway().await;
    gateway.post_chat(&json!({"model": "chat", "messages": [{"role": "user", "content": "x"}]})).await;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(client().get(format!("{}{path}", gateway.url)).send().await.unwrap().status(), 200, "{path}");
    }
    let metrics = client().get(format!("{}/metrics", gateway.url)).send().await.unwrap().text().await.unwrap();
    for name in [
        "switchyard_requests_total",
        "switchyard_attempts_total",
        "switchyard_request_duration_seconds",
        "switchyard_tokens_total",
        "switchyard_ledger_queue_depth",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(metrics.contains(r#"route="chat""#));
}

const KEYED: &str = r#"
[ledger]
url = "{LEDGER}"

[keys.search-team]
secret = "${SEARCH_TEAM_KEY}"

[providers.sim]
kind = "sim"
sim = { time_to_first_token = "1ms", tokens_per_second = 10000 }

[routes.chat]
targets = [{ provider = "sim", model = "m" }]
"#;

#[tokio::test]
async fn with_client_keys_configured_a_request_needs_a_known_key_and_is_recorded_under_its_id() {
    let secret = "sy-test-0123456789abcdef";
    let gateway = TestGateway::start_with_env(KEYED, &[("SEARCH_TEAM_KEY", secret)]).await;
    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "x"}]});
    let url = format!("{}/v1/chat/completions", gateway.url);

    let anonymous = client().post(&url).json_body(&body).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = client().post(&url).bearer_auth("sy-wrong-key-000000").json_body(&body).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_openai_error_shape(&read_json(wrong).await);
    let right = client().post(&url).bearer_auth(secret).json_body(&body).send().await.unwrap();
    assert_eq!(right.status(), 200);

    gateway.flush_ledger().await;
    let store = switchyard::ledger::LedgerStore::connect(&gateway.ledger_url).await.unwrap();
    let rows = store.requests_since(chrono::DateTime::UNIX_EPOCH).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(&*rows[0].key_id, "search-team");
    let file = std::fs::read(&gateway.ledger_path).unwrap();
    assert!(!String::from_utf8_lossy(&file).contains(secret), "the client key is in the ledger file");
}

#[tokio::test]
async fn a_client_speaking_http2_with_prior_knowledge_is_answered_the_same() {
    let (upstream, gateway) = gateway().await;
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let response = h2
        .post(format!("{}/v1/chat/completions", gateway.url))
        .header("content-type", "application/json")
        .body(json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchyard-route"], "chat");
    let body = read_json(response).await;
    assert_eq!(body["choices"][0]["message"]["content"], "hi");
    assert_eq!(upstream.request_count(), 1);
    let models = h2.get(format!("{}/v1/models", gateway.url)).send().await.unwrap();
    assert_eq!((models.version(), models.status().as_u16()), (reqwest::Version::HTTP_2, 200));
}
