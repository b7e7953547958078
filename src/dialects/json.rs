//! JSON handling shared by the JSON dialects: reading a front-door body into its wire
//! type with errors a client can act on, and rewriting a passed-through body.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::canonical::{ApiError, ErrorCategory};

/// Reads JSON from bytes. UTF-8 is checked once for the whole text: read as bytes,
/// serde_json checks every string it reads, each key included, one call at a time.
/// Text that is not UTF-8 is read as bytes, so serde_json's error (with its line and
/// column) is the one reported.
pub fn from_bytes<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// Reads a request body straight into its wire type `T`. Syntax errors name the line
/// and column; shape errors name the field (`messages[1].content`), so a client can fix
/// its request from the message alone.
pub fn parse_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let not_json = |e: &dyn fmt::Display| {
        ApiError::new(400, ErrorCategory::InvalidRequest, format!("The request body is not valid JSON: {e}")).with_code("invalid_json")
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        // Say "not JSON" only when it is not; valid JSON of another type is not an object.
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Err(e) => not_json(&e),
            Ok(_) => ApiError::new(400, ErrorCategory::InvalidRequest, "The request body must be a JSON object."),
        });
    }
    // Most requests are well formed: read them at full speed, and only read a refused
    // body again, tracking the path, to say where it went wrong.
    if let Ok(wire) = from_bytes(body) {
        return Ok(wire);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let wire = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        if e.inner().is_syntax() || e.inner().is_eof() {
            return not_json(e.inner());
        }
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let param = (path != ".").then_some(path).or_else(|| missing_field(&inner));
        let message = match &param {
            Some(path) => format!("Invalid value for '{path}': {inner}"),
            None => format!("Invalid request: {inner}"),
        };
        let err = ApiError::new(400, ErrorCategory::InvalidRequest, message).with_code("invalid_request");
        match param {
            Some(param) => err.with_param(param),
            None => err,
        }
    })?;
    deserializer.end().map_err(|e| not_json(&e))?;
    Ok(wire)
}

/// `missing field `messages`` → `messages`, so the error's `param` names it.
pub(crate) fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

/// A JSON object read one level deep: its members in the client's order, each value
/// kept as the exact text the client sent. A passthrough upstream gets the client's body
/// with a few members changed and every other byte as it was, without the cost of
/// building and re-serialising a tree of the whole request.
#[derive(Debug)]
pub struct RawObject<'a> {
    members: Vec<(Cow<'a, str>, Cow<'a, RawValue>)>,
}

impl<'a> RawObject<'a> {
    pub fn parse(json: &'a [u8]) -> Result<Self, serde_json::Error> {
        from_bytes(json)
    }

    /// The member's value as sent, if present.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    /// Replaces the member's value where it stands, or appends the member.
    pub fn set(&mut self, key: &str, value: &(impl Serialize + ?Sized)) -> Result<(), serde_json::Error> {
        let value = Cow::Owned(serde_json::value::to_raw_value(value)?);
        match self.members.iter_mut().find(|(k, _)| k == key) {
            Some((_, existing)) => *existing = value,
            None => self.members.push((Cow::Owned(key.to_owned()), value)),
        }
        Ok(())
    }

    pub fn remove(&mut self, key: &str) {
        self.members.retain(|(k, _)| k != key);
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let size = self.members.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>() + 2;
        let mut out = Vec::with_capacity(size);
        out.push(b'{');
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Writing a `str` into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, key.as_ref());
            out.push(b':');
            out.extend_from_slice(value.get().as_bytes());
        }
        out.push(b'}');
        out
    }
}

/// `json`, an object, with its top-level member `key` set to `value`: the value replaced
/// where it stands, or the member added at the end; every other byte is kept as it was.
/// The cheap way to rewrite a member of a passed-through body: it only finds where
/// values end, where [`RawObject`] reads every member.
///
/// For text already read as valid JSON (a front-door body): invalid JSON gives an
/// unspecified answer, never a panic. `None` when it cannot tell plainly whether or where
/// `key` is (a key written with escapes, which might spell `key`, comes first), or when
/// `json` is not an object; [`RawObject`] handles those. With duplicate keys, the first
/// member named `key` is the one replaced.
pub fn with_member(json: &[u8], key: &str, value: &(impl Serialize + ?Sized)) -> Option<Vec<u8>> {
    with_member_updated(json, key, |_| value)
}

