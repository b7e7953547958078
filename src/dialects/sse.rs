//! Server-sent events framing, shared by every dialect that streams over SSE.
//!
//! Hand-written rather than taken from a crate because the gateway needs two things
//! an event-source client hides: the exact `data` payload of each event (passthrough
//! forwards it unchanged), and whether the byte stream ended in the middle of an event
//! (a cut stream must not look like a finished one).

use bytes::{Buf, BytesMut};

/// One event: its `event:` name, if any, and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Incremental decoder: feed it bytes as they arrive, take out complete events.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: BytesMut,
    /// How much of `buf` is known to hold no line end, so that a long line arriving
    /// over many reads is scanned once, not once per read.
    scanned: usize,
    pending: SseEvent,
    has_pending: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buf[self.scanned..].iter().position(|&b| b == b'\n').map(|at| self.scanned + at) {
            let line_len = if end > 0 && self.buf[end - 1] == b'\r' { end - 1 } else { end };
            let line = String::from_utf8_lossy(&self.buf[..line_len]);
            if line.is_empty() {
                if self.has_pending {
                    events.push(std::mem::take(&mut self.pending));
                    self.has_pending = false;
                }
            } else {
                field(&mut self.pending, &mut self.has_pending, &line);
            }
            self.buf.advance(end + 1);
            self.scanned = 0;
        }
        self.scanned = self.buf.len();
        events
    }

    /// Whether bytes of an unfinished event are buffered: at end of stream, this means
    /// the stream was cut mid-event.
    pub fn has_partial(&self) -> bool {
        self.has_pending || !self.buf.is_empty()
    }

    /// How many bytes of the unfinished event are held: its unfinished line and the
    /// data of its lines before.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.pending.data.len()
    }
}

/// Adds one line's field to the event being read.
fn field(pending: &mut SseEvent, has_pending: &mut bool, line: &str) {
    if line.starts_with(':') {
        return; // a comment, e.g. a keep-alive
    }
    let (name, value) = match line.split_once(':') {
        Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
        None => (line, ""),
    };
    match name {
        "data" => {
            if *has_pending && !pending.data.is_empty() {
                pending.data.push('\n');
            }
            pending.data.push_str(value);
            *has_pending = true;
        }
        "event" => {
            pending.event = Some(value.to_owned());
            *has_pending = true;
        }
        _ => {} // id, retry: not used by any LLM API
    }
}

/// Appends one `data:` event.
pub fn write_data(out: &mut BytesMut, data: &str) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_are_reassembled() {
        let mut d = SseDecoder::new();
        assert!(d.push(b"data: {\"a\"").is_empty());
        let events = d.push(b":1}\r\n\r\nevent: ping\ndata: x\ndata: y\n\n: keepalive\n\n");
        assert_eq!(events, vec![
            SseEvent { event: None, data: "{\"a\":1}".into() },
            SseEvent { event: Some("ping".into()), data: "x\ny".into() },
        ]);
        assert!(!d.has_partial());
    }

    #[test]
    fn a_long_line_arriving_a_few_bytes_at_a_time_is_one_event_and_its_size_is_counted_while_it_grows() {
        let mut d = SseDecoder::new();
        let data = "x".repeat(10_000);
        let line = format!("data: {data}\r\n\r\n");
        let mut events = Vec::new();
        let mut most_held = 0;
        for piece in line.as_bytes().chunks(7) {
            events.extend(d.push(piece));
            most_held = most_held.max(d.buffered());
        }
        assert_eq!(events, vec![SseEvent { event: None, data }]);
        assert!(most_held >= 10_000, "held at most {most_held} bytes");
        assert_eq!(d.buffered(), 0);
        assert!(!d.has_partial());
    }

    #[test]
    fn a_stream_cut_mid_event_is_noticed() {
        let mut d = SseDecoder::new();
        d.push(b"data: {\"trunc");
        assert!(d.has_partial());
    }
}
