//! The one loop that turns an upstream's SSE body into stream items, shared by every
//! adapter whose upstream streams server-sent events. Each adapter supplies only how
//! one event decodes ([`SseDecode`]); the loop owns reading, framing, passthrough and
//! the rule that a stream never ends silently: it ends with `MessageStop` or an error.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::StreamExt;

use super::{ErrorKind, ItemStream, StreamItem, UpstreamError};
use crate::canonical::StreamEvent;
use crate::dialects::sse::{SseDecoder, SseEvent};

/// What one upstream event decoded into.
pub(super) struct Decoded {
    pub events: Vec<StreamEvent>,
    /// Whether a passthrough client should see this event's payload verbatim.
    pub forward: bool,
    /// The upstream said the message is complete; nothing after this is read.
    pub finished: bool,
    /// Cumulative usage reported by this event.
    pub usage: Option<crate::canonical::Usage>,
}

pub(super) trait SseDecode: Send + 'static {
    /// Decodes one event. An error ends the stream.
    fn event(&mut self, event: &SseEvent) -> Result<Decoded, UpstreamError>;
    /// The body ended before a finishing event: the closing events if the answer was
    /// nevertheless complete, or the error saying it was cut.
    fn end(&mut self) -> Result<Vec<StreamEvent>, UpstreamError>;
}

struct State<D> {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
    sse: SseDecoder,
    decoder: D,
    queue: VecDeque<Result<StreamItem, UpstreamError>>,
    passthrough: bool,
    provider: String,
    ended: bool,
}

/// Streams the items of an upstream SSE response.
pub(super) fn sse_items<D: SseDecode>(response: reqwest::Response, decoder: D, passthrough: bool, provider: &str) -> ItemStream {
    let state = State {
        body: response.bytes_stream().boxed(),
        sse: SseDecoder::new(),
        decoder,
        queue: VecDeque::new(),
        passthrough,
        provider: provider.to_owned(),
        ended: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    })
    .boxed()
}

impl<D: SseDecode> State<D> {
    async fn next(&mut self) -> Option<Result<StreamItem, UpstreamError>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Some(Ok(bytes)) => {
                    for event in self.sse.push(&bytes) {
                        self.decode(&event);
                        if self.ended {
                            break;
                        }
                    }
                }
                Some(Err(e)) => {
                    self.ended = true;
                    let err = UpstreamError::from_transport(&e);
                    return Some(Err(UpstreamError::new(ErrorKind::StreamCut, format!("{}: {}", self.provider, err.message))));
                }
                None => {
                    self.ended = true;
                    if self.sse.has_partial() {
                        let message = format!("{}: the stream ended in the middle of an event", self.provider);
                        return Some(Err(UpstreamError::new(ErrorKind::StreamCut, message)));
                    }
                    return match self.decoder.end() {
                        Ok(events) if events.is_empty() => None,
                        Ok(events) => Some(Ok(StreamItem { events, raw: None, usage: None })),
                        Err(e) => Some(Err(e)),
                    };
                }
            }
        }
    }

    fn decode(&mut self, event: &SseEvent) {
        match self.decoder.event(event) {
            Ok(decoded) => {
                let raw = (self.passthrough && decoded.forward).then(|| event.data.clone());
                if decoded.finished {
                    self.ended = true;
                }
                if raw.is_some() || !decoded.events.is_empty() || decoded.usage.is_some() {
                    self.queue.push_back(Ok(StreamItem { events: decoded.events, raw, usage: decoded.usage }));
                }
            }
            Err(e) => {
                self.queue.push_back(Err(e));
                self.ended = true;
            }
        }
    }
}
