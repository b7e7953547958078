//! Property: canonical → openai-chat → canonical is lossless for everything the OpenAI
//! chat dialect can express (text and image parts, tool calls and results, tools,
//! tool choice, sampling, limits, stop, JSON output, streaming options, user, metadata).

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use switchyard::canonical::*;
use switchyard::dialects::openai_chat::{decode_request, encode_request, EncodeOptions, MaxTokensField};

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?é]{1,24}"
}

fn image() -> impl Strategy<Value = ContentPart> {
    let source = prop_oneof![
        "[a-z]{3,8}".prop_map(|p| MediaSource::Url { url: format!("https://img.example/{p}.png") }),
        "[A-Za-z0-9+/]{4,16}".prop_map(|d| MediaSource::Base64 { media_type: "image/png".into(), data: d }),
    ];
    (source, proptest::option::of(prop_oneof![Just("low".to_owned()), Just("high".to_owned())]))
        .prop_map(|(source, detail)| ContentPart::Image { source, detail })
}

fn user() -> impl Strategy<Value = Message> {
    let single = text().prop_map(|t| vec![ContentPart::text(t)]);
    let mixed = (text(), image()).prop_map(|(t, i)| vec![ContentPart::text(t), i]);
    (prop_oneof![single, mixed], proptest::option::of("[a-z]{3,6}"))
        .prop_map(|(content, name)| Message { role: Role::User, content, name })
}

fn tool_use() -> impl Strategy<Value = ContentPart> {
    ("call_[a-z0-9]{4}", "[a-z_]{3,8}", text())
        .prop_map(|(id, name, arg)| ContentPart::ToolUse { id, name, input: json!({"q": arg, "n": 2}) })
}

fn assistant() -> impl Strategy<Value = Message> {
    let text_only = text().prop_map(|t| vec![ContentPart::text(t)]);
    let calls = proptest::collection::vec(tool_use(), 1..3);
    let text_and_calls = (text(), proptest::collection::vec(tool_use(), 1..3)).prop_map(|(t, mut c)| {
        c.insert(0, ContentPart::text(t));
        c
    });
    prop_oneof![text_only, calls, text_and_calls].prop_map(|content| Message { role: Role::Assistant, content, name: None })
}

fn tool_result() -> impl Strategy<Value = Message> {
    ("call_[a-z0-9]{4}", text()).prop_map(|(id, t)| Message {
        role: Role::Tool,
        content: vec![ContentPart::ToolResult { tool_use_id: id, content: vec![ContentPart::text(t)], is_error: false }],
        name: None,
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        3 => user(),
        2 => assistant(),
        1 => tool_result(),
        1 => text().prop_map(|t| Message::text(Role::System, t)),
    ]
}

fn tool() -> impl Strategy<Value = Tool> {
    ("[a-z_]{3,8}", proptest::option::of(text()), proptest::option::of(any::<bool>())).prop_map(|(name, description, strict)| Tool {
        name,
        description,
        parameters: json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}),
        strict,
    })
}

