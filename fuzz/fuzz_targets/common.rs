//! Shared by the fuzz targets (each includes it with `mod common;`).
//!
//! A decoder's output is canonical, so each target also pushes what it decoded
//! through every encoder the gateway could hand it to: a request accepted at one
//! front door may go to any upstream dialect, and a stream decoded from one upstream
//! may be re-encoded for any front door. A panic anywhere on that path is a bug.
#![allow(dead_code)]

use bytes::BytesMut;
use switchyard::canonical::{ChatRequest, StreamEvent};
use switchyard::dialects::sse::SseDecoder;
use switchyard::dialects::{anthropic_messages, bedrock_converse, gemini, openai_chat};
use switchyard::providers::bedrock::eventstream::{FrameDecoder, StreamMessage};

/// Splits `data` into reads the way a network might: the first byte picks the read
/// size (1..=32 bytes, or everything at once when it is 0), the rest is the body.
pub fn reads(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        None => (usize::MAX, &[]),
        Some((&0, rest)) => (usize::MAX, rest),
        Some((&first, rest)) => ((first as usize % 32) + 1, rest),
    }
}

/// SSE `data` payloads in `body`, fed in reads of `step` bytes.
pub fn sse_payloads(step: usize, body: &[u8]) -> Vec<(Option<String>, String)> {
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    let step = step.max(1).min(body.len().max(1));
    for read in body.chunks(step) {
        for event in decoder.push(read) {
            out.push((event.event, event.data));
        }
    }
    let _ = decoder.has_partial();
    out
}

/// A dialect's stream decoder, as its provider drives it over SSE `data` payloads.
pub trait SseStreamDecoder {
    /// Decodes one payload; an error ends the stream.
    fn push(&mut self, data: &str) -> Result<Vec<StreamEvent>, ()>;
    fn is_done(&self) -> bool;
    /// Whether the upstream said why it stopped: a body that ends now is complete.
    fn saw_end(&self) -> bool;
    fn finish(&mut self) -> Vec<StreamEvent>;
}

impl SseStreamDecoder for openai_chat::ChunkDecoder {
    /// `[DONE]` finishes the message, as the OpenAI provider does.
    fn push(&mut self, data: &str) -> Result<Vec<StreamEvent>, ()> {
        if data.trim() == "[DONE]" {
            return Ok(openai_chat::ChunkDecoder::finish(self));
        }
        openai_chat::ChunkDecoder::push(self, data).map_err(drop)
    }
    fn is_done(&self) -> bool {
        openai_chat::ChunkDecoder::is_done(self)
    }
    fn saw_end(&self) -> bool {
        self.saw_finish_reason()
    }
    fn finish(&mut self) -> Vec<StreamEvent> {
        openai_chat::ChunkDecoder::finish(self)
    }
}

impl SseStreamDecoder for anthropic_messages::EventDecoder {
    fn push(&mut self, data: &str) -> Result<Vec<StreamEvent>, ()> {
        anthropic_messages::EventDecoder::push(self, data).map_err(drop)
    }
    fn is_done(&self) -> bool {
        anthropic_messages::EventDecoder::is_done(self)
    }
    fn saw_end(&self) -> bool {
        self.saw_stop_reason()
    }
    fn finish(&mut self) -> Vec<StreamEvent> {
        anthropic_messages::EventDecoder::finish(self)
    }
}

impl SseStreamDecoder for gemini::GeminiStreamDecoder {
    fn push(&mut self, data: &str) -> Result<Vec<StreamEvent>, ()> {
        gemini::GeminiStreamDecoder::push(self, data).map_err(drop)
    }
    fn is_done(&self) -> bool {
        gemini::GeminiStreamDecoder::is_done(self)
    }
    fn saw_end(&self) -> bool {
        self.saw_finish_reason()
    }
    fn finish(&mut self) -> Vec<StreamEvent> {
        gemini::GeminiStreamDecoder::finish(self)
    }
}

/// Reads an SSE body (first byte: the read size, see [`reads`]) through `decoder` the
/// way the providers do: stop at the first error or when the decoder is done; a body
/// that ends after the upstream said why it stopped is complete, one that ends before
/// was cut. Returns every event decoded.
pub fn sse_events(data: &[u8], mut decoder: impl SseStreamDecoder) -> Vec<StreamEvent> {
    let (step, body) = reads(data);
    let mut events = Vec::new();
    for (_, payload) in sse_payloads(step, body) {
        match decoder.push(&payload) {
            Ok(more) => events.extend(more),
            Err(()) => return events,
        }
        if decoder.is_done() {
            return events;
        }
    }
    if decoder.saw_end() {
        events.extend(decoder.finish());
    }
    events
}

