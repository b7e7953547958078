//! The HTTP application: state, routes, front-door handlers and graceful shutdown.
//!
//! Handlers are thin: authenticate, read the body within its limit, decode with the
//! dialect, hand the canonical request to the pipeline, encode the reply. Only generic
//! HTTP concerns (tracing, and panics outside the front doors, which answer their own in
//! their dialect) are tower layers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use metrics::Gauge;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::canonical::{ApiError, Dialect, ErrorCategory};
use crate::config::{ClientKey, Config, TopologyDimension};
use crate::dialects::{anthropic_messages, openai_chat, StreamEncoder};
use crate::error::GatewayError;
use crate::ledger::{LedgerHandle, LedgerStore, LedgerWriter, PriceCatalog, WriterConfig};
use crate::pipeline::{client_stream, Attribution, Gateway, Inbound, Reply, Shared, Unanswered};
use crate::telemetry;

/// The async runtime of the process's main thread: tokio's single-threaded scheduler.
/// It serves requests itself, and [`start_serving`] gives every further serving thread
/// (see [`serving_threads`]) a runtime of the same kind. One single-threaded runtime per
/// core, rather than the multi-threaded scheduler with a worker per core: a request, its
/// upstream connection and the tasks that drive them then stay on one thread, where the
/// multi-threaded scheduler moved them between its workers and woke one from another:
/// on 2 CPUs shared with the load generator, it used 31% more CPU per proxied request
/// (28.3 µs against 21.6, BENCHMARKS.md).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// How many threads serve requests: `server.threads`, or one per CPU the process may
/// use (its CPU affinity and cgroup quota count, so a pinned process gets one).
pub fn serving_threads(server: &crate::config::ServerConfig) -> usize {
    server.threads.or_else(|| std::thread::available_parallelism().ok()).map_or(1, std::num::NonZeroUsize::get)
}

/// Open client connections per serving thread. The first thread accepts every new
/// connection and hands it to the thread with the fewest open ones (among equals, the
/// next in turn), and `/metrics` shows them as `switchyard_client_connections{thread}`.
///
/// Why not a listening socket per thread with SO_REUSEPORT, as before: the kernel then
/// spreads connections by a hash of their addresses, so an application with a small
/// keep-alive pool could land seven connections on one thread and three on another,
/// and one CPU would be saturated while the other idled. Handing connections out costs
/// a wake-up of the receiving thread per *connection*, nothing per request.
struct Loads {
    open: Box<[AtomicUsize]>,
    gauges: Box<[Gauge]>,
}

impl Loads {
    fn new(threads: usize) -> Arc<Loads> {
        Arc::new(Loads {
            open: (0..threads).map(|_| AtomicUsize::new(0)).collect(),
            gauges: (0..threads).map(|thread| metrics::gauge!("switchyard_client_connections", "thread" => thread.to_string())).collect(),
        })
    }

    /// The thread to give the next connection: the fewest open, the first at or after
    /// `from` (mod the thread count) among equals.
    fn least_loaded(&self, from: usize) -> usize {
        let threads = self.open.len();
        (0..threads).map(|i| (from + i) % threads).min_by_key(|&thread| self.open[thread].load(Ordering::Relaxed)).unwrap_or(0)
    }

    fn opened(&self, thread: usize) {
        self.open[thread].fetch_add(1, Ordering::Relaxed);
        self.gauges[thread].increment(1.0);
    }

    fn closed(&self, thread: usize) {
        self.open[thread].fetch_sub(1, Ordering::Relaxed);
        self.gauges[thread].decrement(1.0);
    }
}

/// Where a serving thread's connections come from.
enum Incoming {
    /// The listening socket, on thread 0, with a hand-over queue to each other thread
    /// (thread `i` is `others[i - 1]`).
    Listener { listener: TcpListener, others: Vec<mpsc::UnboundedSender<std::net::TcpStream>>, turn: usize },
    /// Connections the first thread handed over.
    HandedOver(mpsc::UnboundedReceiver<std::net::TcpStream>),
}

