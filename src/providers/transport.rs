//! The HTTP client every adapter sends its upstream requests with.
//!
//! hyper's client connections over rustls (Mozilla's roots, plus the CA certificates of
//! the provider's `ca_file`; ALPN for HTTP/2), kept open
//! in a pool of the gateway's own ([`super::pool`]): the gateway needs no redirect
//! following (an API upstream that redirects is misconfigured, and following would
//! resend the body and key elsewhere), no client-side retries (retries are the route's,
//! counted and billed as attempts) and no URL parsing per request, which are what a
//! general-purpose client adds on every call.
//!
//! Egress proxies come from the environment, as curl reads them: `HTTPS_PROXY`,
//! `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (or their lower-case forms). HTTPS upstreams
//! are reached through a `CONNECT` tunnel, plain-HTTP upstreams by sending the request to
//! the proxy in absolute form; credentials in the proxy URL become `Proxy-Authorization`.
//! The proxy itself is reached over plain HTTP.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http::header::{CONTENT_TYPE, HOST, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyDataStream, Full};
use hyper::body::Incoming;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use tower::Service;

use super::pool::{self, Key, Lease, Pool, Turn};
use super::{ErrorKind, UpstreamError};

/// How many times a request is handed to another kept connection because the one it
/// was given had closed before taking it; then a new connection is opened.
const STALE_CONNECTIONS_TRIED: u32 = 2;

/// A pooled HTTP/1.1 and HTTP/2 client for one provider. Clones share the pool.
#[derive(Clone)]
pub struct HttpClient {
    connector: Connector,
    pool: Arc<Pool>,
    proxies: Option<Arc<Matcher>>,
    /// The most bytes of an answer read at once ([`HttpResponse::answer_limit`]).
    answer_limit: usize,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("proxied", &self.proxies.is_some()).finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client that gives up connecting after `connect_timeout` and takes its proxies
    /// from the environment.
    pub fn new(connect_timeout: Duration) -> Self {
        Self::with_proxies(connect_timeout, proxies_from_env())
    }

    /// A client with explicit proxy rules (`None`: always connect directly).
    pub fn with_proxies(connect_timeout: Duration, proxies: Option<Matcher>) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        // Shared out among a name's addresses, so a dead first address leaves time to
        // try the next; the connector bounds the whole set-up, TLS included, as well.
        http.set_connect_timeout(Some(connect_timeout));
        let proxies = proxies.map(Arc::new);
        let connector = Connector::new(http, tls_config(), proxies.clone(), connect_timeout);
        HttpClient { connector, pool: Arc::default(), proxies, answer_limit: usize::MAX }
    }

    /// The same client, refusing a whole answer, or one frame of a stream, larger than
    /// `bytes` (a provider's `max_answer_bytes`).
    pub fn limiting_answers_to(self, bytes: usize) -> Self {
        HttpClient { answer_limit: bytes, ..self }
    }

    /// The same client, also trusting `certificates` (a provider's `ca_file`) as roots
    /// besides Mozilla's.
    pub fn trusting(self, certificates: &[CertificateDer<'static>]) -> Self {
        if certificates.is_empty() {
            return self;
        }
        let Connector { http, proxies, timeout, .. } = self.connector;
        HttpClient { connector: Connector::new(http, tls_config_trusting(certificates), proxies, timeout), ..self }
    }

    /// Sends a request (to an absolute URL) and returns once the answer's head has
    /// arrived; the body is read from the [`HttpResponse`]. The caller bounds the whole
    /// exchange with its own timer.
    pub async fn send(&self, mut request: Request<Full<Bytes>>) -> Result<HttpResponse, UpstreamError> {
        let uri = request.uri().clone();
        let key = Key::of(&uri).ok_or_else(|| UpstreamError::new(ErrorKind::InvalidRequest, format!("not an absolute URL: {uri}")))?;
        if let Some(auth) = self.proxy_authorization(&uri) {
            request.headers_mut().insert(PROXY_AUTHORIZATION, auth);
        }
        let mut stale = 0;
        loop {
            let kept = if stale < STALE_CONNECTIONS_TRIED { self.pool.checkout(&key).await } else { None };
            let mut connection = match kept {
                Some(connection) => connection,
                // Boxed: opening a connection is rare, and its large future inline would
                // grow every request's future (which is moved as a whole).
                None => Box::pin(self.open(&key, &uri)).await?,
            };
            address(&mut request, &uri, &connection);
            match connection.send(request).await {
                Ok(response) => {
                    let lease = Lease::new(self.pool.clone(), key, connection);
                    return Ok(HttpResponse { response, lease, answer_limit: self.answer_limit });
                }
                Err(mut failed) => match failed.take_message() {
                    // Never written: the kept connection had closed. Another one takes it.
                    Some(unsent) if connection.reused => {
                        request = unsent;
                        *request.uri_mut() = uri.clone();
                        stale += 1;
                    }
                    _ => return Err(request_failed(&failed.into_error(), false)),
                },
            }
        }
    }

    /// A connection for a request that found none kept: the one another request is
    /// opening to the same HTTP/2 host, or a new one.
    async fn open(&self, key: &Key, uri: &Uri) -> Result<pool::Connection, UpstreamError> {
        match self.pool.turn(key).await {
            Turn::Ready(connection) => Ok(connection),
            Turn::Open(claim) => {
                let connection = self.connect(uri).await?;
                self.pool.opened(key, &connection);
                drop(claim);
                Ok(connection)
            }
        }
    }

    /// Opens a connection to the URL's host (or its proxy) and starts HTTP on it.
    async fn connect(&self, uri: &Uri) -> Result<pool::Connection, UpstreamError> {
        let io = self.connector.clone().call(uri.clone()).await.map_err(|error| request_failed(&*error, true))?;
        let connected = io.connected();
        pool::Connection::start(io, connected.is_negotiated_h2(), connected.is_proxied(), pool::HTTP2_PINGS)
            .await
            .map_err(|error| request_failed(&error, true))
    }

    /// Credentials for a plain-HTTP request sent through a proxy (tunnelled HTTPS
    /// requests carry them in the `CONNECT` instead).
    fn proxy_authorization(&self, uri: &Uri) -> Option<HeaderValue> {
        let proxies = self.proxies.as_ref()?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return None;
        }
        proxies.intercept(uri)?.basic_auth().cloned()
    }
}

