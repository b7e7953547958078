//! What a streaming client receives, byte for byte: passthrough from an OpenAI-dialect
//! upstream, the canonical encoder on the simulator, and honest endings when a stream
//! breaks after the first byte.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::openai_wire::{text_chunks, tool_call_chunks};
use support::{mock_config, MockUpstream, Reply, StreamEnd, TestGateway};

fn stream_request(include_usage: bool) -> Value {
    let mut body = json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// The `data:` payloads of an SSE body, in order.
fn data_lines(body: &str) -> Vec<String> {
    body.split("\n\n").filter_map(|event| event.strip_prefix("data: ")).map(str::to_owned).collect()
}

#[tokio::test]
async fn a_passthrough_stream_reaches_the_client_unchanged_with_usage_when_asked() {
    let upstream = MockUpstream::start().await;
    let chunks = text_chunks("gpt-4.1-mini-2025-04-14", &["Hello", ", ", "world"], Some((9, 3)));
    upstream.set_default(Reply::sse(chunks.clone()));
    let gateway = TestGateway::start(&mock_config(&upstream)).await;

    let response = gateway.post_chat(&stream_request(true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    assert_eq!(data_lines(&body), chunks, "every upstream chunk, then [DONE], byte for byte");
    assert!(body.ends_with("data: [DONE]\n\n"));
    gateway.shutdown().await;
}

#[tokio::test]
async fn usage_is_requested_upstream_for_billing_but_not_shown_to_a_client_that_did_not_ask() {
    let upstream = MockUpstream::start().await;
    let chunks = text_chunks("m", &["Hi"], Some((9, 1)));
    upstream.set_default(Reply::sse(chunks.clone()));
    let gateway = TestGateway::start(&mock_config(&upstream)).await;

    let body = gateway.post_chat(&stream_request(false)).await.text().await.unwrap();
    let lines = data_lines(&body);
    let usage_chunk = &chunks[chunks.len() - 2];
    assert!(!lines.contains(usage_chunk), "the usage chunk was forwarded: {body}");
    assert_eq!(lines.len(), chunks.len() - 1);
    assert_eq!(upstream.last_request().json()["stream_options"]["include_usage"], true);
    gateway.shutdown().await;
}

#[tokio::test]
async fn streamed_tool_call_argument_deltas_pass_through() {
    let upstream = MockUpstream::start().await;
    let chunks = tool_call_chunks("m", &[("call_1", "get_weather", r#"{"city":"Paris","unit":"c"}"#)], None);
    upstream.set_default(Reply::sse(chunks.clone()));
    let gateway = TestGateway::start(&mock_config(&upstream)).await;

    let mut request = stream_request(false);
    request["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let body = gateway.post_chat(&request).await.text().await.unwrap();
    assert_eq!(data_lines(&body), chunks);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_stream_cut_after_content_ends_with_an_error_event_and_no_done() {
    let upstream = MockUpstream::start().await;
    let mut chunks = text_chunks("m", &["partial ", "answer"], None);
    chunks.truncate(2); // role chunk and the first piece, then the connection drops
    upstream.set_default(Reply::sse(chunks).with_end(StreamEnd::Cut));
    let gateway = TestGateway::start(&mock_config(&upstream)).await;

    let body = gateway.post_chat(&stream_request(false)).await.text().await.unwrap();
    let lines = data_lines(&body);
    assert!(lines[1].contains(r#""content":"partial ""#), "{body}");
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "stream_interrupted", "{body}");
    assert!(!body.contains("[DONE]"), "a broken answer must not look finished: {body}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_stream_that_stalls_after_content_ends_with_an_error_event() {
    let upstream = MockUpstream::start().await;
    let mut chunks = text_chunks("m", &["slow"], None);
    chunks.truncate(2);
    upstream.set_default(Reply::sse(chunks).with_end(StreamEnd::StallThenClose(Duration::from_secs(10))));
    let config = mock_config(&upstream) + "stream_idle_timeout = \"300ms\"\n";
    let gateway = TestGateway::start(&config).await;

    let body = gateway.post_chat(&stream_request(false)).await.text().await.unwrap();
    let last: Value = serde_json::from_str(data_lines(&body).last().unwrap()).unwrap();
    assert!(last["error"]["message"].as_str().unwrap().contains("stream_idle"), "{body}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_error_object_inside_the_stream_becomes_an_error_event() {
    let upstream = MockUpstream::start().await;
    let mut chunks = text_chunks("m", &["so far"], None);
    chunks.truncate(2);
    chunks.push(support::openai_wire::stream_error("server_error", "The server had an error"));
    upstream.set_default(Reply::sse(chunks));
    let gateway = TestGateway::start(&mock_config(&upstream)).await;

    let body = gateway.post_chat(&stream_request(false)).await.text().await.unwrap();
    let last: Value = serde_json::from_str(data_lines(&body).last().unwrap()).unwrap();
    assert!(last["error"]["message"].as_str().unwrap().contains("The server had an error"), "{body}");
    assert!(!body.contains("[DONE]"));
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_stream_that_finished_but_lacks_done_is_completed_for_the_client() {
    let upstream = MockUpstream::start().await;
    let mut chunks = text_chunks("m", &["complete"], None);
    chunks.pop(); // no [DONE]
    upstream.set_default(Reply::sse(chunks.clone()));
    let gateway = TestGateway::start(&mock_config(&upstream)).await;

    let body = gateway.post_chat(&stream_request(false)).await.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    gateway.shutdown().await;
}

const SIM_CONFIG: &str = r#"
[ledger]
url = "{LEDGER}"

[providers.sim]
kind = "sim"
sim = { time_to_first_token = "5ms", tokens_per_second = 1000, output_tokens = 3 }

[routes.chat]
targets = [{ provider = "sim", model = "sim-model" }]
"#;

#[tokio::test]
async fn a_canonical_stream_is_encoded_as_openai_chunks_in_order() {
    let gateway = TestGateway::start(SIM_CONFIG).await;
    let body = gateway.post_chat(&stream_request(true)).await.text().await.unwrap();
    let lines = data_lines(&body);
    let chunks: Vec<Value> = lines[..lines.len() - 1].iter().map(|l| serde_json::from_str(l).unwrap()).collect();

    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "sim-model"));
    let id = &chunks[0]["id"];
    assert!(chunks.iter().all(|c| &c["id"] == id), "one id for the whole stream");
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "[simulated answer from", "three simulated tokens");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c["usage"].is_null()));
    assert_eq!(lines.last().unwrap(), "[DONE]");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_canonical_tool_call_stream_carries_indexed_argument_fragments() {
    let gateway = TestGateway::start(SIM_CONFIG).await;
    let mut request = stream_request(false);
    request["tools"] = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}]);
    let body = gateway.post_chat(&request).await.text().await.unwrap();
    let chunks: Vec<Value> = data_lines(&body).iter().filter(|l| *l != "[DONE]").map(|l| serde_json::from_str(l).unwrap()).collect();

    let first_call = &chunks[1]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first_call["index"], 0);
    assert_eq!(first_call["type"], "function");
    assert_eq!(first_call["function"]["name"], "lookup");
    let arguments: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()).collect();
    assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), json!({"q": "simulated"}));
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
    gateway.shutdown().await;
}
