//! What the gateway has learned about each target: circuit breakers, rate-limit
//! cooldowns, quota hints and latency. Shared by every request (and kept across config
//! reloads); keyed by target label (`provider/model`).
//!
//! Each configuration resolves its targets' [`TargetHealth`] handles once, so a request
//! locks only the state of the target it consults, never a map shared by every target:
//! no label is hashed on the request path, and requests to different targets do not
//! contend on one lock.
//!
//! A breaker opens after `consecutive_failures` upstream faults in a row, or when the
//! error rate over a sliding window passes `error_rate` (once `min_requests` were
//! seen). After `open_for` it lets `half_open_probes` requests through; a success closes
//! it, a failure opens it again. Rate limits are not breaker failures: a 429 puts the
//! target in cooldown for its `retry-after`, and quota headers that say the limit is
//! (nearly) used up steer traffic elsewhere before the 429 comes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::window::SlidingWindow;
use crate::config::BreakerPolicy;
use crate::providers::{ErrorKind, Fault, RateLimitHint, UpstreamError};

/// Weight of the newest latency sample in the moving average.
const EWMA_ALPHA: f64 = 0.3;
/// A 429 without `retry-after` cools the target down this long.
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(1);
/// Below this share of its quota left, a target is tried after the others.
const LOW_QUOTA_FRACTION: f64 = 0.05;

/// Every target's health handle, by label.
#[derive(Debug, Default)]
pub struct Health {
    targets: Mutex<HashMap<String, Arc<TargetHealth>>>,
}

/// One target's health: what the request path consults and reports to.
#[derive(Debug)]
pub struct TargetHealth {
    label: String,
    state: Mutex<TargetState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Circuit {
    Closed,
    Open,
    HalfOpen,
}

/// Whether a target can take an attempt now.
#[derive(Debug, Clone, PartialEq)]
pub enum Availability {
    Ready {
        /// The target's quota is nearly used up: try it after the others.
        low_quota: bool,
    },
    /// Not now: `reason` says why, `until` when that may change.
    Unavailable { reason: &'static str, until: Instant },
}

/// How an attempt ended, as far as the target's health is concerned.
#[derive(Debug, Clone)]
pub enum AttemptReport {
    Success { latency: Duration, ttft: Option<Duration>, rate_limit: Option<RateLimitHint> },
    /// A stream measured at its first content ([`AttemptGuard::established`]) ended
    /// complete: the success is counted only now, since until its end it could break.
    Completed,
    Failure(UpstreamError),
    /// Abandoned by the gateway (a lost hedge, a client that left): says nothing about the target.
    Cancelled,
}

#[derive(Debug)]
struct TargetState {
    policy: BreakerPolicy,
    circuit: Circuit,
    open_until: Instant,
    probes_in_flight: u32,
    consecutive_failures: u32,
    /// Recent outcomes, within the policy's window.
    window: SlidingWindow<Outcomes>,
    cooldown_until: Option<Instant>,
    quota: Option<(RateLimitHint, Instant)>,
    latency_ms: Option<f64>,
    ttft_ms: Option<f64>,
    /// The circuit state last written to the gauge, so it is written only on change.
    published: Option<Circuit>,
}

/// Successes and failures counted against a target.
#[derive(Debug, Default, Clone, Copy)]
struct Outcomes {
    succeeded: u32,
    failed: u32,
}

impl Outcomes {
    fn total(self) -> u32 {
        self.succeeded + self.failed
    }

    fn error_rate(self) -> f64 {
        if self.total() == 0 {
            0.0
        } else {
            f64::from(self.failed) / f64::from(self.total())
        }
    }
}

impl TargetState {
    fn new(policy: BreakerPolicy) -> Self {
        TargetState {
            window: SlidingWindow::new(policy.window, Instant::now()),
            policy,
            circuit: Circuit::Closed,
            open_until: Instant::now(),
            probes_in_flight: 0,
            consecutive_failures: 0,
            cooldown_until: None,
            quota: None,
            latency_ms: None,
            ttft_ms: None,
            published: None,
        }
    }