impl Incoming {
    /// The next connection this thread (`loads`' thread `thread`: 0 for the listener)
    /// serves, already counted as open; `None` once no more will come. Cancel-safe: a
    /// connection accepted is handed over or returned before the next await.
    async fn next(&mut self, thread: usize, loads: &Loads) -> Option<TcpStream> {
        match self {
            Incoming::Listener { listener, others, turn } => loop {
                let connection = match listener.accept().await {
                    Ok((connection, _)) => connection,
                    Err(error) => {
                        accept_failed(error).await;
                        continue;
                    }
                };
                let to = loads.least_loaded(*turn);
                *turn = to + 1;
                loads.opened(to);
                if to == 0 {
                    return Some(connection);
                }
                // A thread that stopped already takes nothing: the connection is closed.
                let handed = connection.into_std().ok().is_some_and(|connection| others[to - 1].send(connection).is_ok());
                if !handed {
                    loads.closed(to);
                }
            },
            Incoming::HandedOver(queue) => loop {
                let connection = queue.recv().await?;
                match TcpStream::from_std(connection) {
                    Ok(connection) => return Some(connection),
                    Err(error) => {
                        tracing::error!(%error, "a connection handed to this serving thread could not be registered");
                        loads.closed(thread);
                    }
                }
            },
        }
    }
}

/// Shared by every handler.
pub struct AppState {
    /// The routing state of the current configuration. A reload swaps it; a request
    /// loads it once and keeps its copy to the end, so reloads never disturb it.
    gateway: ArcSwap<Gateway>,
    /// What every configuration's gateway shares: learned target health, shares.
    shared: Arc<Shared>,
    ledger: LedgerHandle,
    metrics: Option<PrometheusHandle>,
    /// Cleared when shutdown starts, so load balancers stop sending traffic.
    ready: AtomicBool,
    /// The file the configuration came from, for reloads.
    config_path: Option<PathBuf>,
}

impl AppState {
    /// Validates `config` and swaps it in. The listen address and ledger URL can't
    /// change without a restart; everything else (routes, providers, keys, prices,
    /// limits) takes effect for the next request.
    pub fn reload(&self, config: Config) -> Result<(), String> {
        let current = self.gateway.load();
        if config.server.listen != current.config.server.listen || config.ledger.url != current.config.ledger.url {
            tracing::warn!("server.listen and ledger.url changes need a restart; keeping the old values");
        }
        let prices = PriceCatalog::builtin().and_then(|p| p.with_overrides(config.prices.clone())).map_err(|e| e.to_string())?;
        let gateway = Gateway::new(Arc::new(config), Arc::new(prices), self.ledger.clone(), self.shared.clone());
        self.gateway.store(Arc::new(gateway));
        metrics::counter!("switchyard_config_reloads_total").increment(1);
        tracing::info!("configuration reloaded");
        Ok(())
    }

