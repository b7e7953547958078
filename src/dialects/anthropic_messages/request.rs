//! Anthropic requests into the canonical [`ChatRequest`]: parsing with path-named
//! errors, then the API's own rules (a `max_tokens` is required, sampling ranges,
//! which blocks each role may hold).
//!
//! Fields canonical has no place for yet (`thinking`, `output_config` settings other
//! than the format, server tools) go to `extra`, which only an Anthropic-dialect
//! upstream receives back ([`super::encode_request`] takes them out again).

use serde_json::Value;

use super::content::parts_from_content;
use super::wire::*;
use crate::canonical::*;
use crate::dialects::json::{missing_field, parse_request};

/// The `name` given to a structured-output schema, which Anthropic does not name.
pub const RESPONSE_FORMAT_NAME: &str = "response";

/// The smallest thinking budget the API accepts (`thinking.budget_tokens`).
const MIN_THINKING_BUDGET: u32 = 1024;

/// Decodes a `POST /v1/messages` body. Syntax errors name the line and column; shape
/// errors name the field (`messages[1].content[0]`).
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let wire: AnthropicRequest = parse_request(body)?;
    to_canonical(wire, true)
}

/// Decodes a `POST /v1/messages/count_tokens` body: the same prompt, no `max_tokens`.
pub fn decode_count_tokens_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let wire: AnthropicCountTokensRequest = parse_request(body)?;
    let full = AnthropicRequest {
        model: wire.model,
        anthropic_version: wire.anthropic_version,
        system: wire.system,
        messages: wire.messages,
        tools: wire.tools,
        tool_choice: wire.tool_choice,
        thinking: wire.thinking,
        output_config: wire.output_config,
        extra: wire.extra,
        ..AnthropicRequest::default()
    };
    to_canonical(full, false)
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::new(400, ErrorCategory::InvalidRequest, message).with_param(param)
}

fn to_canonical(wire: AnthropicRequest, require_max_tokens: bool) -> Result<ChatRequest, ApiError> {
    if wire.model.trim().is_empty() {
        return Err(invalid("model", "'model' is required and must name a route."));
    }
    if require_max_tokens && wire.max_tokens.is_none() {
        return Err(invalid("max_tokens", "'max_tokens' is required: the Messages API has no default output limit."));
    }
    if wire.messages.is_empty() {
        return Err(invalid("messages", "'messages' must contain at least one message."));
    }
    // Ranges from the API reference (`temperature` and `top_p` are 0.0 to 1.0).
    for (name, value) in [("temperature", wire.temperature), ("top_p", wire.top_p)] {
        if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            return Err(invalid(name, format!("'{name}' must be between 0 and 1.")));
        }
    }
    let mut extra = wire.extra;
    if let Some(thinking) = wire.thinking {
        check_thinking(&thinking)?;
        extra.insert("thinking".to_owned(), to_value(&thinking));
    }
    let system = match wire.system {
        None => Vec::new(),
        Some(content) => only_text(parts_from_content("system", content)?, "system")?,
    };
    let mut messages = Vec::with_capacity(wire.messages.len());
    for (i, message) in wire.messages.into_iter().enumerate() {
        messages.push(message_from_wire(i, message)?);
    }
    let (tools, server_tools) = tools_from_wire(wire.tools.unwrap_or_default())?;
    if !server_tools.is_empty() {
        extra.insert("tools".to_owned(), Value::Array(server_tools));
    }
    let (tool_choice, parallel_tool_calls) = match wire.tool_choice {
        None => (None, None),
        Some(choice) => tool_choice_from_wire(choice),
    };
    let mut response_format = None;
    if let Some(config) = wire.output_config {
        response_format = config.format.map(|format| ResponseFormat::JsonSchema {
            name: RESPONSE_FORMAT_NAME.to_owned(),
            schema: format.schema,
            // Anthropic's JSON outputs are always enforced by constrained decoding.
            strict: Some(true),
            description: None,
        });
        if !config.extra.is_empty() {
            extra.insert("output_config".to_owned(), Value::Object(config.extra));
        }
    }
    let stream = wire.stream.unwrap_or(false);
    Ok(ChatRequest {
        model: wire.model,
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls,
        sampling: Sampling { temperature: wire.temperature, top_p: wire.top_p, top_k: wire.top_k, ..Sampling::default() },
        max_tokens: wire.max_tokens,
        stop: wire.stop_sequences.unwrap_or_default(),
        response_format,
        n: None,
        stream,
        // Anthropic streams always report usage.
        include_usage: stream,
        user: wire.metadata.and_then(|m| m.user_id),
        metadata: None,
        extra_dialect: (!extra.is_empty()).then_some(Dialect::AnthropicMessages),
        extra,
    })
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// `budget_tokens` is required for `enabled` and must be at least 1,024
/// (<https://platform.claude.com/docs/en/build-with-claude/extended-thinking>). Its
/// relation to `max_tokens` is left to the API: interleaved thinking may exceed it.
fn check_thinking(thinking: &AnthropicThinking) -> Result<(), ApiError> {
    if thinking.kind != "enabled" {
        return Ok(());
    }
    match thinking.budget_tokens {
        None => Err(invalid("thinking.budget_tokens", "'thinking.budget_tokens' is required when thinking is enabled.")),
        Some(budget) if budget < MIN_THINKING_BUDGET => Err(invalid(
            "thinking.budget_tokens",
            format!("'thinking.budget_tokens' must be at least {MIN_THINKING_BUDGET}."),
        )),
        Some(_) => Ok(()),
    }
}