    fn availability(&mut self, now: Instant) -> Availability {
        if let Some(until) = self.cooldown_until {
            if now < until {
                return Availability::Unavailable { reason: "rate_limit_cooldown", until };
            }
            self.cooldown_until = None;
        }
        match self.circuit {
            Circuit::Open if now < self.open_until => {
                return Availability::Unavailable { reason: "circuit_open", until: self.open_until };
            }
            Circuit::Open => {
                self.set_circuit(Circuit::HalfOpen);
                self.probes_in_flight = 0;
            }
            Circuit::HalfOpen if self.probes_in_flight >= self.policy.half_open_probes => {
                return Availability::Unavailable { reason: "circuit_half_open_probing", until: now + Duration::from_millis(100) };
            }
            Circuit::HalfOpen | Circuit::Closed => {}
        }
        let mut low_quota = false;
        if let Some((hint, reset_at)) = &self.quota {
            if now >= *reset_at {
                self.quota = None;
            } else if hint.exhausted() {
                return Availability::Unavailable { reason: "quota_exhausted", until: *reset_at };
            } else {
                low_quota = hint.fraction_left().is_some_and(|f| f < LOW_QUOTA_FRACTION);
            }
        }
        Availability::Ready { low_quota }
    }

    fn record(&mut self, report: &AttemptReport, now: Instant) {
        let was_probe = self.circuit == Circuit::HalfOpen;
        if was_probe {
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
        }
        match report {
            AttemptReport::Cancelled => {}
            AttemptReport::Success { latency, ttft, rate_limit } => {
                self.measure(*latency, *ttft, rate_limit.clone(), now);
                self.succeeded(now);
            }
            AttemptReport::Completed => self.succeeded(now),
            AttemptReport::Failure(error) if error.kind == ErrorKind::RateLimited => {
                let wait = error.retry_after.unwrap_or(DEFAULT_COOLDOWN);
                self.cooldown_until = Some(now + wait);
            }
            AttemptReport::Failure(error) if counts_against_target(error) => {
                self.consecutive_failures += 1;
                self.push_outcome(now, false);
                if was_probe || self.should_open(now) {
                    self.open_until = now + self.policy.open_for;
                    self.set_circuit(Circuit::Open);
                }
            }
            AttemptReport::Failure(_) => {}
        }
    }

    fn succeeded(&mut self, now: Instant) {
        self.consecutive_failures = 0;
        self.push_outcome(now, true);
        self.set_circuit(Circuit::Closed);
    }

    /// Takes an answer's latency and quota headers, which say nothing yet about
    /// whether the attempt succeeds.
    fn measure(&mut self, latency: Duration, ttft: Option<Duration>, rate_limit: Option<RateLimitHint>, now: Instant) {
        self.latency_ms = Some(ewma(self.latency_ms, latency.as_secs_f64() * 1000.0));
        if let Some(ttft) = ttft {
            self.ttft_ms = Some(ewma(self.ttft_ms, ttft.as_secs_f64() * 1000.0));
        }
        self.quota = rate_limit.map(|hint| {
            let reset_at = now + hint.reset_after.unwrap_or(Duration::from_secs(1));
            (hint, reset_at)
        });
    }

    fn should_open(&self, now: Instant) -> bool {
        if self.consecutive_failures >= self.policy.consecutive_failures {
            return true;
        }
        let recent = self.recent(now);
        if recent.total() < self.policy.min_requests {
            return false;
        }
        recent.error_rate() >= self.policy.error_rate
    }

    fn push_outcome(&mut self, now: Instant, ok: bool) {
        let bucket = self.window.current(now);
        if ok {
            bucket.succeeded += 1;
        } else {
            bucket.failed += 1;
        }
    }

    /// The outcomes within the window at `now`.
    fn recent(&self, now: Instant) -> Outcomes {
        self.window.recent(now).fold(Outcomes::default(), |sum, b| Outcomes { succeeded: sum.succeeded + b.succeeded, failed: sum.failed + b.failed })
    }

    /// Takes a (reloaded) policy; a new window length starts the window afresh.
    fn set_policy(&mut self, policy: BreakerPolicy) {
        self.window.set_window(policy.window, Instant::now());
        self.policy = policy;
    }

