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
    /// Extra headers sent with every upstream request (values may use `${ENV}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Which price-catalog provider this provider's models are priced as.
    pub catalog: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    #[serde(default)]
    pub topology: RawTopology,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub provider: String,
    pub model: String,
    /// The catalog model id to price this target as, when `model` is a deployment name.
    pub priced_as: Option<String>,
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
