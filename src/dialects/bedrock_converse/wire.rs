//! Bedrock Converse wire types, named and shaped as the API documents them.
//!
//! Reference: <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>
//! and the service model (`aws-sdk-bedrockruntime`'s `protocol_serde`, which spells every
//! JSON member). Converse "unions" are objects with exactly one member set; they are
//! externally tagged enums here. Content blocks are read leniently
//! ([`ConverseBlock::Unknown`]) because AWS adds block kinds (citations, video, …) that
//! an answer may carry and the gateway can skip; everything else is exact.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// `POST /model/{modelId}/converse` (and `/converse-stream`, same body). The model id
/// travels in the path, not the body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest {
    pub messages: Vec<ConverseMessage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<ConverseSystemBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_config: Option<ConverseInferenceConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ConverseToolConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<ConverseOutputConfig>,
    /// Model-specific parameters, passed through to the model as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_model_request_fields: Option<Map<String, Value>>,
    /// Everything else a client sent (guardrailConfig, performanceConfig, …), kept so a
    /// Converse-speaking upstream can receive it unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseMessage {
    pub role: ConverseRole,
    pub content: Vec<ConverseBlock>,
}

/// Converse has only two roles: system text goes in `system`, tool results in user turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConverseRole {
    User,
    Assistant,
}

/// A `ContentBlock` union member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConverseContentBlock {
    Text(String),
    Image(ConverseImageBlock),
    Document(ConverseDocumentBlock),
    ToolUse(ConverseToolUseBlock),
    ToolResult(ConverseToolResultBlock),
    ReasoningContent(ConverseReasoningBlock),
    /// A prompt-cache checkpoint (`{"type":"default"}`); it carries no content.
    CachePoint(Value),
}

/// The member names [`ConverseContentBlock`] knows, in its order.
const KNOWN_BLOCKS: [&str; 7] = ["text", "image", "document", "toolUse", "toolResult", "reasoningContent", "cachePoint"];

/// A content block as read from the wire: a known kind, or the name of one the gateway
/// does not model (skipped when converting an answer, refused when converting a request).
#[derive(Debug, Clone, PartialEq)]
pub enum ConverseBlock {
    Known(ConverseContentBlock),
    Unknown(String),
}

impl Serialize for ConverseBlock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ConverseBlock::Known(block) => block.serialize(serializer),
            ConverseBlock::Unknown(kind) => {
                let mut map = Map::new();
                map.insert(kind.clone(), Value::Object(Map::new()));
                map.serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for ConverseBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        let known = map.keys().find(|k| KNOWN_BLOCKS.contains(&k.as_str())).cloned();
        match known {
            // A known member is read strictly: a malformed tool call is an error, not a skip.
            Some(_) => serde_json::from_value(Value::Object(map)).map(ConverseBlock::Known).map_err(serde::de::Error::custom),
            None => Ok(ConverseBlock::Unknown(map.keys().next().cloned().unwrap_or_default())),
        }
    }
}

