//! From [`RawConfig`] to [`Config`]: defaults, secrets, cross-references, and an error
//! for every problem, each named by the path of the value at fault.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use super::raw::{RawBreaker, RawConfig, RawPrice, RawProvider, RawRoute, RawSim, RawTopology};
use super::secret::{interpolate, secret, EnvLookup};
use super::*;
use crate::ledger::{PriceRow, DEFAULT_BATCH_SIZE};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Far above any chat answer (a 32k-token answer with 20 log-probabilities per token is
/// about 40 MB; an image a model draws is a few), and a bound on what one upstream that
/// misbehaves (a server streaming a file, an event that never ends) can make a request hold.
const DEFAULT_MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// Long enough for any real client on a slow link; short enough that connections that
/// send nothing (or a head a byte at a time, to hold a connection open) are let go.
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_LEDGER_URL: &str = "sqlite://switchyard.db";

/// Provider kinds this build can talk to.
const KINDS: [&str; 8] = ["openai", "azure-openai", "openai-compatible", "anthropic", "bedrock", "vertex", "gemini", "sim"];

/// Collects errors so that one pass reports all of them.
#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, message));
    }

    /// Keeps the value, or records the error and returns `None`.
    fn take<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }
}

pub fn validate(raw: RawConfig, env: EnvLookup<'_>) -> Result<Config, ConfigErrors> {
    let mut problems = Problems::default();
    let mut warnings = Vec::new();

    let server = server(&raw, &mut problems);
    let ledger = ledger(&raw, env, &mut problems);
    let keys = raw
        .keys
        .iter()
        .filter_map(|(id, key)| {
            let secret = problems.take(interpolate(&format!("keys.{id}.secret"), &key.secret, env))?;
            if secret.len() < 16 {
                problems.push(format!("keys.{id}.secret"), "must be at least 16 characters");
            }
            Some(ClientKey { id: id.as_str().into(), secret_sha256: Sha256::digest(secret.as_bytes()).into() })
        })
        .collect();

    let providers: BTreeMap<String, Arc<ProviderConfig>> = raw
        .providers
        .iter()
        .filter_map(|(name, p)| provider(name, p, env, &mut problems).map(|p| (name.clone(), Arc::new(p))))
        .collect();
    let provider_names: Vec<&str> = raw.providers.keys().map(String::as_str).collect();

    let mut routes = BTreeMap::new();
    for (name, route) in &raw.routes {
        if let Some(route) = route_config(name, route, &provider_names, &mut problems) {
            if route.targets.len() == 1 {
                warnings.push(format!("routes.{name}: has a single target, so it has no failover"));
            } else {
                independence(&route, route_raw_level(name, route_raw(&raw, name), &mut problems), &providers, &mut problems, &mut warnings);
            }
            routes.insert(name.clone(), Arc::new(route));
        }
    }
    let admin_token_sha256 = raw.admin.token.as_ref().and_then(|token| {
        let token = problems.take(interpolate("admin.token", token, env))?;
        if token.len() < 16 {
            problems.push("admin.token", "must be at least 16 characters");
        }
        Some(Sha256::digest(token.as_bytes()).into())
    });
    if routes.is_empty() && problems.0.is_empty() {
        problems.push("routes", "no routes are defined: clients would have nothing to call");
    }

    let prices = raw.prices.iter().enumerate().filter_map(|(i, p)| price(i, p, &mut problems)).collect();

    if problems.0.is_empty() {
        Ok(Config { server, ledger, keys, providers, routes, prices, warnings, admin_token_sha256 })
    } else {
        Err(ConfigErrors(problems.0))
    }
}

fn server(raw: &RawConfig, problems: &mut Problems) -> ServerConfig {
    let listen_text = raw.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        problems.push("server.listen", format!("\"{listen_text}\" is not an address like 127.0.0.1:8080"));
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });
    let max_body_bytes = raw.server.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if max_body_bytes < 1024 {
        problems.push("server.max_body_bytes", "must be at least 1024");
    }
    let header_timeout = raw.server.header_timeout.unwrap_or(DEFAULT_HEADER_TIMEOUT);
    if header_timeout.is_zero() {
        problems.push("server.header_timeout", "must be longer than 0s (every connection would be closed before its first request)");
    }
    let threads = raw.server.threads.map(std::num::NonZeroUsize::new);
    if threads == Some(None) {
        problems.push("server.threads", "must be at least 1 (leave it out for one thread per CPU)");
    }
    ServerConfig { listen, max_body_bytes, drain_timeout: raw.server.drain_timeout.unwrap_or(Duration::from_secs(30)), header_timeout, threads: threads.flatten() }
}

