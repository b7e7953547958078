//! Proves that the scripted mock upstream (tests/support/mock_upstream.rs) and the
//! OpenAI wire fixtures behave exactly as documented, so failover and streaming
//! tests built on them can trust what the "upstream" did.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::openai_wire;
use support::{read_json, JsonBody, MockUpstream, Reply, StreamEnd};

/// Sends raw bytes on a fresh connection and reads until the server closes it
/// (or until `until` appears in what was read).
async fn raw_exchange(mock: &MockUpstream, request: &[u8], until: Option<&[u8]>) -> Vec<u8> {
    let mut stream = TcpStream::connect(mock.addr()).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            return received;
        }
        received.extend_from_slice(&buf[..n]);
        if let Some(until) = until {
            if received.windows(until.len()).any(|w| w == until) {
                return received;
            }
        }
    }
}

fn post_json(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn a_json_reply_arrives_with_its_status_headers_and_body() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::json(201, json!({"hello": "world"})).with_header("x-request-id", "req_1"));

    let response = reqwest::get(format!("{}/v1/thing", mock.base_url()))
        .await
        .unwrap();

    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], "req_1");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["content-length"], "17");
    assert_eq!(read_json(response).await, json!({"hello": "world"}));
}

#[tokio::test]
async fn replies_are_used_in_push_order_and_then_the_default() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::json(200, json!({"n": 1})));
    mock.push(Reply::json(200, json!({"n": 2})));
    mock.set_default(Reply::json(202, json!({"n": "default"})));
    let client = reqwest::Client::new();

    let mut seen = Vec::new();
    for _ in 0..4 {
        let response = client.get(mock.base_url()).send().await.unwrap();
        seen.push((
            response.status().as_u16(),
            read_json(response).await["n"].clone(),
        ));
    }

    assert_eq!(
        seen,
        vec![
            (200, json!(1)),
            (200, json!(2)),
            (202, json!("default")),
            (202, json!("default"))
        ]
    );
    assert_eq!(mock.pending_replies(), 0);
}

#[tokio::test]
async fn the_initial_default_is_an_openai_500_saying_there_was_no_scripted_reply() {
    let mock = MockUpstream::start().await;

    let response = reqwest::get(mock.base_url()).await.unwrap();

    assert_eq!(response.status(), 500);
    let body = read_json(response).await;
    assert_eq!(body["error"]["type"], "server_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no scripted reply"));
}

#[tokio::test]
async fn several_requests_from_one_client_share_a_keep_alive_connection() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::json(200, json!({"ok": true})));
    let client = reqwest::Client::new();

    for i in 0..3 {
        let response = client
            .post(format!("{}/v1/chat/completions", mock.base_url()))
            .json_body(&json!({"i": i}))
            .send()
            .await
            .unwrap();
        assert_eq!(read_json(response).await, json!({"ok": true}));
    }
    // An SSE reply that ends cleanly also leaves the connection reusable.
    mock.push(Reply::sse(["one", "[DONE]"]));
    let streamed = client
        .get(mock.base_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(streamed, "data: one\n\ndata: [DONE]\n\n");
    client.get(mock.base_url()).send().await.unwrap();

    assert_eq!(mock.request_count(), 5);
    assert_eq!(mock.connection_count(), 1);
    let bodies: Vec<Value> = mock.requests()[..3].iter().map(|r| r.json()).collect();
    assert_eq!(
        bodies,
        vec![json!({"i": 0}), json!({"i": 1}), json!({"i": 2})]
    );
}

