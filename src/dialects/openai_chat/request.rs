//! OpenAI chat requests to and from the canonical [`ChatRequest`].

use serde_json::{Map, Value};

use super::wire::*;
use crate::canonical::*;

/// Decodes a request body. Syntax errors name the line and column; shape errors name the
/// field (`messages[1].content`), so a client can fix its request from the message alone.
///
/// The usual request is read by the hand-written reader in `request_scan.rs`; whatever it
/// is not sure of goes to serde, so results and error messages are serde's either way.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let wire = match super::request_scan::scan_request(body) {
        Some(wire) => wire,
        None => crate::dialects::json::parse_request::<OpenAiChatRequest>(body)?,
    };
    ChatRequest::try_from(wire)
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::new(400, ErrorCategory::InvalidRequest, message).with_param(param)
}

impl TryFrom<OpenAiChatRequest> for ChatRequest {
    type Error = ApiError;

    fn try_from(wire: OpenAiChatRequest) -> Result<Self, ApiError> {
        if wire.model.trim().is_empty() {
            return Err(invalid("model", "'model' must name a route."));
        }
        if wire.messages.is_empty() {
            return Err(invalid("messages", "'messages' must contain at least one message."));
        }
        // OpenAI's own ranges; a value outside them must not be passed on to a vendor
        // that would clamp or refuse it differently.
        if let Some(t) = wire.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
            return Err(invalid("temperature", format!("'temperature' must be between 0 and 2; got {t}.")));
        }
        if let Some(p) = wire.top_p.filter(|p| !(0.0..=1.0).contains(p)) {
            return Err(invalid("top_p", format!("'top_p' must be between 0 and 1; got {p}.")));
        }
        let mut messages = Vec::with_capacity(wire.messages.len());
        for (i, message) in wire.messages.into_iter().enumerate() {
            messages.push(message_from_wire(i, message)?);
        }
        let tools = wire
            .tools
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, tool)| {
                if tool.kind != "function" {
                    return Err(invalid(format!("tools[{i}].type"), format!("Tool type '{}' is not supported; use 'function'.", tool.kind)));
                }
                Ok(Tool {
                    name: tool.function.name,
                    description: tool.function.description,
                    parameters: tool.function.parameters.unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
                    strict: tool.function.strict,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tool_choice = wire.tool_choice.map(tool_choice_from_wire).transpose()?;
        let response_format = wire.response_format.map(|f| match f {
            OpenAiResponseFormat::Text => ResponseFormat::Text,
            OpenAiResponseFormat::JsonObject => ResponseFormat::JsonObject,
            OpenAiResponseFormat::JsonSchema { json_schema } => ResponseFormat::JsonSchema {
                name: json_schema.name,
                schema: json_schema.schema.unwrap_or(Value::Object(Map::new())),
                strict: json_schema.strict,
                description: json_schema.description,
            },
        });
        let stream = wire.stream.unwrap_or(false);
        let include_usage = stream && wire.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
        Ok(ChatRequest {
            model: wire.model,
            system: Vec::new(),
            messages,
            tools,
            tool_choice,
            parallel_tool_calls: wire.parallel_tool_calls,
            sampling: Sampling {
                temperature: wire.temperature,
                top_p: wire.top_p,
                top_k: None,
                seed: wire.seed,
                presence_penalty: wire.presence_penalty,
                frequency_penalty: wire.frequency_penalty,
            },
            max_tokens: wire.max_completion_tokens.or(wire.max_tokens),
            stop: match wire.stop {
                None => Vec::new(),
                Some(OpenAiStop::One(s)) => vec![s],
                Some(OpenAiStop::Many(v)) => v,
            },
            response_format,
            n: wire.n,
            stream,
            include_usage,
            user: wire.user,
            metadata: wire.metadata,
            extra_dialect: (!wire.extra.is_empty()).then_some(Dialect::OpenAiChat),
            extra: wire.extra,
        })
    }
}

fn message_from_wire(i: usize, message: OpenAiMessage) -> Result<Message, ApiError> {
    Ok(match message {
        OpenAiMessage::System { content, name } | OpenAiMessage::Developer { content, name } => {
            Message { role: Role::System, content: content_from_wire(i, content)?, name }
        }
        OpenAiMessage::User { content, name } => {
            Message { role: Role::User, content: content_from_wire(i, content)?, name }
        }
        OpenAiMessage::Assistant { content, name, tool_calls, refusal, reasoning_content } => {
            // OpenAI's rule: content is required unless the message makes tool calls.
            if content.is_none() && tool_calls.is_none() && refusal.is_none() {
                return Err(invalid(format!("messages[{i}].content"), "An assistant message needs 'content' or 'tool_calls'."));
            }
            let mut parts = Vec::new();
            if let Some(reasoning) = reasoning_content.filter(|r| !r.is_empty()) {
                parts.push(ContentPart::Thinking { text: reasoning, signature: None });
            }
            if let Some(content) = content {
                parts.extend(content_from_wire(i, content)?);
            }
            if let Some(refusal) = refusal {
                parts.push(ContentPart::text(refusal));
            }
            for call in tool_calls.unwrap_or_default() {
                parts.push(ContentPart::ToolUse { id: call.id, name: call.function.name, input: arguments_value(call.function.arguments) });
            }
            Message { role: Role::Assistant, content: parts, name }
        }
        OpenAiMessage::Tool { content, tool_call_id } => Message {
            role: Role::Tool,
            content: vec![ContentPart::ToolResult {
                tool_use_id: tool_call_id,
                content: content_from_wire(i, content)?,
                is_error: false,
            }],
            name: None,
        },
    })
}

/// Tool arguments are JSON text on the wire; keep them as a value, or as the raw string
/// when a model wrote something that is not JSON, so nothing is lost either way.
fn arguments_value(arguments: String) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Map::new());
    }
    serde_json::from_str(&arguments).unwrap_or(Value::String(arguments))
}

