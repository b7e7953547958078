//! Canonical requests out to an Anthropic-dialect upstream: the Claude API itself, or
//! Claude on Vertex AI or Bedrock, which differ only in where model and version go.
//!
//! The Messages API is stricter than the canonical model in a few places, and this is
//! where that is settled: system instructions live in one top-level field, turns must
//! alternate, tool results are user content, and an output limit is mandatory.

use serde_json::{Map, Value};

use super::content::block_from_part;
use super::wire::*;
use crate::canonical::*;

/// The `max_tokens` sent when the canonical request has none: Anthropic requires one,
/// and 4,096 fits every current Claude model's output limit.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The `anthropic-version` header the Claude API itself takes.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The body `anthropic_version` for Claude on Vertex AI
/// (<https://platform.claude.com/docs/en/build-with-claude/claude-on-vertex-ai>).
pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// The body `anthropic_version` for Claude on Bedrock's InvokeModel runtime.
pub const BEDROCK_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// Request fields [`AnthropicRequest`] types itself, which `extra` must not repeat.
/// (`tools`, `thinking` and `output_config` are merged from `extra` instead.)
const TYPED_FIELDS: [&str; 12] = [
    "model", "anthropic_version", "max_tokens", "system", "messages", "tool_choice", "temperature", "top_p", "top_k",
    "stop_sequences", "stream", "metadata",
];

/// Where the Messages API is served, which decides the body's model and version fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Platform {
    /// `api.anthropic.com` and compatible servers: `model` in the body, version in a header.
    #[default]
    Anthropic,
    /// Vertex AI `:rawPredict`: the model is in the URL, the version in the body.
    Vertex,
    /// Bedrock InvokeModel: the model is in the URL, the version in the body.
    Bedrock,
}

impl Platform {
    /// The `anthropic_version` body field this platform wants, if any.
    pub fn body_version(self) -> Option<&'static str> {
        match self {
            Platform::Anthropic => None,
            Platform::Vertex => Some(VERTEX_ANTHROPIC_VERSION),
            Platform::Bedrock => Some(BEDROCK_ANTHROPIC_VERSION),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Sent as `max_tokens` when the canonical request sets no limit.
    pub default_max_tokens: u32,
    pub platform: Platform,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions { default_max_tokens: DEFAULT_MAX_TOKENS, platform: Platform::Anthropic }
    }
}

