//! A fast read of the usual chat request: a model, messages of text from the system,
//! developer, user or assistant, and the common sampling settings. Anything else (tools,
//! content parts, response formats, members the gateway does not model) is left to
//! serde, as is anything this reader is unsure of; see `dialects::scan` for the contract
//! (`Some` only when serde would read exactly the same request).
//!
//! serde_json's derive for [`OpenAiChatRequest`] cost about 5,000 instructions for the
//! 230-byte request of the benchmark, a fourteenth of all the gateway spends on a proxied
//! request; this reader about 2,100 (`decode_request` as a whole went from 6.3k to 3.6k;
//! BENCHMARKS.md).

use serde_json::Map;

use super::wire::{OpenAiChatRequest, OpenAiContent, OpenAiMessage, OpenAiStreamOptions};
use crate::dialects::scan::{set_once, Reader};

/// Reads a request, or `None` when serde must decide.
pub(super) fn scan_request(body: &[u8]) -> Option<OpenAiChatRequest> {
    let mut reader = Reader::new(body)?;
    let request = reader.chat_request()?;
    reader.at_end().then_some(request)
}

/// The members of a chat request the fast read knows.
impl Reader<'_> {
    /// The request's object, as `deserialize_with_extra!` reads it: each member at most
    /// once, `null` for an optional one the same as leaving it out, `model` and `messages`
    /// required. A member this reader does not know gives `None`: serde would keep it in
    /// `extra`, or read a type this reader does not build.
    fn chat_request(&mut self) -> Option<OpenAiChatRequest> {
        let (mut model, mut messages, mut stream, mut stream_options, mut user) = (None, None, None, None, None);
        let (mut temperature, mut top_p, mut presence_penalty, mut frequency_penalty) = (None, None, None, None);
        let (mut max_tokens, mut max_completion_tokens, mut n, mut seed) = (None, None, None, None);
        self.members(|reader, key| {
            if key == b"model" {
                set_once(&mut model, reader.string()?)
            } else if key == b"messages" {
                set_once(&mut messages, reader.messages()?)
            } else if key == b"max_tokens" {
                set_once(&mut max_tokens, reader.nullable(Self::count)?)
            } else if key == b"max_completion_tokens" {
                set_once(&mut max_completion_tokens, reader.nullable(Self::count)?)
            } else if key == b"temperature" {
                set_once(&mut temperature, reader.nullable(Self::float)?)
            } else if key == b"top_p" {
                set_once(&mut top_p, reader.nullable(Self::float)?)
            } else if key == b"stream" {
                set_once(&mut stream, reader.nullable(Self::boolean)?)
            } else if key == b"stream_options" {
                set_once(&mut stream_options, reader.nullable(Self::stream_options)?)
            } else if key == b"seed" {
                set_once(&mut seed, reader.nullable(Self::signed)?)
            } else if key == b"presence_penalty" {
                set_once(&mut presence_penalty, reader.nullable(Self::float)?)
            } else if key == b"frequency_penalty" {
                set_once(&mut frequency_penalty, reader.nullable(Self::float)?)
            } else if key == b"n" {
                set_once(&mut n, reader.nullable(Self::count)?)
            } else if key == b"user" {
                set_once(&mut user, reader.nullable(Self::string)?)
            } else {
                None
            }
        })?;
        Some(OpenAiChatRequest {
            model: model?,
            messages: messages?,
            stream: stream.flatten(),
            stream_options: stream_options.flatten(),
            tools: None,
            tool_choice: None,
            parallel_tool_calls: None,
            response_format: None,
            temperature: temperature.flatten(),
            top_p: top_p.flatten(),
            max_tokens: max_tokens.flatten(),
            max_completion_tokens: max_completion_tokens.flatten(),
            stop: None,
            seed: seed.flatten(),
            presence_penalty: presence_penalty.flatten(),
            frequency_penalty: frequency_penalty.flatten(),
            n: n.flatten(),
            user: user.flatten(),
            metadata: None,
            extra: Map::new(),
        })
    }

    fn messages(&mut self) -> Option<Vec<OpenAiMessage>> {
        let mut messages = Vec::new();
        self.elements(|reader| {
            messages.push(reader.message()?);
            Some(())
        })?;
        Some(messages)
    }

    /// A message whose content is text, as `OpenAiMessage`'s reading takes it: its role
    /// decides the variant. Tool messages, tool calls, content parts and members
    /// other than `role`, `content` and `name` are left to serde.
    fn message(&mut self) -> Option<OpenAiMessage> {
        let (mut role, mut content, mut name) = (None, None, None);
        self.members(|reader, key| {
            if key == b"role" {
                set_once(&mut role, reader.plain_string()?)
            } else if key == b"content" {
                set_once(&mut content, reader.string()?)
            } else if key == b"name" {
                set_once(&mut name, reader.nullable(Self::string)?)
            } else {
                None
            }
        })?;
        let content = OpenAiContent::Text(content?);
        let name = name.flatten();
        Some(match role? {
            "system" => OpenAiMessage::System { content, name },
            "developer" => OpenAiMessage::Developer { content, name },
            "user" => OpenAiMessage::User { content, name },
            "assistant" => OpenAiMessage::Assistant { content: Some(content), name, tool_calls: None, refusal: None, reasoning_content: None },
            _ => return None,
        })
    }

    /// `{"include_usage": ...}`, or an empty object; any other member is left to serde.
    fn stream_options(&mut self) -> Option<OpenAiStreamOptions> {
        let mut include_usage = None;
        self.members(|reader, key| if key == b"include_usage" { set_once(&mut include_usage, reader.nullable(Self::boolean)?) } else { None })?;
        Some(OpenAiStreamOptions { include_usage: include_usage.flatten(), extra: Map::new() })
    }

    /// A count that must fit a `u32`, as serde reads one.
    fn count(&mut self) -> Option<u32> {
        u32::try_from(self.unsigned()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request `scripts/bench.sh` sends.
    const BENCH_REQUEST: &str = r#"{"model":"bench","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"What is the capital of France? Answer in one sentence."}],"max_tokens":64,"temperature":0.2}"#;

    fn serde_reads(body: &[u8]) -> Result<OpenAiChatRequest, crate::canonical::ApiError> {
        crate::dialects::json::parse_request::<OpenAiChatRequest>(body)
    }

    /// Asserts that the fast read takes `body`, and reads it exactly as serde does.
    fn read_as_serde_does(body: &str) -> OpenAiChatRequest {
        let Some(request) = scan_request(body.as_bytes()) else { panic!("left to serde: {body}") };
        assert_eq!(serde_reads(body.as_bytes()).as_ref(), Ok(&request), "{body}");
        request
    }

    fn left_to_serde(body: &str) {
        assert_eq!(scan_request(body.as_bytes()), None, "{body}");
    }

    /// Whether the fast read either left `body` to serde or read it as serde does.
    fn agrees(body: &[u8]) -> bool {
        scan_request(body).is_none_or(|request| serde_reads(body) == Ok(request))
    }

    /// A request with `members` added after its model and one user message.
    fn request_with(members: &str) -> String {
        format!(r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}]{members}}}"#)
    }

    #[test]
    fn the_bench_request_reads_the_same_as_serde_reads_it() {
        let request = read_as_serde_does(BENCH_REQUEST);
        assert_eq!(request.model, "bench");
        assert_eq!(request.messages.len(), 2);
        assert_eq!((request.max_tokens, request.temperature), (Some(64), Some(0.2)));
    }

    #[test]
    fn every_text_role_names_and_null_settings_read_as_serde_does() {
        let request = read_as_serde_does(
            r#"{"model":"support","messages":[{"role":"developer","content":"Be brief."},{"role":"system","content":"","name":"rules"},{"role":"user","content":"Hi","name":null},{"role":"assistant","content":"Hello!","name":"bot"},{"role":"user","content":"Bye"}],"temperature":null,"user":null,"n":null}"#,
        );
        assert_eq!(request.messages.len(), 5);
        assert!(matches!(&request.messages[3], OpenAiMessage::Assistant { content: Some(OpenAiContent::Text(t)), name: Some(n), .. } if t == "Hello!" && n == "bot"));
        read_as_serde_does(r#"{"messages":[],"model":"m"}"#);
    }

    #[test]
    fn escapes_and_text_beyond_ascii_are_unescaped_as_serde_does() {
        let content = r#""line\nbreak \"quoted\" back\\slash \/ \b\f\r\t caf\u00e9 \u00E9 rocket \ud83d\ude80 \uD83D\uDE80 \u0000 raw café 🚀""#;
        let request = read_as_serde_does(&format!(r#"{{"model":"r\u00e9sum\u00E9","messages":[{{"role":"user","content":{content},"name":"\u00e9\n"}}],"user":"a\"b"}}"#));
        assert_eq!(request.model, "résumé");
        // Long strings go through the eight-bytes-at-a-time path, with a stop in each lane.
        for lane in 0..16 {
            let text = format!("{}\\n{}\\u00e9{}", "a".repeat(lane), "é".repeat(lane), "b".repeat(lane));
            read_as_serde_does(&format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{text}"}}]}}"#));
        }
    }

    #[test]
    fn streams_counts_numbers_and_whitespace_read_as_serde_does() {
        read_as_serde_does(&request_with(r#","stream":true,"stream_options":{"include_usage":true}"#));
        read_as_serde_does(&request_with(r#","stream":false,"stream_options":{}"#));
        read_as_serde_does(&request_with(r#","stream_options":{"include_usage":null},"stream":null"#));
        read_as_serde_does(&request_with(r#","max_tokens":0,"max_completion_tokens":4294967295,"n":1,"seed":-9223372036854775808"#));
        read_as_serde_does(&request_with(r#","seed":9223372036854775807"#));
        for number in ["0", "1", "2", "-0", "0.7", "1.0", "1e0", "1E-3", "0.1e+1", "-1.5", "1.7976931348623157e308", "5e-324", "0.30000000000000004", "123456789012345678901234567890"] {
            let request = read_as_serde_does(&request_with(&format!(r#","temperature":{number},"top_p":{number},"presence_penalty":{number},"frequency_penalty":{number}"#)));
            assert_eq!(request.temperature, Some(number.parse().unwrap()), "{number}");
        }
        read_as_serde_does(" \n\t{ \"messages\" : [ { \"content\" : \"x\" , \"role\" : \"user\" } , { \"role\":\"assistant\",\"content\":\"y\" } ] ,\r\n \"model\" : \"m\" , \"max_tokens\" : 5 } \n");
    }

    #[test]
    fn what_the_fast_read_does_not_build_is_left_to_serde() {
        for members in [
            r#","tools":[{"type":"function","function":{"name":"f"}}]"#,
            r#","tool_choice":"auto""#,
            r#","response_format":{"type":"json_object"}"#,
            r#","stop":["x"]"#,
            r#","metadata":{"a":"b"}"#,
            r#","parallel_tool_calls":true"#,
            r#","logprobs":true"#,
            r#","stream_options":{"include_usage":true,"continuous_usage_stats":true}"#,
            r#","messages2":[]"#,
        ] {
            left_to_serde(&request_with(members));
            assert!(serde_reads(request_with(members).as_bytes()).is_ok(), "{members}");
        }
        for message in [
            r#"{"role":"user","content":[{"type":"text","text":"hi"}]}"#,
            r#"{"role":"tool","content":"42","tool_call_id":"call_1"}"#,
            r#"{"role":"assistant","content":null,"tool_calls":[]}"#,
            r#"{"role":"assistant","content":"x","refusal":null}"#,
            r#"{"role":"user","content":"x","extra":1}"#,
        ] {
            left_to_serde(&format!(r#"{{"model":"m","messages":[{message}]}}"#));
        }
    }

    #[test]
    fn malformed_duplicated_or_out_of_range_values_are_left_to_serde() {
        for members in [
            r#","model":"again""#,
            r#","max_tokens":1,"max_tokens":2"#,
            r#","max_tokens":-1"#,
            r#","max_tokens":4294967296"#,
            r#","max_tokens":1.0"#,
            r#","max_tokens":01"#,
            r#","temperature":"0.2""#,
            r#","temperature":1e999"#,
            r#","temperature":.5"#,
            r#","seed":-0"#,
            r#","seed":9223372036854775808"#,
            r#","stream":"true""#,
            r#","stream":True"#,
            r#","user":"\ud800""#,
            r#","user":"\x""#,
            ",\"user\":\"a\tb\"",
            r#","#,
        ] {
            left_to_serde(&request_with(members));
        }
        for body in [
            r#"{"messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"m"}"#,
            r#"{"model":"m","messages":[{"role":"robot","content":"hi"}]}"#,
            r#"{"model":"m","messages":[{"content":"hi"}]}"#,
            r#"{"model":"m","messages":[{"role":"user"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"},]}"#,
            r#"{"model":"m","messages":[]} x"#,
            r#"{"model":"m","messages":[]}}"#,
            r#"{"mo\u0064el":"m","messages":[]}"#,
            r#"[]"#,
            "",
        ] {
            left_to_serde(body);
        }
        assert_eq!(scan_request(b"{\"model\":\"\xff\",\"messages\":[]}"), None);
    }

    #[test]
    fn no_prefix_or_one_byte_edit_of_the_bench_request_is_read_differently_from_serde() {
        let request = BENCH_REQUEST.as_bytes();
        for at in 0..request.len() {
            assert!(agrees(&request[..at]), "prefix of {at}");
            let mut deleted = request.to_vec();
            deleted.remove(at);
            assert!(agrees(&deleted), "deleted at {at}");
            for byte in [b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b' ', b'0', b'-', b'.', b'e', b'n', b'u', 0x1f, 0xC3] {
                let mut replaced = request.to_vec();
                replaced[at] = byte;
                assert!(agrees(&replaced), "{} at {at}", byte as char);
            }
        }
    }

    mod generated {
        //! Requests made up at random: the usual ones must be read as serde reads them,
        //! odd ones as serde reads them or not at all.

        use super::{agrees, scan_request, serde_reads};
        use proptest::prelude::*;

        fn whitespace() -> BoxedStrategy<String> {
            prop::sample::select(vec!["", "", "", " ", "\n", "\t", " \r\n "]).prop_map(str::to_owned).boxed()
        }

        /// A JSON string literal: plain text, text beyond ASCII, and every escape.
        fn string() -> BoxedStrategy<String> {
            let piece = prop_oneof![
                4 => "[a-zA-Z0-9 ?.,]{0,12}",
                1 => "[é🚀ß中]{1,3}",
                1 => prop::sample::select(vec!["\\n", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\r", "\\t", "\\u00e9", "\\u0000", "\\uD83D\\uDE80", "\\ud83d\\ude80"]).prop_map(str::to_owned),
            ];
            prop::collection::vec(piece, 0..6).prop_map(|pieces| format!("\"{}\"", pieces.concat())).boxed()
        }

        fn float() -> BoxedStrategy<String> {
            prop_oneof![
                (0u32..3, 0u32..1000).prop_map(|(whole, fraction)| format!("{whole}.{fraction}")),
                (0u32..3).prop_map(|whole| whole.to_string()),
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
                Just("-0".to_owned()),
            ]
            .boxed()
        }

        fn count(odd: bool) -> BoxedStrategy<String> {
            if odd {
                prop_oneof![any::<u32>().prop_map(|n| n.to_string()), any::<i64>().prop_map(|n| n.to_string()), Just("1.0".to_owned()), Just("null".to_owned())].boxed()
            } else {
                any::<u32>().prop_map(|n| n.to_string()).boxed()
            }
        }

        fn member(key: &'static str, value: impl Strategy<Value = String> + 'static) -> BoxedStrategy<String> {
            (whitespace(), value).prop_map(move |(space, value)| format!("\"{key}\"{space}:{space}{value}")).boxed()
        }

        fn object(members: Vec<String>, space: &str) -> String {
            format!("{{{space}{}{space}}}", members.join(&format!("{space},{space}")))
        }

        fn message(odd: bool) -> BoxedStrategy<String> {
            let roles: Vec<&str> = if odd { vec!["system", "developer", "user", "assistant", "tool", "Robot"] } else { vec!["system", "developer", "user", "assistant"] };
            let role = prop::sample::select(roles).prop_map(|role| format!("\"{role}\""));
            let name = prop::option::of(prop_oneof![string(), Just("null".to_owned())]);
            let content = if odd { prop_oneof![string(), Just("null".to_owned()), Just("[]".to_owned())].boxed() } else { string() };
            (member("role", role), member("content", content), name, whitespace(), any::<bool>())
                .prop_map(|(role, content, name, space, swap)| {
                    let mut members = if swap { vec![content, role] } else { vec![role, content] };
                    members.extend(name.map(|name| format!("\"name\":{name}")));
                    object(members, &space)
                })
                .boxed()
        }

        fn request(odd: bool) -> BoxedStrategy<String> {
            let messages = (prop::collection::vec(message(odd), 0..4), whitespace()).prop_map(|(messages, space)| format!("[{space}{}{space}]", messages.join(",")));
            let settings = prop::collection::vec(
                prop_oneof![
                    member("max_tokens", count(odd)),
                    member("max_completion_tokens", count(odd)),
                    member("n", count(odd)),
                    member("temperature", float()),
                    member("top_p", float()),
                    member("presence_penalty", float()),
                    member("frequency_penalty", float()),
                    member("seed", any::<i64>().prop_map(|n| n.to_string())),
                    member("stream", any::<bool>().prop_map(|b| b.to_string())),
                    member("stream_options", prop::option::of(any::<bool>()).prop_map(|b| b.map_or("{}".to_owned(), |b| format!("{{\"include_usage\":{b}}}")))),
                    member("user", string()),
                ],
                0..5,
            );
            (member("model", string()), member("messages", messages), settings, whitespace(), any::<prop::sample::Index>())
                .prop_map(move |(model, messages, mut members, space, at)| {
                    // Members in any order; a member twice only where odd requests are wanted.
                    let mut seen = std::collections::HashSet::new();
                    if !odd {
                        members.retain(|m| seen.insert(m.split(':').next().unwrap_or_default().trim().to_owned()));
                    }
                    members.insert(at.index(members.len() + 1), model);
                    members.push(messages);
                    object(members, &space)
                })
                .boxed()
        }

        proptest! {
            #[test]
            fn a_usual_request_is_read_exactly_as_serde_reads_it(body in request(false)) {
                let scanned = scan_request(body.as_bytes());
                prop_assert!(scanned.is_some(), "left to serde: {}", body);
                prop_assert_eq!(serde_reads(body.as_bytes()), Ok(scanned.unwrap()), "{}", body);
            }

            #[test]
            fn an_odd_request_is_read_as_serde_reads_it_or_left_to_serde(body in request(true)) {
                prop_assert!(agrees(body.as_bytes()), "{}", body);
            }
        }
    }
}
