//! The `bedrock` provider and the `bedrock-converse` dialect: SigV4 against AWS's
//! published vectors, eventstream framing, conformance against a scripted Bedrock on
//! `127.0.0.1:0` (paths, signed headers, request bodies, answers, streams, errors), and
//! the canonical → Converse → canonical round trip.

mod support;

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};
use switchyard::canonical::*;
use switchyard::providers::bedrock::eventstream::{encode_event, encode_exception, FrameDecoder, StreamMessage};
use switchyard::providers::bedrock::{self, sigv4, BedrockUpstream};
use switchyard::providers::{Answer, AttemptRequest, ErrorKind, UpstreamError};

use support::{MockUpstream, RecordedRequest, Reply};

const REGION: &str = "us-east-1";
const AKID: &str = "AKID";
const SECRET: &str = "SECRET/KEY+EXAMPLE";
const TOKEN: &str = "SESSION-TOKEN-EXAMPLE";

fn upstream(mock: &MockUpstream, session_token: Option<&str>) -> BedrockUpstream {
    let credentials = bedrock::static_credentials(AKID.to_owned(), SECRET.to_owned(), session_token.map(str::to_owned));
    BedrockUpstream::new("bedrock-test".to_owned(), REGION.to_owned(), credentials, switchyard::providers::HttpClient::default(), Some(mock.base_url()))
}

fn chat(text: &str) -> ChatRequest {
    ChatRequest { model: "route".to_owned(), messages: vec![Message::text(Role::User, text)], ..ChatRequest::default() }
}

async fn send(upstream: &BedrockUpstream, request: &ChatRequest, model: &str) -> Result<Answer, UpstreamError> {
    upstream.send(AttemptRequest { request, model, original: None, anthropic_beta: None, anthropic_version: None }).await
}

/// A Converse answer body.
fn answer(content: Value, stop_reason: &str, usage: Value) -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": usage,
        "metrics": {"latencyMs": 321},
    })
}

fn event(event_type: &str, payload: Value) -> Bytes {
    encode_event(event_type, payload.to_string().as_bytes()).expect("frame an event")
}

/// How a scripted eventstream body ends.
#[derive(Clone, Copy, PartialEq)]
enum BodyEnd {
    /// The last chunk is sent: the body ends cleanly.
    Clean,
    /// The connection closes in the middle of the chunked body.
    Dropped,
}