/// The content of message `i`. Its error paths name `messages[i].content[j]`; the name
/// is written only when there is an error to report.
fn content_from_wire(i: usize, content: OpenAiContent) -> Result<Vec<ContentPart>, ApiError> {
    let parts = match content {
        OpenAiContent::Text(text) => return Ok(vec![ContentPart::Text { text }]),
        OpenAiContent::Parts(parts) => parts,
    };
    parts
        .into_iter()
        .enumerate()
        .map(|(j, part)| match part {
            OpenAiContentPart::Text { text } => Ok(ContentPart::Text { text }),
            OpenAiContentPart::Refusal { refusal } => Ok(ContentPart::Text { text: refusal }),
            OpenAiContentPart::ImageUrl { image_url } => {
                Ok(ContentPart::Image { source: MediaSource::from_url(&image_url.url), detail: image_url.detail })
            }
            OpenAiContentPart::File { file } => match file.file_data {
                Some(data) => Ok(ContentPart::Document { source: file_source(&data), title: file.filename }),
                None => Err(invalid(
                    format!("messages[{i}].content[{j}].file"),
                    "File parts must carry 'file_data'; uploaded file ids cannot be routed to other providers.",
                )),
            },
            OpenAiContentPart::InputAudio { .. } => {
                Err(invalid(format!("messages[{i}].content[{j}].type"), "Audio input ('input_audio') is not supported by the gateway."))
            }
        })
        .collect()
}

/// OpenAI's `file_data` is a data URL; accept bare base64 as a PDF, as the SDKs do.
fn file_source(data: &str) -> MediaSource {
    if data.starts_with("data:") {
        MediaSource::from_url(data)
    } else {
        MediaSource::Base64 { media_type: "application/pdf".to_owned(), data: data.to_owned() }
    }
}

fn tool_choice_from_wire(choice: OpenAiToolChoice) -> Result<ToolChoice, ApiError> {
    match choice {
        OpenAiToolChoice::Mode(mode) => match mode.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(invalid("tool_choice", format!("'{other}' is not one of 'none', 'auto', 'required'."))),
        },
        OpenAiToolChoice::Named(named) => Ok(ToolChoice::Tool { name: named.function.name }),
    }
}

