//! Back doors: one module per provider kind, behind a closed [`Provider`] enum.
//!
//! An adapter turns a canonical request into its upstream's wire format, signs or
//! authenticates it, sends it, and turns the answer (or stream) back into canonical
//! form. Failures are classified here, once ([`UpstreamError`]); deciding what to do
//! about them is the router's job. Providers use dialect codecs but never front doors.

mod anthropic;
mod azure_openai;
pub mod bedrock;
mod error;
pub mod gemini;
mod openai;
mod openai_compatible;
mod sim;
mod pool;
mod transport;
mod upstream;
mod vertex;

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;

pub use error::{parse_go_duration, parse_retry_after, retry_after_from_headers, ErrorKind, Fault, RateLimitHint, UpstreamError};
pub use anthropic::AnthropicUpstream;
pub use openai::OpenAiChatUpstream;
pub use sim::Sim;
pub use transport::HttpClient;
pub use vertex::VertexUpstream;

use crate::canonical::{ChatRequest, ChatResponse, Dialect, StreamEvent};
use crate::config::{ProviderConfig, ProviderSettings};

/// A configured upstream, ready to take attempts.
#[derive(Debug)]
pub enum Provider {
    OpenAi(OpenAiChatUpstream),
    AzureOpenAi(OpenAiChatUpstream),
    OpenAiCompatible(OpenAiChatUpstream),
    Anthropic(AnthropicUpstream),
    Bedrock(bedrock::BedrockUpstream),
    Gemini(gemini::GeminiUpstream),
    Vertex(VertexUpstream),
    Sim(Sim),
}

/// What one attempt sends.
#[derive(Debug, Clone, Copy)]
pub struct AttemptRequest<'a> {
    pub request: &'a ChatRequest,
    /// The provider's model id (or Azure deployment) for this target.
    pub model: &'a str,
    /// The client's JSON body, when the client spoke the upstream's dialect, for passthrough.
    pub original: Option<&'a [u8]>,
    /// The client's `anthropic-beta` header, passed on to Anthropic-dialect upstreams.
    pub anthropic_beta: Option<&'a str>,
    /// The client's `anthropic-version`, sent instead of the configured one when its
    /// body is passed through unchanged.
    pub anthropic_version: Option<&'a str>,
}

/// A successful attempt's answer.
pub enum Answer {
    /// Boxed: an answer is handed up through several layers (provider, attempt, failover,
    /// pipeline, front door), and each move of a few hundred bytes inline was a `memcpy`
    /// call; a box moves as a pointer, for one allocation.
    Complete(Box<Completion>),
    Stream(EventStream),
}

pub struct Completion {
    pub response: ChatResponse,
    /// The upstream's HTTP status (a 2xx; the simulator says 200), for the ledger.
    pub status: u16,
    /// Quota left, from the upstream's rate-limit headers.
    pub rate_limit: Option<RateLimitHint>,
    /// The upstream's body, unchanged, when the client speaks the upstream's dialect.
    pub passthrough: Option<Bytes>,
}

pub type ItemStream = Pin<Box<dyn Stream<Item = Result<StreamItem, UpstreamError>> + Send>>;

/// A streamed answer. It ends with [`StreamEvent::MessageStop`] when the upstream
/// finished, or with an error: never silently in the middle.
pub struct EventStream {
    /// Whether `raw` payloads are the client's dialect and should be forwarded as-is.
    pub passthrough: bool,
    /// The upstream's HTTP status (a 2xx; the simulator says 200), for the ledger.
    pub status: u16,
    /// Quota left, from the upstream's rate-limit headers.
    pub rate_limit: Option<RateLimitHint>,
    pub items: ItemStream,
}

/// What one upstream stream record decoded into.
#[derive(Debug, Clone, Default)]
pub struct StreamItem {
    pub events: Vec<StreamEvent>,
    /// The record's payload as received, for passthrough (`None` when there is nothing
    /// the client should see verbatim, such as a usage report it did not ask for).
    pub raw: Option<String>,
    /// Cumulative usage the upstream reported in this record, if any: billed even if
    /// the stream breaks before its end.
    pub usage: Option<crate::canonical::Usage>,
}

