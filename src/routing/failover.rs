//! Failover over a planned order of targets, with per-target retries and optional
//! hedging.
//!
//! For each target in the plan: try; on a failure another attempt may fix, retry the
//! same target up to `retries` times with exponential backoff and jitter (or the
//! upstream's `retry-after`, when it is not longer than the route allows); then move
//! on. A client fault stops everything at once (it would fail everywhere), except a
//! prompt too long for the model, which moves to targets with a larger context window
//! when the route has some. With hedging, a first attempt that has not succeeded after
//! `hedge_after` is raced against the next target; the first success wins and the other
//! attempt is cancelled. The route's total deadline bounds everything.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::config::RetryPolicy;
use crate::providers::{ErrorKind, UpstreamError};

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    Success,
    Failed(UpstreamError),
    /// Abandoned by the gateway: the other side of a hedge won.
    Cancelled,
}

/// One attempt as the engine saw it.
#[derive(Debug, Clone)]
pub struct AttemptLog {
    /// Index of the target in the route.
    pub target: usize,
    pub started: Instant,
    pub elapsed: Duration,
    pub result: AttemptResult,
}

impl AttemptLog {
    /// A log for an attempt just started. Until it ends it reads as cancelled: if the
    /// whole request is dropped mid-attempt (the client left), that is what happened.
    fn begin(target: usize) -> AttemptLog {
        AttemptLog { target, started: Instant::now(), elapsed: Duration::ZERO, result: AttemptResult::Cancelled }
    }

    pub fn error(&self) -> Option<&UpstreamError> {
        match &self.result {
            AttemptResult::Failed(e) => Some(e),
            AttemptResult::Success | AttemptResult::Cancelled => None,
        }
    }
}

/// Starts a log in `logs` and returns its position, so the caller can end it.
fn begin(logs: &mut Vec<AttemptLog>, target: usize) -> usize {
    logs.push(AttemptLog::begin(target));
    logs.len() - 1
}

fn end(logs: &mut [AttemptLog], at: usize, result: AttemptResult) {
    if let Some(log) = logs.get_mut(at) {
        log.elapsed = log.started.elapsed();
        log.result = result;
    }
}

/// Why the engine stopped without an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The upstream blamed the request itself; it is returned to the client as is.
    ClientFault(UpstreamError),
    /// Every planned target was tried (and retried) and failed.
    Exhausted,
    /// The route's total deadline passed.
    Deadline,
}

pub struct Options<'a> {
    pub retry: &'a RetryPolicy,
    pub deadline: Instant,
    pub hedge_after: Option<Duration>,
}

/// What to do after a failed attempt.
enum Next {
    Stop(Stop),
    Retry(Duration),
    /// Go on to the plan's next target.
    Failover,
}

