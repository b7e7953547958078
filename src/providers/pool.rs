//! The upstream connections of one [`HttpClient`](super::transport::HttpClient): kept
//! open between requests, by scheme and host.
//!
//! Why not hyper-util's pooled client, which the gateway used before: for every request
//! it hashed the host (with SipHash, a byte at a time), built a connect future it then
//! dropped, raced it against the pool checkout, formatted the `Host` header and, on the
//! way back, hashed the host again. That cost about 9k instructions per proxied request,
//! as much as reading the client's request and the upstream's answer together
//! (BENCHMARKS.md). Here a request takes an idle connection from a short list, compared
//! by host, and gives it back when its answer's body has been read.
//!
//! * HTTP/1.1: one request at a time per connection. Idle connections are kept, most
//!   recently used first, up to [`MAX_IDLE_PER_HOST`] per host and for at most
//!   [`IDLE_TIMEOUT`]: older ones are closed as the pool is used, and by a sweep a third
//!   of the timeout apart while any are idle, so that a pool nothing uses any more does
//!   not hold them until the upstream closes them (some servers never do).
//! * HTTP/2 (when TLS negotiates it): one connection per host, shared by every request.
//!   Once a host is known to speak it, requests that find no connection wait for the one
//!   being opened instead of each opening their own (a burst at start-up, or after the
//!   connection dropped, would otherwise open one per request). A quiet connection is
//!   pinged ([`HTTP2_PINGS`]): one whose network went dark without closing it is closed
//!   when the ping goes unanswered, instead of taking every request to its host into a
//!   black hole until TCP gives up on it (a quarter of an hour on Linux).
//! * Connections are kept per thread: a serving thread's requests take the connections
//!   its own runtime drives (the gateway serves one single-threaded runtime per core,
//!   `app::runtime`). A connection shared between threads would wake another thread
//!   for every request it carried.
//! * A request that a kept connection could not take (the upstream had closed it while
//!   it was idle) is sent again on another connection: it was never written, so this is
//!   not a retry of the attempt.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::Uri;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::Notify;

/// How long an idle connection is kept.
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle HTTP/1.1 connections kept per host: enough for the concurrency of a busy route.
pub(super) const MAX_IDLE_PER_HOST: usize = 256;
/// How the gateway's HTTP/2 connections are pinged: a dead one is closed within 45 s,
/// busy or idle. Every 30 s of quiet is far from the rate at which servers that police
/// pings (gRPC's, at one per 5 minutes without streams) refuse them, and keeps the
/// connection's NAT and load-balancer mappings alive. A request already sent on a
/// connection that dies fails as a connection error, and its route fails over.
pub(super) const HTTP2_PINGS: Pings = Pings { after_quiet: Duration::from_secs(30), answer_within: Duration::from_secs(15) };

/// When an HTTP/2 connection is pinged, and how long its peer has to answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pings {
    /// Time without a frame from the peer after which a ping is sent.
    pub(super) after_quiet: Duration,
    /// How long the answer may take before the connection is closed.
    pub(super) answer_within: Duration,
}

pub(super) type Body = Full<Bytes>;

/// Where a connection goes: what it may be reused for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Key {
    scheme: Scheme,
    /// Compared without regard to case, as hosts are.
    authority: Authority,
}

impl Key {
    /// The key of an absolute URI; `None` without a scheme or host.
    pub(super) fn of(uri: &Uri) -> Option<Key> {
        Some(Key { scheme: uri.scheme()?.clone(), authority: uri.authority()?.clone() })
    }
}

/// A connection to send one request on.
pub(super) struct Connection {
    sender: Sender,
    /// Requests on it go to a proxy and name their full URL.
    pub(super) proxied: bool,
    /// Taken from the pool rather than just opened.
    pub(super) reused: bool,
}

enum Sender {
    Http1(http1::SendRequest<Body>),
    Http2(http2::SendRequest<Body>),
}

