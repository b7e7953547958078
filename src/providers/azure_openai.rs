//! The `azure-openai` provider: OpenAI chat completions on an Azure OpenAI resource.
//!
//! The target's model is the deployment name. Dated API versions put it in the path
//! (`/openai/deployments/{deployment}/chat/completions?api-version=…`); `api_version =
//! "v1"` uses the v1 surface (`/openai/v1/chat/completions`, model in the body).
//! Authentication is the `api-key` header. Reference:
//! <https://learn.microsoft.com/azure/ai-services/openai/reference>.

use secrecy::{ExposeSecret, SecretString};

use super::openai::{OpenAiChatUpstream, UpstreamSpec};
use super::HttpClient;
use crate::config::ProviderConfig;
use crate::dialects::openai_chat::MaxTokensField;

pub(super) fn azure(
    config: &ProviderConfig,
    endpoint: &str,
    api_version: &str,
    api_key: &SecretString,
    headers: &[(String, SecretString)],
    http: &HttpClient,
) -> OpenAiChatUpstream {
    let endpoint = endpoint.trim_end_matches('/');
    let url_template = if api_version == "v1" {
        format!("{endpoint}/openai/v1/chat/completions")
    } else {
        format!("{endpoint}/openai/deployments/{{model}}/chat/completions?api-version={api_version}")
    };
    OpenAiChatUpstream::new(
        UpstreamSpec {
            config,
            url_template,
            auth: Some(("api-key", api_key.expose_secret().to_owned())),
            secret: Some(api_key.clone()),
            extra_headers: headers,
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
        },
        http,
    )
}
