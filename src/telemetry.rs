//! Logs and metrics: the `tracing` subscriber and the Prometheus recorder, plus the
//! handful of functions the pipeline calls so metric names live in one place.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the JSON-or-text log subscriber once (`RUST_LOG` filters; default `info`).
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn"));
    // Colours only for a person at a terminal: a log file or collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// The process-wide Prometheus recorder. Installed at most once, so several gateways in
/// one test process share it.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency_buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &latency_buckets)
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// The metric handles of one route and its targets, registered when a configuration
/// is loaded: settling a request then records into them without building label sets or
/// looking anything up in the registry.
pub struct RouteMetrics {
    /// `switchyard_requests_total` per request outcome.
    requests: Vec<(&'static str, Counter)>,
    duration: Histogram,
    /// Per route target, in the route's order.
    targets: Vec<TargetMetrics>,
}

/// One route target's handles.
pub struct TargetMetrics {
    /// `switchyard_attempts_total` per attempt outcome.
    attempts: Vec<(&'static str, Counter)>,
    duration: Histogram,
    ttft: Histogram,
    /// `switchyard_tokens_total` per token kind, in [`TOKEN_KINDS`] order.
    tokens: [Counter; 5],
    cost: Counter,
}

const TOKEN_KINDS: [&str; 5] = ["input", "output", "cache_read", "cache_write", "reasoning"];

impl RouteMetrics {
    /// `targets` are the labels of the route's targets, in order; the outcomes are
    /// every value the `outcome` label can take for requests and for attempts.
    pub fn new<'a>(
        route: &str,
        targets: impl IntoIterator<Item = &'a str>,
        request_outcomes: &[&'static str],
        attempt_outcomes: &[&'static str],
    ) -> RouteMetrics {
        let requests = request_outcomes
            .iter()
            .map(|&outcome| {
                let labels = [("route", route.to_owned()), ("outcome", outcome.to_owned())];
                (outcome, metrics::counter!("switchyard_requests_total", &labels))
            })
            .collect();
        let targets = targets.into_iter().map(|target| TargetMetrics::new(route, target, attempt_outcomes)).collect();
        RouteMetrics {
            requests,
            duration: metrics::histogram!("switchyard_request_duration_seconds", "route" => route.to_owned()),
            targets,
        }
    }

    /// One finished request.
    pub fn request_finished(&self, outcome: &str, latency: Duration) {
        if let Some((_, counter)) = self.requests.iter().find(|(o, _)| *o == outcome) {
            counter.increment(1);
        }
        self.duration.record(latency.as_secs_f64());
    }

    /// The handles of the route's target at `index`.
    pub fn target(&self, index: usize) -> Option<&TargetMetrics> {
        self.targets.get(index)
    }
}

impl TargetMetrics {
    fn new(route: &str, target: &str, attempt_outcomes: &[&'static str]) -> TargetMetrics {
        let labels = [("route", route.to_owned()), ("target", target.to_owned())];
        let with = |name: &'static str, value: &str| {
            let mut labels = labels.to_vec();
            labels.push((name, value.to_owned()));
            labels
        };
        TargetMetrics {
            attempts: attempt_outcomes
                .iter()
                .map(|&outcome| (outcome, metrics::counter!("switchyard_attempts_total", &with("outcome", outcome))))
                .collect(),
            duration: metrics::histogram!("switchyard_attempt_duration_seconds", &labels),
            ttft: metrics::histogram!("switchyard_time_to_first_token_seconds", &labels),
            tokens: TOKEN_KINDS.map(|kind| metrics::counter!("switchyard_tokens_total", &with("kind", kind))),
            cost: metrics::counter!("switchyard_cost_micro_usd_total", &labels),
        }
    }

    /// One upstream attempt.
    pub fn attempt_finished(&self, outcome: &str, latency: Duration) {
        if let Some((_, counter)) = self.attempts.iter().find(|(o, _)| *o == outcome) {
            counter.increment(1);
        }
        self.duration.record(latency.as_secs_f64());
    }

    pub fn time_to_first_token(&self, ttft: Duration) {
        self.ttft.record(ttft.as_secs_f64());
    }

    /// Tokens and money the target consumed.
    pub fn consumption(&self, usage: &crate::canonical::Usage, cost_micros: i64) {
        let counts = [usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.reasoning_tokens];
        for (counter, n) in self.tokens.iter().zip(counts) {
            if n > 0 {
                counter.increment(n);
            }
        }
        if cost_micros > 0 {
            self.cost.increment(cost_micros as u64);
        }
    }
}