impl Connection {
    /// Starts HTTP on a connection just opened, and spawns the task that drives it.
    /// `pings` applies to HTTP/2 ([`HTTP2_PINGS`] but in tests).
    pub(super) async fn start<Io>(io: Io, http2: bool, proxied: bool, pings: Pings) -> hyper::Result<Connection>
    where
        Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let sender = if http2 {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .keep_alive_interval(pings.after_quiet)
                .keep_alive_timeout(pings.answer_within)
                .keep_alive_while_idle(true)
                .handshake(io)
                .await?;
            tokio::spawn(connection);
            Sender::Http2(sender)
        } else {
            // Flattened writes, as the server's (`app::serve`): one buffer per request.
            // hyper's documentation also recommends them over TLS, which most
            // implementations write less well from a vector of buffers.
            let (sender, connection) = http1::Builder::new().writev(false).handshake(io).await?;
            tokio::spawn(connection);
            Sender::Http1(sender)
        };
        Ok(Connection { sender, proxied, reused: false })
    }

    pub(super) fn is_http1(&self) -> bool {
        matches!(self.sender, Sender::Http1(_))
    }

    /// Sends the request. An error that gives the request back means it was never
    /// written: the connection could not take it.
    pub(super) async fn send(&mut self, request: http::Request<Body>) -> Result<http::Response<hyper::body::Incoming>, hyper::client::conn::TrySendError<http::Request<Body>>> {
        match &mut self.sender {
            Sender::Http1(sender) => sender.try_send_request(request).await,
            Sender::Http2(sender) => sender.try_send_request(request).await,
        }
    }
}

/// Idle connections by host and thread.
pub(super) struct Pool {
    kept: Mutex<Kept>,
    /// How long an idle HTTP/1.1 connection is kept: [`IDLE_TIMEOUT`] but in tests.
    idle_timeout: Duration,
}

/// What a pool keeps, under one lock.
#[derive(Default)]
struct Kept {
    hosts: Vec<Host>,
    /// Whether a task is sweeping out connections idle too long ([`sweep`]). Under the
    /// same lock as the connections, so that one put back as the last sweep ends is
    /// never left without one.
    sweeping: bool,
}

impl Default for Pool {
    fn default() -> Self {
        Pool::keeping_idle_for(IDLE_TIMEOUT)
    }
}

/// A host's connections kept for one thread.
struct Host {
    key: Key,
    thread: ThreadId,
    /// HTTP/1.1 connections not in use, least recently used first.
    idle: VecDeque<Idle>,
    /// The HTTP/2 connection every request to the host shares.
    shared: Option<(http2::SendRequest<Body>, bool)>,
    /// The last connection opened to the host negotiated HTTP/2.
    speaks_http2: bool,
    /// Set while a connection to an HTTP/2 host is being opened; woken when that ends.
    opening: Option<Arc<Notify>>,
}

impl Host {
    fn new(key: &Key, thread: ThreadId) -> Host {
        Host { key: key.clone(), thread, idle: VecDeque::new(), shared: None, speaks_http2: false, opening: None }
    }

    fn is(&self, key: &Key, thread: ThreadId) -> bool {
        self.thread == thread && self.key == *key
    }

    /// Closes the idle connections kept longer than `timeout` at `now`.
    fn drop_stale(&mut self, now: Instant, timeout: Duration) {
        while self.idle.front().is_some_and(|idle| now.duration_since(idle.since) > timeout) {
            self.idle.pop_front();
        }
    }

    /// The shared HTTP/2 connection, if it is still open (a closed one is forgotten).
    fn shared(&mut self) -> Option<Connection> {
        match &self.shared {
            Some((sender, proxied)) if !sender.is_closed() => Some(Connection { sender: Sender::Http2(sender.clone()), proxied: *proxied, reused: true }),
            _ => {
                self.shared = None;
                None
            }
        }
    }

    /// Shares an HTTP/2 connection, unless one is shared already: a second (opened while
    /// the first was being set up) is not kept, and closes once its requests are done.
    fn share(&mut self, sender: &http2::SendRequest<Body>, proxied: bool) {
        if self.shared().is_none() {
            self.shared = Some((sender.clone(), proxied));
        }
    }
}

/// What a request that found no kept connection does.
pub(super) enum Turn {
    /// Use the connection another request opened meanwhile.
    Ready(Connection),
    /// Open one. With a claim, other requests to the host wait for this one's connection
    /// (see [`Pool::opened`]); dropping the claim, opened or not, wakes them.
    Open(Option<Opening>),
}

