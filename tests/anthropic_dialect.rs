//! The anthropic-messages dialect, both directions: requests, responses, streams and
//! errors, against the wire shapes Anthropic documents and a recorded stream's bytes.

use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use switchyard::canonical::*;
use switchyard::dialects::anthropic_messages::{self as anthropic, EncodeOptions, ErrorClass, EventDecoder, EventEncoder, Platform};
use switchyard::dialects::openai_chat;
use switchyard::dialects::sse::SseDecoder;

// ---- helpers ----

fn decode(body: Value) -> ChatRequest {
    match anthropic::decode_request(body.to_string().as_bytes()) {
        Ok(decoded) => decoded,
        Err(e) => panic!("request should decode: {e:?}"),
    }
}

fn decode_err(body: &str) -> ApiError {
    match anthropic::decode_request(body.as_bytes()) {
        Ok(decoded) => panic!("request should be rejected: {:?}", decoded),
        Err(e) => e,
    }
}

fn encode(req: &ChatRequest) -> Value {
    encode_with(req, EncodeOptions::default())
}

fn encode_with(req: &ChatRequest, options: EncodeOptions) -> Value {
    match anthropic::encode_request(req, "claude-sonnet-4-5", options) {
        Ok(wire) => serde_json::to_value(wire).unwrap(),
        Err(feature) => panic!("request should encode, but: {feature}"),
    }
}

fn encode_err(req: &ChatRequest) -> String {
    match anthropic::encode_request(req, "claude-sonnet-4-5", EncodeOptions::default()) {
        Ok(wire) => panic!("request should not encode: {wire:?}"),
        Err(feature) => feature,
    }
}

fn user(text: &str) -> Message {
    Message::text(Role::User, text)
}

fn request(messages: Vec<Message>) -> ChatRequest {
    ChatRequest { model: "support-chat".into(), messages, ..ChatRequest::default() }
}

/// A 1×1 transparent PNG, the smallest real image.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

// ---- requests: decoding ----