fn request() -> impl Strategy<Value = ChatRequest> {
    let sampling = (
        proptest::option::of(0.0f64..2.0),
        proptest::option::of(0.0f64..1.0),
        proptest::option::of(any::<i64>()),
        proptest::option::of(-2.0f64..2.0),
        proptest::option::of(-2.0f64..2.0),
    )
        .prop_map(|(temperature, top_p, seed, presence_penalty, frequency_penalty)| Sampling {
            temperature,
            top_p,
            top_k: None,
            seed,
            presence_penalty,
            frequency_penalty,
        });
    let choice = proptest::option::of(prop_oneof![
        Just(ToolChoice::Auto),
        Just(ToolChoice::None),
        Just(ToolChoice::Required),
        "[a-z_]{3,8}".prop_map(|name| ToolChoice::Tool { name }),
    ]);
    let format = proptest::option::of(prop_oneof![
        Just(ResponseFormat::Text),
        Just(ResponseFormat::JsonObject),
        ("[a-z_]{3,8}", proptest::option::of(any::<bool>()), proptest::option::of(text())).prop_map(|(name, strict, description)| {
            ResponseFormat::JsonSchema { name, schema: json!({"type": "object"}), strict, description }
        }),
    ]);
    (
        proptest::collection::vec(message(), 1..6),
        proptest::collection::vec(tool(), 0..3),
        choice,
        proptest::option::of(any::<bool>()),
        sampling,
        proptest::option::of(1u32..4096),
        proptest::collection::vec("[a-z]{1,4}", 0..3),
        format,
        (any::<bool>(), any::<bool>(), proptest::option::of("[a-z0-9-]{3,10}"), proptest::option::of(1u32..3)),
    )
        .prop_map(|(messages, tools, tool_choice, parallel_tool_calls, sampling, max_tokens, stop, response_format, (stream, usage, user, n))| {
            let metadata = user.as_ref().map(|u| {
                let mut m = Map::new();
                m.insert("team".into(), Value::String(u.clone()));
                m
            });
            ChatRequest {
                model: "route".into(),
                system: Vec::new(),
                messages,
                tools,
                tool_choice,
                parallel_tool_calls,
                sampling,
                max_tokens,
                stop,
                response_format,
                n,
                stream,
                include_usage: stream && usage,
                user,
                metadata,
                extra: Map::new(),
                extra_dialect: None,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn canonical_to_openai_chat_and_back_is_lossless(req in request()) {
        let options = EncodeOptions { max_tokens_field: MaxTokensField::MaxCompletionTokens, force_stream_usage: false };
        let wire = encode_request(&req, "route", options).expect("everything generated is expressible");
        let bytes = serde_json::to_vec(&wire).unwrap();
        let decoded = decode_request(&bytes).expect("the encoded request decodes");
        prop_assert_eq!(decoded, req);
    }
}

#[test]
fn a_document_by_url_is_refused_naming_the_feature() {
    let request = ChatRequest {
        model: "r".into(),
        messages: vec![Message {
            role: Role::User,
            content: vec![ContentPart::Document { source: MediaSource::Url { url: "https://x/doc.pdf".into() }, title: None }],
            name: None,
        }],
        ..ChatRequest::default()
    };
    let options = EncodeOptions { max_tokens_field: MaxTokensField::MaxTokens, force_stream_usage: false };
    let err = encode_request(&request, "m", options).unwrap_err();
    assert!(err.contains("documents by URL"), "{err}");
}

/// An answer as OpenAI sends it, with cached and reasoning tokens.
const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1741570283,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Paris \"and\" more \u00e9","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":125,"completion_tokens":24,"total_tokens":149,"prompt_tokens_details":{"cached_tokens":100,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":7,"audio_tokens":0}},"service_tier":"default","system_fingerprint":"fp_06737a9306"}"#;

#[test]
fn a_passed_through_answer_bills_the_same_usage_as_the_full_decoding() {
    use switchyard::dialects::openai_chat::{decode_passthrough_response, decode_response};
    let summary = decode_passthrough_response(ANSWER.as_bytes()).unwrap();
    let full = decode_response(serde_json::from_str(ANSWER).unwrap()).unwrap();
    assert_eq!((&summary.id, &summary.model, summary.created), (&full.id, &full.model, full.created));
    assert_eq!(summary.usage, full.usage);
    assert_eq!(summary.usage.cache_read_tokens, 100);
    assert_eq!(summary.usage.reasoning_tokens, 7);
}

#[test]
fn a_passed_through_answer_that_is_cut_short_or_has_nothing_to_pass_is_refused() {
    use switchyard::dialects::openai_chat::decode_passthrough_response;
    let refused = |body: &str| decode_passthrough_response(body.as_bytes()).unwrap_err();
    for cut in [1, 60, ANSWER.len() / 2, ANSWER.len() - 1] {
        assert!(refused(&ANSWER[..cut]).contains("EOF while parsing"), "cut at {cut}: {}", refused(&ANSWER[..cut]));
    }
    assert_eq!(refused(&ANSWER.replace(r#""choices":[{"index":0"#, r#""choices":[ ],"x":[{"index":0"#)), "the answer has no choices");
    assert!(refused(r#"{"model":"m"}"#).starts_with("missing field `choices`"));
    assert!(refused(r#"{"choices":[{}]}"#).starts_with("missing field `model`"));
    assert!(refused(r#"{"model":"m","choices":[{}],"usage":{"prompt_tokens":"many"}}"#).starts_with("invalid type"));
    // No usage, or null usage, is nothing to bill, not an error.
    let answer = decode_passthrough_response(br#"{"model":"m","choices":[{}],"usage":null}"#).unwrap();
    assert_eq!(answer.usage, Usage::default());
}

#[test]
fn a_refused_message_part_is_named_by_its_place_in_the_request() {
    let refused = |body: Value| decode_request(body.to_string().as_bytes()).unwrap_err();
    let audio = json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}});
    let error = refused(json!({"model": "m", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "listen"}, audio]}
    ]}));
    assert_eq!(error.param.as_deref(), Some("messages[1].content[1].type"), "{error:?}");
    let error = refused(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant"}]}));
    assert_eq!(error.param.as_deref(), Some("messages[1].content"), "{error:?}");
    let error = refused(json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]}));
    assert_eq!(error.param.as_deref(), Some("messages[0].content[0].file"), "{error:?}");
}

#[test]
fn a_malformed_message_is_refused_with_the_place_and_what_was_expected() {
    let refused = |messages: Value| decode_request(json!({"model": "m", "messages": messages}).to_string().as_bytes()).unwrap_err();
    let error = refused(json!([{"role": "wizard", "content": "hi"}]));
    assert_eq!(error.param.as_deref(), Some("messages[0].role"), "{error:?}");
    assert!(error.message.contains("unknown variant `wizard`"), "{}", error.message);
    let error = refused(json!([{"role": "user", "content": 5}]));
    assert_eq!(error.param.as_deref(), Some("messages[0].content"), "{error:?}");
    assert!(error.message.contains("expected a string or an array of content parts"), "{}", error.message);
    let error = refused(json!([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "hologram"}]}]));
    assert_eq!(error.param.as_deref(), Some("messages[0].content[1].type"), "{error:?}");
    let error = refused(json!([{"role": "user"}]));
    assert!(error.message.contains("missing field `content`"), "{}", error.message);
    let error = refused(json!([{"role": "tool", "content": "42"}]));
    assert!(error.message.contains("missing field `tool_call_id`"), "{}", error.message);
    let error = refused(json!([{"content": "hi"}]));
    assert!(error.message.contains("missing field `role`"), "{}", error.message);
}

#[test]
fn a_message_reads_the_same_whatever_the_order_of_its_fields() {
    let body = |message: &str| format!(r#"{{"model": "m", "messages": [{message}]}}"#);
    let first = decode_request(body(r#"{"role": "user", "content": "hi", "name": "ann"}"#).as_bytes()).unwrap();
    let last = decode_request(body(r#"{"name": "ann", "content": "hi", "role": "user"}"#).as_bytes()).unwrap();
    assert_eq!(first, last);
    let call = r#"{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}"#;
    let assistant = decode_request(body(&format!(r#"{{"tool_calls": [{call}], "content": null, "role": "assistant"}}"#)).as_bytes()).unwrap();
    assert!(matches!(&assistant.messages[0].content[0], ContentPart::ToolUse { id, .. } if id == "c1"), "{assistant:?}");
}

#[test]
fn a_request_reads_the_same_whatever_the_order_of_its_fields() {
    let first = decode_request(br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": true}"#).unwrap();
    let last = decode_request(br#"{"stream": true, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "model": "m"}"#).unwrap();
    assert_eq!(first, last);
}

#[test]
fn unmodelled_fields_are_kept_wherever_they_stand_and_however_their_names_are_escaped() {
    let body = br#"{"service_tier": "flex", "model": "m", "log\u0070robs": true, "messages": [{"role": "user", "content": "hi"}], "prediction": {"type": "content", "content": ["a", 1]}}"#;
    let request = decode_request(body).unwrap();
    let expected = json!({"service_tier": "flex", "logprobs": true, "prediction": {"type": "content", "content": ["a", 1]}});
    assert_eq!(Value::Object(request.extra), expected);
    assert_eq!(request.model, "m");
}

#[test]
fn a_modelled_field_given_as_null_reads_as_absent() {
    let with_nulls = decode_request(br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": null, "stream": null, "temperature": null, "tools": null, "metadata": null}"#).unwrap();
    let without = decode_request(br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#).unwrap();
    assert_eq!(with_nulls, without);
}

#[test]
fn a_field_given_twice_is_refused_naming_it() {
    let error = decode_request(br#"{"model": "a", "messages": [{"role": "user", "content": "hi"}], "model": "b"}"#).unwrap_err();
    assert_eq!(error.status, 400);
    assert!(error.message.contains("duplicate field `model`"), "{}", error.message);
    let error = decode_request(br#"{"model": "a", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}"#).unwrap_err();
    assert!(error.message.contains("duplicate field `max_tokens`"), "{}", error.message);
}
