//! Converse requests to and from the canonical [`ChatRequest`].
//!
//! Converse differs from the canonical shape in ways that matter here: the system
//! prompt is a separate list, there are only `user` and `assistant` turns (tool results
//! ride in user turns, consecutive same-role turns are merged), media must be inline
//! bytes or an S3 location, and tool blocks in the history require a `toolConfig`
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/tool-use-inference-call.html>).

use serde_json::{json, Map, Value};

use super::wire::*;
use crate::canonical::*;

/// The body key under which model-specific fields travel; kept apart from the other
/// extra fields because the wire type models it.
const ADDITIONAL_FIELDS: &str = "additionalModelRequestFields";

/// Encodes a canonical request for a Converse upstream. Fails with a message naming
/// the feature when the request holds something Converse cannot carry.
pub fn encode_request(req: &ChatRequest) -> Result<ConverseRequest, String> {
    if req.n.is_some_and(|n| n > 1) {
        return Err("n > 1 (Converse returns one answer per call)".to_owned());
    }
    let output_config = match &req.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject) => {
            return Err("response_format json_object (Converse only constrains output to a JSON schema)".to_owned())
        }
        Some(ResponseFormat::JsonSchema { name, schema, description, .. }) => Some(ConverseOutputConfig {
            text_format: ConverseOutputFormat {
                kind: "json_schema".to_owned(),
                structure: ConverseOutputStructure::JsonSchema(ConverseJsonSchema {
                    schema: schema.to_string(),
                    name: Some(name.clone()),
                    description: description.clone(),
                }),
            },
        }),
    };
    let mut system = system_to_wire(&req.system)?;
    let mut messages: Vec<ConverseMessage> = Vec::with_capacity(req.messages.len());
    for message in &req.messages {
        let role = match message.role {
            // Converse has no system turns; instructions given between turns join the
            // system prompt (their position in the conversation is lost).
            Role::System => {
                system.extend(system_to_wire(&message.content)?);
                continue;
            }
            Role::Assistant => ConverseRole::Assistant,
            Role::User | Role::Tool => ConverseRole::User,
        };
        let mut blocks = Vec::with_capacity(message.content.len());
        for part in &message.content {
            if let Some(block) = block_to_wire(part)? {
                blocks.push(ConverseBlock::Known(block));
            }
        }
        if blocks.is_empty() {
            // Converse rejects empty turns and blank text blocks.
            continue;
        }
        match messages.last_mut() {
            // Converse wants turns to alternate; a tool turn followed by a user turn is one user turn.
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => messages.push(ConverseMessage { role, content: blocks }),
        }
    }
    // Converse needs at least one turn; a conversation of system instructions (or of
    // empty turns) has none.
    if messages.is_empty() {
        return Err("a conversation without a user or assistant turn (Converse needs one)".to_owned());
    }
    let (additional_model_request_fields, extra) = split_extra(req);
    let inference_config = (req.max_tokens.is_some() || req.sampling.temperature.is_some() || req.sampling.top_p.is_some() || !req.stop.is_empty())
        .then(|| ConverseInferenceConfig {
            max_tokens: req.max_tokens,
            // Converse's range is 0 to 1 where OpenAI's and Gemini's are 0 to 2;
            // clamping keeps such a request working, as for Claude's own API.
            temperature: req.sampling.temperature.map(|t| t.clamp(0.0, 1.0)),
            top_p: req.sampling.top_p,
            stop_sequences: req.stop.clone(),
        });
    Ok(ConverseRequest {
        tool_config: tool_config(req, &messages),
        messages,
        system,
        inference_config,
        output_config,
        additional_model_request_fields,
        extra,
    })
}

/// Extra fields travel only to an upstream of the dialect they came from.
fn split_extra(req: &ChatRequest) -> (Option<Map<String, Value>>, Map<String, Value>) {
    if req.extra_dialect != Some(Dialect::BedrockConverse) {
        return (None, Map::new());
    }
    let mut extra = req.extra.clone();
    let additional = match extra.remove(ADDITIONAL_FIELDS) {
        Some(Value::Object(fields)) => Some(fields),
        Some(other) => {
            extra.insert(ADDITIONAL_FIELDS.to_owned(), other);
            None
        }
        None => None,
    };
    (additional, extra)
}

