//! The `anthropic` provider: the Claude Messages API (`POST /v1/messages`), and the
//! same dialect on Google Vertex AI (`:rawPredict` / `:streamRawPredict`, model in the
//! URL, `anthropic_version` in the body).
//!
//! Authentication is `x-api-key` plus `anthropic-version`; a client's `anthropic-beta`
//! header is passed through. Reference: <https://platform.claude.com/docs/en/api/messages>.

use http::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::transport;
use super::upstream::{self, Decoded, FrameDecode, SseFraming};
use super::*;
use crate::canonical::StreamEvent;
use crate::dialects::anthropic_messages::{self as anthropic, EncodeOptions, ErrorClass, EventDecoder, Platform, StreamError};
use crate::dialects::json::{self, RawObject};
use crate::dialects::sse::SseEvent;
use super::gemini::GoogleAuth;

/// How requests to this upstream are authenticated.
pub enum AnthropicAuth {
    /// The Claude API's `x-api-key`.
    ApiKey(SecretString),
    /// Google credentials (Claude on Vertex AI).
    Google(Arc<GoogleAuth>),
}

pub struct AnthropicUpstream {
    provider: String,
    /// `{model}` and `{method}` (`rawPredict`/`streamRawPredict`, Vertex only) are filled per request.
    url_template: String,
    auth: AnthropicAuth,
    platform: Platform,
    anthropic_version: String,
    http: HttpClient,
}

impl std::fmt::Debug for AnthropicUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicUpstream").field("provider", &self.provider).field("url", &self.url_template).finish_non_exhaustive()
    }
}

impl AnthropicUpstream {
    /// The Claude API at `base_url` (default `https://api.anthropic.com`).
    pub fn claude_api(provider: String, base_url: &str, api_key: SecretString, anthropic_version: String, http: HttpClient) -> Self {
        AnthropicUpstream {
            provider,
            url_template: format!("{}/v1/messages", base_url.trim_end_matches('/')),
            auth: AnthropicAuth::ApiKey(api_key),
            platform: Platform::Anthropic,
            anthropic_version,
            http,
        }
    }

    /// Claude on Vertex AI: `…/projects/{project}/locations/{region}/publishers/anthropic/models/{model}:{method}`.
    pub fn vertex(provider: String, base_url: &str, project: &str, region: &str, auth: Arc<GoogleAuth>, http: HttpClient) -> Self {
        AnthropicUpstream {
            provider,
            url_template: format!(
                "{}/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{{model}}:{{method}}",
                base_url.trim_end_matches('/')
            ),
            auth: AnthropicAuth::Google(auth),
            platform: Platform::Vertex,
            anthropic_version: anthropic::ANTHROPIC_VERSION.to_owned(),
            http,
        }
    }

    pub async fn send(&self, attempt: AttemptRequest<'_>) -> Result<Answer, UpstreamError> {
        let stream = attempt.request.stream;
        let passthrough = attempt.original.is_some();
        let body = self.body(&attempt)?;
        let method = if stream { "streamRawPredict" } else { "rawPredict" };
        let url = self.url_template.replace("{model}", attempt.model).replace("{method}", method);
        let mut headers = HeaderMap::new();
        match &self.auth {
            AnthropicAuth::ApiKey(key) => {
                let mut value = HeaderValue::from_str(key.expose_secret())
                    .map_err(|_| UpstreamError::new(ErrorKind::Auth, format!("{}: the API key is not a valid header value", self.provider)))?;
                value.set_sensitive(true);
                headers.insert("x-api-key", value);
                // A passed-through body follows the client's API version; tell the upstream so.
                let version = attempt.anthropic_version.filter(|_| attempt.original.is_some()).unwrap_or(&self.anthropic_version);
                if let Ok(version) = HeaderValue::from_str(version) {
                    headers.insert("anthropic-version", version);
                }
            }
            AnthropicAuth::Google(auth) => {
                let (name, value) = auth.header(&self.provider).await?;
                headers.insert(name, value);
            }
        }
        if let Some(beta) = attempt.anthropic_beta.and_then(|b| HeaderValue::from_str(b).ok()) {
            headers.insert("anthropic-beta", beta);
        }
        let request = transport::post_json(transport::parse_uri(&url, &self.provider)?, headers, body);
        let response = upstream::send(&self.http, request, |status, headers, body| self.classify(status, headers, body)).await?;
        let rate_limit = RateLimitHint::from_headers(response.headers());
        let status = response.status().as_u16();
        if stream {
            let events = AnthropicEvents { decoder: EventDecoder::new(), provider: self.provider.clone() };
            let items = upstream::items(response, SseFraming::default(), events, passthrough, &self.provider);
            return Ok(Answer::Stream(EventStream { passthrough, status, rate_limit, items }));
        }
        let bytes = response.bytes().await?;
        let response = if passthrough {
            anthropic::decode_passthrough_response(&bytes)
        } else {
            json::from_bytes(&bytes).map(anthropic::decode_response)
        };
        let mut response =
            response.map_err(|e| UpstreamError::new(ErrorKind::Protocol, format!("unreadable answer from {}: {e}", self.provider)))?;
        response.created = chrono::Utc::now().timestamp();
        Ok(Answer::Complete(Box::new(Completion { response, status, rate_limit, passthrough: passthrough.then_some(bytes) })))
    }

