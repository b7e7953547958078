//! `stream_recovery = "continue"`: a stream that breaks after the client has part of
//! the answer is continued by another target and spliced into the same client stream,
//! with both parts billed; a target that can't take prefill is asked in words.

mod support;

use serde_json::{json, Value};
use support::openai_wire::{text_chunks, tool_call_chunks};
use support::{MockUpstream, Reply, StreamEnd, TestGateway};
use switchyard::ledger::{AttemptOutcome, LedgerStore};

fn config(primary: &MockUpstream, secondary: &MockUpstream, recovery: &str) -> String {
    format!(
        r#"
[ledger]
url = "{{LEDGER}}"

[providers.primary]
kind = "openai-compatible"
base_url = "{}/v1"
catalog = "test"

[providers.secondary]
kind = "openai-compatible"
base_url = "{}/v1"
catalog = "test"

[routes.chat]
targets = [{{ provider = "primary", model = "a" }}, {{ provider = "secondary", model = "b" }}]
retries = 0
stream_recovery = "{recovery}"

[[prices]]
provider = "test"
model = "a"
effective_from = "2020-01-01"
input_per_mtok = 1.0
output_per_mtok = 1000.0

[[prices]]
provider = "test"
model = "b"
effective_from = "2020-01-01"
input_per_mtok = 1.0
output_per_mtok = 1000.0
"#,
        primary.base_url(),
        secondary.base_url()
    )
}

fn request() -> Value {
    json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "Say hello to the world."}]})
}

/// The text a client assembled from an OpenAI chunk stream, and whether it ended with [DONE].
fn assembled(body: &str) -> (String, bool) {
    let mut text = String::new();
    for data in body.split("\n\n").filter_map(|e| e.strip_prefix("data: ")) {
        if let Ok(chunk) = serde_json::from_str::<Value>(data) {
            if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
                text.push_str(piece);
            }
        }
    }
    (text, body.ends_with("data: [DONE]\n\n"))
}

fn cut_after(pieces: &[&str]) -> Reply {
    let mut chunks = text_chunks("a", pieces, None);
    chunks.truncate(1 + pieces.len()); // role chunk and the pieces, no finish, no [DONE]
    Reply::sse(chunks).with_end(StreamEnd::Cut)
}

#[tokio::test]
async fn a_broken_stream_is_continued_by_the_next_target_and_both_parts_are_billed() {
    let primary = MockUpstream::start().await;
    let secondary = MockUpstream::start().await;
    primary.set_default(cut_after(&["Hello, ", "wor"]));
    secondary.set_default(Reply::sse(text_chunks("b", &["ld!"], Some((20, 2)))));
    let gateway = TestGateway::start(&config(&primary, &secondary, "continue")).await;

    let body = gateway.post_chat(&request()).await.text().await.unwrap();
    let (text, done) = assembled(&body);
    assert_eq!(text, "Hello, world!");
    assert!(done, "the spliced stream ends like a complete one: {body}");
    assert!(!body.contains("\"error\""), "{body}");

    // openai-compatible upstreams take no prefill: the partial answer is followed by an instruction.
    let sent = secondary.last_request().json();
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages[messages.len() - 2], json!({"role": "assistant", "content": "Hello, wor"}));
    assert_eq!(messages[messages.len() - 1]["role"], "user");
    assert!(messages[messages.len() - 1]["content"].as_str().unwrap().contains("Continue it exactly where it stopped"));

    gateway.flush_ledger().await;
    let store = LedgerStore::connect(&gateway.ledger_url).await.unwrap();
    let rows = store.requests_since(chrono::DateTime::UNIX_EPOCH).await.unwrap();
    assert_eq!(rows.len(), 1);
    let attempts = store.attempts_for(&rows[0].id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Failed);
    assert_eq!(attempts[0].error_kind.as_deref(), Some("stream_cut"));
    assert!(attempts[0].usage.output_tokens > 0, "the delivered part is billed from its text");
    assert!(attempts[0].cost_micros > 0);
    assert_eq!(attempts[1].outcome, AttemptOutcome::Success);
    assert_eq!(attempts[1].usage.output_tokens, 2);
    assert_eq!(rows[0].cost_micros, attempts[0].cost_micros + attempts[1].cost_micros);
    assert_eq!(rows[0].outcome, switchyard::ledger::Outcome::Success);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_broken_tool_call_is_not_continued_but_ends_with_an_error_event() {
    let primary = MockUpstream::start().await;
    let secondary = MockUpstream::start().await;
    let mut chunks = tool_call_chunks("a", &[("call_1", "lookup", r#"{"query":"something long"}"#)], None);
    chunks.truncate(3);
    primary.set_default(Reply::sse(chunks).with_end(StreamEnd::Cut));
    let gateway = TestGateway::start(&config(&primary, &secondary, "continue")).await;

    let mut body = request();
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);
    let text = gateway.post_chat(&body).await.text().await.unwrap();
    assert!(text.contains("stream_interrupted") && !text.contains("[DONE]"), "{text}");
    assert_eq!(secondary.request_count(), 0);
    gateway.shutdown().await;
}

#[tokio::test]
async fn when_no_target_can_continue_the_client_gets_the_error_event() {
    let primary = MockUpstream::start().await;
    let secondary = MockUpstream::start().await;
    primary.set_default(cut_after(&["Hel"]));
    secondary.set_default(Reply::openai_error(500, "server_error", "also down"));
    let gateway = TestGateway::start(&config(&primary, &secondary, "continue")).await;

    let body = gateway.post_chat(&request()).await.text().await.unwrap();
    let (text, done) = assembled(&body);
    assert_eq!(text, "Hel");
    assert!(!done && body.contains("stream_interrupted"), "{body}");
    gateway.shutdown().await;
}

const SIM_PREFILL: &str = r#"
[ledger]
url = "{LEDGER}"

[providers.primary]
kind = "openai-compatible"
base_url = "PRIMARY/v1"

[providers.claude-like]
kind = "sim"
sim = { time_to_first_token = "1ms", tokens_per_second = 10000, output_tokens = 3 }

[routes.chat]
targets = [{ provider = "primary", model = "a" }, { provider = "claude-like", model = "m" }]
retries = 0
stream_recovery = "continue"
"#;

#[tokio::test]
async fn a_continuation_from_another_kind_of_target_is_spliced_after_the_partial_text() {
    let primary = MockUpstream::start().await;
    primary.set_default(cut_after(&["Once upon"]));
    let gateway = TestGateway::start(&SIM_PREFILL.replace("PRIMARY", &primary.base_url())).await;
    let body = gateway.post_chat(&request()).await.text().await.unwrap();
    let (text, done) = assembled(&body);
    assert!(text.starts_with("Once upon[simulated"), "{text}");
    assert!(done, "{body}");
    gateway.shutdown().await;
}