/// Encodes a canonical request for an Anthropic-dialect upstream serving `model`.
/// Fails with a message naming the feature when the request holds something this
/// dialect cannot carry.
///
/// Lossy on purpose, as documented in `docs/dialects.md`: system messages anywhere in
/// the conversation are hoisted into `system`; consecutive same-role turns are merged
/// (the API would merge them anyway); `temperature` above 1 is clamped to 1; seed and
/// penalties, which Claude has no equivalent for, are dropped; thinking without a
/// signature (another vendor's reasoning) is dropped.
pub fn encode_request(req: &ChatRequest, model: &str, options: EncodeOptions) -> Result<AnthropicRequest, String> {
    if req.n.is_some_and(|n| n > 1) {
        return Err("n > 1 (several alternative answers in one request)".to_owned());
    }
    let mut extra = if req.extra_dialect == Some(Dialect::AnthropicMessages) { req.extra.clone() } else { Map::new() };
    // `extra` is flattened into the body: a key that is also a typed field would be
    // written twice. Decoding never produces one; a hand-built request might.
    extra.retain(|key, _| !TYPED_FIELDS.contains(&key.as_str()));
    // Fields decode_request parked in `extra` go back to their typed places; anything
    // that no longer parses stays in `extra` and is forwarded as it came.
    let thinking = take_typed::<AnthropicThinking>(&mut extra, "thinking");
    let server_tools = match extra.remove("tools") {
        Some(Value::Array(tools)) => tools.into_iter().map(tool_from_extra).collect(),
        Some(other) => {
            extra.insert("tools".to_owned(), other);
            Vec::new()
        }
        None => Vec::new(),
    };
    let output_extra = match extra.remove("output_config") {
        Some(Value::Object(config)) => config,
        Some(other) => {
            extra.insert("output_config".to_owned(), other);
            Map::new()
        }
        None => Map::new(),
    };

    let (system, messages) = encode_conversation(req)?;
    if messages.is_empty() {
        return Err("a conversation with no user or assistant message".to_owned());
    }
    let mut tools: Vec<AnthropicToolDefinition> = req
        .tools
        .iter()
        .map(|t| {
            AnthropicToolDefinition::Custom(AnthropicTool {
                kind: None,
                name: t.name.clone(),
                description: t.description.clone(),
                input_schema: t.parameters.clone(),
                strict: t.strict,
                cache_control: None,
            })
        })
        .collect();
    tools.extend(server_tools);

    let format = match &req.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject) => {
            return Err("response_format json_object (Anthropic's structured outputs need a JSON schema)".to_owned())
        }
        // The schema's name, description and strict flag have no field: JSON outputs
        // are always enforced (<https://platform.claude.com/docs/en/build-with-claude/structured-outputs>).
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            Some(AnthropicOutputFormat { kind: "json_schema".to_owned(), schema: schema.clone() })
        }
    };
    let output_config = (format.is_some() || !output_extra.is_empty()).then(|| AnthropicOutputConfig { format, extra: output_extra });

    Ok(AnthropicRequest {
        model: if options.platform == Platform::Anthropic { model.to_owned() } else { String::new() },
        anthropic_version: options.platform.body_version().map(str::to_owned),
        max_tokens: Some(req.max_tokens.unwrap_or(options.default_max_tokens)),
        system,
        messages,
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice: tool_choice_to_wire(req.tool_choice.as_ref(), req.parallel_tool_calls),
        thinking,
        output_config,
        // Claude's range is 0 to 1 where OpenAI's is 0 to 2; clamping keeps a request
        // that fails over from OpenAI answerable rather than rejected.
        temperature: req.sampling.temperature.map(|t| t.clamp(0.0, 1.0)),
        top_p: req.sampling.top_p,
        top_k: req.sampling.top_k,
        stop_sequences: (!req.stop.is_empty()).then(|| req.stop.clone()),
        stream: req.stream.then_some(true),
        metadata: req.user.as_ref().map(|user| AnthropicMetadata { user_id: Some(user.clone()), extra: Map::new() }),
        extra,
    })
}

/// The count-tokens body for the same prompt. Vertex AI wants `model` in this body
/// even though its messages endpoint takes it from the URL.
pub fn encode_count_tokens_request(req: &ChatRequest, model: &str, options: EncodeOptions) -> Result<AnthropicCountTokensRequest, String> {
    let full = encode_request(req, model, options)?;
    Ok(AnthropicCountTokensRequest {
        model: model.to_owned(),
        anthropic_version: full.anthropic_version,
        system: full.system,
        messages: full.messages,
        tools: full.tools,
        tool_choice: full.tool_choice,
        thinking: full.thinking,
        output_config: full.output_config,
        extra: full.extra,
    })
}

fn take_typed<T: serde::de::DeserializeOwned>(extra: &mut Map<String, Value>, key: &str) -> Option<T> {
    let value = extra.remove(key)?;
    match serde_json::from_value(value.clone()) {
        Ok(typed) => Some(typed),
        Err(_) => {
            extra.insert(key.to_owned(), value);
            None
        }
    }
}

fn tool_from_extra(tool: Value) -> AnthropicToolDefinition {
    match tool {
        Value::Object(map) => AnthropicToolDefinition::Other(map),
        other => AnthropicToolDefinition::Other(Map::from_iter([("tool".to_owned(), other)])),
    }
}