fn ledger(raw: &RawConfig, env: EnvLookup<'_>, problems: &mut Problems) -> LedgerConfig {
    let url = raw.ledger.url.as_deref().unwrap_or(DEFAULT_LEDGER_URL);
    let url = problems.take(interpolate("ledger.url", url, env)).unwrap_or_default();
    if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        problems.push("ledger.url", "must start with sqlite: or postgres://");
    }
    let batch_size = raw.ledger.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    if batch_size == 0 {
        problems.push("ledger.batch_size", "must be at least 1");
    }
    LedgerConfig { url, batch_size, flush_interval: raw.ledger.flush_interval.unwrap_or(Duration::from_millis(200)) }
}

fn provider(name: &str, raw: &RawProvider, env: EnvLookup<'_>, problems: &mut Problems) -> Option<ProviderConfig> {
    let path = format!("providers.{name}");
    let errors_before = problems.0.len();
    let headers: Vec<(String, SecretString)> = raw
        .headers
        .iter()
        .filter_map(|(h, v)| problems.take(secret(&format!("{path}.headers.{h}"), v, env)).map(|v| (h.clone(), v)))
        .collect();
    let required = |problems: &mut Problems, field: &str, value: &Option<String>| -> Option<String> {
        match value {
            Some(v) => problems.take(interpolate(&format!("{path}.{field}"), v, env)),
            None => {
                problems.push(format!("{path}.{field}"), format!("is required for kind \"{}\"", raw.kind));
                None
            }
        }
    };
    let required_secret = |problems: &mut Problems, field: &str, value: &Option<String>| -> Option<SecretString> {
        match value {
            Some(v) => problems.take(secret(&format!("{path}.{field}"), v, env)),
            None => {
                problems.push(format!("{path}.{field}"), format!("is required for kind \"{}\"", raw.kind));
                None
            }
        }
    };
    let only_for_sim = |problems: &mut Problems| {
        if raw.sim.is_some() {
            problems.push(format!("{path}.sim"), "is only allowed for kind \"sim\"");
        }
    };

    let settings = match raw.kind.as_str() {
        "openai" => {
            only_for_sim(problems);
            let base_url = match &raw.base_url {
                Some(url) => problems.take(interpolate(&format!("{path}.base_url"), url, env)),
                None => Some("https://api.openai.com/v1".to_owned()),
            };
            let api_key = required_secret(problems, "api_key", &raw.api_key);
            ProviderSettings::OpenAi { base_url: base_url?, api_key: api_key?, headers }
        }
        "azure-openai" => {
            only_for_sim(problems);
            let endpoint = required(problems, "endpoint", &raw.endpoint);
            let api_version = required(problems, "api_version", &raw.api_version);
            let api_key = required_secret(problems, "api_key", &raw.api_key);
            ProviderSettings::AzureOpenAi { endpoint: endpoint?, api_version: api_version?, api_key: api_key?, headers }
        }
        "openai-compatible" => {
            only_for_sim(problems);
            let base_url = required(problems, "base_url", &raw.base_url);
            let api_key = raw.api_key.as_ref().and_then(|k| problems.take(secret(&format!("{path}.api_key"), k, env)));
            ProviderSettings::OpenAiCompatible { base_url: base_url?, api_key, headers }
        }
        "anthropic" => {
            only_for_sim(problems);
            let base_url = match &raw.base_url {
                Some(url) => problems.take(interpolate(&format!("{path}.base_url"), url, env)),
                None => Some("https://api.anthropic.com".to_owned()),
            };
            let api_key = required_secret(problems, "api_key", &raw.api_key);
            let anthropic_version = raw.anthropic_version.clone().unwrap_or_else(|| "2023-06-01".to_owned());
            ProviderSettings::Anthropic { base_url: base_url?, api_key: api_key?, anthropic_version }
        }
        "bedrock" => {
            only_for_sim(problems);
            let region = required(problems, "region", &raw.region);
            let endpoint = raw.endpoint.as_ref().and_then(|e| problems.take(interpolate(&format!("{path}.endpoint"), e, env)));
            let secret_of = |problems: &mut Problems, field: &str, v: &Option<String>| {
                v.as_ref().and_then(|v| problems.take(secret(&format!("{path}.{field}"), v, env)))
            };
            let key_id = secret_of(problems, "access_key_id", &raw.access_key_id);
            let key_secret = secret_of(problems, "secret_access_key", &raw.secret_access_key);
            let session_token = secret_of(problems, "session_token", &raw.session_token);
            let static_keys = match (key_id, key_secret) {
                (Some(access_key_id), Some(secret_access_key)) => Some(AwsKeys { access_key_id, secret_access_key, session_token }),
                (None, None) => None,
                _ => {
                    problems.push(format!("{path}.access_key_id"), "and secret_access_key must be given together");
                    None
                }
            };
            ProviderSettings::Bedrock { region: region?, profile: raw.profile.clone(), endpoint, static_keys }
        }
        "gemini" => {
            only_for_sim(problems);
            let base_url = raw.base_url.as_ref().and_then(|u| problems.take(interpolate(&format!("{path}.base_url"), u, env)));
            let api_key = required_secret(problems, "api_key", &raw.api_key);
            ProviderSettings::Gemini { base_url, api_key: api_key? }
        }
        "vertex" => {
            only_for_sim(problems);
            let project = required(problems, "project", &raw.project);
            let region = required(problems, "region", &raw.region);
            let base_url = raw.base_url.as_ref().and_then(|u| problems.take(interpolate(&format!("{path}.base_url"), u, env)));
            let access_token = raw.access_token.as_ref().and_then(|t| problems.take(secret(&format!("{path}.access_token"), t, env)));
            ProviderSettings::Vertex { project: project?, region: region?, base_url, access_token }
        }
        "sim" => ProviderSettings::Sim(sim(&path, raw.sim.as_ref(), problems)?),
        other => {
            let message = format!("unknown provider kind \"{other}\"{} (known: {})", did_you_mean(other, &KINDS), KINDS.join(", "));
            problems.push(format!("{path}.kind"), message);
            return None;
        }
    };
    for (field, url) in [("base_url", &raw.base_url), ("endpoint", &raw.endpoint)] {
        if let Some(url) = url {
            if !url.starts_with("http://") && !url.starts_with("https://") && !url.starts_with("${") {
                problems.push(format!("{path}.{field}"), format!("\"{url}\" must start with http:// or https://"));
            }
        }
    }
    let ca_certificates = match &raw.ca_file {
        Some(_) if matches!(settings, ProviderSettings::Sim(_)) => {
            problems.push(format!("{path}.ca_file"), "the simulator makes no connections; remove it");
            Arc::from([])
        }
        Some(file) => ca_certificates(&format!("{path}.ca_file"), file, problems),
        None => Arc::from([]),
    };
    if problems.0.len() > errors_before {
        return None;
    }
    let catalog = raw.catalog.clone().unwrap_or_else(|| settings.kind().to_owned());
    let breaker = breaker(&path, &raw.breaker, problems);
    if raw.max_concurrency == Some(0) {
        problems.push(format!("{path}.max_concurrency"), "must be at least 1");
    }
    let max_answer_bytes = raw.max_answer_bytes.unwrap_or(DEFAULT_MAX_ANSWER_BYTES);
    if max_answer_bytes < 1024 {
        problems.push(format!("{path}.max_answer_bytes"), "must be at least 1024");
    }
    Some(ProviderConfig {
        name: name.to_owned(),
        topology: topology(&raw.topology, settings.kind()),
        catalog,
        connect_timeout: raw.connect_timeout.unwrap_or(Duration::from_secs(5)),
        ca_certificates,
        breaker,
        max_concurrency: raw.max_concurrency,
        max_answer_bytes,
        settings,
    })
}

