//! Configuration: one TOML file, read in two phases.
//!
//! [`raw`] mirrors the file and rejects unknown keys; [`validate`] resolves `${ENV}`
//! secrets, checks every cross-reference and default, and produces a [`Config`] whose
//! values can be trusted by the rest of the gateway. Every problem is reported with
//! the path of the value that caused it, all at once, so `switchyard check` can list
//! them together.

mod raw;
mod secret;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

pub use secret::{interpolate, EnvLookup};

use crate::ledger::PriceRow;

/// The built-in quickstart configuration `switchyard serve` uses without `--config`.
pub const QUICKSTART_TOML: &str = include_str!("../../examples/quickstart.toml");

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub ledger: LedgerConfig,
    /// Client keys by id; empty means the gateway accepts any caller as `anonymous`.
    pub keys: Vec<ClientKey>,
    pub providers: BTreeMap<String, Arc<ProviderConfig>>,
    pub routes: BTreeMap<String, Arc<RouteConfig>>,
    /// Price rows that add to or override the built-in catalog.
    pub prices: Vec<PriceRow>,
    /// Things that are allowed but probably unintended.
    pub warnings: Vec<String>,
    /// SHA-256 of the admin token; `None` disables the admin API.
    pub admin_token_sha256: Option<[u8; 32]>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub drain_timeout: Duration,
    /// See `server.header_timeout` in the README. Read when the server starts.
    pub header_timeout: Duration,
    /// See `server.threads` in the README; `None`: one per CPU the process may use.
    /// Read when the server starts.
    pub threads: Option<std::num::NonZeroUsize>,
}

#[derive(Debug, Clone)]
pub struct LedgerConfig {
    pub url: String,
    pub batch_size: usize,
    pub flush_interval: Duration,
}

/// A client key: only the SHA-256 of the secret is kept.
#[derive(Clone)]
pub struct ClientKey {
    /// Shared with every ledger record of the key's requests.
    pub id: Arc<str>,
    pub secret_sha256: [u8; 32],
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey").field("id", &self.id).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub settings: ProviderSettings,
    pub topology: Topology,
    /// The price-catalog provider id its models are priced under.
    pub catalog: String,
    pub connect_timeout: Duration,
    /// CA certificates from `ca_file`, trusted for this provider besides the public roots.
    pub ca_certificates: Arc<[rustls::pki_types::CertificateDer<'static>]>,
    pub breaker: BreakerPolicy,
    pub max_concurrency: Option<u32>,
    /// The largest answer body, and the largest single stream event, the gateway reads
    /// from this provider.
    pub max_answer_bytes: usize,
}

/// When a target's circuit opens and how it recovers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    pub consecutive_failures: u32,
    pub error_rate: f64,
    pub window: Duration,
    pub min_requests: u32,
    pub open_for: Duration,
    pub half_open_probes: u32,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            consecutive_failures: 5,
            error_rate: 0.5,
            window: Duration::from_secs(30),
            min_requests: 20,
            open_for: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

impl ProviderConfig {
    pub fn kind(&self) -> &'static str {
        self.settings.kind()
    }
}

/// Kind-specific settings, secrets already resolved.
#[derive(Debug, Clone)]
pub enum ProviderSettings {
    OpenAi { base_url: String, api_key: SecretString, headers: Vec<(String, SecretString)> },
    AzureOpenAi { endpoint: String, api_version: String, api_key: SecretString, headers: Vec<(String, SecretString)> },
    OpenAiCompatible { base_url: String, api_key: Option<SecretString>, headers: Vec<(String, SecretString)> },
    Anthropic { base_url: String, api_key: SecretString, anthropic_version: String },
    Bedrock { region: String, profile: Option<String>, endpoint: Option<String>, static_keys: Option<AwsKeys> },
    Gemini { base_url: Option<String>, api_key: SecretString },
    /// Vertex AI: Gemini models, and Claude models (ids starting `claude`) via rawPredict.
    Vertex { project: String, region: String, base_url: Option<String>, access_token: Option<SecretString> },
    Sim(SimSettings),
}

/// Static AWS credentials from the config.
#[derive(Debug, Clone)]
pub struct AwsKeys {
    pub access_key_id: SecretString,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

impl ProviderSettings {
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderSettings::OpenAi { .. } => "openai",
            ProviderSettings::AzureOpenAi { .. } => "azure-openai",
            ProviderSettings::OpenAiCompatible { .. } => "openai-compatible",
            ProviderSettings::Anthropic { .. } => "anthropic",
            ProviderSettings::Bedrock { .. } => "bedrock",
            ProviderSettings::Gemini { .. } => "gemini",
            ProviderSettings::Vertex { .. } => "vertex",
            ProviderSettings::Sim(_) => "sim",
        }
    }
}

/// The built-in simulator's behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSettings {
    pub time_to_first_token: Duration,
    pub tokens_per_second: f64,
    pub failure_rate: f64,
    pub failure_kind: SimFailure,
    pub retry_after: Duration,
    pub output_tokens: u32,
    pub seed: Option<u64>,
}

/// How a simulated failure shows itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimFailure {
    ServerError,
    RateLimited,
    ConnectionReset,
    Stall,
}