#[tokio::test]
async fn a_request_is_recorded_with_method_path_query_lowercased_headers_and_body() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::json(200, json!({})));

    reqwest::Client::new()
        .post(format!(
            "{}/v1/chat/completions?api-version=2024-10-21",
            mock.base_url()
        ))
        .header("Authorization", "Bearer sk-test")
        .header("X-Custom", "Value With Case")
        .json_body(&json!({"model": "gpt-4.1-mini"}))
        .send()
        .await
        .unwrap();

    let request = mock.last_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions?api-version=2024-10-21");
    assert_eq!(request.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(request.header("X-CUSTOM"), Some("Value With Case"));
    assert!(request.headers.iter().any(|(name, _)| name == "x-custom"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.json(), json!({"model": "gpt-4.1-mini"}));
}

#[tokio::test]
async fn a_chunked_request_body_is_recorded_de_chunked() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::json(200, json!({"ok": true})));

    let request = b"POST /v1/upload HTTP/1.1\r\nhost: mock\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
        5\r\n{\"a\":\r\n3;ext=1\r\n 12\r\n1\r\n}\r\n0\r\nx-trailer: t\r\n\r\n";
    let response = raw_exchange(&mock, request, None).await;

    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("connection: close\r\n"), "{response}");
    assert_eq!(mock.last_request().json(), json!({"a": 12}));
}

#[tokio::test]
async fn an_sse_reply_is_sent_as_exact_chunked_event_stream_bytes() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::sse(["{\"a\":1}", "not json", "[DONE]"]));

    let response = raw_exchange(
        &mock,
        &post_json("/v1/chat/completions", "{}"),
        Some(b"0\r\n\r\n"),
    )
    .await;

    let expected = "HTTP/1.1 200 OK\r\n\
        content-type: text/event-stream\r\n\
        cache-control: no-cache\r\n\
        transfer-encoding: chunked\r\n\
        \r\n\
        f\r\ndata: {\"a\":1}\n\n\r\n\
        10\r\ndata: not json\n\n\r\n\
        e\r\ndata: [DONE]\n\n\r\n\
        0\r\n\r\n";
    assert_eq!(String::from_utf8(response).unwrap(), expected);
}

#[tokio::test]
async fn a_cut_stream_delivers_the_listed_events_and_then_errors_the_client() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::sse(["first", "second"]).with_end(StreamEnd::Cut));

    let response = reqwest::get(mock.base_url()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut received = Vec::new();
    let error = loop {
        match body.next().await {
            Some(Ok(bytes)) => received.extend_from_slice(&bytes),
            Some(Err(e)) => break e,
            None => panic!(
                "a cut stream ended cleanly after {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    };

    assert_eq!(received, b"data: first\n\ndata: second\n\n");
    assert!(
        error.is_body() || error.is_decode(),
        "unexpected error kind: {error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_stalls_then_closes_stays_open_for_the_stall_and_then_errors_the_client() {
    let mock = MockUpstream::start().await;
    let stall = Duration::from_secs(30);
    mock.push(Reply::sse(["only"]).with_end(StreamEnd::StallThenClose(stall)));
    let started = tokio::time::Instant::now();

    let response = reqwest::get(mock.base_url()).await.unwrap();
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    let end = body.next().await.unwrap();

    assert_eq!(&first[..], b"data: only\n\n");
    assert!(
        end.is_err(),
        "expected an error after the stall, got {end:?}"
    );
    assert!(
        started.elapsed() >= stall,
        "closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn sse_events_are_spaced_by_the_gap_under_a_paused_clock() {
    let mock = MockUpstream::start().await;
    let gap = Duration::from_secs(5);
    mock.push(Reply::sse(["a", "b", "c"]).with_gap(gap));
    let started = tokio::time::Instant::now();

    let response = reqwest::get(mock.base_url()).await.unwrap();
    let mut body = response.bytes_stream();
    let mut arrivals = Vec::new();
    while let Some(chunk) = body.next().await {
        chunk.unwrap();
        arrivals.push(started.elapsed());
    }

    assert_eq!(arrivals.len(), 3);
    assert!(arrivals[0] < gap, "first event waited {:?}", arrivals[0]);
    assert!(arrivals[1] >= gap && arrivals[2] >= gap * 2, "{arrivals:?}");
}

#[tokio::test]
async fn a_reset_reply_errors_the_client() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::Reset);
    mock.push(Reply::Reset);

    let via_reqwest = reqwest::get(mock.base_url()).await;
    assert!(
        via_reqwest.is_err(),
        "expected an error, got {via_reqwest:?}"
    );

    let mut stream = TcpStream::connect(mock.addr()).await.unwrap();
    stream.write_all(&post_json("/", "{}")).await.unwrap();
    let mut buf = [0u8; 64];
    let read = stream.read(&mut buf).await;
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "a reset must be an RST, not a clean close"
    );
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stall_before_headers_sends_nothing_for_the_duration_and_then_closes() {
    let mock = MockUpstream::start().await;
    let stall = Duration::from_secs(60);
    mock.push(Reply::StallBeforeHeaders(stall));
    let started = tokio::time::Instant::now();

    let received = raw_exchange(&mock, &post_json("/", "{}"), None).await;

    assert!(
        received.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        started.elapsed() >= stall,
        "closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_timeout_fires_during_a_stall_and_the_next_request_gets_the_next_reply() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::StallBeforeHeaders(Duration::from_secs(3600)));
    mock.push(Reply::json(200, json!({"after": "stall"})));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let stalled = client.get(mock.base_url()).send().await;
    let next = client.get(mock.base_url()).send().await.unwrap();

    assert!(stalled.unwrap_err().is_timeout());
    assert_eq!(read_json(next).await, json!({"after": "stall"}));
}

#[tokio::test]
async fn raw_bytes_are_written_verbatim_and_the_connection_closes() {
    let mock = MockUpstream::start().await;
    let bytes = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nnot even json".to_vec();
    mock.push(Reply::RawBytes(bytes.clone()));

    let received = raw_exchange(&mock, &post_json("/", "{}"), None).await;

    assert_eq!(received, bytes);
}

#[tokio::test]
async fn a_handler_reply_is_computed_from_the_request() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::handler(|request| {
        let model = request.json()["model"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if model == "fail-400" {
            Reply::openai_error(400, "invalid_request_error", "bad model")
        } else {
            Reply::handler(move |_| Reply::json(200, json!({"model": model.clone()})))
        }
    }));
    let client = reqwest::Client::new();
    let send = |model: &'static str| {
        client
            .post(mock.base_url())
            .json_body(&json!({"model": model}))
            .send()
    };

    let ok = send("gpt-4.1-mini").await.unwrap();
    let bad = send("fail-400").await.unwrap();

    assert_eq!(read_json(ok).await, json!({"model": "gpt-4.1-mini"}));
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_500_naming_the_panic() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::handler(|_| panic!("handler exploded")));

    let response = reqwest::get(mock.base_url()).await.unwrap();

    assert_eq!(response.status(), 500);
    let body = read_json(response).await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("handler exploded"));
}