/// The CA certificates of a PEM file (a path relative to the working directory, like
/// the ledger's), each checked to be usable as a trust anchor.
fn ca_certificates(path: &str, file: &str, problems: &mut Problems) -> Arc<[CertificateDer<'static>]> {
    let certificates = match CertificateDer::pem_file_iter(file).and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>()) {
        Ok(certificates) => certificates,
        Err(rustls::pki_types::pem::Error::Io(error)) => {
            problems.push(path, format!("cannot read \"{file}\": {error}"));
            return Arc::from([]);
        }
        Err(error) => {
            problems.push(path, format!("\"{file}\" is not a PEM certificate file: {error}"));
            return Arc::from([]);
        }
    };
    if certificates.is_empty() {
        problems.push(path, format!("\"{file}\" holds no certificate (no \"-----BEGIN CERTIFICATE-----\" block)"));
        return Arc::from([]);
    }
    let (_, unusable) = rustls::RootCertStore::empty().add_parsable_certificates(certificates.iter().cloned());
    if unusable > 0 {
        problems.push(path, format!("{unusable} of the {} certificates in \"{file}\" cannot be used as a CA", certificates.len()));
    }
    certificates.into()
}

fn sim(path: &str, raw: Option<&RawSim>, problems: &mut Problems) -> Option<SimSettings> {
    let default = RawSim::default();
    let raw = raw.unwrap_or(&default);
    let failure_rate = raw.failure_rate.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&failure_rate) {
        problems.push(format!("{path}.sim.failure_rate"), "must be between 0 and 1");
    }
    let tokens_per_second = raw.tokens_per_second.unwrap_or(200.0);
    if !(tokens_per_second > 0.0 && tokens_per_second.is_finite()) {
        problems.push(format!("{path}.sim.tokens_per_second"), "must be a positive number");
    }
    let failure_kind = match raw.failure_kind.as_deref().unwrap_or("5xx") {
        "5xx" => SimFailure::ServerError,
        "429" => SimFailure::RateLimited,
        "reset" => SimFailure::ConnectionReset,
        "stall" => SimFailure::Stall,
        other => {
            problems.push(
                format!("{path}.sim.failure_kind"),
                format!("unknown failure kind \"{other}\"{} (known: {})", did_you_mean(other, &SimFailure::NAMES), SimFailure::NAMES.join(", ")),
            );
            return None;
        }
    };
    Some(SimSettings {
        time_to_first_token: raw.time_to_first_token.unwrap_or(Duration::from_millis(150)),
        tokens_per_second,
        failure_rate,
        failure_kind,
        retry_after: raw.retry_after.unwrap_or(Duration::from_secs(1)),
        output_tokens: raw.output_tokens.unwrap_or(24),
        seed: raw.seed,
    })
}