    fn set_circuit(&mut self, circuit: Circuit) {
        self.circuit = circuit;
    }
}

/// Upstream and configuration faults say the target is unwell; the client's own
/// mistakes, rate limits and the gateway's own queueing do not.
fn counts_against_target(error: &UpstreamError) -> bool {
    error.kind.fault() != Fault::Client && !matches!(error.kind, ErrorKind::RateLimited | ErrorKind::Saturated | ErrorKind::Unavailable)
}

fn ewma(previous: Option<f64>, sample: f64) -> f64 {
    match previous {
        Some(p) => p + EWMA_ALPHA * (sample - p),
        None => sample,
    }
}

/// A target's state, for the admin API and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct TargetHealthView {
    pub target: String,
    pub circuit: Circuit,
    pub consecutive_failures: u32,
    pub recent_requests: usize,
    pub recent_error_rate: f64,
    /// Seconds until the circuit may half-open, when open.
    pub open_for_secs: Option<f64>,
    pub cooldown_secs: Option<f64>,
    pub latency_ewma_ms: Option<f64>,
    pub ttft_ewma_ms: Option<f64>,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
}

/// A claim on a target for one attempt: dropping it without [`AttemptGuard::report`]
/// counts as cancelled, so half-open probe slots are never leaked. A stream's guard is
/// kept until the stream ends, so that a stream that breaks after its first token
/// counts as the failure it is, not as a success followed by a failure.
pub struct AttemptGuard {
    target: Arc<TargetHealth>,
    reported: bool,
}

impl AttemptGuard {
    pub fn report(mut self, report: AttemptReport) {
        self.reported = true;
        self.target.record(&report);
    }

    /// A stream's first content arrived: its time to first token and quota headers are
    /// taken now; its outcome is reported when it ends.
    pub fn established(&self, ttft: Duration, rate_limit: Option<RateLimitHint>) {
        lock(&self.target.state).measure(ttft, Some(ttft), rate_limit, Instant::now());
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if !self.reported {
            self.target.record(&AttemptReport::Cancelled);
        }
    }
}

impl Health {
    pub fn new() -> Arc<Health> {
        Arc::new(Health::default())
    }

    /// The handle of the target labelled `label`, made on first use. `policy` becomes
    /// its breaker policy: a reloaded configuration may have changed it.
    pub fn target(&self, label: &str, policy: &BreakerPolicy) -> Arc<TargetHealth> {
        let mut targets = lock(&self.targets);
        let target = targets
            .entry(label.to_owned())
            .or_insert_with(|| Arc::new(TargetHealth { label: label.to_owned(), state: Mutex::new(TargetState::new(*policy)) }));
        lock(&target.state).set_policy(*policy);
        target.clone()
    }

    pub fn snapshot(&self) -> Vec<TargetHealthView> {
        let now = Instant::now();
        let targets: Vec<Arc<TargetHealth>> = lock(&self.targets).values().cloned().collect();
        let mut views: Vec<_> = targets.iter().map(|target| target.view(now)).collect();
        views.sort_by(|a, b| a.target.cmp(&b.target));
        views
    }
}

impl TargetHealth {
    /// Whether the target can take an attempt now (without claiming it).
    pub fn availability(&self) -> Availability {
        let mut state = lock(&self.state);
        let availability = state.availability(Instant::now());
        // Looking may move an open circuit to half-open: keep the gauge honest.
        publish(&self.label, &mut state);
        availability
    }

    /// Claims the target for one attempt, taking a half-open probe slot when probing.
    pub fn begin(self: &Arc<Self>) -> Result<AttemptGuard, Availability> {
        let mut state = lock(&self.state);
        match state.availability(Instant::now()) {
            Availability::Ready { .. } => {
                if state.circuit == Circuit::HalfOpen {
                    state.probes_in_flight += 1;
                }
                publish(&self.label, &mut state);
                Ok(AttemptGuard { target: self.clone(), reported: false })
            }
            unavailable => Err(unavailable),
        }
    }

    fn record(&self, report: &AttemptReport) {
        let mut state = lock(&self.state);
        state.record(report, Instant::now());
        publish(&self.label, &mut state);
    }

