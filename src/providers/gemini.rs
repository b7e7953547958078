//! The `gemini` and `vertex` providers: Google's Gemini models through the Gemini API
//! (an API key) and through Vertex AI (an OAuth token for a Google Cloud project).
//!
//! Both speak the `gemini` dialect ([`crate::dialects::gemini`]); they differ in URL,
//! authentication and which file references they take. References:
//! <https://ai.google.dev/api/generate-content> and
//! <https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference>.
//! Streams use `:streamGenerateContent?alt=sse`, where each SSE event is a whole
//! `GenerateContentResponse`. Nothing is passed through: no front door speaks Gemini yet.
//!
//! The API key travels in the `x-goog-api-key` header, never in the `?key=` query
//! parameter: Google's error messages can echo the request URL, and the gateway's
//! transport errors can too.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::{ExposeSecret, SecretString};

use super::transport;
use super::upstream::{self, Decoded, FrameDecode, SseFraming};
use super::*;
use crate::dialects::gemini::{self, AnswerError, EncodeOptions, GeminiStatus, GeminiStreamDecoder, GeminiSurface, ResponseContext};
use crate::dialects::sse::SseEvent;

/// The OAuth scope Vertex AI needs
/// (<https://cloud.google.com/vertex-ai/docs/general/access-control>).
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

const GEMINI_API_BASE: &str = "https://generativelanguage.googleapis.com";

/// Project, location and model ids each stay one path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// How requests to Google are authenticated.
#[derive(Clone)]
pub enum GoogleAuth {
    /// A Gemini API key, sent as `x-goog-api-key`.
    ApiKey(SecretString),
    /// OAuth access tokens from `gcp_auth` (service-account file, gcloud credentials or
    /// the metadata server), which caches them until they expire.
    Oauth(Arc<dyn gcp_auth::TokenProvider>),
    /// A fixed bearer token: for tests, or a token minted outside the gateway.
    Static(SecretString),
    /// Google's credential discovery, run on first use (config loading is synchronous;
    /// discovery may ask the metadata server). A failure is retried on the next request.
    Lazy(Arc<tokio::sync::Mutex<Option<Arc<dyn gcp_auth::TokenProvider>>>>),
}

impl std::fmt::Debug for GoogleAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GoogleAuth::ApiKey(_) => "GoogleAuth::ApiKey(..)",
            GoogleAuth::Oauth(_) => "GoogleAuth::Oauth(..)",
            GoogleAuth::Static(_) => "GoogleAuth::Static(..)",
            GoogleAuth::Lazy(_) => "GoogleAuth::Lazy(..)",
        })
    }
}

impl GoogleAuth {
    /// Credentials discovered the standard way on first use.
    pub fn lazy() -> GoogleAuth {
        GoogleAuth::Lazy(Arc::new(tokio::sync::Mutex::new(None)))
    }

    /// The header that authenticates one request.
    pub(crate) async fn header(&self, provider: &str) -> Result<(&'static str, HeaderValue), UpstreamError> {
        let (name, value) = match self {
            GoogleAuth::ApiKey(key) => ("x-goog-api-key", key.expose_secret().to_owned()),
            GoogleAuth::Static(token) => ("authorization", format!("Bearer {}", token.expose_secret())),
            GoogleAuth::Lazy(cell) => {
                let tokens = {
                    let mut slot = cell.lock().await;
                    match slot.as_ref() {
                        Some(tokens) => tokens.clone(),
                        None => {
                            let tokens = gcp_auth::provider().await.map_err(|e| {
                                UpstreamError::new(ErrorKind::Auth, format!("{provider}: no Google credentials found ({})", error_chain(&e)))
                            })?;
                            *slot = Some(tokens.clone());
                            tokens
                        }
                    }
                };
                let token = tokens.token(&[CLOUD_PLATFORM_SCOPE]).await.map_err(|e| {
                    UpstreamError::new(ErrorKind::Auth, format!("{provider}: could not get a Google access token ({})", error_chain(&e)))
                })?;
                ("authorization", format!("Bearer {}", token.as_str()))
            }
            GoogleAuth::Oauth(tokens) => {
                let token = tokens.token(&[CLOUD_PLATFORM_SCOPE]).await.map_err(|e| {
                    UpstreamError::new(ErrorKind::Auth, format!("{provider}: could not get a Google access token ({})", error_chain(&e)))
                })?;
                ("authorization", format!("Bearer {}", token.as_str()))
            }
        };
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| UpstreamError::new(ErrorKind::Auth, format!("{provider}: the Google credential is not a valid header value")))?;
        value.set_sensitive(true);
        Ok((name, value))
    }

    /// The fixed secret, to scrub from upstream text we pass on.
    fn fixed_secret(&self) -> Option<&SecretString> {
        match self {
            GoogleAuth::ApiKey(secret) | GoogleAuth::Static(secret) => Some(secret),
            GoogleAuth::Oauth(_) | GoogleAuth::Lazy(_) => None,
        }
    }
}