#[tokio::test]
async fn wait_for_requests_returns_once_background_requests_have_arrived() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::StallBeforeHeaders(Duration::from_secs(3600)));
    let url = mock.base_url();
    for _ in 0..2 {
        let url = url.clone();
        tokio::spawn(async move { reqwest::get(url).await });
    }

    mock.wait_for_requests(2).await;

    assert_eq!(mock.request_count(), 2);
    assert_eq!(mock.connection_count(), 2);
}

#[tokio::test]
async fn openai_error_and_rate_limited_replies_have_openais_shape() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::openai_error(
        400,
        "invalid_request_error",
        "messages is required",
    ));
    mock.push(Reply::rate_limited(7));
    let client = reqwest::Client::new();

    let bad = client.get(mock.base_url()).send().await.unwrap();
    let limited = client.get(mock.base_url()).send().await.unwrap();

    assert_eq!(bad.status(), 400);
    assert_eq!(
        read_json(bad).await,
        json!({"error": {"message": "messages is required", "type": "invalid_request_error", "param": null, "code": null}})
    );
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    let body = read_json(limited).await;
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
}

#[test]
fn a_completion_fixture_has_openais_fields() {
    let completion = openai_wire::completion("gpt-4.1-mini", "Hello!", (9, 3));

    assert!(completion["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["created"], openai_wire::CREATED);
    assert_eq!(completion["model"], "gpt-4.1-mini");
    assert_eq!(
        completion["choices"],
        json!([{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": "stop"
        }])
    );
    assert_eq!(completion["usage"]["prompt_tokens"], 9);
    assert_eq!(completion["usage"]["completion_tokens"], 3);
    assert_eq!(completion["usage"]["total_tokens"], 12);
}

#[test]
fn a_tool_call_completion_fixture_lists_its_calls_and_finishes_with_tool_calls() {
    let completion = openai_wire::tool_call_completion(
        "gpt-4.1-mini",
        &[("call_1", "get_weather", r#"{"city":"Paris"}"#)],
    );

    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}])
    );
}