fn breaker(path: &str, raw: &RawBreaker, problems: &mut Problems) -> BreakerPolicy {
    let default = BreakerPolicy::default();
    let policy = BreakerPolicy {
        consecutive_failures: raw.consecutive_failures.unwrap_or(default.consecutive_failures),
        error_rate: raw.error_rate.unwrap_or(default.error_rate),
        window: raw.window.unwrap_or(default.window),
        min_requests: raw.min_requests.unwrap_or(default.min_requests),
        open_for: raw.open_for.unwrap_or(default.open_for),
        half_open_probes: raw.half_open_probes.unwrap_or(default.half_open_probes),
    };
    if policy.consecutive_failures == 0 {
        problems.push(format!("{path}.breaker.consecutive_failures"), "must be at least 1");
    }
    if !(policy.error_rate > 0.0 && policy.error_rate <= 1.0) {
        problems.push(format!("{path}.breaker.error_rate"), "must be above 0 and at most 1");
    }
    if policy.half_open_probes == 0 {
        problems.push(format!("{path}.breaker.half_open_probes"), "must be at least 1");
    }
    policy
}

/// Configured topology, with the facts a provider kind implies filled in where the
/// config is silent (who runs `azure-openai` is not a question).
fn topology(raw: &RawTopology, kind: &str) -> Topology {
    let (vendor, operator, cloud) = match kind {
        "azure-openai" => (Some("openai"), Some("microsoft"), Some("azure")),
        "openai" => (Some("openai"), Some("openai"), None),
        "anthropic" => (Some("anthropic"), Some("anthropic"), None),
        "bedrock" => (None, Some("aws"), Some("aws")),
        "vertex" => (None, Some("google"), Some("gcp")),
        "gemini" => (Some("google"), Some("google"), Some("gcp")),
        _ => (None, None, None),
    };
    Topology {
        vendor: raw.vendor.clone().or(vendor.map(str::to_owned)),
        operator: raw.operator.clone().or(operator.map(str::to_owned)),
        cloud: raw.cloud.clone().or(cloud.map(str::to_owned)),
        region: raw.region.clone(),
        accelerator: raw.accelerator.clone(),
    }
}