/// A 200 eventstream response, written by hand so a test controls every byte.
fn eventstream_reply(frames: &[Bytes], end: BodyEnd) -> Reply {
    let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\nx-amzn-requestid: req-stream-1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
    for frame in frames {
        out.extend_from_slice(format!("{:x}\r\n", frame.len()).as_bytes());
        out.extend_from_slice(frame);
        out.extend_from_slice(b"\r\n");
    }
    if end == BodyEnd::Clean {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    Reply::RawBytes(out)
}

/// A Bedrock error answer: the type in `x-amzn-errortype`, the text in `message`.
fn aws_error(status: u16, error_type: &str, message: &str) -> Reply {
    Reply::json(status, json!({"message": message}))
        .with_header("x-amzn-errortype", &format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"))
}

/// Every event of a streamed answer, and the error it ended with, if any.
async fn collect(answer: Answer) -> (Vec<StreamEvent>, Option<UpstreamError>) {
    let Answer::Stream(stream) = answer else { panic!("expected a streamed answer") };
    assert!(!stream.passthrough, "Converse answers are never passed through");
    let mut items = stream.items;
    let mut events = Vec::new();
    while let Some(item) = items.next().await {
        match item {
            Ok(item) => events.extend(item.events),
            Err(err) => {
                assert!(items.next().await.is_none(), "nothing follows an error");
                return (events, Some(err));
            }
        }
    }
    (events, None)
}

async fn stream_of(frames: &[Bytes], end: BodyEnd) -> (Vec<StreamEvent>, Option<UpstreamError>) {
    let mock = MockUpstream::start().await;
    mock.push(eventstream_reply(frames, end));
    let mut request = chat("hi");
    request.stream = true;
    let answer = send(&upstream(&mock, None), &request, "anthropic.claude-3-haiku-20240307-v1:0").await.expect("stream accepted");
    assert_eq!(mock.last_request().path, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream");
    collect(answer).await
}


/// The signer against AWS's SigV4 test suite. Inputs and expected signatures are
/// copied from the suite's files as the `aws-sigv4` crate ships them
/// (`aws-signing-test-suite/v4/<case>/{context.json,request.txt,header-signed-request.txt}`,
/// from awslabs/aws-c-auth), except `post-x-www-form-urlencoded`, whose shipped variant
/// also signs `content-length` and an `x-amz-content-sha256` header: that case is AWS's
/// original one (<https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html>),
/// which signs `content-type;host;x-amz-date` over the hashed body.
mod sigv4_vectors {
    use super::*;

    const SUITE_AKID: &str = "AKIDEXAMPLE";
    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 2015-08-30T12:36:00Z, the suite's `timestamp`.
    const SUITE_TIME: u64 = 1_440_938_160;
    const SCOPE: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

    struct Case<'a> {
        method: &'a str,
        headers: &'a [(&'a str, &'a str)],
        body: &'a [u8],
        token: Option<&'a str>,
    }

    fn sign(case: Case<'_>) -> Vec<(&'static str, String)> {
        let credentials = Credentials::new(SUITE_AKID, SUITE_SECRET, case.token.map(str::to_owned), None, "test-suite");
        let scope = sigv4::SigningScope { region: "us-east-1", service: "service", time: UNIX_EPOCH + Duration::from_secs(SUITE_TIME) };
        let parts = sigv4::SignableParts { method: case.method, url: "https://example.amazonaws.com/", headers: case.headers, body: case.body };
        sigv4::sign(&credentials, scope, parts).expect("sign")
    }

    fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> &'a str {
        headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {name} header"))
    }

    #[test]
    fn the_signer_reproduces_get_vanilla() {
        let signed = sign(Case { method: "GET", headers: &[("host", "example.amazonaws.com")], body: b"", token: None });
        assert_eq!(header(&signed, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            header(&signed, "authorization"),
            format!("{SCOPE}, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
    }

    #[test]
    fn the_signer_reproduces_post_vanilla() {
        let signed = sign(Case { method: "POST", headers: &[("host", "example.amazonaws.com")], body: b"", token: None });
        assert_eq!(
            header(&signed, "authorization"),
            format!("{SCOPE}, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
        );
    }

    #[test]
    fn the_signer_reproduces_post_x_www_form_urlencoded() {
        let headers = [("content-type", "application/x-www-form-urlencoded"), ("host", "example.amazonaws.com")];
        let signed = sign(Case { method: "POST", headers: &headers, body: b"Param1=value1", token: None });
        assert_eq!(
            header(&signed, "authorization"),
            format!("{SCOPE}, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a")
        );
    }

    #[test]
    fn the_signer_reproduces_get_vanilla_with_session_token() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        let signed = sign(Case { method: "GET", headers: &[("host", "example.amazonaws.com")], body: b"", token: Some(token) });
        assert_eq!(header(&signed, "x-amz-security-token"), token);
        assert_eq!(
            header(&signed, "authorization"),
            format!("{SCOPE}, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8")
        );
    }

    /// Recomputes the signature of a request as the mock received it, with `aws-sigv4`
    /// directly, from the headers its `authorization` says were signed.
    fn recompute_signature(request: &RecordedRequest, token: Option<&str>) -> (String, String) {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let authorization = request.header("authorization").expect("authorization header");
        let signed_headers = authorization.split("SignedHeaders=").nth(1).and_then(|s| s.split(',').next()).expect("SignedHeaders");
        let received = authorization.rsplit("Signature=").next().expect("Signature").to_owned();
        let headers: Vec<(&str, &str)> = signed_headers.split(';').map(|name| (name, request.header(name).expect("a signed header is present"))).collect();
        let date = chrono::NaiveDateTime::parse_from_str(request.header("x-amz-date").expect("x-amz-date"), "%Y%m%dT%H%M%SZ").expect("x-amz-date format");
        let time = UNIX_EPOCH + Duration::from_secs(date.and_utc().timestamp() as u64);
        let identity = Credentials::new(AKID, SECRET, token.map(str::to_owned), None, "test").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("bedrock")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .expect("params")
            .into();
        let url = format!("http://{}{}", request.header("host").expect("host"), request.path);
        let signable = SignableRequest::new(&request.method, url, headers.into_iter(), SignableBody::Bytes(&request.body)).expect("signable");
        let (_, signature) = sign(signable, &params).expect("sign").into_parts();
        (received, signature)
    }

    #[tokio::test]
    async fn a_converse_request_is_signed_for_bedrock_and_the_upstream_can_verify_it() {
        let mock = MockUpstream::start().await;
        mock.push(Reply::json(200, answer(json!([{"text": "hi"}]), "end_turn", json!({"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}))));
        send(&upstream(&mock, Some(TOKEN)), &chat("hello"), "us.amazon.nova-micro-v1:0").await.expect("answer");

        let request = mock.last_request();
        let authorization = request.header("authorization").expect("authorization");
        let date = request.header("x-amz-date").expect("x-amz-date");
        assert_eq!(date.len(), 16, "x-amz-date is YYYYMMDDTHHMMSSZ: {date}");
        assert!(
            authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential=AKID/{}/us-east-1/bedrock/aws4_request, ", &date[..8])),
            "{authorization}"
        );
        assert!(authorization.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="), "{authorization}");
        assert_eq!(request.header("x-amz-security-token"), Some(TOKEN));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert!(!authorization.contains(SECRET) && !request.headers.iter().any(|(_, v)| v.contains(SECRET)), "the secret never travels");

        let (received, recomputed) = recompute_signature(&request, Some(TOKEN));
        assert_eq!(received, recomputed, "the signature covers the request exactly as it arrived");
    }

    #[tokio::test]
    async fn without_a_session_token_no_token_header_is_sent_or_signed() {
        let mock = MockUpstream::start().await;
        mock.push(Reply::json(200, answer(json!([{"text": "hi"}]), "end_turn", json!({"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}))));
        send(&upstream(&mock, None), &chat("hello"), "amazon.nova-micro-v1:0").await.expect("answer");

        let request = mock.last_request();
        assert_eq!(request.header("x-amz-security-token"), None);
        assert!(request.header("authorization").expect("authorization").contains("SignedHeaders=content-type;host;x-amz-date, "));
        let (received, recomputed) = recompute_signature(&request, None);
        assert_eq!(received, recomputed);
    }

    #[tokio::test]
    async fn the_default_credential_chain_builds_without_touching_the_network() {
        // Building resolves nothing; credentials are fetched on the first request.
        let provider: SharedCredentialsProvider = bedrock::default_credentials("eu-west-1".to_owned(), Some("no-such-profile".to_owned())).await;
        assert!(format!("{provider:?}").contains("DefaultCredentialsChain"), "{provider:?}");
    }
}

mod eventstream_framing {
    use super::*;
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    use proptest::prelude::*;

    /// A frame built with `aws-smithy-eventstream` directly, independent of the
    /// provider's own encoder.
    fn frame(event_type: &str, payload: &[u8]) -> Vec<u8> {
        let message = Message::new_from_parts(
            vec![
                Header::new(":message-type", HeaderValue::String("event".into())),
                Header::new(":event-type", HeaderValue::String(event_type.to_owned().into())),
                Header::new(":content-type", HeaderValue::String("application/json".into())),
            ],
            Bytes::copy_from_slice(payload),
        );
        let mut out = Vec::new();
        write_message_to(&message, &mut out).expect("encode");
        out
    }

    fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> Result<Vec<StreamMessage>, String> {
        let mut decoder = FrameDecoder::new();
        let mut messages = Vec::new();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for end in cuts.into_iter().chain([bytes.len()]) {
            decoder.push(&bytes[start..end.max(start)]);
            start = end.max(start);
            while let Some(message) = decoder.next_message()? {
                messages.push(StreamMessage::from_message(message)?);
            }
        }
        assert!(!decoder.has_partial(), "every byte belonged to a frame");
        Ok(messages)
    }

    proptest! {
        #[test]
        fn frames_survive_any_split_of_the_byte_stream(
            events in prop::collection::vec(("[a-zA-Z]{1,20}", prop::collection::vec(any::<u8>(), 0..300)), 1..6),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let bytes: Vec<u8> = events.iter().flat_map(|(t, p)| frame(t, p)).collect();
            let decoded = decode_in_pieces(&bytes, &cuts).expect("valid frames decode");
            let expected: Vec<StreamMessage> = events
                .into_iter()
                .map(|(event_type, payload)| StreamMessage::Event { event_type, payload: Bytes::from(payload) })
                .collect();
            prop_assert_eq!(decoded, expected);
        }
    }

    #[test]
    fn the_providers_encoder_writes_what_the_reference_encoder_writes() {
        let payload = br#"{"contentBlockIndex":0,"delta":{"text":"hi"}}"#;
        let ours = encode_event("contentBlockDelta", payload).expect("encode");
        let decoded = decode_in_pieces(&ours, &[]).expect("decode");
        assert_eq!(decoded, vec![StreamMessage::Event { event_type: "contentBlockDelta".to_owned(), payload: Bytes::from_static(payload) }]);
    }

    #[test]
    fn a_corrupted_payload_byte_fails_the_message_checksum() {
        let mut bytes = frame("messageStart", br#"{"role":"assistant"}"#);
        let last_payload_byte = bytes.len() - 5;
        bytes[last_payload_byte] ^= 0x01;
        let err = decode_in_pieces(&bytes, &[]).expect_err("a flipped bit is caught");
        assert!(err.contains("checksum") || err.contains("crc"), "{err}");
    }

    #[test]
    fn a_corrupted_length_is_caught_at_once_not_waited_for() {
        let mut bytes = frame("messageStart", br#"{"role":"assistant"}"#);
        bytes[1] ^= 0x40;
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes[..12]);
        let err = decoder.next_message().expect_err("the prelude checksum fails before the frame is complete");
        assert!(err.contains("prelude checksum"), "{err}");
    }

    #[test]
    fn exceptions_and_errors_are_told_apart_from_events() {
        let exception = encode_exception("throttlingException", br#"{"message":"slow down"}"#).expect("encode");
        let decoded = decode_in_pieces(&exception, &[3, 40]).expect("decode");
        assert_eq!(
            decoded,
            vec![StreamMessage::Exception { exception_type: "throttlingException".to_owned(), payload: Bytes::from_static(br#"{"message":"slow down"}"#) }]
        );
        let message = Message::new_from_parts(
            vec![
                Header::new(":message-type", HeaderValue::String("error".into())),
                Header::new(":error-code", HeaderValue::String("InternalFailure".into())),
                Header::new(":error-message", HeaderValue::String("boom".into())),
            ],
            Bytes::new(),
        );
        let mut bytes = Vec::new();
        write_message_to(&message, &mut bytes).expect("encode");
        assert_eq!(
            decode_in_pieces(&bytes, &[]).expect("decode"),
            vec![StreamMessage::Error { code: "InternalFailure".to_owned(), message: "boom".to_owned() }]
        );
    }
}

mod conformance {
    use super::*;

    fn ok_answer() -> Reply {
        Reply::json(200, answer(json!([{"text": "ok"}]), "end_turn", json!({"inputTokens": 1, "outputTokens": 1, "totalTokens": 2})))
    }

    #[tokio::test]
    async fn the_model_id_is_percent_encoded_into_one_path_segment() {
        let mock = MockUpstream::start().await;
        let bedrock = upstream(&mock, None);
        let cases = [
            ("us.anthropic.claude-3-5-sonnet-20240620-v1:0", "/model/us.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
            (
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
                "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.amazon.nova-pro-v1%3A0/converse",
            ),
        ];
        for (model, path) in cases {
            mock.push(ok_answer());
            send(&bedrock, &chat("hi"), model).await.expect("answer");
            let request = mock.last_request();
            assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", path));
        }
    }

    /// System prompt, several turns, an inline image, thinking, tools, a forced tool
    /// choice, a tool call and its result, sampling and stop sequences.
    fn rich_request() -> ChatRequest {
        ChatRequest {
            model: "route".to_owned(),
            system: vec![ContentPart::text("You are a terse assistant.")],
            messages: vec![
                Message {
                    role: Role::User,
                    content: vec![
                        ContentPart::text("What is in this picture, and what is the weather there?"),
                        ContentPart::Image { source: MediaSource::from_url("data:image/png;base64,iVBORw0KGgo="), detail: Some("high".to_owned()) },
                    ],
                    name: None,
                },
                Message {
                    role: Role::Assistant,
                    content: vec![
                        ContentPart::Thinking { text: "The picture shows Paris.".to_owned(), signature: Some("sig-1".to_owned()) },
                        ContentPart::text("A street in Paris. Let me check the weather."),
                        ContentPart::ToolUse { id: "tooluse_1".to_owned(), name: "get_weather".to_owned(), input: json!({"city": "Paris"}) },
                    ],
                    name: None,
                },
                Message {
                    role: Role::Tool,
                    content: vec![ContentPart::ToolResult {
                        tool_use_id: "tooluse_1".to_owned(),
                        content: vec![ContentPart::text("18°C, light rain")],
                        is_error: false,
                    }],
                    name: None,
                },
                Message::text(Role::User, "Should I take an umbrella?"),
            ],
            tools: vec![Tool {
                name: "get_weather".to_owned(),
                description: Some("Current weather for a city".to_owned()),
                parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
                strict: None,
            }],
            tool_choice: Some(ToolChoice::Tool { name: "get_weather".to_owned() }),
            sampling: Sampling { temperature: Some(0.5), top_p: Some(0.9), ..Sampling::default() },
            max_tokens: Some(512),
            stop: vec!["\n\nHuman:".to_owned()],
            ..ChatRequest::default()
        }
    }

    #[tokio::test]
    async fn a_rich_request_becomes_exactly_this_converse_body() {
        let mock = MockUpstream::start().await;
        mock.push(ok_answer());
        send(&upstream(&mock, None), &rich_request(), "anthropic.claude-3-5-sonnet-20240620-v1:0").await.expect("answer");
        insta::assert_json_snapshot!("rich_request_body", mock.last_request().json());
    }

    #[tokio::test]
    async fn an_answer_decodes_text_tool_calls_reasoning_usage_and_stop_reason() {
        let mock = MockUpstream::start().await;
        let content = json!([
            {"reasoningContent": {"reasoningText": {"text": "Need the weather.", "signature": "sig-9"}}},
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "tooluse_42", "name": "get_weather", "input": {"city": "Oslo"}}},
            {"citationsContent": {"citations": []}},
        ]);
        let usage = json!({"inputTokens": 11, "outputTokens": 22, "totalTokens": 133, "cacheReadInputTokens": 60, "cacheWriteInputTokens": 40});
        mock.push(Reply::json(200, answer(content, "tool_use", usage)).with_header("x-amzn-requestid", "req-123"));
        let Answer::Complete(completion) = send(&upstream(&mock, None), &chat("weather?"), "amazon.nova-pro-v1:0").await.expect("answer") else {
            panic!("expected a complete answer");
        };
        assert!(completion.passthrough.is_none());
        let response = completion.response;
        assert_eq!((response.id.as_str(), response.model.as_str()), ("req-123", "amazon.nova-pro-v1:0"));
        assert_eq!(
            response.content,
            vec![
                ContentPart::Thinking { text: "Need the weather.".to_owned(), signature: Some("sig-9".to_owned()) },
                ContentPart::text("Checking."),
                ContentPart::ToolUse { id: "tooluse_42".to_owned(), name: "get_weather".to_owned(), input: json!({"city": "Oslo"}) },
            ],
            "the unknown citations block is skipped"
        );
        assert_eq!(response.stop_reason, Some(StopReason::ToolUse));
        assert_eq!(
            response.usage,
            Usage { input_tokens: 11, output_tokens: 22, cache_read_tokens: 60, cache_write_tokens: 40, reasoning_tokens: 0 },
            "Converse inputTokens already excludes cached tokens"
        );
        assert!(response.created > 0);
    }

    #[test]
    fn every_converse_stop_reason_has_a_canonical_meaning() {
        use switchyard::dialects::bedrock_converse::stop_reason;
        let cases = [
            ("end_turn", StopReason::EndTurn),
            ("tool_use", StopReason::ToolUse),
            ("max_tokens", StopReason::MaxTokens),
            ("stop_sequence", StopReason::StopSequence),
            ("guardrail_intervened", StopReason::ContentFilter),
            ("content_filtered", StopReason::ContentFilter),
            ("model_context_window_exceeded", StopReason::MaxTokens),
            ("something_new", StopReason::EndTurn),
        ];
        for (wire, canonical) in cases {
            assert_eq!(stop_reason(wire), canonical, "{wire}");
        }
    }

    async fn error_for(reply: Reply) -> UpstreamError {
        let mock = MockUpstream::start().await;
        mock.push(reply);
        match send(&upstream(&mock, Some(TOKEN)), &chat("hi"), "amazon.nova-lite-v1:0").await {
            Err(err) => err,
            Ok(_) => panic!("expected an error"),
        }
    }

    #[tokio::test]
    async fn http_429_throttling_is_a_rate_limit_with_its_retry_hint() {
        let err = error_for(aws_error(429, "ThrottlingException", "Too many requests, please wait before trying again.").with_header("retry-after", "2")).await;
        assert_eq!((err.kind, err.status, err.code.as_deref()), (ErrorKind::RateLimited, Some(429), Some("ThrottlingException")));
        assert_eq!(err.retry_after, Some(Duration::from_secs(2)));
        assert!(err.message.contains("Too many requests"), "{}", err.message);
    }

    #[tokio::test]
    async fn a_validation_error_about_input_length_is_context_too_long() {
        let err = error_for(aws_error(400, "ValidationException", "Input is too long for requested model.")).await;
        assert_eq!((err.kind, err.status), (ErrorKind::ContextTooLong, Some(400)));
    }

    #[tokio::test]
    async fn other_validation_errors_are_invalid_requests() {
        let err = error_for(aws_error(400, "ValidationException", "The model returned the following errors: temperature: range: 0..1")).await;
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
    }

    #[tokio::test]
    async fn http_403_is_an_auth_error_that_repeats_nothing_of_the_upstream_text() {
        let text = "User: arn:aws:sts::123456789012:assumed-role/gateway is not authorized to perform: bedrock:InvokeModel";
        let err = error_for(aws_error(403, "AccessDeniedException", text)).await;
        assert_eq!((err.kind, err.status), (ErrorKind::Auth, Some(403)));
        assert!(!err.message.contains("123456789012") && !err.message.contains(AKID) && !err.message.contains(TOKEN), "{}", err.message);
        assert!(err.message.contains("AccessDeniedException"), "{}", err.message);
    }

    #[tokio::test]
    async fn an_error_type_in_the_body_alone_is_understood() {
        let reply = Reply::json(400, json!({"__type": "com.amazon.coral.service#UnrecognizedClientException", "message": "The security token included in the request is invalid."}));
        assert_eq!(error_for(reply).await.kind, ErrorKind::Auth);
    }

    #[tokio::test]
    async fn unknown_models_overload_and_model_timeouts_are_classified() {
        assert_eq!(error_for(aws_error(404, "ResourceNotFoundException", "Model not found")).await.kind, ErrorKind::NotFound);
        assert_eq!(error_for(aws_error(503, "ServiceUnavailableException", "Service unavailable")).await.kind, ErrorKind::Overloaded);
        assert_eq!(error_for(aws_error(429, "ModelNotReadyException", "Model is not ready")).await.kind, ErrorKind::Overloaded);
        assert_eq!(error_for(aws_error(408, "ModelTimeoutException", "Model timed out")).await.kind, ErrorKind::Timeout);
        assert_eq!(error_for(aws_error(500, "InternalServerException", "oops")).await.kind, ErrorKind::ServerError);
        assert_eq!(error_for(aws_error(429, "ServiceQuotaExceededException", "quota")).await.kind, ErrorKind::RateLimited);
    }

    #[tokio::test]
    async fn what_converse_cannot_carry_is_refused_before_anything_is_sent() {
        let mock = MockUpstream::start().await;
        let bedrock = upstream(&mock, None);
        let mut by_url = chat("look");
        by_url.messages[0].content.push(ContentPart::Image { source: MediaSource::Url { url: "https://example.com/cat.png".to_owned() }, detail: None });
        let mut several = chat("hi");
        several.n = Some(2);
        let mut json_object = chat("hi");
        json_object.response_format = Some(ResponseFormat::JsonObject);
        for (request, feature) in [(by_url, "images by URL"), (several, "n > 1"), (json_object, "json_object")] {
            let err = match send(&bedrock, &request, "amazon.nova-pro-v1:0").await {
                Err(err) => err,
                Ok(_) => panic!("{feature} should be refused"),
            };
            assert_eq!(err.kind, ErrorKind::Unsupported);
            assert!(err.message.contains(feature) && err.message.contains("bedrock-test"), "{}", err.message);
        }
        assert_eq!(mock.request_count(), 0);
    }

    fn tool_history(tools: Vec<Tool>, tool_choice: Option<ToolChoice>) -> ChatRequest {
        let mut request = chat("weather?");
        request.messages.push(Message {
            role: Role::Assistant,
            content: vec![ContentPart::ToolUse { id: "t1".to_owned(), name: "get_weather".to_owned(), input: json!({}) }],
            name: None,
        });
        request.messages.push(Message {
            role: Role::Tool,
            content: vec![ContentPart::ToolResult { tool_use_id: "t1".to_owned(), content: vec![ContentPart::text("sunny")], is_error: true }],
            name: None,
        });
        request.tools = tools;
        request.tool_choice = tool_choice;
        request
    }

    #[test]
    fn a_tool_history_without_declared_tools_still_gets_the_tool_config_converse_requires() {
        use switchyard::dialects::bedrock_converse::encode_request;
        let body = serde_json::to_value(encode_request(&tool_history(Vec::new(), None)).expect("encode")).expect("json");
        assert_eq!(
            body["toolConfig"],
            json!({"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]})
        );
        assert_eq!(body["messages"][2]["content"][0]["toolResult"]["status"], "error");
    }

    #[test]
    fn tool_choice_none_leaves_tools_out_unless_the_history_needs_them() {
        use switchyard::dialects::bedrock_converse::encode_request;
        let tool = Tool { name: "get_weather".to_owned(), description: None, parameters: json!({"type": "object"}), strict: None };
        let mut plain = chat("hi");
        plain.tools = vec![tool.clone()];
        plain.tool_choice = Some(ToolChoice::None);
        assert_eq!(encode_request(&plain).expect("encode").tool_config, None);
        let with_history = encode_request(&tool_history(vec![tool], Some(ToolChoice::None))).expect("encode");
        let config = with_history.tool_config.expect("tools are declared");
        assert_eq!((config.tools.len(), config.tool_choice), (1, None));
    }

    #[test]
    fn a_converse_request_with_an_unknown_block_is_refused_naming_the_block() {
        use switchyard::dialects::bedrock_converse::{decode_request, ConverseRequest};
        let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}, {"video": {"format": "mp4"}}]}]});
        let wire: ConverseRequest = serde_json::from_value(body).expect("lenient wire types");
        let err = decode_request(wire, "m", false).expect_err("video is not modelled");
        assert_eq!(err.param.as_deref(), Some("messages[0].content[1]"));
        assert!(err.message.contains("video"), "{}", err.message);
    }

    #[tokio::test]
    async fn a_json_schema_response_format_becomes_output_config() {
        let mock = MockUpstream::start().await;
        mock.push(ok_answer());
        let mut request = chat("give me a city");
        request.response_format = Some(ResponseFormat::JsonSchema {
            name: "city".to_owned(),
            schema: json!({"type": "object", "properties": {"name": {"type": "string"}}}),
            strict: Some(true),
            description: None,
        });
        send(&upstream(&mock, None), &request, "amazon.nova-pro-v1:0").await.expect("answer");
        assert_eq!(
            mock.last_request().json()["outputConfig"],
            json!({"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {
                "schema": "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}}}",
                "name": "city",
            }}}})
        );
    }
}

mod streaming {
    use super::*;

    const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

    fn start() -> Bytes {
        event("messageStart", json!({"p": "abcdefghijklmnopqrstuvwxyzABCDEF", "role": "assistant"}))
    }
    /// Bedrock pads events with a `p` field of varying length (so an event's size says
    /// nothing about its content); decoders must ignore it. Seen in real streams:
    /// <https://github.com/aws/aws-sdk-js-v3/issues/6919>.
    fn delta(index: usize, delta: Value) -> Bytes {
        event("contentBlockDelta", json!({"contentBlockIndex": index, "delta": delta, "p": "abcdefghijklmnop"}))
    }
    fn stop_block(index: usize) -> Bytes {
        event("contentBlockStop", json!({"contentBlockIndex": index}))
    }
    fn message_stop(reason: &str) -> Bytes {
        event("messageStop", json!({"stopReason": reason}))
    }
    fn metadata(usage: Value) -> Bytes {
        event("metadata", json!({"usage": usage, "metrics": {"latencyMs": 420}}))
    }
    fn message_start() -> StreamEvent {
        StreamEvent::MessageStart { id: "req-stream-1".to_owned(), model: MODEL.to_owned(), usage: Usage::default() }
    }
    fn text(index: usize, text: &str) -> StreamEvent {
        StreamEvent::BlockDelta { index, delta: BlockDelta::Text { text: text.to_owned() } }
    }

    #[tokio::test]
    async fn text_streams_and_usage_from_metadata_after_message_stop_closes_the_message() {
        let frames = [
            start(),
            delta(0, json!({"text": "Hel"})),
            delta(0, json!({"text": "lo"})),
            stop_block(0),
            message_stop("end_turn"),
            metadata(json!({"inputTokens": 5, "outputTokens": 2, "totalTokens": 10, "cacheReadInputTokens": 3})),
        ];
        let (events, err) = stream_of(&frames, BodyEnd::Clean).await;
        assert_eq!(err, None);
        assert_eq!(
            events,
            vec![
                message_start(),
                StreamEvent::BlockStart { index: 0, block: BlockStart::Text },
                text(0, "Hel"),
                text(0, "lo"),
                StreamEvent::BlockStop { index: 0 },
                StreamEvent::MessageDelta {
                    stop_reason: Some(StopReason::EndTurn),
                    stop_sequence: None,
                    usage: Usage { input_tokens: 5, output_tokens: 2, cache_read_tokens: 3, ..Usage::default() },
                },
                StreamEvent::MessageStop,
            ]
        );
    }

    #[tokio::test]
    async fn tool_input_arrives_as_json_fragments_of_a_started_tool_block() {
        let frames = [
            start(),
            delta(0, json!({"text": "Let me check."})),
            stop_block(0),
            event("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_7", "name": "get_weather"}}})),
            delta(1, json!({"toolUse": {"input": "{\"city\":"}})),
            delta(1, json!({"toolUse": {"input": "\"Oslo\"}"}})),
            stop_block(1),
            message_stop("tool_use"),
            metadata(json!({"inputTokens": 20, "outputTokens": 9, "totalTokens": 29})),
        ];
        let (events, err) = stream_of(&frames, BodyEnd::Clean).await;
        assert_eq!(err, None);
        assert_eq!(
            events,
            vec![
                message_start(),
                StreamEvent::BlockStart { index: 0, block: BlockStart::Text },
                text(0, "Let me check."),
                StreamEvent::BlockStop { index: 0 },
                StreamEvent::BlockStart { index: 1, block: BlockStart::ToolUse { id: "tooluse_7".to_owned(), name: "get_weather".to_owned() } },
                StreamEvent::BlockDelta { index: 1, delta: BlockDelta::ToolInputJson { partial_json: "{\"city\":".to_owned() } },
                StreamEvent::BlockDelta { index: 1, delta: BlockDelta::ToolInputJson { partial_json: "\"Oslo\"}".to_owned() } },
                StreamEvent::BlockStop { index: 1 },
                StreamEvent::MessageDelta {
                    stop_reason: Some(StopReason::ToolUse),
                    stop_sequence: None,
                    usage: Usage { input_tokens: 20, output_tokens: 9, ..Usage::default() },
                },
                StreamEvent::MessageStop,
            ]
        );
    }

    #[tokio::test]
    async fn reasoning_deltas_become_a_thinking_block_with_its_signature() {
        let frames = [
            start(),
            delta(0, json!({"reasoningContent": {"text": "Two plus two"}})),
            delta(0, json!({"reasoningContent": {"text": " is four."}})),
            delta(0, json!({"reasoningContent": {"signature": "EqQBCkgIAR"}})),
            stop_block(0),
            delta(1, json!({"text": "4"})),
            stop_block(1),
            message_stop("end_turn"),
            metadata(json!({"inputTokens": 3, "outputTokens": 30, "totalTokens": 33})),
        ];
        let (events, err) = stream_of(&frames, BodyEnd::Clean).await;
        assert_eq!(err, None);
        assert_eq!(
            &events[..7],
            &[
                message_start(),
                StreamEvent::BlockStart { index: 0, block: BlockStart::Thinking },
                StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Thinking { text: "Two plus two".to_owned() } },
                StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Thinking { text: " is four.".to_owned() } },
                StreamEvent::BlockDelta { index: 0, delta: BlockDelta::ThinkingSignature { signature: "EqQBCkgIAR".to_owned() } },
                StreamEvent::BlockStop { index: 0 },
                StreamEvent::BlockStart { index: 1, block: BlockStart::Text },
            ]
        );
        assert_eq!(events.last(), Some(&StreamEvent::MessageStop));
    }

    #[tokio::test]
    async fn a_stream_without_metadata_still_finishes_after_message_stop() {
        let frames = [start(), delta(0, json!({"text": "Hi"})), stop_block(0), message_stop("max_tokens")];
        let (events, err) = stream_of(&frames, BodyEnd::Clean).await;
        assert_eq!(err, None);
        assert_eq!(
            &events[events.len() - 2..],
            &[StreamEvent::MessageDelta { stop_reason: Some(StopReason::MaxTokens), stop_sequence: None, usage: Usage::default() }, StreamEvent::MessageStop]
        );
    }

    #[tokio::test]
    async fn an_in_stream_throttling_exception_ends_the_stream_as_a_rate_limit() {
        let throttled = encode_exception("throttlingException", br#"{"message":"Too many tokens, please wait before trying again."}"#).expect("frame");
        let (events, err) = stream_of(&[start(), delta(0, json!({"text": "Hi"})), throttled], BodyEnd::Clean).await;
        assert_eq!(events, vec![message_start(), StreamEvent::BlockStart { index: 0, block: BlockStart::Text }, text(0, "Hi")]);
        let err = err.expect("an error ends the stream");
        assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::RateLimited, Some("throttlingException")));
        assert!(err.message.contains("Too many tokens"), "{}", err.message);
    }

    #[tokio::test]
    async fn other_in_stream_exceptions_are_classified_too() {
        for (exception, kind) in [
            ("modelStreamErrorException", ErrorKind::ServerError),
            ("internalServerException", ErrorKind::ServerError),
            ("serviceUnavailableException", ErrorKind::Overloaded),
            ("validationException", ErrorKind::ContextTooLong),
        ] {
            let frame = encode_exception(exception, br#"{"message":"Input is too long for requested model."}"#).expect("frame");
            let (_, err) = stream_of(&[start(), frame], BodyEnd::Clean).await;
            assert_eq!(err.map(|e| e.kind), Some(kind), "{exception}");
        }
    }

    #[tokio::test]
    async fn a_body_that_ends_before_message_stop_is_a_cut_stream() {
        let frames = [start(), delta(0, json!({"text": "Hel"}))];
        let (events, err) = stream_of(&frames, BodyEnd::Clean).await;
        assert_eq!(events.len(), 3);
        assert_eq!(err.map(|e| e.kind), Some(ErrorKind::StreamCut));
    }

    #[tokio::test]
    async fn a_dropped_connection_mid_stream_is_a_cut_stream() {
        let (_, err) = stream_of(&[start(), delta(0, json!({"text": "Hel"}))], BodyEnd::Dropped).await;
        assert_eq!(err.map(|e| e.kind), Some(ErrorKind::StreamCut));
    }

    #[tokio::test]
    async fn a_frame_cut_in_half_at_the_end_is_a_cut_stream() {
        let half = start().slice(..10);
        let (_, err) = stream_of(&[start(), half], BodyEnd::Clean).await;
        assert_eq!(err.map(|e| e.kind), Some(ErrorKind::StreamCut));
    }

    #[tokio::test]
    async fn a_corrupted_frame_is_a_protocol_error() {
        let mut corrupt = delta(0, json!({"text": "Hel"})).to_vec();
        let at = corrupt.len() - 6;
        corrupt[at] ^= 0x20;
        let (events, err) = stream_of(&[start(), Bytes::from(corrupt), message_stop("end_turn")], BodyEnd::Clean).await;
        assert_eq!(events, vec![message_start()]);
        let err = err.expect("an error ends the stream");
        assert_eq!(err.kind, ErrorKind::Protocol);
        assert!(err.message.contains("checksum"), "{}", err.message);
    }

    #[tokio::test]
    async fn an_http_error_before_the_stream_is_classified_like_any_other() {
        let mock = MockUpstream::start().await;
        mock.push(aws_error(429, "ThrottlingException", "Too many requests"));
        let mut request = chat("hi");
        request.stream = true;
        let err = send(&upstream(&mock, None), &request, MODEL).await.err().expect("an error");
        assert_eq!(err.kind, ErrorKind::RateLimited);
    }
}

/// Canonical → Converse (through JSON text, as it travels) → canonical is lossless for
/// what Converse expresses: the generators produce only that (see the dialect table in
/// the report for what is not).
mod round_trip {
    use super::*;
    use proptest::prelude::*;
    use switchyard::dialects::bedrock_converse::{
        decode_request, encode_request, ConverseRequest, ConverseStreamDecoder, ConverseStreamEncoder,
    };

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 .,!?é]{1,24}"
    }

    fn base64() -> impl Strategy<Value = String> {
        "[A-Za-z0-9+/]{4,16}".prop_map(|s| format!("{s}=="))
    }

    fn image() -> impl Strategy<Value = ContentPart> {
        (prop::sample::select(vec!["image/png", "image/jpeg", "image/gif", "image/webp"]), base64(), any::<bool>()).prop_map(|(media_type, data, s3)| {
            // An S3 image's format comes from its extension.
            let source = if s3 {
                MediaSource::Url { url: format!("s3://bucket/{}.png", data[..4].replace(['+', '/'], "x")) }
            } else {
                MediaSource::Base64 { media_type: media_type.to_owned(), data }
            };
            ContentPart::Image { source, detail: None }
        })
    }

    fn document() -> impl Strategy<Value = ContentPart> {
        let types = vec!["application/pdf", "text/csv", "text/html", "text/plain", "text/markdown", "application/msword"];
        (prop::sample::select(types), base64(), "[A-Za-z0-9]{1,8}( [A-Za-z0-9()-]{1,8})?").prop_map(|(media_type, data, title)| {
            ContentPart::Document { source: MediaSource::Base64 { media_type: media_type.to_owned(), data }, title: Some(title) }
        })
    }

    fn json_object() -> impl Strategy<Value = Value> {
        prop::collection::btree_map("[a-z]{1,6}", prop_oneof![any::<i32>().prop_map(Value::from), text().prop_map(Value::from), any::<bool>().prop_map(Value::from)], 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    fn user_turn() -> impl Strategy<Value = Message> {
        prop::collection::vec(prop_oneof![3 => text().prop_map(ContentPart::text), 1 => image(), 1 => document()], 1..4)
            .prop_filter("a user turn of only tool results reads as a tool turn", |parts| !parts.is_empty())
            .prop_map(|content| Message { role: Role::User, content, name: None })
    }

    fn tool_turn() -> impl Strategy<Value = Message> {
        let result = ("[a-z0-9_]{3,10}", prop::collection::vec(prop_oneof![text().prop_map(ContentPart::text), image(), document()], 0..3), any::<bool>())
            .prop_map(|(tool_use_id, content, is_error)| ContentPart::ToolResult { tool_use_id, content, is_error });
        prop::collection::vec(result, 1..3).prop_map(|content| Message { role: Role::Tool, content, name: None })
    }

    fn assistant_turn() -> impl Strategy<Value = Message> {
        let part = prop_oneof![
            3 => text().prop_map(ContentPart::text),
            1 => (text(), prop::option::of("[A-Za-z0-9]{8}")).prop_map(|(text, signature)| ContentPart::Thinking { text, signature }),
            1 => base64().prop_map(|data| ContentPart::RedactedThinking { data }),
            2 => ("[a-z0-9_]{3,10}", "[a-z_]{1,10}", json_object()).prop_map(|(id, name, input)| ContentPart::ToolUse { id, name, input }),
        ];
        prop::collection::vec(part, 1..4).prop_map(|content| Message { role: Role::Assistant, content, name: None })
    }

    /// Turns alternate between the user side (user or tool results) and the assistant,
    /// as Converse requires; consecutive user-side turns would merge into one.
    fn conversation() -> impl Strategy<Value = Vec<Message>> {
        prop::collection::vec((prop_oneof![user_turn(), tool_turn()], prop::option::of(assistant_turn())), 1..4).prop_map(|pairs| {
            let mut messages = Vec::new();
            let count = pairs.len();
            for (i, (user_side, assistant)) in pairs.into_iter().enumerate() {
                messages.push(user_side);
                match assistant {
                    Some(assistant) => messages.push(assistant),
                    // Only the last turn may leave the assistant's reply out.
                    None if i + 1 < count => messages.push(Message::text(Role::Assistant, "ok")),
                    None => {}
                }
            }
            messages
        })
    }

    fn tools() -> impl Strategy<Value = Vec<Tool>> {
        prop::collection::vec(
            ("[a-z_]{1,10}", prop::option::of(text()), json_object(), prop::option::of(any::<bool>())).prop_map(|(name, description, properties, strict)| Tool {
                name,
                description,
                parameters: json!({"type": "object", "properties": properties}),
                strict,
            }),
            1..3,
        )
    }

    /// Multiples of 1/8 from 0 to `max` eighths, each exact in binary: within the
    /// dialect's documented range for the field when `max` says so.
    fn eighths(max: u32) -> impl Strategy<Value = Option<f64>> {
        prop::option::of((0..=max).prop_map(|k| f64::from(k) / 8.0))
    }

    prop_compose! {
        fn request()(
            system in prop::collection::vec(text().prop_map(ContentPart::text), 0..3),
            messages in conversation(),
            tools in tools(),
            choice in 0usize..4,
            temperature in eighths(8),
            top_p in eighths(8),
            max_tokens in prop::option::of(1u32..100_000),
            stop in prop::collection::vec(text(), 0..3),
            schema in prop::option::of(("[a-z_]{1,10}", json_object(), prop::option::of(text()))),
            additional in prop::option::of(json_object()),
            stream in any::<bool>(),
        ) -> ChatRequest {
            let tool_choice = match choice {
                0 => None,
                1 => Some(ToolChoice::Auto),
                2 => Some(ToolChoice::Required),
                _ => Some(ToolChoice::Tool { name: tools[0].name.clone() }),
            };
            let mut extra = serde_json::Map::new();
            if let Some(fields) = additional {
                extra.insert("additionalModelRequestFields".to_owned(), fields);
            }
            ChatRequest {
                model: "us.amazon.nova-pro-v1:0".to_owned(),
                system,
                messages,
                tools,
                tool_choice,
                sampling: Sampling { temperature, top_p, ..Sampling::default() },
                max_tokens,
                stop,
                response_format: schema.map(|(name, properties, description)| ResponseFormat::JsonSchema {
                    name,
                    schema: json!({"type": "object", "properties": properties}),
                    strict: None,
                    description,
                }),
                stream,
                include_usage: stream,
                extra_dialect: (!extra.is_empty()).then_some(Dialect::BedrockConverse),
                extra,
                ..ChatRequest::default()
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn canonical_requests_survive_converse_and_back(original in request()) {
            let wire = encode_request(&original).expect("everything generated is expressible");
            let text = serde_json::to_vec(&wire).expect("serialize");
            let wire: ConverseRequest = serde_json::from_slice(&text).expect("deserialize");
            let decoded = decode_request(wire, &original.model, original.stream).expect("decode");
            prop_assert_eq!(decoded, original);
        }

        #[test]
        fn canonical_streams_survive_converse_events_and_back(
            blocks in prop::collection::vec((0usize..3, prop::collection::vec(text(), 1..4)), 0..4),
            stop in prop::sample::select(vec![StopReason::EndTurn, StopReason::ToolUse, StopReason::MaxTokens, StopReason::StopSequence]),
            usage in (0u64..1000, 0u64..1000, 0u64..1000, 0u64..1000),
        ) {
            let mut events = vec![StreamEvent::MessageStart { id: "id".to_owned(), model: "m".to_owned(), usage: Usage::default() }];
            for (index, (kind, pieces)) in blocks.into_iter().enumerate() {
                let (start, delta): (BlockStart, fn(String) -> BlockDelta) = match kind {
                    0 => (BlockStart::Text, |text| BlockDelta::Text { text }),
                    1 => (BlockStart::Thinking, |text| BlockDelta::Thinking { text }),
                    _ => (BlockStart::ToolUse { id: format!("t{index}"), name: "f".to_owned() }, |partial_json| BlockDelta::ToolInputJson { partial_json }),
                };
                events.push(StreamEvent::BlockStart { index, block: start });
                events.extend(pieces.into_iter().map(|p| StreamEvent::BlockDelta { index, delta: delta(p) }));
                events.push(StreamEvent::BlockStop { index });
            }
            let usage = Usage { input_tokens: usage.0, output_tokens: usage.1, cache_read_tokens: usage.2, cache_write_tokens: usage.3, reasoning_tokens: 0 };
            events.push(StreamEvent::MessageDelta { stop_reason: Some(stop), stop_sequence: None, usage });
            events.push(StreamEvent::MessageStop);

            let mut encoder = ConverseStreamEncoder::new();
            let mut decoder = ConverseStreamDecoder::new("id", "m");
            let mut decoded = Vec::new();
            for event in &events {
                for (event_type, payload) in encoder.event(event) {
                    decoded.extend(decoder.push(event_type, payload.to_string().as_bytes()).expect("decode"));
                }
            }
            prop_assert!(decoder.is_done());
            prop_assert_eq!(decoded, events);
        }
    }
}