/// Finds Google credentials the standard way (`gcp_auth::provider`): the service-account
/// file named by `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's application-default
/// credentials, the metadata server, then the `gcloud` tool. Call it once, at startup.
pub async fn google_auth_from_environment() -> Result<GoogleAuth, String> {
    gcp_auth::provider().await.map(GoogleAuth::Oauth).map_err(|e| format!("no Google credentials found: {}", error_chain(&e)))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An upstream that speaks Gemini: the Gemini API or Vertex AI.
pub struct GeminiUpstream {
    provider: String,
    surface: GeminiSurface,
    /// Everything before `/{model}:generateContent`.
    models_url: String,
    auth: GoogleAuth,
    http: HttpClient,
}

impl std::fmt::Debug for GeminiUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeminiUpstream")
            .field("provider", &self.provider)
            .field("surface", &self.surface)
            .field("models_url", &self.models_url)
            .finish_non_exhaustive()
    }
}

impl GeminiUpstream {
    /// The Gemini API: `POST {base}/v1beta/models/{model}:generateContent`.
    /// `base_url` replaces `https://generativelanguage.googleapis.com` (a proxy, a mock).
    pub fn gemini_api(name: String, api_key: SecretString, http: HttpClient, base_url: Option<String>) -> Self {
        let base = base_url.unwrap_or_else(|| GEMINI_API_BASE.to_owned());
        GeminiUpstream {
            provider: name,
            surface: GeminiSurface::DeveloperApi,
            models_url: format!("{}/v1beta/models", base.trim_end_matches('/')),
            auth: GoogleAuth::ApiKey(api_key),
            http,
        }
    }

    /// Vertex AI: `POST {base}/v1/projects/{project}/locations/{region}/publishers/google/models/{model}:generateContent`,
    /// where `base` is `https://{region}-aiplatform.googleapis.com`, or
    /// `https://aiplatform.googleapis.com` for the `global` location
    /// (<https://cloud.google.com/vertex-ai/generative-ai/docs/learn/locations>).
    /// `base_url` replaces it (a Private Service Connect endpoint, a mock).
    pub fn vertex(name: String, project: String, region: String, auth: GoogleAuth, http: HttpClient, base_url: Option<String>) -> Self {
        let base = base_url.unwrap_or_else(|| match region.as_str() {
            "global" => "https://aiplatform.googleapis.com".to_owned(),
            _ => format!("https://{}-aiplatform.googleapis.com", utf8_percent_encode(&region, PATH_SEGMENT)),
        });
        let models_url = format!(
            "{}/v1/projects/{}/locations/{}/publishers/google/models",
            base.trim_end_matches('/'),
            utf8_percent_encode(&project, PATH_SEGMENT),
            utf8_percent_encode(&region, PATH_SEGMENT),
        );
        GeminiUpstream { provider: name, surface: GeminiSurface::VertexAi, models_url, auth, http }
    }

    pub async fn send(&self, attempt: AttemptRequest<'_>) -> Result<Answer, UpstreamError> {
        let stream = attempt.request.stream;
        let wire = gemini::encode_request(attempt.request, EncodeOptions { surface: self.surface })
            .map_err(|feature| UpstreamError::new(ErrorKind::Unsupported, format!("{} (gemini) cannot take {feature}", self.provider)))?;
        let body = serde_json::to_vec(&wire).map_err(|e| UpstreamError::new(ErrorKind::Protocol, format!("could not encode the request: {e}")))?;
        let (auth_name, auth_value) = self.auth.header(&self.provider).await?;
        let mut headers = HeaderMap::new();
        headers.insert(auth_name, auth_value);
        let request = transport::post_json(transport::parse_uri(&self.url(attempt.model, stream), &self.provider)?, headers, body);
        let response = upstream::send(&self.http, request, |status, headers, body| self.classify(status, headers, body)).await?;
        let status = response.status().as_u16();
        if stream {
            let events = GeminiEvents { decoder: GeminiStreamDecoder::new(attempt.model), errors: self.error_context() };
            let items = upstream::items(response, SseFraming::default(), events, false, &self.provider);
            return Ok(Answer::Stream(EventStream { passthrough: false, status, rate_limit: None, items }));
        }
        let bytes = response.bytes().await?;
        let wire: gemini::GeminiResponse = serde_json::from_slice(&bytes)
            .map_err(|e| UpstreamError::new(ErrorKind::Protocol, format!("unreadable answer from {}: {e}", self.provider)))?;
        let context = ResponseContext { model: attempt.model, created: chrono::Utc::now().timestamp() };
        let response = gemini::decode_response(wire, context).map_err(|e| answer_error(&self.provider, e))?;
        Ok(Answer::Complete(Box::new(Completion { response, status, rate_limit: None, passthrough: None })))
    }