/// Which field carries the output limit: OpenAI's own API wants `max_completion_tokens`
/// (reasoning models reject `max_tokens`), while many compatible servers only know `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokensField {
    MaxTokens,
    MaxCompletionTokens,
}

#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    pub max_tokens_field: MaxTokensField,
    /// Ask for a usage report at the end of a stream even if the client did not, so the
    /// ledger always knows what was consumed.
    pub force_stream_usage: bool,
}

/// Encodes a canonical request for an OpenAI-dialect upstream serving `model`.
/// Fails with a message naming the feature when the request holds something this
/// dialect cannot carry.
pub fn encode_request(req: &ChatRequest, model: &str, options: EncodeOptions) -> Result<OpenAiChatRequest, String> {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(OpenAiMessage::System { content: content_to_wire(&req.system)?, name: None });
    }
    for message in &req.messages {
        encode_message(message, &mut messages)?;
    }
    let extra = if req.extra_dialect == Some(Dialect::OpenAiChat) { req.extra.clone() } else { Map::new() };
    let (max_tokens, max_completion_tokens) = match options.max_tokens_field {
        MaxTokensField::MaxTokens => (req.max_tokens, None),
        MaxTokensField::MaxCompletionTokens => (None, req.max_tokens),
    };
    Ok(OpenAiChatRequest {
        model: model.to_owned(),
        messages,
        stream: req.stream.then_some(true),
        stream_options: (req.stream && (req.include_usage || options.force_stream_usage))
            .then(|| OpenAiStreamOptions { include_usage: Some(true), extra: Map::new() }),
        tools: (!req.tools.is_empty()).then(|| {
            req.tools
                .iter()
                .map(|t| OpenAiTool {
                    kind: "function".to_owned(),
                    function: OpenAiFunction {
                        name: t.name.clone(),
                        description: t.description.clone(),
                        parameters: Some(t.parameters.clone()),
                        strict: t.strict,
                    },
                })
                .collect()
        }),
        tool_choice: req.tool_choice.as_ref().map(|c| match c {
            ToolChoice::Auto => OpenAiToolChoice::Mode("auto".to_owned()),
            ToolChoice::None => OpenAiToolChoice::Mode("none".to_owned()),
            ToolChoice::Required => OpenAiToolChoice::Mode("required".to_owned()),
            ToolChoice::Tool { name } => OpenAiToolChoice::Named(OpenAiNamedToolChoice {
                kind: "function".to_owned(),
                function: OpenAiNamedFunction { name: name.clone() },
            }),
        }),
        parallel_tool_calls: req.parallel_tool_calls,
        response_format: req.response_format.as_ref().map(|f| match f {
            ResponseFormat::Text => OpenAiResponseFormat::Text,
            ResponseFormat::JsonObject => OpenAiResponseFormat::JsonObject,
            ResponseFormat::JsonSchema { name, schema, strict, description } => OpenAiResponseFormat::JsonSchema {
                json_schema: OpenAiJsonSchema { name: name.clone(), description: description.clone(), schema: Some(schema.clone()), strict: *strict },
            },
        }),
        temperature: req.sampling.temperature,
        top_p: req.sampling.top_p,
        max_tokens,
        max_completion_tokens,
        stop: match req.stop.len() {
            0 => None,
            _ => Some(OpenAiStop::Many(req.stop.clone())),
        },
        seed: req.sampling.seed,
        presence_penalty: req.sampling.presence_penalty,
        frequency_penalty: req.sampling.frequency_penalty,
        n: req.n,
        user: req.user.clone(),
        metadata: req.metadata.clone(),
        extra,
    })
}