fn route_raw<'a>(raw: &'a RawConfig, name: &str) -> Option<&'a RawRoute> {
    raw.routes.get(name)
}

#[derive(Clone, Copy, PartialEq)]
enum Independence {
    Off,
    Warn,
    Error,
}

fn route_raw_level(name: &str, raw: Option<&RawRoute>, problems: &mut Problems) -> Independence {
    match raw.and_then(|r| r.require_independent_fallback.as_deref()).unwrap_or("warn") {
        "off" => Independence::Off,
        "warn" => Independence::Warn,
        "error" => Independence::Error,
        other => {
            problems.push(
                format!("routes.{name}.require_independent_fallback"),
                format!("\"{other}\" is not one of off, warn, error{}", did_you_mean(other, &["off", "warn", "error"])),
            );
            Independence::Off
        }
    }
}

/// Warns (or fails) when every target of a route shares one operator or one cloud: the
/// route's failover would not survive that operator's or cloud's outage.
fn independence(
    route: &RouteConfig,
    level: Independence,
    providers: &BTreeMap<String, Arc<ProviderConfig>>,
    problems: &mut Problems,
    warnings: &mut Vec<String>,
) {
    if level == Independence::Off {
        return;
    }
    for dimension in [TopologyDimension::Operator, TopologyDimension::Cloud] {
        let values: Vec<Option<&str>> =
            route.targets.iter().map(|t| providers.get(&t.provider).and_then(|p| p.topology.get(dimension))).collect();
        let Some(Some(first)) = values.first() else { continue };
        if values.iter().all(|v| *v == Some(*first)) {
            let message = format!(
                "every target runs with {} \"{first}\": an outage there takes the whole route down",
                dimension.as_str()
            );
            match level {
                Independence::Error => problems.push(format!("routes.{}.targets", route.name), message),
                _ => warnings.push(format!("routes.{}.targets: {message}", route.name)),
            }
            return;
        }
    }
}