    /// Re-reads the configuration file, if the gateway was started from one.
    pub fn reload_from_file(&self) -> Result<(), String> {
        let path = self.config_path.as_ref().ok_or("the gateway runs the built-in configuration; there is no file to reload")?;
        let config = Config::load(path).map_err(|e| e.to_string())?;
        self.reload(config)
    }
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

/// Builds everything from a validated config and starts serving on `listener`, on the
/// calling runtime alone.
pub async fn start(config: Config, listener: TcpListener) -> Result<RunningGateway, StartError> {
    start_serving(config, listener, 1, None).await
}

/// Like [`start`], with `threads` serving threads (at least one): the calling runtime
/// accepts every connection and serves its share, and each other thread serves the
/// connections handed to it with a single-threaded runtime of its own (see [`Loads`]).
/// With a `config_path`, the gateway watches that file (and listens for SIGHUP) and
/// reloads when it changes.
pub async fn start_serving(config: Config, listener: TcpListener, threads: usize, config_path: Option<PathBuf>) -> Result<RunningGateway, StartError> {
    let prices = PriceCatalog::builtin()?.with_overrides(config.prices.clone())?;
    let store = LedgerStore::connect(&config.ledger.url).await?;
    // First: the ledger writer and the gateway register their metric handles with it.
    let metrics = telemetry::metrics_handle();
    let tracker = TaskTracker::new();
    let writer_config = WriterConfig { max_batch: config.ledger.batch_size, max_delay: config.ledger.flush_interval, ..WriterConfig::default() };
    let (ledger, _stop_writer) = LedgerWriter::spawn(store, &tracker, writer_config);
    let config = Arc::new(config);
    let shared = Arc::new(Shared::default());
    let state = Arc::new(AppState {
        gateway: ArcSwap::from_pointee(Gateway::new(config.clone(), Arc::new(prices), ledger.clone(), shared.clone())),
        shared,
        ledger: ledger.clone(),
        metrics,
        ready: AtomicBool::new(true),
        config_path,
    });
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let app = FrontDoors::new(state.clone());
    let server_threads = threads.max(1);
    let loads = Loads::new(server_threads);
    let mut others = Vec::with_capacity(server_threads - 1);
    let more_threads = (1..server_threads)
        .map(|index| {
            let (handover, queue) = mpsc::unbounded_channel();
            others.push(handover);
            let serving = Serving { thread: index, loads: loads.clone(), app: app.clone(), header_timeout: config.server.header_timeout, stop: stop.clone() };
            serving_thread(Incoming::HandedOver(queue), serving)
        })
        .collect::<std::io::Result<Vec<_>>>()
        // Threads already started would otherwise serve on with nothing to stop them.
        .inspect_err(|_| stop.cancel())?;
    let server = tokio::spawn({
        let serving = Serving { thread: 0, loads, app, header_timeout: config.server.header_timeout, stop: stop.clone() };
        let here = serve(Incoming::Listener { listener, others, turn: 0 }, serving);
        async move {
            let served = here.await;
            // The other threads stop accepting at the same signal and drain their own
            // connections; the server has stopped when all of them have.
            for thread in more_threads {
                match tokio::task::spawn_blocking(move || thread.join()).await {
                    Ok(Ok(Ok(()))) => {}
                    Ok(Ok(Err(error))) => tracing::error!(%error, "a serving thread failed"),
                    Ok(Err(_)) | Err(_) => tracing::error!("a serving thread panicked"),
                }
            }
            served
        }
    });
    if state.config_path.is_some() {
        tracker.spawn(watch_config(state.clone(), stop.clone()));
    }
    if let Some(handle) = state.metrics.clone() {
        tracker.spawn(metrics_upkeep(handle, stop.clone()));
    }
    tracing::info!(%addr, threads = server_threads, routes = config.routes.len(), providers = config.providers.len(), "switchyard is listening");
    Ok(RunningGateway { addr, state, stop, server, tracker, ledger, drain_timeout: config.server.drain_timeout })
}

impl RunningGateway {
    /// Stops accepting connections, lets in-flight requests and streams finish (up to
    /// the drain timeout), then flushes the ledger.
    pub async fn shutdown(self) {
        self.state.ready.store(false, Ordering::SeqCst);
        self.stop.cancel();
        let mut server = self.server;
        match tokio::time::timeout(self.drain_timeout, &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "server error during shutdown"),
            Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
            Err(_) => {
                // End the streams still running with an error event, so each settles
                // before the ledger closes; give them a moment to do so.
                tracing::warn!(timeout = ?self.drain_timeout, "drain timeout: ending the remaining streams");
                self.state.shared.shutdown.cancel();
                if tokio::time::timeout(Duration::from_secs(2), &mut server).await.is_err() {
                    server.abort();
                }
            }
        }
        // Dropping the app state drops the last settlements and ledger handles it holds.
        drop(self.state);
        self.ledger.close();
        self.tracker.close();
        self.tracker.wait().await;
        tracing::info!("switchyard stopped; ledger flushed");
    }

    /// Swaps in a new configuration without dropping in-flight requests.
    pub fn reload(&self, config: Config) -> Result<(), String> {
        self.state.reload(config)
    }

    /// Waits until every ledger entry recorded so far is written (for tests and tools).
    pub async fn flush_ledger(&self) {
        if let Err(e) = self.ledger.flush().await {
            tracing::error!(error = %e, "ledger flush failed");
        }
    }
}

/// What a serving thread serves with.
struct Serving {
    /// Its index among the serving threads; 0 accepts for all.
    thread: usize,
    loads: Arc<Loads>,
    app: FrontDoors,
    header_timeout: Duration,
    stop: CancellationToken,
}

