//! The canonical chat request.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A chat request in the gateway's own terms, as decoded from a front door.
///
/// `model` is what the client put in its `model` field: the name of a route.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    /// System instructions that apply to the whole conversation (a dialect that has a
    /// separate system field puts it here; one that allows system messages between
    /// turns keeps those as [`Role::System`] messages).
    pub system: Vec<ContentPart>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub sampling: Sampling,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub response_format: Option<ResponseFormat>,
    /// How many alternative answers the client wants; only some dialects can express it.
    pub n: Option<u32>,
    pub stream: bool,
    /// Whether a streaming client asked for a final usage report.
    pub include_usage: bool,
    /// End-user identifier, for upstream abuse monitoring.
    pub user: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    /// Request fields the gateway does not model, as they arrived. They are forwarded
    /// only to an upstream that speaks `extra_dialect`.
    pub extra: Map<String, Value>,
    pub extra_dialect: Option<Dialect>,
}

/// A wire format the gateway speaks on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    OpenAiChat,
    AnthropicMessages,
    BedrockConverse,
    Gemini,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenAiChat => "openai-chat",
            Dialect::AnthropicMessages => "anthropic-messages",
            Dialect::BedrockConverse => "bedrock-converse",
            Dialect::Gemini => "gemini",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// A message carrying the results of tool calls ([`ContentPart::ToolResult`]).
    Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentPart>,
    /// Optional participant name (OpenAI's `name`).
    pub name: Option<String>,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message { role, content: vec![ContentPart::text(text)], name: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text {
        text: String,
    },
    Image {
        source: MediaSource,
        /// OpenAI's `detail` hint (`low`, `high`, `auto`).
        detail: Option<String>,
    },
    Document {
        source: MediaSource,
        title: Option<String>,
    },
    ToolUse {
        id: String,
        name: String,
        /// The arguments as a JSON value (an object for every dialect we know).
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: Vec<ContentPart>,
        is_error: bool,
    },
    Thinking {
        text: String,
        /// Opaque integrity token some vendors attach to reasoning, echoed back verbatim.
        signature: Option<String>,
    },
    /// Reasoning a vendor returned in encrypted form only.
    RedactedThinking {
        data: String,
    },
}

impl ContentPart {
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text { text: text.into() }
    }

    /// The name of this part's kind, for error messages about what a target can't take.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ContentPart::Text { .. } => "text",
            ContentPart::Image { .. } => "image",
            ContentPart::Document { .. } => "document",
            ContentPart::ToolUse { .. } => "tool_use",
            ContentPart::ToolResult { .. } => "tool_result",
            ContentPart::Thinking { .. } => "thinking",
            ContentPart::RedactedThinking { .. } => "redacted_thinking",
        }
    }
}

/// Where the bytes of an image or document are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MediaSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

impl MediaSource {
    /// Parses a `data:<media type>;base64,<data>` URL into its parts, keeping any
    /// other URL as a reference.
    pub fn from_url(url: &str) -> Self {
        if let Some(rest) = url.strip_prefix("data:") {
            if let Some((meta, data)) = rest.split_once(',') {
                if let Some(media_type) = meta.strip_suffix(";base64") {
                    return MediaSource::Base64 { media_type: media_type.to_owned(), data: data.to_owned() };
                }
            }
        }
        MediaSource::Url { url: url.to_owned() }
    }

    /// The source as a URL: data URL for inline bytes.
    pub fn to_url(&self) -> String {
        match self {
            MediaSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
            MediaSource::Url { url } => url.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the tool's input.
    pub parameters: Value,
    /// OpenAI's `strict` flag for structured tool arguments.
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (OpenAI `auto`, Anthropic `auto`).
    Auto,
    /// The model must not call tools.
    None,
    /// The model must call some tool (OpenAI `required`, Anthropic `any`).
    Required,
    /// The model must call this tool.
    Tool { name: String },
}

/// Sampling parameters; `None` means "the upstream's default".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema { name: String, schema: Value, strict: Option<bool>, description: Option<String> },
}

impl ChatRequest {
    /// Every content part of the request, system prompt included, for capability checks
    /// and token estimates.
    pub fn parts(&self) -> impl Iterator<Item = &ContentPart> {
        self.system.iter().chain(self.messages.iter().flat_map(|m| m.content.iter()))
    }

    /// The characters of text in the request: what the simulator and pre-flight
    /// estimates count.
    pub fn text_len(&self) -> usize {
        fn part_len(part: &ContentPart) -> usize {
            match part {
                ContentPart::Text { text } | ContentPart::Thinking { text, .. } => text.len(),
                ContentPart::ToolUse { name, input, .. } => name.len() + input.to_string().len(),
                ContentPart::ToolResult { content, .. } => content.iter().map(part_len).sum(),
                ContentPart::Image { .. } | ContentPart::Document { .. } | ContentPart::RedactedThinking { .. } => 0,
            }
        }
        self.parts().map(part_len).sum::<usize>()
            + self.tools.iter().map(|t| t.name.len() + t.parameters.to_string().len()).sum::<usize>()
    }
}
