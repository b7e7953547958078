//! Gemini requests to and from the canonical [`ChatRequest`].
//!
//! Gemini has two roles, `user` and `model`: system text goes in `systemInstruction`,
//! tool results ride in user turns as `functionResponse` parts, and consecutive
//! same-role turns are merged (parallel function responses must share one turn:
//! <https://ai.google.dev/gemini-api/docs/function-calling>).

use serde_json::{json, Map, Value};

use super::response::{tool_call_id, GEMINI_ERROR_KEY, GEMINI_OUTPUT_KEY};
use super::wire::*;
use crate::canonical::*;

/// Which of the two Google APIs a request is for. They share the dialect but accept
/// different file references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeminiSurface {
    /// The Gemini API (`generativelanguage.googleapis.com`): files by Files API URI only.
    DeveloperApi,
    /// Vertex AI: files by `gs://` URI or HTTP(S) URL, with a MIME type.
    VertexAi,
}

#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    pub surface: GeminiSurface,
}

/// The value Google documents for a function call whose thought signature is unknown
/// (history from another model, or a client that cannot carry signatures): Gemini 3
/// rejects a function call turn without a signature, and skips validation for this one.
/// <https://ai.google.dev/gemini-api/docs/thought-signatures>
pub const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

/// Extra-field keys that belong inside typed members; kept apart so they merge there.
const GENERATION_CONFIG: &str = "generationConfig";
const TOOL_CONFIG: &str = "toolConfig";
const TOOLS: &str = "tools";

/// The Files API host: the only file URIs the Gemini API takes
/// (<https://ai.google.dev/gemini-api/docs/files>).
const FILES_API_PREFIX: &str = "https://generativelanguage.googleapis.com/";

/// Encodes a canonical request for a Gemini upstream. Fails with a message naming the
/// feature when the request holds something this surface cannot carry.
pub fn encode_request(req: &ChatRequest, options: EncodeOptions) -> Result<GeminiRequest, String> {
    if req.n.is_some_and(|n| n > 1) {
        return Err("n > 1 (the gateway returns one candidate)".to_owned());
    }
    let mut system = system_to_wire(&req.system)?;
    let mut contents: Vec<GeminiContent> = Vec::with_capacity(req.messages.len());
    // Every tool call so far, to name the function a tool result answers.
    let mut calls: Vec<(&str, &str)> = Vec::new();
    for message in &req.messages {
        let role = match message.role {
            // Instructions given between turns join the system instruction (their
            // position in the conversation is lost).
            Role::System => {
                system.extend(system_to_wire(&message.content)?);
                continue;
            }
            Role::Assistant => "model",
            Role::User | Role::Tool => "user",
        };
        let mut parts = parts_to_wire(&message.content, options.surface, &mut calls)?;
        if role == "model" {
            sign_first_function_call(&mut parts);
        }
        if parts.is_empty() {
            // Gemini rejects turns without parts.
            continue;
        }
        match contents.last_mut() {
            Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
            _ => contents.push(GeminiContent { role: Some(role.to_owned()), parts }),
        }
    }
    // Gemini needs at least one turn; a conversation of system instructions (or of
    // empty turns) has none.
    if contents.is_empty() {
        return Err("a conversation without a user or model turn (Gemini needs one)".to_owned());
    }
    let extras = Extras::split(req);
    let mut tools: Vec<GeminiTool> = Vec::new();
    if !req.tools.is_empty() {
        tools.push(GeminiTool {
            function_declarations: req
                .tools
                .iter()
                .map(|t| GeminiFunctionDeclaration {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    // `parametersJsonSchema` takes JSON Schema as clients write it;
                    // `parameters` is an OpenAPI subset that rejects common keywords
                    // such as `additionalProperties`.
                    parameters: None,
                    parameters_json_schema: Some(t.parameters.clone()),
                })
                .collect(),
            extra: Map::new(),
        });
    }
    tools.extend(extras.tools);
    let function_calling_config = if req.tools.is_empty() { None } else { req.tool_choice.as_ref().map(calling_config) };
    let tool_config = (function_calling_config.is_some() || !extras.tool_config.is_empty())
        .then(|| GeminiToolConfig { function_calling_config, extra: extras.tool_config });
    Ok(GeminiRequest {
        contents,
        system_instruction: (!system.is_empty()).then(|| GeminiContent { role: None, parts: system }),
        tools,
        tool_config,
        generation_config: generation_config(req, extras.generation_config),
        extra: extras.top,
    })
}

