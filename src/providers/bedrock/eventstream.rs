//! `application/vnd.amazon.eventstream` framing: how ConverseStream delivers events.
//!
//! Each message is a 12-byte prelude (total length, headers length, prelude CRC32),
//! headers, a payload and a message CRC32
//! (<https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html>). Frames are
//! read and checked (both CRCs) by `aws-smithy-eventstream`; this module only buffers
//! the body as it arrives, in reads that split frames anywhere, and says what each
//! message is. It checks the prelude itself before waiting for a whole frame, so a
//! corrupted length is reported at once instead of waiting for bytes that never come.

use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Buf, Bytes, BytesMut};

const PRELUDE_LEN: usize = 12;
/// Prelude and message CRC.
const OVERHEAD_LEN: usize = 16;
/// Larger than any ConverseStream event (the format allows 16 MB of payload plus
/// headers); a length past this means the frame is corrupt.
const MAX_FRAME_LEN: usize = 24 * 1024 * 1024;

/// Incremental frame decoder over the bytes of a response body.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: BytesMut,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes as they were read from the body.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed. An error means
    /// the stream is corrupt (bad CRC, impossible length) and cannot be resynchronised.
    pub fn next_message(&mut self) -> Result<Option<Message>, String> {
        if self.buffer.len() < PRELUDE_LEN {
            return Ok(None);
        }
        let total_len = u32::from_be_bytes([self.buffer[0], self.buffer[1], self.buffer[2], self.buffer[3]]) as usize;
        let prelude_crc = u32::from_be_bytes([self.buffer[8], self.buffer[9], self.buffer[10], self.buffer[11]]);
        if crc32fast::hash(&self.buffer[..8]) != prelude_crc {
            return Err("an eventstream frame failed its prelude checksum".to_owned());
        }
        if !(OVERHEAD_LEN..=MAX_FRAME_LEN).contains(&total_len) {
            return Err(format!("an eventstream frame claims an impossible length ({total_len} bytes)"));
        }
        if self.buffer.len() < total_len {
            return Ok(None);
        }
        let mut frame = self.buffer.split_to(total_len).freeze();
        let message = read_message_from(&mut frame).map_err(|e| format!("a malformed eventstream frame: {e}"))?;
        if frame.has_remaining() {
            return Err("an eventstream frame's headers and payload do not add up to its length".to_owned());
        }
        Ok(Some(message))
    }

    /// Whether bytes of an unfinished frame are buffered: a body ending now was cut.
    pub fn has_partial(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// How many bytes of unfinished frames are buffered.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

/// What one eventstream message carries, by its `:message-type` header.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamMessage {
    /// `event`: a ConverseStream event (`:event-type`) with its JSON payload.
    Event { event_type: String, payload: Bytes },
    /// `exception`: a modelled error (`:exception-type`, e.g. `throttlingException`) with
    /// a JSON payload holding `message`.
    Exception { exception_type: String, payload: Bytes },
    /// `error`: an unmodelled error, described by `:error-code` and `:error-message`.
    Error { code: String, message: String },
}

impl StreamMessage {
    pub fn from_message(message: Message) -> Result<StreamMessage, String> {
        let header = |name: &str| -> Option<String> {
            message
                .headers()
                .iter()
                .find(|h| h.name().as_str() == name)
                .and_then(|h| h.value().as_string().ok())
                .map(|s| s.as_str().to_owned())
        };
        match header(":message-type").as_deref() {
            Some("event") => {
                let event_type = header(":event-type").ok_or("an event frame without ':event-type'")?;
                Ok(StreamMessage::Event { event_type, payload: message.payload().clone() })
            }
            Some("exception") => {
                let exception_type = header(":exception-type").ok_or("an exception frame without ':exception-type'")?;
                Ok(StreamMessage::Exception { exception_type, payload: message.payload().clone() })
            }
            Some("error") => Ok(StreamMessage::Error {
                code: header(":error-code").unwrap_or_default(),
                message: header(":error-message").unwrap_or_default(),
            }),
            Some(other) => Err(format!("an eventstream frame of unknown message type '{other}'")),
            None => Err("an eventstream frame without ':message-type'".to_owned()),
        }
    }
}

/// Frames an event the way Bedrock does (for mock upstreams and a future Converse
/// front door).
pub fn encode_event(event_type: &str, payload: &[u8]) -> Result<Bytes, String> {
    encode(vec![
        string_header(":event-type", event_type),
        string_header(":content-type", "application/json"),
        string_header(":message-type", "event"),
    ], payload)
}

/// Frames a modelled exception the way Bedrock does inside a stream.
pub fn encode_exception(exception_type: &str, payload: &[u8]) -> Result<Bytes, String> {
    encode(vec![
        string_header(":exception-type", exception_type),
        string_header(":content-type", "application/json"),
        string_header(":message-type", "exception"),
    ], payload)
}

fn string_header(name: &'static str, value: &str) -> Header {
    Header::new(name, HeaderValue::String(value.to_owned().into()))
}

fn encode(headers: Vec<Header>, payload: &[u8]) -> Result<Bytes, String> {
    let message = Message::new_from_parts(headers, Bytes::copy_from_slice(payload));
    let mut out = Vec::with_capacity(payload.len() + 128);
    write_message_to(&message, &mut out).map_err(|e| format!("could not frame the event: {e}"))?;
    Ok(Bytes::from(out))
}