/// Serves `app` on each connection that comes in (HTTP/1.1, or HTTP/2 with prior
/// knowledge) until `stop`; then stops taking connections, lets every open one finish
/// the requests it has begun, closes it, and returns once all are closed.
///
/// Why not `axum::serve`: it wraps the service for hyper per request (a clone, a tower
/// `oneshot`, a boxed request body), which cost about as much as the chat front door's
/// own dispatch; hyper-util's connection builder and graceful-shutdown watcher are the
/// same parts it is made of.
///
/// An HTTP/1 connection has `header_timeout` to send each request's head, counted from
/// when the server starts waiting for it: a client that opens connections and sends
/// nothing, or a head a byte at a time, cannot hold them for ever, and keep-alive
/// connections idle that long are closed. (hyper applies no such limit without a timer.)
async fn serve(mut incoming: Incoming, serving: Serving) -> std::io::Result<()> {
    let Serving { thread, loads, app, header_timeout, stop } = serving;
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    // Replies are written flattened: head and body copied into one buffer and sent by
    // one `write`. A reply is small (a chat answer, or an SSE event at a time), and the
    // copy costs less than hyper's queue of buffers for a vectored write.
    http.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout).writev(false);
    loop {
        let connection = tokio::select! {
            next = incoming.next(thread, &loads) => match next {
                Some(connection) => connection,
                None => break,
            },
            () = stop.cancelled() => break,
        };
        // Without TCP_NODELAY a streamed reply's small writes would wait for the client's
        // (delayed) acknowledgement of the previous one: tens of milliseconds per token.
        if let Err(error) = connection.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY on a client connection");
        }
        let app = app.clone();
        let service = hyper::service::service_fn(move |request| app.handle(request));
        let connection = connections.watch(http.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(connection), service).into_owned());
        let loads = loads.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "client connection ended with an error");
            }
            loads.closed(thread);
        });
    }
    // Stops accepting (or taking connections handed over) before draining.
    drop(incoming);
    connections.shutdown().await;
    Ok(())
}

/// Starts a further serving thread: a thread with a single-threaded runtime of its own,
/// running [`serve`] until `stop`, then draining its connections.
fn serving_thread(incoming: Incoming, serving: Serving) -> std::io::Result<std::thread::JoinHandle<std::io::Result<()>>> {
    let runtime = runtime()?;
    std::thread::Builder::new().name(format!("switchyard-serve-{}", serving.thread)).spawn(move || runtime.block_on(serve(incoming, serving)))
}

/// After a failed `accept`: a connection that was reset before it was taken costs
/// nothing; anything else (out of file descriptors, say) is logged and accepting pauses
/// a second, so the loop does not spin while the cause lasts.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(error.kind(), ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

type DirectFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>>;

/// The server's service. The two chat front doors, nearly every request a gateway
/// serves, go straight to their handler; everything else goes through the [`router`].
///
/// Why not the router for all of it: for each request axum's router records the matched
/// path and the URL parameters in the request's extensions, clones the route's boxed
/// service and boxes three futures on the way to the handler, about fifteen allocations
/// that cost more CPU per proxied request than the route lookup saves anyone
/// (BENCHMARKS.md). The router still has the chat routes, and takes them over when
/// HTTP tracing is on, so that its trace layer sees every request.
#[derive(Clone)]
struct FrontDoors {
    state: Arc<AppState>,
    router: Router,
    /// Whether the chat front doors skip the router (false while HTTP tracing is on).
    direct: bool,
}

impl FrontDoors {
    fn new(state: Arc<AppState>) -> Self {
        FrontDoors { router: router(state.clone()), direct: !http_tracing_enabled(), state }
    }

    /// The dialect of a request for one of the chat front doors.
    fn chat_dialect<B>(request: &http::Request<B>) -> Option<Dialect> {
        if request.method() != axum::http::Method::POST {
            return None;
        }
        match request.uri().path() {
            "/v1/chat/completions" => Some(Dialect::OpenAiChat),
            "/v1/messages" => Some(Dialect::AnthropicMessages),
            _ => None,
        }
    }

    /// Answers one request.
    fn handle(
        &self,
        request: http::Request<hyper::body::Incoming>,
    ) -> futures_util::future::Either<DirectFuture, <Router as tower::Service<axum::extract::Request>>::Future> {
        use tower::Service;
        match Self::chat_dialect(&request).filter(|_| self.direct) {
            Some(dialect) => {
                // The one box per request: the pipeline's state machine is large, and boxed
                // the server stack moves a pointer instead of it.
                let state = self.state.clone();
                futures_util::future::Either::Left(Box::pin(async move {
                    let (parts, body) = request.into_parts();
                    Ok(front_door(&state, dialect, &parts.headers, body).await)
                }))
            }
            None => futures_util::future::Either::Right(self.router.clone().call(request.map(Body::new))),
        }
    }
}

/// What a client of `dialect` sees when its handler panicked (the panic itself is logged
/// by the hook): a 500 in the dialect's own error shape.
fn internal_error_response(dialect: Dialect) -> Response {
    let error = ApiError::new(500, ErrorCategory::Internal, "The gateway hit an internal error.");
    error_response(dialect, &error)
}

/// Runs a handler of `dialect`, answering a panic as [`internal_error_response`] does.
/// The router's panic layer answers for the routes that are not a dialect's.
async fn answer_panics(dialect: Dialect, handler: impl std::future::Future<Output = Response>) -> Response {
    use futures_util::FutureExt;
    std::panic::AssertUnwindSafe(handler).catch_unwind().await.unwrap_or_else(|_| internal_error_response(dialect))
}

