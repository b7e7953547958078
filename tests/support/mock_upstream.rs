//! A scripted upstream for tests: a deliberately tiny HTTP/1.1 server on
//! `127.0.0.1:0` that answers each request with the next scripted [`Reply`].
//!
//! It is hand-written on a raw `TcpListener` (no hyper) so that it can misbehave
//! precisely: reset a connection, stall before the headers, cut a chunked body in
//! the middle, trickle a body byte by byte, answer late, or write arbitrary bytes.
//! Failover, timeout, streaming and chaos tests are built on it; [`Reply::schedule`]
//! and [`Reply::chaos`] mix faults into a sequence of requests, deterministically.
//!
//! What it speaks: request line, headers, a body framed by `content-length` or
//! `transfer-encoding: chunked`, `expect: 100-continue`, and keep-alive (several
//! requests per connection, as reqwest's pool does). JSON replies carry a
//! `content-length`; SSE replies are chunked `text/event-stream`.
//!
//! Time: every delay (SSE gaps, stalls) is a `tokio::time::sleep`, so tests that
//! run with a paused clock (`#[tokio::test(start_paused = true)]`) skip them
//! instantly. The safety timeout of [`MockUpstream::wait_for_requests`] is the one
//! exception: it is measured on the wall clock, so a paused clock that auto-advances
//! while real socket I/O is pending cannot fire it by mistake.
//!
//! Tests in another process can read what the mock received from
//! `GET {base_url}/__mock/requests` (see [`CONTROL_PREFIX`]).
//!
//! Every connection task stops when the last clone of the [`MockUpstream`] handle
//! is dropped.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long [`MockUpstream::wait_for_requests`] waits (wall clock) before it
/// fails the test.
const WAIT_FOR_REQUESTS_LIMIT: Duration = Duration::from_secs(10);

/// Requests whose path starts with this are answered by the mock itself, for
/// tests in other processes (Python) that need to see what the upstream received:
/// `GET /__mock/requests` returns every recorded request as JSON (see
/// [`RecordedRequest::to_json`]).
pub const CONTROL_PREFIX: &str = "/__mock/";

/// The largest request head (request line and headers) the mock accepts.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A handle to a running scripted upstream. Clones share the same server, script
/// and recorded requests; the server stops when the last clone is dropped.
#[derive(Clone)]
pub struct MockUpstream {
    shared: Arc<Shared>,
    _stop_on_drop: Arc<StopOnDrop>,
}

/// State shared by the handle, the accept loop and every connection task.
struct Shared {
    addr: SocketAddr,
    state: Mutex<State>,
    /// The number of requests received so far; `wait_for_requests` subscribes.
    received: watch::Sender<usize>,
    /// The number of TCP connections accepted so far (to prove keep-alive).
    connections: AtomicUsize,
}

struct State {
    /// Replies for the next requests, oldest first.
    script: VecDeque<Reply>,
    /// The reply used when `script` is empty.
    default: Reply,
    /// Every request received, in arrival order.
    requests: Vec<RecordedRequest>,
}

