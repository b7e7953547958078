//! Settlement: turning a request's attempts into exactly one ledger entry, with its
//! cost, and into metrics.
//!
//! A [`Settlement`] is created when a request is routed and finished exactly once: by
//! the pipeline for complete answers and errors, by the stream when it ends, or by
//! `Drop` when a client goes away mid-stream. So every request that reached an
//! upstream is in the ledger once, whatever happens to the connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Inbound, RouteState, TargetFacts};
use crate::canonical::{Dialect, StreamEvent, Usage};
use crate::ledger::{AttemptOutcome, AttemptRecord, LedgerEntry, LedgerHandle, Outcome, PriceCatalog, RequestRecord};
use crate::providers::UpstreamError;
use crate::routing::{AttemptGuard, AttemptLog, AttemptReport, AttemptResult};

pub struct Settlement {
    /// Attempts the failover engine has started, recorded as they begin so that a
    /// request dropped mid-failover still lists them; turned into ledger rows by
    /// [`Settlement::absorb`].
    pub(super) pending: Vec<AttemptLog>,
    /// The route's configuration, per-target billing facts, metric handles and target
    /// health.
    route: Arc<RouteState>,
    ledger: LedgerHandle,
    prices: Arc<PriceCatalog>,
    request: RequestRecord,
    attempts: Vec<AttemptRecord>,
    /// Per attempt: its route target's index.
    targets: Vec<usize>,
    /// The attempt whose answer the client is getting.
    answering: Option<usize>,
    answer_started: Option<Instant>,
    started: Instant,
    done: bool,
    /// The model named in the upstream's answer.
    answered_model: Option<String>,
    /// Route and target concurrency slots, released when the request is over.
    permits: Vec<tokio::sync::OwnedSemaphorePermit>,
    /// The answering stream's claim on its target's health: reported when the stream
    /// ends (complete, broken) or, dropped with the settlement, as cancelled.
    stream_health: Option<AttemptGuard>,
}

impl Settlement {
    /// For a request that started at `started` (the wall clock is read here, once: the
    /// attempts' start times and the request id's timestamp are derived from it).
    pub(super) fn new(
        inbound: &Inbound,
        started: Instant,
        route: Arc<RouteState>,
        ledger: LedgerHandle,
        prices: Arc<PriceCatalog>,
    ) -> Settlement {
        let started_at = chrono::Utc::now();
        let request = RequestRecord {
            started_at,
            stream: inbound.request.stream,
            ..blank_request(Names { id: request_id(started_at), route: route.name.clone(), key_id: inbound.key_id.clone(), front_door: front_door_name(inbound.front_door) })
        };
        Settlement { pending: Vec::new(), route, ledger, prices, request, attempts: Vec::new(), targets: Vec::new(), answering: None, answer_started: None, started, done: false, answered_model: None, permits: Vec::new(), stream_health: None }
    }

    /// The ledger id of the request (shared: replies that outlive the settlement keep it).
    pub fn request_id(&self) -> &Arc<str> {
        &self.request.id
    }

    /// Keeps a concurrency slot until the request is over.
    pub(super) fn hold(&mut self, permit: Option<tokio::sync::OwnedSemaphorePermit>) {
        self.permits.extend(permit);
    }

    /// Turns the attempts logged so far into ledger rows.
    pub(super) fn absorb(&mut self) {
        // Exactly what is needed: a record is a few hundred bytes, and a vector's first
        // growth (to four) would be a large allocation for what is usually one attempt.
        self.attempts.reserve_exact(self.pending.len());
        self.targets.reserve_exact(self.pending.len());
        let route = self.route.clone();
        for log in std::mem::take(&mut self.pending) {
            let Some(facts) = route.targets.get(log.target) else { continue };
            self.attempt(log.target, facts, &log);
        }
    }

    fn attempt(&mut self, index: usize, facts: &TargetFacts, log: &AttemptLog) {
        let error = log.error();
        if log.result == AttemptResult::Success {
            self.answering = Some(self.attempts.len());
            self.answer_started = Some(log.started);
        }
        if let (Some(error), None) = (error, &self.request.failover_reason) {
            self.request.failover_reason = Some(error.kind.as_str().to_owned());
        }
        self.targets.push(index);
        self.attempts.push(AttemptRecord {
            request_id: self.request.id.clone(),
            index: self.attempts.len() as u32,
            target: facts.label.clone(),
            provider: facts.provider.clone(),
            provider_kind: facts.kind.clone(),
            model: facts.model.clone(),
            started_at: self.wall_clock(log.started),
            latency_ms: log.elapsed.as_millis() as u64,
            ttft_ms: None,
            usage: Usage::default(),
            cost_micros: 0,
            priced: false,
            outcome: match log.result {
                AttemptResult::Success => AttemptOutcome::Success,
                AttemptResult::Failed(_) => AttemptOutcome::Failed,
                AttemptResult::Cancelled => AttemptOutcome::Cancelled,
            },
            error_kind: match &log.result {
                AttemptResult::Failed(e) => Some(e.kind.as_str().to_owned()),
                AttemptResult::Cancelled => Some("hedge_lost".to_owned()),
                AttemptResult::Success => None,
            },
            status: error.and_then(|e| e.status),
            retry_after_ms: error.and_then(|e| e.retry_after).map(|d| d.as_millis() as u64),
        });
    }

