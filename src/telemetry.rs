//! Logs and metrics: the `tracing` subscriber and the Prometheus recorder, plus the
//! handful of functions the pipeline calls so metric names live in one place.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the JSON-or-text log subscriber once (`RUST_LOG` filters; default `info`).
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
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

/// One finished request.
pub fn request_finished(route: &str, outcome: &str, latency: Duration) {
    let labels = [("route", route.to_owned()), ("outcome", outcome.to_owned())];
    metrics::counter!("switchyard_requests_total", &labels).increment(1);
    metrics::histogram!("switchyard_request_duration_seconds", &labels[..1]).record(latency.as_secs_f64());
}

/// One upstream attempt.
pub fn attempt_finished(route: &str, target: &str, outcome: &str, latency: Duration) {
    let labels = [("route", route.to_owned()), ("target", target.to_owned()), ("outcome", outcome.to_owned())];
    metrics::counter!("switchyard_attempts_total", &labels).increment(1);
    metrics::histogram!("switchyard_attempt_duration_seconds", &labels[..2]).record(latency.as_secs_f64());
}

pub fn time_to_first_token(route: &str, target: &str, ttft: Duration) {
    let labels = [("route", route.to_owned()), ("target", target.to_owned())];
    metrics::histogram!("switchyard_time_to_first_token_seconds", &labels).record(ttft.as_secs_f64());
}

/// Tokens and money an answering target consumed.
pub fn consumption(route: &str, target: &str, usage: &crate::canonical::Usage, cost_micros: i64) {
    for (kind, n) in [
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
        ("cache_read", usage.cache_read_tokens),
        ("cache_write", usage.cache_write_tokens),
        ("reasoning", usage.reasoning_tokens),
    ] {
        if n > 0 {
            let labels = [("route", route.to_owned()), ("target", target.to_owned()), ("kind", kind.to_owned())];
            metrics::counter!("switchyard_tokens_total", &labels).increment(n);
        }
    }
    if cost_micros > 0 {
        let labels = [("route", route.to_owned()), ("target", target.to_owned())];
        metrics::counter!("switchyard_cost_micro_usd_total", &labels).increment(cost_micros as u64);
    }
}
