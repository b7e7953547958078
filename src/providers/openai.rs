//! The `openai` provider, and the OpenAI-chat upstream that `azure-openai` and
//! `openai-compatible` share: they differ only in URL and authentication.
//!
//! API reference: <https://platform.openai.com/docs/api-reference/chat/create>.

use http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::transport::{self, HttpClient, HttpResponse};
use super::*;
use crate::canonical::ContentPart;
use crate::dialects::json::{self, RawObject};
use crate::dialects::openai_chat::{self, ChunkDecoder, EncodeOptions, MaxTokensField};
use super::upstream::{self, Decoded, FrameDecode, SseFraming};
use crate::dialects::sse::SseEvent;

/// An upstream that speaks OpenAI chat completions.
pub struct OpenAiChatUpstream {
    provider: String,
    /// `{model}` is replaced by the target's model (Azure puts the deployment in the path).
    url_template: String,
    /// The URL, parsed once, when it does not depend on the model.
    url: Option<http::Uri>,
    headers: HeaderMap,
    /// The credential, kept only to scrub it from any upstream text we pass on.
    secret: Option<SecretString>,
    max_tokens_field: MaxTokensField,
    http: HttpClient,
}

impl std::fmt::Debug for OpenAiChatUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiChatUpstream").field("provider", &self.provider).field("url", &self.url_template).finish_non_exhaustive()
    }
}

/// Parts of an upstream that differ between the three OpenAI-dialect kinds.
pub(super) struct UpstreamSpec<'a> {
    pub config: &'a ProviderConfig,
    pub url_template: String,
    /// Authentication header name and value (the value is secret).
    pub auth: Option<(&'static str, String)>,
    pub secret: Option<SecretString>,
    pub extra_headers: &'a [(String, SecretString)],
    pub max_tokens_field: MaxTokensField,
}

pub(super) fn openai(
    config: &ProviderConfig,
    base_url: &str,
    api_key: &SecretString,
    headers: &[(String, SecretString)],
    http: &HttpClient,
) -> OpenAiChatUpstream {
    OpenAiChatUpstream::new(
        UpstreamSpec {
            config,
            url_template: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            auth: Some(("authorization", format!("Bearer {}", api_key.expose_secret()))),
            secret: Some(api_key.clone()),
            extra_headers: headers,
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
        },
        http,
    )
}

impl OpenAiChatUpstream {
    pub(super) fn new(spec: UpstreamSpec<'_>, http: &HttpClient) -> Self {
        let mut headers = HeaderMap::new();
        let mut insert = |name: &str, value: &str| {
            match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                (Ok(name), Ok(mut value)) => {
                    value.set_sensitive(true);
                    headers.insert(name, value);
                }
                // Config validation only lets through values it could read; a header
                // that is still invalid is skipped with a log line that names only the header.
                _ => tracing::warn!(provider = %spec.config.name, header = name, "skipping a header that is not valid HTTP"),
            }
        };
        if let Some((name, value)) = &spec.auth {
            insert(name, value);
        }
        for (name, value) in spec.extra_headers {
            insert(name, value.expose_secret());
        }
        OpenAiChatUpstream {
            provider: spec.config.name.clone(),
            url: (!spec.url_template.contains("{model}")).then(|| spec.url_template.parse().ok()).flatten(),
            url_template: spec.url_template,
            headers,
            secret: spec.secret,
            max_tokens_field: spec.max_tokens_field,
            http: http.clone(),
        }
    }

    pub async fn send(&self, attempt: AttemptRequest<'_>) -> Result<Answer, UpstreamError> {
        let stream = attempt.request.stream;
        let passthrough = attempt.original.is_some();
        let body = self.body(&attempt)?;
        let url = match &self.url {
            Some(url) => url.clone(),
            None => transport::parse_uri(&self.url_template.replace("{model}", attempt.model), &self.provider)?,
        };
        let request = transport::post_json(url, transport::request_headers(&self.headers), body);
        let response = upstream::send(&self.http, request, |status, headers, body| self.classify(status, headers, body)).await?;
        let rate_limit = RateLimitHint::from_headers(response.headers());
        let status = response.status().as_u16();
        if stream {
            let client_wants_usage = attempt.request.include_usage;
            let items = self.event_stream(response, passthrough, client_wants_usage);
            return Ok(Answer::Stream(EventStream { passthrough, status, rate_limit, items }));
        }
        let bytes = response.bytes().await?;
        let response = if passthrough {
            openai_chat::decode_passthrough_response(&bytes)
        } else {
            json::from_bytes(&bytes).map_err(|e| e.to_string()).and_then(openai_chat::decode_response)
        }
        .map_err(|e| UpstreamError::new(ErrorKind::Protocol, format!("unusable answer from {}: {e}", self.provider)))?;
        Ok(Answer::Complete(Box::new(Completion { response, status, rate_limit, passthrough: passthrough.then_some(bytes) })))
    }

    /// The request body: the client's own JSON when it spoke this dialect (only the
    /// model changes, and streams always ask for usage so the ledger can bill them),
    /// otherwise the canonical request encoded afresh.
    fn body(&self, attempt: &AttemptRequest<'_>) -> Result<Vec<u8>, UpstreamError> {
        let encoded = match attempt.original {
            Some(original) => passthrough_body(original, attempt.model, attempt.request.stream),
            None => {
                check_supported(attempt.request, &self.provider)?;
                let options = EncodeOptions { max_tokens_field: self.max_tokens_field, force_stream_usage: true };
                let wire = openai_chat::encode_request(attempt.request, attempt.model, options)
                    .map_err(|feature| unsupported(&self.provider, &feature))?;
                serde_json::to_vec(&wire)
            }
        };
        encoded.map_err(|e| UpstreamError::new(ErrorKind::Protocol, format!("could not encode the request: {e}")))
    }

    fn event_stream(&self, response: HttpResponse, passthrough: bool, client_wants_usage: bool) -> ItemStream {
        let events = OpenAiEvents { chunks: ChunkDecoder::new(), client_wants_usage, provider: self.provider.clone() };
        upstream::items(response, SseFraming::default(), events, passthrough, &self.provider)
    }

    /// Maps an HTTP error answer to a classified error. OpenAI's 401 message quotes
    /// part of the key, so credential failures never carry the upstream's text.
    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
        let parsed = openai_chat::parse_error_body(body);
        let code = parsed.code.clone().or(parsed.kind.clone());
        let text = parsed.message.clone().unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
        let kind = classify_status(status, code.as_deref(), &text);
        let message = match kind {
            ErrorKind::Auth => format!("{} rejected the gateway's credentials", self.provider),
            _ => format!("{}: {}", self.provider, self.scrub(&text)),
        };
        UpstreamError::new(kind, message).with_status(status).with_retry_after(retry_after_from_headers(headers)).with_code(code)
    }

    fn scrub(&self, text: &str) -> String {
        match &self.secret {
            Some(secret) if !secret.expose_secret().is_empty() => text.replace(secret.expose_secret(), "[redacted]"),
            _ => text.to_owned(),
        }
    }
}