fn calling_config(choice: &ToolChoice) -> GeminiFunctionCallingConfig {
    let (mode, names) = match choice {
        ToolChoice::Auto => ("AUTO", Vec::new()),
        ToolChoice::None => ("NONE", Vec::new()),
        ToolChoice::Required => ("ANY", Vec::new()),
        ToolChoice::Tool { name } => ("ANY", vec![name.clone()]),
    };
    GeminiFunctionCallingConfig { mode: Some(mode.to_owned()), allowed_function_names: names }
}

fn generation_config(req: &ChatRequest, extra: Map<String, Value>) -> Option<GeminiGenerationConfig> {
    let (response_mime_type, response_json_schema) = match &req.response_format {
        None => (None, None),
        Some(ResponseFormat::Text) => (Some("text/plain"), None),
        Some(ResponseFormat::JsonObject) => (Some("application/json"), None),
        // Gemini has no name, description or strictness for the schema; the schema is enforced.
        Some(ResponseFormat::JsonSchema { schema, .. }) => (Some("application/json"), Some(schema.clone())),
    };
    let s = &req.sampling;
    let config = GeminiGenerationConfig {
        stop_sequences: req.stop.clone(),
        response_mime_type: response_mime_type.map(str::to_owned),
        response_schema: None,
        response_json_schema,
        candidate_count: req.n,
        max_output_tokens: req.max_tokens,
        temperature: s.temperature,
        top_p: s.top_p,
        top_k: s.top_k,
        seed: s.seed,
        presence_penalty: s.presence_penalty,
        frequency_penalty: s.frequency_penalty,
        extra,
    };
    (config != GeminiGenerationConfig::default()).then_some(config)
}

/// Request fields the gateway does not model, sorted into where they go on the wire.
/// They travel only to an upstream of the dialect they came from.
#[derive(Default)]
struct Extras {
    top: Map<String, Value>,
    generation_config: Map<String, Value>,
    tool_config: Map<String, Value>,
    tools: Vec<GeminiTool>,
}

impl Extras {
    fn split(req: &ChatRequest) -> Self {
        if req.extra_dialect != Some(Dialect::Gemini) {
            return Extras::default();
        }
        let mut top = req.extra.clone();
        // Members the typed request owns would be written twice.
        for typed in ["contents", "systemInstruction"] {
            top.remove(typed);
        }
        let mut object = |key: &str| match top.remove(key) {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let generation_config = object(GENERATION_CONFIG);
        let tool_config = object(TOOL_CONFIG);
        let tools = match top.remove(TOOLS) {
            Some(Value::Array(tools)) => tools.into_iter().filter_map(|t| serde_json::from_value(t).ok()).collect(),
            _ => Vec::new(),
        };
        Extras { top, generation_config, tool_config, tools }
    }
}

fn system_to_wire(parts: &[ContentPart]) -> Result<Vec<GeminiPart>, String> {
    Ok(crate::dialects::system_texts(parts)?.into_iter().map(|text| GeminiPart::text(text.to_owned())).collect())
}

/// Canonical parts of one request turn as Gemini parts; see [`with_signatures`] for
/// thinking parts. Tool calls are sent without their ids (see [`result_to_wire`]).
fn parts_to_wire<'a>(content: &'a [ContentPart], surface: GeminiSurface, calls: &mut Vec<(&'a str, &'a str)>) -> Result<Vec<GeminiPart>, String> {
    with_signatures(content, |part| {
        Ok(Some(match part {
            // Gemini rejects blank text parts.
            ContentPart::Text { text } if text.is_empty() => return Ok(None),
            // Encrypted reasoning from another vendor means nothing to Gemini.
            ContentPart::RedactedThinking { .. } | ContentPart::Thinking { .. } => return Ok(None),
            ContentPart::Text { text } => GeminiPart::text(text.clone()),
            ContentPart::Image { source, .. } => media_to_wire(source, surface, "images")?,
            ContentPart::Document { source, .. } => media_to_wire(source, surface, "documents")?,
            ContentPart::ToolUse { id, name, input } => {
                calls.push((id, name));
                let call = GeminiFunctionCall { id: None, name: name.clone(), args: tool_args(input)? };
                GeminiPart { function_call: Some(call), ..GeminiPart::default() }
            }
            ContentPart::ToolResult { tool_use_id, content, is_error } => result_to_wire(tool_use_id, content, *is_error, calls)?,
        }))
    })
}

