//! The `openai-compatible` provider: any server that speaks OpenAI chat completions
//! (vLLM, llama.cpp server, Ollama, Groq, Together, Mistral, DeepSeek, …).
//!
//! The key is optional (local servers often have none), and the output limit is sent
//! as `max_tokens`, the field every such server understands.

use secrecy::{ExposeSecret, SecretString};

use super::openai::{OpenAiChatUpstream, UpstreamSpec};
use super::HttpClient;
use crate::config::ProviderConfig;
use crate::dialects::openai_chat::MaxTokensField;

pub(super) fn compatible(
    config: &ProviderConfig,
    base_url: &str,
    api_key: Option<&SecretString>,
    headers: &[(String, SecretString)],
    http: &HttpClient,
) -> OpenAiChatUpstream {
    OpenAiChatUpstream::new(
        UpstreamSpec {
            config,
            url_template: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            auth: api_key.map(|k| ("authorization", format!("Bearer {}", k.expose_secret()))),
            secret: api_key.cloned(),
            extra_headers: headers,
            max_tokens_field: MaxTokensField::MaxTokens,
        },
        http,
    )
}