/// The client's JSON with the target's model, every other member as the client wrote
/// it; a stream also asks for the usage report, so the ledger can bill it.
fn passthrough_body(original: &[u8], model: &str, stream: bool) -> serde_json::Result<Vec<u8>> {
    // The client's own stream options, kept, with the usage report switched on.
    let stream_options = |existing: Option<&[u8]>| {
        let mut options: Map<String, Value> = existing.and_then(|raw| serde_json::from_slice(raw).ok()).unwrap_or_default();
        options.insert("include_usage".to_owned(), Value::Bool(true));
        options
    };
    // The cheap way first: splice the members into the body as it is; the general rewrite
    // when that cannot tell where they are.
    let spliced = json::with_member(original, "model", model).and_then(|body| {
        if !stream {
            return Some(body);
        }
        json::with_member_updated(&body, "stream_options", stream_options)
    });
    if let Some(body) = spliced {
        return Ok(body);
    }
    let mut body = RawObject::parse(original)?;
    body.set("model", model)?;
    if stream {
        let options = stream_options(body.get("stream_options").map(|raw| raw.get().as_bytes()));
        body.set("stream_options", &options)?;
    }
    Ok(body.to_vec())
}

/// The error kind an OpenAI-dialect status and error code mean.
pub(super) fn classify_status(status: u16, code: Option<&str>, message: &str) -> ErrorKind {
    let code = code.unwrap_or("");
    match status {
        400 | 413 | 422 if code == "context_length_exceeded" || message.contains("maximum context length") => ErrorKind::ContextTooLong,
        400 if code == "content_filter" || code == "content_policy_violation" => ErrorKind::ContentPolicy,
        400 | 413 | 422 => ErrorKind::InvalidRequest,
        401 | 403 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        429 => ErrorKind::RateLimited,
        503 | 529 => ErrorKind::Overloaded,
        _ if code == "server_is_overloaded" => ErrorKind::Overloaded,
        _ => ErrorKind::ServerError,
    }
}

/// What the OpenAI chat dialect cannot carry at all, checked before anything is sent.
fn check_supported(request: &ChatRequest, provider: &str) -> Result<(), UpstreamError> {
    for part in request.parts() {
        if let ContentPart::Document { source: crate::canonical::MediaSource::Url { .. }, .. } = part {
            return Err(unsupported(provider, "documents by URL"));
        }
    }
    Ok(())
}