/// The right to open the connection an HTTP/2 host's waiting requests will share.
pub(super) struct Opening {
    pool: Arc<Pool>,
    key: Key,
    /// The thread that claimed it: on a multi-threaded runtime the claim may be dropped
    /// on another.
    thread: ThreadId,
}

impl Drop for Opening {
    fn drop(&mut self) {
        let mut kept = self.pool.lock();
        if let Some(host) = kept.hosts.iter_mut().find(|h| h.is(&self.key, self.thread)) {
            // The connection was not opened, or is not HTTP/2 after all: the waiting
            // requests open their own rather than queue behind one another's attempts.
            if host.shared().is_none() {
                host.speaks_http2 = false;
            }
            if let Some(opening) = host.opening.take() {
                opening.notify_waiters();
            }
        }
    }
}

struct Idle {
    sender: http1::SendRequest<Body>,
    proxied: bool,
    since: Instant,
}

impl Pool {
    fn keeping_idle_for(idle_timeout: Duration) -> Pool {
        Pool { kept: Mutex::default(), idle_timeout }
    }

    /// A kept connection to `key` that can take a request now, if there is one.
    pub(super) async fn checkout(&self, key: &Key) -> Option<Connection> {
        loop {
            let (sender, proxied) = {
                let mut kept = self.lock();
                let thread = this_thread();
                let host = kept.hosts.iter_mut().find(|h| h.is(key, thread))?;
                if let Some(shared) = host.shared() {
                    return Some(shared);
                }
                host.drop_stale(Instant::now(), self.idle_timeout);
                let idle = host.idle.pop_back()?;
                (idle.sender, idle.proxied)
            };
            let mut sender = sender;
            // A connection whose answer was just read becomes ready as soon as its task
            // has seen the end of it; one the upstream closed fails here and is dropped.
            if sender.ready().await.is_ok() {
                return Some(Connection { sender: Sender::Http1(sender), proxied, reused: true });
            }
        }
    }

    /// For a request that found no kept connection: wait for the connection another
    /// request is opening to the same HTTP/2 host, or open one (claiming the opening when
    /// the host speaks HTTP/2).
    pub(super) async fn turn(self: &Arc<Self>, key: &Key) -> Turn {
        loop {
            let notify = {
                let mut kept = self.lock();
                let host = kept.host(key);
                if !host.speaks_http2 {
                    return Turn::Open(None);
                }
                // Opened since the caller last looked.
                if let Some(shared) = host.shared() {
                    return Turn::Ready(shared);
                }
                match &host.opening {
                    Some(opening) => opening.clone(),
                    None => {
                        host.opening = Some(Arc::new(Notify::new()));
                        return Turn::Open(Some(Opening { pool: self.clone(), key: key.clone(), thread: host.thread }));
                    }
                }
            };
            let opened = notify.notified();
            tokio::pin!(opened);
            // Registered before looking again, so a wake-up between the two is not missed.
            opened.as_mut().enable();
            if let Some(connection) = self.checkout(key).await {
                return Turn::Ready(connection);
            }
            opened.await;
            if let Some(connection) = self.checkout(key).await {
                return Turn::Ready(connection);
            }
        }
    }

    /// Takes note of a connection just opened to `key`: an HTTP/2 one is shared from now
    /// on, before its first request, so requests waiting for it can go ahead.
    pub(super) fn opened(&self, key: &Key, connection: &Connection) {
        let mut kept = self.lock();
        let host = kept.host(key);
        host.speaks_http2 = !connection.is_http1();
        if let Sender::Http2(sender) = &connection.sender {
            host.share(sender, connection.proxied);
        }
    }