impl From<ConverseContentBlock> for ConverseBlock {
    fn from(block: ConverseContentBlock) -> Self {
        ConverseBlock::Known(block)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseImageBlock {
    /// `png`, `jpeg`, `gif` or `webp`.
    pub format: String,
    pub source: ConverseSource,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseDocumentBlock {
    /// `pdf`, `csv`, `doc`, `docx`, `xls`, `xlsx`, `html`, `txt` or `md`.
    pub format: String,
    /// Required by Converse, and restricted to alphanumerics, single spaces, hyphens,
    /// parentheses and square brackets.
    pub name: String,
    pub source: ConverseSource,
}

/// Where an image's or document's bytes are (`ImageSource` / `DocumentSource` unions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConverseSource {
    /// Base64 of the raw bytes (a JSON blob).
    Bytes(String),
    S3Location(ConverseS3Location),
    /// Plain text (documents only).
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseS3Location {
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseToolUseBlock {
    pub tool_use_id: String,
    pub name: String,
    pub input: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseToolResultBlock {
    pub tool_use_id: String,
    pub content: Vec<ConverseToolResultContent>,
    /// `success` or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConverseToolResultContent {
    Json(Value),
    Text(String),
    Image(ConverseImageBlock),
    Document(ConverseDocumentBlock),
}

/// `ReasoningContentBlock` union.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConverseReasoningBlock {
    ReasoningText(ConverseReasoningText),
    /// Encrypted reasoning, base64.
    RedactedContent(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseReasoningText {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// `SystemContentBlock` union.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConverseSystemBlock {
    Text(String),
    CachePoint(Value),
    GuardContent(Value),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseInferenceConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseToolConfig {
    pub tools: Vec<ConverseTool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ConverseToolChoice>,
}

/// `Tool` union: a specification, or a cache checkpoint between tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConverseTool {
    ToolSpec(ConverseToolSpec),
    CachePoint(Value),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseToolSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: ConverseInputSchema,
    /// Structured-output enforcement of the tool's input
    /// (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolSpecification.html>).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseInputSchema {
    pub json: Value,
}

/// `ToolChoice` union: `{"auto":{}}`, `{"any":{}}` or `{"tool":{"name":…}}`. There is no
/// "none".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConverseToolChoice {
    Auto(Empty),
    Any(Empty),
    Tool(ConverseSpecificTool),
}

/// The empty structure some union members carry (`{}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Empty {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseSpecificTool {
    pub name: String,
}

/// Structured output (`outputConfig.textFormat`), see
/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_OutputFormat.html>.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseOutputConfig {
    pub text_format: ConverseOutputFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseOutputFormat {
    /// Only `json_schema` exists.
    #[serde(rename = "type")]
    pub kind: String,
    pub structure: ConverseOutputStructure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConverseOutputStructure {
    JsonSchema(ConverseJsonSchema),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseJsonSchema {
    /// The schema as JSON *text*, not an object: the API types it as a string.
    pub schema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

// ---- responses ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse {
    pub output: ConverseOutput,
    pub stop_reason: String,
    #[serde(default)]
    pub usage: Option<ConverseUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_model_response_fields: Option<Value>,
}

/// `ConverseOutput` union; `message` is its only member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseOutput {
    pub message: ConverseMessage,
}

/// `TokenUsage`. `inputTokens` excludes cache reads and writes, as canonical input does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_input_tokens: Option<u64>,
}

// ---- stream events (the JSON payloads of eventstream frames) ----

/// `messageStart`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseMessageStart {
    pub role: ConverseRole,
}

/// `contentBlockStart`. The `start` union is kept as a map: only its `toolUse` member
/// ([`ConverseToolUseStart`]) is read, and kinds added later must not break a stream.
/// Text and reasoning blocks have no start event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseBlockStartEvent {
    pub content_block_index: usize,
    pub start: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseToolUseStart {
    pub tool_use_id: String,
    pub name: String,
}

/// `contentBlockDelta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseBlockDeltaEvent {
    pub content_block_index: usize,
    pub delta: Map<String, Value>,
}

/// `ContentBlockDelta` union members the gateway reads (others, such as citations, are
/// skipped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConverseBlockDelta {
    Text(String),
    ToolUse(ConverseToolUseDelta),
    ReasoningContent(ConverseReasoningDelta),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseToolUseDelta {
    /// A fragment of the tool input's JSON text.
    pub input: String,
}

/// `ReasoningContentBlockDelta` union.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConverseReasoningDelta {
    Text(String),
    Signature(String),
    RedactedContent(String),
}

/// `contentBlockStop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseBlockStopEvent {
    pub content_block_index: usize,
}

/// `messageStop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseMessageStop {
    pub stop_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_model_response_fields: Option<Value>,
}

/// `metadata`: usage arrives here, after `messageStop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseMetadata {
    #[serde(default)]
    pub usage: Option<ConverseUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Value>,
}