#[test]
fn a_request_decodes_into_the_canonical_fields() {
    let req = decode(json!({
        "model": "support-chat",
        "max_tokens": 1024,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Hello"}],
        "temperature": 0.5, "top_p": 0.9, "top_k": 40,
        "stop_sequences": ["END"],
        "stream": true,
        "metadata": {"user_id": "user-7"},
        "tools": [{"name": "weather", "description": "Weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "service_tier": "auto"
    }));
    assert_eq!(req.model, "support-chat");
    assert_eq!(req.max_tokens, Some(1024));
    assert_eq!(req.system, vec![ContentPart::text("You are terse.")]);
    assert_eq!(req.messages, vec![user("Hello")]);
    assert_eq!(req.sampling, Sampling { temperature: Some(0.5), top_p: Some(0.9), top_k: Some(40), ..Sampling::default() });
    assert_eq!(req.stop, vec!["END"]);
    assert!(req.stream && req.include_usage, "Anthropic streams always report usage");
    assert_eq!(req.user.as_deref(), Some("user-7"));
    assert_eq!(req.tools[0].parameters, json!({"type": "object"}));
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(req.extra, Map::from_iter([("service_tier".to_owned(), json!("auto"))]));
    assert_eq!(req.extra_dialect, Some(Dialect::AnthropicMessages));
}

#[test]
fn every_content_block_type_decodes_and_encodes_back_unchanged() {
    let messages = json!([
        {"role": "user", "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}, "title": "Spec"},
            {"type": "document", "source": {"type": "url", "url": "https://example.com/spec.pdf"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Plain words."}}
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "They want the weather.", "signature": "EqQBCgIYAhIM"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_02", "name": "weather", "input": {"city": "Rome"}}
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "21 C"},
            {"type": "tool_result", "tool_use_id": "toolu_02", "content": [
                {"type": "text", "text": "unavailable"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/map.png"}}
            ], "is_error": true},
            {"type": "text", "text": "Thanks"}
        ]}
    ]);
    let req = decode(json!({"model": "m", "max_tokens": 100, "messages": messages}));

    assert_eq!(req.messages[0].content[1], ContentPart::Image {
        source: MediaSource::Base64 { media_type: "image/png".into(), data: PNG.into() },
        detail: None
    });
    assert_eq!(req.messages[0].content[2], ContentPart::Image { source: MediaSource::Url { url: "https://example.com/cat.jpg".into() }, detail: None });
    assert_eq!(
        req.messages[0].content[5],
        ContentPart::Document {
            source: MediaSource::Base64 { media_type: "text/plain".into(), data: "UGxhaW4gd29yZHMu".into() },
            title: None
        },
        "plain-text documents are base64 in canonical form, like every other inline document"
    );
    assert_eq!(req.messages[1].content[0], ContentPart::Thinking { text: "They want the weather.".into(), signature: Some("EqQBCgIYAhIM".into()) });
    assert_eq!(req.messages[1].content[1], ContentPart::RedactedThinking { data: "EmwKAhgBEgy3va3pzix".into() });
    assert_eq!(req.messages[2].role, Role::User, "tool results stay in the user message that carries them");
    assert_eq!(req.messages[2].content[0], ContentPart::ToolResult {
        tool_use_id: "toolu_01".into(),
        content: vec![ContentPart::text("21 C")],
        is_error: false
    });
    assert!(matches!(&req.messages[2].content[1], ContentPart::ToolResult { is_error: true, content, .. } if content.len() == 2));

    assert_eq!(encode(&req)["messages"], messages);
}

#[test]
fn a_system_prompt_of_text_blocks_decodes_block_by_block() {
    let req = decode(json!({"model": "m", "max_tokens": 1, "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}}], "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(req.system, vec![ContentPart::text("A"), ContentPart::text("B")]);
}

#[test]
fn mid_conversation_system_messages_decode_as_system_messages_in_place() {
    let req = decode(json!({"model": "m", "max_tokens": 1, "messages": [
        {"role": "user", "content": "a"}, {"role": "system", "content": "Now be brief."}, {"role": "assistant", "content": "b"}
    ]}));
    assert_eq!(req.messages[1], Message::text(Role::System, "Now be brief."));
}

#[test]
fn a_syntax_error_names_the_line_and_column() {
    let err = decode_err("{\n  \"model\": \"m\",\n  \"max_tokens\": 1,,\n}");
    assert_eq!(err.status, 400);
    assert!(err.message.contains("line 3 column 19"), "{}", err.message);
}

#[test]
fn a_shape_error_names_the_field_path() {
    let err = decode_err(r#"{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "x"}]}]}"#);
    assert_eq!(err.param.as_deref(), Some("messages[1].content[0]"));
    assert!(err.message.contains("missing field `input`"), "{}", err.message);

    let err = decode_err(r#"{"model": "m", "max_tokens": "many", "messages": []}"#);
    assert_eq!(err.param.as_deref(), Some("max_tokens"));

    let err = decode_err(r#"{"model": "m", "max_tokens": 1}"#);
    assert_eq!(err.param.as_deref(), Some("messages"));

    let err = decode_err(r#"{"model": "m", "max_tokens": 1, "messages": [{"role": "robot", "content": "a"}]}"#);
    assert_eq!(err.param.as_deref(), Some("messages[0].role"));
}

#[test]
fn max_tokens_is_required_as_the_messages_api_requires_it() {
    let err = decode_err(r#"{"model": "m", "messages": [{"role": "user", "content": "a"}]}"#);
    assert_eq!((err.status, err.category, err.param.as_deref()), (400, ErrorCategory::InvalidRequest, Some("max_tokens")));
    assert!(err.message.contains("'max_tokens' is required"), "{}", err.message);
}

#[test]
fn a_count_tokens_request_needs_no_max_tokens() {
    let body = json!({"model": "m", "system": "s", "messages": [{"role": "user", "content": "a"}]});
    let decoded = anthropic::decode_count_tokens_request(body.to_string().as_bytes()).unwrap();
    assert_eq!((decoded.max_tokens, decoded.system.len()), (None, 1));
    let counted: anthropic::AnthropicCountTokensResponse = serde_json::from_str(r#"{"input_tokens": 14}"#).unwrap();
    assert_eq!(counted.input_tokens, 14);
}

#[test]
fn the_apis_own_rules_are_enforced_with_the_field_named() {
    let cases = [
        (r#"{"model": "", "max_tokens": 1, "messages": [{"role": "user", "content": "a"}]}"#, "model"),
        (r#"{"model": "m", "max_tokens": 1, "messages": []}"#, "messages"),
        (r#"{"model": "m", "max_tokens": 1, "temperature": 1.5, "messages": [{"role": "user", "content": "a"}]}"#, "temperature"),
        (r#"{"model": "m", "max_tokens": 9000, "thinking": {"type": "enabled", "budget_tokens": 512}, "messages": [{"role": "user", "content": "a"}]}"#, "thinking.budget_tokens"),
        (r#"{"model": "m", "max_tokens": 1, "system": [{"type": "image", "source": {"type": "url", "url": "u"}}], "messages": [{"role": "user", "content": "a"}]}"#, "system[0]"),
        (r#"{"model": "m", "max_tokens": 1, "messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]}"#, "messages[0].content[0].type"),
        (r#"{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}]}]}"#, "messages[0].content[0].type"),
        (r#"{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "a"}], "tools": [{"name": "x"}]}"#, "tools[0].input_schema"),
    ];
    for (body, param) in cases {
        assert_eq!(decode_err(body).param.as_deref(), Some(param), "{body}");
    }
}

#[test]
fn a_block_type_the_gateway_cannot_route_is_rejected_by_path() {
    let err = decode_err(r#"{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "search_result", "source": "s", "title": "t", "content": []}]}]}"#);
    assert_eq!(err.param.as_deref(), Some("messages[0].content[1].type"));
    assert!(err.message.contains("'search_result'"), "{}", err.message);

    let err = decode_err(r#"{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}"#);
    assert_eq!(err.param.as_deref(), Some("messages[0].content[0].source.type"));
}

// ---- requests: encoding ----

#[test]
fn a_canonical_request_encodes_with_a_default_max_tokens() {
    let wire = encode(&request(vec![user("Hi")]));
    assert_eq!(wire, json!({"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": [{"role": "user", "content": "Hi"}]}));
    let wire = encode_with(&request(vec![user("Hi")]), EncodeOptions { default_max_tokens: 512, ..EncodeOptions::default() });
    assert_eq!(wire["max_tokens"], 512);
}

#[test]
fn system_messages_anywhere_are_hoisted_into_system() {
    let req = ChatRequest {
        system: vec![ContentPart::text("Top.")],
        ..request(vec![Message::text(Role::System, "First."), user("a"), Message::text(Role::System, "Later."), user("b")])
    };
    let wire = encode(&req);
    assert_eq!(wire["system"], json!([{"type": "text", "text": "Top."}, {"type": "text", "text": "First."}, {"type": "text", "text": "Later."}]));
    assert_eq!(wire["messages"], json!([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]));
}

#[test]
fn consecutive_same_role_turns_are_merged_and_tool_results_lead_the_user_turn() {
    let result = |id: &str| Message {
        role: Role::Tool,
        content: vec![ContentPart::ToolResult { tool_use_id: id.into(), content: vec![ContentPart::text("ok")], is_error: false }],
        name: None,
    };
    let calls = Message {
        role: Role::Assistant,
        content: vec![
            ContentPart::ToolUse { id: "call_1".into(), name: "f".into(), input: json!({}) },
            ContentPart::ToolUse { id: "call_2".into(), name: "f".into(), input: json!({"a": 1}) },
        ],
        name: None,
    };
    let req = request(vec![user("go"), calls, user("also this"), result("call_1"), result("call_2")]);
    let wire = encode(&req);
    assert_eq!(wire["messages"].as_array().map(Vec::len), Some(3));
    assert_eq!(wire["messages"][2], json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "ok"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "ok"},
        {"type": "text", "text": "also this"}
    ]}));
}

#[test]
fn tool_results_map_to_openai_tool_messages_and_back() {
    // Anthropic client → canonical → OpenAI upstream: results become `tool` messages.
    let req = decode(json!({"model": "m", "max_tokens": 50, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "-3 C"}, {"type": "text", "text": "and tomorrow?"}]}
    ]}));
    let options = openai_chat::EncodeOptions { max_tokens_field: openai_chat::MaxTokensField::MaxCompletionTokens, force_stream_usage: false };
    let openai = serde_json::to_value(openai_chat::encode_request(&req, "gpt-4o", options).unwrap()).unwrap();
    assert_eq!(openai["messages"][2], json!({"role": "tool", "content": "-3 C", "tool_call_id": "toolu_1"}));
    assert_eq!(openai["messages"][3], json!({"role": "user", "content": "and tomorrow?"}));

    // OpenAI client → canonical → Anthropic upstream: `tool` messages become one user turn.
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "-3 C"}
    ]});
    let req = openai_chat::decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(encode(&req)["messages"][2], json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "-3 C"}]}));
}

#[test]
fn images_go_out_as_base64_or_url_sources() {
    let req = request(vec![Message {
        role: Role::User,
        content: vec![
            ContentPart::Image { source: MediaSource::from_url(&format!("data:image/png;base64,{PNG}")), detail: Some("high".into()) },
            ContentPart::Image { source: MediaSource::Url { url: "https://example.com/a.webp".into() }, detail: None },
        ],
        name: None,
    }]);
    assert_eq!(encode(&req)["messages"][0]["content"], json!([
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.webp"}}
    ]));
}

#[test]
fn features_the_dialect_cannot_carry_are_named() {
    let base = request(vec![user("a")]);
    assert!(encode_err(&ChatRequest { n: Some(2), ..base.clone() }).contains("n > 1"));
    assert!(encode_err(&ChatRequest { response_format: Some(ResponseFormat::JsonObject), ..base.clone() }).contains("json_object"));
    let odd_call = Message { role: Role::Assistant, content: vec![ContentPart::ToolUse { id: "c".into(), name: "f".into(), input: json!("not json") }], name: None };
    assert!(encode_err(&request(vec![user("a"), odd_call])).contains("tool_use input"));
    let word_doc = Message {
        role: Role::User,
        content: vec![ContentPart::Document { source: MediaSource::Base64 { media_type: "application/msword".into(), data: "AA==".into() }, title: None }],
        name: None,
    };
    assert!(encode_err(&request(vec![word_doc])).contains("application/msword"));
    assert!(encode_err(&request(vec![Message::text(Role::System, "only a system prompt")])).contains("no user or assistant message"));
}

#[test]
fn reasoning_without_a_signature_is_not_sent_to_claude() {
    let assistant = Message {
        role: Role::Assistant,
        content: vec![ContentPart::Thinking { text: "o1-style reasoning".into(), signature: None }, ContentPart::text("Answer.")],
        name: None,
    };
    let wire = encode(&request(vec![user("q"), assistant, user("more")]));
    assert_eq!(wire["messages"][1], json!({"role": "assistant", "content": "Answer."}));
}

#[test]
fn sampling_is_kept_in_claude_range_and_unmatched_knobs_are_dropped() {
    let req = ChatRequest {
        sampling: Sampling { temperature: Some(1.6), top_p: Some(0.5), top_k: Some(3), seed: Some(7), presence_penalty: Some(0.2), frequency_penalty: Some(0.1) },
        stop: vec!["STOP".into()],
        user: Some("u-1".into()),
        metadata: Some(Map::from_iter([("team".to_owned(), json!("x"))])),
        ..request(vec![user("a")])
    };
    let wire = encode(&req);
    assert_eq!(
        (wire["temperature"].clone(), wire["top_p"].clone(), wire["top_k"].clone(), wire["stop_sequences"].clone(), wire["metadata"].clone()),
        (json!(1.0), json!(0.5), json!(3), json!(["STOP"]), json!({"user_id": "u-1"}))
    );
    assert!(wire.get("seed").is_none() && wire.get("presence_penalty").is_none());
}

#[test]
fn parallel_tool_calls_ride_on_the_tool_choice() {
    let tools = vec![Tool { name: "f".into(), description: None, parameters: json!({"type": "object"}), strict: Some(true) }];
    let base = ChatRequest { tools, ..request(vec![user("a")]) };
    let choice = |tool_choice, parallel_tool_calls| encode(&ChatRequest { tool_choice, parallel_tool_calls, ..base.clone() })["tool_choice"].clone();
    assert_eq!(choice(None, None), Value::Null);
    assert_eq!(choice(None, Some(false)), json!({"type": "auto", "disable_parallel_tool_use": true}));
    assert_eq!(choice(Some(ToolChoice::Required), Some(true)), json!({"type": "any", "disable_parallel_tool_use": false}));
    assert_eq!(choice(Some(ToolChoice::Tool { name: "f".into() }), None), json!({"type": "tool", "name": "f"}));
    assert_eq!(choice(Some(ToolChoice::None), Some(false)), json!({"type": "none"}));
    assert_eq!(encode(&base)["tools"], json!([{"name": "f", "input_schema": {"type": "object"}, "strict": true}]));
}

#[test]
fn a_json_schema_response_format_is_a_structured_output_both_ways() {
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": false});
    let req = ChatRequest {
        response_format: Some(ResponseFormat::JsonSchema { name: "count".into(), schema: schema.clone(), strict: None, description: None }),
        ..request(vec![user("a")])
    };
    assert_eq!(encode(&req)["output_config"], json!({"format": {"type": "json_schema", "schema": schema}}));

    let decoded = decode(json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "a"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}, "effort": "low"}}));
    assert_eq!(decoded.response_format, Some(ResponseFormat::JsonSchema { name: "response".into(), schema, strict: Some(true), description: None }));
    assert_eq!(decoded.extra["output_config"], json!({"effort": "low"}));
}

#[test]
fn thinking_server_tools_and_unknown_fields_survive_to_an_anthropic_upstream_only() {
    let body = json!({
        "model": "m", "max_tokens": 16000,
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "tools": [{"name": "f", "input_schema": {"type": "object"}}, {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
        "output_config": {"effort": "high"},
        "service_tier": "standard_only",
        "messages": [{"role": "user", "content": "a"}]
    });
    let req = decode(body);
    assert_eq!(req.tools.len(), 1, "only the client tool is canonical");
    let wire = encode(&req);
    assert_eq!(wire["thinking"], json!({"type": "enabled", "budget_tokens": 10000}));
    assert_eq!(wire["tools"], json!([{"name": "f", "input_schema": {"type": "object"}}, {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]));
    assert_eq!(wire["output_config"], json!({"effort": "high"}));
    assert_eq!(wire["service_tier"], "standard_only");

    let options = openai_chat::EncodeOptions { max_tokens_field: openai_chat::MaxTokensField::MaxTokens, force_stream_usage: false };
    let openai = serde_json::to_value(openai_chat::encode_request(&req, "gpt-4o", options).unwrap()).unwrap();
    assert!(openai.get("thinking").is_none() && openai.get("service_tier").is_none());
}

#[test]
fn extra_fields_never_duplicate_a_typed_field() {
    let req = ChatRequest {
        max_tokens: Some(100),
        extra: Map::from_iter([("max_tokens".to_owned(), json!(1)), ("container".to_owned(), json!("c-1"))]),
        extra_dialect: Some(Dialect::AnthropicMessages),
        ..request(vec![user("a")])
    };
    let text = serde_json::to_string(&anthropic::encode_request(&req, "m", EncodeOptions::default()).unwrap()).unwrap();
    assert_eq!(text.matches("\"max_tokens\"").count(), 1, "{text}");
    assert!(text.contains(r#""max_tokens":100"#) && text.contains(r#""container":"c-1""#), "{text}");
}

#[test]
fn a_malformed_client_tool_is_reported_with_the_reason() {
    let err = decode_err(r#"{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "a"}], "tools": [{"name": 5, "input_schema": {}}]}"#);
    assert_eq!(err.param.as_deref(), Some("tools[0]"));
    assert!(err.message.contains("invalid type: integer `5`"), "{}", err.message);
}

#[test]
fn vertex_and_bedrock_bodies_carry_the_version_instead_of_the_model() {
    let req = request(vec![user("a")]);
    let vertex = encode_with(&req, EncodeOptions { platform: Platform::Vertex, ..EncodeOptions::default() });
    assert_eq!(vertex, json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 4096, "messages": [{"role": "user", "content": "a"}]}));
    let bedrock = encode_with(&req, EncodeOptions { platform: Platform::Bedrock, ..EncodeOptions::default() });
    assert_eq!(bedrock["anthropic_version"], "bedrock-2023-05-31");
    assert!(bedrock.get("model").is_none());

    let count = anthropic::encode_count_tokens_request(&req, "claude-sonnet-4-5", EncodeOptions { platform: Platform::Vertex, ..EncodeOptions::default() }).unwrap();
    assert_eq!(serde_json::to_value(count).unwrap()["model"], "claude-sonnet-4-5", "Vertex's count-tokens body names the model");
}

#[test]
fn an_openai_client_request_encodes_for_claude() {
    let body = json!({
        "model": "support-chat",
        "messages": [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture, and what's the weather there?"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}}
            ]},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [{"id": "call_abc", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_abc", "content": "{\"temp_c\": 21}"}
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "Current weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "temperature": 0.2,
        "max_completion_tokens": 800,
        "stop": ["\n\nHuman:"],
        "stream": true,
        "stream_options": {"include_usage": true},
        "user": "user-42"
    });
    let req = openai_chat::decode_request(body.to_string().as_bytes()).unwrap();
    insta::assert_json_snapshot!("openai_client_request_for_claude", encode(&req));
}

#[test]
fn a_full_anthropic_request_encodes_back_to_the_same_shape() {
    let body = json!({
        "model": "support-chat",
        "max_tokens": 2048,
        "system": [{"type": "text", "text": "Be precise."}, {"type": "text", "text": "Cite sources."}],
        "messages": [
            {"role": "user", "content": [
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "The sky is blue."}, "title": "Facts"},
                {"type": "text", "text": "What colour is the sky?"}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Check the document.", "signature": "sig-1"},
                {"type": "tool_use", "id": "toolu_9", "name": "lookup", "input": {"q": "sky"}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "blue"}]}
        ],
        "tools": [{"name": "lookup", "description": "Look up a fact", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "temperature": 1.0,
        "stream": true,
        "metadata": {"user_id": "u-1"}
    });
    insta::assert_json_snapshot!("anthropic_request_round_trip", encode(&decode(body)));
}

// ---- responses ----

/// A non-streamed answer in the shape the API documents, with thinking, text and a
/// tool call, and cache usage.
fn recorded_response() -> Value {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "Need the weather tool.", "signature": "EqQBCgIYAhIM"},
            {"type": "text", "text": "Let me check.", "citations": null},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "weather", "input": {"city": "Paris"}}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {"input_tokens": 472, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 2000, "output_tokens": 89,
                  "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 0}, "service_tier": "standard"}
    })
}

#[test]
fn a_response_decodes_with_usage_mapped_one_to_one() {
    let wire: anthropic::AnthropicResponse = serde_json::from_value(recorded_response()).unwrap();
    let response = anthropic::decode_response(wire);
    assert_eq!(response.id, "msg_01XFDUDYJgAACzvnptvVoYEL");
    assert_eq!(response.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(response.usage, Usage { input_tokens: 472, output_tokens: 89, cache_read_tokens: 2000, cache_write_tokens: 1000, reasoning_tokens: 0 });
    assert_eq!(response.content, vec![
        ContentPart::Thinking { text: "Need the weather tool.".into(), signature: Some("EqQBCgIYAhIM".into()) },
        ContentPart::text("Let me check."),
        ContentPart::ToolUse { id: "toolu_01A09q90qw90lq917835lq9".into(), name: "weather".into(), input: json!({"city": "Paris"}) },
    ], "the server tool call is left out");
}

#[test]
fn stop_reasons_map_both_ways() {
    for (name, stop) in [
        ("end_turn", StopReason::EndTurn),
        ("max_tokens", StopReason::MaxTokens),
        ("stop_sequence", StopReason::StopSequence),
        ("tool_use", StopReason::ToolUse),
        ("pause_turn", StopReason::PauseTurn),
        ("refusal", StopReason::ContentFilter),
    ] {
        assert_eq!(anthropic::stop_reason(name), stop);
        assert_eq!(anthropic::stop_reason_name(Some(stop)), name);
    }
    assert_eq!(anthropic::stop_reason("model_context_window_exceeded"), StopReason::MaxTokens);
}

#[test]
fn a_canonical_answer_encodes_as_an_anthropic_message() {
    let response = ChatResponse {
        id: "msg_test".into(),
        model: "gpt-4o-2024-08-06".into(),
        content: vec![
            ContentPart::Thinking { text: "Reasoning.".into(), signature: None },
            ContentPart::text("It is 21 C in Paris."),
            ContentPart::ToolUse { id: "call_1".into(), name: "log".into(), input: json!({"ok": true}) },
        ],
        stop_reason: Some(StopReason::ToolUse),
        stop_sequence: None,
        usage: Usage { input_tokens: 30, output_tokens: 12, cache_read_tokens: 100, cache_write_tokens: 0, reasoning_tokens: 4 },
        created: 1_700_000_000,
    };
    insta::assert_json_snapshot!("encoded_response", anthropic::encode_response(&response));

    let unnamed = anthropic::encode_response(&ChatResponse { id: String::new(), ..response });
    assert!(unnamed.id.starts_with("msg_") && unnamed.id.len() > 10, "{}", unnamed.id);
}

// ---- streams ----

/// The byte shape of a real Claude stream (recorded from the API: a thinking block, a
/// ping, a tool call, padding whitespace inside the JSON as the API sends it).
const RECORDED_STREAM: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01WBeG2NaYQ8w99747S3n8MZ\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-20250514\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":423,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":6,\"service_tier\":\"standard\"}}        }\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}            }\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"The user is asking for\"}}\n\n",
    "event: ping\n",
    "data: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\" the weather.\"}          }\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EsQDCkYICBgCKkBr9\"}        }\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0      }\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_0171KFcBwn1Z64XzvQfz3sZS\",\"name\":\"weather\",\"input\":{}}           }\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\"}             }\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\": \\\"Florence, Italy\\\"}\"}   }\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":1    }\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":423,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":119} }\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"              }\n\n",
);

/// Feeds SSE bytes through the shared framing and the decoder, in small reads.
fn decode_stream(bytes: &str) -> Result<Vec<StreamEvent>, anthropic::StreamError> {
    let mut sse = SseDecoder::new();
    let mut decoder = EventDecoder::new();
    let mut events = Vec::new();
    for chunk in bytes.as_bytes().chunks(37) {
        for event in sse.push(chunk) {
            events.extend(decoder.push(&event.data)?);
        }
    }
    assert!(!sse.has_partial());
    Ok(events)
}

fn delta(index: usize, delta: BlockDelta) -> StreamEvent {
    StreamEvent::BlockDelta { index, delta }
}

#[test]
fn a_recorded_stream_decodes_into_canonical_events_and_pings_are_ignored() {
    let events = decode_stream(RECORDED_STREAM).unwrap();
    let usage = Usage { input_tokens: 423, output_tokens: 119, ..Usage::default() };
    assert_eq!(events, vec![
        StreamEvent::MessageStart {
            id: "msg_01WBeG2NaYQ8w99747S3n8MZ".into(),
            model: "claude-sonnet-4-20250514".into(),
            usage: Usage { input_tokens: 423, output_tokens: 6, ..Usage::default() }
        },
        StreamEvent::BlockStart { index: 0, block: BlockStart::Thinking },
        delta(0, BlockDelta::Thinking { text: "The user is asking for".into() }),
        delta(0, BlockDelta::Thinking { text: " the weather.".into() }),
        delta(0, BlockDelta::ThinkingSignature { signature: "EsQDCkYICBgCKkBr9".into() }),
        StreamEvent::BlockStop { index: 0 },
        StreamEvent::BlockStart { index: 1, block: BlockStart::ToolUse { id: "toolu_0171KFcBwn1Z64XzvQfz3sZS".into(), name: "weather".into() } },
        delta(1, BlockDelta::ToolInputJson { partial_json: "{\"location".into() }),
        delta(1, BlockDelta::ToolInputJson { partial_json: "\": \"Florence, Italy\"}".into() }),
        StreamEvent::BlockStop { index: 1 },
        StreamEvent::MessageDelta { stop_reason: Some(StopReason::ToolUse), stop_sequence: None, usage },
        StreamEvent::MessageStop,
    ]);
}

#[test]
fn an_error_event_after_a_200_surfaces_as_a_classifiable_error() {
    let stream = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
        "event: error\n",
        "data: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n",
    );
    let Err(anthropic::StreamError::Upstream(body)) = decode_stream(stream) else { panic!("the error event must surface") };
    assert_eq!((body.kind.as_deref(), body.message.as_deref()), (Some("overloaded_error"), Some("Overloaded")));
    let status = anthropic::status_for_error_type("overloaded_error");
    assert_eq!((status, anthropic::classify(status, &body)), (529, ErrorClass::Overloaded));
}

