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

