//! Anthropic Messages wire types, shaped as the API and its generated SDK types
//! (`anthropic-sdk-python`, `src/anthropic/types/`) document them.
//!
//! Inbound, the types are lenient: unknown request fields land in `extra`, unknown
//! content blocks, sources, deltas and stream events in an `Other` variant, so the
//! conversion code (not serde) decides what is unsupported and says so by field path.
//! Outbound, the same types serialize the exact shape, field order included, that the
//! API itself produces (compared with recorded streams), so snapshots read like the real thing.

use std::fmt;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

// ---- requests ----

/// `POST /v1/messages`. On Vertex AI and Bedrock `model` is omitted (it is in the URL)
/// and `anthropic_version` is in the body instead of a header.
/// Read by `deserialize_with_extra!` (below), not serde's derive: see why there.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AnthropicRequest {
    /// Empty only for platforms that carry the model in the URL; decoding reports a
    /// missing model itself, with a better message than serde's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_version: Option<String>,
    /// Required by the API (there is no default output limit); `Option` so decoding
    /// can say so in Anthropic's terms rather than serde's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<AnthropicContent>,
    pub messages: Vec<AnthropicMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<AnthropicToolDefinition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<AnthropicToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<AnthropicThinking>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<AnthropicOutputConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<AnthropicMetadata>,
    /// Everything else the client sent (`service_tier`, `container`, `cache_control`, …),
    /// forwarded unchanged to Anthropic-dialect upstreams.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v1/messages/count_tokens`: the prompt-shaping fields of a request, without
/// `max_tokens`, sampling or streaming. Vertex AI keeps `model` in this body.
/// Read by `deserialize_with_extra!` (below), not serde's derive: see why there.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AnthropicCountTokensRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<AnthropicContent>,
    pub messages: Vec<AnthropicMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<AnthropicToolDefinition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<AnthropicToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<AnthropicThinking>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<AnthropicOutputConfig>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::dialects::json::deserialize_with_extra!(
    AnthropicRequest,
    "a Messages request object",
    required: [messages],
    defaulted: [model],
    optional: [
        anthropic_version, max_tokens, system, tools, tool_choice, thinking, output_config, temperature, top_p, top_k,
        stop_sequences, stream, metadata,
    ]
);

crate::dialects::json::deserialize_with_extra!(
    AnthropicCountTokensRequest,
    "a count_tokens request object",
    required: [messages],
    defaulted: [model],
    optional: [anthropic_version, system, tools, tool_choice, thinking, output_config]
);

/// The count-tokens answer: prompt tokens across messages, system prompt and tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AnthropicCountTokensResponse {
    pub input_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicMessage {
    pub role: AnthropicRole,
    pub content: AnthropicContent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnthropicRole {
    User,
    Assistant,
    /// Mid-conversation system instructions, accepted by newer models only:
    /// <https://platform.claude.com/docs/build-with-claude/mid-conversation-system-messages>.
    System,
}

/// Content that may be a plain string (shorthand for one text block) or a list of blocks.
///
/// Deserialized by hand rather than `#[serde(untagged)]` so an error inside the list
/// keeps its path (`messages[1].content[2]`) instead of "did not match any variant".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AnthropicContent {
    Text(String),
    Blocks(Vec<AnthropicBlock>),
}

impl<'de> Deserialize<'de> for AnthropicContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;

        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = AnthropicContent;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content blocks")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(AnthropicContent::Text(text.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(AnthropicContent::Text(text))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(block) = seq.next_element()? {
                    blocks.push(block);
                }
                Ok(AnthropicContent::Blocks(blocks))
            }
        }

        deserializer.deserialize_any(ContentVisitor)
    }
}

/// A content block, in requests and responses alike.
///
/// `cache_control` and `citations` are read and written but have no canonical home yet:
/// they survive same-dialect passthrough, not conversion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", tag = "type", rename_all = "snake_case")]
pub enum AnthropicBlock {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    Image {
        source: AnthropicSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    Document {
        source: AnthropicSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<AnthropicContent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    Thinking {
        thinking: String,
        /// Required in requests; empty in a stream's `content_block_start`.
        #[serde(default)]
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    /// Any other block type (`server_tool_use`, `web_search_tool_result`,
    /// `search_result`, `mid_conv_system`, …), kept whole.
    #[serde(skip)]
    Other(Map<String, Value>),
}

/// Where an image's or document's bytes are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", tag = "type", rename_all = "snake_case")]
pub enum AnthropicSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
    /// A plain-text document: `data` is the text itself, not base64.
    Text { media_type: String, data: String },
    /// `file` (Files API), `content` (custom document content), or anything newer.
    #[serde(skip)]
    Other(Map<String, Value>),
}

open_tagged_enum!(AnthropicBlock, ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"]);
open_tagged_enum!(AnthropicSource, ["base64", "url", "text"]);

/// A tool definition: a client tool the gateway understands, or anything else
/// (server tools such as `web_search_20250305`), kept whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AnthropicToolDefinition {
    Custom(AnthropicTool),
    Other(Map<String, Value>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicTool {
    /// `"custom"` or absent for client tools.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: Value,
    /// Strict tool use: inputs are constrained to the schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnthropicToolChoice {
    Auto {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    None,
}

/// Extended thinking: `enabled` with a budget, `adaptive`, or `disabled`. A struct
/// rather than an enum so a thinking mode newer than this code still passes through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicThinking {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u32>,
    /// `summarized` or `omitted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `output_config`: the structured-output `format`, plus settings such as `effort`
/// that the gateway does not model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AnthropicOutputConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<AnthropicOutputFormat>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"type": "json_schema", "schema": {...}}`, the only format the API defines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicOutputFormat {
    #[serde(rename = "type")]
    pub kind: String,
    pub schema: Value,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AnthropicMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
