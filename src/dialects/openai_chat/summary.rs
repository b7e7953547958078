//! A fast read of an OpenAI answer that is passed through unchanged: the few members the
//! gateway needs (`id`, `model`, `created`, `usage`, and that `choices` is not empty),
//! found by a hand-written scanner that checks the rest is JSON without building it.
//!
//! serde_json's derive pays per token: a visitor call for every value, a field match for
//! every key, a walk into every skipped value. For the typical 708-byte answer that
//! `examples/bench_upstream.rs` serves, reading it with serde cost about 10,950
//! instructions on the gateway's hottest path, and reading it with this scanner about
//! 5,950 (both counting `from_utf8`, the two strings kept and their drop, about 800 of
//! each; `examples/summary_cost.rs` measures them).
//!
//! The contract the caller relies on is the one every reader built on `dialects::scan`
//! keeps (see there): [`scan_passthrough_summary`] gives `Some` only when serde's reading
//! (`read_passthrough_summary_with_serde` in `response.rs`) would accept the body and
//! produce exactly the same values, and `None` whenever serde must decide.

use super::wire::{OpenAiCompletionTokensDetails, OpenAiPromptTokensDetails, OpenAiUsage};
use crate::dialects::scan::{set_once, value_end, Reader};

/// What the gateway needs from an answer it passes through unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PassthroughSummary {
    pub id: String,
    pub model: String,
    pub created: i64,
    pub usage: Option<OpenAiUsage>,
}

/// Reads the summary of an answer, or `None` when serde must decide (see the module doc).
pub(super) fn scan_passthrough_summary(body: &[u8]) -> Option<PassthroughSummary> {
    let mut reader = Reader::new(body)?;
    let summary = reader.answer()?;
    reader.at_end().then_some(summary)
}

/// The members of an answer the gateway needs.
impl<'a> Reader<'a> {
    /// The answer's object, as serde's derive reads it: known members at most once each
    /// (serde refuses duplicates), unknown ones skipped, `model` and `choices` required.
    fn answer(&mut self) -> Option<PassthroughSummary> {
        let (mut id, mut model, mut created, mut choices, mut usage) = (None, None, None, None, None);
        // Keys are compared with `==`, not matched as slice patterns: those compare a
        // byte at a time, `==` a word at a time.
        self.members(|reader, key| {
            if key == b"id" {
                set_once(&mut id, reader.plain_string()?)
            } else if key == b"model" {
                set_once(&mut model, reader.plain_string()?)
            } else if key == b"created" {
                set_once(&mut created, reader.signed()?)
            } else if key == b"choices" {
                set_once(&mut choices, reader.choices()?)
            } else if key == b"usage" {
                set_once(&mut usage, reader.usage()?)
            } else {
                reader.skip_value(1)
            }
        })?;
        choices?;
        Some(PassthroughSummary {
            id: id.unwrap_or_default().to_owned(),
            model: model?.to_owned(),
            created: created.unwrap_or(0),
            usage: usage.flatten(),
        })
    }

    /// `choices`: an array, each element skipped. An empty one gives `None`, so that
    /// serde's reading gives the error for it.
    fn choices(&mut self) -> Option<()> {
        let mut any = false;
        self.elements(|reader| {
            reader.at = value_end(reader.bytes(), reader.at, 2)?;
            any = true;
            Some(())
        })?;
        any.then_some(())
    }

