//! The cross-dialect matrix: each front door (openai-chat, anthropic-messages) × each
//! upstream dialect (openai-chat, anthropic-messages, bedrock-converse, gemini) × each
//! scenario (system prompt, multi-turn, image, named tool choice, parallel tool calls,
//! tool result, JSON output, max-tokens stop, detailed usage), streamed and not.
//!
//! Every cell runs a real gateway against a scripted upstream that answers in its own
//! exact wire format (`matrix/upstreams.rs`). The cell checks three things: what the
//! upstream received (the translated request, field by field), what the client got
//! back (read into one normalized [`clients::Observed`] and compared with the
//! scenario's answer in the client's terms: text, tool calls, stop reason, usage), and
//! what the ledger recorded (the canonical usage).
//!
//! Then: upstream errors mapped into the client's dialect and status; features a target
//! cannot express refused by name (or failed over); same-dialect passthrough kept byte
//! for byte.
//!
//! A cell that fails because of a gateway bug stays here, marked
//! `#[ignore = "bug: …"]`.

mod support;

#[path = "matrix/clients.rs"]
mod clients;
#[path = "matrix/scenarios.rs"]
mod scenarios;
#[path = "matrix/upstreams.rs"]
mod upstreams;

use serde_json::{json, Value};
use switchyard::ledger::{AttemptRecord, LedgerStore, RequestRecord};

use clients::{error_message, expected, read};
use scenarios::{Front, Scenario, Up, Usage};
use support::{client, JsonBody, MockUpstream, TestGateway};
use upstreams::{call_id, check_request, Failure};