/// Whether the HTTP trace layer's debug events are enabled (RUST_LOG).
fn http_tracing_enabled() -> bool {
    tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG)
}

pub fn router(state: Arc<AppState>) -> Router {
    let router = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/admin/api/health", get(admin_health))
        .route("/admin/api/reload", post(admin_reload))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| internal_error_response(Dialect::OpenAiChat)));
    // A span and two events per request cost CPU even when no one reads them, so the
    // HTTP trace layer is there only when its debug events are enabled (RUST_LOG).
    let router = if http_tracing_enabled() {
        router.layer(tower_http::trace::TraceLayer::new_for_http())
    } else {
        router
    };
    router.with_state(state)
}

// The pipeline is one large state machine; boxed, the handler's future stays small and
// the server stack moves a pointer instead of it. The request is taken whole so that
// its headers are borrowed, not copied as axum's `HeaderMap` extractor would.
async fn chat_completions(State(state): State<Arc<AppState>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    Box::pin(front_door(&state, Dialect::OpenAiChat, &parts.headers, body)).await
}

async fn messages(State(state): State<Arc<AppState>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    Box::pin(front_door(&state, Dialect::AnthropicMessages, &parts.headers, body)).await
}

/// One front door: authenticate, read, decode in `dialect`, run the pipeline, encode.
/// Whatever happens, even a panic, the client is answered in its own dialect.
async fn front_door<B>(state: &AppState, dialect: Dialect, headers: &HeaderMap, body: B) -> Response
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    answer_panics(dialect, serve_front_door(state, dialect, headers, body)).await
}

async fn serve_front_door<B>(state: &AppState, dialect: Dialect, headers: &HeaderMap, body: B) -> Response
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let gateway = state.gateway.load_full();
    let result = async {
        // Keep-alive connections can still send requests while the server drains.
        if !state.ready.load(Ordering::SeqCst) {
            return Err(GatewayError::ShuttingDown.into());
        }
        let key_id = authenticate(&gateway.config.keys, headers)?;
        if dialect == Dialect::AnthropicMessages {
            check_anthropic_version(headers)?;
        }
        let bytes = read_body(body, headers, gateway.config.server.max_body_bytes).await?;
        let request = decode(dialect, &bytes).map_err(GatewayError::BadRequest)?;
        let include_usage = request.include_usage;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (anthropic_beta, anthropic_version) = match dialect {
            Dialect::AnthropicMessages => (header("anthropic-beta"), header("anthropic-version")),
            Dialect::OpenAiChat | Dialect::BedrockConverse | Dialect::Gemini => (None, None),
        };
        let inbound = Inbound { request, original: Some(bytes), front_door: dialect, key_id, anthropic_beta, anthropic_version };
        let reply = gateway.handle(inbound).await?;
        Ok::<_, Unanswered>(encode_reply(dialect, reply, include_usage))
    }
    .await;
    result.unwrap_or_else(|unanswered| render_error(dialect, &unanswered.error.to_api_error(), unanswered.request_id.as_deref()))
}

fn decode(dialect: Dialect, body: &[u8]) -> Result<crate::canonical::ChatRequest, ApiError> {
    match dialect {
        Dialect::AnthropicMessages => anthropic_messages::decode_request(body),
        Dialect::OpenAiChat | Dialect::BedrockConverse | Dialect::Gemini => openai_chat::decode_request(body),
    }
}

/// API versions of the Messages dialect the front door accepts. The 2.x SDKs send
/// 2026-10-21 by default; the request shapes the gateway decodes are common to all.
const ANTHROPIC_VERSIONS: [&str; 3] = ["2023-01-01", "2023-06-01", "2026-10-21"];

/// Anthropic's SDKs always send `anthropic-version`; curl users often don't, so a missing
/// header means 2023-06-01, and only an unknown version is refused.
fn check_anthropic_version(headers: &HeaderMap) -> Result<(), GatewayError> {
    match headers.get("anthropic-version").map(|v| v.to_str().unwrap_or("")) {
        None => Ok(()),
        Some(version) if ANTHROPIC_VERSIONS.contains(&version) => Ok(()),
        Some(other) => Err(GatewayError::BadRequest(
            ApiError::new(
                400,
                ErrorCategory::InvalidRequest,
                format!("anthropic-version: '{other}' is not a supported version (supported: {}).", ANTHROPIC_VERSIONS.join(", ")),
            )
            .with_param("anthropic-version"),
        )),
    }
}

