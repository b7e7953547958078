//! The client's side of a streamed answer: upstream items in, encoded bytes out, the
//! settlement finished exactly once when the stream ends, breaks or is abandoned.
//!
//! Failover is over by the time this runs: bytes have reached the client. A fault now
//! ends the stream with an error event in the client's dialect — never a silent stop
//! that would read as a complete answer — and the ledger keeps the partial usage. On
//! a route with `stream_recovery = "continue"`, a broken text answer is instead
//! continued by another target and spliced into the same client stream: its text
//! extends the open text block, its other blocks get fresh indexes, and both parts
//! are billed.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::{Recovery, Settlement, StreamReply};
use crate::canonical::{ApiError, BlockDelta, BlockStart, ErrorCategory, StreamEvent};
use crate::dialects::StreamEncoder;
use crate::ledger::Outcome;
use crate::providers::{ErrorKind, ItemStream, StreamItem, UpstreamError};

struct State {
    first: VecDeque<StreamItem>,
    rest: ItemStream,
    encoder: Box<dyn StreamEncoder>,
    settlement: Settlement,
    idle_timeout: Duration,
    finished: bool,
    recovery: Option<Recovery>,
    /// The answer's text so far, to continue from (and to estimate unreported usage).
    partial_text: String,
    /// The client-side index of the text block still open, if any.
    open_text_block: Option<usize>,
    /// One past the highest block index the client has seen.
    next_index: usize,
    saw_tool_use: bool,
    /// While a continuation is spliced in: how its block indexes map to the client's.
    splice: Option<Splice>,
    shutdown: tokio_util::sync::CancellationToken,
}

struct Splice {
    /// Added to the continuation's block indexes.
    offset: usize,
    /// The client's open text block the continuation's first text block extends.
    text_block: Option<usize>,
    /// The continuation's block index that was folded into `text_block`.
    folded: Option<usize>,
}

impl Splice {
    /// Rewrites one continuation event for the client's stream, or drops it.
    fn map(&mut self, event: StreamEvent) -> Option<StreamEvent> {
        match event {
            // The client already has its message start.
            StreamEvent::MessageStart { .. } => None,
            StreamEvent::BlockStart { index, block: BlockStart::Text } if self.folded.is_none() && self.text_block.is_some() => {
                self.folded = Some(index);
                None
            }
            StreamEvent::BlockStart { index, block } => Some(StreamEvent::BlockStart { index: self.index(index), block }),
            StreamEvent::BlockDelta { index, delta } => Some(StreamEvent::BlockDelta { index: self.index(index), delta }),
            StreamEvent::BlockStop { index } => Some(StreamEvent::BlockStop { index: self.index(index) }),
            other => Some(other),
        }
    }

    fn index(&self, index: usize) -> usize {
        match (self.folded, self.text_block) {
            (Some(folded), Some(ours)) if folded == index => ours,
            _ => self.offset + index,
        }
    }
}

/// The byte stream to send the client.
pub fn client_stream(reply: StreamReply, encoder: Box<dyn StreamEncoder>) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    let state = State {
        first: reply.first.into(),
        rest: reply.rest,
        encoder,
        settlement: reply.settlement,
        idle_timeout: reply.idle_timeout,
        finished: false,
        recovery: reply.recovery,
        partial_text: String::new(),
        open_text_block: None,
        next_index: 0,
        saw_tool_use: false,
        splice: None,
        shutdown: reply.shutdown,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if state.finished {
                return None;
            }
            let mut out = BytesMut::new();
            match state.next_item().await {
                Ok(item) => state.encode(item, &mut out),
                Err(error) => state.fail(&error, &mut out).await,
            }
            if !out.is_empty() {
                return Some((Ok(out.freeze()), state));
            }
        }
    })
}

impl State {
    async fn next_item(&mut self) -> Result<StreamItem, UpstreamError> {
        if let Some(item) = self.first.pop_front() {
            return Ok(item);
        }
        let next = tokio::time::timeout(self.idle_timeout, self.rest.next());
        tokio::select! {
            next = next => match next {
                Ok(Some(item)) => item,
                Ok(None) => Err(UpstreamError::new(ErrorKind::StreamCut, "the upstream stream ended before the answer was complete")),
                Err(_) => Err(UpstreamError::new(ErrorKind::StreamIdle, format!("no stream event for {:?}", self.idle_timeout))),
            },
            _ = self.shutdown.cancelled() => {
                Err(UpstreamError::new(ErrorKind::StreamCut, "the gateway shut down before the answer was complete"))
            }
        }
    }

    fn encode(&mut self, item: StreamItem, out: &mut BytesMut) {
        self.settlement.observe(&item.events);
        if let Some(usage) = &item.usage {
            self.settlement.observe_usage(usage);
        }
        let events = match &mut self.splice {
            Some(splice) => item.events.into_iter().filter_map(|e| splice.map(e)).collect(),
            None => {
                if let Some(raw) = &item.raw {
                    self.encoder.raw(raw, out);
                }
                item.events
            }
        };
        for event in &events {
            self.track(event);
            self.encoder.event(event, out);
            if let StreamEvent::MessageStop = event {
                self.settlement.finish(Outcome::Success, 200);
                self.finished = true;
            }
        }
    }

    /// Remembers what the client has seen, for continuations and usage estimates.
    fn track(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::BlockStart { index, block } => {
                self.next_index = self.next_index.max(index + 1);
                match block {
                    BlockStart::Text => self.open_text_block = Some(*index),
                    BlockStart::ToolUse { .. } => self.saw_tool_use = true,
                    BlockStart::Thinking | BlockStart::RedactedThinking { .. } => {}
                }
            }
            StreamEvent::BlockDelta { delta: BlockDelta::Text { text }, .. } => self.partial_text.push_str(text),
            StreamEvent::BlockStop { index } if self.open_text_block == Some(*index) => self.open_text_block = None,
            _ => {}
        }
    }

    async fn fail(&mut self, error: &UpstreamError, out: &mut BytesMut) {
        tracing::warn!(request_id = self.settlement.request_id().as_ref(), error = %error, "stream broke after the answer had started");
        self.settlement.stream_failed(error, crate::pipeline::tokens::text_tokens(&self.partial_text));
        if self.try_continue().await {
            return;
        }
        self.settlement.finish(Outcome::StreamError, 200);
        let api = ApiError::new(
            502,
            ErrorCategory::Upstream,
            format!("The upstream failed after the answer had started, so it is incomplete: {error}"),
        )
        .with_code("stream_interrupted");
        self.encoder.error(&api, out);
        self.finished = true;
    }

    /// On a `continue` route, switches to another target's continuation of a text
    /// answer. Tool calls are not continued: half a JSON argument can't be resumed.
    async fn try_continue(&mut self) -> bool {
        let Some(recovery) = self.recovery.as_mut() else { return false };
        if self.saw_tool_use || self.shutdown.is_cancelled() {
            return false;
        }
        match recovery.resume(&self.partial_text, &mut self.settlement).await {
            Ok((first, rest)) => {
                tracing::info!(request_id = self.settlement.request_id().as_ref(), "continuing the broken stream on another target");
                self.first = first.into();
                self.rest = rest;
                self.splice = Some(Splice { offset: self.next_index, text_block: self.open_text_block, folded: None });
                true
            }
            Err(e) => {
                tracing::warn!(request_id = self.settlement.request_id().as_ref(), error = %e, "could not continue the broken stream");
                false
            }
        }
    }
}
