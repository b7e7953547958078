//! The `bedrock` provider: AWS Bedrock's Converse and ConverseStream APIs, signed with
//! SigV4.
//!
//! API reference: <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>
//! and `API_runtime_ConverseStream.html`. The request body is the canonical request in
//! the `bedrock-converse` dialect; streamed answers arrive as eventstream frames
//! ([`eventstream`]) whose JSON payloads the dialect's stream decoder turns into
//! canonical events. Nothing is passed through: no front door speaks Converse yet.

pub mod eventstream;
pub mod sigv4;

use std::time::SystemTime;

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::SharedCredentialsProvider;
use http::{HeaderMap, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use super::transport;
use super::upstream::{self, Decoded, EventstreamFraming, FrameDecode};
use super::*;
use crate::dialects::bedrock_converse::{self, ConverseStreamDecoder, ResponseContext};
use eventstream::StreamMessage;
pub use sigv4::{default_credentials, lazy_default_credentials, static_credentials};

/// Everything but RFC 3986 unreserved characters is escaped in the model id, so an
/// inference-profile id (`us.amazon.nova-micro-v1:0`) or an ARN (`arn:…/…`) stays one
/// path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// An upstream that speaks Bedrock Converse.
pub struct BedrockUpstream {
    provider: String,
    region: String,
    /// Scheme and host (and port), without a trailing slash.
    endpoint: String,
    credentials: sigv4::CredentialCache,
    http: HttpClient,
}

impl std::fmt::Debug for BedrockUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BedrockUpstream")
            .field("provider", &self.provider)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl BedrockUpstream {
    /// `endpoint_override` replaces `https://bedrock-runtime.{region}.amazonaws.com`
    /// (a VPC endpoint, a FIPS endpoint, or a mock); requests are still signed for `region`.
    pub fn new(
        name: String,
        region: String,
        credentials: SharedCredentialsProvider,
        http: HttpClient,
        endpoint_override: Option<String>,
    ) -> Self {
        let endpoint = endpoint_override.unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"));
        BedrockUpstream {
            provider: name,
            region,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            credentials: sigv4::CredentialCache::new(credentials),
            http,
        }
    }

    pub async fn send(&self, attempt: AttemptRequest<'_>) -> Result<Answer, UpstreamError> {
        let stream = attempt.request.stream;
        let wire = bedrock_converse::encode_request(attempt.request)
            .map_err(|feature| UpstreamError::new(ErrorKind::Unsupported, format!("{} (bedrock-converse) cannot take {feature}", self.provider)))?;
        let body = serde_json::to_vec(&wire).map_err(|e| UpstreamError::new(ErrorKind::Protocol, format!("could not encode the request: {e}")))?;
        let url = self.url(attempt.model, stream)?;
        let request = self.signed_request(url, body).await?;
        let response = upstream::send(&self.http, request, |status, headers, body| self.classify(status, headers, body)).await?;
        let id = response.headers().get("x-amzn-requestid").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let status = response.status().as_u16();
        if stream {
            let events = ConverseEvents { decoder: ConverseStreamDecoder::new(id, attempt.model), provider: self.provider.clone() };
            let items = upstream::items(response, EventstreamFraming::default(), events, false, &self.provider);
            return Ok(Answer::Stream(EventStream { passthrough: false, status, rate_limit: None, items }));
        }
        let bytes = response.bytes().await?;
        let wire: bedrock_converse::ConverseResponse = serde_json::from_slice(&bytes)
            .map_err(|e| UpstreamError::new(ErrorKind::Protocol, format!("unreadable answer from {}: {e}", self.provider)))?;
        let context = ResponseContext { id: &id, model: attempt.model, created: chrono::Utc::now().timestamp() };
        let response = bedrock_converse::decode_response(wire, context);
        Ok(Answer::Complete(Box::new(Completion { response, status, rate_limit: None, passthrough: None })))
    }

    fn url(&self, model: &str, stream: bool) -> Result<http::Uri, UpstreamError> {
        let operation = if stream { "converse-stream" } else { "converse" };
        let url = format!("{}/model/{}/{operation}", self.endpoint, utf8_percent_encode(model, PATH_SEGMENT));
        transport::parse_uri(&url, &self.provider)
    }

    /// A POST with the body, signed. The signed headers are exactly those sent:
    /// `host` as the client will write it, `content-type`, and the `x-amz-*` the signer adds.
    async fn signed_request(&self, url: http::Uri, body: Vec<u8>) -> Result<http::Request<http_body_util::Full<bytes::Bytes>>, UpstreamError> {
        let credentials = self.credentials.get().await.map_err(|e| self.credentials_error(&e))?;
        let host = transport::host_header(&url);
        let headers = [("host", host.as_str()), ("content-type", "application/json")];
        let url_text = url.to_string();
        let scope = sigv4::SigningScope { region: &self.region, service: sigv4::SIGNING_NAME, time: SystemTime::now() };
        let parts = sigv4::SignableParts { method: "POST", url: &url_text, headers: &headers, body: &body };
        let signed = sigv4::sign(&credentials, scope, parts).map_err(|e| UpstreamError::new(ErrorKind::Auth, format!("{}: {e}", self.provider)))?;
        let mut signed_headers = HeaderMap::new();
        for (name, value) in signed {
            // The signer's header names are lower-case constants.
            let name = http::HeaderName::from_static(name);
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| UpstreamError::new(ErrorKind::Auth, format!("{}: the signature is not a valid header", self.provider)))?;
            value.set_sensitive(true);
            signed_headers.append(name, value);
        }
        Ok(transport::post_json(url, signed_headers, body))
    }

    fn credentials_error(&self, error: &CredentialsError) -> UpstreamError {
        let kind = match error {
            CredentialsError::ProviderTimedOut(_) => ErrorKind::Timeout,
            _ => ErrorKind::Auth,
        };
        // Credential errors describe where the chain looked, never the keys themselves.
        let detail = std::error::Error::source(error).map(|s| format!("{error}: {s}")).unwrap_or_else(|| error.to_string());
        UpstreamError::new(kind, format!("{}: could not load AWS credentials ({detail})", self.provider))
    }

    /// Maps an HTTP error answer to a classified error. Credential failures never carry
    /// the upstream's text, which can name the account and role.
    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let error_type = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .or_else(|| parsed.get("__type").and_then(Value::as_str))
            .or_else(|| parsed.get("code").and_then(Value::as_str))
            .map(sanitize_error_type);
        let text = error_message(&parsed).unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
        let kind = classify_error(error_type.as_deref(), Some(status), &text);
        let message = match kind {
            ErrorKind::Auth => format!("{} rejected the gateway's AWS credentials ({})", self.provider, error_type.as_deref().unwrap_or("no error type")),
            _ => format!("{}: {text}", self.provider),
        };
        UpstreamError::new(kind, message).with_status(status).with_retry_after(retry_after_from_headers(headers)).with_code(error_type)
    }
}