    /// `usage`: `null` (the outer `None` of the result's `Option`), or an object with the
    /// three counts serde requires and the two optional details objects.
    fn usage(&mut self) -> Option<Option<OpenAiUsage>> {
        if self.literal(b"null") {
            return Some(None);
        }
        let (mut prompt, mut completion, mut total, mut prompt_details, mut completion_details) = (None, None, None, None, None);
        self.members(|reader, key| {
            if key == b"prompt_tokens" {
                set_once(&mut prompt, reader.unsigned()?)
            } else if key == b"completion_tokens" {
                set_once(&mut completion, reader.unsigned()?)
            } else if key == b"total_tokens" {
                set_once(&mut total, reader.unsigned()?)
            } else if key == b"prompt_tokens_details" {
                set_once(&mut prompt_details, reader.details(|key| key == b"cached_tokens")?)
            } else if key == b"completion_tokens_details" {
                set_once(&mut completion_details, reader.details(|key| key == b"reasoning_tokens")?)
            } else {
                reader.skip_value(2)
            }
        })?;
        Some(Some(OpenAiUsage {
            prompt_tokens: prompt?,
            completion_tokens: completion?,
            total_tokens: total?,
            prompt_tokens_details: prompt_details.flatten().map(|cached_tokens| OpenAiPromptTokensDetails { cached_tokens }),
            completion_tokens_details: completion_details
                .flatten()
                .map(|reasoning_tokens| OpenAiCompletionTokensDetails { reasoning_tokens }),
        }))
    }