#[test]
fn text_chunks_are_role_then_content_then_stop_then_usage_with_empty_choices_then_done() {
    let events = openai_wire::text_chunks("gpt-4.1-mini", &["Hel", "lo"], Some((9, 2)));

    assert_eq!(events.len(), 6);
    assert_eq!(events[5], "[DONE]");
    let chunks: Vec<Value> = events[..5]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let id = &chunks[0]["id"];
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(&chunk["id"], id, "every chunk has the same id");
        assert!(
            chunk.get("usage").is_some(),
            "with usage asked for, every chunk has the field"
        );
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "Hel"}));
    assert_eq!(chunks[2]["choices"][0]["delta"], json!({"content": "lo"}));
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[3]["usage"], Value::Null);
    assert_eq!(chunks[4]["choices"], json!([]));
    assert_eq!(chunks[4]["usage"]["total_tokens"], 11);

    let without_usage = openai_wire::text_chunks("gpt-4.1-mini", &["Hi"], None);
    assert_eq!(without_usage.len(), 4);
    let first: Value = serde_json::from_str(&without_usage[0]).unwrap();
    assert!(first.get("usage").is_none());
}

#[test]
fn tool_call_chunks_merged_by_index_rebuild_each_call() {
    let arguments = r#"{"city":"Paris","unit":"celsius"}"#;
    let events = openai_wire::tool_call_chunks(
        "gpt-4.1-mini",
        &[
            ("call_a", "get_weather", arguments),
            ("call_b", "get_time", "{}"),
        ],
        Some((20, 10)),
    );

    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    // Merge fragments by index the way OpenAI's SDKs do.
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut finish_reason = None;
    for chunk in &chunks {
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        if let Some(reason) = choice["finish_reason"].as_str() {
            finish_reason = Some(reason.to_string());
        }
        for fragment in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = fragment["index"].as_u64().unwrap() as usize;
            if let Some(id) = fragment["id"].as_str() {
                assert_eq!(
                    index,
                    calls.len(),
                    "a new call's first fragment comes in index order"
                );
                assert_eq!(fragment["type"], "function");
                assert_eq!(fragment["function"]["arguments"], "");
                let name = fragment["function"]["name"].as_str().unwrap();
                calls.push((id.to_string(), name.to_string(), String::new()));
            } else {
                assert!(
                    fragment.get("type").is_none() && fragment["function"].get("name").is_none()
                );
                calls[index]
                    .2
                    .push_str(fragment["function"]["arguments"].as_str().unwrap());
            }
        }
    }

    assert_eq!(
        calls,
        vec![
            (
                "call_a".to_string(),
                "get_weather".to_string(),
                arguments.to_string()
            ),
            (
                "call_b".to_string(),
                "get_time".to_string(),
                "{}".to_string()
            ),
        ]
    );
    assert_eq!(finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], 20);
}