    /// A `models/` prefix (as Google's model listings spell ids) is accepted and dropped.
    fn url(&self, model: &str, stream: bool) -> String {
        let model = model.strip_prefix("models/").unwrap_or(model);
        let method = if stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
        format!("{}/{}:{method}", self.models_url, utf8_percent_encode(model, PATH_SEGMENT))
    }

    /// Maps an HTTP error answer to a classified error. The retry hint is the
    /// `retry-after` header, or else the `RetryInfo` detail Gemini sends with quota errors.
    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
        let rpc = gemini::parse_error_body(body).unwrap_or_default();
        let text = rpc.message.clone().unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
        let retry_after = retry_after_from_headers(headers).or_else(|| gemini::retry_delay(&rpc));
        self.error_context().status_error(Some(status), &rpc, &text).with_status(status).with_retry_after(retry_after)
    }

    fn error_context(&self) -> ErrorContext {
        ErrorContext { provider: self.provider.clone(), secret: self.auth.fixed_secret().cloned() }
    }
}

/// The error kind a Google error means: by its `google.rpc` status name when it has
/// one (<https://cloud.google.com/apis/design/errors#handling_errors>), else by HTTP status.
/// An invalid API key is a 400 `INVALID_ARGUMENT` with reason `API_KEY_INVALID`;
/// `FAILED_PRECONDITION` is how the Gemini API says the account cannot be served
/// (unsupported location, billing not enabled): both are the provider's configuration.
pub fn classify_error(status: Option<u16>, rpc_status: Option<&str>, reason: Option<&str>, message: &str) -> ErrorKind {
    if is_credential_failure(status, rpc_status, reason, message) || rpc_status == Some("FAILED_PRECONDITION") {
        return ErrorKind::Auth;
    }
    let invalid = || if mentions_token_limit(message) { ErrorKind::ContextTooLong } else { ErrorKind::InvalidRequest };
    match rpc_status {
        Some("RESOURCE_EXHAUSTED") => ErrorKind::RateLimited,
        Some("UNAVAILABLE") => ErrorKind::Overloaded,
        Some("DEADLINE_EXCEEDED") => ErrorKind::Timeout,
        Some("INVALID_ARGUMENT" | "OUT_OF_RANGE") => invalid(),
        Some("NOT_FOUND") => ErrorKind::NotFound,
        Some("INTERNAL" | "UNKNOWN" | "DATA_LOSS" | "ABORTED" | "CANCELLED") => ErrorKind::ServerError,
        _ => match status {
            Some(400 | 413 | 422) => invalid(),
            Some(404) => ErrorKind::NotFound,
            Some(408 | 504) => ErrorKind::Timeout,
            Some(429) => ErrorKind::RateLimited,
            Some(503 | 529) => ErrorKind::Overloaded,
            _ => ErrorKind::ServerError,
        },
    }
}

fn is_credential_failure(status: Option<u16>, rpc_status: Option<&str>, reason: Option<&str>, message: &str) -> bool {
    matches!(status, Some(401 | 403))
        || matches!(rpc_status, Some("UNAUTHENTICATED" | "PERMISSION_DENIED"))
        || matches!(reason, Some("API_KEY_INVALID" | "API_KEY_EXPIRED" | "API_KEY_SERVICE_BLOCKED"))
        || message.contains("API key not valid")
        || message.contains("API key expired")
}

/// Gemini says "The input token count (1234567) exceeds the maximum number of tokens
/// allowed (1048576)."; other wordings are matched too.
fn mentions_token_limit(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["exceeds the maximum number of tokens", "input token count", "token limit", "too many tokens", "context window", "context length", "too long"]
        .iter()
        .any(|phrase| message.contains(phrase))
}

fn answer_error(provider: &str, error: AnswerError) -> UpstreamError {
    match error {
        AnswerError::Blocked { reason, message } => {
            let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
            UpstreamError::new(ErrorKind::ContentPolicy, format!("{provider} blocked the request on policy grounds ({reason}){detail}")).with_code(Some(reason))
        }
        AnswerError::Malformed(message) => UpstreamError::new(ErrorKind::Protocol, format!("unusable answer from {provider}: {message}")),
        // Only streams carry errors inside an answer; they are classified there.
        AnswerError::Upstream(status) => UpstreamError::new(ErrorKind::ServerError, format!("{provider}: {}", AnswerError::Upstream(status))),
    }
}