    /// A details object of `usage`, or its `null` (the outer `Option`), with the one
    /// count the gateway reads from it, absent or `null` (the inner). `is_count` tells
    /// that count's key; a closure, so that each caller's comparison is compiled inline.
    fn details(&mut self, is_count: impl Fn(&[u8]) -> bool) -> Option<Option<Option<u64>>> {
        if self.literal(b"null") {
            return Some(None);
        }
        let mut count = None;
        self.members(|reader, key| {
            if is_count(key) {
                let value = if reader.literal(b"null") { None } else { Some(reader.unsigned()?) };
                set_once(&mut count, value)
            } else {
                reader.skip_value(3)
            }
        })?;
        Some(Some(count.flatten()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::openai_chat::response::read_passthrough_summary_with_serde;

    /// The answer `examples/bench_upstream.rs` serves, a typical small one.
    const BENCH_ANSWER: &str = include_str!("../../../examples/bench_answer.json");

    fn scanned(body: &str) -> Option<PassthroughSummary> {
        scan_passthrough_summary(body.as_bytes())
    }

    /// Asserts that the scanner reads `body`, and reads it exactly as serde does.
    fn read_as_serde_does(body: &str) -> PassthroughSummary {
        let Some(summary) = scanned(body) else { panic!("left to serde: {body}") };
        assert_eq!(Ok(&summary), read_passthrough_summary_with_serde(body.as_bytes()).as_ref(), "{body}");
        summary
    }

    /// A small answer with `members` added at the end.
    fn answer_with(members: &str) -> String {
        format!(r#"{{"id":"chatcmpl-1","model":"m","created":1,"choices":[{{"index":0}}]{members}}}"#)
    }

    fn usage_with(members: &str) -> String {
        answer_with(&format!(r#","usage":{{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5{members}}}"#))
    }

    #[test]
    fn the_bench_answer_reads_the_same_as_serde_reads_it() {
        let summary = read_as_serde_does(BENCH_ANSWER);
        assert_eq!(summary.id, "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG");
        assert_eq!(summary.model, "gpt-4o-mini-2024-07-18");
        assert_eq!(summary.created, 1741570283);
        let usage = summary.usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.total_tokens), (25, 24, 49));
        assert_eq!(usage.prompt_tokens_details.unwrap().cached_tokens, Some(0));
        assert_eq!(usage.completion_tokens_details.unwrap().reasoning_tokens, Some(0));
    }

    #[test]
    fn escapes_and_text_beyond_ascii_in_skipped_strings_read_as_serde_does() {
        let content = r#""line\nbreak \"quoted\" back\\slash \/ \b\f\r\t caf\u00e9 \u00E9 rocket \ud83d\ude80 \uD83D\uDE80 raw café 🚀 ""#;
        read_as_serde_does(&answer_with(&format!(r#","x":{content}"#)));
        read_as_serde_does(&format!(r#"{{"model":"m","choices":[{{"message":{{"content":{content}}}}}]}}"#));
        // Long strings go through the eight-bytes-at-a-time path, with a stop in each lane.
        for lane in 0..16 {
            let text = format!("{}\\n{}", "a".repeat(lane), "é".repeat(lane));
            read_as_serde_does(&answer_with(&format!(r#","x":"{text}","y":"{}""#, "b".repeat(lane))));
        }
        let summary = read_as_serde_does(r#"{"id":"chatcmpl-é🚀","model":"modèle","choices":[1]}"#);
        assert_eq!((summary.id.as_str(), summary.model.as_str()), ("chatcmpl-é🚀", "modèle"));
    }

    #[test]
    fn tool_calls_nested_in_a_choice_are_skipped_whole() {
        read_as_serde_does(
            r#"{"id":"c","model":"m","created":2,"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"days\":[1,2]}"}},{"id":"call_2","type":"function","function":{"name":"f","arguments":"{}"}}]},"logprobs":null,"finish_reason":"tool_calls"},{"index":1,"message":{}}]}"#,
        );
    }

    #[test]
    fn unknown_members_of_every_json_type_are_skipped() {
        let members = r#","o":{"a":{"b":[{},[],{"c":null}]},"k\u0065y":"v","":0},"a":[1,-2,3.25,-0.5e-3,1E+400,0,-0,1e5,2.5E-7],"n":-12.5e10,"z":0,"big":123456789012345678901234567890,"t":true,"f":false,"u":null,"e":{},"l":[],"s":"""#;
        read_as_serde_does(&answer_with(members));
        read_as_serde_does(&answer_with(r#","object":"chat.completion","object":"repeated unknown members are not duplicates""#));
    }

    #[test]
    fn usage_that_is_null_missing_or_with_null_or_missing_details_reads_as_serde_does() {
        assert_eq!(read_as_serde_does(&answer_with("")).usage, None);
        assert_eq!(read_as_serde_does(&answer_with(r#","usage":null"#)).usage, None);
        let usage = read_as_serde_does(&usage_with("")).usage.unwrap();
        assert_eq!((usage.prompt_tokens_details, usage.completion_tokens_details), (None, None));
        let usage = read_as_serde_does(&usage_with(r#","prompt_tokens_details":null,"completion_tokens_details":null"#)).usage.unwrap();
        assert_eq!((usage.prompt_tokens_details, usage.completion_tokens_details), (None, None));
        let usage = read_as_serde_does(&usage_with(r#","prompt_tokens_details":{},"completion_tokens_details":{"reasoning_tokens":null}"#)).usage.unwrap();
        assert_eq!(usage.prompt_tokens_details, Some(OpenAiPromptTokensDetails { cached_tokens: None }));
        assert_eq!(usage.completion_tokens_details, Some(OpenAiCompletionTokensDetails { reasoning_tokens: None }));
        let huge = read_as_serde_does(&usage_with(r#","prompt_tokens_details":{"cached_tokens":18446744073709551615,"x":[1.5]}"#));
        assert_eq!(huge.usage.unwrap().prompt_tokens_details.unwrap().cached_tokens, Some(u64::MAX));
    }

    #[test]
    fn members_in_any_order_with_whitespace_everywhere_read_as_serde_does() {
        let body = " \r\n\t{ \"usage\" :\n{ \"total_tokens\" : 5 ,\t\"prompt_tokens_details\" : { \"cached_tokens\" : 1 } , \"prompt_tokens\" : 3 , \"completion_tokens\" : 2 } ,\n  \"choices\" : [ { \"index\" : 0 , \"x\" : [ 1 , { } , [ ] ] } , null ] , \"created\" : -1741570283 ,\r\n \"model\" : \"m\" , \"extra\" : [ ] , \"id\" : \"c\" \n} \n\t ";
        let summary = read_as_serde_does(body);
        assert_eq!(summary.created, -1741570283);
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(BENCH_ANSWER).unwrap()).unwrap();
        assert_eq!(read_as_serde_does(&pretty), read_as_serde_does(BENCH_ANSWER));
        let created = |value: &str| read_as_serde_does(&format!(r#"{{"created":{value},"model":"m","choices":[0]}}"#)).created;
        assert_eq!((created("9223372036854775807"), created("-9223372036854775808"), created("0")), (i64::MAX, i64::MIN, 0));
    }

    #[test]
    fn nesting_is_followed_to_128_levels_and_left_to_serde_beyond() {
        // The answer's own object is the first level.
        let nested = |levels: usize| answer_with(&format!(r#","x":{}{}"#, "[".repeat(levels), "]".repeat(levels)));
        read_as_serde_does(&nested(127));
        assert_eq!(scanned(&nested(128)), None);
        let objects = |levels: usize| answer_with(&format!(r#","x":{}1{}"#, r#"{"a":"#.repeat(levels), "}".repeat(levels)));
        read_as_serde_does(&objects(127));
        assert_eq!(scanned(&objects(128)), None);
    }

    #[test]
    fn text_that_is_not_utf8_or_has_raw_control_characters_is_left_to_serde() {
        let mut body = answer_with(r#","x":"caf?""#).into_bytes();
        let at = body.iter().position(|&b| b == b'?').unwrap();
        body[at] = 0xE9;
        assert_eq!(scan_passthrough_summary(&body), None);
        for control in ["\u{0}", "\u{1f}", "\n", "\t"] {
            assert_eq!(scanned(&answer_with(&format!(r#","x":"a{control}b""#))), None, "{control:?}");
            assert_eq!(scanned(&answer_with(&format!(r#","x{control}":1"#))), None, "{control:?}");
        }
        read_as_serde_does(&answer_with(",\"x\":\"a\u{7f}b\""));
    }

    #[test]
    fn escapes_json_lacks_or_lone_surrogates_are_left_to_serde() {
        for escape in [r"\x", r"\U0041", r"\u12", r"\u12G4", r"\ud83d", r"\ude80", r"\ud83d\u0041", r"\ud83d\ud83d", r"\ud83dx", r"\'"] {
            assert_eq!(scanned(&answer_with(&format!(r#","x":"a{escape}b""#))), None, "{escape}");
        }
    }

    #[test]
    fn escapes_in_the_id_the_model_or_a_key_read_are_left_to_serde() {
        assert_eq!(scanned(r#"{"id":"a\nb","model":"m","choices":[0]}"#), None);
        assert_eq!(scanned(r#"{"model":"gpt\/4","choices":[0]}"#), None);
        assert_eq!(scanned(r#"{"mod\u0065l":"m","choices":[0]}"#), None, "an escaped key may spell a known one");
        assert_eq!(scanned(&usage_with(r#","prompt_tokens_det\u0061ils":{}"#)), None);
    }

    #[test]
    fn a_member_serde_reads_given_twice_is_left_to_serde() {
        for duplicate in [r#","id":"c""#, r#","model":"m""#, r#","created":1"#, r#","choices":[0]"#] {
            let body = answer_with(duplicate);
            assert_eq!(scanned(&body), None, "{body}");
            assert!(read_passthrough_summary_with_serde(body.as_bytes()).unwrap_err().starts_with("duplicate field"));
        }
        assert_eq!(scanned(&answer_with(r#","usage":null,"usage":null"#)), None);
        assert_eq!(scanned(&usage_with(r#","prompt_tokens":3"#)), None);
        assert_eq!(scanned(&usage_with(r#","completion_tokens_details":null,"completion_tokens_details":{}"#)), None);
        assert_eq!(scanned(&usage_with(r#","prompt_tokens_details":{"cached_tokens":null,"cached_tokens":1}"#)), None);
    }

    #[test]
    fn values_of_the_wrong_kind_or_range_are_left_to_serde() {
        for id in ["null", "5", r#"["c"]"#, "{}"] {
            assert_eq!(scanned(&format!(r#"{{"id":{id},"model":"m","choices":[0]}}"#)), None, "id {id}");
            assert_eq!(scanned(&format!(r#"{{"model":{id},"choices":[0]}}"#)), None, "model {id}");
        }
        for created in ["1.5", "1e9", "1.0", "-0", "01", "-", "9223372036854775808", "-9223372036854775809", r#""1""#, "null"] {
            assert_eq!(scanned(&format!(r#"{{"created":{created},"model":"m","choices":[0]}}"#)), None, "created {created}");
        }
        for count in ["-1", "-0", "1.0", "1e3", "01", "18446744073709551616", "99999999999999999999", r#""5""#, "true"] {
            let in_details = usage_with(&format!(r#","prompt_tokens_details":{{"cached_tokens":{count}}}"#));
            assert_eq!(scanned(&in_details), None, "cached_tokens {count}");
            let required = answer_with(&format!(r#","usage":{{"prompt_tokens":{count},"completion_tokens":2,"total_tokens":5}}"#));
            assert_eq!(scanned(&required), None, "prompt_tokens {count}");
        }
        assert_eq!(scanned(&answer_with(r#","usage":{"prompt_tokens":null,"completion_tokens":2,"total_tokens":5}"#)), None);
        // serde reads a struct from an array too; the scanner leaves that to it.
        assert_eq!(scanned(&answer_with(r#","usage":[1,2,3]"#)), None);
        assert_eq!(scanned(&usage_with(r#","prompt_tokens_details":[1]"#)), None);
        assert_eq!(scanned(r#"{"model":"m","choices":{"0":1}}"#), None);
        assert_eq!(scanned(r#"{"model":"m","choices":null}"#), None);
    }

    #[test]
    fn a_missing_required_member_or_no_choices_is_left_to_serde() {
        assert_eq!(scanned(r#"{"id":"c","choices":[0]}"#), None);
        assert_eq!(scanned(r#"{"id":"c","model":"m"}"#), None);
        assert_eq!(scanned(r#"{"model":"m","choices":[]}"#), None);
        assert_eq!(scanned(r#"{"model":"m","choices":[ ]}"#), None);
        assert_eq!(scanned("{}"), None);
        for count in ["prompt_tokens", "completion_tokens", "total_tokens"] {
            let body = usage_with("").replace(&format!(r#""{count}":"#), r#""other":"#);
            assert_eq!(scanned(&body), None, "{body}");
        }
    }

    #[test]
    fn anything_but_one_object_and_whitespace_is_left_to_serde() {
        let answer = answer_with("");
        for body in [
            format!("{answer} x"),
            format!("{answer}{{}}"),
            format!("{answer},"),
            format!("\u{feff}{answer}"),
            format!("[{answer}]"),
            r#"["c","m",1,[0],null]"#.to_owned(),
            answer.replace(r#""model":"m","#, r#""model":"m",,"#),
            answer.replace(r#""model":"m","#, r#""model" "m","#),
            answer.replace(r#""model":"m","#, r#"'model':"m","#),
            answer.replace(r#"}]}"#, r#"},]}"#),
            answer.replace(r#"[{"index":0}]"#, r#"[{"index":0,}]"#),
            answer.replace(r#"[{"index":0}]"#, r#"[{"index" 0}]"#),
            answer.replace(r#"[{"index":0}]"#, r#"[{index:0}]"#),
            answer.replace(r#"[{"index":0}]"#, r#"[[1}]"#),
            answer.replace(r#"[{"index":0}]"#, r#"[{"index":0]]"#),
            answer.replace(r#"[{"index":0}]"#, r#"[{"index":tru}]"#),
            answer.replace(r#"[{"index":0}]"#, r#"[{"index":nulls}]"#),
            answer.replace(r#"[{"index":0}]"#, r#"[{"index":1.}]"#),
            answer.replace(r#"[{"index":0}]"#, r#"[{"index":.5}]"#),
            answer.replace(r#"[{"index":0}]"#, r#"[{"index":1e}]"#),
            answer.replace(r#"[{"index":0}]"#, r#"[{"index":+1}]"#),
            answer.replace(r#"[{"index":0}]"#, r#"[{"index":0x1}]"#),
            answer.replace(r#"[{"index":0}]"#, r#"[{"index":NaN}]"#),
            String::new(),
            " ".to_owned(),
        ] {
            assert_eq!(scanned(&body), None, "{body}");
        }
    }

    #[test]
    fn no_prefix_or_one_byte_edit_of_the_bench_answer_is_read_differently_from_serde() {
        let agrees = |body: &[u8]| match scan_passthrough_summary(body) {
            Some(summary) => read_passthrough_summary_with_serde(body) == Ok(summary),
            None => true,
        };
        let answer = BENCH_ANSWER.as_bytes();
        for at in 0..answer.len() {
            assert!(agrees(&answer[..at]), "prefix of {at}");
            let mut deleted = answer.to_vec();
            deleted.remove(at);
            assert!(agrees(&deleted), "deleted at {at}");
            for byte in [b'"', b'\\', b'{', b'}', b']', b',', b':', b' ', b'0', b'-', b'.', b'e', b'n', 0x1f, 0xC3] {
                let mut replaced = answer.to_vec();
                replaced[at] = byte;
                assert!(agrees(&replaced), "{} at {at}", byte as char);
            }
        }
    }

    mod generated {
        //! Answers made up at random, well formed ones that must be read as serde reads
        //! them, and odd or broken ones that must be read as serde does or not at all.

        use super::super::scan_passthrough_summary;
        use crate::dialects::openai_chat::response::read_passthrough_summary_with_serde;
        use proptest::prelude::*;

        /// JSON whitespace, usually none.
        fn whitespace() -> BoxedStrategy<String> {
            prop_oneof![3 => Just(String::new()), 1 => "[ \t\r\n]{1,3}"].boxed()
        }

        /// A string with no escapes, as an id or a model name usually is.
        fn plain_string() -> BoxedStrategy<String> {
            "[a-zA-Z0-9_.:/ é🚀-]{0,24}".prop_map(|text| format!("\"{text}\"")).boxed()
        }

        /// Any valid string: every escape JSON has, surrogate pairs and text beyond ASCII.
        fn string() -> BoxedStrategy<String> {
            let piece = prop_oneof![
                "[a-zA-Z0-9 ]{1,12}",
                "\\PC{1,4}".prop_map(|text| text.replace('\\', "\\\\").replace('"', "\\\"")),
                prop::sample::select(vec![r#"\n"#, r#"\""#, r#"\\"#, r#"\/"#, r#"\b"#, r#"\f"#, r#"\r"#, r#"\t"#, r#"\u00e9"#, r#"\uD83D\uDE80"#, r#"\u0000"#, r#"\uffff"#])
                    .prop_map(str::to_owned),
                (0u32..0xD800).prop_map(|unit| format!("\\u{unit:04x}")),
            ];
            prop::collection::vec(piece, 0..5).prop_map(|pieces| format!("\"{}\"", pieces.concat())).boxed()
        }

        /// Any valid number: fractions, exponents, and integers too big for any type.
        fn number() -> BoxedStrategy<String> {
            prop_oneof![
                "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{1,4})?([eE][+-]?[0-9]{1,3})?",
                any::<i64>().prop_map(|n| n.to_string()),
            ]
            .boxed()
        }

        /// A count as an upstream writes one, huge ones included.
        fn count() -> BoxedStrategy<String> {
            prop_oneof![0u64..1000, any::<u64>(), Just(u64::MAX)].prop_map(|n| n.to_string()).boxed()
        }

        fn value() -> BoxedStrategy<String> {
            let leaf = prop_oneof![Just("null".to_owned()), Just("true".to_owned()), Just("false".to_owned()), number(), string()];
            leaf.prop_recursive(4, 32, 5, |inner| {
                prop_oneof![
                    prop::collection::vec((whitespace(), inner.clone(), whitespace()), 0..5)
                        .prop_map(|items| format!("[{}]", items.into_iter().map(|(a, v, b)| a + &v + &b).collect::<Vec<_>>().join(","))),
                    prop::collection::vec(member(string(), inner), 0..5).prop_map(|members| object(members, "")),
                ]
            })
            .boxed()
        }

        fn member(key: impl Strategy<Value = String> + 'static, value: impl Strategy<Value = String> + 'static) -> BoxedStrategy<String> {
            (key, value, [whitespace(), whitespace(), whitespace(), whitespace()]).prop_map(|(key, value, [a, b, c, d])| format!("{a}{key}{b}:{c}{value}{d}")).boxed()
        }

        fn known(name: &'static str, value: impl Strategy<Value = String> + 'static) -> BoxedStrategy<String> {
            member(Just(format!("\"{name}\"")), value)
        }

        fn object(members: Vec<String>, space: &str) -> String {
            format!("{{{}{space}}}", members.join(","))
        }

        /// Members the scanner skips: names nothing reads, with values of any kind.
        fn unknown_members() -> BoxedStrategy<Vec<String>> {
            let name = prop_oneof![
                prop::sample::select(vec!["object", "system_fingerprint", "service_tier", "audio_tokens", "x"]).prop_map(str::to_owned),
                "[a-z_]{1,12}".prop_filter("a name that is read", |name| !name.ends_with("tokens") && !name.ends_with("details") && !["id", "model", "created", "choices", "usage"].contains(&name.as_str())),
            ];
            prop::collection::vec(member(name.prop_map(|name| format!("\"{name}\"")), value()), 0..4).boxed()
        }

        fn details(count_name: &'static str, count: BoxedStrategy<String>) -> BoxedStrategy<Option<String>> {
            let present = (prop::option::of(known(count_name, prop_oneof![Just("null".to_owned()), count])), unknown_members(), whitespace())
                .prop_map(|(count, extra, space)| object(count.into_iter().chain(extra).collect(), &space));
            prop::option::of(prop_oneof![Just("null".to_owned()), present]).boxed()
        }

        /// A member serde requires, absent now and then when `odd`.
        fn sometimes_absent(odd: bool, member: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Option<String>> {
            if odd {
                prop::option::weighted(0.85, member).boxed()
            } else {
                member.prop_map(Some).boxed()
            }
        }

        /// `usage`; when `odd`, with counts of any kind, some missing, and extra copies.
        fn usage(odd: bool) -> BoxedStrategy<String> {
            let count = if odd { prop_oneof![12 => count(), 1 => number(), 1 => value()].boxed() } else { count().boxed() };
            let required = |name: &'static str| sometimes_absent(odd, known(name, count.clone()));
            let names = vec!["prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details"];
            let copies = if odd {
                prop::option::weighted(0.2, member(prop::sample::select(names).prop_map(|name| format!("\"{name}\"")), count.clone())).prop_map(Vec::from_iter).boxed()
            } else {
                Just(Vec::new()).boxed()
            };
            let counted = (
                [required("prompt_tokens"), required("completion_tokens"), required("total_tokens")],
                details("cached_tokens", count.clone()).prop_map(|d| d.map(|d| format!(r#""prompt_tokens_details":{d}"#))),
                details("reasoning_tokens", count.clone()).prop_map(|d| d.map(|d| format!(r#""completion_tokens_details":{d}"#))),
                (unknown_members(), copies),
                whitespace(),
            )
                .prop_map(|([p, c, t], pd, cd, (extra, copies), space)| {
                    (p.into_iter().chain(c).chain(t).chain(pd).chain(cd).chain(extra).chain(copies).collect::<Vec<_>>(), space)
                })
                .prop_flat_map(|(members, space)| (Just(members).prop_shuffle(), Just(space)))
                .prop_map(|(members, space)| object(members, &space));
            prop_oneof![1 => Just("null".to_owned()), 4 => counted].boxed()
        }

        /// A whole answer. A well-formed one (`odd` false) must be read; an odd one may
        /// have ids and models with escapes or of other kinds, times of any kind, empty or
        /// absent choices, members twice, keys with escapes and text after the object.
        fn answer(odd: bool) -> BoxedStrategy<String> {
            let name = || if odd { prop_oneof![8 => plain_string(), 1 => string(), 1 => value()].boxed() } else { plain_string().boxed() };
            let created = if odd { prop_oneof![8 => any::<i64>().prop_map(|n| n.to_string()), 1 => number(), 1 => value()].boxed() } else { any::<i64>().prop_map(|n| n.to_string()).boxed() };
            let elements = prop::collection::vec(value(), 1..3).prop_map(|elements| format!("[{}]", elements.join(",")));
            let choices = if odd { prop_oneof![8 => elements, 1 => Just("[ ]".to_owned()), 1 => value()].boxed() } else { elements.boxed() };
            let odd_members = if odd {
                let keys = prop_oneof![string(), prop::sample::select(vec![r#""id""#, r#""model""#, r#""created""#, r#""choices""#, r#""usage""#, r#""mod\u0065l""#]).prop_map(str::to_owned)];
                prop::option::weighted(0.3, member(keys, value())).prop_map(Vec::from_iter).boxed()
            } else {
                Just(Vec::new()).boxed()
            };
            (
                (prop::option::of(known("id", name())), sometimes_absent(odd, known("model", name())), prop::option::of(known("created", created))),
                (sometimes_absent(odd, known("choices", choices)), prop::option::of(known("usage", usage(odd)))),
                unknown_members(),
                odd_members,
                (whitespace(), whitespace()),
                if odd { prop_oneof![12 => Just(""), 1 => prop::sample::select(vec!["x", "{}", ",", "\u{0}"])].boxed() } else { Just("").boxed() },
            )
                .prop_flat_map(|((id, model, created), (choices, usage), unknown, odd_members, space, trailer)| {
                    let members: Vec<String> = [id, model, created, choices, usage].into_iter().flatten().chain(unknown).chain(odd_members).collect();
                    (Just(members).prop_shuffle(), Just(space), Just(trailer))
                })
                .prop_map(|(members, (before, after), trailer)| format!("{before}{}{after}{trailer}", object(members, "")))
                .boxed()
        }

        /// An answer with a few bytes deleted, inserted or replaced.
        fn mutated_answer() -> impl Strategy<Value = Vec<u8>> {
            let byte = prop_oneof![
                prop::sample::select(b"\"\\{}[],: 0-.eEnu\x1f\x7f\xc3\xa9\xff".to_vec()),
                any::<u8>(),
            ];
            (answer(false), prop::collection::vec((any::<prop::sample::Index>(), 0..3u8, byte), 1..4)).prop_map(|(body, edits)| {
                let mut bytes = body.into_bytes();
                for (place, edit, byte) in edits {
                    let at = place.index(bytes.len() + 1);
                    match edit {
                        0 if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        1 => bytes.insert(at, byte),
                        _ if at < bytes.len() => bytes[at] = byte,
                        _ => {}
                    }
                }
                bytes
            })
        }

        proptest! {
            #[test]
            fn a_well_formed_answer_is_read_exactly_as_serde_reads_it(body in answer(false)) {
                let scanned = scan_passthrough_summary(body.as_bytes());
                prop_assert!(scanned.is_some(), "left to serde: {}", body);
                prop_assert_eq!(read_passthrough_summary_with_serde(body.as_bytes()), Ok(scanned.unwrap()), "{}", body);
            }

            #[test]
            fn an_odd_answer_is_read_as_serde_reads_it_or_left_to_serde(body in answer(true)) {
                if let Some(scanned) = scan_passthrough_summary(body.as_bytes()) {
                    prop_assert_eq!(read_passthrough_summary_with_serde(body.as_bytes()), Ok(scanned), "{}", body);
                }
            }

            #[test]
            fn a_damaged_answer_is_read_as_serde_reads_it_or_left_to_serde(body in mutated_answer()) {
                if let Some(scanned) = scan_passthrough_summary(&body) {
                    prop_assert_eq!(read_passthrough_summary_with_serde(&body), Ok(scanned), "{}", String::from_utf8_lossy(&body));
                }
            }
        }
    }
}