    /// The client's JSON with only the model changed (on Vertex the model moves to the
    /// URL and the body names the API version instead); every other member as written.
    fn passthrough_body(&self, original: &[u8], model: &str) -> serde_json::Result<Vec<u8>> {
        if self.platform.body_version().is_none() {
            if let Some(body) = json::with_member(original, "model", model) {
                return Ok(body);
            }
        }
        let mut body = RawObject::parse(original)?;
        match self.platform.body_version() {
            Some(version) => {
                body.remove("model");
                body.set("anthropic_version", version)?;
            }
            None => body.set("model", model)?,
        }
        Ok(body.to_vec())
    }

    /// The client's own JSON when it spoke this dialect (only the model changes, or on
    /// Vertex moves to the URL), otherwise the canonical request encoded afresh.
    fn body(&self, attempt: &AttemptRequest<'_>) -> Result<Vec<u8>, UpstreamError> {
        let encoded = match attempt.original {
            Some(original) => self.passthrough_body(original, attempt.model),
            None => {
                let options = EncodeOptions { platform: self.platform, ..EncodeOptions::default() };
                let wire = anthropic::encode_request(attempt.request, attempt.model, options).map_err(|feature| {
                    UpstreamError::new(ErrorKind::Unsupported, format!("{} (anthropic-messages) cannot take {feature}", self.provider))
                })?;
                serde_json::to_vec(&wire)
            }
        };
        encoded.map_err(|e| UpstreamError::new(ErrorKind::Protocol, format!("could not encode the request: {e}")))
    }

    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
        let parsed = anthropic::parse_error_body(body);
        let kind = error_kind(anthropic::classify(status, &parsed));
        let text = parsed.message.clone().unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
        let message = match kind {
            ErrorKind::Auth => format!("{} rejected the gateway's credentials or billing", self.provider),
            _ => format!("{}: {}", self.provider, self.scrub(&text)),
        };
        UpstreamError::new(kind, message)
            .with_status(status)
            .with_retry_after(retry_after_from_headers(headers))
            .with_code(parsed.code.or(parsed.kind))
    }

    fn scrub(&self, text: &str) -> String {
        match &self.auth {
            AnthropicAuth::ApiKey(key) if !key.expose_secret().is_empty() => text.replace(key.expose_secret(), "[redacted]"),
            _ => text.to_owned(),
        }
    }
}

fn error_kind(class: ErrorClass) -> ErrorKind {
    match class {
        ErrorClass::InvalidRequest => ErrorKind::InvalidRequest,
        ErrorClass::ContextTooLong => ErrorKind::ContextTooLong,
        // A spending limit won't lift by retrying this target; another may still answer.
        ErrorClass::Auth | ErrorClass::Billing => ErrorKind::Auth,
        ErrorClass::NotFound => ErrorKind::NotFound,
        ErrorClass::RateLimited => ErrorKind::RateLimited,
        ErrorClass::Overloaded => ErrorKind::Overloaded,
        ErrorClass::Timeout => ErrorKind::Timeout,
        ErrorClass::ServerError => ErrorKind::ServerError,
    }
}

/// Anthropic events: `message_stop` ends the message, an `error` event fails it.
struct AnthropicEvents {
    decoder: EventDecoder,
    provider: String,
}

impl FrameDecode for AnthropicEvents {
    type Frame = SseEvent;

    fn event(&mut self, event: &SseEvent) -> Result<Decoded, UpstreamError> {
        match self.decoder.push(&event.data) {
            Ok(events) => {
                let finished = events.iter().any(|e| matches!(e, StreamEvent::MessageStop));
                Ok(Decoded { events, forward: true, finished, usage: Some(self.decoder.usage()) })
            }
            Err(StreamError::Upstream(body)) => {
                let status = anthropic::status_for_error_type(body.kind.as_deref().unwrap_or(""));
                let kind = error_kind(anthropic::classify(status, &body));
                let message = body.message.unwrap_or_else(|| "error event inside the stream".to_owned());
                Err(UpstreamError::new(kind, format!("{}: {message}", self.provider)).with_code(body.kind))
            }
            Err(StreamError::Malformed(e)) => Err(UpstreamError::new(ErrorKind::Protocol, format!("{}: {e}", self.provider))),
        }
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, UpstreamError> {
        if self.decoder.saw_stop_reason() {
            Ok(self.decoder.finish())
        } else {
            Err(upstream::ended_early(&self.provider))
        }
    }
}