    /// The target's recent latency to first token (streams) or answer, in milliseconds.
    pub fn latency_ms(&self) -> Option<f64> {
        let state = lock(&self.state);
        state.ttft_ms.or(state.latency_ms)
    }

    fn view(&self, now: Instant) -> TargetHealthView {
        let s = lock(&self.state);
        let recent = s.recent(now);
        TargetHealthView {
            target: self.label.clone(),
            circuit: s.circuit,
            consecutive_failures: s.consecutive_failures,
            recent_requests: recent.total() as usize,
            recent_error_rate: recent.error_rate(),
            open_for_secs: (s.circuit == Circuit::Open).then(|| s.open_until.saturating_duration_since(now).as_secs_f64()),
            cooldown_secs: s.cooldown_until.filter(|u| *u > now).map(|u| (u - now).as_secs_f64()),
            latency_ewma_ms: s.latency_ms,
            ttft_ewma_ms: s.ttft_ms,
            remaining_requests: s.quota.as_ref().and_then(|(h, _)| h.remaining_requests),
            remaining_tokens: s.quota.as_ref().and_then(|(h, _)| h.remaining_tokens),
        }
    }
}

/// A panic while holding a health lock leaves plain counters behind; keep using them.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Keeps the breaker-state gauge current (0 closed, 1 half-open, 2 open), touching the
/// metrics registry only when the state changed: this runs on every attempt.
fn publish(target: &str, state: &mut TargetState) {
    if state.published == Some(state.circuit) {
        return;
    }
    state.published = Some(state.circuit);
    let value = match state.circuit {
        Circuit::Closed => 0.0,
        Circuit::HalfOpen => 1.0,
        Circuit::Open => 2.0,
    };
    metrics::gauge!("switchyard_circuit_state", "target" => target.to_owned()).set(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            consecutive_failures: 3,
            error_rate: 0.5,
            window: Duration::from_secs(30),
            min_requests: 10,
            open_for: Duration::from_secs(5),
            half_open_probes: 1,
        }
    }

    fn target() -> (Arc<Health>, Arc<TargetHealth>) {
        let health = Health::new();
        let target = health.target("t", &policy());
        (health, target)
    }

    fn fail(target: &Arc<TargetHealth>, kind: ErrorKind) {
        target.begin().unwrap().report(AttemptReport::Failure(UpstreamError::new(kind, "x")));
    }