/// Reads an AWS eventstream body through `bedrock_converse::ConverseStreamDecoder` the
/// way the Bedrock provider does, in reads of `step` bytes: stop at the first frame or
/// event error; a body that ends after `messageStop` (and not inside a frame) is
/// complete. `well_formed`: the frames were made by `encode_event`, so one that fails to
/// decode is a bug, not a cut stream.
pub fn converse_events(step: usize, body: &[u8], well_formed: bool) -> Vec<StreamEvent> {
    let step = step.max(1).min(body.len().max(1));
    let mut frames = FrameDecoder::new();
    let mut decoder = bedrock_converse::ConverseStreamDecoder::new("fuzz-id", "fuzz-model");
    let mut events = Vec::new();
    for read in body.chunks(step) {
        frames.push(read);
        loop {
            let message = match frames.next_message() {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(e) if well_formed => panic!("frames encode_event made failed to decode: {e}"),
                Err(_) => return events,
            };
            let (event_type, payload) = match StreamMessage::from_message(message) {
                Ok(StreamMessage::Event { event_type, payload }) => (event_type, payload),
                Err(e) if well_formed => panic!("a frame encode_event made did not decode: {e}"),
                Ok(_) | Err(_) => return events,
            };
            match decoder.push(&event_type, &payload) {
                Ok(more) => events.extend(more),
                Err(_) => return events,
            }
            if decoder.is_done() {
                return events;
            }
        }
    }
    if !frames.has_partial() && decoder.saw_message_stop() {
        events.extend(decoder.finish());
    }
    events
}

/// Encodes a canonical request for every upstream dialect and serialises the result.
/// With `SWITCHYARD_FUZZ_ROUNDTRIP=1`, also decodes each encoded body with the same
/// dialect's decoder and fails if it is refused: what the gateway sends an upstream
/// should be what it would itself accept from a client of that dialect.
pub fn encode_everywhere(request: &ChatRequest) {
    static ROUNDTRIP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let roundtrip = *ROUNDTRIP.get_or_init(|| std::env::var("SWITCHYARD_FUZZ_ROUNDTRIP").is_ok_and(|v| v == "1"));
    let refused = |dialect: &str, body: &[u8], error: String| -> ! {
        panic!("{dialect}: the encoded request is refused by its own decoder: {error}\nbody: {}\nrequest: {request:#?}", String::from_utf8_lossy(body))
    };
    for field in [openai_chat::MaxTokensField::MaxTokens, openai_chat::MaxTokensField::MaxCompletionTokens] {
        for force_stream_usage in [false, true] {
            let options = openai_chat::EncodeOptions { max_tokens_field: field, force_stream_usage };
            if let Ok(wire) = openai_chat::encode_request(request, "fuzz-model", options) {
                let body = serde_json::to_vec(&wire).unwrap_or_default();
                if roundtrip {
                    if let Err(e) = openai_chat::decode_request(&body) {
                        refused("openai-chat", &body, format!("{e:?}"));
                    }
                }
            }
        }
    }
    for platform in [anthropic_messages::Platform::Anthropic, anthropic_messages::Platform::Vertex, anthropic_messages::Platform::Bedrock] {
        let options = anthropic_messages::EncodeOptions { platform, ..anthropic_messages::EncodeOptions::default() };
        if let Ok(wire) = anthropic_messages::encode_request(request, "fuzz-model", options) {
            let body = serde_json::to_vec(&wire).unwrap_or_default();
            // Only the first-party API carries the model in the body.
            if roundtrip && platform == anthropic_messages::Platform::Anthropic {
                if let Err(e) = anthropic_messages::decode_request(&body) {
                    refused("anthropic-messages", &body, format!("{e:?}"));
                }
            }
        }
        if let Ok(wire) = anthropic_messages::encode_count_tokens_request(request, "fuzz-model", options) {
            let _ = serde_json::to_vec(&wire);
        }
    }
    if let Ok(wire) = bedrock_converse::encode_request(request) {
        let body = serde_json::to_vec(&wire).unwrap_or_default();
        if roundtrip {
            let decoded = serde_json::from_slice::<bedrock_converse::ConverseRequest>(&body)
                .map_err(|e| e.to_string())
                .and_then(|w| bedrock_converse::decode_request(w, "fuzz-model", request.stream).map_err(|e| format!("{e:?}")));
            if let Err(e) = decoded {
                refused("bedrock-converse", &body, e);
            }
        }
    }
    for surface in [gemini::GeminiSurface::DeveloperApi, gemini::GeminiSurface::VertexAi] {
        if let Ok(wire) = gemini::encode_request(request, gemini::EncodeOptions { surface }) {
            let body = serde_json::to_vec(&wire).unwrap_or_default();
            if roundtrip {
                let decoded = serde_json::from_slice::<gemini::GeminiRequest>(&body)
                    .map_err(|e| e.to_string())
                    .and_then(|w| gemini::decode_request(w, "fuzz-model", request.stream).map_err(|e| format!("{e:?}")));
                if let Err(e) = decoded {
                    refused("gemini", &body, e);
                }
            }
        }
    }
}

/// Re-encodes decoded stream events for every client dialect.
pub fn reencode(events: &[StreamEvent]) {
    let mut out = BytesMut::new();
    let mut openai = openai_chat::ChunkEncoder::new("chatcmpl-fuzz".into(), 0, true, false);
    let mut anthropic = anthropic_messages::EventEncoder::new("msg_fuzz".into(), false);
    let mut converse = bedrock_converse::ConverseStreamEncoder::new();
    let mut gemini = gemini::GeminiStreamEncoder::new();
    for event in events {
        openai.event(event, &mut out);
        anthropic.event(event, &mut out);
        for (_, payload) in converse.event(event) {
            let _ = serde_json::to_vec(&payload);
        }
        for chunk in gemini.event(event) {
            let _ = serde_json::to_vec(&chunk);
        }
    }
}