    /// The wall-clock time of `instant`, a moment of this request (never before its start).
    fn wall_clock(&self, instant: Instant) -> chrono::DateTime<chrono::Utc> {
        let since_start = chrono::TimeDelta::from_std(instant.saturating_duration_since(self.started)).unwrap_or_default();
        self.request.started_at.checked_add_signed(since_start).unwrap_or(self.request.started_at)
    }

    /// Sets the answering attempt's HTTP status and usage (complete answers).
    pub(super) fn answered(&mut self, status: u16, usage: Usage, ttft: Option<Duration>) {
        if let Some(attempt) = self.answering.and_then(|i| self.attempts.get_mut(i)) {
            attempt.status = Some(status);
            attempt.usage = usage;
            attempt.ttft_ms = ttft.map(|d| d.as_millis() as u64);
        }
    }

    pub(super) fn stream_started(&mut self, status: u16, ttft: Duration, health: AttemptGuard) {
        self.answered(status, Usage::default(), Some(ttft));
        self.stream_health = Some(health);
    }

    /// Folds a stream's usage reports into the answering attempt, and notes the model
    /// the upstream says answered.
    pub fn observe(&mut self, events: &[StreamEvent]) {
        let Some(attempt) = self.answering.and_then(|i| self.attempts.get_mut(i)) else { return };
        for event in events {
            match event {
                StreamEvent::MessageStart { usage, model, .. } => {
                    attempt.usage.merge_max(usage);
                    if !model.is_empty() {
                        self.answered_model = Some(model.clone());
                    }
                }
                StreamEvent::MessageDelta { usage, .. } => attempt.usage.merge_max(usage),
                _ => {}
            }
        }
    }

    /// The model the upstream said answered (it may name a dated snapshot of the
    /// configured model); the ledger records it for the request.
    pub(super) fn answered_by(&mut self, model: &str) {
        if !model.is_empty() {
            self.answered_model = Some(model.to_owned());
        }
    }

    /// Folds a cumulative usage report into the answering attempt.
    pub fn observe_usage(&mut self, usage: &Usage) {
        if let Some(attempt) = self.answering.and_then(|i| self.attempts.get_mut(i)) {
            attempt.usage.merge_max(usage);
        }
    }

    /// The answering stream broke after the client started receiving it. Upstreams
    /// that report usage only at the end reported none: the output is then billed at
    /// `estimated_output` tokens, counted from the text the client received.
    pub fn stream_failed(&mut self, error: &UpstreamError, estimated_output: u64) {
        if let Some(health) = self.stream_health.take() {
            health.report(AttemptReport::Failure(error.clone()));
        }
        if let Some(attempt) = self.answering.and_then(|i| self.attempts.get_mut(i)) {
            if attempt.usage.output_tokens == 0 {
                attempt.usage.output_tokens = estimated_output;
            }
            attempt.outcome = AttemptOutcome::Failed;
            attempt.error_kind = Some(error.kind.as_str().to_owned());
        }
    }