    fn succeed(target: &Arc<TargetHealth>) {
        let report = AttemptReport::Success { latency: Duration::from_millis(100), ttft: None, rate_limit: None };
        target.begin().unwrap().report(report);
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_open_the_circuit_until_a_half_open_probe_succeeds() {
        let (health, t) = target();
        for _ in 0..3 {
            fail(&t, ErrorKind::ServerError);
        }
        assert!(matches!(t.availability(), Availability::Unavailable { reason: "circuit_open", .. }));
        tokio::time::advance(Duration::from_secs(5)).await;
        let probe = t.begin().expect("one probe is let through");
        assert!(t.begin().is_err(), "only one probe at a time");
        probe.report(AttemptReport::Success { latency: Duration::from_millis(10), ttft: None, rate_limit: None });
        assert_eq!(health.snapshot()[0].circuit, Circuit::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_the_circuit_again() {
        let (health, t) = target();
        for _ in 0..3 {
            fail(&t, ErrorKind::Timeout);
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        fail(&t, ErrorKind::Connect);
        assert_eq!(health.snapshot()[0].circuit, Circuit::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_probe_frees_its_slot() {
        let (_, t) = target();
        for _ in 0..3 {
            fail(&t, ErrorKind::ServerError);
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(t.begin().unwrap());
        assert!(t.begin().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_high_error_rate_opens_the_circuit_without_consecutive_failures() {
        let (health, t) = target();
        for _ in 0..5 {
            succeed(&t);
            fail(&t, ErrorKind::ServerError);
        }
        // Half of the last 10 failed, never two in a row.
        assert_eq!(health.snapshot()[0].circuit, Circuit::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_older_than_the_window_no_longer_count_toward_the_error_rate() {
        let (health, t) = target();
        for _ in 0..4 {
            succeed(&t);
            fail(&t, ErrorKind::ServerError);
        }
        let view = &health.snapshot()[0];
        assert_eq!((view.recent_requests, view.recent_error_rate), (8, 0.5));
        // The 30 s window, plus the width of one of its buckets.
        tokio::time::advance(Duration::from_millis(31_500)).await;
        assert_eq!(health.snapshot()[0].recent_requests, 0);
        succeed(&t);
        fail(&t, ErrorKind::ServerError);
        // Ten outcomes in 30 s would open the circuit; these are two.
        assert_eq!(health.snapshot()[0].circuit, Circuit::Closed);
        assert_eq!(health.snapshot()[0].recent_error_rate, 0.5);
    }

    #[tokio::test(start_paused = true)]
    async fn client_faults_and_rate_limits_never_open_the_circuit() {
        let (health, t) = target();
        for _ in 0..10 {
            fail(&t, ErrorKind::InvalidRequest);
        }
        assert_eq!(health.snapshot()[0].circuit, Circuit::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_cools_the_target_down_for_its_retry_after() {
        let (_, t) = target();
        let limited = UpstreamError::new(ErrorKind::RateLimited, "slow down").with_retry_after(Some(Duration::from_secs(2)));
        t.begin().unwrap().report(AttemptReport::Failure(limited));
        assert!(matches!(t.availability(), Availability::Unavailable { reason: "rate_limit_cooldown", .. }));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(t.availability(), Availability::Ready { low_quota: false });
    }

    #[tokio::test(start_paused = true)]
    async fn quota_headers_steer_away_before_the_limit_and_stop_at_zero() {
        let (_, t) = target();
        let hint = |remaining| RateLimitHint {
            limit_requests: Some(1000),
            remaining_requests: Some(remaining),
            limit_tokens: None,
            remaining_tokens: None,
            reset_after: Some(Duration::from_secs(10)),
        };
        let report = |remaining| AttemptReport::Success { latency: Duration::from_millis(1), ttft: None, rate_limit: Some(hint(remaining)) };
        t.begin().unwrap().report(report(10));
        assert_eq!(t.availability(), Availability::Ready { low_quota: true });
        t.begin().unwrap().report(report(0));
        assert!(matches!(t.availability(), Availability::Unavailable { reason: "quota_exhausted", .. }));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(t.availability(), Availability::Ready { low_quota: false });
    }

    #[tokio::test(start_paused = true)]
    async fn a_reloaded_configuration_keeps_what_was_learned_and_applies_its_new_policy() {
        let (health, before) = target();
        for _ in 0..3 {
            fail(&before, ErrorKind::ServerError);
        }
        // The reloaded configuration resolves the same label: same state, new policy.
        let stricter = BreakerPolicy { open_for: Duration::from_secs(60), ..policy() };
        let after = health.target("t", &stricter);
        assert!(Arc::ptr_eq(&before, &after));
        assert!(matches!(after.availability(), Availability::Unavailable { reason: "circuit_open", .. }));
        tokio::time::advance(Duration::from_secs(5)).await;
        let probe = after.begin().expect("the open period ends, the probe goes");
        probe.report(AttemptReport::Failure(UpstreamError::new(ErrorKind::ServerError, "still down")));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(
            matches!(before.availability(), Availability::Unavailable { reason: "circuit_open", .. }),
            "reopened for the new policy's 60 s, seen through the old configuration's handle too"
        );
        assert_eq!(health.snapshot().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probing_stream_decides_the_circuit_when_it_ends_not_at_its_first_token() {
        let (_, t) = target();
        for _ in 0..3 {
            fail(&t, ErrorKind::ServerError);
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        let probe = t.begin().expect("the open period is over: one probe goes");
        probe.established(Duration::from_millis(50), None);
        assert!(
            matches!(t.availability(), Availability::Unavailable { reason: "circuit_half_open_probing", .. }),
            "a first token proves nothing yet: the probe is still out"
        );
        probe.report(AttemptReport::Failure(UpstreamError::new(ErrorKind::StreamCut, "cut after the first token")));
        assert!(matches!(t.availability(), Availability::Unavailable { reason: "circuit_open", .. }));
    }
}