/// Converts parts with `convert`, except thinking parts: one with text is a thought
/// part; one with a signature but no text is the signature of the part after it, and
/// is put back there (see the module docs); one with neither carries nothing.
pub(super) fn with_signatures<'a>(
    content: &'a [ContentPart],
    mut convert: impl FnMut(&'a ContentPart) -> Result<Option<GeminiPart>, String>,
) -> Result<Vec<GeminiPart>, String> {
    let mut parts = Vec::with_capacity(content.len());
    let mut pending: Option<String> = None;
    for part in content {
        match part {
            ContentPart::Thinking { text, signature } if text.is_empty() => {
                if let Some(signature) = signature {
                    flush_signature(&mut parts, pending.replace(signature.clone()));
                }
            }
            ContentPart::Thinking { text, signature } => {
                flush_signature(&mut parts, pending.take());
                parts.push(GeminiPart { text: Some(text.clone()), thought: Some(true), thought_signature: signature.clone(), ..GeminiPart::default() });
            }
            other => {
                if let Some(mut wire) = convert(other)? {
                    wire.thought_signature = pending.take();
                    parts.push(wire);
                }
            }
        }
    }
    flush_signature(&mut parts, pending);
    Ok(parts)
}

/// A signature with no part after it to carry it goes on an empty text part, which
/// is how Gemini itself sends one at the end of a stream.
fn flush_signature(parts: &mut Vec<GeminiPart>, signature: Option<String>) {
    if let Some(signature) = signature {
        parts.push(GeminiPart { text: Some(String::new()), thought_signature: Some(signature), ..GeminiPart::default() });
    }
}

/// Gemini 3 requires the first function call of a model turn to carry its thought
/// signature; a turn whose calls have none (from another model, or a client that
/// dropped it) gets the documented skip value.
fn sign_first_function_call(parts: &mut [GeminiPart]) {
    let mut calls = parts.iter_mut().filter(|p| p.function_call.is_some());
    let Some(first) = calls.next() else { return };
    if first.thought_signature.is_none() && calls.all(|p| p.thought_signature.is_none()) {
        first.thought_signature = Some(SKIP_THOUGHT_SIGNATURE.to_owned());
    }
}

/// Gemini wants the arguments as a JSON object; arguments a model wrote as text are
/// parsed.
fn tool_args(input: &Value) -> Result<Option<Value>, String> {
    match input {
        Value::Null => Ok(None),
        Value::Object(_) => Ok(Some(input.clone())),
        Value::String(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(parsed @ Value::Object(_)) => Ok(Some(parsed)),
            _ => Err("tool call arguments that are not a JSON object".to_owned()),
        },
        _ => Err("tool call arguments that are not a JSON object".to_owned()),
    }
}

/// Gemini matches a function response to its call by the function's name, not by an
/// id (ids are optional and the gateway does not send them: a call's id may have been
/// made up by another vendor or by the gateway). The name is that of the nearest
/// earlier tool call with the result's id.
fn result_to_wire(tool_use_id: &str, content: &[ContentPart], is_error: bool, calls: &[(&str, &str)]) -> Result<GeminiPart, String> {
    let name = calls
        .iter()
        .rev()
        .find(|(id, _)| *id == tool_use_id)
        .map(|(_, name)| (*name).to_owned())
        .ok_or_else(|| format!("a tool result for '{tool_use_id}' whose tool call is not earlier in the conversation (Gemini matches results to calls by function name)"))?;
    let mut text = String::new();
    for part in content {
        match part {
            ContentPart::Text { text: t } => text.push_str(t),
            other => return Err(format!("a {} part inside a tool result", other.kind_name())),
        }
    }
    let key = if is_error { GEMINI_ERROR_KEY } else { GEMINI_OUTPUT_KEY };
    let response = json!({ key: text });
    Ok(GeminiPart { function_response: Some(GeminiFunctionResponse { id: None, name, response }), ..GeminiPart::default() })
}

