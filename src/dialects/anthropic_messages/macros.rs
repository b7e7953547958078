//! Serde support shared by the wire types (`wire.rs`, `wire_response.rs`).

/// Serde for an enum tagged by `type` that must also accept types it does not know.
///
/// A variant-level `#[serde(untagged)]` fallback would also swallow a *known* type
/// with a bad field, turning "missing field `input`" into "did not match any variant".
/// So the enum is derived with `remote = "Self"` (inherent `serialize`/`deserialize`,
/// the `Other` variant skipped), and these impls send only unknown types to `Other`
/// and write `Other` back as the map it was.
macro_rules! open_tagged_enum {
    ($name:ident, [$($known:literal),+ $(,)?]) => {
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $name::Other(map) => ::serde::Serialize::serialize(map, serializer),
                    // The inherent `serialize` the `remote = "Self"` derive generated.
                    known => $name::serialize(known, serializer),
                }
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                type Object = ::serde_json::Map<String, ::serde_json::Value>;
                let map = <Object as ::serde::Deserialize>::deserialize(deserializer)?;
                match map.get("type").and_then(::serde_json::Value::as_str) {
                    Some($($known)|+) => $name::deserialize(::serde_json::Value::Object(map)).map_err(::serde::de::Error::custom),
                    _ => Ok($name::Other(map)),
                }
            }
        }
    };
}