/// Converse has no "none" tool choice: with `none` the tools are left out, unless the
/// history holds tool blocks, which Converse only accepts with a `toolConfig` (the
/// tools are then offered with the model's default choice). A history with tool
/// blocks but no declared tools gets minimal declarations of the tools it names.
fn tool_config(req: &ChatRequest, messages: &[ConverseMessage]) -> Option<ConverseToolConfig> {
    let history_has_tools = messages.iter().flat_map(|m| &m.content).any(|b| {
        matches!(b, ConverseBlock::Known(ConverseContentBlock::ToolUse(_) | ConverseContentBlock::ToolResult(_)))
    });
    let mut tools: Vec<ConverseTool> = req
        .tools
        .iter()
        .map(|t| {
            ConverseTool::ToolSpec(ConverseToolSpec {
                name: t.name.clone(),
                // Converse rejects an empty description.
                description: t.description.clone().filter(|d| !d.is_empty()),
                input_schema: ConverseInputSchema { json: t.parameters.clone() },
                strict: t.strict,
            })
        })
        .collect();
    if tools.is_empty() && history_has_tools {
        tools = tools_named_in_history(messages);
    }
    if tools.is_empty() || (req.tool_choice == Some(ToolChoice::None) && !history_has_tools) {
        return None;
    }
    let tool_choice = match &req.tool_choice {
        None | Some(ToolChoice::None) => None,
        Some(ToolChoice::Auto) => Some(ConverseToolChoice::Auto(Empty {})),
        Some(ToolChoice::Required) => Some(ConverseToolChoice::Any(Empty {})),
        Some(ToolChoice::Tool { name }) => Some(ConverseToolChoice::Tool(ConverseSpecificTool { name: name.clone() })),
    };
    Some(ConverseToolConfig { tools, tool_choice })
}