#[tokio::test]
async fn the_control_endpoint_lists_recorded_requests_without_being_recorded() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::json(200, json!({})));
    let client = reqwest::Client::new();
    client
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .header("authorization", "Bearer sk-test")
        .json_body(&json!({"model": "m"}))
        .send()
        .await
        .unwrap();

    let listed = read_json(
        client
            .get(format!("{}/__mock/requests", mock.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;

    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["method"], "POST");
    assert_eq!(listed[0]["path"], "/v1/chat/completions");
    assert_eq!(listed[0]["body"], json!({"model": "m"}));
    assert!(listed[0]["headers"]
        .as_array()
        .unwrap()
        .contains(&json!(["authorization", "Bearer sk-test"])));
    assert_eq!(mock.request_count(), 1, "control requests are not recorded");
    assert_eq!(mock.pending_replies(), 0);
}

/// Sends a chat request to a mock playing `openai_wire::chat_handler` and returns
/// (status, body text).
async fn ask_chat_handler(body: Value) -> (u16, String) {
    let mock = MockUpstream::start().await;
    mock.set_default(openai_wire::chat_handler());
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .json_body(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn sse_payloads(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| event.strip_prefix("data: ").unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_chat_handler_echoes_the_last_user_message_with_usage() {
    let (status, body) = ask_chat_handler(json!({
        "model": "gpt-4.1-mini",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi there"}]}]
    }))
    .await;

    assert_eq!(status, 200);
    let expected =
        openai_wire::completion("gpt-4.1-mini", "echo: hi there", openai_wire::HANDLER_USAGE);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), expected);
}

#[tokio::test]
async fn the_chat_handler_streams_and_adds_usage_only_when_asked() {
    let (_, with_usage) = ask_chat_handler(json!({
        "model": "m", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "one two"}]
    }))
    .await;
    let (_, without_usage) = ask_chat_handler(json!({
        "model": "m", "stream": true, "messages": [{"role": "user", "content": "one two"}]
    }))
    .await;

    assert_eq!(
        sse_payloads(&with_usage),
        openai_wire::text_chunks(
            "m",
            &["echo: ", "one ", "two"],
            Some(openai_wire::HANDLER_USAGE)
        )
    );
    assert_eq!(
        sse_payloads(&without_usage),
        openai_wire::text_chunks("m", &["echo: ", "one ", "two"], None)
    );
}

#[tokio::test]
async fn the_chat_handler_calls_the_first_tool_and_then_reports_the_tool_result() {
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let (_, call) = ask_chat_handler(json!({
        "model": "m", "stream": true, "tools": tools,
        "messages": [{"role": "user", "content": "weather?"}]
    }))
    .await;
    let (_, answer) = ask_chat_handler(json!({
        "model": "m", "tools": tools,
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_mock_1", "content": "18C"}
        ]
    }))
    .await;

    assert_eq!(
        sse_payloads(&call),
        openai_wire::tool_call_chunks(
            "m",
            &[(
                openai_wire::HANDLER_TOOL_CALL_ID,
                "get_weather",
                openai_wire::HANDLER_TOOL_ARGUMENTS
            )],
            None
        )
    );
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "tool call_mock_1 said: 18C"
    );
}

#[tokio::test]
async fn the_chat_handler_fails_on_request_and_rejects_a_body_without_messages() {
    let (forced, _) = ask_chat_handler(json!({
        "model": "m", "messages": [{"role": "user", "content": "please [mock:status=503]"}]
    }))
    .await;
    let (missing, body) = ask_chat_handler(json!({"model": "m"})).await;

    assert_eq!(forced, 503);
    assert_eq!(missing, 400);
    assert!(body.contains("messages"), "{body}");
}

// ---------------------------------------------------------------------------
// Slow, late, broken and scheduled replies (for the chaos and resilience tests)
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_trickled_reply_sends_its_head_at_once_then_the_body_in_spaced_pieces() {
    let mock = MockUpstream::start().await;
    let gap = Duration::from_secs(2);
    mock.push(Reply::trickle(200, b"0123456789".to_vec(), 4, gap).with_header("x-slow", "yes"));
    let started = tokio::time::Instant::now();

    let response = reqwest::get(mock.base_url()).await.unwrap();
    let head_after = started.elapsed();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["content-length"], "10");
    assert_eq!(response.headers()["x-slow"], "yes");
    let mut body = response.bytes_stream();
    let mut pieces = Vec::new();
    while let Some(piece) = body.next().await {
        pieces.push((piece.unwrap().to_vec(), started.elapsed()));
    }

    assert!(head_after < gap, "the head waited {head_after:?}");
    let bytes: Vec<u8> = pieces.iter().flat_map(|(p, _)| p.clone()).collect();
    assert_eq!(bytes, b"0123456789");
    assert_eq!(pieces.len(), 3, "pieces of 4, 4 and 2 bytes: {pieces:?}");
    assert!(
        pieces[2].1 >= gap * 2,
        "the last piece came after {:?}",
        pieces[2].1
    );
}

#[tokio::test]
async fn a_trickled_sse_reply_keeps_its_event_stream_framing_and_content() {
    let mock = MockUpstream::start().await;
    let chunks = openai_wire::text_chunks("m", &["slow", "ly"], None);
    mock.push(Reply::sse(chunks.clone()).trickled(7, Duration::from_millis(1)));

    let response = reqwest::get(mock.base_url()).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();

    assert_eq!(sse_payloads(&body), chunks);
}

