//! The configuration file exactly as written: serde types that reject unknown keys.
//! Nothing here is validated beyond its TOML type; `validate.rs` turns it into [`super::Config`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub ledger: RawLedger,
    #[serde(default)]
    pub keys: BTreeMap<String, RawKey>,
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub routes: BTreeMap<String, RawRoute>,
    #[serde(default)]
    pub prices: Vec<RawPrice>,
    #[serde(default)]
    pub admin: RawAdmin,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Bearer token for `/admin/api/...`; without one the admin API is off.
    pub token: Option<String>,
}

/// Circuit-breaker settings of a provider; state is kept per target.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    /// Consecutive failures that open the circuit.
    pub consecutive_failures: Option<u32>,
    /// Error rate over `window` that opens the circuit (once `min_requests` were seen).
    pub error_rate: Option<f64>,
    #[serde(default, with = "humantime_serde")]
    pub window: Option<Duration>,
    pub min_requests: Option<u32>,
    /// How long an open circuit stays open before a half-open probe.
    #[serde(default, with = "humantime_serde")]
    pub open_for: Option<Duration>,
    /// Probes allowed at once while half-open.
    pub half_open_probes: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: Option<usize>,
    /// How long a graceful shutdown waits for in-flight requests and streams.
    #[serde(default, with = "humantime_serde")]
    pub drain_timeout: Option<Duration>,
    /// How long an HTTP/1 client connection may take to send a request's headers,
    /// counted from when the server starts waiting for them (so it also closes
    /// keep-alive connections left idle that long).
    #[serde(default, with = "humantime_serde")]
    pub header_timeout: Option<Duration>,
    /// Threads that serve requests, each with a single-threaded runtime of its own.
    pub threads: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLedger {
    pub url: Option<String>,
    pub batch_size: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub flush_interval: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    /// The key itself, normally `${ENV}`; only its hash is kept.
    pub secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub kind: String,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    /// Azure OpenAI resource endpoint, e.g. `https://my-resource.openai.azure.com`.
    pub endpoint: Option<String>,
    pub api_version: Option<String>,
    /// `anthropic`: the `anthropic-version` header (default 2023-06-01).
    pub anthropic_version: Option<String>,
    /// `bedrock`, `vertex`: the cloud region (Vertex: a location such as `us-east5` or `global`).
    pub region: Option<String>,
    /// `bedrock`: the AWS profile for the default credential chain.
    pub profile: Option<String>,
    /// `bedrock`: static credentials instead of the default chain (use `${ENV}`).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// `vertex`: the Google Cloud project.
    pub project: Option<String>,
    /// `vertex`: a fixed OAuth access token instead of Google's credential discovery.
    pub access_token: Option<String>,
    /// Extra headers sent with every upstream request (values may use `${ENV}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Which price-catalog provider this provider's models are priced as.
    pub catalog: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    /// PEM file of CA certificates this provider's TLS server may chain to, besides the
    /// public roots (an internal CA, a TLS-inspecting egress proxy).
    pub ca_file: Option<String>,
    #[serde(default)]
    pub topology: RawTopology,
    #[serde(default)]
    pub breaker: RawBreaker,
    /// Most requests in flight to each of this provider's targets at once.
    pub max_concurrency: Option<u32>,
    /// The largest answer body, and the largest single stream event, read from this
    /// provider; a larger one fails the attempt instead of filling memory.
    pub max_answer_bytes: Option<usize>,
    /// `sim` only.
    #[serde(default)]
    pub sim: Option<RawSim>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    pub vendor: Option<String>,
    pub operator: Option<String>,
    pub cloud: Option<String>,
    pub region: Option<String>,
    pub accelerator: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSim {
    #[serde(default, with = "humantime_serde")]
    pub time_to_first_token: Option<Duration>,
    pub tokens_per_second: Option<f64>,
    pub failure_rate: Option<f64>,
    pub failure_kind: Option<String>,
    /// For `failure_kind = "429"`: the `retry-after` the simulator announces.
    #[serde(default, with = "humantime_serde")]
    pub retry_after: Option<Duration>,
    /// Length of every answer, in tokens.
    pub output_tokens: Option<u32>,
    /// Seed for the failure dice, for reproducible runs.
    pub seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub description: Option<String>,
    pub targets: Vec<RawTarget>,
    /// Retries per target after its first attempt.
    pub retries: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub backoff: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub max_backoff: Option<Duration>,
    /// A `retry-after` longer than this moves on to the next target instead of waiting.
    #[serde(default, with = "humantime_serde")]
    pub max_retry_after: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub attempt_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub first_token_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub stream_idle_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub total_timeout: Option<Duration>,
    /// `priority` (default), `weighted`, `least-latency` or `cheapest`.
    pub strategy: Option<String>,
    /// `error` (default): a stream that breaks after its first token ends with an error
    /// event. `continue`: the next target is asked to continue the partial answer.
    pub stream_recovery: Option<String>,
    /// Start the next target if the first has no first token after this long.
    #[serde(default, with = "humantime_serde")]
    pub hedge_after: Option<Duration>,
    /// Most requests in flight on this route at once.
    pub max_concurrency: Option<u32>,
    /// How long a request may wait for a free slot (route or target) before 429/503.
    #[serde(default, with = "humantime_serde")]
    pub queue_timeout: Option<Duration>,
    /// Caps on the share of recent traffic any one value of a topology dimension may
    /// carry, e.g. `{ cloud = 0.7 }`.
    #[serde(default)]
    pub max_share: BTreeMap<String, f64>,
    #[serde(default, with = "humantime_serde")]
    pub share_window: Option<Duration>,
    /// `warn` (default), `error` or `off`: whether `check` complains when every target
    /// shares one operator or one cloud.
    pub require_independent_fallback: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub provider: String,
    pub model: String,
    /// The catalog model id to price this target as, when `model` is a deployment name.
    pub priced_as: Option<String>,
    /// Relative weight for the `weighted` strategy (default 1).
    pub weight: Option<u32>,
    /// The model's context window in tokens: a "context too long" answer moves the
    /// request to a target with a larger one.
    pub context_window: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub provider: String,
    pub model: String,
    pub effective_from: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    pub cache_read_per_mtok: Option<f64>,
    pub cache_write_per_mtok: Option<f64>,
    pub source: Option<String>,
}