/// Runs attempts over the planned targets until one succeeds, logging each attempt in
/// `logs` as it starts (so a caller that is dropped mid-run still has the record).
/// `larger_context(target)` lists the route's targets with a larger context window.
/// Returns the answering target's index and its answer, or why there is none.
pub async fn run<T, F, Fut, L>(plan: Vec<usize>, options: &Options<'_>, larger_context: L, mut attempt: F, logs: &mut Vec<AttemptLog>) -> Result<(usize, T), Stop>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, UpstreamError>>,
    L: Fn(usize) -> Vec<usize>,
{
    let mut queue: VecDeque<usize> = plan.into();
    let mut tried: Vec<usize> = Vec::new();
    let deadline = options.deadline;
    while let Some(target) = queue.pop_front() {
        tried.push(target);
        let mut retries_used = 0;
        loop {
            if Instant::now() >= deadline {
                return Err(Stop::Deadline);
            }
            let hedge = options.hedge_after.filter(|_| retries_used == 0).and_then(|after| queue.front().map(|&next| (after, next)));
            let error = match hedge {
                None => {
                    let at = begin(logs, target);
                    match within(deadline, attempt(target)).await {
                        Ok(answer) => {
                            end(logs, at, AttemptResult::Success);
                            return Ok((target, answer));
                        }
                        Err(error) => {
                            end(logs, at, AttemptResult::Failed(error.clone()));
                            error
                        }
                    }
                }
                Some((after, next)) => match race(target, next, after, deadline, &mut attempt, logs).await {
                    Raced::Won(winner, answer) => return Ok((winner, answer)),
                    Raced::FirstFailed(error) => error,
                    Raced::BothFailed(error) => {
                        // The hedge target has had its attempt too.
                        queue.retain(|&t| t != next);
                        tried.push(next);
                        match decide(&error, options.retry.retries, options.retry) {
                            Next::Stop(stop) => return Err(stop),
                            Next::Retry(_) | Next::Failover => break,
                        }
                    }
                },
            };
            if error.kind == ErrorKind::ContextTooLong {
                let larger: Vec<usize> = larger_context(target).into_iter().filter(|t| !tried.contains(t)).collect();
                if larger.is_empty() {
                    return Err(Stop::ClientFault(error));
                }
                queue = larger.into();
                break;
            }
            match decide(&error, retries_used, options.retry) {
                Next::Stop(stop) => return Err(stop),
                Next::Failover => break,
                Next::Retry(delay) => {
                    if Instant::now() + delay >= deadline {
                        break;
                    }
                    retries_used += 1;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
    Err(Stop::Exhausted)
}

fn decide(error: &UpstreamError, retries_used: u32, policy: &RetryPolicy) -> Next {
    if !error.kind.try_next_target() {
        return Next::Stop(Stop::ClientFault(error.clone()));
    }
    if retries_used >= policy.retries || !error.kind.retry_same_target() {
        return Next::Failover;
    }
    // `None`: the upstream asked for a longer wait than the route allows.
    backoff_delay(policy, retries_used + 1, error.retry_after).map_or(Next::Failover, Next::Retry)
}

async fn within<T>(deadline: Instant, attempt: impl Future<Output = Result<T, UpstreamError>>) -> Result<T, UpstreamError> {
    match tokio::time::timeout_at(deadline, attempt).await {
        Ok(result) => result,
        Err(_) => Err(UpstreamError::new(ErrorKind::Timeout, "the route's total deadline passed during the attempt")),
    }
}

enum Raced<T> {
    Won(usize, T),
    /// The first target failed before the hedge started: handle it like any failure.
    FirstFailed(UpstreamError),
    /// Both attempts failed; the error is the first target's.
    BothFailed(UpstreamError),
}

/// Races `first` against `second`, started `after` later if `first` has not finished.
async fn race<T, F, Fut>(first: usize, second: usize, after: Duration, deadline: Instant, attempt: &mut F, logs: &mut Vec<AttemptLog>) -> Raced<T>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, UpstreamError>>,
{
    let first_at = begin(logs, first);
    let a = within(deadline, attempt(first));
    tokio::pin!(a);
    tokio::select! {
        result = &mut a => {
            return match result {
                Ok(answer) => {
                    end(logs, first_at, AttemptResult::Success);
                    Raced::Won(first, answer)
                }
                Err(error) => {
                    end(logs, first_at, AttemptResult::Failed(error.clone()));
                    Raced::FirstFailed(error)
                }
            };
        }
        _ = tokio::time::sleep(after) => {}
    }
    let second_at = begin(logs, second);
    let b = within(deadline, attempt(second));
    tokio::pin!(b);
    let (mut first_error, mut second_error) = (None, None);
    loop {
        tokio::select! {
            result = &mut a, if first_error.is_none() => match result {
                Ok(answer) => {
                    end(logs, first_at, AttemptResult::Success);
                    end(logs, second_at, second_error.map_or(AttemptResult::Cancelled, AttemptResult::Failed));
                    return Raced::Won(first, answer);
                }
                Err(error) => first_error = Some(error),
            },
            result = &mut b, if second_error.is_none() => match result {
                Ok(answer) => {
                    end(logs, first_at, first_error.map_or(AttemptResult::Cancelled, AttemptResult::Failed));
                    end(logs, second_at, AttemptResult::Success);
                    return Raced::Won(second, answer);
                }
                Err(error) => second_error = Some(error),
            },
        }
        if let (Some(a_error), Some(b_error)) = (&first_error, &second_error) {
            let error = a_error.clone();
            end(logs, first_at, AttemptResult::Failed(a_error.clone()));
            end(logs, second_at, AttemptResult::Failed(b_error.clone()));
            return Raced::BothFailed(error);
        }
    }
}

/// The wait before retry number `retry` (1-based): exponential from `backoff`, capped at
/// `max_backoff`, with "equal jitter" (half fixed, half random) so clients that failed
/// together do not retry together. A `retry-after` is honoured as a minimum, unless it
/// exceeds `max_retry_after`, in which case `None` says: don't wait, move on.
pub fn backoff_delay(policy: &RetryPolicy, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
    let exponential = policy.backoff.saturating_mul(1u32 << (retry.saturating_sub(1)).min(16));
    let capped = exponential.min(policy.max_backoff);
    let half = capped / 2;
    let jittered = half + half.mul_f64(rand::rng().random::<f64>());
    match retry_after {
        Some(wait) if wait > policy.max_retry_after => None,
        Some(wait) => Some(wait.max(jittered)),
        None => Some(jittered),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn policy(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(10),
        }
    }

    fn err(kind: ErrorKind) -> UpstreamError {
        UpstreamError::new(kind, "scripted")
    }

    /// Runs the engine over a script of per-call results, returning the outcome and
    /// which target each call went to.
    /// A finished run: its result and every attempt logged.
    struct Failover<T> {
        result: Result<(usize, T), Stop>,
        attempts: Vec<AttemptLog>,
    }

    async fn run_logged<T, F, Fut>(plan: Vec<usize>, options: &Options<'_>, larger: impl Fn(usize) -> Vec<usize>, attempt: F) -> Failover<T>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let mut attempts = Vec::new();
        let result = run(plan, options, larger, attempt, &mut attempts).await;
        Failover { result, attempts }
    }

    async fn script(targets: usize, policy: RetryPolicy, results: Vec<Result<&'static str, UpstreamError>>) -> (Failover<&'static str>, Vec<usize>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let results = Arc::new(Mutex::new(results.into_iter()));
        let deadline = Instant::now() + Duration::from_secs(60);
        let options = Options { retry: &policy, deadline, hedge_after: None };
        let outcome = run_logged((0..targets).collect(), &options, |_| Vec::new(), |target| {
            calls.lock().unwrap().push(target);
            let next = results.lock().unwrap().next().unwrap_or(Err(err(ErrorKind::ServerError)));
            async move { next }
        })
        .await;
        let calls = calls.lock().unwrap().clone();
        (outcome, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_error_is_retried_on_the_same_target_then_fails_over() {
        let (outcome, calls) =
            script(2, policy(1), vec![Err(err(ErrorKind::ServerError)), Err(err(ErrorKind::ServerError)), Ok("second")]).await;
        assert_eq!(calls, vec![0, 0, 1]);
        assert_eq!(outcome.result.unwrap(), (1, "second"));
        assert_eq!(outcome.attempts.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_fault_stops_at_once() {
        let (outcome, calls) = script(3, policy(2), vec![Err(err(ErrorKind::InvalidRequest))]).await;
        assert_eq!(calls, vec![0]);
        assert!(matches!(outcome.result, Err(Stop::ClientFault(e)) if e.kind == ErrorKind::InvalidRequest));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_moves_to_the_next_target_without_retrying_in_place() {
        let (outcome, calls) = script(2, policy(3), vec![Err(err(ErrorKind::FirstTokenTimeout)), Ok("next")]).await;
        assert_eq!(calls, vec![0, 1]);
        assert_eq!(outcome.result.unwrap().1, "next");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_for_before_the_retry() {
        let start = Instant::now();
        let limited = err(ErrorKind::RateLimited).with_retry_after(Some(Duration::from_secs(3)));
        let (outcome, calls) = script(1, policy(1), vec![Err(limited), Ok("after wait")]).await;
        assert_eq!(calls, vec![0, 0]);
        assert_eq!(outcome.result.unwrap().1, "after wait");
        assert!(start.elapsed() >= Duration::from_secs(3), "waited only {:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_longer_than_the_route_allows_skips_to_the_next_target() {
        let start = Instant::now();
        let limited = err(ErrorKind::RateLimited).with_retry_after(Some(Duration::from_secs(60)));
        let (outcome, calls) = script(2, policy(2), vec![Err(limited), Ok("other")]).await;
        assert_eq!(calls, vec![0, 1]);
        assert_eq!(outcome.result.unwrap().1, "other");
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn every_target_failing_exhausts_the_route_with_all_attempts_logged() {
        let (outcome, calls) = script(2, policy(1), vec![]).await;
        assert_eq!(calls, vec![0, 0, 1, 1]);
        assert_eq!(outcome.result.unwrap_err(), Stop::Exhausted);
        assert!(outcome.attempts.iter().all(|a| a.error().is_some()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_total_deadline_bounds_a_stalled_attempt() {
        let policy = policy(0);
        let options = Options { retry: &policy, deadline: Instant::now() + Duration::from_secs(5), hedge_after: None };
        let outcome: Failover<()> = run_logged(vec![0, 1], &options, |_| Vec::new(), |_| std::future::pending()).await;
        assert_eq!(outcome.result.unwrap_err(), Stop::Deadline);
        assert_eq!(outcome.attempts.len(), 1);
        assert_eq!(outcome.attempts[0].error().unwrap().kind, ErrorKind::Timeout);
    }

    /// Target 0 answers after `slow`, target 1 after `fast`; hedging after 1 s.
    async fn hedged(slow: Duration, fast: Duration) -> (Failover<usize>, Duration) {
        let policy = policy(0);
        let start = Instant::now();
        let options = Options { retry: &policy, deadline: start + Duration::from_secs(60), hedge_after: Some(Duration::from_secs(1)) };
        let outcome = run_logged(vec![0, 1], &options, |_| Vec::new(), |target| async move {
            tokio::time::sleep(if target == 0 { slow } else { fast }).await;
            Ok(target)
        })
        .await;
        (outcome, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_first_target_is_hedged_and_the_faster_answer_wins() {
        let (outcome, elapsed) = hedged(Duration::from_secs(10), Duration::from_millis(500)).await;
        assert_eq!(outcome.result.unwrap(), (1, 1));
        assert_eq!(elapsed, Duration::from_millis(1500));
        let results: Vec<_> = outcome.attempts.iter().map(|a| (a.target, a.result.clone())).collect();
        assert_eq!(results, vec![(0, AttemptResult::Cancelled), (1, AttemptResult::Success)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_target_answering_before_the_hedge_delay_starts_no_hedge() {
        let (outcome, _) = hedged(Duration::from_millis(900), Duration::from_millis(1)).await;
        assert_eq!(outcome.result.unwrap(), (0, 0));
        assert_eq!(outcome.attempts.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_hedged_first_target_can_still_win() {
        let (outcome, _) = hedged(Duration::from_millis(1200), Duration::from_secs(5)).await;
        assert_eq!(outcome.result.unwrap(), (0, 0));
        assert_eq!(outcome.attempts[1].result, AttemptResult::Cancelled);
    }

    #[tokio::test(start_paused = true)]
    async fn a_prompt_too_long_moves_to_a_larger_context_target_only() {
        let policy = policy(2);
        let options = Options { retry: &policy, deadline: Instant::now() + Duration::from_secs(60), hedge_after: None };
        let calls = Arc::new(Mutex::new(Vec::new()));
        let outcome = run_logged(vec![0, 1, 2], &options, |_| vec![2], |target| {
            calls.lock().unwrap().push(target);
            async move { if target == 0 { Err(err(ErrorKind::ContextTooLong)) } else { Ok(target) } }
        })
        .await;
        assert_eq!(outcome.result.unwrap(), (2, 2));
        assert_eq!(*calls.lock().unwrap(), vec![0, 2]);

        let outcome: Failover<usize> = run_logged(vec![0, 1], &options, |_| Vec::new(), |_| async { Err(err(ErrorKind::ContextTooLong)) }).await;
        assert!(matches!(outcome.result, Err(Stop::ClientFault(e)) if e.kind == ErrorKind::ContextTooLong));
    }

    #[test]
    fn backoff_grows_exponentially_within_its_cap_and_jitter() {
        let p = policy(5);
        for (retry, full) in [(1, 100), (2, 200), (3, 400), (6, 2000)] {
            let d = backoff_delay(&p, retry, None).unwrap();
            assert!(d >= Duration::from_millis(full / 2) && d <= Duration::from_millis(full), "retry {retry}: {d:?}");
        }
    }
}