/// Like [`with_member`], with the new value made from the member's current one (its text
/// as written, `None` when absent), found in the same pass.
pub fn with_member_updated<V: Serialize>(json: &[u8], key: &str, update: impl FnOnce(Option<&[u8]>) -> V) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(json.len() + key.len() + 32);
    match locate(json, key.as_bytes())? {
        Place::Value(span) => {
            out.extend_from_slice(&json[..span.start]);
            serde_json::to_writer(&mut out, &update(Some(&json[span.clone()]))).ok()?;
            out.extend_from_slice(&json[span.end..]);
        }
        Place::Absent { close, empty } => {
            out.extend_from_slice(&json[..close]);
            if !empty {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, key).ok()?;
            out.push(b':');
            serde_json::to_writer(&mut out, &update(None)).ok()?;
            out.extend_from_slice(&json[close..]);
        }
    }
    Some(out)
}

/// Where a top-level member's value is, or where it would go.
enum Place {
    Value(std::ops::Range<usize>),
    /// No member has the key: `close` is the index of the object's closing brace,
    /// `empty` whether the object has no members at all.
    Absent { close: usize, empty: bool },
}

fn locate(json: &[u8], key: &[u8]) -> Option<Place> {
    let mut at = skip_whitespace(json, 0);
    if json.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_whitespace(json, at + 1);
    if json.get(at) == Some(&b'}') {
        return Some(Place::Absent { close: at, empty: true });
    }
    loop {
        if json.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(json, at)?;
        let raw_key = &json[at + 1..key_end - 1];
        at = skip_whitespace(json, key_end);
        if json.get(at) != Some(&b':') {
            return None;
        }
        let start = skip_whitespace(json, at + 1);
        let end = value_end(json, start)?;
        if raw_key == key {
            return Some(Place::Value(start..end));
        }
        if raw_key.contains(&b'\\') {
            return None; // an escaped key might be `key` in disguise
        }
        at = skip_whitespace(json, end);
        match json.get(at) {
            Some(b',') => at = skip_whitespace(json, at + 1),
            Some(b'}') => return Some(Place::Absent { close: at, empty: false }),
            _ => return None,
        }
    }
}

fn skip_whitespace(json: &[u8], mut at: usize) -> usize {
    while matches!(json.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// The index just past the string that opens at `json[open]`.
fn string_end(json: &[u8], open: usize) -> Option<usize> {
    let mut at = open + 1;
    loop {
        at += memchr::memchr2(b'"', b'\\', json.get(at..)?)?;
        if json[at] == b'"' {
            return Some(at + 1);
        }
        at += 2; // a backslash and the character it escapes
    }
}

/// The index just past the value that starts at `json[start]`.
fn value_end(json: &[u8], start: usize) -> Option<usize> {
    match json.get(start)? {
        b'"' => string_end(json, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = start;
            while let Some(&byte) = json.get(at) {
                match byte {
                    b'"' => {
                        at = string_end(json, at)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            None
        }
        // A number, true, false or null: up to the next delimiter.
        _ => Some(
            json[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(json.len(), |n| start + n),
        ),
    }
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;

        impl<'de> Visitor<'de> for Members {
            type Value = RawObject<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push((key, Cow::Borrowed(value)));
                }
                Ok(RawObject { members })
            }
        }

        deserializer.deserialize_map(Members)
    }
}

/// `Deserialize` for a request type whose members the gateway does not model are kept
/// in a field `extra` (a JSON map), as `#[serde(flatten)]` would. serde's derive reads a
/// struct with a flattened field by first buffering every key and value of the object,
/// then reading the fields again from that copy; for the front doors' every request
/// that cost more than the reading itself. This reads each member once, straight into
/// its field, with the derive's rules: a repeated member is refused
/// (`duplicate field`), `required` ones must be there (`missing field`), `defaulted`
/// ones default when absent, `optional` ones (`Option`s) are `None` when absent or null.
/// Field names are the members' names.
macro_rules! deserialize_with_extra {
    // A member's value into its slot, refusing a second one.
    (@once $map:ident, $slot:ident) => {{
        if $slot.is_some() {
            return Err(A::Error::duplicate_field(stringify!($slot)));
        }
        $slot = Some($map.next_value()?);
    }};
    ($name:ident, $expecting:literal, required: [$($required:ident),* $(,)?], defaulted: [$($defaulted:ident),* $(,)?], optional: [$($optional:ident),* $(,)?]) => {
        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;

                impl<'de> ::serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str($expecting)
                    }

                    fn visit_map<A: ::serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        use ::serde::de::Error as _;
                        $(let mut $required = None;)*
                        $(let mut $defaulted = None;)*
                        $(let mut $optional = None;)*
                        let mut extra = ::serde_json::Map::new();
                        while let Some(key) = map.next_key::<$crate::dialects::json::Key<'de>>()? {
                            match &*key.0 {
                                $(stringify!($required) => $crate::dialects::json::deserialize_with_extra!(@once map, $required),)*
                                $(stringify!($defaulted) => $crate::dialects::json::deserialize_with_extra!(@once map, $defaulted),)*
                                $(stringify!($optional) => $crate::dialects::json::deserialize_with_extra!(@once map, $optional),)*
                                _ => {
                                    let value: ::serde_json::Value = map.next_value()?;
                                    extra.insert(key.0.into_owned(), value);
                                }
                            }
                        }
                        Ok($name {
                            $($required: $required.ok_or_else(|| A::Error::missing_field(stringify!($required)))?,)*
                            $($defaulted: $defaulted.unwrap_or_default(),)*
                            $($optional: $optional.flatten(),)*
                            extra,
                        })
                    }
                }

                deserializer.deserialize_map(ObjectVisitor)
            }
        }
    };
}
pub(crate) use deserialize_with_extra;

