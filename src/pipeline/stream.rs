//! The client's side of a streamed answer: upstream items in, encoded bytes out, the
//! settlement finished exactly once when the stream ends, breaks or is abandoned.
//!
//! Failover is over by the time this runs: bytes have reached the client. A fault now
//! ends the stream with an error event in the client's dialect — never a silent stop
//! that would read as a complete answer — and the ledger keeps the partial usage.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::{Settlement, StreamReply};
use crate::canonical::{ApiError, ErrorCategory, StreamEvent};
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
    };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if state.finished {
                return None;
            }
            let mut out = BytesMut::new();
            match state.next_item().await {
                Ok(item) => state.encode(item, &mut out),
                Err(error) => state.fail(&error, &mut out),
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
        match tokio::time::timeout(self.idle_timeout, self.rest.next()).await {
            Ok(Some(item)) => item,
            Ok(None) => Err(UpstreamError::new(ErrorKind::StreamCut, "the upstream stream ended before the answer was complete")),
            Err(_) => Err(UpstreamError::new(ErrorKind::StreamIdle, format!("no stream event for {:?}", self.idle_timeout))),
        }
    }

    fn encode(&mut self, item: StreamItem, out: &mut BytesMut) {
        self.settlement.observe(&item.events);
        if let Some(raw) = &item.raw {
            self.encoder.raw(raw, out);
        }
        for event in &item.events {
            self.encoder.event(event, out);
            if let StreamEvent::MessageStop = event {
                self.settlement.finish(Outcome::Success, 200);
                self.finished = true;
            }
        }
    }

    fn fail(&mut self, error: &UpstreamError, out: &mut BytesMut) {
        tracing::warn!(request_id = self.settlement.request_id(), error = %error, "stream broke after the answer had started");
        self.settlement.stream_failed(error);
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
}
