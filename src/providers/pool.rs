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
//!   [`IDLE_TIMEOUT`]; older ones are closed as the pool is used.
//! * HTTP/2 (when TLS negotiates it): one connection per host, shared by every request.
//! * A request that a kept connection could not take (the upstream had closed it while
//!   it was idle) is sent again on another connection: it was never written, so this is
//!   not a retry of the attempt.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::Uri;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// How long an idle connection is kept.
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle HTTP/1.1 connections kept per host: enough for the concurrency of a busy route.
pub(super) const MAX_IDLE_PER_HOST: usize = 256;

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
    pub(super) async fn start<Io>(io: Io, http2: bool, proxied: bool) -> hyper::Result<Connection>
    where
        Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let sender = if http2 {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new()).timer(TokioTimer::new()).handshake(io).await?;
            tokio::spawn(connection);
            Sender::Http2(sender)
        } else {
            let (sender, connection) = http1::handshake(io).await?;
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

/// Idle connections by host.
#[derive(Default)]
pub(super) struct Pool {
    hosts: Mutex<Vec<Host>>,
}

struct Host {
    key: Key,
    /// HTTP/1.1 connections not in use, least recently used first.
    idle: VecDeque<Idle>,
    /// The HTTP/2 connection every request to the host shares.
    shared: Option<(http2::SendRequest<Body>, bool)>,
}

struct Idle {
    sender: http1::SendRequest<Body>,
    proxied: bool,
    since: Instant,
}

impl Pool {
    /// A kept connection to `key` that can take a request now, if there is one.
    pub(super) async fn checkout(&self, key: &Key) -> Option<Connection> {
        loop {
            let (sender, proxied) = {
                let mut hosts = self.lock();
                let host = hosts.iter_mut().find(|h| h.key == *key)?;
                if let Some((sender, proxied)) = &host.shared {
                    if !sender.is_closed() {
                        return Some(Connection { sender: Sender::Http2(sender.clone()), proxied: *proxied, reused: true });
                    }
                    host.shared = None;
                }
                let now = Instant::now();
                while host.idle.front().is_some_and(|idle| now.duration_since(idle.since) > IDLE_TIMEOUT) {
                    host.idle.pop_front();
                }
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

    /// Keeps a connection whose last answer has been read in full, for the next request
    /// to `key`.
    pub(super) fn put_back(&self, key: &Key, connection: Connection) {
        let Connection { sender, proxied, .. } = connection;
        let mut hosts = self.lock();
        let index = match hosts.iter().position(|h| h.key == *key) {
            Some(index) => index,
            None => {
                hosts.push(Host { key: key.clone(), idle: VecDeque::new(), shared: None });
                hosts.len() - 1
            }
        };
        let host = &mut hosts[index];
        match sender {
            Sender::Http1(sender) if !sender.is_closed() => {
                if host.idle.len() >= MAX_IDLE_PER_HOST {
                    host.idle.pop_front();
                }
                host.idle.push_back(Idle { sender, proxied, since: Instant::now() });
            }
            // A second HTTP/2 connection (opened while the first was being set up) is
            // not kept: it closes once its requests are done.
            Sender::Http2(sender) if !sender.is_closed() && host.shared.as_ref().is_none_or(|(shared, _)| shared.is_closed()) => {
                host.shared = Some((sender, proxied));
            }
            _ => {}
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Host>> {
        self.hosts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connection on loan to one answer: back to the pool once the answer's body has been
/// read to its end, closed if the answer is dropped before that (the rest of the body
/// would still be on the wire).
pub(super) struct Lease {
    pool: Arc<Pool>,
    key: Key,
    connection: Option<Connection>,
}

impl Lease {
    pub(super) fn new(pool: Arc<Pool>, key: Key, connection: Connection) -> Lease {
        // An HTTP/2 connection is shared: it is kept as soon as it has answered.
        let connection = if connection.is_http1() {
            Some(connection)
        } else {
            pool.put_back(&key, connection);
            None
        };
        Lease { pool, key, connection }
    }

    /// The answer's body has been read to its end.
    pub(super) fn release(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.pool.put_back(&self.key, connection);
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

    #[tokio::test]
    async fn an_http2_connection_is_kept_at_once_and_shared_by_requests_in_flight_together() {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_request| {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(b"{}")))) }
            });
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(server_io), service)
                .await
        });
        let connection = Connection::start(hyper_util::rt::TokioIo::new(client_io), true, false).await.unwrap();
        let pool = Arc::new(Pool::default());
        let key = Key::of(&"https://api.test/v1/chat/completions".parse().unwrap()).unwrap();
        // Kept as soon as it is lent: the lease of an HTTP/2 answer holds nothing back.
        let _lease = Lease::new(pool.clone(), key.clone(), connection);
        let (mut a, mut b) = (pool.checkout(&key).await.unwrap(), pool.checkout(&key).await.unwrap());
        assert!(a.reused && b.reused && !a.is_http1());
        let request = || http::Request::post("https://api.test/v1/chat/completions").body(Full::new(Bytes::from_static(b"{}"))).unwrap();
        let (first, second) = tokio::join!(a.send(request()), b.send(request()));
        assert_eq!((first.unwrap().status(), second.unwrap().status()), (http::StatusCode::OK, http::StatusCode::OK));
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);
        let other = Key::of(&"https://other.test/v1".parse().unwrap()).unwrap();
        assert!(pool.checkout(&other).await.is_none());
    }
}
