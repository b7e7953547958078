//! What every HTTP adapter does the same way with its upstream: send an attempt and
//! classify a refusal ([`send`]), and read a streamed answer into stream items
//! ([`items`]).
//!
//! The stream loop is generic twice over: over how the body is cut into frames
//! ([`Framing`]: server-sent events for OpenAI, Anthropic and Gemini, AWS eventstream
//! for Bedrock) and over how one frame decodes ([`FrameDecode`], one per adapter). The
//! loop owns reading, framing errors, passthrough and the rule that a stream never ends
//! silently: it ends with `MessageStop` or an error. What an upstream's errors mean stays
//! in its adapter, which passes it in as `classify` or returns it from its decoder.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, Request};
use http_body_util::Full;

use super::bedrock::eventstream::{FrameDecoder, StreamMessage};
use super::transport::{HttpClient, HttpResponse};
use super::{ErrorKind, ItemStream, StreamItem, UpstreamError};
use crate::canonical::StreamEvent;
use crate::dialects::sse::{SseDecoder, SseEvent};

/// Sends one attempt's request. It returns as soon as the upstream accepted it (headers
/// received); the pipeline bounds the whole attempt, body included, with one timer. An error status is read whole and handed, with its headers, to
/// the adapter's `classify`: only the adapter knows what its upstream's errors mean.
pub(super) async fn send(
    http: &HttpClient,
    request: Request<Full<Bytes>>,
    classify: impl FnOnce(u16, &HeaderMap, &[u8]) -> UpstreamError,
) -> Result<HttpResponse, UpstreamError> {
    let response = http.send(request).await?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    // A refusal whose body cannot be read is still classified, by status and headers.
    let body = response.bytes().await.unwrap_or_default();
    Err(classify(status.as_u16(), &headers, &body))
}

/// How a streamed body is cut into frames, as its bytes arrive in reads that split
/// frames anywhere.
pub(super) trait Framing: Send + 'static {
    type Frame;
    /// Buffers bytes as they were read from the body.
    fn push(&mut self, bytes: &[u8]);
    /// The next complete frame, `Ok(None)` when more bytes are needed. An error means
    /// the body is corrupt and cannot be resynchronised.
    fn next_frame(&mut self) -> Result<Option<Self::Frame>, String>;
    /// Whether bytes of an unfinished frame are buffered: a body ending now was cut.
    fn has_partial(&self) -> bool;
    /// How many bytes of unfinished frames are held, waiting for the rest.
    fn buffered(&self) -> usize;
    /// The frame's payload as a passthrough client would receive it, or `None` for
    /// framings whose frames are never passed through.
    fn raw(frame: &Self::Frame) -> Option<String>;
}

/// Server-sent events (`dialects::sse`).
#[derive(Default)]
pub(super) struct SseFraming {
    decoder: SseDecoder,
    /// Events already cut from the body; the loop takes them all before reading on.
    ready: VecDeque<SseEvent>,
}

impl Framing for SseFraming {
    type Frame = SseEvent;

    fn push(&mut self, bytes: &[u8]) {
        self.ready.extend(self.decoder.push(bytes));
    }

    fn next_frame(&mut self) -> Result<Option<SseEvent>, String> {
        Ok(self.ready.pop_front())
    }

    fn has_partial(&self) -> bool {
        self.decoder.has_partial()
    }

    fn buffered(&self) -> usize {
        self.decoder.buffered()
    }

    fn raw(event: &SseEvent) -> Option<String> {
        Some(event.data.clone())
    }
}

/// AWS eventstream (`bedrock::eventstream`), each frame read as the message it carries.
#[derive(Default)]
pub(super) struct EventstreamFraming(FrameDecoder);

impl Framing for EventstreamFraming {
    type Frame = StreamMessage;

    fn push(&mut self, bytes: &[u8]) {
        self.0.push(bytes);
    }

    fn next_frame(&mut self) -> Result<Option<StreamMessage>, String> {
        self.0.next_message()?.map(StreamMessage::from_message).transpose()
    }

    fn has_partial(&self) -> bool {
        self.0.has_partial()
    }

    fn buffered(&self) -> usize {
        self.0.buffered()
    }

    /// Frames are binary, and no front door speaks an eventstream dialect.
    fn raw(_: &StreamMessage) -> Option<String> {
        None
    }
}

/// What one upstream frame decoded into.
#[derive(Default)]
pub(super) struct Decoded {
    pub events: Vec<StreamEvent>,
    /// Whether a passthrough client should see this frame's payload verbatim.
    pub forward: bool,
    /// The upstream said the message is complete; nothing after this is read.
    pub finished: bool,
    /// Cumulative usage reported by this frame.
    pub usage: Option<crate::canonical::Usage>,
}