fn tools_named_in_history(messages: &[ConverseMessage]) -> Vec<ConverseTool> {
    let mut names: Vec<&str> = Vec::new();
    for block in messages.iter().flat_map(|m| &m.content) {
        if let ConverseBlock::Known(ConverseContentBlock::ToolUse(call)) = block {
            if !names.contains(&call.name.as_str()) {
                names.push(&call.name);
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            ConverseTool::ToolSpec(ConverseToolSpec {
                name: name.to_owned(),
                description: None,
                input_schema: ConverseInputSchema { json: json!({"type": "object", "properties": {}}) },
                strict: None,
            })
        })
        .collect()
}

fn system_to_wire(parts: &[ContentPart]) -> Result<Vec<ConverseSystemBlock>, String> {
    Ok(crate::dialects::system_texts(parts)?.into_iter().map(|text| ConverseSystemBlock::Text(text.to_owned())).collect())
}

/// One canonical part as a Converse block; `None` for parts Converse would reject and
/// that carry nothing (blank text).
fn block_to_wire(part: &ContentPart) -> Result<Option<ConverseContentBlock>, String> {
    Ok(Some(match part {
        ContentPart::Text { text } if text.is_empty() => return Ok(None),
        ContentPart::Text { text } => ConverseContentBlock::Text(text.clone()),
        ContentPart::Image { source, .. } => ConverseContentBlock::Image(image_to_wire(source)?),
        ContentPart::Document { source, title } => ConverseContentBlock::Document(document_to_wire(source, title.as_deref())?),
        ContentPart::ToolUse { id, name, input } => ConverseContentBlock::ToolUse(ConverseToolUseBlock {
            tool_use_id: id.clone(),
            name: name.clone(),
            input: tool_input(input),
        }),
        ContentPart::ToolResult { tool_use_id, content, is_error } => {
            let mut blocks = Vec::with_capacity(content.len());
            for part in content {
                match part {
                    ContentPart::Text { text } if text.is_empty() => {}
                    ContentPart::Text { text } => blocks.push(ConverseToolResultContent::Text(text.clone())),
                    ContentPart::Image { source, .. } => blocks.push(ConverseToolResultContent::Image(image_to_wire(source)?)),
                    ContentPart::Document { source, title } => {
                        blocks.push(ConverseToolResultContent::Document(document_to_wire(source, title.as_deref())?))
                    }
                    other => return Err(format!("a {} part inside a tool result", other.kind_name())),
                }
            }
            ConverseContentBlock::ToolResult(ConverseToolResultBlock {
                tool_use_id: tool_use_id.clone(),
                content: blocks,
                // Only an error is marked: `status` is not accepted by every model family.
                status: is_error.then(|| "error".to_owned()),
            })
        }
        ContentPart::Thinking { text, signature } => {
            ConverseContentBlock::ReasoningContent(ConverseReasoningBlock::ReasoningText(ConverseReasoningText {
                text: text.clone(),
                signature: signature.clone(),
            }))
        }
        ContentPart::RedactedThinking { data } => {
            ConverseContentBlock::ReasoningContent(ConverseReasoningBlock::RedactedContent(data.clone()))
        }
    }))
}

/// Converse wants the tool input as a JSON value; arguments a model wrote as text that
/// is not JSON stay text, and the upstream decides.
fn tool_input(input: &Value) -> Value {
    match input {
        Value::String(raw) => serde_json::from_str(raw).unwrap_or_else(|_| input.clone()),
        other => other.clone(),
    }
}

fn image_to_wire(source: &MediaSource) -> Result<ConverseImageBlock, String> {
    match source {
        MediaSource::Base64 { media_type, data } => {
            let format = image_format(media_type).ok_or_else(|| format!("images of type {media_type} (Converse takes png, jpeg, gif, webp)"))?;
            Ok(ConverseImageBlock { format: format.to_owned(), source: ConverseSource::Bytes(data.clone()) })
        }
        MediaSource::Url { url } if url.starts_with("s3://") => {
            let format = image_format_of_path(url).ok_or_else(|| format!("an S3 image whose type is unknown ({url})"))?;
            Ok(ConverseImageBlock { format: format.to_owned(), source: s3(url) })
        }
        MediaSource::Url { .. } => Err("images by URL (Converse needs the image bytes or an S3 location)".to_owned()),
    }
}

fn document_to_wire(source: &MediaSource, title: Option<&str>) -> Result<ConverseDocumentBlock, String> {
    let name = document_name(title);
    match source {
        MediaSource::Base64 { media_type, data } => {
            let format = document_format(media_type).ok_or_else(|| format!("documents of type {media_type}"))?;
            Ok(ConverseDocumentBlock { format: format.to_owned(), name, source: ConverseSource::Bytes(data.clone()) })
        }
        MediaSource::Url { url } if url.starts_with("s3://") => {
            let extension = url.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
            let format = DOCUMENT_FORMATS.iter().find(|(f, _)| *f == extension).map(|(f, _)| *f);
            let format = format.ok_or_else(|| format!("an S3 document whose type is unknown ({url})"))?;
            Ok(ConverseDocumentBlock { format: format.to_owned(), name, source: s3(url) })
        }
        MediaSource::Url { .. } => Err("documents by URL (Converse needs the document bytes or an S3 location)".to_owned()),
    }
}

fn s3(url: &str) -> ConverseSource {
    ConverseSource::S3Location(ConverseS3Location { uri: url.to_owned(), bucket_owner: None })
}

/// Converse document names may hold only alphanumerics, single spaces, hyphens,
/// parentheses and square brackets
/// (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_DocumentBlock.html>);
/// anything else becomes a space, so `report.pdf` is sent as `report pdf`.
pub(super) fn document_name(title: Option<&str>) -> String {
    let cleaned: String = title
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') { c } else { ' ' })
        .collect();
    let name = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        "document".to_owned()
    } else {
        name
    }
}

const IMAGE_FORMATS: [(&str, &str); 4] = [("png", "image/png"), ("jpeg", "image/jpeg"), ("gif", "image/gif"), ("webp", "image/webp")];

const DOCUMENT_FORMATS: [(&str, &str); 9] = [
    ("pdf", "application/pdf"),
    ("csv", "text/csv"),
    ("doc", "application/msword"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("xls", "application/vnd.ms-excel"),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("html", "text/html"),
    ("txt", "text/plain"),
    ("md", "text/markdown"),
];

fn image_format(media_type: &str) -> Option<&'static str> {
    let media_type = media_type.trim().to_ascii_lowercase();
    if media_type == "image/jpg" {
        return Some("jpeg");
    }
    IMAGE_FORMATS.iter().find(|(_, m)| *m == media_type).map(|(f, _)| *f)
}

fn image_format_of_path(path: &str) -> Option<&'static str> {
    match path.rsplit('.').next()?.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => Some("jpeg"),
        "png" => Some("png"),
        "gif" => Some("gif"),
        "webp" => Some("webp"),
        _ => None,
    }
}

fn document_format(media_type: &str) -> Option<&'static str> {
    let base = media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    DOCUMENT_FORMATS.iter().find(|(_, m)| *m == base).map(|(f, _)| *f)
}