/// Cancels the accept loop and every connection task when dropped.
struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl MockUpstream {
    /// Binds `127.0.0.1:0` and starts serving. The default reply is a 500 OpenAI
    /// error saying "no scripted reply", so an unexpected request fails loudly.
    pub async fn start() -> MockUpstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("mock upstream: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("mock upstream: local_addr");
        let shared = Arc::new(Shared {
            addr,
            state: Mutex::new(State {
                script: VecDeque::new(),
                default: Reply::openai_error(
                    500,
                    "server_error",
                    "mock upstream: no scripted reply for this request",
                ),
                requests: Vec::new(),
            }),
            received: watch::Sender::new(0),
            connections: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, shared.clone(), stop.clone()));
        MockUpstream {
            shared,
            _stop_on_drop: Arc::new(StopOnDrop(stop)),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The socket address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Appends a reply to the script: the next request gets the oldest pushed reply.
    pub fn push(&self, reply: Reply) {
        self.shared.lock().script.push_back(reply);
    }

    /// Sets the reply used whenever the script is empty.
    pub fn set_default(&self, reply: Reply) {
        self.shared.lock().default = reply;
    }

    /// How many pushed replies have not been used yet.
    pub fn pending_replies(&self) -> usize {
        self.shared.lock().script.len()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The most recent request; panics if none arrived.
    pub fn last_request(&self) -> RecordedRequest {
        self.shared
            .lock()
            .requests
            .last()
            .cloned()
            .expect("mock upstream: no request has arrived")
    }

    /// How many requests arrived so far.
    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// How many TCP connections were accepted so far.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests have arrived. Panics after 10 seconds of
    /// wall-clock time (not tokio time, see the module docs) listing what did arrive.
    /// A request counts as arrived once it has been read, before its reply is sent.
    pub async fn wait_for_requests(&self, n: usize) {
        let mut received = self.shared.received.subscribe();
        let watchdog = WallClockWatchdog::start(WAIT_FOR_REQUESTS_LIMIT);
        tokio::select! {
            result = received.wait_for(|count| *count >= n) => {
                result.expect("mock upstream: request counter closed");
            }
            _ = watchdog.expired() => {
                let seen: Vec<String> = self
                    .requests()
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.path))
                    .collect();
                panic!(
                    "mock upstream: waited {WAIT_FOR_REQUESTS_LIMIT:?} for {n} request(s), got {}: {seen:?}",
                    seen.len()
                );
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide the real failure
        // behind a poison error in another task.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the request and takes the reply for it (script first, then default).
    fn record_and_pick(&self, request: &RecordedRequest) -> Reply {
        let (reply, count) = {
            let mut state = self.lock();
            state.requests.push(request.clone());
            let reply = match state.script.pop_front() {
                Some(reply) => reply,
                None => state.default.clone(),
            };
            (reply, state.requests.len())
        };
        self.received.send_replace(count);
        reply
    }
}

impl Shared {
    /// Answers a request under [`CONTROL_PREFIX`].
    fn control_reply(&self, request: &RecordedRequest) -> Reply {
        let path = request.path.split('?').next().unwrap_or_default();
        match (request.method.as_str(), path) {
            ("GET", "/__mock/requests") => {
                let requests: Vec<serde_json::Value> = self
                    .lock()
                    .requests
                    .iter()
                    .map(RecordedRequest::to_json)
                    .collect();
                Reply::json(200, serde_json::Value::Array(requests))
            }
            _ => Reply::openai_error(
                404,
                "not_found_error",
                &format!(
                    "mock upstream: no control endpoint {} {}",
                    request.method, request.path
                ),
            ),
        }
    }
}

/// A timer on the wall clock, run on a helper thread so that tokio's paused clock
/// cannot advance it. Dropping it stops the thread at once.
struct WallClockWatchdog {
    expired: tokio::sync::oneshot::Receiver<()>,
    _cancel: std::sync::mpsc::Sender<()>,
}

impl WallClockWatchdog {
    fn start(limit: Duration) -> WallClockWatchdog {
        let (expired_tx, expired) = tokio::sync::oneshot::channel();
        let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            // `recv_timeout` returns early with `Disconnected` when the watchdog is dropped.
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
                let _ = expired_tx.send(());
            }
        });
        WallClockWatchdog {
            expired,
            _cancel: cancel,
        }
    }

    async fn expired(self) {
        let WallClockWatchdog { expired, _cancel } = self;
        if expired.await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// One request as the mock received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target as sent, including any query string (`/v1/chat/completions?x=1`).
    pub path: String,
    /// Header names are lowercased; values are trimmed; order and duplicates are kept.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked if it was sent with `transfer-encoding: chunked`.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON; panics with the body text if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "mock upstream: body of {} {} is not JSON ({e}): {}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text (lossy UTF-8).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The request as JSON, as served by `GET /__mock/requests`: `method`, `path`,
    /// `headers` (a list of `[name, value]`), and `body` (parsed JSON when the body
    /// is JSON, otherwise a string).
    pub fn to_json(&self) -> serde_json::Value {
        let body = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| serde_json::Value::String(self.body_text()));
        json!({
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": body,
        })
    }
}

/// A reply that computes another reply from the request.
pub type ReplyFn = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;

/// What the mock does with one request.
#[derive(Clone)]
pub enum Reply {
    /// A complete JSON response with `content-length`. `content-type` defaults to
    /// `application/json` unless `headers` sets it.
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: serde_json::Value,
    },
    /// A chunked `text/event-stream` response. The headers go out at once; each
    /// event is then sent as one chunk `data: {event}\n\n` (raw strings, so a test
    /// can send `[DONE]` or invalid JSON), waiting `gap` between consecutive events
    /// (not before the first). `end` says how the body finishes.
    Sse {
        status: u16,
        headers: Vec<(String, String)>,
        events: Vec<String>,
        gap: Duration,
        end: StreamEnd,
    },
    /// Written as-is (the test writes the status line and headers too), then the
    /// connection is closed.
    RawBytes(Vec<u8>),
    /// Reads the request, then closes the connection with a TCP RST (zero linger).
    Reset,
    /// Reads the request, sends nothing for the duration, then closes the connection.
    StallBeforeHeaders(Duration),
    /// Computes the reply from the request (may itself return another `Handler`).
    /// A panic inside the function becomes a 500 reply naming the panic.
    Handler(ReplyFn),
    /// A complete response sent slowly: the status line and headers at once (with a
    /// `content-length`; `content-type` defaults to `application/json` unless
    /// `headers` sets it), then `body` in pieces of `chunk` bytes, waiting `gap`
    /// between pieces (not before the first). With `chunk >= body.len()` it is an
    /// ordinary response with exactly these bytes as its body. If the client gives up,
    /// the mock stops at the first failed write.
    Trickle {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        chunk: usize,
        gap: Duration,
    },
    /// Reads the request, sends nothing for the duration, then sends the inner reply
    /// (of any kind, including a `Handler`, which is run before the wait).
    Delayed(Duration, Box<Reply>),
}