fn encode_reply(dialect: Dialect, reply: Reply, include_usage: bool) -> Response {
    match reply {
        Reply::Complete { completion, attribution, request_id } => {
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
            let mut response = Response::new(Body::from(body));
            *response.headers_mut() = complete_reply_headers(&attribution, &request_id);
            response
        }
        Reply::Stream(stream) => {
            let attribution = stream.attribution.clone();
            let ledger_id = stream.settlement.request_id().clone();
            let request_id = ledger_id.replace('-', "");
            let encoder: Box<dyn StreamEncoder> = match dialect {
                Dialect::AnthropicMessages => Box::new(anthropic_messages::EventEncoder::new(format!("msg_{request_id}"), stream.passthrough)),
                Dialect::OpenAiChat | Dialect::BedrockConverse | Dialect::Gemini => Box::new(openai_chat::ChunkEncoder::new(
                    format!("chatcmpl-{request_id}"),
                    chrono::Utc::now().timestamp(),
                    include_usage,
                    stream.passthrough,
                )),
            };
            let body = Body::from_stream(client_stream(*stream, encoder));
            let mut response = Response::new(body);
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            attribute(headers, &attribution);
            name_request(headers, &ledger_id);
            response
        }
    }
}

/// `POST /v1/messages/count_tokens`: an estimate made locally (see `pipeline::tokens`),
/// for any route, without calling an upstream.
async fn count_tokens(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let dialect = Dialect::AnthropicMessages;
    let counting = async {
        let counted = count_input_tokens(&state, &headers, body).await;
        counted.unwrap_or_else(|e| error_response(dialect, &e.to_api_error()))
    };
    answer_panics(dialect, counting).await
}

async fn count_input_tokens(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, GatewayError> {
    let gateway = state.gateway.load_full();
    authenticate(&gateway.config.keys, headers)?;
    check_anthropic_version(headers)?;
    let bytes = read_body(body, headers, gateway.config.server.max_body_bytes).await?;
    let decoded = anthropic_messages::decode_count_tokens_request(&bytes).map_err(GatewayError::BadRequest)?;
    gateway.route(&decoded.model)?;
    let input_tokens = crate::pipeline::tokens::estimate_input_tokens(&decoded);
    Ok(axum::Json(anthropic_messages::AnthropicCountTokensResponse { input_tokens }).into_response())
}

const ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-switchyard-request-id");

/// Response headers that say which route and target answered, after how many attempts.
fn attribute(headers: &mut HeaderMap, attribution: &Attribution) {
    const ROUTE: HeaderName = HeaderName::from_static("x-switchyard-route");
    const TARGET: HeaderName = HeaderName::from_static("x-switchyard-target");
    const SIMULATED: HeaderName = HeaderName::from_static("x-switchyard-simulated");
    for (name, value) in [(ROUTE, &attribution.route), (TARGET, &attribution.target)] {
        if let Some(value) = value {
            headers.insert(name, value.clone());
        }
    }
    headers.insert(ATTEMPTS, attempts_value(attribution.attempts));
    if attribution.simulated {
        headers.insert(SIMULATED, HeaderValue::from_static("true"));
    }
}

/// An attempt count as a header value; up to nine, nearly every reply's, without
/// formatting a number.
fn attempts_value(attempts: u32) -> HeaderValue {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match DIGITS.get(attempts as usize) {
        Some(count) => HeaderValue::from_static(count),
        None => HeaderValue::from(attempts),
    }
}

/// Names the request's ledger entry (its `id`), so that a client can point at the exact
/// row that billed it. Only replies to routed requests have one.
fn name_request(headers: &mut HeaderMap, request_id: &str) {
    // A request id is a hyphenated uuid: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, value);
    }
}

/// The headers of a complete reply: its content type, [`attribute`]'s and
/// [`name_request`]'s. Those of a first-attempt answer are made once per target and
/// copied, which costs less than hashing five header names into a new map; the request
/// id and any other attempt count are set on the copy. The copy holds exactly its
/// entries, so the template has a placeholder request id for the real one to replace:
/// a new entry would make the copy grow.
fn complete_reply_headers(attribution: &Attribution, request_id: &str) -> HeaderMap {
    let first_attempt = attribution.reply_headers.get_or_init(|| {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        attribute(&mut headers, &Attribution { attempts: 1, ..attribution.clone() });
        headers.insert(REQUEST_ID, HeaderValue::from_static(""));
        headers
    });
    let mut headers = first_attempt.clone();
    name_request(&mut headers, request_id);
    if attribution.attempts != 1 {
        headers.insert(ATTEMPTS, attempts_value(attribution.attempts));
    }
    headers
}