/// The configuration's default connect timeout, proxies from the environment.
impl Default for HttpClient {
    fn default() -> Self {
        Self::new(Duration::from_secs(5))
    }
}

/// Headers every request gains on its way out: `content-type` ([`post_json`]), `host`
/// (over HTTP/1.1) and `content-length` (hyper).
const ADDED_HEADERS: usize = 3;

/// A provider's fixed headers copied into a map with room for the ones every request
/// adds ([`ADDED_HEADERS`]), so that adding them never regrows it. (A clone of the
/// fixed map is exactly full: it grew twice per request.)
pub fn request_headers(fixed: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(fixed.len() + ADDED_HEADERS);
    headers.extend(fixed.iter().map(|(name, value)| (name.clone(), value.clone())));
    headers
}

/// A JSON POST: the request every adapter sends.
pub fn post_json(uri: Uri, mut headers: HeaderMap, body: Vec<u8>) -> Request<Full<Bytes>> {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut request = Request::new(Full::new(Bytes::from(body)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    request
}

/// Parses an upstream URL built from configuration and the target's model.
pub fn parse_uri(url: &str, provider: &str) -> Result<Uri, UpstreamError> {
    url.parse::<Uri>().map_err(|e| UpstreamError::new(ErrorKind::InvalidRequest, format!("{provider}: invalid upstream URL: {e}")))
}

/// The `host` header the client writes for `uri`: the port only when it is not the
/// scheme's default (what a signature over `host` must cover).
pub fn host_header(uri: &Uri) -> String {
    let host = uri.host().unwrap_or_default();
    match uri.port_u16() {
        Some(port) if port != default_port(uri) => format!("{host}:{port}"),
        _ => host.to_owned(),
    }
}

fn default_port(uri: &Uri) -> u16 {
    match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    }
}

/// The request line and `Host` a connection needs: HTTP/1.1 names the path alone
/// (the full URL when the connection goes to a proxy) and the host in a header; HTTP/2
/// takes the full URL and needs no header.
fn address(request: &mut Request<Full<Bytes>>, uri: &Uri, connection: &pool::Connection) {
    if !connection.is_http1() {
        return;
    }
    if !request.headers().contains_key(HOST) {
        if let Some(host) = host_value(uri) {
            request.headers_mut().insert(HOST, host);
        }
    }
    if !connection.proxied {
        let mut origin_form = http::uri::Parts::default();
        origin_form.path_and_query = Some(uri.path_and_query().cloned().unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")));
        if let Ok(origin_form) = Uri::from_parts(origin_form) {
            *request.uri_mut() = origin_form;
        }
    }
}

/// [`host_header`] as a header value, straight from the URL's authority when that is
/// already the header (most upstream URLs: no credentials, no default port spelt out).
fn host_value(uri: &Uri) -> Option<HeaderValue> {
    let authority = uri.authority()?.as_str();
    if !authority.contains('@') && uri.port_u16() != Some(default_port(uri)) {
        return HeaderValue::from_str(authority).ok();
    }
    HeaderValue::from_str(&host_header(uri)).ok()
}

/// An upstream's answer, its body not yet read. Its connection goes back to the pool
/// once the body has been read to the end.
pub struct HttpResponse {
    response: Response<Incoming>,
    lease: Lease,
    answer_limit: usize,
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse").field("status", &self.response.status()).finish_non_exhaustive()
    }
}

impl HttpResponse {
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    /// The most bytes of this answer the gateway holds at once: all of a whole body
    /// ([`bytes`](Self::bytes)), one frame of a stream (`upstream::items`).
    pub fn answer_limit(&self) -> usize {
        self.answer_limit
    }

    /// Reads the whole body, refusing one larger than the [answer limit](Self::answer_limit)
    /// as soon as its declared length, or the bytes read, say it is.
    pub async fn bytes(self) -> Result<Bytes, UpstreamError> {
        let HttpResponse { response, mut lease, answer_limit } = self;
        let declared = response.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        if declared.is_some_and(|length| length > answer_limit) {
            return Err(answer_too_large(answer_limit));
        }
        match crate::body::read_whole(response.into_body(), answer_limit, declared).await {
            Ok(bytes) => {
                lease.release();
                Ok(bytes)
            }
            Err(crate::body::ReadError::Body(error)) => Err(body_failed(&error)),
            Err(crate::body::ReadError::TooLarge) => Err(answer_too_large(answer_limit)),
        }
    }

    /// The body's bytes as they arrive.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, UpstreamError>> + Send + 'static {
        let HttpResponse { response, mut lease, .. } = self;
        let mut data = BodyDataStream::new(response.into_body());
        futures_util::stream::poll_fn(move |cx| {
            let item = std::task::ready!(Pin::new(&mut data).poll_next(cx));
            if item.is_none() {
                lease.release();
            }
            Poll::Ready(item.map(|chunk| chunk.map_err(|error| body_failed(&error))))
        })
    }
}