impl Provider {
    pub fn from_config(config: &ProviderConfig, http: &HttpClient) -> Arc<Provider> {
        let provider = match &config.settings {
            ProviderSettings::OpenAi { base_url, api_key, headers } => {
                Provider::OpenAi(openai::openai(config, base_url, api_key, headers, http))
            }
            ProviderSettings::AzureOpenAi { endpoint, api_version, api_key, headers } => {
                Provider::AzureOpenAi(azure_openai::azure(config, endpoint, api_version, api_key, headers, http))
            }
            ProviderSettings::OpenAiCompatible { base_url, api_key, headers } => {
                Provider::OpenAiCompatible(openai_compatible::compatible(config, base_url, api_key.as_ref(), headers, http))
            }
            ProviderSettings::Anthropic { base_url, api_key, anthropic_version } => Provider::Anthropic(
                AnthropicUpstream::claude_api(config.name.clone(), base_url, api_key.clone(), anthropic_version.clone(), http.clone()),
            ),
            ProviderSettings::Bedrock { region, profile, endpoint, static_keys } => {
                use secrecy::ExposeSecret;
                let credentials = match static_keys {
                    Some(keys) => bedrock::static_credentials(
                        keys.access_key_id.expose_secret().to_owned(),
                        keys.secret_access_key.expose_secret().to_owned(),
                        keys.session_token.as_ref().map(|t| t.expose_secret().to_owned()),
                    ),
                    None => bedrock::lazy_default_credentials(region.clone(), profile.clone()),
                };
                Provider::Bedrock(bedrock::BedrockUpstream::new(config.name.clone(), region.clone(), credentials, http.clone(), endpoint.clone()))
            }
            ProviderSettings::Gemini { base_url, api_key } => {
                Provider::Gemini(gemini::GeminiUpstream::gemini_api(config.name.clone(), api_key.clone(), http.clone(), base_url.clone()))
            }
            ProviderSettings::Vertex { project, region, base_url, access_token } => {
                let auth = Arc::new(match access_token {
                    Some(token) => gemini::GoogleAuth::Static(token.clone()),
                    None => gemini::GoogleAuth::lazy(),
                });
                Provider::Vertex(VertexUpstream::new(config.name.clone(), project, region, base_url.as_deref(), auth, http))
            }
            ProviderSettings::Sim(settings) => Provider::Sim(Sim::new(config.name.clone(), settings.clone())),
        };
        Arc::new(provider)
    }

    /// The wire format this provider's upstream speaks for `model`: a client speaking the
    /// same one gets passthrough. `None` for the simulator, which has no wire format.
    pub fn dialect(&self, model: &str) -> Option<Dialect> {
        match self {
            Provider::OpenAi(_) | Provider::AzureOpenAi(_) | Provider::OpenAiCompatible(_) => Some(Dialect::OpenAiChat),
            Provider::Anthropic(_) => Some(Dialect::AnthropicMessages),
            Provider::Bedrock(_) => Some(Dialect::BedrockConverse),
            Provider::Gemini(_) => Some(Dialect::Gemini),
            Provider::Vertex(_) if VertexUpstream::is_claude(model) => Some(Dialect::AnthropicMessages),
            Provider::Vertex(_) => Some(Dialect::Gemini),
            Provider::Sim(_) => None,
        }
    }

    /// Whether a trailing assistant message is taken as the start of the answer to
    /// continue ("prefill"). Where it is not, a continuation must be asked for in words.
    pub fn supports_prefill(&self, model: &str) -> bool {
        match self {
            Provider::Anthropic(_) | Provider::Sim(_) => true,
            Provider::Vertex(_) => VertexUpstream::is_claude(model),
            // Converse passes a final assistant turn to Claude models as prefill.
            Provider::Bedrock(_) => model.contains("anthropic."),
            Provider::OpenAi(_) | Provider::AzureOpenAi(_) | Provider::OpenAiCompatible(_) | Provider::Gemini(_) => false,
        }
    }

    /// Whether answers are generated by the built-in simulator (labelled as such everywhere).
    pub fn is_simulated(&self) -> bool {
        match self {
            Provider::Sim(_) => true,
            Provider::OpenAi(_)
            | Provider::AzureOpenAi(_)
            | Provider::OpenAiCompatible(_)
            | Provider::Anthropic(_)
            | Provider::Bedrock(_)
            | Provider::Gemini(_)
            | Provider::Vertex(_) => false,
        }
    }

    /// Makes one attempt. For streams this returns once the upstream has accepted the
    /// request (headers received); the caller waits for the first event.
    ///
    /// Each adapter's future is boxed. Unboxed, this future is as large as the largest
    /// of them (about 3 KiB, Vertex's and Gemini's, which hold a token fetch), whatever
    /// the provider, and every future that awaits it (the attempt's timeout, the
    /// attempt, its box) grows by as much and is copied whole as it is built and moved:
    /// one allocation costs less than those copies.
    pub async fn send(&self, attempt: AttemptRequest<'_>) -> Result<Answer, UpstreamError> {
        match self {
            Provider::OpenAi(upstream) | Provider::AzureOpenAi(upstream) | Provider::OpenAiCompatible(upstream) => {
                Box::pin(upstream.send(attempt)).await
            }
            Provider::Anthropic(upstream) => Box::pin(upstream.send(attempt)).await,
            Provider::Bedrock(upstream) => Box::pin(upstream.send(attempt)).await,
            Provider::Gemini(upstream) => Box::pin(upstream.send(attempt)).await,
            Provider::Vertex(upstream) => Box::pin(upstream.send(attempt)).await,
            Provider::Sim(sim) => Box::pin(sim.send(attempt)).await,
        }
    }
}