    /// Prices every attempt, writes the ledger entry and the metrics. Idempotent.
    pub fn finish(&mut self, outcome: Outcome, status: u16) {
        if self.done {
            return;
        }
        self.done = true;
        match self.stream_health.take() {
            Some(health) if outcome == Outcome::Success => health.report(AttemptReport::Completed),
            // Any other end drops the guard, which reports a cancellation: a client
            // that left says nothing about the target (a break was reported already).
            _ => {}
        }
        self.absorb();
        let now = Instant::now();
        let latency = now - self.started;
        if let (Some(i), Some(answer_started)) = (self.answering, self.answer_started) {
            if let Some(attempt) = self.attempts.get_mut(i) {
                // A streamed answer's attempt lasts until the stream ends.
                attempt.latency_ms = (now - answer_started).as_millis() as u64;
                if outcome == Outcome::Cancelled && attempt.outcome == AttemptOutcome::Success {
                    attempt.outcome = AttemptOutcome::Cancelled;
                }
            }
        }
        // Each attempt is priced at the rate in force when it started.
        for (attempt, &index) in self.attempts.iter_mut().zip(&self.targets) {
            let Some(target) = self.route.config.targets.get(index) else { continue };
            let catalog = self.route.provider(index).map_or("", |p| p.catalog.as_str());
            let model = target.priced_as.as_deref().unwrap_or(&target.model);
            if let Some(price) = self.prices.price_at(catalog, model, attempt.started_at) {
                attempt.cost_micros = price.cost_micros(&attempt.usage);
                attempt.priced = true;
            }
        }
        let request = &mut self.request;
        request.outcome = outcome;
        request.status = status;
        request.latency_ms = latency.as_millis() as u64;
        request.attempt_count = self.attempts.len() as u32;
        request.cost_micros = self.attempts.iter().map(|a| a.cost_micros).sum();
        let mut usage = Usage::default();
        for a in &self.attempts {
            usage.input_tokens += a.usage.input_tokens;
            usage.output_tokens += a.usage.output_tokens;
            usage.cache_read_tokens += a.usage.cache_read_tokens;
            usage.cache_write_tokens += a.usage.cache_write_tokens;
            usage.reasoning_tokens += a.usage.reasoning_tokens;
        }
        request.usage = usage;
        if let Some(answering) = self.answering.and_then(|i| self.attempts.get(i)) {
            request.target = Some(answering.target.clone());
            request.provider = Some(answering.provider.clone());
            request.provider_kind = Some(answering.provider_kind.clone());
            request.model = Some(self.answered_model.take().map_or_else(|| answering.model.clone(), Arc::from));
            request.ttft_ms = answering.ttft_ms;
        }
        self.metrics(latency);
        let attempts = std::mem::take(&mut self.attempts);
        self.targets.clear();
        // The record goes to the ledger; what stays behind is never read again.
        let names = Names { id: self.request.id.clone(), route: self.request.route.clone(), key_id: self.request.key_id.clone(), front_door: self.request.front_door.clone() };
        let request = std::mem::replace(&mut self.request, blank_request(names));
        self.ledger.record(LedgerEntry { request, attempts });
    }

    fn metrics(&self, latency: Duration) {
        let metrics = &self.route.metrics;
        metrics.request_finished(self.request.outcome.as_str(), latency);
        for (attempt, &index) in self.attempts.iter().zip(&self.targets) {
            let Some(target) = metrics.target(index) else { continue };
            target.attempt_finished(attempt.outcome.as_str(), Duration::from_millis(attempt.latency_ms));
            if let Some(ttft) = attempt.ttft_ms {
                target.time_to_first_token(Duration::from_millis(ttft));
            }
            target.consumption(&attempt.usage, attempt.cost_micros);
        }
    }
}

/// A new request id for a request that started at `started_at`: a uuid v7, hyphenated,
/// lower case (what the ledger's reports by time rely on), written straight into its
/// string. Ids made in one process sort in the order they were made, as
/// `Uuid::now_v7`'s do (the same kind of context, shared by every request).
fn request_id(started_at: chrono::DateTime<chrono::Utc>) -> Arc<str> {
    use std::panic::AssertUnwindSafe;
    use std::sync::Mutex;
    use uuid::timestamp::context::ContextV7;
    static CONTEXT: Mutex<AssertUnwindSafe<ContextV7>> = Mutex::new(AssertUnwindSafe(ContextV7::new()));
    let seconds = u64::try_from(started_at.timestamp()).unwrap_or(0);
    let timestamp = uuid::Timestamp::from_unix(&CONTEXT, seconds, started_at.timestamp_subsec_nanos());
    let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
    Arc::from(&*uuid::Uuid::new_v7(timestamp).hyphenated().encode_lower(&mut text))
}

/// The ledger's name of a front door's dialect, made once per dialect.
fn front_door_name(dialect: Dialect) -> Arc<str> {
    static NAMES: std::sync::LazyLock<[Arc<str>; 4]> = std::sync::LazyLock::new(|| {
        [Dialect::OpenAiChat, Dialect::AnthropicMessages, Dialect::BedrockConverse, Dialect::Gemini].map(|d| Arc::from(d.as_str()))
    });
    let index = match dialect {
        Dialect::OpenAiChat => 0,
        Dialect::AnthropicMessages => 1,
        Dialect::BedrockConverse => 2,
        Dialect::Gemini => 3,
    };
    NAMES[index].clone()
}

/// What names a request in the ledger, all shared.
struct Names {
    id: Arc<str>,
    route: Arc<str>,
    key_id: Arc<str>,
    front_door: Arc<str>,
}

/// A request record with nothing filled in but its names: making one allocates nothing.
fn blank_request(Names { id, route, key_id, front_door }: Names) -> RequestRecord {
    RequestRecord {
        id,
        started_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        route,
        key_id,
        front_door,
        stream: false,
        target: None,
        provider: None,
        provider_kind: None,
        model: None,
        usage: Usage::default(),
        cost_micros: 0,
        latency_ms: 0,
        ttft_ms: None,
        outcome: Outcome::Success,
        status: 0,
        attempt_count: 0,
        failover_reason: None,
    }
}

impl Drop for Settlement {
    /// A client that disconnects mid-stream drops its settlement: it is recorded as
    /// cancelled, with the usage seen so far.
    fn drop(&mut self) {
        if !self.done {
            self.finish(Outcome::Cancelled, 499);
        }
    }
}