async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let gateway = state.gateway.load_full();
    if let Err(e) = authenticate(&gateway.config.keys, &headers) {
        return error_response(Dialect::OpenAiChat, &e.to_api_error());
    }
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

/// `GET /admin/api/health`: every target's breaker, cooldown, quota and latency, and each
/// route's recent traffic share by cloud and operator.
async fn admin_health(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let gateway = state.gateway.load_full();
    if let Err(refusal) = admin_auth(&gateway, &headers) {
        return error_response(Dialect::OpenAiChat, &refusal);
    }
    let shares: serde_json::Map<String, serde_json::Value> = gateway
        .config
        .routes
        .values()
        .map(|route| {
            let by = |d| state.shared.shares.shares(&route.name, d);
            (route.name.clone(), json!({"cloud": by(TopologyDimension::Cloud), "operator": by(TopologyDimension::Operator)}))
        })
        .collect();
    axum::Json(json!({"targets": state.shared.health.snapshot(), "route_shares": shares})).into_response()
}

/// `POST /admin/api/reload`: re-reads the configuration file.
async fn admin_reload(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let gateway = state.gateway.load_full();
    if let Err(refusal) = admin_auth(&gateway, &headers) {
        return error_response(Dialect::OpenAiChat, &refusal);
    }
    match state.reload_from_file() {
        Ok(()) => axum::Json(json!({"reloaded": true})).into_response(),
        Err(e) => error_response(Dialect::OpenAiChat, &ApiError::new(400, ErrorCategory::InvalidRequest, e).with_code("invalid_config")),
    }
}

/// The admin API needs `admin.token`; without one configured it does not exist.
fn admin_auth(gateway: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = gateway.config.admin_token_sha256 else {
        return Err(ApiError::new(404, ErrorCategory::NotFound, "The admin API is off: set admin.token to enable it."));
    };
    let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if <[u8; 32]>::from(Sha256::digest(token.trim().as_bytes())) == expected => Ok(()),
        _ => Err(ApiError::new(401, ErrorCategory::Authentication, "Missing or wrong admin token.")),
    }
}

/// Folds recorded histogram samples into their buckets. Without this the Prometheus
/// recorder keeps every sample until the next scrape, so an unscraped gateway's memory
/// would grow with traffic.
async fn metrics_upkeep(handle: PrometheusHandle, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => handle.run_upkeep(),
        }
    }
}

/// Reloads the configuration when its file changes or on SIGHUP, until shutdown.
/// Polls the file's modification time: portable, and a two-second delay is fine for
/// configuration changes.
async fn watch_config(state: Arc<AppState>, stop: CancellationToken) {
    let Some(path) = state.config_path.clone() else { return };
    let modified = |path: &PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut last = modified(&path);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<Option<()>>();
        let forced = tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => false,
            _ = signalled => true,
        };
        let now = modified(&path);
        if forced || now != last {
            last = now;
            if let Err(e) = state.reload_from_file() {
                tracing::error!(error = %e, "configuration not reloaded; keeping the running one");
            }
        }
    }
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
fn authenticate(keys: &[ClientKey], headers: &HeaderMap) -> Result<Arc<str>, GatewayError> {
    static ANONYMOUS: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("anonymous"));
    if keys.is_empty() {
        return Ok(ANONYMOUS.clone());
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
async fn read_body<B>(body: B, headers: &HeaderMap, limit: usize) -> Result<Bytes, GatewayError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    crate::body::read_whole(body, limit, declared).await.map_err(|error| match error {
        crate::body::ReadError::TooLarge => GatewayError::BodyTooLarge { limit },
        crate::body::ReadError::Body(e) => GatewayError::BadRequest(ApiError::new(
            400,
            ErrorCategory::InvalidRequest,
            format!("The request body could not be read: {e}"),
        )),
    })
}

/// Renders an error in the client's dialect; with [`render_error`], the one place client
/// errors are logged.
fn error_response(dialect: Dialect, error: &ApiError) -> Response {
    render_error(dialect, error, None)
}

