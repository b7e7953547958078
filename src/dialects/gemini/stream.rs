//! `streamGenerateContent?alt=sse` chunks to and from canonical stream events.
//!
//! Each SSE `data` is a whole `GenerateContentResponse` holding the next parts of the
//! answer (<https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent>).
//! Gemini has no block boundaries: consecutive text parts continue one text block,
//! thought parts one thinking block, and a function call arrives complete in one part,
//! so it becomes a whole tool-use block (start, the arguments as one JSON delta, stop).
//! There is no end-of-stream marker either: a chunk with a `finishReason` (and the last
//! `usageMetadata`) comes last, and the caller ends the message with
//! [`GeminiStreamDecoder::finish`] when the body ends. A body that ends before any
//! finish reason was cut.

use serde_json::{json, Map, Value};

use super::request::SKIP_THOUGHT_SIGNATURE;
use super::response::{finish_reason, is_policy_block, prompt_blocked, stop_reason, tool_call_id, usage_from_wire, usage_to_wire, AnswerError};
use super::wire::*;
use crate::canonical::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenKind {
    Text,
    Thinking,
}

/// Turns Gemini stream chunks into canonical events. One per stream.
#[derive(Debug)]
pub struct GeminiStreamDecoder {
    /// The target's model id, for chunks without `modelVersion`.
    model: String,
    response_id: String,
    started: bool,
    next_block: usize,
    /// The text or thinking block parts are currently filling.
    open: Option<(usize, OpenKind)>,
    calls: usize,
    finish: Option<String>,
    usage: Usage,
    done: bool,
}

impl GeminiStreamDecoder {
    pub fn new(model: impl Into<String>) -> Self {
        GeminiStreamDecoder {
            model: model.into(),
            response_id: String::new(),
            started: false,
            next_block: 0,
            open: None,
            calls: 0,
            finish: None,
            usage: Usage::default(),
            done: false,
        }
    }

    /// Decodes one SSE `data` payload. An `error` object, a blocked prompt or a safety
    /// finish reason ends the stream with an [`AnswerError`].
    pub fn push(&mut self, data: &str) -> Result<Vec<StreamEvent>, AnswerError> {
        let value: Value = serde_json::from_str(data).map_err(|e| AnswerError::Malformed(format!("malformed stream chunk: {e}")))?;
        if let Some(error) = value.get("error") {
            let status = serde_json::from_value(error.clone()).unwrap_or_default();
            return Err(AnswerError::Upstream(status));
        }
        let chunk: GeminiResponse =
            serde_json::from_value(value).map_err(|e| AnswerError::Malformed(format!("malformed stream chunk: {e}")))?;
        let mut events = Vec::new();
        if self.done {
            return Ok(events);
        }
        if !self.started {
            self.started = true;
            self.response_id = chunk.response_id.clone().unwrap_or_default();
            let model = chunk.model_version.clone().unwrap_or_else(|| self.model.clone());
            events.push(StreamEvent::MessageStart { id: self.response_id.clone(), model, usage: Usage::default() });
        }
        if let Some(usage) = &chunk.usage_metadata {
            // Each chunk's usage is the running total; the last one is final.
            self.usage = usage_from_wire(usage);
        }
        if let Some(blocked) = prompt_blocked(&chunk) {
            return Err(blocked);
        }
        let Some(candidate) = chunk.candidates.into_iter().next() else {
            return Ok(events);
        };
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            self.part(part, &mut events);
        }
        if let Some(reason) = candidate.finish_reason {
            if is_policy_block(&reason) {
                return Err(AnswerError::Blocked { reason, message: candidate.finish_message });
            }
            self.close(&mut events);
            self.finish = Some(reason);
        }
        Ok(events)
    }

    fn part(&mut self, part: GeminiPart, events: &mut Vec<StreamEvent>) {
        let signature = part.thought_signature.filter(|s| s != SKIP_THOUGHT_SIGNATURE);
        if part.thought == Some(true) {
            let index = self.open_block(OpenKind::Thinking, events);
            if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                events.push(StreamEvent::BlockDelta { index, delta: BlockDelta::Thinking { text } });
            }
            if let Some(signature) = signature {
                events.push(StreamEvent::BlockDelta { index, delta: BlockDelta::ThinkingSignature { signature } });
            }
            return;
        }
        if let Some(signature) = signature {
            // The signature of the part it came with: a thinking block of its own, just before.
            self.close(events);
            let index = self.open_block(OpenKind::Thinking, events);
            events.push(StreamEvent::BlockDelta { index, delta: BlockDelta::ThinkingSignature { signature } });
            self.close(events);
        }
        if let Some(text) = part.text.filter(|t| !t.is_empty()) {
            let index = self.open_block(OpenKind::Text, events);
            events.push(StreamEvent::BlockDelta { index, delta: BlockDelta::Text { text } });
        } else if let Some(call) = part.function_call {
            self.close(events);
            let index = self.next_block;
            self.next_block += 1;
            let id = tool_call_id(call.id, &self.response_id, self.calls);
            self.calls += 1;
            let arguments = call.args.unwrap_or_else(|| Value::Object(Map::new())).to_string();
            events.push(StreamEvent::BlockStart { index, block: BlockStart::ToolUse { id, name: call.name } });
            events.push(StreamEvent::BlockDelta { index, delta: BlockDelta::ToolInputJson { partial_json: arguments } });
            events.push(StreamEvent::BlockStop { index });
        }
        // Media and parts the gateway does not model have no stream event; they are skipped.
    }

    /// Ends the message: closes what is open and reports stop reason and usage. Called
    /// by the caller when the body ends after a finish reason.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        if self.done {
            return events;
        }
        self.done = true;
        self.close(&mut events);
        let stop_reason = self.finish.as_deref().map(|r| stop_reason(r, self.calls > 0));
        events.push(StreamEvent::MessageDelta { stop_reason, stop_sequence: None, usage: self.usage });
        events.push(StreamEvent::MessageStop);
        events
    }

    /// Whether a finish reason arrived: a body that ends before one was cut.
    pub fn saw_finish_reason(&self) -> bool {
        self.finish.is_some()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    fn open_block(&mut self, kind: OpenKind, events: &mut Vec<StreamEvent>) -> usize {
        if let Some((index, open)) = self.open {
            if open == kind {
                return index;
            }
        }
        self.close(events);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, kind));
        let block = match kind {
            OpenKind::Text => BlockStart::Text,
            OpenKind::Thinking => BlockStart::Thinking,
        };
        events.push(StreamEvent::BlockStart { index, block });
        index
    }

    fn close(&mut self, events: &mut Vec<StreamEvent>) {
        if let Some((index, _)) = self.open.take() {
            events.push(StreamEvent::BlockStop { index });
        }
    }
}