/// An object key, borrowed from the input unless it had escapes to undo.
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn a_body_that_is_not_utf8_is_refused_as_not_json_with_its_position() {
        #[derive(Debug, serde::Deserialize)]
        struct Wire {
            #[allow(dead_code)]
            content: String,
        }
        let body = b"{\n  \"content\": \"caf\xe9\"\n}";
        let error = parse_request::<Wire>(body).unwrap_err();
        assert_eq!(error.status, 400);
        assert!(error.message.starts_with("The request body is not valid JSON: invalid unicode code point at line 2 column"), "{}", error.message);
    }

    #[test]
    fn text_beyond_ascii_reads_the_same_as_bytes_or_as_text() {
        let body = "{\"content\":\"caf\u{e9} \u{1f600} \\u00e9\"}".as_bytes();
        let read: Value = from_bytes(body).unwrap();
        assert_eq!(read, serde_json::from_slice::<Value>(body).unwrap());
        assert_eq!(read["content"], "caf\u{e9} \u{1f600} \u{e9}");
    }

    #[test]
    fn a_spliced_member_changes_only_its_value_bytes() {
        let body = br#"{ "messages":[{"role":"user","content":"say \"model\": \\ {[x"}], "model" :	"route" , "x":{"model":1}}"#;
        let out = with_member(body, "model", "gpt-4.1 \"quoted\"").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{ "messages":[{"role":"user","content":"say \"model\": \\ {[x"}], "model" :	"gpt-4.1 \"quoted\"" , "x":{"model":1}}"#
        );
        // Values of every kind before it are skipped whole.
        let body = br#"{"a":[1,{"b":"]}"}],"n":-1.5e3,"t":true,"z":null,"model":"r"}"#;
        let out = with_member(body, "model", "m").unwrap();
        assert_eq!(out, br#"{"a":[1,{"b":"]}"}],"n":-1.5e3,"t":true,"z":null,"model":"m"}"#);
        let doubled = with_member_updated(body, "n", |n| [n.map(<[u8]>::to_vec), n.map(<[u8]>::to_vec)]).unwrap();
        assert!(doubled.starts_with(br#"{"a":[1,{"b":"]}"}],"n":[[45,49,46,53,101,51],[45,49,46,53,101,51]],"t""#), "the current value, as written");
    }

    #[test]
    fn an_absent_member_is_added_at_the_end_of_the_object() {
        let options = json!({"include_usage": true});
        let out = with_member(br#"{"model":"m", "stream":true }"#, "stream_options", &options).unwrap();
        assert_eq!(out, br#"{"model":"m", "stream":true ,"stream_options":{"include_usage":true}}"#);
        assert_eq!(with_member(b" { } ", "model", "m").unwrap(), br#" { "model":"m"} "#);
        let seen = |json: &[u8]| {
            let mut seen = Some(b"unset".to_vec());
            with_member_updated(json, "model", |current| {
                seen = current.map(<[u8]>::to_vec);
                "m"
            });
            seen
        };
        assert_eq!(seen(br#"{"messages":[]}"#), None, "absent");
        assert_eq!(seen(b"{}"), None, "absent from an empty object");
        assert_eq!(seen(br#"{"model" : "r" }"#), Some(br#""r""#.to_vec()));
    }

    #[test]
    fn a_member_that_cannot_be_found_plainly_is_left_to_the_general_rewrite() {
        assert_eq!(with_member(br#"{"mod\u0065l":"r"}"#, "model", "m"), None, "escaped key");
        // A duplicate spelled with escapes first: the general rewrite decides which one.
        assert_eq!(with_member(br#"{"mod\u0065l":"a","model":"b"}"#, "model", "m"), None);
        assert_eq!(with_member(br#"["model","r"]"#, "model", "m"), None, "not an object");
        for invalid in [&br#"{"model":"unterminated"#[..], br#"{"a":"x\"#, br#"{"a":[{"#, br#"{"a" 1}"#, b"{"] {
            assert_eq!(with_member(invalid, "model", "m"), None, "{}", String::from_utf8_lossy(invalid));
        }
        assert_eq!(with_member(b"", "model", "m"), None);
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "\\PC{0,12}|[\"\\\\{}\\[\\],: ]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::vec(("[a-z\"\\\\]{0,4}", inner), 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// The splice and the general rewrite agree on every object they both take,
        /// whether the member is there to replace or absent and added.
        #[test]
        fn a_spliced_member_reads_the_same_as_the_general_rewrite(
            members in proptest::collection::vec(("[a-z\"\\\\]{0,6}", json_value()), 0..5),
            model_at in proptest::option::of(0usize..6),
            model in "\\PC{0,10}",
            pretty in proptest::bool::ANY,
        ) {
            let mut members: Vec<(String, Value)> = members.into_iter().filter(|(k, _)| k != "model").collect();
            if let Some(at) = model_at {
                members.insert(at.min(members.len()), ("model".to_owned(), json!("route")));
            }
            let separator = if pretty { ",\n  " } else { "," };
            let body = format!(
                "{{{}}}",
                members.iter().map(|(k, v)| format!("{}:{}", json!(k), v)).collect::<Vec<_>>().join(separator)
            );
            let spliced = with_member(body.as_bytes(), "model", &model);
            let mut general = RawObject::parse(body.as_bytes()).unwrap();
            general.set("model", &model).unwrap();
            let general: Value = serde_json::from_slice(&general.to_vec()).unwrap();
            match spliced {
                Some(spliced) => {
                    let spliced: Value = serde_json::from_slice(&spliced).unwrap();
                    proptest::prop_assert_eq!(spliced, general);
                }
                None => {
                    // Only when an escaped key comes before the member (or the end).
                    let plain_before = members.iter().take_while(|(k, _)| k != "model").all(|(k, _)| !json!(k).to_string().contains('\\'));
                    proptest::prop_assert!(!plain_before, "{body}");
                }
            }
        }
    }

    #[test]
    fn a_rewritten_object_keeps_every_other_member_byte_for_byte_and_in_order() {
        let body = br#"{ "model" : "route",  "messages":[{"role":"user","content":"h\u00e9"}], "x_beta": {"a": 1.50} }"#;
        let mut object = RawObject::parse(body).unwrap();
        object.set("model", &"gpt-4.1").unwrap();
        object.set("stream_options", &json!({"include_usage": true})).unwrap();
        let out = String::from_utf8(object.to_vec()).unwrap();
        assert_eq!(
            out,
            r#"{"model":"gpt-4.1","messages":[{"role":"user","content":"h\u00e9"}],"x_beta":{"a": 1.50},"stream_options":{"include_usage":true}}"#
        );
    }

    #[test]
    fn removing_a_member_and_escaped_keys_survive_a_rewrite() {
        let body = br#"{"mo\"del":"a","model":"b","n":1}"#;
        let mut object = RawObject::parse(body).unwrap();
        object.remove("model");
        let out: Value = serde_json::from_slice(&object.to_vec()).unwrap();
        assert_eq!(out, json!({"mo\"del": "a", "n": 1}));
        assert_eq!(object.get("n").map(RawValue::get), Some("1"));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused_as_such() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Wire {
            model: String,
        }
        let err = parse_request::<Wire>(b"[1, 2]").unwrap_err();
        assert_eq!(err.message, "The request body must be a JSON object.");
        let err = parse_request::<Wire>(b"{\"model\": \"a\"} trailing").unwrap_err();
        assert!(err.message.starts_with("The request body is not valid JSON: trailing characters at line 1 column 16"), "{}", err.message);
        let err = parse_request::<Wire>(b"{\"model\": 5}").unwrap_err();
        assert_eq!(err.param.as_deref(), Some("model"));
        let err = parse_request::<Wire>(b"{}").unwrap_err();
        assert_eq!(err.param.as_deref(), Some("model"));
    }
}