/// How an [`Reply::Sse`] body finishes after its listed events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// End the chunked body properly (`0\r\n\r\n`); the connection stays open.
    Clean,
    /// Close the connection without the final chunk: the client sees a body that
    /// ends in the middle.
    Cut,
    /// Send nothing more but keep the connection open for the duration, then close it
    /// without the final chunk.
    StallThenClose(Duration),
}

impl Reply {
    /// A JSON reply with no extra headers.
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::Json {
            status,
            headers: Vec::new(),
            body,
        }
    }

    /// A 200 SSE reply with the given raw events, no gap, ending cleanly.
    pub fn sse<I, S>(events: I) -> Reply
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Reply::Sse {
            status: 200,
            headers: Vec::new(),
            events: events.into_iter().map(Into::into).collect(),
            gap: Duration::ZERO,
            end: StreamEnd::Clean,
        }
    }

    /// An error in OpenAI's shape:
    /// `{"error":{"message":…,"type":…,"param":null,"code":null}}`.
    pub fn openai_error(status: u16, error_type: &str, message: &str) -> Reply {
        Reply::json(
            status,
            json!({
                "error": {
                    "message": message,
                    "type": error_type,
                    "param": null,
                    "code": null,
                }
            }),
        )
    }

    /// A 429 with a `retry-after` header (seconds) and OpenAI's rate-limit error body.
    pub fn rate_limited(retry_after_secs: u64) -> Reply {
        Reply::json(
            429,
            json!({
                "error": {
                    "message": format!(
                        "Rate limit reached for requests. Please try again in {retry_after_secs}s."
                    ),
                    "type": "rate_limit_error",
                    "param": null,
                    "code": "rate_limit_exceeded",
                }
            }),
        )
        .with_header("retry-after", &retry_after_secs.to_string())
        .with_header("x-ratelimit-remaining-requests", "0")
    }

    /// A `Trickle` reply: `body` sent `chunk` bytes at a time, `gap` apart, as
    /// `application/json` unless a `content-type` header is added.
    pub fn trickle(status: u16, body: impl Into<Vec<u8>>, chunk: usize, gap: Duration) -> Reply {
        Reply::Trickle {
            status,
            headers: Vec::new(),
            body: body.into(),
            chunk: chunk.max(1),
            gap,
        }
    }

    /// The same answer as this `Json` or `Sse` reply, but trickled: `chunk` bytes at
    /// a time, `gap` apart, framed by `content-length`. An `Sse` reply keeps its
    /// status, headers and `data:` framing (`content-type: text/event-stream`); its
    /// own `gap` and `end` are replaced by the trickle (it always ends cleanly).
    pub fn trickled(self, chunk: usize, gap: Duration) -> Reply {
        let (status, mut headers, body) = match self {
            Reply::Json {
                status,
                headers,
                body,
            } => (
                status,
                headers,
                serde_json::to_vec(&body).expect("serialize JSON reply"),
            ),
            Reply::Sse {
                status,
                mut headers,
                events,
                ..
            } => {
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                {
                    headers.push(("content-type".to_string(), "text/event-stream".to_string()));
                }
                let body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
                (status, headers, body.into_bytes())
            }
            other => panic!("trickled: {other:?} is not a Json or Sse reply"),
        };
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-length"));
        Reply::Trickle {
            status,
            headers,
            body,
            chunk: chunk.max(1),
            gap,
        }
    }

    /// A 200 `application/json` answer whose body is not valid JSON: a chat
    /// completion cut off in the middle of its first choice.
    pub fn invalid_json() -> Reply {
        let body = br#"{"id":"chatcmpl-broken","object":"chat.completion","created":1700000000,"model":"broken","choices":[{"index":0,"message":{"role":"assistant","content":"cut he"#;
        Reply::trickle(200, body.to_vec(), usize::MAX, Duration::ZERO)
    }

    /// Waits `delay` (sending nothing), then sends `reply`.
    pub fn delayed(delay: Duration, reply: Reply) -> Reply {
        Reply::Delayed(delay, Box::new(reply))
    }

    /// Cycles through `replies`: the n-th request this reply serves gets
    /// `replies[n % len]`. Use it as the default (`set_default`) for a fault that
    /// recurs on a schedule, e.g. `[ok, ok, fail]` fails every third request.
    pub fn schedule(replies: Vec<Reply>) -> Reply {
        assert!(!replies.is_empty(), "schedule: needs at least one reply");
        let served = AtomicUsize::new(0);
        Reply::handler(move |_| {
            let n = served.fetch_add(1, Ordering::SeqCst);
            replies[n % replies.len()].clone()
        })
    }

    /// A seeded chaos upstream: each request this reply serves is, with probability
    /// `failure_rate`, answered by one of `faults` (picked uniformly), otherwise by
    /// `healthy`. The dice are a seeded generator, so for the same seed the n-th
    /// request always gets the same reply (with concurrent requests, which one is
    /// n-th depends on arrival order). Any reply may be a `Handler`, for instance a
    /// healthy answer that streams only when asked to.
    pub fn chaos(seed: u64, failure_rate: f64, faults: Vec<Reply>, healthy: Reply) -> Reply {
        assert!(
            (0.0..=1.0).contains(&failure_rate),
            "chaos: failure_rate must be between 0 and 1"
        );
        let dice = Mutex::new(SplitMix64(seed));
        Reply::handler(move |_| {
            let mut dice = dice.lock().unwrap_or_else(|p| p.into_inner());
            let roll = dice.next_f64();
            let pick = dice.next_u64();
            if !faults.is_empty() && roll < failure_rate {
                faults[(pick % faults.len() as u64) as usize].clone()
            } else {
                healthy.clone()
            }
        })
    }

    /// A reply computed from the request.
    pub fn handler<F>(f: F) -> Reply
    where
        F: Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    {
        Reply::Handler(Arc::new(f))
    }

    /// Adds a response header to a `Json`, `Sse` or `Trickle` reply; panics for
    /// other kinds.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        match &mut self {
            Reply::Json { headers, .. }
            | Reply::Sse { headers, .. }
            | Reply::Trickle { headers, .. } => {
                headers.push((name.to_string(), value.to_string()));
            }
            other => panic!("with_header: {other:?} has no headers"),
        }
        self
    }

    /// Sets the status of a `Json`, `Sse` or `Trickle` reply; panics for other kinds.
    pub fn with_status(mut self, new_status: u16) -> Reply {
        match &mut self {
            Reply::Json { status, .. }
            | Reply::Sse { status, .. }
            | Reply::Trickle { status, .. } => *status = new_status,
            other => panic!("with_status: {other:?} has no status"),
        }
        self
    }

    /// Sets the wait between consecutive events of an `Sse` reply.
    pub fn with_gap(mut self, new_gap: Duration) -> Reply {
        match &mut self {
            Reply::Sse { gap, .. } => *gap = new_gap,
            other => panic!("with_gap: {other:?} is not an Sse reply"),
        }
        self
    }

    /// Sets how an `Sse` reply ends.
    pub fn with_end(mut self, new_end: StreamEnd) -> Reply {
        match &mut self {
            Reply::Sse { end, .. } => *end = new_end,
            other => panic!("with_end: {other:?} is not an Sse reply"),
        }
        self
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Json {
                status,
                headers,
                body,
            } => f
                .debug_struct("Json")
                .field("status", status)
                .field("headers", headers)
                .field("body", body)
                .finish(),
            Reply::Sse {
                status,
                headers,
                events,
                gap,
                end,
            } => f
                .debug_struct("Sse")
                .field("status", status)
                .field("headers", headers)
                .field("events", events)
                .field("gap", gap)
                .field("end", end)
                .finish(),
            Reply::RawBytes(bytes) => f
                .debug_tuple("RawBytes")
                .field(&String::from_utf8_lossy(bytes))
                .finish(),
            Reply::Reset => f.write_str("Reset"),
            Reply::StallBeforeHeaders(d) => f.debug_tuple("StallBeforeHeaders").field(d).finish(),
            Reply::Handler(_) => f.write_str("Handler(..)"),
            Reply::Trickle {
                status,
                headers,
                body,
                chunk,
                gap,
            } => f
                .debug_struct("Trickle")
                .field("status", status)
                .field("headers", headers)
                .field("body", &String::from_utf8_lossy(body))
                .field("chunk", chunk)
                .field("gap", gap)
                .finish(),
            Reply::Delayed(delay, reply) => {
                f.debug_tuple("Delayed").field(delay).field(reply).finish()
            }
        }
    }
}