fn route_config(name: &str, raw: &RawRoute, providers: &[&str], problems: &mut Problems) -> Option<RouteConfig> {
    let path = format!("routes.{name}");
    let errors_before = problems.0.len();
    if raw.targets.is_empty() {
        problems.push(format!("{path}.targets"), "needs at least one target");
    }
    for (i, target) in raw.targets.iter().enumerate() {
        if !providers.contains(&target.provider.as_str()) {
            problems.push(
                format!("{path}.targets[{i}].provider"),
                format!("no provider named \"{}\"{}", target.provider, did_you_mean(&target.provider, providers)),
            );
        }
        if target.model.trim().is_empty() {
            problems.push(format!("{path}.targets[{i}].model"), "is empty");
        }
    }
    let retry = RetryPolicy {
        retries: raw.retries.unwrap_or(2),
        backoff: raw.backoff.unwrap_or(Duration::from_millis(100)),
        max_backoff: raw.max_backoff.unwrap_or(Duration::from_secs(2)),
        max_retry_after: raw.max_retry_after.unwrap_or(Duration::from_secs(10)),
    };
    if retry.retries > 10 {
        problems.push(format!("{path}.retries"), "must be at most 10");
    }
    if retry.max_backoff < retry.backoff {
        problems.push(format!("{path}.max_backoff"), "must not be shorter than backoff");
    }
    let timeouts = RouteTimeouts {
        attempt: raw.attempt_timeout.unwrap_or(Duration::from_secs(120)),
        first_token: raw.first_token_timeout.unwrap_or(Duration::from_secs(30)),
        stream_idle: raw.stream_idle_timeout.unwrap_or(Duration::from_secs(60)),
        total: raw.total_timeout.unwrap_or(Duration::from_secs(300)),
    };
    for (field, value) in [
        ("attempt_timeout", timeouts.attempt),
        ("first_token_timeout", timeouts.first_token),
        ("stream_idle_timeout", timeouts.stream_idle),
        ("total_timeout", timeouts.total),
    ] {
        if value.is_zero() {
            problems.push(format!("{path}.{field}"), "must be longer than zero");
        }
    }
    let strategy = match raw.strategy.as_deref().unwrap_or("priority") {
        "priority" => Strategy::Priority,
        "weighted" => Strategy::Weighted,
        "least-latency" => Strategy::LeastLatency,
        "cheapest" => Strategy::Cheapest,
        other => {
            problems.push(
                format!("{path}.strategy"),
                format!("unknown strategy \"{other}\"{} (known: {})", did_you_mean(other, &Strategy::NAMES), Strategy::NAMES.join(", ")),
            );
            Strategy::Priority
        }
    };
    for (i, target) in raw.targets.iter().enumerate() {
        if target.weight == Some(0) && strategy == Strategy::Weighted {
            problems.push(format!("{path}.targets[{i}].weight"), "must be at least 1 (remove the target to send it nothing)");
        }
    }
    let mut max_share = Vec::new();
    for (dimension, cap) in &raw.max_share {
        match TopologyDimension::parse(dimension) {
            Some(d) if *cap > 0.0 && *cap <= 1.0 => max_share.push((d, *cap)),
            Some(_) => problems.push(format!("{path}.max_share.{dimension}"), "must be above 0 and at most 1"),
            None => problems.push(
                format!("{path}.max_share.{dimension}"),
                format!("unknown topology dimension{} (known: {})", did_you_mean(dimension, &TopologyDimension::NAMES), TopologyDimension::NAMES.join(", ")),
            ),
        }
    }
    if raw.max_concurrency == Some(0) {
        problems.push(format!("{path}.max_concurrency"), "must be at least 1");
    }
    let stream_recovery = match raw.stream_recovery.as_deref().unwrap_or("error") {
        "error" => StreamRecovery::Error,
        "continue" => StreamRecovery::Continue,
        other => {
            problems.push(
                format!("{path}.stream_recovery"),
                format!("\"{other}\" is not one of error, continue{}", did_you_mean(other, &["error", "continue"])),
            );
            StreamRecovery::Error
        }
    };
    if problems.0.len() > errors_before {
        return None;
    }
    Some(RouteConfig {
        name: name.to_owned(),
        description: raw.description.clone(),
        targets: raw
            .targets
            .iter()
            .map(|t| TargetConfig::new(t.provider.clone(), t.model.clone(), t.priced_as.clone(), t.weight.unwrap_or(1), t.context_window))
            .collect(),
        retry,
        timeouts,
        strategy,
        hedge_after: raw.hedge_after,
        stream_recovery,
        max_concurrency: raw.max_concurrency,
        queue_timeout: raw.queue_timeout.unwrap_or(Duration::from_secs(1)),
        max_share,
        share_window: raw.share_window.unwrap_or(Duration::from_secs(300)),
    })
}

fn price(index: usize, raw: &RawPrice, problems: &mut Problems) -> Option<PriceRow> {
    let path = format!("prices[{index}]");
    let effective_from = match chrono::NaiveDate::parse_from_str(&raw.effective_from, "%Y-%m-%d") {
        Ok(d) => d,
        Err(_) => {
            problems.push(format!("{path}.effective_from"), format!("\"{}\" is not a date like 2026-01-31", raw.effective_from));
            return None;
        }
    };
    let prices = [
        ("input_per_mtok", Some(raw.input_per_mtok)),
        ("output_per_mtok", Some(raw.output_per_mtok)),
        ("cache_read_per_mtok", raw.cache_read_per_mtok),
        ("cache_write_per_mtok", raw.cache_write_per_mtok),
    ];
    let mut ok = true;
    for (field, value) in prices {
        if let Some(v) = value {
            if !(v >= 0.0 && v.is_finite()) {
                problems.push(format!("{path}.{field}"), "must be a non-negative number");
                ok = false;
            }
        }
    }
    ok.then(|| PriceRow {
        provider: raw.provider.clone(),
        model: raw.model.clone(),
        effective_from,
        input_per_mtok: raw.input_per_mtok,
        output_per_mtok: raw.output_per_mtok,
        cache_read_per_mtok: raw.cache_read_per_mtok,
        cache_write_per_mtok: raw.cache_write_per_mtok,
        source: raw.source.clone().unwrap_or_else(|| "configuration".to_owned()),
    })
}

/// ` (did you mean "x"?)` when a known name is close to `name`, else nothing.
fn did_you_mean(name: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(" (did you mean \"{k}\"?)"))
        .unwrap_or_default()
}