/// Sends `body` to `front`'s door, with `headers`.
async fn send(gateway: &TestGateway, front: Front, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let path = match front {
        Front::OpenAi => "/v1/chat/completions",
        Front::Anthropic => "/v1/messages",
    };
    let mut request = client().post(format!("{}{path}", gateway.url)).json_body(body);
    if front == Front::Anthropic {
        request = request.header("anthropic-version", "2023-06-01");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("send to the gateway")
}

/// The one ledger row, and its attempts.
async fn ledger(gateway: &TestGateway) -> (RequestRecord, Vec<AttemptRecord>) {
    gateway.flush_ledger().await;
    let store = LedgerStore::connect(&gateway.ledger_url).await.expect("open the ledger");
    let mut rows = store.requests_since(chrono::DateTime::UNIX_EPOCH).await.expect("read the ledger");
    assert_eq!(rows.len(), 1, "one ledger row per request: {rows:?}");
    let row = rows.remove(0);
    let attempts = store.attempts_for(&row.id).await.expect("read the attempts");
    (row, attempts)
}

fn canonical(usage: Usage) -> switchyard::canonical::Usage {
    switchyard::canonical::Usage {
        input_tokens: usage.input,
        output_tokens: usage.output,
        cache_read_tokens: usage.cache_read,
        cache_write_tokens: usage.cache_write,
        reasoning_tokens: usage.reasoning,
    }
}

/// `text_system_stream` → (TextSystem, streamed).
fn cell(name: &str) -> (Scenario, bool) {
    let (scenario, stream) = match name.strip_suffix("_stream") {
        Some(scenario) => (scenario, true),
        None => (name, false),
    };
    let scenario = match scenario {
        "text_system" => Scenario::TextSystem,
        "multi_turn" => Scenario::MultiTurn,
        "image" => Scenario::Image,
        "tool_choice" => Scenario::ToolChoice,
        "tool_choice_any" => Scenario::ToolChoiceAny,
        "tool_choice_none" => Scenario::ToolChoiceNone,
        "parallel_tools" => Scenario::ParallelTools,
        "tool_result" => Scenario::ToolResult,
        "json_output" => Scenario::JsonOutput,
        "max_tokens" => Scenario::MaxTokens,
        "stop_sequence" => Scenario::StopSequence,
        "usage_details" => Scenario::UsageDetails,
        other => panic!("no scenario named {other}"),
    };
    (scenario, stream)
}

/// One cell: a `front` client asks `scenario` of a route whose one target is `up`.
async fn run_cell(front: Front, up: Up, scenario: Scenario, stream: bool) {
    let mock = MockUpstream::start().await;
    mock.push(upstreams::answer(up, scenario, stream));
    let gateway = TestGateway::start(&upstreams::config(&[("up", up, &mock)])).await;

    let response = send(&gateway, front, &scenario.request(front, stream), &[]).await;
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let attempts = response.headers().get("x-switchyard-attempts").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let named_entry = response.headers().get("x-switchyard-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = response.text().await.expect("read the answer");
    assert_eq!(status, 200, "{body}");
    assert_eq!(attempts, "1");
    let want_type = if stream { "text/event-stream" } else { "application/json" };
    assert!(content_type.starts_with(want_type), "content-type {content_type}");

    assert_eq!(mock.request_count(), 1, "one upstream call");
    check_request(up, front, scenario, stream, &mock.last_request());

    let answer = scenario.answer(up);
    let usage = scenario.usage(up);
    let got = read(front, stream, &body);
    assert_eq!(got.observed, expected(front, &answer, usage), "what the client read, from:\n{body}");
    let ids: Vec<String> = (0..answer.calls.len()).map(|n| call_id(up, n)).collect();
    assert_eq!(got.call_ids, ids, "tool call ids, from:\n{body}");

    let (row, attempts) = ledger(&gateway).await;
    assert_eq!(row.outcome.as_str(), "success");
    assert_eq!(&*row.id, named_entry, "the reply names its ledger entry");
    assert_eq!(row.stream, stream);
    assert_eq!(row.attempt_count, 1);
    assert_eq!(attempts.len(), 1);
    assert_eq!(row.usage, canonical(usage), "the ledger's usage");
    gateway.shutdown().await;
}

/// `#[tokio::test]` per listed cell of one (front door, upstream) row; a cell's name is
/// its scenario, with `_stream` for the streamed variant.
macro_rules! cells {
    ($front:expr, $up:expr; $( $(#[$meta:meta])* $name:ident ),* $(,)?) => {
        $(
            #[tokio::test]
            $(#[$meta])*
            async fn $name() {
                let (scenario, stream) = super::cell(stringify!($name));
                super::run_cell($front, $up, scenario, stream).await;
            }
        )*
    };
}

mod openai_client_to_openai {
    use super::*;
    cells!(Front::OpenAi, Up::OpenAi;
        text_system, text_system_stream, multi_turn, multi_turn_stream, image, image_stream,
        tool_choice, tool_choice_stream, tool_choice_any, tool_choice_any_stream, tool_choice_none, tool_choice_none_stream,
        parallel_tools, parallel_tools_stream, tool_result, tool_result_stream, json_output, json_output_stream,
        max_tokens, max_tokens_stream, stop_sequence, stop_sequence_stream, usage_details, usage_details_stream,
    );
}

mod openai_client_to_anthropic {
    use super::*;
    cells!(Front::OpenAi, Up::Anthropic;
        text_system, text_system_stream, multi_turn, multi_turn_stream, image, image_stream,
        tool_choice, tool_choice_stream, tool_choice_any, tool_choice_any_stream, tool_choice_none, tool_choice_none_stream,
        parallel_tools, parallel_tools_stream, tool_result, tool_result_stream, json_output, json_output_stream,
        max_tokens, max_tokens_stream, stop_sequence, stop_sequence_stream, usage_details, usage_details_stream,
    );
}

mod openai_client_to_bedrock {
    use super::*;
    cells!(Front::OpenAi, Up::Bedrock;
        text_system, text_system_stream, multi_turn, multi_turn_stream, image, image_stream,
        tool_choice, tool_choice_stream, tool_choice_any, tool_choice_any_stream, tool_choice_none, tool_choice_none_stream,
        parallel_tools, parallel_tools_stream, tool_result, tool_result_stream, json_output, json_output_stream,
        max_tokens, max_tokens_stream, stop_sequence, stop_sequence_stream, usage_details, usage_details_stream,
    );
}

mod openai_client_to_gemini {
    use super::*;
    cells!(Front::OpenAi, Up::Gemini;
        text_system, text_system_stream, multi_turn, multi_turn_stream, image, image_stream,
        tool_choice, tool_choice_stream, tool_choice_any, tool_choice_any_stream, tool_choice_none, tool_choice_none_stream,
        parallel_tools, parallel_tools_stream, tool_result, tool_result_stream, json_output, json_output_stream,
        max_tokens, max_tokens_stream, stop_sequence, stop_sequence_stream, usage_details, usage_details_stream,
    );
}

mod anthropic_client_to_openai {
    use super::*;
    cells!(Front::Anthropic, Up::OpenAi;
        text_system, text_system_stream, multi_turn, multi_turn_stream, image, image_stream,
        tool_choice, tool_choice_stream, tool_choice_any, tool_choice_any_stream, tool_choice_none, tool_choice_none_stream,
        parallel_tools, parallel_tools_stream, tool_result, tool_result_stream, json_output, json_output_stream,
        max_tokens, max_tokens_stream, stop_sequence, stop_sequence_stream, usage_details, usage_details_stream,
    );
}

mod anthropic_client_to_anthropic {
    use super::*;
    cells!(Front::Anthropic, Up::Anthropic;
        text_system, text_system_stream, multi_turn, multi_turn_stream, image, image_stream,
        tool_choice, tool_choice_stream, tool_choice_any, tool_choice_any_stream, tool_choice_none, tool_choice_none_stream,
        parallel_tools, parallel_tools_stream, tool_result, tool_result_stream, json_output, json_output_stream,
        max_tokens, max_tokens_stream, stop_sequence, stop_sequence_stream, usage_details, usage_details_stream,
    );
}

mod anthropic_client_to_bedrock {
    use super::*;
    cells!(Front::Anthropic, Up::Bedrock;
        text_system, text_system_stream, multi_turn, multi_turn_stream, image, image_stream,
        tool_choice, tool_choice_stream, tool_choice_any, tool_choice_any_stream, tool_choice_none, tool_choice_none_stream,
        parallel_tools, parallel_tools_stream, tool_result, tool_result_stream, json_output, json_output_stream,
        max_tokens, max_tokens_stream, stop_sequence, stop_sequence_stream, usage_details, usage_details_stream,
    );
}

mod anthropic_client_to_gemini {
    use super::*;
    cells!(Front::Anthropic, Up::Gemini;
        text_system, text_system_stream, multi_turn, multi_turn_stream, image, image_stream,
        tool_choice, tool_choice_stream, tool_choice_any, tool_choice_any_stream, tool_choice_none, tool_choice_none_stream,
        parallel_tools, parallel_tools_stream, tool_result, tool_result_stream, json_output, json_output_stream,
        max_tokens, max_tokens_stream, stop_sequence, stop_sequence_stream, usage_details, usage_details_stream,
    );
}

// ---- upstream errors in the client's dialect ----

/// What a client must get for an upstream failure: status, error type per client
/// dialect, and the error kind the ledger records for the attempt.
struct WantError {
    status: u16,
    openai_type: &'static str,
    anthropic_type: &'static str,
    error_kind: &'static str,
}

fn want_error(failure: Failure) -> WantError {
    match failure {
        Failure::RateLimited => WantError { status: 429, openai_type: "rate_limit_error", anthropic_type: "rate_limit_error", error_kind: "rate_limited" },
        Failure::Overloaded | Failure::ModelNotReady => WantError {
            status: 503,
            openai_type: "service_unavailable_error",
            anthropic_type: "overloaded_error",
            error_kind: "overloaded",
        },
        Failure::ContextTooLong => WantError {
            status: 400,
            openai_type: "invalid_request_error",
            anthropic_type: "invalid_request_error",
            error_kind: "context_too_long",
        },
    }
}

/// Checks the client's error answer and the ledger after `reply` from a one-target,
/// no-retry route.
async fn run_error_cell(front: Front, up: Up, reply: support::Reply, failure: Failure, stream: bool) {
    let mock = MockUpstream::start().await;
    mock.push(reply);
    let gateway = TestGateway::start(&upstreams::config(&[("up", up, &mock)])).await;
    let response = send(&gateway, front, &Scenario::TextSystem.request(front, stream), &[]).await;
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = response.text().await.expect("read the answer");
    let want = want_error(failure);
    assert_eq!(status, want.status, "{body}");
    assert!(content_type.starts_with("application/json"), "an error before the first byte is a plain JSON error: {content_type}\n{body}");
    let body: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {body}"));
    let (kind, message) = error_message(front, &body);
    let want_type = match front {
        Front::OpenAi => want.openai_type,
        Front::Anthropic => want.anthropic_type,
    };
    assert_eq!(kind, want_type, "{body}");
    assert!(!message.is_empty(), "{body}");
    match failure {
        // Converse has no retry hint; every other dialect's is passed on.
        Failure::RateLimited if up != Up::Bedrock => assert_eq!(retry_after.as_deref(), Some("7"), "retry-after; body {body}"),
        Failure::ContextTooLong => {
            let phrase = upstreams::context_phrase(up);
            assert!(message.contains(phrase), "the message must say the prompt is too long ({phrase:?}): {message}");
        }
        _ => {}
    }
    assert_eq!(mock.request_count(), 1, "no retries on this route");
    let (row, attempts) = ledger(&gateway).await;
    assert_eq!(row.status, want.status);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].error_kind.as_deref(), Some(want.error_kind), "the attempt's error kind");
    gateway.shutdown().await;
}

/// `#[tokio::test]` per listed error cell of one (front door, upstream) row: the name is
/// the failure (`rate_limited`, `overloaded`, `model_not_ready`, `context_too_long`),
/// with `_stream` for a streamed request, or `overloaded_in_stream` for a 200 stream
/// whose first event is an overload error.
macro_rules! error_cells {
    ($front:expr, $up:expr; $( $(#[$meta:meta])* $name:ident ),* $(,)?) => {
        $(
            #[tokio::test]
            $(#[$meta])*
            async fn $name() {
                let name = stringify!($name);
                let (failure, stream, reply) = if name == "overloaded_in_stream" {
                    (Failure::Overloaded, true, upstreams::overloaded_in_stream($up))
                } else {
                    let (failure, stream) = match name.strip_suffix("_stream") {
                        Some(failure) => (failure, true),
                        None => (name, false),
                    };
                    let failure = match failure {
                        "rate_limited" => Failure::RateLimited,
                        "overloaded" => Failure::Overloaded,
                        "model_not_ready" => Failure::ModelNotReady,
                        "context_too_long" => Failure::ContextTooLong,
                        other => panic!("no failure named {other}"),
                    };
                    (failure, stream, upstreams::failure($up, failure))
                };
                super::run_error_cell($front, $up, reply, failure, stream).await;
            }
        )*
    };
}

mod errors {
    use super::*;

    mod openai_client_from_openai {
        use super::*;
        error_cells!(Front::OpenAi, Up::OpenAi;
            rate_limited, rate_limited_stream, overloaded, overloaded_stream, context_too_long, context_too_long_stream, overloaded_in_stream);
    }

    mod openai_client_from_anthropic {
        use super::*;
        error_cells!(Front::OpenAi, Up::Anthropic;
            rate_limited, rate_limited_stream, overloaded, overloaded_stream, context_too_long, context_too_long_stream, overloaded_in_stream);
    }

    mod openai_client_from_bedrock {
        use super::*;
        error_cells!(Front::OpenAi, Up::Bedrock;
            rate_limited, rate_limited_stream, overloaded, overloaded_stream, model_not_ready, model_not_ready_stream,
            context_too_long, context_too_long_stream, overloaded_in_stream);
    }

    mod openai_client_from_gemini {
        use super::*;
        error_cells!(Front::OpenAi, Up::Gemini;
            rate_limited, rate_limited_stream, overloaded, overloaded_stream, context_too_long, context_too_long_stream, overloaded_in_stream);
    }

    mod anthropic_client_from_openai {
        use super::*;
        error_cells!(Front::Anthropic, Up::OpenAi;
            rate_limited, rate_limited_stream, overloaded, overloaded_stream, context_too_long, context_too_long_stream, overloaded_in_stream);
    }

    mod anthropic_client_from_anthropic {
        use super::*;
        error_cells!(Front::Anthropic, Up::Anthropic;
            rate_limited, rate_limited_stream, overloaded, overloaded_stream, context_too_long, context_too_long_stream, overloaded_in_stream);
    }

    mod anthropic_client_from_bedrock {
        use super::*;
        error_cells!(Front::Anthropic, Up::Bedrock;
            rate_limited, rate_limited_stream, overloaded, overloaded_stream, model_not_ready, model_not_ready_stream,
            context_too_long, context_too_long_stream, overloaded_in_stream);
    }

    mod anthropic_client_from_gemini {
        use super::*;
        error_cells!(Front::Anthropic, Up::Gemini;
            rate_limited, rate_limited_stream, overloaded, overloaded_stream, context_too_long, context_too_long_stream, overloaded_in_stream);
    }

    /// A stream that breaks after its first content can no longer fail over: the client
    /// gets the text so far and then an error in its own dialect, never an ending that
    /// reads as complete (no `[DONE]`, no `message_stop`), and the ledger says so.
    async fn fails_mid_stream(front: Front, up: Up) {
        let mock = MockUpstream::start().await;
        mock.push(upstreams::fails_mid_stream(up));
        let gateway = TestGateway::start(&upstreams::config(&[("up", up, &mock)])).await;
        let response = send(&gateway, front, &Scenario::TextSystem.request(front, true), &[]).await;
        assert_eq!(response.status(), 200, "the stream had started");
        let body = response.text().await.unwrap();
        match front {
            Front::OpenAi => {
                let events = clients::data_events(&body);
                assert!(!events.iter().any(|e| e == "[DONE]"), "a broken stream must not end with [DONE]:\n{body}");
                let text: String = events
                    .iter()
                    .filter_map(|e| serde_json::from_str::<Value>(e).ok())
                    .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
                    .collect();
                assert_eq!(text, upstreams::TEXT_BEFORE_FAILURE, "{body}");
                let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
                let (_, message) = error_message(Front::OpenAi, &last);
                assert!(!message.is_empty(), "{body}");
            }
            Front::Anthropic => {
                let events = clients::named_events(&body);
                assert_eq!(events.first().map(|e| e.0.as_str()), Some("message_start"), "{body}");
                assert!(!events.iter().any(|e| e.0 == "message_stop"), "a broken stream must not end with message_stop:\n{body}");
                let text: String = events.iter().filter_map(|(_, d)| d["delta"]["text"].as_str().map(str::to_owned)).collect();
                assert_eq!(text, upstreams::TEXT_BEFORE_FAILURE, "{body}");
                let (name, last) = events.last().unwrap();
                assert_eq!(name, "error", "{body}");
                let (_, message) = error_message(Front::Anthropic, last);
                assert!(!message.is_empty(), "{body}");
            }
        }
        let (row, _) = ledger(&gateway).await;
        assert_eq!(row.outcome.as_str(), "stream_error");
        gateway.shutdown().await;
    }

    mod fails_mid_stream {
        use super::*;

        #[tokio::test]
        async fn openai_client_from_openai() {
            super::fails_mid_stream(Front::OpenAi, Up::OpenAi).await;
        }

        #[tokio::test]
        async fn openai_client_from_anthropic() {
            super::fails_mid_stream(Front::OpenAi, Up::Anthropic).await;
        }

        #[tokio::test]
        async fn openai_client_from_bedrock() {
            super::fails_mid_stream(Front::OpenAi, Up::Bedrock).await;
        }

        #[tokio::test]
        async fn openai_client_from_gemini() {
            super::fails_mid_stream(Front::OpenAi, Up::Gemini).await;
        }

        #[tokio::test]
        async fn anthropic_client_from_openai() {
            super::fails_mid_stream(Front::Anthropic, Up::OpenAi).await;
        }

        #[tokio::test]
        async fn anthropic_client_from_anthropic() {
            super::fails_mid_stream(Front::Anthropic, Up::Anthropic).await;
        }

        #[tokio::test]
        async fn anthropic_client_from_bedrock() {
            super::fails_mid_stream(Front::Anthropic, Up::Bedrock).await;
        }

        #[tokio::test]
        async fn anthropic_client_from_gemini() {
            super::fails_mid_stream(Front::Anthropic, Up::Gemini).await;
        }
    }

    /// An OpenAI client learns a prompt was too long from `code: context_length_exceeded`
    /// (docs/dialects.md, "Errors"), whichever upstream said so in its own words.
    mod openai_client_context_code {
        use super::*;

        async fn code_from(up: Up) {
            let mock = MockUpstream::start().await;
            mock.push(upstreams::failure(up, Failure::ContextTooLong));
            let gateway = TestGateway::start(&upstreams::config(&[("up", up, &mock)])).await;
            let response = send(&gateway, Front::OpenAi, &Scenario::TextSystem.request(Front::OpenAi, false), &[]).await;
            assert_eq!(response.status(), 400);
            let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "context_length_exceeded", "{body}");
            gateway.shutdown().await;
        }

        #[tokio::test]
        async fn from_openai() {
            code_from(Up::OpenAi).await;
        }

        #[tokio::test]
        async fn from_anthropic() {
            code_from(Up::Anthropic).await;
        }

        #[tokio::test]
        async fn from_bedrock() {
            code_from(Up::Bedrock).await;
        }

        #[tokio::test]
        async fn from_gemini() {
            code_from(Up::Gemini).await;
        }
    }
}

// ---- no silent loss ----

mod no_silent_loss {
    use super::*;

    /// A request feature `up` cannot express, sent by a `front` client to a route whose
    /// one target is `up`: a 400 in the client's dialect naming the feature and the
    /// target, and nothing sent upstream.
    async fn refused(front: Front, up: Up, body: Value, feature: &str) {
        let mock = MockUpstream::start().await;
        let gateway = TestGateway::start(&upstreams::config(&[("up", up, &mock)])).await;
        let response = send(&gateway, front, &body, &[]).await;
        let status = response.status().as_u16();
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).expect("a JSON error");
        assert_eq!(mock.request_count(), 0, "nothing may reach an upstream that would lose or reject part of the request: {body}\nsent: {:?}", mock.requests().iter().map(|r| r.body_text()).collect::<Vec<_>>());
        let (kind, message) = error_message(front, &body);
        assert_eq!(status, 400, "a feature the target cannot express is the client's request, not an upstream failure: {body}");
        assert_eq!(kind, "invalid_request_error", "{body}");
        assert!(message.contains(feature), "the message must name the feature ({feature:?}): {message}");
        let target = format!("up/{}", upstreams::model(up));
        assert!(message.contains(&target) || message.contains("up ("), "the message must name the target ({target}): {message}");
        gateway.shutdown().await;
    }

    fn openai_text(extra: Value) -> Value {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "Two answers, please."}]});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    }

    fn http_image(front: Front) -> Value {
        match front {
            Front::OpenAi => json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ]}]}),
            Front::Anthropic => json!({"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            ]}]}),
        }
    }

    #[tokio::test]
    async fn n_2_to_anthropic_is_refused_naming_n_and_the_target() {
        refused(Front::OpenAi, Up::Anthropic, openai_text(json!({"n": 2})), "n > 1").await;
    }

    #[tokio::test]
    async fn n_2_to_bedrock_is_refused_naming_n_and_the_target() {
        refused(Front::OpenAi, Up::Bedrock, openai_text(json!({"n": 2})), "n > 1").await;
    }

    #[tokio::test]
    async fn n_2_to_gemini_is_refused_naming_n_and_the_target() {
        refused(Front::OpenAi, Up::Gemini, openai_text(json!({"n": 2})), "n > 1").await;
    }

    #[tokio::test]
    async fn an_image_by_http_url_to_bedrock_is_refused_naming_the_feature() {
        refused(Front::OpenAi, Up::Bedrock, http_image(Front::OpenAi), "images by URL").await;
    }

    #[tokio::test]
    async fn an_image_by_http_url_from_an_anthropic_client_to_gemini_is_refused_naming_the_feature() {
        refused(Front::Anthropic, Up::Gemini, http_image(Front::Anthropic), "images by URL").await;
    }

    #[tokio::test]
    async fn json_object_output_to_anthropic_is_refused_naming_the_feature() {
        refused(Front::OpenAi, Up::Anthropic, openai_text(json!({"response_format": {"type": "json_object"}})), "json_object").await;
    }

    #[tokio::test]
    async fn json_object_output_to_bedrock_is_refused_naming_the_feature() {
        refused(Front::OpenAi, Up::Bedrock, openai_text(json!({"response_format": {"type": "json_object"}})), "json_object").await;
    }

    #[tokio::test]
    async fn a_document_by_url_from_an_anthropic_client_to_openai_is_refused_naming_the_feature() {
        let body = json!({"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Summarize."},
            {"type": "document", "source": {"type": "url", "url": "https://example.com/report.pdf"}},
        ]}]});
        refused(Front::Anthropic, Up::OpenAi, body, "documents by URL").await;
    }

    /// A tool result holding an image, from an Anthropic client. OpenAI's `tool`
    /// messages take text parts only; Gemini's function responses take no media.
    fn tool_result_with_image() -> Value {
        json!({"model": "m", "max_tokens": 64,
            "tools": [{"name": "render_chart", "description": "Renders the sales chart.", "input_schema": {"type": "object", "properties": {}}}],
            "messages": [
                {"role": "user", "content": "Describe the sales chart."},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01Chart", "name": "render_chart", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01Chart", "content": [
                    {"type": "text", "text": "The chart:"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": scenarios::PNG}},
                ]}]},
            ]})
    }

    #[tokio::test]
    async fn an_image_inside_a_tool_result_to_openai_is_refused_naming_the_feature() {
        refused(Front::Anthropic, Up::OpenAi, tool_result_with_image(), "image").await;
    }

    #[tokio::test]
    async fn an_image_inside_a_tool_result_to_gemini_is_refused_naming_the_feature() {
        refused(Front::Anthropic, Up::Gemini, tool_result_with_image(), "image").await;
    }

    /// A route `[bedrock, openai]`: the image URL Bedrock cannot take fails over to the
    /// OpenAI target, without a call to Bedrock, and the ledger says why.
    async fn fails_over(front: Front, stream: bool) {
        let bedrock = MockUpstream::start().await;
        let openai = MockUpstream::start().await;
        let answer = scenarios::Answer { text: "A cat.", calls: Vec::new(), stop: scenarios::Stop::EndTurn };
        let usage = Usage::plain(30, 3);
        openai.push(if stream { upstreams::openai::stream(&answer, usage) } else { upstreams::openai::complete(&answer, usage) });
        let gateway = TestGateway::start(&upstreams::config(&[("aws", Up::Bedrock, &bedrock), ("oai", Up::OpenAi, &openai)])).await;
        let mut body = http_image(front);
        if stream {
            body["stream"] = json!(true);
            if front == Front::OpenAi {
                body["stream_options"] = json!({"include_usage": true});
            }
        }
        let response = send(&gateway, front, &body, &[]).await;
        let status = response.status();
        let attempts = response.headers().get("x-switchyard-attempts").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let target = response.headers().get("x-switchyard-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        assert_eq!((attempts.as_str(), target.as_str()), ("2", "oai/gpt-4.1-mini"));
        let got = read(front, stream, &text);
        assert_eq!(got.observed, expected(front, &answer, usage), "{text}");
        assert_eq!(bedrock.request_count(), 0, "Bedrock was never called with a request it cannot take");
        let sent = openai.last_request().json();
        let image = sent["messages"][0]["content"].as_array().and_then(|parts| parts.iter().find(|p| p["type"] == "image_url").cloned());
        assert_eq!(image.map(|p| p["image_url"]["url"].clone()), Some(json!("https://example.com/cat.png")), "{sent}");

        let (row, attempts) = ledger(&gateway).await;
        assert_eq!(row.attempt_count, 2);
        assert_eq!(row.outcome.as_str(), "success");
        assert_eq!(attempts[0].error_kind.as_deref(), Some("unsupported_feature"), "{attempts:?}");
        assert_eq!(&*attempts[0].target, "aws/anthropic.claude-3-5-haiku-20241022-v1:0");
        assert_eq!(attempts[1].outcome.as_str(), "success");
        assert_eq!(row.usage, canonical(usage));
        gateway.shutdown().await;
    }

    #[tokio::test]
    async fn an_image_by_url_fails_over_from_bedrock_to_openai() {
        fails_over(Front::OpenAi, false).await;
    }

    #[tokio::test]
    async fn an_image_by_url_fails_over_from_bedrock_to_openai_streamed() {
        fails_over(Front::OpenAi, true).await;
    }

    #[tokio::test]
    async fn an_anthropic_clients_image_by_url_fails_over_from_bedrock_to_openai() {
        fails_over(Front::Anthropic, false).await;
    }
}