fn only_text(parts: Vec<ContentPart>, param: &str) -> Result<Vec<ContentPart>, ApiError> {
    match parts.iter().position(|p| !matches!(p, ContentPart::Text { .. })) {
        Some(j) => Err(invalid(format!("{param}[{j}]"), format!("'{param}' may contain only text blocks."))),
        None => Ok(parts),
    }
}

/// Tool results stay in the user message that carries them (canonical [`Role::User`]);
/// dialects that need separate tool messages split them when they encode.
fn message_from_wire(i: usize, message: AnthropicMessage) -> Result<Message, ApiError> {
    let param = format!("messages[{i}].content");
    let content = parts_from_content(&param, message.content)?;
    let role = match message.role {
        AnthropicRole::User => Role::User,
        AnthropicRole::Assistant => Role::Assistant,
        AnthropicRole::System => return Ok(Message { role: Role::System, content: only_text(content, &param)?, name: None }),
    };
    for (j, part) in content.iter().enumerate() {
        let allowed = match role {
            Role::User => !matches!(part, ContentPart::ToolUse { .. } | ContentPart::Thinking { .. } | ContentPart::RedactedThinking { .. }),
            _ => !matches!(part, ContentPart::ToolResult { .. }),
        };
        if !allowed {
            let role_name = if role == Role::User { "user" } else { "assistant" };
            return Err(invalid(
                format!("{param}[{j}].type"),
                format!("A {role_name} message cannot contain a '{}' block.", part.kind_name()),
            ));
        }
    }
    Ok(Message { role, content, name: None })
}

/// Client tools become canonical tools; anything else (server tools) is returned as
/// JSON for `extra`.
fn tools_from_wire(wire: Vec<AnthropicToolDefinition>) -> Result<(Vec<Tool>, Vec<Value>), ApiError> {
    let mut tools = Vec::new();
    let mut others = Vec::new();
    for (i, tool) in wire.into_iter().enumerate() {
        match tool {
            AnthropicToolDefinition::Custom(tool) if tool.kind.as_deref().is_none_or(|k| k == "custom") => tools.push(Tool {
                name: tool.name,
                description: tool.description,
                parameters: tool.input_schema,
                strict: tool.strict,
            }),
            AnthropicToolDefinition::Custom(tool) => others.push(to_value(&tool)),
            AnthropicToolDefinition::Other(tool) => match tool.get("type").and_then(Value::as_str) {
                Some(kind) if kind != "custom" => others.push(Value::Object(tool)),
                // No server-tool `type`: a client tool that failed to parse; say why.
                _ => {
                    let reason = serde_json::from_value::<AnthropicTool>(Value::Object(tool))
                        .err()
                        .map_or_else(|| "not a valid tool definition".to_owned(), |e| e.to_string());
                    let param = missing_field(&reason).map_or_else(|| format!("tools[{i}]"), |field| format!("tools[{i}].{field}"));
                    return Err(invalid(param, format!("Invalid tool definition 'tools[{i}]': {reason}")));
                }
            },
        }
    }
    Ok((tools, others))
}

/// `disable_parallel_tool_use: true` means at most one call; `false` says parallel
/// calls are allowed, which is what canonical `Some(true)` means.
fn tool_choice_from_wire(choice: AnthropicToolChoice) -> (Option<ToolChoice>, Option<bool>) {
    let (choice, disable) = match choice {
        AnthropicToolChoice::Auto { disable_parallel_tool_use } => (ToolChoice::Auto, disable_parallel_tool_use),
        AnthropicToolChoice::Any { disable_parallel_tool_use } => (ToolChoice::Required, disable_parallel_tool_use),
        AnthropicToolChoice::Tool { name, disable_parallel_tool_use } => (ToolChoice::Tool { name }, disable_parallel_tool_use),
        AnthropicToolChoice::None => (ToolChoice::None, None),
    };
    (Some(choice), disable.map(|d| !d))
}