/// SplitMix64: a tiny, well-known seeded generator (Steele, Lea & Flood, 2014), so
/// chaos schedules are reproducible without depending on a crate's stream stability.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = serve_connection(stream, &shared) => {}
                    }
                });
            }
            Err(e) => eprintln!("mock upstream: accept failed: {e}"),
        }
    }
}

/// Serves requests on one connection until a reply closes it or the client leaves.
async fn serve_connection(stream: TcpStream, shared: &Shared) {
    let mut conn = Connection {
        stream,
        buf: BytesMut::with_capacity(8 * 1024),
    };
    loop {
        let (request, client_wants_close) = match conn.read_request().await {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return,
            Err(e) => {
                if e.kind() != io::ErrorKind::ConnectionReset {
                    eprintln!("mock upstream: could not read a request: {e}");
                    let _ = conn
                        .stream
                        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                }
                return;
            }
        };
        if request.path.starts_with(CONTROL_PREFIX) {
            // Inspection requests are answered by the mock itself: not recorded,
            // not counted, and they do not consume the script.
            let reply = shared.control_reply(&request);
            match conn.write_reply(reply, client_wants_close).await {
                Ok(true) => continue,
                Ok(false) | Err(_) => return,
            }
        }
        let (delay, reply) = resolve(shared.record_and_pick(&request), &request);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match conn.write_reply(reply, client_wants_close).await {
            Ok(true) => continue,
            Ok(false) | Err(_) => return,
        }
    }
}