/// `ValidationException:http://internal.amazon.com/coral/…` and
/// `com.amazon.coral.service#ValidationException` both mean `ValidationException`
/// (the rest-json error-type rules, as the AWS SDKs apply them).
fn sanitize_error_type(raw: &str) -> String {
    let before_colon = raw.split(':').next().unwrap_or(raw);
    before_colon.rsplit('#').next().unwrap_or(before_colon).trim().to_owned()
}

fn error_message(parsed: &Value) -> Option<String> {
    parsed.get("message").or_else(|| parsed.get("Message")).and_then(Value::as_str).map(str::to_owned)
}

/// The error kind a Bedrock error type (HTTP `x-amzn-errortype`, or an in-stream
/// `:exception-type`, which starts lower-case) and status mean. Validation errors about
/// the prompt's length are told apart by their message: Bedrock has no separate type.
pub fn classify_error(error_type: Option<&str>, status: Option<u16>, message: &str) -> ErrorKind {
    let is = |name: &str| error_type.is_some_and(|t| t.eq_ignore_ascii_case(name));
    if is("ThrottlingException") || is("ServiceQuotaExceededException") {
        ErrorKind::RateLimited
    } else if is("ModelNotReadyException") || is("ServiceUnavailableException") {
        ErrorKind::Overloaded
    } else if is("ValidationException") {
        if mentions_context_length(message) {
            ErrorKind::ContextTooLong
        } else {
            ErrorKind::InvalidRequest
        }
    } else if ["AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "IncompleteSignatureException", "MissingAuthenticationTokenException"]
        .iter()
        .any(|t| is(t))
    {
        ErrorKind::Auth
    } else if is("ResourceNotFoundException") {
        ErrorKind::NotFound
    } else if is("ModelTimeoutException") {
        ErrorKind::Timeout
    } else if is("InternalServerException") || is("ModelErrorException") || is("ModelStreamErrorException") {
        ErrorKind::ServerError
    } else {
        match status {
            Some(400 | 413 | 422) if mentions_context_length(message) => ErrorKind::ContextTooLong,
            Some(400 | 413 | 422) => ErrorKind::InvalidRequest,
            Some(401 | 403) => ErrorKind::Auth,
            Some(404) => ErrorKind::NotFound,
            Some(408) => ErrorKind::Timeout,
            Some(429) => ErrorKind::RateLimited,
            Some(503) => ErrorKind::Overloaded,
            _ => ErrorKind::ServerError,
        }
    }
}

fn mentions_context_length(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["too long", "context length", "context window", "maximum context", "too many input tokens", "too many tokens"]
        .iter()
        .any(|phrase| message.contains(phrase))
}

/// ConverseStream messages: events decode in the dialect, and `exception` and `error`
/// messages fail the stream. `metadata` after `messageStop` finishes the message.
struct ConverseEvents {
    decoder: ConverseStreamDecoder,
    provider: String,
}

impl FrameDecode for ConverseEvents {
    type Frame = StreamMessage;

    fn event(&mut self, message: &StreamMessage) -> Result<Decoded, UpstreamError> {
        match message {
            StreamMessage::Event { event_type, payload } => {
                let events = self
                    .decoder
                    .push(event_type, payload)
                    .map_err(|e| UpstreamError::new(ErrorKind::Protocol, format!("{}: {e}", self.provider)))?;
                Ok(Decoded { events, forward: false, finished: self.decoder.is_done(), usage: None })
            }
            StreamMessage::Exception { exception_type, payload } => {
                let parsed: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
                let text = error_message(&parsed).unwrap_or_else(|| exception_type.clone());
                Err(self.stream_error(exception_type, &text))
            }
            StreamMessage::Error { code, message } => Err(self.stream_error(code, message)),
        }
    }

    /// Complete if `messageStop` came (usage may not have followed), cut otherwise.
    fn end(&mut self) -> Result<Vec<StreamEvent>, UpstreamError> {
        if self.decoder.saw_message_stop() {
            Ok(self.decoder.finish())
        } else {
            Err(upstream::ended_early(&self.provider))
        }
    }
}

impl ConverseEvents {
    fn stream_error(&self, error_type: &str, text: &str) -> UpstreamError {
        let kind = classify_error(Some(error_type), None, text);
        let message = match kind {
            ErrorKind::Auth => format!("{} rejected the gateway's AWS credentials ({error_type})", self.provider),
            _ => format!("{}: {text}", self.provider),
        };
        UpstreamError::new(kind, message).with_code(Some(error_type.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_read_the_same_from_headers_and_bodies() {
        assert_eq!(sanitize_error_type("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"), "ValidationException");
        assert_eq!(sanitize_error_type("com.amazon.coral.service#UnrecognizedClientException"), "UnrecognizedClientException");
        assert_eq!(sanitize_error_type("ThrottlingException"), "ThrottlingException");
    }

    #[test]
    fn in_stream_exception_names_classify_like_http_error_types() {
        assert_eq!(classify_error(Some("throttlingException"), None, "slow down"), ErrorKind::RateLimited);
        assert_eq!(classify_error(Some("validationException"), None, "prompt is too long: 210000 tokens"), ErrorKind::ContextTooLong);
        assert_eq!(classify_error(None, Some(400), "Input is too long for requested model."), ErrorKind::ContextTooLong);
        assert_eq!(classify_error(None, None, "?"), ErrorKind::ServerError);
    }

    #[test]
    fn model_ids_stay_one_path_segment() {
        let upstream = BedrockUpstream::new(
            "b".to_owned(),
            "eu-central-1".to_owned(),
            static_credentials("a".to_owned(), "s".to_owned(), None),
            HttpClient::default(),
            None,
        );
        let url = upstream.url("arn:aws:bedrock:eu-central-1::foundation-model/amazon.nova-pro-v1:0", true).map(|u| u.to_string());
        assert_eq!(
            url.as_deref(),
            Ok("https://bedrock-runtime.eu-central-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aeu-central-1%3A%3Afoundation-model%2Famazon.nova-pro-v1%3A0/converse-stream")
        );
    }
}