/// What phrasing an error needs: the provider's name, and the credential to scrub
/// from upstream text (Google can echo a request's details back).
struct ErrorContext {
    provider: String,
    secret: Option<SecretString>,
}

impl ErrorContext {
    /// A `google.rpc.Status` as a classified error. Credential failures carry only
    /// Google's reason code, never the upstream's text (which can name the project or
    /// the key's owner).
    fn status_error(&self, http_status: Option<u16>, rpc: &GeminiStatus, text: &str) -> UpstreamError {
        let reason = gemini::error_reason(rpc);
        let status = http_status.or(rpc.code);
        let kind = classify_error(status, rpc.status.as_deref(), reason.as_deref(), text);
        let message = if is_credential_failure(status, rpc.status.as_deref(), reason.as_deref(), text) {
            let why = reason.as_deref().or(rpc.status.as_deref()).unwrap_or("no reason given");
            format!("{} rejected the gateway's credentials ({why})", self.provider)
        } else {
            format!("{}: {}", self.provider, self.scrub(text))
        };
        UpstreamError::new(kind, message).with_code(rpc.status.clone()).with_retry_after(gemini::retry_delay(rpc))
    }

    fn scrub(&self, text: &str) -> String {
        match &self.secret {
            Some(secret) if !secret.expose_secret().is_empty() => text.replace(secret.expose_secret(), "[redacted]"),
            _ => text.to_owned(),
        }
    }
}

/// Gemini chunks: an `error` object or a blocked answer fails the stream. There is no
/// end marker, so the message ends when the body does, complete if a finish reason came.
struct GeminiEvents {
    decoder: GeminiStreamDecoder,
    errors: ErrorContext,
}

impl FrameDecode for GeminiEvents {
    type Frame = SseEvent;

    fn event(&mut self, event: &SseEvent) -> Result<Decoded, UpstreamError> {
        if event.data.trim().is_empty() {
            return Ok(Decoded::default());
        }
        match self.decoder.push(&event.data) {
            Ok(events) => Ok(Decoded { events, forward: true, finished: false, usage: None }),
            Err(AnswerError::Upstream(status)) => {
                let text = status.message.clone().unwrap_or_else(|| "error inside the stream".to_owned());
                Err(self.errors.status_error(None, &status, &text))
            }
            Err(other) => Err(answer_error(&self.errors.provider, other)),
        }
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, UpstreamError> {
        if self.decoder.saw_finish_reason() {
            Ok(self.decoder.finish())
        } else {
            Err(upstream::ended_early(&self.errors.provider))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretString {
        SecretString::from("AIza-test-key")
    }

    #[test]
    fn vertex_urls_use_the_regional_host_or_the_global_one() {
        let regional = GeminiUpstream::vertex("v".into(), "my-proj".into(), "europe-west4".into(), GoogleAuth::Static(key()), HttpClient::default(), None);
        assert_eq!(
            regional.url("gemini-2.5-flash", false),
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
        );
        let global = GeminiUpstream::vertex("v".into(), "my-proj".into(), "global".into(), GoogleAuth::Static(key()), HttpClient::default(), None);
        assert_eq!(
            global.url("gemini-2.5-pro", true),
            "https://aiplatform.googleapis.com/v1/projects/my-proj/locations/global/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
    }

    #[test]
    fn gemini_api_urls_accept_model_ids_with_the_models_prefix() {
        let api = GeminiUpstream::gemini_api("g".into(), key(), HttpClient::default(), None);
        assert_eq!(api.url("models/gemini-2.0-flash", false), "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent");
    }

    #[test]
    fn the_debug_form_shows_no_credential() {
        let api = GeminiUpstream::gemini_api("g".into(), key(), HttpClient::default(), None);
        assert!(!format!("{api:?} {:?}", GoogleAuth::ApiKey(key())).contains("AIza"));
    }

    #[test]
    fn google_status_names_classify_before_http_statuses() {
        assert_eq!(classify_error(Some(400), Some("INVALID_ARGUMENT"), Some("API_KEY_INVALID"), "API key not valid."), ErrorKind::Auth);
        assert_eq!(classify_error(Some(400), Some("FAILED_PRECONDITION"), None, "User location is not supported"), ErrorKind::Auth);
        assert_eq!(classify_error(Some(500), Some("INTERNAL"), None, "oops"), ErrorKind::ServerError);
        assert_eq!(classify_error(Some(504), Some("DEADLINE_EXCEEDED"), None, "late"), ErrorKind::Timeout);
        assert_eq!(classify_error(Some(503), None, None, "?"), ErrorKind::Overloaded);
        assert_eq!(classify_error(None, None, None, "?"), ErrorKind::ServerError);
    }
}