#[tokio::test]
async fn an_invalid_json_reply_is_a_200_json_response_that_does_not_parse() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::invalid_json());
    mock.push(Reply::json(200, json!({"next": true})));
    let client = reqwest::Client::new();

    let response = client.get(mock.base_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err(), "{body:?}");
    assert!(body.starts_with(br#"{"id":"chatcmpl-broken""#));
    let next = client.get(mock.base_url()).send().await.unwrap();
    assert_eq!(
        read_json(next).await,
        json!({"next": true}),
        "the connection stays usable"
    );
}

#[test]
fn an_invalid_json_chunk_is_the_start_of_a_real_chunk_that_does_not_parse() {
    let chunk = openai_wire::invalid_json_chunk("m");
    let whole = &openai_wire::text_chunks("m", &[], None)[0];
    assert!(whole.starts_with(&chunk) && chunk.len() < whole.len());
    assert!(serde_json::from_str::<Value>(&chunk).is_err(), "{chunk}");
}

#[tokio::test(start_paused = true)]
async fn a_delayed_reply_waits_before_its_head_and_then_runs_its_inner_reply() {
    let mock = MockUpstream::start().await;
    let delay = Duration::from_secs(3);
    mock.push(Reply::delayed(
        delay,
        Reply::handler(|request| Reply::json(200, json!({"path": request.path}))),
    ));
    let started = tokio::time::Instant::now();

    let response = reqwest::get(format!("{}/late", mock.base_url()))
        .await
        .unwrap();

    assert!(
        started.elapsed() >= delay,
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(read_json(response).await, json!({"path": "/late"}));
    assert_eq!(
        mock.request_count(),
        1,
        "recorded on arrival, like every reply"
    );
}

#[tokio::test]
async fn a_schedule_cycles_through_its_replies() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::schedule(vec![
        Reply::json(200, json!({})),
        Reply::json(200, json!({})),
        Reply::openai_error(503, "server_error", "every third"),
    ]));
    let client = reqwest::Client::new();

    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            client
                .get(mock.base_url())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }

    assert_eq!(statuses, [200, 200, 503, 200, 200, 503, 200]);
}

/// The statuses `n` sequential requests get from a fresh mock serving `reply`.
async fn statuses(reply: Reply, n: usize) -> Vec<u16> {
    let mock = MockUpstream::start().await;
    mock.set_default(reply);
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            client
                .get(mock.base_url())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    out
}

fn chaos_of_statuses(seed: u64, rate: f64) -> Reply {
    let faults = vec![
        Reply::openai_error(500, "server_error", "a"),
        Reply::openai_error(502, "server_error", "b"),
        Reply::rate_limited(1),
    ];
    Reply::chaos(seed, rate, faults, Reply::json(200, json!({"ok": true})))
}

#[tokio::test]
async fn a_chaos_reply_is_reproducible_for_a_seed_and_fails_at_about_its_rate() {
    let first = statuses(chaos_of_statuses(7, 0.3), 200).await;
    let again = statuses(chaos_of_statuses(7, 0.3), 200).await;
    let other_seed = statuses(chaos_of_statuses(8, 0.3), 200).await;

    assert_eq!(first, again, "same seed, same sequence");
    assert_ne!(first, other_seed, "another seed, another sequence");
    let failures = first.iter().filter(|s| **s != 200).count();
    // 200 draws at 30%: mean 60, standard deviation 6.5.
    assert!((35..=85).contains(&failures), "{failures} failures of 200");
    for fault in [500, 502, 429] {
        assert!(
            first.contains(&fault),
            "fault {fault} never drawn: {first:?}"
        );
    }
}

#[tokio::test]
async fn a_chaos_reply_at_rate_zero_is_always_healthy_and_at_rate_one_always_faulty() {
    assert!(statuses(chaos_of_statuses(1, 0.0), 30)
        .await
        .iter()
        .all(|s| *s == 200));
    assert!(statuses(chaos_of_statuses(1, 1.0), 30)
        .await
        .iter()
        .all(|s| *s != 200));
}