fn media_to_wire(source: &MediaSource, surface: GeminiSurface, what: &str) -> Result<GeminiPart, String> {
    let url = match source {
        MediaSource::Base64 { media_type, data } => {
            let blob = GeminiBlob { mime_type: media_type.clone(), data: data.clone() };
            return Ok(GeminiPart { inline_data: Some(blob), ..GeminiPart::default() });
        }
        MediaSource::Url { url } => url,
    };
    let mime_type = media_type_of_uri(url).map(str::to_owned);
    let file = match surface {
        GeminiSurface::DeveloperApi if url.starts_with(FILES_API_PREFIX) => GeminiFileData { mime_type, file_uri: url.clone() },
        GeminiSurface::DeveloperApi => return Err(format!("{what} by URL (the Gemini API takes inline bytes or a Files API URI)")),
        GeminiSurface::VertexAi if ["gs://", "https://", "http://"].iter().any(|s| url.starts_with(s)) => {
            // Vertex AI requires the MIME type of a file reference.
            let mime_type = mime_type.ok_or_else(|| format!("{what} by URL whose type cannot be told from the URL ({url})"))?;
            GeminiFileData { mime_type: Some(mime_type), file_uri: url.clone() }
        }
        GeminiSurface::VertexAi => return Err(format!("{what} by URL other than gs:// or http(s):// ({url})")),
    };
    Ok(GeminiPart { file_data: Some(file), ..GeminiPart::default() })
}

const MEDIA_TYPES: [(&str, &str); 13] = [
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("heic", "image/heic"),
    ("heif", "image/heif"),
    ("pdf", "application/pdf"),
    ("txt", "text/plain"),
    ("csv", "text/csv"),
    ("html", "text/html"),
    ("md", "text/markdown"),
    ("mp4", "video/mp4"),
];

/// The MIME type a URL's file extension implies.
fn media_type_of_uri(uri: &str) -> Option<&'static str> {
    let path = uri.split(['?', '#']).next().unwrap_or(uri);
    let file = path.rsplit('/').next().unwrap_or(path);
    let (_, extension) = file.rsplit_once('.')?;
    let extension = extension.to_ascii_lowercase();
    MEDIA_TYPES.iter().find(|(e, _)| *e == extension).map(|(_, m)| *m)
}

// ---- decoding (a Gemini front door, property tests) ----

/// Decodes a Gemini request body into the canonical form. The model and streaming come
/// from the URL, not the body. Errors name the field at fault (`contents[1].parts[0]`).
pub fn decode_request(wire: GeminiRequest, model: &str, stream: bool) -> Result<ChatRequest, ApiError> {
    if wire.contents.is_empty() {
        return Err(invalid("contents", "'contents' must contain at least one turn."));
    }
    let mut system = Vec::new();
    if let Some(instruction) = wire.system_instruction {
        for (j, part) in instruction.parts.into_iter().enumerate() {
            match part.text {
                Some(text) if part.inline_data.is_none() && part.file_data.is_none() => system.push(ContentPart::Text { text }),
                _ => return Err(invalid(format!("systemInstruction.parts[{j}]"), "The system instruction may hold only text.")),
            }
        }
    }
    let mut history = History::default();
    let mut messages = Vec::with_capacity(wire.contents.len());
    for (i, content) in wire.contents.into_iter().enumerate() {
        // The Gemini API refuses a turn with no parts; so does the gateway.
        if content.parts.is_empty() {
            return Err(invalid(format!("contents[{i}].parts"), "Each turn must contain at least one part."));
        }
        messages.push(history.message(i, content)?);
    }
    let mut extra = wire.extra;
    let (tools, extra_tools) = tools_from_wire(wire.tools);
    if !extra_tools.is_empty() {
        extra.insert(TOOLS.to_owned(), Value::Array(extra_tools));
    }
    let tool_choice = match wire.tool_config {
        None => None,
        Some(config) => {
            if !config.extra.is_empty() {
                extra.insert(TOOL_CONFIG.to_owned(), Value::Object(config.extra));
            }
            config.function_calling_config.map(choice_from_wire).transpose()?.flatten()
        }
    };
    let config = wire.generation_config.unwrap_or_default();
    // Gemini's documented ranges; a value outside them must not reach a vendor that
    // would clamp or refuse it differently.
    if let Some(t) = config.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
        return Err(invalid("generationConfig.temperature", format!("'temperature' must be between 0 and 2; got {t}.")));
    }
    if let Some(p) = config.top_p.filter(|p| !(0.0..=1.0).contains(p)) {
        return Err(invalid("generationConfig.topP", format!("'topP' must be between 0 and 1; got {p}.")));
    }
    let response_format = response_format_from_wire(&config)?;
    if !config.extra.is_empty() {
        extra.insert(GENERATION_CONFIG.to_owned(), Value::Object(config.extra));
    }
    Ok(ChatRequest {
        model: model.to_owned(),
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: None,
        sampling: Sampling {
            temperature: config.temperature,
            top_p: config.top_p,
            top_k: config.top_k,
            seed: config.seed,
            presence_penalty: config.presence_penalty,
            frequency_penalty: config.frequency_penalty,
        },
        max_tokens: config.max_output_tokens,
        stop: config.stop_sequences,
        response_format,
        n: config.candidate_count,
        stream,
        // Gemini reports usage on every answer.
        include_usage: stream,
        user: None,
        metadata: None,
        extra_dialect: (!extra.is_empty()).then_some(Dialect::Gemini),
        extra,
    })
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::new(400, ErrorCategory::InvalidRequest, message).with_param(param)
}