/// An error reply and its log line, both naming the request's ledger entry when the
/// request was routed (`request_id`), so that a client's report, the log and the ledger
/// meet on one id.
fn render_error(dialect: Dialect, error: &ApiError, request_id: Option<&str>) -> Response {
    if error.status >= 500 {
        tracing::warn!(status = error.status, code = error.code.as_deref(), message = %error.message, request_id, "request failed");
    } else {
        tracing::debug!(status = error.status, code = error.code.as_deref(), message = %error.message, request_id, "request rejected");
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
    if let Some(id) = request_id {
        name_request(response.headers_mut(), id);
    }
    response
}

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn the_main_thread_serves_on_the_single_threaded_scheduler_and_threads_default_to_one_per_cpu() {
        assert_eq!(super::runtime().unwrap().handle().runtime_flavor(), RuntimeFlavor::CurrentThread);
        let mut server = crate::config::Config::quickstart().unwrap().server;
        server.threads = None;
        assert_eq!(super::serving_threads(&server), std::thread::available_parallelism().unwrap().get());
        server.threads = std::num::NonZeroUsize::new(3);
        assert_eq!(super::serving_threads(&server), 3);
    }

    #[test]
    fn a_new_connection_goes_to_the_thread_with_fewest_open_and_among_equals_to_the_next_in_turn() {
        let loads = super::Loads::new(3);
        let mut turn = 0;
        let mut give = || {
            let to = loads.least_loaded(turn);
            turn = to + 1;
            loads.opened(to);
            to
        };
        let given: Vec<usize> = (0..6).map(|_| give()).collect();
        assert_eq!(given, [0, 1, 2, 0, 1, 2]);
        // Two of thread 1's connections close: it takes the next two.
        loads.closed(1);
        loads.closed(1);
        assert_eq!([give(), give(), give()], [1, 1, 2]);
    }

    /// A request body that panics when the front door reads it: a way to make a front
    /// door panic with no hook in the code it tests.
    struct PanickingBody;

    impl http_body::Body for PanickingBody {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            panic!("this body panics when read")
        }
    }

    #[tokio::test]
    async fn a_front_door_that_panics_answers_500_in_the_error_shape_of_the_dialect_its_client_spoke() {
        let mut config = crate::config::Config::quickstart().unwrap();
        config.ledger.url = "sqlite::memory:".to_owned();
        let running = super::start(config, tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await.unwrap();
        let openai = super::front_door(&running.state, super::Dialect::OpenAiChat, &Default::default(), PanickingBody).await;
        let anthropic = super::front_door(&running.state, super::Dialect::AnthropicMessages, &Default::default(), PanickingBody).await;
        let mut bodies = Vec::new();
        for response in [openai, anthropic] {
            assert_eq!(response.status(), 500);
            let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
            bodies.push(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap());
        }
        let message = "The gateway hit an internal error.";
        assert_eq!(bodies[0]["error"]["type"], "server_error");
        assert_eq!(bodies[0]["error"]["message"], message);
        assert_eq!(bodies[1], serde_json::json!({"type": "error", "error": {"type": "api_error", "message": message}}));
        running.shutdown().await;
    }

    #[test]
    fn the_attempts_header_gives_every_count_in_decimal() {
        for attempts in 0..=12 {
            let mut headers = axum::http::HeaderMap::new();
            let attribution = super::Attribution { route: None, target: None, attempts, simulated: false, reply_headers: Default::default() };
            super::attribute(&mut headers, &attribution);
            assert_eq!(headers["x-switchyard-attempts"], attempts.to_string().as_str());
            assert!(!headers.contains_key("x-switchyard-route"));
        }
    }

    #[test]
    fn a_targets_complete_replies_share_its_headers_but_each_names_its_own_request_and_attempt_count() {
        let attribution = super::Attribution {
            route: Some(axum::http::HeaderValue::from_static("support")),
            target: Some(axum::http::HeaderValue::from_static("openai/gpt-4.1-mini")),
            attempts: 3,
            simulated: true,
            reply_headers: Default::default(),
        };
        for (attempts, id) in [(3, "0196f1c2-0000-7000-8000-000000000001"), (1, "0196f1c2-0000-7000-8000-000000000002"), (12, "x"), (1, "y")] {
            let headers = super::complete_reply_headers(&super::Attribution { attempts, ..attribution.clone() }, id);
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(headers["x-switchyard-route"], "support");
            assert_eq!(headers["x-switchyard-target"], "openai/gpt-4.1-mini");
            assert_eq!(headers["x-switchyard-simulated"], "true");
            assert_eq!(headers["x-switchyard-attempts"], attempts.to_string().as_str());
            assert_eq!(headers["x-switchyard-request-id"], id);
            assert_eq!(headers.len(), 6);
        }
    }
}