/// Runs `Handler` replies and unwraps `Delayed` ones until a concrete reply comes
/// out; returns it with the total delay to wait before sending it.
fn resolve(mut reply: Reply, request: &RecordedRequest) -> (Duration, Reply) {
    let mut delay = Duration::ZERO;
    for _ in 0..16 {
        let handler = match reply {
            Reply::Handler(handler) => handler,
            Reply::Delayed(wait, inner) => {
                delay += wait;
                reply = *inner;
                continue;
            }
            concrete => return (delay, concrete),
        };
        reply = match catch_unwind(AssertUnwindSafe(|| handler(request))) {
            Ok(next) => next,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic".to_string());
                eprintln!("mock upstream: reply handler panicked: {message}");
                return (
                    delay,
                    Reply::openai_error(
                        500,
                        "server_error",
                        &format!("mock upstream: reply handler panicked: {message}"),
                    ),
                );
            }
        };
    }
    (
        delay,
        Reply::openai_error(
            500,
            "server_error",
            "mock upstream: handlers nested 16 deep",
        ),
    )
}

struct Connection {
    stream: TcpStream,
    /// Bytes read from the socket but not yet consumed.
    buf: BytesMut,
}

impl Connection {
    /// Reads one request. `Ok(None)` means the client closed the connection cleanly
    /// between requests. The flag says whether the client asked to close afterwards.
    async fn read_request(&mut self) -> io::Result<Option<(RecordedRequest, bool)>> {
        let head_len = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos + 4;
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(invalid("request head too large"));
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        };
        let head = self.buf.split_to(head_len);
        let head = std::str::from_utf8(&head).map_err(|_| invalid("request head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("malformed request line"));
        };
        let mut headers = Vec::new();
        for line in lines.take_while(|line| !line.is_empty()) {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid("malformed header line"))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_ascii_lowercase())
        };

        if header("expect").is_some_and(|v| v == "100-continue") {
            self.stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await?;
        }
        let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            self.read_chunked_body().await?
        } else if let Some(length) = header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| invalid("content-length is not a number"))?;
            self.fill(length).await?;
            self.buf.split_to(length).freeze()
        } else {
            Bytes::new()
        };

        let connection = header("connection").unwrap_or_default();
        let wants_close = connection.contains("close")
            || (version == "HTTP/1.0" && !connection.contains("keep-alive"));
        let request = RecordedRequest {
            method: method.to_string(),
            path: path.to_string(),
            headers,
            body,
        };
        Ok(Some((request, wants_close)))
    }

    async fn read_chunked_body(&mut self) -> io::Result<Bytes> {
        let mut body = BytesMut::new();
        loop {
            let line = self.read_line().await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                while !self.read_line().await?.is_empty() {}
                return Ok(body.freeze());
            }
            self.fill(size + 2).await?;
            body.extend_from_slice(&self.buf[..size]);
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(invalid("chunk not followed by CRLF"));
            }
            self.buf.advance(size + 2);
        }
    }

    /// Reads one CRLF-terminated line and returns it without the CRLF.
    async fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n") {
                let line = self.buf.split_to(pos + 2);
                return Ok(String::from_utf8_lossy(&line[..pos]).into_owned());
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(invalid("line too long"));
            }
            self.read_more().await?;
        }
    }

    /// Reads until at least `n` bytes are buffered.
    async fn fill(&mut self, n: usize) -> io::Result<()> {
        while self.buf.len() < n {
            self.read_more().await?;
        }
        Ok(())
    }

    async fn read_more(&mut self) -> io::Result<()> {
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Writes the reply. Returns whether the connection may serve another request.
    async fn write_reply(&mut self, reply: Reply, client_wants_close: bool) -> io::Result<bool> {
        match reply {
            Reply::Json {
                status,
                headers,
                body,
            } => {
                let body = serde_json::to_vec(&body).map_err(io::Error::other)?;
                let mut head = status_line(status);
                push_default_header(&mut head, &headers, "content-type", "application/json");
                head.push_str(&format!("content-length: {}\r\n", body.len()));
                finish_head(&mut head, &headers, client_wants_close);
                let mut bytes = head.into_bytes();
                bytes.extend_from_slice(&body);
                self.stream.write_all(&bytes).await?;
                self.stream.flush().await?;
                Ok(!client_wants_close)
            }
            Reply::Sse {
                status,
                headers,
                events,
                gap,
                end,
            } => {
                let mut head = status_line(status);
                push_default_header(&mut head, &headers, "content-type", "text/event-stream");
                push_default_header(&mut head, &headers, "cache-control", "no-cache");
                head.push_str("transfer-encoding: chunked\r\n");
                finish_head(&mut head, &headers, client_wants_close);
                self.stream.write_all(head.as_bytes()).await?;
                self.stream.flush().await?;
                for (i, event) in events.iter().enumerate() {
                    if i > 0 && !gap.is_zero() {
                        tokio::time::sleep(gap).await;
                    }
                    let data = format!("data: {event}\n\n");
                    let chunk = format!("{:x}\r\n{data}\r\n", data.len());
                    self.stream.write_all(chunk.as_bytes()).await?;
                    self.stream.flush().await?;
                }
                match end {
                    StreamEnd::Clean => {
                        self.stream.write_all(b"0\r\n\r\n").await?;
                        self.stream.flush().await?;
                        Ok(!client_wants_close)
                    }
                    StreamEnd::Cut => {
                        let _ = self.stream.shutdown().await;
                        Ok(false)
                    }
                    StreamEnd::StallThenClose(stall) => {
                        tokio::time::sleep(stall).await;
                        let _ = self.stream.shutdown().await;
                        Ok(false)
                    }
                }
            }
            Reply::RawBytes(bytes) => {
                self.stream.write_all(&bytes).await?;
                self.stream.flush().await?;
                let _ = self.stream.shutdown().await;
                Ok(false)
            }
            Reply::Reset => {
                // Zero linger turns the close into an RST instead of a FIN.
                self.stream.set_zero_linger()?;
                Ok(false)
            }
            Reply::StallBeforeHeaders(stall) => {
                tokio::time::sleep(stall).await;
                let _ = self.stream.shutdown().await;
                Ok(false)
            }
            Reply::Trickle {
                status,
                headers,
                body,
                chunk,
                gap,
            } => {
                let mut head = status_line(status);
                push_default_header(&mut head, &headers, "content-type", "application/json");
                head.push_str(&format!("content-length: {}\r\n", body.len()));
                finish_head(&mut head, &headers, client_wants_close);
                self.stream.write_all(head.as_bytes()).await?;
                self.stream.flush().await?;
                for (i, piece) in body.chunks(chunk.max(1)).enumerate() {
                    if i > 0 && !gap.is_zero() {
                        tokio::time::sleep(gap).await;
                    }
                    self.stream.write_all(piece).await?;
                    self.stream.flush().await?;
                }
                Ok(!client_wants_close)
            }
            Reply::Handler(_) | Reply::Delayed(..) => {
                Err(io::Error::other("unresolved handler or delayed reply"))
            }
        }
    }
}

fn status_line(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    format!("HTTP/1.1 {status} {reason}\r\n")
}

/// Adds `name: value` unless the test's own headers set that header.
fn push_default_header(head: &mut String, headers: &[(String, String)], name: &str, value: &str) {
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
}

fn finish_head(head: &mut String, headers: &[(String, String)], close: bool) {
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}