pub(super) fn image_media_type(format: &str) -> Option<&'static str> {
    IMAGE_FORMATS.iter().find(|(f, _)| *f == format).map(|(_, m)| *m)
}

pub(super) fn document_media_type(format: &str) -> Option<&'static str> {
    DOCUMENT_FORMATS.iter().find(|(f, _)| *f == format).map(|(_, m)| *m)
}

/// Decodes a Converse request body (as a front door or a test would receive it) into
/// the canonical form. The model id and streaming come from the URL, not the body.
/// Errors name the field at fault (`messages[1].content[0]`).
pub fn decode_request(wire: ConverseRequest, model: &str, stream: bool) -> Result<ChatRequest, ApiError> {
    if wire.messages.is_empty() {
        return Err(invalid("messages", "'messages' must contain at least one message."));
    }
    let mut system = Vec::with_capacity(wire.system.len());
    for (i, block) in wire.system.into_iter().enumerate() {
        match block {
            ConverseSystemBlock::Text(text) => system.push(ContentPart::Text { text }),
            ConverseSystemBlock::CachePoint(_) => {}
            ConverseSystemBlock::GuardContent(_) => {
                return Err(invalid(format!("system[{i}].guardContent"), "Guardrail content blocks are not supported by the gateway."))
            }
        }
    }
    let mut messages = Vec::with_capacity(wire.messages.len());
    for (i, message) in wire.messages.into_iter().enumerate() {
        messages.push(message_from_wire(i, message)?);
    }
    let (tools, tool_choice) = match wire.tool_config {
        None => (Vec::new(), None),
        Some(config) => {
            let tools = config
                .tools
                .into_iter()
                .filter_map(|tool| match tool {
                    ConverseTool::ToolSpec(spec) => Some(Tool {
                        name: spec.name,
                        description: spec.description,
                        parameters: spec.input_schema.json,
                        strict: spec.strict,
                    }),
                    ConverseTool::CachePoint(_) => None,
                })
                .collect();
            let choice = config.tool_choice.map(|choice| match choice {
                ConverseToolChoice::Auto(_) => ToolChoice::Auto,
                ConverseToolChoice::Any(_) => ToolChoice::Required,
                ConverseToolChoice::Tool(tool) => ToolChoice::Tool { name: tool.name },
            });
            (tools, choice)
        }
    };
    let response_format = match wire.output_config {
        None => None,
        Some(config) => {
            let ConverseOutputStructure::JsonSchema(schema) = config.text_format.structure;
            let parsed = serde_json::from_str(&schema.schema)
                .map_err(|e| invalid("outputConfig.textFormat.structure.jsonSchema.schema", format!("The schema is not valid JSON: {e}")))?;
            Some(ResponseFormat::JsonSchema {
                name: schema.name.unwrap_or_else(|| "response".to_owned()),
                schema: parsed,
                strict: None,
                description: schema.description,
            })
        }
    };
    let inference = wire.inference_config.unwrap_or_default();
    // Converse's documented ranges; a value outside them must not reach a vendor that
    // would clamp or refuse it differently.
    if let Some(t) = inference.temperature.filter(|t| !(0.0..=1.0).contains(t)) {
        return Err(invalid("inferenceConfig.temperature", format!("'temperature' must be between 0 and 1; got {t}.")));
    }
    if let Some(p) = inference.top_p.filter(|p| !(0.0..=1.0).contains(p)) {
        return Err(invalid("inferenceConfig.topP", format!("'topP' must be between 0 and 1; got {p}.")));
    }
    let mut extra = wire.extra;
    if let Some(fields) = wire.additional_model_request_fields {
        extra.insert(ADDITIONAL_FIELDS.to_owned(), Value::Object(fields));
    }
    Ok(ChatRequest {
        model: model.to_owned(),
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: None,
        sampling: Sampling { temperature: inference.temperature, top_p: inference.top_p, ..Sampling::default() },
        max_tokens: inference.max_tokens,
        stop: inference.stop_sequences,
        response_format,
        n: None,
        stream,
        // Converse streams always end with a usage report.
        include_usage: stream,
        user: None,
        metadata: None,
        extra_dialect: (!extra.is_empty()).then_some(Dialect::BedrockConverse),
        extra,
    })
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::new(400, ErrorCategory::InvalidRequest, message).with_param(param)
}