impl SimFailure {
    pub const NAMES: [&'static str; 4] = ["5xx", "429", "reset", "stall"];
}

/// What a provider depends on, for routing constraints and risk reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub vendor: Option<String>,
    pub operator: Option<String>,
    pub cloud: Option<String>,
    pub region: Option<String>,
    pub accelerator: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    pub description: Option<String>,
    pub targets: Vec<TargetConfig>,
    pub retry: RetryPolicy,
    pub timeouts: RouteTimeouts,
    pub strategy: Strategy,
    pub hedge_after: Option<Duration>,
    pub stream_recovery: StreamRecovery,
    pub max_concurrency: Option<u32>,
    pub queue_timeout: Duration,
    /// (dimension, cap) pairs, e.g. (Cloud, 0.7).
    pub max_share: Vec<(TopologyDimension, f64)>,
    pub share_window: Duration,
}

/// What a route does when a stream breaks after the client has received part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRecovery {
    /// End the client's stream with an error event in its dialect.
    Error,
    /// Ask the next target to continue the partial answer and splice it in.
    Continue,
}

/// How a route orders its targets before failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// In the order configured.
    Priority,
    /// Randomly by weight, the rest following by weight.
    Weighted,
    /// Lowest recent latency first (power of two choices over an EWMA).
    LeastLatency,
    /// Lowest catalog price first.
    Cheapest,
}

impl Strategy {
    pub const NAMES: [&'static str; 4] = ["priority", "weighted", "least-latency", "cheapest"];
}

/// A dimension of provider topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopologyDimension {
    Vendor,
    Operator,
    Cloud,
    Region,
    Accelerator,
}

impl TopologyDimension {
    pub const ALL: [TopologyDimension; 5] = [
        TopologyDimension::Vendor,
        TopologyDimension::Operator,
        TopologyDimension::Cloud,
        TopologyDimension::Region,
        TopologyDimension::Accelerator,
    ];
    /// The names config files use, in [`Self::ALL`]'s order.
    pub const NAMES: [&'static str; 5] = {
        let mut names = [""; 5];
        let mut i = 0;
        while i < names.len() {
            names[i] = Self::ALL[i].as_str();
            i += 1;
        }
        names
    };

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|dimension| dimension.as_str() == name)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            TopologyDimension::Vendor => "vendor",
            TopologyDimension::Operator => "operator",
            TopologyDimension::Cloud => "cloud",
            TopologyDimension::Region => "region",
            TopologyDimension::Accelerator => "accelerator",
        }
    }
}

impl Topology {
    pub fn get(&self, dimension: TopologyDimension) -> Option<&str> {
        match dimension {
            TopologyDimension::Vendor => self.vendor.as_deref(),
            TopologyDimension::Operator => self.operator.as_deref(),
            TopologyDimension::Cloud => self.cloud.as_deref(),
            TopologyDimension::Region => self.region.as_deref(),
            TopologyDimension::Accelerator => self.accelerator.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    pub provider: String,
    pub model: String,
    pub priced_as: Option<String>,
    pub weight: u32,
    pub context_window: Option<u64>,
    /// `provider/model`, made once: every request names its targets by it.
    label: String,
}

impl TargetConfig {
    pub fn new(provider: String, model: String, priced_as: Option<String>, weight: u32, context_window: Option<u64>) -> TargetConfig {
        let label = format!("{provider}/{model}");
        TargetConfig { provider, model, priced_as, weight, context_window, label }
    }

    /// The target's name in logs, metrics and the ledger: `provider/model`.
    pub fn label(&self) -> &str {
        &self.label
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries on the same target after its first attempt.
    pub retries: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// A `retry-after` longer than this skips to the next target instead of waiting.
    pub max_retry_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteTimeouts {
    /// One attempt, from sending the request to the end of a non-streamed answer.
    pub attempt: Duration,
    /// From sending a streamed request to its first content event.
    pub first_token: Duration,
    /// Longest silence between two events of a stream once it has started.
    pub stream_idle: Duration,
    /// The whole request, every attempt and backoff included.
    pub total: Duration,
}

/// One problem in a configuration, with the path of the value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Parses and validates a TOML configuration, resolving `${ENV}` through `env`.
    pub fn from_toml(text: &str, env: EnvLookup<'_>) -> Result<Config, ConfigErrors> {
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| ConfigErrors(vec![toml_error(text, &e)]))?;
        validate::validate(raw, env)
    }

    /// Reads a configuration file, resolving `${ENV}` from the process environment.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![ConfigError::new("", format!("cannot read {}: {e}", path.display()))]))?;
        Config::from_toml(&text, &|name| std::env::var(name).ok())
    }

    /// The built-in quickstart configuration.
    pub fn quickstart() -> Result<Config, ConfigErrors> {
        Config::from_toml(QUICKSTART_TOML, &|name| std::env::var(name).ok())
    }
}

/// Turns a TOML syntax or type error into a message with line and column.
fn toml_error(text: &str, err: &toml::de::Error) -> ConfigError {
    let message = err.message().to_owned();
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            ConfigError::new(format!("line {line}, column {column}"), message)
        }
        None => ConfigError::new("", message),
    }
}
