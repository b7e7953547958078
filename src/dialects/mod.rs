//! Wire formats: one module per dialect, each converting between its wire types and the
//! canonical types in both directions.
//!
//! A front door uses its dialect to decode requests and encode answers; a provider
//! adapter uses its upstream's dialect the other way round. Dialects import only
//! `canonical`, never providers, routing or HTTP plumbing.

pub mod anthropic_messages;
pub mod bedrock_converse;
pub mod gemini;
pub mod json;
pub mod openai_chat;
pub(crate) mod scan;
pub mod sse;

use bytes::BytesMut;

use crate::canonical::{ApiError, ContentPart, StreamEvent};

/// The texts of a system prompt, for dialects whose system field takes text only;
/// empty texts are left out, anything but text is refused by name.
pub(crate) fn system_texts(parts: &[ContentPart]) -> Result<Vec<&str>, String> {
    parts
        .iter()
        .filter(|part| !matches!(part, ContentPart::Text { text } if text.is_empty()))
        .map(|part| match part {
            ContentPart::Text { text } => Ok(text.as_str()),
            other => Err(format!("a {} part in the system prompt", other.kind_name())),
        })
        .collect()
}

/// Writes a streamed answer in a client's dialect. One per response stream.
pub trait StreamEncoder: Send {
    /// Encodes a canonical event.
    fn event(&mut self, event: &StreamEvent, out: &mut BytesMut);
    /// Forwards a payload the upstream sent in this same dialect, unchanged.
    fn raw(&mut self, data: &str, out: &mut BytesMut);
    /// Ends the stream with an error the client's SDK will raise.
    fn error(&mut self, error: &ApiError, out: &mut BytesMut);
}

impl StreamEncoder for openai_chat::ChunkEncoder {
    fn event(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        openai_chat::ChunkEncoder::event(self, event, out)
    }

    fn raw(&mut self, data: &str, out: &mut BytesMut) {
        openai_chat::ChunkEncoder::raw(self, data, out)
    }

    fn error(&mut self, error: &ApiError, out: &mut BytesMut) {
        openai_chat::ChunkEncoder::error(self, error, out)
    }
}

impl StreamEncoder for anthropic_messages::EventEncoder {
    fn event(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        anthropic_messages::EventEncoder::event(self, event, out)
    }

    /// `data` is an upstream event's data (its `type` names the event) or the whole
    /// `event:`/`data:` text; see [`anthropic_messages::EventEncoder::raw`].
    fn raw(&mut self, data: &str, out: &mut BytesMut) {
        anthropic_messages::EventEncoder::raw(self, data, out)
    }

    fn error(&mut self, error: &ApiError, out: &mut BytesMut) {
        anthropic_messages::EventEncoder::error(self, error, out)
    }
}