/// One adapter's reading of its upstream's stream, one frame at a time.
pub(super) trait FrameDecode: Send + 'static {
    type Frame;
    /// Decodes one frame. An error ends the stream.
    fn event(&mut self, frame: &Self::Frame) -> Result<Decoded, UpstreamError>;
    /// The body ended, whole, before a finishing frame: the closing events if the answer
    /// was nevertheless complete, or the error saying it was cut ([`ended_early`]).
    fn end(&mut self) -> Result<Vec<StreamEvent>, UpstreamError>;
}

/// The error for a body that ended before the answer was complete.
pub(super) fn ended_early(provider: &str) -> UpstreamError {
    UpstreamError::new(ErrorKind::StreamCut, format!("{provider}: the stream ended before the answer was complete"))
}

struct State<F, D> {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, UpstreamError>> + Send>>,
    framing: F,
    decoder: D,
    queue: VecDeque<Result<StreamItem, UpstreamError>>,
    passthrough: bool,
    provider: String,
    /// The most bytes of unfinished frames held before the stream is failed.
    limit: usize,
    ended: bool,
}

/// Streams the items of an upstream's streamed response. `passthrough` says whether the
/// client speaks the upstream's dialect, so frames the decoder forwards keep their payload.
pub(super) fn items<F, D>(response: HttpResponse, framing: F, decoder: D, passthrough: bool, provider: &str) -> ItemStream
where
    F: Framing,
    D: FrameDecode<Frame = F::Frame>,
{
    let limit = response.answer_limit();
    let state = State {
        body: response.into_stream().boxed(),
        framing,
        decoder,
        queue: VecDeque::new(),
        passthrough,
        provider: provider.to_owned(),
        limit,
        ended: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    })
    .boxed()
}

impl<F, D> State<F, D>
where
    F: Framing,
    D: FrameDecode<Frame = F::Frame>,
{
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
                    self.framing.push(&bytes);
                    self.drain_frames();
                    self.refuse_oversized_frame();
                }
                Some(Err(err)) => {
                    self.ended = true;
                    return Some(Err(UpstreamError::new(ErrorKind::StreamCut, format!("{}: {}", self.provider, err.message))));
                }
                None => {
                    self.ended = true;
                    return self.end_of_body();
                }
            }
        }
    }

    /// Decodes every complete frame, stopping at the first that ends the stream.
    fn drain_frames(&mut self) {
        while !self.ended {
            match self.framing.next_frame() {
                Ok(Some(frame)) => self.decode(&frame),
                Ok(None) => return,
                Err(e) => self.fail(UpstreamError::new(ErrorKind::Protocol, format!("{}: {e}", self.provider))),
            }
        }
    }

    fn decode(&mut self, frame: &F::Frame) {
        match self.decoder.event(frame) {
            Ok(decoded) => {
                let raw = if self.passthrough && decoded.forward { F::raw(frame) } else { None };
                if decoded.finished {
                    self.ended = true;
                }
                if raw.is_some() || !decoded.events.is_empty() || decoded.usage.is_some() {
                    self.queue.push_back(Ok(StreamItem { events: decoded.events, raw, usage: decoded.usage }));
                }
            }
            Err(e) => self.fail(e),
        }
    }

    /// Fails the stream when the unfinished frame it holds has grown past the limit: an
    /// upstream that never ends an event must not fill the gateway's memory.
    fn refuse_oversized_frame(&mut self) {
        if !self.ended && self.framing.buffered() > self.limit {
            let message = format!("{}: a stream event is larger than the provider's max_answer_bytes ({} bytes)", self.provider, self.limit);
            self.fail(UpstreamError::new(ErrorKind::TooLarge, message));
        }
    }

    fn fail(&mut self, error: UpstreamError) {
        self.queue.push_back(Err(error));
        self.ended = true;
    }

    /// The body ended before a finishing frame. Half a frame means it was cut, whatever
    /// the decoder has seen; otherwise the decoder says whether the answer was complete.
    fn end_of_body(&mut self) -> Option<Result<StreamItem, UpstreamError>> {
        if self.framing.has_partial() {
            let message = format!("{}: the stream ended in the middle of an event", self.provider);
            return Some(Err(UpstreamError::new(ErrorKind::StreamCut, message)));
        }
        match self.decoder.end() {
            Ok(events) if events.is_empty() => None,
            Ok(events) => Some(Ok(StreamItem { events, raw: None, usage: None })),
            Err(e) => Some(Err(e)),
        }
    }
}
