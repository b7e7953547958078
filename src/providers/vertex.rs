//! The `vertex` provider: Google Vertex AI, which serves Google's Gemini models
//! (`generateContent`) and Anthropic's Claude models (`rawPredict`, Anthropic's dialect)
//! from the same project and region with the same Google credentials. The target's
//! model id decides: ids starting with `claude` go to the Anthropic publisher.
//! Reference: <https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude>.

use std::sync::Arc;

use super::anthropic::AnthropicUpstream;
use super::gemini::{GeminiUpstream, GoogleAuth};
use super::{Answer, AttemptRequest, HttpClient, UpstreamError};

#[derive(Debug)]
pub struct VertexUpstream {
    gemini: GeminiUpstream,
    claude: AnthropicUpstream,
}

impl VertexUpstream {
    pub fn new(name: String, project: &str, region: &str, base_url: Option<&str>, auth: Arc<GoogleAuth>, http: &HttpClient) -> Self {
        // The global location has no regional host prefix.
        let host = match base_url {
            Some(url) => url.to_owned(),
            None if region == "global" => "https://aiplatform.googleapis.com".to_owned(),
            None => format!("https://{region}-aiplatform.googleapis.com"),
        };
        VertexUpstream {
            gemini: GeminiUpstream::vertex(name.clone(), project.to_owned(), region.to_owned(), (*auth).clone(), http.clone(), base_url.map(str::to_owned)),
            claude: AnthropicUpstream::vertex(name, &host, project, region, auth, http.clone()),
        }
    }

    /// Whether `model` is served in Anthropic's dialect on Vertex.
    pub fn is_claude(model: &str) -> bool {
        model.starts_with("claude")
    }

    pub async fn send(&self, attempt: AttemptRequest<'_>) -> Result<Answer, UpstreamError> {
        if Self::is_claude(attempt.model) {
            self.claude.send(attempt).await
        } else {
            self.gemini.send(attempt).await
        }
    }
}