#[test]
fn server_tool_blocks_unknown_events_and_citations_are_skipped() {
    let mut decoder = EventDecoder::new();
    let pushes = [
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"query\""}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{"type":"char_location"}}}"#,
        r#"{"type":"some_future_event","payload":1}"#,
    ];
    for data in pushes {
        assert_eq!(decoder.push(data).unwrap(), vec![], "{data}");
    }
    assert!(matches!(decoder.push("{not json"), Err(anthropic::StreamError::Malformed(_))));
}

#[test]
fn a_stream_cut_before_message_stop_is_finished_honestly() {
    let mut decoder = EventDecoder::new();
    decoder.push(r#"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"c","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}"#).unwrap();
    assert!(!decoder.saw_stop_reason() && !decoder.is_done());
    let tail = decoder.finish();
    assert_eq!(tail.last(), Some(&StreamEvent::MessageStop));
    assert!(decoder.finish().is_empty(), "finishing twice adds nothing");
}

/// A text answer that calls a tool after thinking, as canonical events from any upstream.
fn canonical_stream() -> Vec<StreamEvent> {
    vec![
        StreamEvent::MessageStart { id: "msg_stream".into(), model: "claude-sonnet-4-5".into(), usage: Usage { input_tokens: 25, output_tokens: 1, ..Usage::default() } },
        StreamEvent::BlockStart { index: 0, block: BlockStart::Thinking },
        delta(0, BlockDelta::Thinking { text: "Weather needs a tool.".into() }),
        delta(0, BlockDelta::ThinkingSignature { signature: "c2ln".into() }),
        StreamEvent::BlockStop { index: 0 },
        StreamEvent::BlockStart { index: 1, block: BlockStart::Text },
        delta(1, BlockDelta::Text { text: "Let me ".into() }),
        delta(1, BlockDelta::Text { text: "check.".into() }),
        StreamEvent::BlockStop { index: 1 },
        StreamEvent::BlockStart { index: 2, block: BlockStart::ToolUse { id: "toolu_1".into(), name: "weather".into() } },
        delta(2, BlockDelta::ToolInputJson { partial_json: "{\"city\":".into() }),
        delta(2, BlockDelta::ToolInputJson { partial_json: "\"Paris\"}".into() }),
        StreamEvent::BlockStop { index: 2 },
        StreamEvent::MessageDelta {
            stop_reason: Some(StopReason::ToolUse),
            stop_sequence: None,
            usage: Usage { input_tokens: 25, output_tokens: 40, cache_read_tokens: 10, ..Usage::default() },
        },
        StreamEvent::MessageStop,
    ]
}

fn encode_stream(events: &[StreamEvent]) -> String {
    let mut encoder = EventEncoder::new("msg_fallback".into(), false);
    let mut out = BytesMut::new();
    for event in events {
        switchyard::dialects::StreamEncoder::event(&mut encoder, event, &mut out);
    }
    String::from_utf8(out.to_vec()).unwrap()
}

#[test]
fn the_encoded_stream_is_anthropics_exact_byte_sequence() {
    let bytes = encode_stream(&canonical_stream());
    insta::assert_snapshot!("encoded_stream", bytes);
}

#[test]
fn the_encoded_stream_decodes_back_to_the_same_events() {
    let events = canonical_stream();
    let decoded = decode_stream(&encode_stream(&events)).unwrap();
    let mut expected = events;
    if let Some(StreamEvent::MessageStart { usage, .. }) = expected.first_mut() {
        *usage = Usage { input_tokens: 25, output_tokens: 1, ..Usage::default() };
    }
    assert_eq!(decoded, expected);
}

#[test]
fn the_encoder_repairs_streams_from_flatter_dialects() {
    // No explicit block starts, no message_delta, sparse canonical indexes.
    let events = [
        StreamEvent::MessageStart { id: String::new(), model: "gpt-4o".into(), usage: Usage::default() },
        delta(3, BlockDelta::Text { text: "Hi".into() }),
        StreamEvent::MessageStop,
    ];
    let bytes = encode_stream(&events);
    assert!(bytes.contains(r#""message":{"id":"msg_fallback""#), "{bytes}");
    assert!(bytes.contains(r#"event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#), "{bytes}");
    assert!(bytes.contains(r#"data: {"type":"content_block_stop","index":0}"#), "{bytes}");
    assert!(bytes.contains(r#""delta":{"stop_reason":"end_turn","stop_sequence":null}"#), "{bytes}");
    assert!(bytes.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), "{bytes}");
}

#[test]
fn an_encoder_error_ends_the_stream_in_anthropic_shape() {
    let mut encoder = EventEncoder::new("msg_x".into(), false);
    let mut out = BytesMut::new();
    let err = ApiError::new(502, ErrorCategory::Upstream, "The upstream failed after the answer had started.");
    switchyard::dialects::StreamEncoder::error(&mut encoder, &err, &mut out);
    switchyard::dialects::StreamEncoder::event(&mut encoder, &StreamEvent::MessageStop, &mut out);
    assert_eq!(
        String::from_utf8(out.to_vec()).unwrap(),
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The upstream failed after the answer had started.\"}}\n\n"
    );
}

#[test]
fn passthrough_forwards_upstream_events_with_their_names() {
    let mut encoder = EventEncoder::new("msg_x".into(), true);
    let mut out = BytesMut::new();
    let raw = |encoder: &mut EventEncoder, data: &str, out: &mut BytesMut| switchyard::dialects::StreamEncoder::raw(encoder, data, out);
    raw(&mut encoder, r#"{"type":"content_block_stop","index":0      }"#, &mut out);
    raw(&mut encoder, "{\"type\": \"ping\"}", &mut out);
    raw(&mut encoder, "event: message_stop\ndata: {\"type\":\"message_stop\"}", &mut out);
    switchyard::dialects::StreamEncoder::event(&mut encoder, &StreamEvent::MessageStop, &mut out);
    assert_eq!(
        String::from_utf8(out.to_vec()).unwrap(),
        concat!(
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0      }\n\n",
            "event: ping\ndata: {\"type\": \"ping\"}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ),
        "events are ignored in passthrough: the upstream's message_stop is already there"
    );
}

#[test]
fn passthrough_completes_a_stream_the_upstream_ended_without_message_stop() {
    let mut encoder = EventEncoder::new("msg_x".into(), true);
    let mut out = BytesMut::new();
    switchyard::dialects::StreamEncoder::raw(&mut encoder, r#"{"type":"content_block_stop","index":0}"#, &mut out);
    // The upstream's body ended after its last block: the decoder's `finish` reports
    // the rest, and only that is written.
    let usage = Usage { input_tokens: 9, output_tokens: 4, ..Usage::default() };
    for event in [StreamEvent::MessageDelta { stop_reason: Some(StopReason::EndTurn), stop_sequence: None, usage }, StreamEvent::MessageStop] {
        switchyard::dialects::StreamEncoder::event(&mut encoder, &event, &mut out);
    }
    assert_eq!(
        String::from_utf8(out.to_vec()).unwrap(),
        concat!(
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},",
            "\"usage\":{\"input_tokens\":9,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":4}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        )
    );
}

// ---- errors ----

#[test]
fn error_bodies_use_anthropic_types_per_category() {
    let categories = [
        ErrorCategory::InvalidRequest,
        ErrorCategory::Authentication,
        ErrorCategory::PermissionDenied,
        ErrorCategory::NotFound,
        ErrorCategory::RequestTooLarge,
        ErrorCategory::RateLimited,
        ErrorCategory::Overloaded,
        ErrorCategory::Upstream,
        ErrorCategory::Timeout,
        ErrorCategory::Internal,
    ];
    let bodies: Vec<Value> = categories.iter().map(|&c| anthropic::error_body(&ApiError::new(400, c, format!("{c:?}")))).collect();
    insta::assert_json_snapshot!("error_bodies", bodies);
}

#[test]
fn upstream_errors_are_read_and_classified() {
    let body = anthropic::parse_error_body(br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#);
    assert_eq!(body.request_id.as_deref(), Some("req_011CSHoEeqs5C35K2UUqR7Fy"));
    assert_eq!(anthropic::classify(400, &body), ErrorClass::ContextTooLong);

    let spend = anthropic::parse_error_body(br#"{"type":"error","error":{"type":"rate_limit_error","message":"limit","details":{"error_code":"enforced_spend_limit_reached"}}}"#);
    assert_eq!(spend.code.as_deref(), Some("enforced_spend_limit_reached"));
    assert_eq!(anthropic::classify(429, &spend), ErrorClass::Billing);

    let of = |kind: &str| anthropic::UpstreamErrorBody { kind: Some(kind.into()), message: Some("m".into()), ..Default::default() };
    let cases = [
        (529, of("overloaded_error"), ErrorClass::Overloaded),
        (429, of("rate_limit_error"), ErrorClass::RateLimited),
        (401, of("authentication_error"), ErrorClass::Auth),
        (403, of("permission_error"), ErrorClass::Auth),
        (402, of("billing_error"), ErrorClass::Billing),
        (404, of("not_found_error"), ErrorClass::NotFound),
        (400, of("invalid_request_error"), ErrorClass::InvalidRequest),
        (413, of("request_too_large"), ErrorClass::InvalidRequest),
        (500, of("api_error"), ErrorClass::ServerError),
        (504, of("timeout_error"), ErrorClass::Timeout),
        (502, anthropic::parse_error_body(b"<html>Bad gateway</html>"), ErrorClass::ServerError),
    ];
    for (status, body, class) in cases {
        assert_eq!(anthropic::classify(status, &body), class, "{status} {body:?}");
    }
}

// ---- property: canonical → anthropic → canonical ----

/// Standard padded base64, to build plain-text documents the way decoding does.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z]{1,6}", prop_oneof![text().prop_map(Value::from), any::<i32>().prop_map(Value::from), any::<bool>().prop_map(Value::from)], 0..3)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn media() -> impl Strategy<Value = MediaSource> {
    prop_oneof![
        "[A-Za-z0-9+/]{4,16}".prop_map(|data| MediaSource::Base64 { media_type: "image/png".into(), data }),
        "[a-z]{1,8}".prop_map(|p| MediaSource::Url { url: format!("https://example.com/{p}") }),
    ]
}

fn document() -> impl Strategy<Value = ContentPart> {
    let source = prop_oneof![
        "[A-Za-z0-9+/]{4,16}".prop_map(|data| MediaSource::Base64 { media_type: "application/pdf".into(), data }),
        "[a-z]{1,8}".prop_map(|p| MediaSource::Url { url: format!("https://example.com/{p}.pdf") }),
        text().prop_map(|t| MediaSource::Base64 { media_type: "text/plain".into(), data: base64(t.as_bytes()) }),
    ];
    (source, prop::option::of(text())).prop_map(|(source, title)| ContentPart::Document { source, title })
}

fn user_part() -> impl Strategy<Value = ContentPart> {
    prop_oneof![
        text().prop_map(ContentPart::text),
        media().prop_map(|source| ContentPart::Image { source, detail: None }),
        document(),
    ]
}

fn tool_result() -> impl Strategy<Value = ContentPart> {
    let inner = prop_oneof![text().prop_map(ContentPart::text), media().prop_map(|source| ContentPart::Image { source, detail: None })];
    ("toolu_[a-z0-9]{1,6}", prop::collection::vec(inner, 0..3), any::<bool>())
        .prop_map(|(tool_use_id, content, is_error)| ContentPart::ToolResult { tool_use_id, content, is_error })
}

fn assistant_part() -> impl Strategy<Value = ContentPart> {
    prop_oneof![
        text().prop_map(ContentPart::text),
        ("toolu_[a-z0-9]{1,6}", "[a-z_]{1,8}", json_object()).prop_map(|(id, name, input)| ContentPart::ToolUse { id, name, input }),
        (text(), "[A-Za-z0-9]{1,12}").prop_map(|(text, s)| ContentPart::Thinking { text, signature: Some(s) }),
        "[A-Za-z0-9]{1,12}".prop_map(|data| ContentPart::RedactedThinking { data }),
    ]
}

/// Alternating turns starting with the user; a user turn's tool results come first,
/// where the encoder puts them.
fn conversation() -> impl Strategy<Value = Vec<Message>> {
    let user_turn = (prop::collection::vec(tool_result(), 0..3), prop::collection::vec(user_part(), 0..3))
        .prop_filter("a turn has content", |(results, rest)| !results.is_empty() || !rest.is_empty())
        .prop_map(|(mut content, rest)| {
            content.extend(rest);
            Message { role: Role::User, content, name: None }
        });
    let assistant_turn = prop::collection::vec(assistant_part(), 1..4).prop_map(|content| Message { role: Role::Assistant, content, name: None });
    prop::collection::vec((user_turn, assistant_turn), 1..4).prop_flat_map(|pairs| {
        let len = pairs.len() * 2;
        let messages: Vec<Message> = pairs.into_iter().flat_map(|(u, a)| [u, a]).collect();
        // Sometimes end on the user's turn, sometimes on a prefilled assistant turn.
        (Just(messages), (len - 1)..=len).prop_map(|(mut m, keep)| {
            m.truncate(keep);
            m
        })
    })
}

fn tool_setup() -> impl Strategy<Value = (Option<ToolChoice>, Option<bool>)> {
    let with_flag = prop_oneof![Just(ToolChoice::Auto), Just(ToolChoice::Required), "[a-z_]{1,8}".prop_map(|name| ToolChoice::Tool { name })];
    prop_oneof![
        Just((None::<ToolChoice>, None::<bool>)),
        Just((Some(ToolChoice::None), None)),
        (with_flag, prop::option::of(any::<bool>())).prop_map(|(c, p)| (Some(c), p)),
    ]
}

prop_compose! {
    fn expressible_request()(
        system in prop::collection::vec(text().prop_map(ContentPart::text), 0..3),
        messages in conversation(),
        tools in prop::collection::vec(("[a-z_]{1,8}", prop::option::of(text()), json_object(), prop::option::of(any::<bool>())), 0..3),
        (tool_choice, parallel_tool_calls) in tool_setup(),
        temperature in prop::option::of((0u8..=8).prop_map(|k| f64::from(k) / 8.0)),
        top_p in prop::option::of((0u8..=4).prop_map(|k| f64::from(k) / 4.0)),
        top_k in prop::option::of(1u32..500),
        max_tokens in 1u32..200_000,
        stop in prop::collection::vec(text(), 0..3),
        schema in prop::option::of(json_object()),
        stream in any::<bool>(),
        user in prop::option::of("[a-z0-9-]{1,10}"),
    ) -> ChatRequest {
        ChatRequest {
            model: "claude-sonnet-4-5".into(),
            system,
            messages,
            tools: tools.into_iter().map(|(name, description, parameters, strict)| Tool { name, description, parameters, strict }).collect(),
            tool_choice,
            parallel_tool_calls,
            sampling: Sampling { temperature, top_p, top_k, ..Sampling::default() },
            max_tokens: Some(max_tokens),
            stop,
            response_format: schema.map(|schema| ResponseFormat::JsonSchema { name: "response".into(), schema, strict: Some(true), description: None }),
            n: None,
            stream,
            include_usage: stream,
            user,
            metadata: None,
            extra: Map::new(),
            extra_dialect: None,
        }
    }
}

proptest! {
    #[test]
    fn canonical_to_anthropic_and_back_is_lossless_for_what_anthropic_expresses(req in expressible_request()) {
        let wire = anthropic::encode_request(&req, "claude-sonnet-4-5", EncodeOptions::default()).map_err(TestCaseError::fail)?;
        let body = serde_json::to_vec(&wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let decoded = anthropic::decode_request(&body).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(decoded, req);
    }
}

#[test]
fn a_passed_through_anthropic_answer_bills_the_same_usage_as_the_full_decoding() {
    use switchyard::dialects::anthropic_messages::{decode_passthrough_response, decode_response};
    let answer = r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Paris \u00e9"},{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":[1,{"b":null}]}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":3,"cache_read_input_tokens":100,"output_tokens":24}}"#;
    let summary = decode_passthrough_response(answer.as_bytes()).unwrap();
    let full = decode_response(serde_json::from_str(answer).unwrap());
    assert_eq!((&summary.id, &summary.model), (&full.id, &full.model));
    assert_eq!(summary.stop_reason, full.stop_reason);
    assert_eq!(summary.usage, full.usage);
    assert_eq!(summary.usage.cache_read_tokens, 100);
    let cut = &answer[..answer.len() - 2];
    assert!(decode_passthrough_response(cut.as_bytes()).unwrap_err().is_eof());
}