/// Turns canonical events into Gemini stream chunks (each one SSE `data` payload), the
/// way Gemini writes them: content parts as they come, a function call whole when its
/// block closes, and the finish reason with the usage in the last chunk.
#[derive(Debug, Default)]
pub struct GeminiStreamEncoder {
    id: String,
    model: String,
    /// The tool call being assembled: id, name, arguments so far.
    tool: Option<(String, String, String)>,
}

impl GeminiStreamEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn event(&mut self, event: &StreamEvent) -> Vec<Value> {
        match event {
            StreamEvent::MessageStart { id, model, .. } => {
                self.id = id.clone();
                self.model = model.clone();
                Vec::new()
            }
            StreamEvent::BlockStart { block: BlockStart::ToolUse { id, name }, .. } => {
                self.tool = Some((id.clone(), name.clone(), String::new()));
                Vec::new()
            }
            // Gemini opens text and thought blocks with their first part; redacted
            // reasoning has no Gemini form.
            StreamEvent::BlockStart { .. } => Vec::new(),
            StreamEvent::BlockDelta { delta, .. } => match delta {
                BlockDelta::Text { text } => vec![self.chunk(json!({"text": text}), None)],
                BlockDelta::Thinking { text } => vec![self.chunk(json!({"text": text, "thought": true}), None)],
                BlockDelta::ThinkingSignature { signature } => {
                    vec![self.chunk(json!({"text": "", "thought": true, "thoughtSignature": signature}), None)]
                }
                BlockDelta::ToolInputJson { partial_json } => {
                    if let Some((_, _, arguments)) = &mut self.tool {
                        arguments.push_str(partial_json);
                    }
                    Vec::new()
                }
            },
            StreamEvent::BlockStop { .. } => match self.tool.take() {
                Some((id, name, arguments)) => {
                    let args: Value = if arguments.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&arguments).unwrap_or(Value::String(arguments))
                    };
                    vec![self.chunk(json!({"functionCall": {"id": id, "name": name, "args": args}}), None)]
                }
                None => Vec::new(),
            },
            StreamEvent::MessageDelta { stop_reason, usage, .. } => {
                let mut chunk = self.chunk_with_parts(Vec::new(), Some(finish_reason(*stop_reason)));
                chunk["usageMetadata"] = json!(usage_to_wire(usage));
                vec![chunk]
            }
            StreamEvent::MessageStop => Vec::new(),
        }
    }

    fn chunk(&self, part: Value, finish: Option<&str>) -> Value {
        self.chunk_with_parts(vec![part], finish)
    }

    fn chunk_with_parts(&self, parts: Vec<Value>, finish: Option<&str>) -> Value {
        let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(finish) = finish {
            candidate["finishReason"] = json!(finish);
        }
        json!({"candidates": [candidate], "modelVersion": self.model, "responseId": self.id})
    }
}
