//! Ordered failover with per-target retries.
//!
//! For each target in order: try; on a failure another attempt may fix, retry the
//! same target up to `retries` times with exponential backoff and jitter (or the
//! upstream's `retry-after`, when it is not longer than the route allows); then move
//! on. A client fault stops everything at once: it would fail on every target. The
//! route's total deadline bounds the whole loop, backoff sleeps included.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::config::RetryPolicy;
use crate::providers::{ErrorKind, UpstreamError};

/// One attempt as the engine saw it.
#[derive(Debug, Clone)]
pub struct AttemptLog {
    /// Index of the target in the route.
    pub target: usize,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub started: Instant,
    pub elapsed: Duration,
    /// `None` for the attempt that succeeded.
    pub error: Option<UpstreamError>,
}

/// Why the engine stopped without an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The upstream blamed the request itself; it is returned to the client as is.
    ClientFault(UpstreamError),
    /// Every target was tried (and retried) and failed.
    Exhausted,
    /// The route's total deadline passed.
    Deadline,
}

/// The outcome of a failover run, with every attempt made.
#[derive(Debug)]
pub struct Failover<T> {
    /// The answering target's index and its answer, or why there is none.
    pub result: Result<(usize, T), Stop>,
    pub attempts: Vec<AttemptLog>,
}

/// Runs attempts over `targets` targets until one succeeds.
pub async fn run<T, F, Fut>(targets: usize, policy: &RetryPolicy, deadline: Instant, mut attempt: F) -> Failover<T>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, UpstreamError>>,
{
    let mut attempts = Vec::new();
    for target in 0..targets {
        let mut retries_used = 0;
        loop {
            let started = Instant::now();
            if started >= deadline {
                return Failover { result: Err(Stop::Deadline), attempts };
            }
            let started_at = chrono::Utc::now();
            let result = match tokio::time::timeout_at(deadline, attempt(target)).await {
                Ok(result) => result,
                Err(_) => Err(UpstreamError::new(ErrorKind::Timeout, "the route's total deadline passed during the attempt")),
            };
            let elapsed = started.elapsed();
            let error = match result {
                Ok(answer) => {
                    attempts.push(AttemptLog { target, started_at, started, elapsed, error: None });
                    return Failover { result: Ok((target, answer)), attempts };
                }
                Err(error) => error,
            };
            attempts.push(AttemptLog { target, started_at, started, elapsed, error: Some(error.clone()) });
            if !error.kind.try_next_target() {
                return Failover { result: Err(Stop::ClientFault(error)), attempts };
            }
            if retries_used >= policy.retries || !error.kind.retry_same_target() {
                break;
            }
            retries_used += 1;
            let Some(delay) = backoff_delay(policy, retries_used, error.retry_after) else {
                break; // the upstream asked for a longer wait than the route allows
            };
            if Instant::now() + delay >= deadline {
                break;
            }
            tokio::time::sleep(delay).await;
        }
    }
    Failover { result: Err(Stop::Exhausted), attempts }
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
    async fn script(targets: usize, policy: RetryPolicy, results: Vec<Result<&'static str, UpstreamError>>) -> (Failover<&'static str>, Vec<usize>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let results = Arc::new(Mutex::new(results.into_iter()));
        let deadline = Instant::now() + Duration::from_secs(60);
        let outcome = run(targets, &policy, deadline, |target| {
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
        assert!(outcome.attempts.iter().all(|a| a.error.is_some()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_total_deadline_bounds_a_stalled_attempt() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let outcome: Failover<()> = run(2, &policy(0), deadline, |_| std::future::pending()).await;
        assert_eq!(outcome.result.unwrap_err(), Stop::Deadline);
        assert_eq!(outcome.attempts.len(), 1);
        assert_eq!(outcome.attempts[0].error.as_ref().unwrap().kind, ErrorKind::Timeout);
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