fn encode_message(message: &Message, out: &mut Vec<OpenAiMessage>) -> Result<(), String> {
    match message.role {
        Role::System => out.push(OpenAiMessage::System { content: content_to_wire(&message.content)?, name: message.name.clone() }),
        Role::Assistant => {
            let mut text = Vec::new();
            let mut tool_calls = Vec::new();
            for part in &message.content {
                match part {
                    ContentPart::ToolUse { id, name, input } => tool_calls.push(OpenAiToolCall {
                        id: id.clone(),
                        kind: "function".to_owned(),
                        function: OpenAiFunctionCall { name: name.clone(), arguments: arguments_text(input) },
                    }),
                    // Prior reasoning is not sent back: the chat API has no field for it,
                    // and encrypted reasoning only means something to the vendor that made it.
                    ContentPart::Thinking { .. } | ContentPart::RedactedThinking { .. } => {}
                    other => text.push(other.clone()),
                }
            }
            if text.is_empty() && tool_calls.is_empty() {
                // Only reasoning, which is not sent back: OpenAI refuses an assistant
                // message with neither content nor tool calls, so the turn is left out.
                return Ok(());
            }
            out.push(OpenAiMessage::Assistant {
                content: if text.is_empty() { None } else { Some(content_to_wire(&text)?) },
                name: message.name.clone(),
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                refusal: None,
                reasoning_content: None,
            });
        }
        Role::User | Role::Tool => {
            // Tool results become `tool` messages (they must directly follow the
            // assistant's calls); anything else in the turn follows as a user message.
            let mut rest = Vec::new();
            for part in &message.content {
                match part {
                    ContentPart::ToolResult { tool_use_id, content, is_error } => {
                        // Tool messages take text only.
                        if let Some(part) = content.iter().find(|p| !matches!(p, ContentPart::Text { .. })) {
                            return Err(format!("a {} part inside a tool result", part.kind_name()));
                        }
                        let mut content = content_to_wire(content)?;
                        if *is_error {
                            content = mark_error(content);
                        }
                        out.push(OpenAiMessage::Tool { content, tool_call_id: tool_use_id.clone() });
                    }
                    other => rest.push(other.clone()),
                }
            }
            if !rest.is_empty() {
                out.push(OpenAiMessage::User { content: content_to_wire(&rest)?, name: message.name.clone() });
            }
        }
    }
    Ok(())
}

/// OpenAI has no error flag on tool results, so an error is said in words.
fn mark_error(content: OpenAiContent) -> OpenAiContent {
    match content {
        OpenAiContent::Text(text) => OpenAiContent::Text(format!("Error: {text}")),
        OpenAiContent::Parts(mut parts) => {
            parts.insert(0, OpenAiContentPart::Text { text: "Error:".to_owned() });
            OpenAiContent::Parts(parts)
        }
    }
}

fn arguments_text(input: &Value) -> String {
    match input {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

/// A single text part stays a plain string (the most widely accepted form).
fn content_to_wire(parts: &[ContentPart]) -> Result<OpenAiContent, String> {
    if let [ContentPart::Text { text }] = parts {
        return Ok(OpenAiContent::Text(text.clone()));
    }
    parts
        .iter()
        .map(|part| match part {
            ContentPart::Text { text } => Ok(OpenAiContentPart::Text { text: text.clone() }),
            ContentPart::Image { source, detail } => {
                Ok(OpenAiContentPart::ImageUrl { image_url: OpenAiImageUrl { url: source.to_url(), detail: detail.clone() } })
            }
            ContentPart::Document { source: source @ MediaSource::Base64 { .. }, title } => {
                Ok(OpenAiContentPart::File { file: OpenAiFile { file_data: Some(source.to_url()), file_id: None, filename: title.clone() } })
            }
            ContentPart::Document { source: MediaSource::Url { .. }, .. } => {
                Err("documents by URL (the openai-chat dialect only takes inline file data)".to_owned())
            }
            ContentPart::Thinking { text, .. } => Ok(OpenAiContentPart::Text { text: text.clone() }),
            other => Err(format!("a {} part inside message content", other.kind_name())),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(OpenAiContent::Parts)
}