/// The system prompt and the alternating turns. Tool-role messages are user turns;
/// within each user turn, tool results go first, as the API requires of the turn that
/// answers a tool call (<https://platform.claude.com/docs/en/agents-and-tools/tool-use/handle-tool-calls>).
fn encode_conversation(req: &ChatRequest) -> Result<(Option<AnthropicContent>, Vec<AnthropicMessage>), String> {
    let mut system: Vec<String> = Vec::new();
    push_system_text(&req.system, &mut system)?;
    let mut turns: Vec<(AnthropicRole, Vec<AnthropicBlock>)> = Vec::new();
    for message in &req.messages {
        let role = match message.role {
            Role::System => {
                push_system_text(&message.content, &mut system)?;
                continue;
            }
            Role::User | Role::Tool => AnthropicRole::User,
            Role::Assistant => AnthropicRole::Assistant,
        };
        let mut blocks = Vec::with_capacity(message.content.len());
        for part in &message.content {
            check_role(role, part)?;
            blocks.extend(block_from_part(part)?);
        }
        if blocks.is_empty() {
            continue; // e.g. a turn that held only another vendor's reasoning
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages = turns
        .into_iter()
        .map(|(role, mut blocks)| {
            if role == AnthropicRole::User {
                // A stable sort: results keep their order, other content keeps its own.
                blocks.sort_by_key(|b| !matches!(b, AnthropicBlock::ToolResult { .. }));
            }
            AnthropicMessage { role, content: content_to_wire(blocks) }
        })
        .collect();
    let system = match system.len() {
        0 => None,
        1 => system.pop().map(AnthropicContent::Text),
        _ => Some(AnthropicContent::Blocks(
            system.into_iter().map(|text| AnthropicBlock::Text { text, citations: None, cache_control: None }).collect(),
        )),
    };
    Ok((system, messages))
}

fn push_system_text(parts: &[ContentPart], system: &mut Vec<String>) -> Result<(), String> {
    for part in parts {
        match part {
            ContentPart::Text { text } => system.push(text.clone()),
            other => return Err(format!("a {} part in system instructions", other.kind_name())),
        }
    }
    Ok(())
}

fn check_role(role: AnthropicRole, part: &ContentPart) -> Result<(), String> {
    let misplaced = match role {
        AnthropicRole::User => {
            matches!(part, ContentPart::ToolUse { .. } | ContentPart::Thinking { .. } | ContentPart::RedactedThinking { .. })
        }
        _ => matches!(part, ContentPart::ToolResult { .. }),
    };
    if misplaced {
        let role = if role == AnthropicRole::User { "user" } else { "assistant" };
        return Err(format!("a {} part in a {role} message", part.kind_name()));
    }
    Ok(())
}

/// A lone text block becomes the plain-string shorthand.
fn content_to_wire(mut blocks: Vec<AnthropicBlock>) -> AnthropicContent {
    if let [AnthropicBlock::Text { citations: None, cache_control: None, .. }] = blocks.as_slice() {
        if let Some(AnthropicBlock::Text { text, .. }) = blocks.pop() {
            return AnthropicContent::Text(text);
        }
    }
    AnthropicContent::Blocks(blocks)
}

/// `parallel_tool_calls: false` rides on the tool choice as `disable_parallel_tool_use`
/// (an `auto` choice is added to carry it); `none` has no such flag.
fn tool_choice_to_wire(choice: Option<&ToolChoice>, parallel: Option<bool>) -> Option<AnthropicToolChoice> {
    let disable_parallel_tool_use = parallel.map(|p| !p);
    match choice {
        None => (parallel == Some(false)).then_some(AnthropicToolChoice::Auto { disable_parallel_tool_use }),
        Some(ToolChoice::Auto) => Some(AnthropicToolChoice::Auto { disable_parallel_tool_use }),
        Some(ToolChoice::Required) => Some(AnthropicToolChoice::Any { disable_parallel_tool_use }),
        Some(ToolChoice::Tool { name }) => Some(AnthropicToolChoice::Tool { name: name.clone(), disable_parallel_tool_use }),
        Some(ToolChoice::None) => Some(AnthropicToolChoice::None),
    }
}