fn message_from_wire(i: usize, message: ConverseMessage) -> Result<Message, ApiError> {
    // Converse refuses a message without content blocks; so does the gateway.
    if message.content.is_empty() {
        return Err(invalid(format!("messages[{i}].content"), "Each message must contain at least one content block."));
    }
    let mut parts = Vec::with_capacity(message.content.len());
    for (j, block) in message.content.into_iter().enumerate() {
        let param = format!("messages[{i}].content[{j}]");
        let block = match block {
            ConverseBlock::Known(block) => block,
            ConverseBlock::Unknown(kind) => return Err(invalid(param, format!("Content blocks of kind '{kind}' are not supported by the gateway."))),
        };
        match block {
            ConverseContentBlock::CachePoint(_) => {}
            ConverseContentBlock::Text(text) => parts.push(ContentPart::Text { text }),
            ConverseContentBlock::Image(image) => parts.push(image_from_wire(&param, image)?),
            ConverseContentBlock::Document(document) => parts.push(document_from_wire(&param, document)?),
            ConverseContentBlock::ToolUse(call) => parts.push(ContentPart::ToolUse { id: call.tool_use_id, name: call.name, input: call.input }),
            ConverseContentBlock::ToolResult(result) => {
                let mut content = Vec::with_capacity(result.content.len());
                for item in result.content {
                    content.push(match item {
                        ConverseToolResultContent::Text(text) => ContentPart::Text { text },
                        // The canonical model has no JSON part; the JSON travels as its text.
                        ConverseToolResultContent::Json(value) => ContentPart::Text { text: value.to_string() },
                        ConverseToolResultContent::Image(image) => image_from_wire(&param, image)?,
                        ConverseToolResultContent::Document(document) => document_from_wire(&param, document)?,
                    });
                }
                parts.push(ContentPart::ToolResult {
                    tool_use_id: result.tool_use_id,
                    content,
                    is_error: result.status.as_deref() == Some("error"),
                });
            }
            ConverseContentBlock::ReasoningContent(ConverseReasoningBlock::ReasoningText(reasoning)) => {
                parts.push(ContentPart::Thinking { text: reasoning.text, signature: reasoning.signature })
            }
            ConverseContentBlock::ReasoningContent(ConverseReasoningBlock::RedactedContent(data)) => {
                parts.push(ContentPart::RedactedThinking { data })
            }
        }
    }
    let role = match message.role {
        ConverseRole::Assistant => Role::Assistant,
        // A user turn of nothing but tool results is what other dialects call a tool turn.
        ConverseRole::User if !parts.is_empty() && parts.iter().all(|p| matches!(p, ContentPart::ToolResult { .. })) => Role::Tool,
        ConverseRole::User => Role::User,
    };
    Ok(Message { role, content: parts, name: None })
}

fn source_from_wire(param: &str, source: ConverseSource, media_type: &str) -> Result<MediaSource, ApiError> {
    match source {
        ConverseSource::Bytes(data) => Ok(MediaSource::Base64 { media_type: media_type.to_owned(), data }),
        ConverseSource::S3Location(location) => Ok(MediaSource::Url { url: location.uri }),
        ConverseSource::Text(_) => Err(invalid(format!("{param}.source.text"), "Text sources are not supported by the gateway; send the bytes.")),
    }
}

fn image_from_wire(param: &str, image: ConverseImageBlock) -> Result<ContentPart, ApiError> {
    let media_type = image_media_type(&image.format)
        .ok_or_else(|| invalid(format!("{param}.image.format"), format!("Unknown image format '{}'.", image.format)))?;
    Ok(ContentPart::Image { source: source_from_wire(&format!("{param}.image"), image.source, media_type)?, detail: None })
}

fn document_from_wire(param: &str, document: ConverseDocumentBlock) -> Result<ContentPart, ApiError> {
    let media_type = document_media_type(&document.format)
        .ok_or_else(|| invalid(format!("{param}.document.format"), format!("Unknown document format '{}'.", document.format)))?;
    Ok(ContentPart::Document {
        source: source_from_wire(&format!("{param}.document"), document.source, media_type)?,
        title: Some(document.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_names_keep_only_what_bedrock_accepts() {
        assert_eq!(document_name(Some("Q3 report (final).pdf")), "Q3 report (final) pdf");
        assert_eq!(document_name(Some("  a__b  [v2]  ")), "a b [v2]");
        assert_eq!(document_name(Some("...")), "document");
        assert_eq!(document_name(None), "document");
    }
}