    /// Keeps an HTTP/1.1 connection whose last answer has been read in full, for the next
    /// request to `key`, and starts a [`sweep`] if none is running. (HTTP/2 connections
    /// are shared from the moment they open.)
    fn put_back(self: &Arc<Self>, key: &Key, sender: http1::SendRequest<Body>, proxied: bool) {
        if sender.is_closed() {
            return;
        }
        let mut kept = self.lock();
        let host = kept.host(key);
        if host.idle.len() >= MAX_IDLE_PER_HOST {
            host.idle.pop_front();
        }
        host.idle.push_back(Idle { sender, proxied, since: Instant::now() });
        if !kept.sweeping {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                kept.sweeping = true;
                runtime.spawn(sweep(Arc::downgrade(self)));
            }
        }
    }

    /// Closes every thread's idle connections kept longer than the idle timeout at `now`,
    /// and answers whether any are still kept; when none are, the sweep ends.
    fn trim(&self, now: Instant) -> bool {
        let mut kept = self.lock();
        for host in &mut kept.hosts {
            host.drop_stale(now, self.idle_timeout);
        }
        let any_idle = kept.hosts.iter().any(|host| !host.idle.is_empty());
        kept.sweeping = any_idle;
        any_idle
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Closes idle connections once they have been idle for the pool's idle timeout, whether
/// or not a request comes to take one, a third of the timeout between looks (so each is
/// closed within a third of the timeout after its time); ends when nothing is idle, or
/// when the pool is dropped (a configuration reload makes new ones).
async fn sweep(pool: Weak<Pool>) {
    loop {
        let Some(every) = pool.upgrade().map(|pool| pool.idle_timeout / 3) else { return };
        tokio::time::sleep(every).await;
        let Some(pool) = pool.upgrade() else { return };
        if !pool.trim(Instant::now()) {
            return;
        }
    }
}

impl Kept {
    /// The entry of `key` for the calling thread, made on first use.
    fn host(&mut self, key: &Key) -> &mut Host {
        let thread = this_thread();
        match self.hosts.iter().position(|h| h.is(key, thread)) {
            Some(index) => &mut self.hosts[index],
            None => {
                self.hosts.push(Host::new(key, thread));
                self.hosts.last_mut().expect("pushed above")
            }
        }
    }
}

/// The calling thread's id, read once per thread (`thread::current` clones a handle).
fn this_thread() -> ThreadId {
    thread_local! {
        static THREAD: ThreadId = std::thread::current().id();
    }
    THREAD.with(|id| *id)
}

/// An HTTP/1.1 connection on loan to one answer: back to the pool once the answer's
/// body has been read to its end, closed if the answer is dropped before that (the rest
/// of the body would still be on the wire). An HTTP/2 connection needs no lease: it is
/// shared from the moment it opens.
pub(super) struct Lease {
    pool: Arc<Pool>,
    key: Key,
    connection: Option<(http1::SendRequest<Body>, bool)>,
}

impl Lease {
    pub(super) fn new(pool: Arc<Pool>, key: Key, connection: Connection) -> Lease {
        let connection = match connection.sender {
            Sender::Http1(sender) => Some((sender, connection.proxied)),
            Sender::Http2(_) => None,
        };
        Lease { pool, key, connection }
    }

    /// The answer's body has been read to its end.
    pub(super) fn release(&mut self) {
        if let Some((sender, proxied)) = self.connection.take() {
            self.pool.put_back(&self.key, sender, proxied);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_told_apart_by_scheme_host_and_port_but_not_by_case() {
        let key = |url: &str| Key::of(&url.parse().unwrap()).unwrap();
        assert_eq!(key("https://API.openai.com/v1/chat/completions"), key("https://api.openai.com/v1/models"));
        assert_ne!(key("https://api.openai.com/v1"), key("http://api.openai.com/v1"));
        assert_ne!(key("http://127.0.0.1:8000/v1"), key("http://127.0.0.1:8001/v1"));
        assert_eq!(Key::of(&"/v1/chat/completions".parse().unwrap()), None);
    }

    /// An HTTP/2 connection to an in-memory server that answers `{}` and counts requests;
    /// aborting the returned task closes the connection.
    async fn http2_connection(served: Arc<std::sync::atomic::AtomicUsize>) -> (Connection, tokio::task::JoinHandle<()>) {
        let (connection, server, _dark) = http2_connection_over(served, HTTP2_PINGS).await;
        (connection, server)
    }

    /// [`http2_connection`] pinged as `pings` says, over a network the returned switch
    /// turns dark: from then on the client's bytes are lost and no answer comes back,
    /// and neither side sees the connection close.
    async fn http2_connection_over(
        served: Arc<std::sync::atomic::AtomicUsize>,
        pings: Pings,
    ) -> (Connection, tokio::task::JoinHandle<()>, Arc<std::sync::atomic::AtomicBool>) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_request| {
                served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(b"{}")))) }
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(server_io), service)
                .await;
        });
        let dark = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let wire = DarkWire { io: client_io, dark: dark.clone() };
        (Connection::start(hyper_util::rt::TokioIo::new(wire), true, false, pings).await.unwrap(), server, dark)
    }

    /// The client's end of an in-memory connection whose network can go dark.
    struct DarkWire {
        io: tokio::io::DuplexStream,
        dark: Arc<std::sync::atomic::AtomicBool>,
    }

    impl DarkWire {
        fn is_dark(&self) -> bool {
            self.dark.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl tokio::io::AsyncRead for DarkWire {
        fn poll_read(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> std::task::Poll<std::io::Result<()>> {
            if self.is_dark() {
                // Nothing arrives any more; only the connection's own timers wake it.
                return std::task::Poll::Pending;
            }
            std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
        }
    }

    impl tokio::io::AsyncWrite for DarkWire {
        fn poll_write(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
            if self.is_dark() {
                // Taken by the socket, lost on the way.
                return std::task::Poll::Ready(Ok(buf.len()));
            }
            std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
        }

        fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.io).poll_flush(cx)
        }

        fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }

    /// An HTTP/1.1 connection to an in-memory server that answers `{}`; the returned task
    /// ends when the client closes the connection.
    async fn http1_connection() -> (Connection, tokio::task::JoinHandle<()>) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let service = hyper::service::service_fn(|_request| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(b"{}"))))
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(server_io), service).await;
        });
        (Connection::start(hyper_util::rt::TokioIo::new(client_io), false, false, HTTP2_PINGS).await.unwrap(), server)
    }

    fn request() -> http::Request<Body> {
        http::Request::post("https://api.test/v1/chat/completions").body(Full::new(Bytes::from_static(b"{}"))).unwrap()
    }

    #[tokio::test]
    async fn an_idle_http1_connection_is_closed_once_idle_too_long_even_when_no_request_comes_for_it() {
        let pool = Arc::new(Pool::keeping_idle_for(Duration::from_secs(1)));
        let key = Key::of(&"http://api.test/v1".parse().unwrap()).unwrap();
        let (mut connection, server) = http1_connection().await;
        let answer = connection.send(request()).await.unwrap();
        http_body_util::BodyExt::collect(answer.into_body()).await.unwrap();
        Lease::new(pool.clone(), key, connection).release();
        let idle_since = Instant::now();
        // Kept while it is young: the server still has it.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!server.is_finished(), "closed after {:?} idle", idle_since.elapsed());
        // Nothing uses the pool again, yet the connection is closed once its time is up.
        tokio::time::timeout(Duration::from_secs(5), server).await.expect("the idle connection was never closed").unwrap();
        // (Its idle time is counted from a moment before `idle_since`.)
        assert!(idle_since.elapsed() >= Duration::from_millis(900), "closed after {:?}", idle_since.elapsed());
        // With nothing left idle, the sweep has ended.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!pool.lock().sweeping);
    }

    #[tokio::test]
    async fn an_http2_connection_is_kept_at_once_and_shared_by_requests_in_flight_together() {
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (connection, _server) = http2_connection(served.clone()).await;
        let pool = Arc::new(Pool::default());
        let key = Key::of(&"https://api.test/v1/chat/completions".parse().unwrap()).unwrap();
        // Shared as soon as it is opened: the lease of an HTTP/2 answer holds nothing back.
        pool.opened(&key, &connection);
        let (mut a, mut b) = (pool.checkout(&key).await.unwrap(), pool.checkout(&key).await.unwrap());
        assert!(a.reused && b.reused && !a.is_http1());
        let (first, second) = tokio::join!(a.send(request()), b.send(request()));
        assert_eq!((first.unwrap().status(), second.unwrap().status()), (http::StatusCode::OK, http::StatusCode::OK));
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);
        let other = Key::of(&"https://other.test/v1".parse().unwrap()).unwrap();
        assert!(pool.checkout(&other).await.is_none());
    }

    #[tokio::test]
    async fn a_connection_kept_by_one_serving_thread_is_not_lent_to_another() {
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (connection, _server) = http2_connection(served).await;
        let pool = Arc::new(Pool::default());
        let key = Key::of(&"https://api.test/v1/chat/completions".parse().unwrap()).unwrap();
        pool.opened(&key, &connection);
        // Its task runs on this thread's runtime: another thread opens its own.
        let elsewhere = std::thread::spawn({
            let (pool, key) = (pool.clone(), key.clone());
            move || tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async move { pool.checkout(&key).await.is_some() })
        });
        assert!(!elsewhere.join().unwrap(), "another thread found this thread's connection");
        assert!(pool.checkout(&key).await.is_some());
    }

    #[tokio::test]
    async fn requests_to_an_http2_host_wait_for_the_connection_being_opened_instead_of_opening_their_own() {
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let pool = Arc::new(Pool::default());
        let key = Key::of(&"https://api.test/v1/chat/completions".parse().unwrap()).unwrap();
        // The host is known to speak HTTP/2; then its connection drops.
        let (first, server) = http2_connection(served.clone()).await;
        pool.opened(&key, &first);
        server.abort();
        drop(first);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(pool.checkout(&key).await.is_none());

        let Turn::Open(Some(claim)) = pool.turn(&key).await else { panic!("the first request opens the connection, for all") };
        let waiting = tokio::spawn({
            let (pool, key) = (pool.clone(), key.clone());
            async move { pool.turn(&key).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the second request waits");
        let (second, _server) = http2_connection(served.clone()).await;
        pool.opened(&key, &second);
        drop(claim);
        let Turn::Ready(mut shared) = waiting.await.unwrap() else { panic!("the waiting request takes the new connection") };
        shared.send(request()).await.unwrap();
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);

        // An opening that fails sends the waiting requests to open their own.
        let other = Key::of(&"https://other.test/v1".parse().unwrap()).unwrap();
        let (third, _server) = http2_connection(served).await;
        pool.opened(&other, &third);
        let Turn::Ready(_) = pool.turn(&other).await else { panic!("a kept connection is used") };
        drop(third);
        pool.lock().hosts.iter_mut().find(|h| h.key == other).unwrap().shared = None;
        let Turn::Open(Some(claim)) = pool.turn(&other).await else { panic!("claims the opening") };
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.turn(&other).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(claim);
        assert!(matches!(waiting.await.unwrap(), Turn::Open(None)));
    }

    #[tokio::test]
    async fn an_http2_connection_whose_network_goes_dark_is_closed_once_a_ping_goes_unanswered_and_is_no_longer_lent() {
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // Short, but with room for a busy test machine to be late answering a ping.
        let pings = Pings { after_quiet: Duration::from_millis(100), answer_within: Duration::from_millis(500) };
        let (connection, _server, dark) = http2_connection_over(served.clone(), pings).await;
        let pool = Arc::new(Pool::default());
        let key = Key::of(&"https://api.test/v1/chat/completions".parse().unwrap()).unwrap();
        pool.opened(&key, &connection);

        // Answered pings keep a quiet connection: several intervals later it still serves.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let mut kept = pool.checkout(&key).await.expect("a connection whose pings are answered is kept");
        assert_eq!(kept.send(request()).await.unwrap().status(), http::StatusCode::OK);

        // The network goes dark without either side closing: the request in flight fails
        // instead of waiting for an answer that cannot come, and the connection is let go.
        dark.store(true, std::sync::atomic::Ordering::SeqCst);
        let in_flight = tokio::time::timeout(Duration::from_secs(5), kept.send(request())).await;
        assert!(matches!(in_flight, Ok(Err(_))), "the request on the dark connection fails within the ping's deadline");
        let forgotten = tokio::time::timeout(Duration::from_secs(5), async {
            while pool.checkout(&key).await.is_some() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert!(forgotten.await.is_ok(), "the dead connection is no longer lent");
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1, "only the request sent before the dark reached the server");
    }
}