/// Function declarations become tools; built-in tools (`googleSearch`, …) are kept as
/// they came, for a Gemini upstream.
fn tools_from_wire(wire: Vec<GeminiTool>) -> (Vec<Tool>, Vec<Value>) {
    let mut tools = Vec::new();
    let mut extra = Vec::new();
    for tool in wire {
        for declaration in tool.function_declarations {
            tools.push(Tool {
                name: declaration.name,
                description: declaration.description,
                parameters: declaration
                    .parameters_json_schema
                    .or(declaration.parameters)
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                strict: None,
            });
        }
        if !tool.extra.is_empty() {
            extra.push(Value::Object(tool.extra));
        }
    }
    (tools, extra)
}

fn choice_from_wire(config: GeminiFunctionCallingConfig) -> Result<Option<ToolChoice>, ApiError> {
    let param = "toolConfig.functionCallingConfig";
    let mut names = config.allowed_function_names;
    Ok(match config.mode.as_deref() {
        None => None,
        Some("AUTO") => Some(ToolChoice::Auto),
        Some("NONE") => Some(ToolChoice::None),
        Some("ANY") if names.is_empty() => Some(ToolChoice::Required),
        Some("ANY") if names.len() == 1 => names.pop().map(|name| ToolChoice::Tool { name }),
        Some("ANY") => {
            return Err(invalid(format!("{param}.allowedFunctionNames"), "Restricting calls to several functions is not supported by the gateway; name one."))
        }
        Some(other) => return Err(invalid(format!("{param}.mode"), format!("Function calling mode '{other}' is not supported by the gateway."))),
    })
}

fn response_format_from_wire(config: &GeminiGenerationConfig) -> Result<Option<ResponseFormat>, ApiError> {
    let schema = config.response_json_schema.clone().or_else(|| config.response_schema.clone());
    Ok(match (config.response_mime_type.as_deref(), schema) {
        (_, Some(schema)) => Some(ResponseFormat::JsonSchema { name: "response".to_owned(), schema, strict: None, description: None }),
        (None, None) => None,
        (Some("text/plain"), None) => Some(ResponseFormat::Text),
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        (Some(other), None) => {
            return Err(invalid("generationConfig.responseMimeType", format!("Response type '{other}' is not supported by the gateway.")))
        }
    })
}

/// The conversation so far, as far as decoding tool calls needs it: ids are given to
/// calls that came without one, and results without an id are matched to the oldest
/// unanswered call of their function.
#[derive(Default)]
struct History {
    calls: Vec<(String, String, bool)>,
}

impl History {
    fn message(&mut self, i: usize, content: GeminiContent) -> Result<Message, ApiError> {
        let role = match content.role.as_deref() {
            Some("model") => Role::Assistant,
            // `function` is what early versions of the API called tool-result turns.
            None | Some("user") | Some("function") => Role::User,
            Some(other) => return Err(invalid(format!("contents[{i}].role"), format!("Role '{other}' is not 'user' or 'model'."))),
        };
        let mut parts = Vec::with_capacity(content.parts.len());
        for (j, part) in content.parts.into_iter().enumerate() {
            self.part(&format!("contents[{i}].parts[{j}]"), part, &mut parts)?;
        }
        // A user turn of nothing but tool results is what other dialects call a tool turn.
        let role = if role == Role::User && !parts.is_empty() && parts.iter().all(|p| matches!(p, ContentPart::ToolResult { .. })) {
            Role::Tool
        } else {
            role
        };
        Ok(Message { role, content: parts, name: None })
    }