/// The error for an answer, or a frame of one, larger than `limit` bytes.
fn answer_too_large(limit: usize) -> UpstreamError {
    UpstreamError::new(ErrorKind::TooLarge, format!("the answer is larger than the provider's max_answer_bytes ({limit} bytes)"))
}

/// The proxy rules of the environment, or `None` when it names no proxy.
fn proxies_from_env() -> Option<Matcher> {
    const VARIABLES: [&str; 6] = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];
    VARIABLES.iter().any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty())).then(Matcher::from_env)
}

/// Mozilla's roots with ring's TLS defaults, made once for every provider's client.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| Arc::new(client_config(public_roots()))).clone()
}

/// [`tls_config`] with more roots: made once per client that has them.
fn tls_config_trusting(certificates: &[CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut roots = public_roots();
    // Configuration checked that each one is usable.
    roots.add_parsable_certificates(certificates.iter().cloned());
    Arc::new(client_config(roots))
}

fn public_roots() -> rustls::RootCertStore {
    rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

fn client_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A request that got no answer, `connecting` or on a connection made: classified for
/// failover, with its root cause (a refused connection, a certificate the roots do not
/// vouch for, …), which names at most the upstream's address, never a header.
fn request_failed(error: &(dyn std::error::Error + 'static), connecting: bool) -> UpstreamError {
    let kind = if timed_out(error) { ErrorKind::Timeout } else { ErrorKind::Connect };
    let detail = match (connecting, kind) {
        (true, _) => "could not connect",
        (false, ErrorKind::Timeout) => "timed out",
        _ => "the connection failed",
    };
    UpstreamError::new(kind, format!("{detail}: {}", root_cause(error)))
}

/// A body that broke off after the answer's head.
fn body_failed(error: &hyper::Error) -> UpstreamError {
    let kind = if timed_out(error) { ErrorKind::Timeout } else { ErrorKind::Connect };
    UpstreamError::new(kind, format!("the response body broke off: {}", root_cause(error)))
}

/// The innermost error of the chain: the one that says what happened.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Whether a timeout anywhere in the error's chain caused it.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        if error.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout) {
            return true;
        }
        cause = error.source();
    }
    false
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Io = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// Opens connections: directly, through a `CONNECT` tunnel (HTTPS via a proxy), or to
/// the proxy itself (plain HTTP via a proxy), with TLS where the scheme asks for it.
#[derive(Clone)]
struct Connector {
    direct: HttpsConnector<HttpConnector>,
    http: HttpConnector,
    tls: Arc<rustls::ClientConfig>,
    proxies: Option<Arc<Matcher>>,
    /// Bounds the whole connection set-up: TCP, a proxy's `CONNECT` and the TLS
    /// handshake, so an upstream that accepts and then says nothing fails over after
    /// the connect timeout, not the attempt's.
    timeout: Duration,
}

impl Connector {
    fn new(http: HttpConnector, tls: Arc<rustls::ClientConfig>, proxies: Option<Arc<Matcher>>, timeout: Duration) -> Self {
        Connector { direct: https(&tls, http.clone()), http, tls, proxies, timeout }
    }

    fn bounded(&self, connecting: impl Future<Output = Result<Io, BoxError>> + Send + 'static, proxied: bool) -> <Self as Service<Uri>>::Future {
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(io) => Ok(Conn { io: io?, proxied }),
                Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no connection within {timeout:?}")).into()),
            }
        })
    }
}

