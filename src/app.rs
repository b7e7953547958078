//! The HTTP application: state, routes, front-door handlers and graceful shutdown.
//!
//! Handlers are thin: authenticate, read the body within its limit, decode with the
//! dialect, hand the canonical request to the pipeline, encode the reply. Only generic
//! HTTP concerns (panics, tracing) are tower layers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::canonical::{ApiError, Dialect, ErrorCategory};
use crate::config::{ClientKey, Config};
use crate::dialects::{anthropic_messages, openai_chat, StreamEncoder};
use crate::error::GatewayError;
use crate::ledger::{LedgerHandle, LedgerStore, LedgerWriter, PriceCatalog, WriterConfig};
use crate::pipeline::{client_stream, Attribution, Gateway, Inbound, Reply};
use crate::telemetry;

/// Shared by every handler.
pub struct AppState {
    gateway: Gateway,
    keys: Vec<ClientKey>,
    max_body_bytes: usize,
    metrics: Option<PrometheusHandle>,
    /// Cleared when shutdown starts, so load balancers stop sending traffic.
    ready: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("price catalog: {0}")]
    Prices(#[from] crate::ledger::PriceError),
    #[error("ledger: {0}")]
    Ledger(#[from] crate::ledger::StoreError),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// A gateway serving on a socket.
pub struct RunningGateway {
    pub addr: SocketAddr,
    state: Arc<AppState>,
    stop: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    tracker: TaskTracker,
    ledger: LedgerHandle,
    drain_timeout: Duration,
}

/// Builds everything from a validated config and starts serving on `listener`.
pub async fn start(config: Config, listener: TcpListener) -> Result<RunningGateway, StartError> {
    let prices = PriceCatalog::builtin()?.with_overrides(config.prices.clone())?;
    let store = LedgerStore::connect(&config.ledger.url).await?;
    let tracker = TaskTracker::new();
    let writer_config = WriterConfig { max_batch: config.ledger.batch_size, max_delay: config.ledger.flush_interval, ..WriterConfig::default() };
    let (ledger, _stop_writer) = LedgerWriter::spawn(store, &tracker, writer_config);
    let config = Arc::new(config);
    let state = Arc::new(AppState {
        gateway: Gateway::new(config.clone(), Arc::new(prices), ledger.clone(), Arc::new(crate::pipeline::Shared::default())),
        keys: config.keys.clone(),
        max_body_bytes: config.server.max_body_bytes,
        metrics: telemetry::metrics_handle(),
        ready: AtomicBool::new(true),
    });
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let server = tokio::spawn({
        let app = router(state.clone());
        let stop = stop.clone();
        async move { axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await }
    });
    tracing::info!(%addr, routes = config.routes.len(), providers = config.providers.len(), "switchyard is listening");
    Ok(RunningGateway { addr, state, stop, server, tracker, ledger, drain_timeout: config.server.drain_timeout })
}

impl RunningGateway {
    /// Stops accepting connections, lets in-flight requests and streams finish (up to
    /// the drain timeout), then flushes the ledger.
    pub async fn shutdown(self) {
        self.state.ready.store(false, Ordering::SeqCst);
        self.stop.cancel();
        match tokio::time::timeout(self.drain_timeout, self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "server error during shutdown"),
            Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
            Err(_) => tracing::warn!(timeout = ?self.drain_timeout, "drain timeout: dropping the remaining connections"),
        }
        // Dropping the app state drops the last settlements and ledger handles it holds.
        drop(self.state);
        self.ledger.close();
        self.tracker.close();
        self.tracker.wait().await;
        tracing::info!("switchyard stopped; ledger flushed");
    }

    /// Waits until every ledger entry recorded so far is written (for tests and tools).
    pub async fn flush_ledger(&self) {
        if let Err(e) = self.ledger.flush().await {
            tracing::error!(error = %e, "ledger flush failed");
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            let error = ApiError::new(500, ErrorCategory::Internal, "The gateway hit an internal error.");
            error_response(Dialect::OpenAiChat, &error)
        }))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn chat_completions(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    front_door(&state, Dialect::OpenAiChat, &headers, body).await
}

async fn messages(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    front_door(&state, Dialect::AnthropicMessages, &headers, body).await
}

/// One front door: authenticate, read, decode in `dialect`, run the pipeline, encode.
async fn front_door(state: &AppState, dialect: Dialect, headers: &HeaderMap, body: Body) -> Response {
    let result = async {
        let key_id = authenticate(&state.keys, headers)?;
        if dialect == Dialect::AnthropicMessages {
            check_anthropic_version(headers)?;
        }
        let bytes = read_body(body, headers, state.max_body_bytes).await?;
        let (request, original) = decode(dialect, &bytes).map_err(GatewayError::BadRequest)?;
        let include_usage = request.include_usage;
        let anthropic_beta = headers.get("anthropic-beta").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let inbound = Inbound { request, original: Some(original), front_door: dialect, key_id, anthropic_beta };
        let reply = state.gateway.handle(inbound).await?;
        Ok::<_, GatewayError>(encode_reply(dialect, reply, include_usage))
    }
    .await;
    result.unwrap_or_else(|e| error_response(dialect, &e.to_api_error()))
}

fn decode(dialect: Dialect, body: &[u8]) -> Result<(crate::canonical::ChatRequest, serde_json::Map<String, serde_json::Value>), ApiError> {
    match dialect {
        Dialect::AnthropicMessages => anthropic_messages::decode_request(body).map(|d| (d.request, d.original)),
        Dialect::OpenAiChat | Dialect::BedrockConverse | Dialect::Gemini => openai_chat::decode_request(body).map(|d| (d.request, d.original)),
    }
}

/// Anthropic's SDKs always send `anthropic-version`; curl users often don't, so a missing
/// header means the current version, and only an unknown one is refused.
fn check_anthropic_version(headers: &HeaderMap) -> Result<(), GatewayError> {
    match headers.get("anthropic-version").map(|v| v.to_str().unwrap_or("")) {
        None | Some("2023-06-01") | Some("2023-01-01") => Ok(()),
        Some(other) => Err(GatewayError::BadRequest(
            ApiError::new(400, ErrorCategory::InvalidRequest, format!("anthropic-version: '{other}' is not a supported version; use 2023-06-01."))
                .with_param("anthropic-version"),
        )),
    }
}

fn encode_reply(dialect: Dialect, reply: Reply, include_usage: bool) -> Response {
    match reply {
        Reply::Complete { completion, attribution } => {
            let body = match completion.passthrough {
                Some(bytes) => bytes,
                None => {
                    let encoded = match dialect {
                        Dialect::AnthropicMessages => serde_json::to_vec(&anthropic_messages::encode_response(&completion.response)),
                        Dialect::OpenAiChat | Dialect::BedrockConverse | Dialect::Gemini => {
                            serde_json::to_vec(&openai_chat::encode_response(&completion.response))
                        }
                    };
                    Bytes::from(encoded.unwrap_or_default())
                }
            };
            let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response();
            attribute(response.headers_mut(), &attribution);
            response
        }
        Reply::Stream(stream) => {
            let attribution = stream.attribution.clone();
            let request_id = stream.settlement.request_id().replace('-', "");
            let encoder: Box<dyn StreamEncoder> = match dialect {
                Dialect::AnthropicMessages => Box::new(anthropic_messages::EventEncoder::new(format!("msg_{request_id}"), stream.passthrough)),
                Dialect::OpenAiChat | Dialect::BedrockConverse | Dialect::Gemini => Box::new(openai_chat::ChunkEncoder::new(
                    format!("chatcmpl-{request_id}"),
                    chrono::Utc::now().timestamp(),
                    include_usage,
                    stream.passthrough,
                )),
            };
            let body = Body::from_stream(client_stream(stream, encoder));
            let mut response = Response::new(body);
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            attribute(headers, &attribution);
            response
        }
    }
}

/// `POST /v1/messages/count_tokens`: an estimate made locally (see `pipeline::tokens`),
/// for any route, without calling an upstream.
async fn count_tokens(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let dialect = Dialect::AnthropicMessages;
    let result = async {
        authenticate(&state.keys, &headers)?;
        check_anthropic_version(&headers)?;
        let bytes = read_body(body, &headers, state.max_body_bytes).await?;
        let decoded = anthropic_messages::decode_count_tokens_request(&bytes).map_err(GatewayError::BadRequest)?;
        state.gateway.route(&decoded.request.model)?;
        let input_tokens = crate::pipeline::tokens::estimate_input_tokens(&decoded.request);
        Ok::<_, GatewayError>(axum::Json(anthropic_messages::AnthropicCountTokensResponse { input_tokens }).into_response())
    }
    .await;
    result.unwrap_or_else(|e| error_response(dialect, &e.to_api_error()))
}

/// Response headers that say which route and target answered, after how many attempts.
fn attribute(headers: &mut HeaderMap, attribution: &Attribution) {
    for (name, value) in [
        ("x-switchyard-route", attribution.route.clone()),
        ("x-switchyard-target", attribution.target.clone()),
        ("x-switchyard-attempts", attribution.attempts.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    if attribution.simulated {
        headers.insert("x-switchyard-simulated", HeaderValue::from_static("true"));
    }
}

async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authenticate(&state.keys, &headers) {
        return error_response(Dialect::OpenAiChat, &e.to_api_error());
    }
    let gateway = &state.gateway;
    let data: Vec<_> = gateway
        .config
        .routes
        .values()
        .map(|route| {
            let simulated = route.targets.iter().any(|t| gateway.provider(&t.provider).is_some_and(|p| p.is_simulated()));
            json!({
                "id": route.name,
                "object": "model",
                "created": 0,
                "owned_by": if simulated { "switchyard (simulated targets)" } else { "switchyard" },
                "description": route.description,
                "targets": route.targets.iter().map(|t| t.label()).collect::<Vec<_>>(),
                "simulated": simulated,
            })
        })
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match &state.metrics {
        Some(handle) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics recorder unavailable").into_response(),
    }
}

/// Finds the client's key id. Without configured keys every caller is `anonymous`.
/// Keys are compared by SHA-256, so the secrets themselves are never held.
fn authenticate(keys: &[ClientKey], headers: &HeaderMap) -> Result<String, GatewayError> {
    if keys.is_empty() {
        return Ok("anonymous".to_owned());
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .ok_or(GatewayError::Unauthorized)?;
    let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
    keys.iter().find(|k| k.secret_sha256 == digest).map(|k| k.id.clone()).ok_or(GatewayError::Unauthorized)
}

/// Reads the body, refusing anything over the limit with 413 before buffering it all.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, GatewayError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(GatewayError::BodyTooLarge { limit }),
        Err(e) => Err(GatewayError::BadRequest(ApiError::new(
            400,
            crate::canonical::ErrorCategory::InvalidRequest,
            format!("The request body could not be read: {e}"),
        ))),
    }
}

/// Renders an error in the client's dialect; the one place client errors are logged.
fn error_response(dialect: Dialect, error: &ApiError) -> Response {
    if error.status >= 500 {
        tracing::warn!(status = error.status, code = ?error.code, message = %error.message, "request failed");
    } else {
        tracing::debug!(status = error.status, code = ?error.code, message = %error.message, "request rejected");
    }
    let body = match dialect {
        Dialect::AnthropicMessages => anthropic_messages::error_body(error),
        Dialect::OpenAiChat | Dialect::BedrockConverse | Dialect::Gemini => openai_chat::error_body(error),
    };
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(retry_after) = error.retry_after {
        let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}