    fn part(&mut self, param: &str, part: GeminiPart, out: &mut Vec<ContentPart>) -> Result<(), ApiError> {
        let signature = part.thought_signature.filter(|s| s != SKIP_THOUGHT_SIGNATURE);
        if part.thought == Some(true) {
            out.push(ContentPart::Thinking { text: part.text.unwrap_or_default(), signature });
            return Ok(());
        }
        let signed = signature.is_some();
        if let Some(signature) = signature {
            out.push(ContentPart::Thinking { text: String::new(), signature: Some(signature) });
        }
        if let Some(text) = part.text {
            if !text.is_empty() {
                out.push(ContentPart::Text { text });
            }
        } else if let Some(blob) = part.inline_data {
            out.push(media_part(&blob.mime_type, MediaSource::Base64 { media_type: blob.mime_type.clone(), data: blob.data }));
        } else if let Some(file) = part.file_data {
            let mime_type = file.mime_type.unwrap_or_default();
            out.push(media_part(&mime_type, MediaSource::Url { url: file.file_uri }));
        } else if let Some(call) = part.function_call {
            let id = call.id.unwrap_or_else(|| tool_call_id(None, "", self.calls.len()));
            self.calls.push((id.clone(), call.name.clone(), false));
            out.push(ContentPart::ToolUse { id, name: call.name, input: call.args.unwrap_or_else(|| Value::Object(Map::new())) });
        } else if let Some(response) = part.function_response {
            out.push(self.result(param, response)?);
        } else if let Some(kind) = part.extra.keys().next() {
            return Err(invalid(param, format!("Parts of kind '{kind}' are not supported by the gateway.")));
        } else if !signed {
            // The Gemini API refuses a part with no data as well.
            return Err(invalid(param, "A part must hold one of text, inlineData, fileData, functionCall or functionResponse."));
        }
        Ok(())
    }

    fn result(&mut self, param: &str, response: GeminiFunctionResponse) -> Result<ContentPart, ApiError> {
        let call = match &response.id {
            Some(id) => self.calls.iter_mut().find(|(call_id, _, _)| call_id == id),
            None => self.calls.iter_mut().find(|(_, name, answered)| *name == response.name && !answered),
        };
        let Some(call) = call else {
            return Err(invalid(param, format!("No earlier functionCall of '{}' matches this functionResponse.", response.name)));
        };
        call.2 = true;
        let (content, is_error) = result_content(response.response);
        Ok(ContentPart::ToolResult { tool_use_id: call.0.clone(), content, is_error })
    }
}

/// `{"output": "…"}` and `{"error": "…"}` are a result's text; any other response is
/// the result, as JSON text.
fn result_content(response: Value) -> (Vec<ContentPart>, bool) {
    if let Value::Object(map) = &response {
        if map.len() == 1 {
            for (key, is_error) in [(GEMINI_OUTPUT_KEY, false), (GEMINI_ERROR_KEY, true)] {
                if let Some(Value::String(text)) = map.get(key) {
                    let content = if text.is_empty() { Vec::new() } else { vec![ContentPart::Text { text: text.clone() }] };
                    return (content, is_error);
                }
            }
        }
    }
    (vec![ContentPart::Text { text: response.to_string() }], false)
}

/// Images by their MIME type; everything else (PDFs, text, audio, video) is a document.
/// A file reference without a MIME type is taken for an image.
pub(super) fn media_part(mime_type: &str, source: MediaSource) -> ContentPart {
    if mime_type.is_empty() || mime_type.starts_with("image/") {
        ContentPart::Image { source, detail: None }
    } else {
        ContentPart::Document { source, title: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_come_from_the_file_extension() {
        assert_eq!(media_type_of_uri("gs://bucket/cat.JPG"), Some("image/jpeg"));
        assert_eq!(media_type_of_uri("https://example.com/a/report.pdf?sig=abc"), Some("application/pdf"));
        assert_eq!(media_type_of_uri("https://example.com/a.b/file"), None);
    }

    #[test]
    fn only_the_first_unsigned_function_call_of_a_turn_gets_the_skip_value() {
        let call = |name: &str| GeminiPart {
            function_call: Some(GeminiFunctionCall { id: None, name: name.to_owned(), args: None }),
            ..GeminiPart::default()
        };
        let mut parts = vec![GeminiPart::text("hi"), call("a"), call("b")];
        sign_first_function_call(&mut parts);
        let signatures: Vec<_> = parts.iter().map(|p| p.thought_signature.as_deref()).collect();
        assert_eq!(signatures, vec![None, Some(SKIP_THOUGHT_SIGNATURE), None]);

        let mut signed = vec![call("a"), GeminiPart { thought_signature: Some("sig".to_owned()), ..call("b") }];
        sign_first_function_call(&mut signed);
        assert_eq!(signed[0].thought_signature, None, "a turn that has a real signature is left as it is");
    }
}