/// TLS where the URL says `https`, HTTP/2 where the server offers it.
fn https<C>(tls: &rustls::ClientConfig, inner: C) -> HttpsConnector<C> {
    hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls.clone()).https_or_http().enable_http1().enable_http2().wrap_connector(inner)
}

impl Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let intercept = self.proxies.as_ref().and_then(|p| p.intercept(&dst));
        let Some(intercept) = intercept else {
            let connecting = self.direct.call(dst);
            return self.bounded(connecting, false);
        };
        if intercept.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
            let message = "the proxy URL is https://, and proxies are reached over plain HTTP only; use an http:// proxy URL";
            return Box::pin(async move { Err(message.into()) });
        }
        if dst.scheme() == Some(&http::uri::Scheme::HTTPS) {
            let mut tunnel = Tunnel::new(intercept.uri().clone(), self.http.clone());
            if let Some(auth) = intercept.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            let connecting = https(&self.tls, tunnel).call(dst);
            self.bounded(connecting, false)
        } else {
            let connecting = self.direct.call(intercept.uri().clone());
            self.bounded(connecting, true)
        }
    }
}

/// A connection, marked when requests on it must name their full URL (sent to a proxy).
struct Conn {
    io: Io,
    proxied: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn request_headers_keep_every_fixed_value_with_room_for_the_added_headers() {
        let mut fixed = HeaderMap::new();
        fixed.insert("authorization", HeaderValue::from_static("Bearer sk-x"));
        fixed.append("x-tag", HeaderValue::from_static("a"));
        fixed.append("x-tag", HeaderValue::from_static("b"));
        let mut headers = request_headers(&fixed);
        assert_eq!(headers, fixed);
        let capacity = headers.capacity();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(HOST, HeaderValue::from_static("upstream"));
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("2"));
        assert_eq!(headers.capacity(), capacity, "adding the request's own headers regrew the map");
    }

    /// A one-connection server that records the request head it receives and answers
    /// with `reply` as raw bytes.
    async fn raw_server(reply: &'static [u8]) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            socket.write_all(reply).await.unwrap();
            socket.shutdown().await.ok();
            String::from_utf8_lossy(&head).into_owned()
        });
        (address, task)
    }

    /// A client whose proxy is `proxy` for every host but those in NO_PROXY's `127.0.0.2`.
    fn through(proxy: &str) -> HttpClient {
        let proxies = Matcher::builder().http(proxy.to_owned()).https(proxy.to_owned()).no("127.0.0.2".to_owned()).build();
        HttpClient::with_proxies(Duration::from_secs(2), Some(proxies))
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

    #[tokio::test]
    async fn a_plain_http_upstream_is_asked_through_the_proxy_in_absolute_form_with_its_credentials() {
        let (proxy, head) = raw_server(OK).await;
        let client = through(&format!("http://user:secret@{proxy}"));
        let uri: Uri = "http://upstream.test/v1/chat/completions".parse().unwrap();
        let response = client.send(post_json(uri, HeaderMap::new(), b"{}".to_vec())).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(&response.bytes().await.unwrap()[..], b"{}");
        let head = head.await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("post http://upstream.test/v1/chat/completions http/1.1\r\n"), "{head}");
        assert!(head.contains("proxy-authorization: basic dxnlcjpzzwnyzxq=\r\n"), "{head}");
        assert!(head.contains("content-type: application/json\r\n"), "{head}");
    }

    #[tokio::test]
    async fn an_https_upstream_is_reached_through_a_connect_tunnel_and_a_refused_tunnel_cannot_connect() {
        let (proxy, head) = raw_server(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n").await;
        let client = through(&format!("http://user:secret@{proxy}"));
        let uri: Uri = "https://api.upstream.test/v1/messages".parse().unwrap();
        let error = client.send(post_json(uri, HeaderMap::new(), b"{}".to_vec())).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Connect);
        assert!(error.message.starts_with("could not connect: "), "{}", error.message);
        assert!(!error.message.contains("secret"), "{}", error.message);
        let head = head.await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("connect api.upstream.test:443 http/1.1\r\n"), "{head}");
        assert!(head.contains("proxy-authorization: basic dxnlcjpzzwnyzxq=\r\n"), "{head}");
    }

    #[tokio::test]
    async fn without_proxies_the_request_goes_straight_to_the_upstream_in_origin_form() {
        let (upstream, head) = raw_server(OK).await;
        let client = HttpClient::with_proxies(Duration::from_secs(2), None);
        let uri: Uri = format!("http://{upstream}/v1/chat/completions?x=1").parse().unwrap();
        let response = client.send(post_json(uri, HeaderMap::new(), b"{}".to_vec())).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let head = head.await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("post /v1/chat/completions?x=1 http/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("host: {upstream}\r\n")), "{head}");
        assert!(!head.contains("proxy-authorization"), "{head}");
    }

    #[tokio::test]
    async fn a_host_in_no_proxy_is_reached_directly() {
        let listener = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let direct = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            socket.write_all(OK).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        // The proxy is a closed port: going through it would fail.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let client = through(&format!("http://127.0.0.1:{closed}"));
        let uri: Uri = format!("http://127.0.0.2:{port}/v1/chat/completions").parse().unwrap();
        let response = client.send(post_json(uri, HeaderMap::new(), b"{}".to_vec())).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(direct.await.unwrap().to_ascii_lowercase().starts_with("post /v1/chat/completions http/1.1\r\n"));
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        // Bind, then close: nothing listens on the port any more.
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let client = HttpClient::with_proxies(Duration::from_secs(2), None);
        let uri: Uri = format!("http://127.0.0.1:{port}/v1/chat/completions").parse().unwrap();
        let error = client.send(post_json(uri, HeaderMap::new(), Vec::new())).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Connect);
        assert!(error.message.starts_with("could not connect: ") && error.message.contains("refused"), "{}", error.message);
    }

    #[tokio::test]
    async fn a_body_that_breaks_off_says_so() {
        let (upstream, _head) = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"id\":").await;
        let client = HttpClient::with_proxies(Duration::from_secs(2), None);
        let uri: Uri = format!("http://{upstream}/v1/chat/completions").parse().unwrap();
        let response = client.send(post_json(uri, HeaderMap::new(), Vec::new())).await.unwrap();
        let error = response.bytes().await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Connect);
        assert!(error.message.starts_with("the response body broke off: "), "{}", error.message);
    }

    #[tokio::test]
    async fn an_upstream_that_accepts_but_never_answers_the_tls_handshake_times_out_at_the_connect_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let client = HttpClient::with_proxies(Duration::from_millis(200), None);
        let uri: Uri = format!("https://localhost:{port}/v1/messages").parse().unwrap();
        let started = std::time::Instant::now();
        let error = client.send(post_json(uri, HeaderMap::new(), Vec::new())).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Timeout, "{}", error.message);
        assert!(error.message.starts_with("could not connect: no connection within 200ms"), "{}", error.message);
        assert!(started.elapsed() < Duration::from_secs(5), "gave up only after {:?}", started.elapsed());
        silent.abort();
    }

    /// An upstream that answers every request on a connection with `{}` (keep-alive),
    /// or only the first when `one_per_connection` (then it closes the connection without
    /// saying so, as a server does with an idle connection it times out). Returns its
    /// address and the number of connections it has accepted.
    async fn counting_server(one_per_connection: bool) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let mut pending = Vec::new();
                    loop {
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        pending.extend_from_slice(&buf[..n]);
                        // Requests here carry a 2-byte body after their head.
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            if pending.len() < end + 4 + 2 {
                                break;
                            }
                            pending.drain(..end + 4 + 2);
                            socket.write_all(OK).await.unwrap();
                            if one_per_connection {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (address, accepted)
    }

    async fn post(client: &HttpClient, address: &str) -> HttpResponse {
        let uri: Uri = format!("http://{address}/v1/chat/completions").parse().unwrap();
        client.send(post_json(uri, HeaderMap::new(), b"{}".to_vec())).await.unwrap()
    }

    #[tokio::test]
    async fn requests_one_after_another_share_one_kept_connection() {
        let (upstream, accepted) = counting_server(false).await;
        let client = HttpClient::with_proxies(Duration::from_secs(2), None);
        for _ in 0..5 {
            assert_eq!(&post(&client, &upstream).await.bytes().await.unwrap()[..], b"{}");
        }
        // A stream read to its end gives the connection back too.
        let body: Vec<Bytes> = futures_util::StreamExt::collect::<Vec<_>>(post(&client, &upstream).await.into_stream())
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(body.concat(), b"{}");
        assert_eq!(&post(&client, &upstream).await.bytes().await.unwrap()[..], b"{}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_each_get_a_connection_and_later_ones_reuse_them() {
        let (upstream, accepted) = counting_server(false).await;
        let client = HttpClient::with_proxies(Duration::from_secs(2), None);
        let (a, b, c) = tokio::join!(post(&client, &upstream), post(&client, &upstream), post(&client, &upstream));
        for response in [a, b, c] {
            response.bytes().await.unwrap();
        }
        for _ in 0..6 {
            post(&client, &upstream).await.bytes().await.unwrap();
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_kept_connection_the_upstream_closed_is_replaced_without_failing_the_request() {
        let (upstream, accepted) = counting_server(true).await;
        let client = HttpClient::with_proxies(Duration::from_secs(2), None);
        for _ in 0..3 {
            post(&client, &upstream).await.bytes().await.unwrap();
            // Let the connection's task see the close, as it would during an idle spell.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_answer_dropped_before_its_body_was_read_does_not_hand_its_connection_on() {
        let (upstream, accepted) = counting_server(false).await;
        let client = HttpClient::with_proxies(Duration::from_secs(2), None);
        drop(post(&client, &upstream).await);
        assert_eq!(&post(&client, &upstream).await.bytes().await.unwrap()[..], b"{}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn the_host_header_names_a_port_only_when_it_is_not_the_default() {
        for url in ["https://api.test/v1", "https://api.test:443/v1", "http://127.0.0.1:9101/v1", "http://user:pw@mock.test:80/v1", "http://[::1]:8080/v1"] {
            let uri: Uri = url.parse().unwrap();
            assert_eq!(host_value(&uri).unwrap(), host_header(&uri), "{url}");
        }
        let host = |url: &str| host_header(&url.parse().unwrap());
        assert_eq!(host("https://bedrock-runtime.us-east-1.amazonaws.com/model/x/converse"), "bedrock-runtime.us-east-1.amazonaws.com");
        assert_eq!(host("https://bedrock.test:443/model"), "bedrock.test");
        assert_eq!(host("http://127.0.0.1:9101/model"), "127.0.0.1:9101");
        assert_eq!(host("http://mock.test:80/model"), "mock.test");
    }
}