fn unsupported(provider: &str, feature: &str) -> UpstreamError {
    UpstreamError::new(ErrorKind::Unsupported, format!("{provider} (openai-chat) cannot take {feature}"))
}

/// OpenAI chunks: `[DONE]` ends the message, an `{"error": …}` object fails it, and
/// the usage report is forwarded only to clients that asked for it.
struct OpenAiEvents {
    chunks: ChunkDecoder,
    client_wants_usage: bool,
    provider: String,
}

impl FrameDecode for OpenAiEvents {
    type Frame = SseEvent;

    fn event(&mut self, event: &SseEvent) -> Result<Decoded, UpstreamError> {
        let data = event.data.as_str();
        if data.trim() == "[DONE]" {
            return Ok(Decoded { events: self.chunks.finish(), forward: false, finished: true, usage: None });
        }
        if data.contains("\"error\"") {
            if let Some(err) = in_stream_error(data, &self.provider) {
                return Err(err);
            }
        }
        let mut events = self.chunks.push(data).map_err(|e| UpstreamError::new(ErrorKind::Protocol, format!("{}: {e}", self.provider)))?;
        let reports_usage = data.contains("\"usage\":{");
        let usage_only = events.iter().all(|e| !e.is_content()) && reports_usage && is_usage_chunk(data);
        // The usage report comes after the finish reason, just before `[DONE]`: the
        // answer is complete here, so an upstream that then goes silent costs nothing.
        let finished = usage_only && self.chunks.saw_finish_reason();
        if finished {
            events.extend(self.chunks.finish());
        }
        let usage = reports_usage.then(|| self.chunks.usage());
        Ok(Decoded { events, forward: self.client_wants_usage || !usage_only, finished, usage })
    }

    /// A body that ends without `[DONE]` is complete if the upstream had said why it
    /// stopped, and cut otherwise.
    fn end(&mut self) -> Result<Vec<crate::canonical::StreamEvent>, UpstreamError> {
        if self.chunks.saw_finish_reason() {
            Ok(self.chunks.finish())
        } else {
            Err(upstream::ended_early(&self.provider))
        }
    }
}

fn is_usage_chunk(data: &str) -> bool {
    serde_json::from_str::<Value>(data)
        .map(|v| v.get("usage").is_some_and(|u| !u.is_null()) && v.get("choices").is_none_or(|c| c.as_array().is_none_or(Vec::is_empty)))
        .unwrap_or(false)
}

/// An error object sent inside a 200 stream.
fn in_stream_error(data: &str, provider: &str) -> Option<UpstreamError> {
    let value: Value = serde_json::from_str(data).ok()?;
    let error = value.get("error")?;
    let message = error.get("message").and_then(Value::as_str).unwrap_or("error inside the stream");
    let code = error.get("code").and_then(Value::as_str).or_else(|| error.get("type").and_then(Value::as_str));
    let kind = match code {
        Some("rate_limit_exceeded") | Some("rate_limit_error") => ErrorKind::RateLimited,
        Some("server_is_overloaded") | Some("overloaded_error") => ErrorKind::Overloaded,
        _ => ErrorKind::ServerError,
    };
    Some(UpstreamError::new(kind, format!("{provider}: {message}")).with_code(code.map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use super::passthrough_body;
    use serde_json::{json, Value};

    #[test]
    fn a_passed_through_stream_asks_for_usage_and_keeps_every_other_byte() {
        let body = br#"{"model":"chat", "messages":[{"role":"user","content":"h\u00e9 \"quoted\""}], "stream":true}"#;
        let out = passthrough_body(body, "gpt-4.1", true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"model":"gpt-4.1", "messages":[{"role":"user","content":"h\u00e9 \"quoted\""}], "stream":true,"stream_options":{"include_usage":true}}"#
        );
        // The client's own stream options are kept, with usage switched on.
        let body = br#"{"stream_options": {"include_usage": false, "x": 1}, "model":"chat","stream":true}"#;
        let out: Value = serde_json::from_slice(&passthrough_body(body, "m", true).unwrap()).unwrap();
        assert_eq!(out, json!({"stream_options": {"include_usage": true, "x": 1}, "model": "m", "stream": true}));
        // A key written with escapes takes the general rewrite, with the same result.
        let body = br#"{"mod\u0065l":"chat","stream":true}"#;
        let out: Value = serde_json::from_slice(&passthrough_body(body, "m", true).unwrap()).unwrap();
        assert_eq!(out, json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}}));
    }

    #[test]
    fn a_passed_through_request_that_does_not_stream_changes_only_the_model() {
        let body = br#"{ "model" : "chat", "temperature":0.20}"#;
        assert_eq!(passthrough_body(body, "gpt-4.1", false).unwrap(), br#"{ "model" : "gpt-4.1", "temperature":0.20}"#);
    }
}