// ---- same-dialect passthrough ----

mod passthrough {
    use super::*;

    const BETA: &str = "context-management-2025-06-27,interleaved-thinking-2025-05-14";

    /// An Anthropic answer in a shape the gateway does not model: odd spacing, field
    /// order, fields it has never heard of.
    const ANTHROPIC_ANSWER: &str = concat!(
        "{\"model\": \"claude-sonnet-4-5-20250929\", \"id\":\"msg_01Pass\",\"type\":\"message\",\"role\":\"assistant\",",
        "\"content\":[{\"type\":\"text\",\"text\":\"Hi.\",\"citations\":null}],",
        "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"container\":null,",
        "\"context_management\":{\"applied_edits\":[]},",
        "\"usage\":{\"input_tokens\":17,\"cache_creation_input_tokens\":5,\"cache_read_input_tokens\":40,",
        "\"cache_creation\":{\"ephemeral_5m_input_tokens\":5,\"ephemeral_1h_input_tokens\":0},",
        "\"output_tokens\":3,\"service_tier\":\"standard\",\"server_tool_use\":{\"web_search_requests\":0}}}"
    );

    fn anthropic_request(stream: bool) -> Value {
        let mut body = json!({
            "model": "m",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "Hi"}],
            "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
            "x_future_field": {"nested": [1, 2, {"deep": true}]},
            "service_tier": "auto",
        });
        if stream {
            body["stream"] = json!(true);
        }
        body
    }

    fn assert_forwarded(sent: &Value, request: &Value, fields: &[&str]) {
        for field in fields {
            assert_eq!(sent[field], request[field], "field {field} must reach the upstream unchanged: {sent}");
        }
    }

    #[tokio::test]
    async fn anthropic_to_anthropic_keeps_unknown_fields_the_beta_header_and_the_answer_bytes() {
        let mock = MockUpstream::start().await;
        mock.push(upstreams::exact(200, &[("content-type", "application/json"), ("request-id", "req_pass")], ANTHROPIC_ANSWER.as_bytes()));
        let gateway = TestGateway::start(&upstreams::config(&[("up", Up::Anthropic, &mock)])).await;
        let request = anthropic_request(false);
        let response = send(&gateway, Front::Anthropic, &request, &[("anthropic-beta", BETA)]).await;
        assert_eq!(response.status(), 200);
        let bytes = response.bytes().await.unwrap();
        assert_eq!(String::from_utf8_lossy(&bytes), ANTHROPIC_ANSWER, "the answer's bytes reach the client unchanged");

        let sent = mock.last_request();
        assert_eq!(sent.header("anthropic-beta"), Some(BETA));
        let sent = sent.json();
        assert_eq!(sent["model"], "claude-sonnet-4-5", "only the model changes");
        assert_forwarded(&sent, &request, &["context_management", "x_future_field", "service_tier", "messages", "max_tokens"]);

        let (row, _) = ledger(&gateway).await;
        assert_eq!(row.usage, canonical(Usage { input: 17, output: 3, cache_read: 40, cache_write: 5, reasoning: 0 }));
        gateway.shutdown().await;
    }

    #[tokio::test]
    async fn anthropic_to_anthropic_streams_keep_every_event_byte_for_byte() {
        let mock = MockUpstream::start().await;
        let answer = scenarios::Answer { text: "Hello there!", calls: vec![scenarios::Call { name: scenarios::TOOL, args: json!({"city": "Oslo"}) }], stop: scenarios::Stop::ToolUse };
        let usage = Usage { input: 17, output: 9, cache_read: 40, cache_write: 5, reasoning: 0 };
        let events = upstreams::anthropic::events(&answer, usage);
        mock.push(upstreams::anthropic::sse(&events));
        let gateway = TestGateway::start(&upstreams::config(&[("up", Up::Anthropic, &mock)])).await;
        let request = anthropic_request(true);
        let response = send(&gateway, Front::Anthropic, &request, &[("anthropic-beta", BETA)]).await;
        assert_eq!(response.status(), 200);
        let body = response.text().await.unwrap();
        assert_eq!(body, events.concat(), "every upstream event, ping included, byte for byte");

        let sent = mock.last_request();
        assert_eq!(sent.header("anthropic-beta"), Some(BETA));
        assert_forwarded(&sent.json(), &request, &["context_management", "x_future_field", "service_tier", "stream"]);
        let (row, _) = ledger(&gateway).await;
        assert_eq!(row.usage, canonical(usage));
        gateway.shutdown().await;
    }

    #[tokio::test]
    async fn openai_to_openai_keeps_unknown_fields_and_the_answer_bytes() {
        const ANSWER: &str = concat!(
            "{\n  \"id\": \"chatcmpl-Pass\",\n  \"object\": \"chat.completion\",\n  \"created\": 1760000000,\n",
            "  \"model\": \"gpt-4.1-mini-2025-04-14\",\n  \"choices\": [{\"index\": 0, \"message\": {\"role\": \"assistant\", ",
            "\"content\": \"Hi.\", \"refusal\": null, \"annotations\": [{\"type\": \"url_citation\"}]}, \"logprobs\": null, ",
            "\"finish_reason\": \"stop\"}],\n  \"usage\": {\"prompt_tokens\": 57, \"completion_tokens\": 3, \"total_tokens\": 60, ",
            "\"prompt_tokens_details\": {\"cached_tokens\": 40, \"audio_tokens\": 0}, \"completion_tokens_details\": ",
            "{\"reasoning_tokens\": 1, \"audio_tokens\": 0}},\n  \"service_tier\": \"flex\",\n  \"system_fingerprint\": null\n}\n"
        );
        let mock = MockUpstream::start().await;
        mock.push(upstreams::exact(200, &[("content-type", "application/json")], ANSWER.as_bytes()));
        let gateway = TestGateway::start(&upstreams::config(&[("up", Up::OpenAi, &mock)])).await;
        let request = json!({
            "model": "m",
            "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            "service_tier": "flex",
            "prediction": {"type": "content", "content": "Hi."},
            "web_search_options": {"search_context_size": "low"},
            "x_future_field": [1, {"two": 2}],
        });
        let response = send(&gateway, Front::OpenAi, &request, &[]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(String::from_utf8_lossy(&response.bytes().await.unwrap()), ANSWER);
        let sent = mock.last_request().json();
        assert_eq!(sent["model"], "gpt-4.1-mini");
        assert_forwarded(&sent, &request, &["messages", "service_tier", "prediction", "web_search_options", "x_future_field"]);
        let (row, _) = ledger(&gateway).await;
        assert_eq!(row.usage, canonical(Usage { input: 17, output: 3, cache_read: 40, cache_write: 0, reasoning: 1 }));
        gateway.shutdown().await;
    }
}
