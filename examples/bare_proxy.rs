//! The least a Rust proxy on Switchyard's HTTP stack can do per request: a reference
//! point for `scripts/bench.sh`, not part of the gateway.
//!
//! Every request is forwarded, method, path, headers and body unchanged, to one fixed
//! upstream over pooled keep-alive connections (hyper's server, hyper-util's client,
//! tokio: the crates under axum and reqwest), and the answer is returned as it came. No
//! JSON, no routing, no ledger, no metrics. Whatever share of nginx's throughput this
//! reaches is about the ceiling for a gateway built on these crates on the same machine
//! (the gateway's own upstream pool, `src/providers/pool.rs`, costs less per request
//! than hyper-util's pooled client used here).
//!
//! ```text
//! cargo run --release --example bare_proxy -- --listen 127.0.0.1:9103 --upstream 127.0.0.1:9101
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::uri::{Authority, Scheme, Uri};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Upstream = Client<HttpConnector, Full<Bytes>>;

fn parse_args() -> Result<(SocketAddr, Authority), String> {
    let mut listen: SocketAddr = "127.0.0.1:9103".parse().map_err(|e| format!("{e}"))?;
    let mut upstream: Authority = Authority::from_static("127.0.0.1:9101");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => listen = value("--listen")?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--upstream" => upstream = value("--upstream")?.parse().map_err(|e| format!("--upstream: {e}"))?,
            "-h" | "--help" => {
                println!("usage: bare_proxy [--listen ADDR] [--upstream HOST:PORT]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((listen, upstream))
}

async fn forward(client: Upstream, upstream: Authority, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let bad_gateway = |message: String| {
        let mut response = Response::new(Full::new(Bytes::from(message)));
        *response.status_mut() = StatusCode::BAD_GATEWAY;
        Ok(response)
    };
    let (mut parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return bad_gateway(format!("reading the request: {e}")),
    };
    let mut uri = parts.uri.into_parts();
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Some(upstream);
    parts.uri = match Uri::from_parts(uri) {
        Ok(uri) => uri,
        Err(e) => return bad_gateway(format!("upstream URI: {e}")),
    };
    parts.headers.remove(http::header::HOST);
    let answer = match client.request(Request::from_parts(parts, Full::new(body))).await {
        Ok(answer) => answer,
        Err(e) => return bad_gateway(format!("upstream: {e}")),
    };
    let (parts, body) = answer.into_parts();
    match body.collect().await {
        Ok(collected) => Ok(Response::from_parts(parts, Full::new(collected.to_bytes()))),
        Err(e) => bad_gateway(format!("reading the answer: {e}")),
    }
}

fn main() {
    let (listen, upstream) = parse_args().unwrap_or_else(|e| {
        eprintln!("bare_proxy: {e}");
        std::process::exit(2);
    });
    // One worker per CPU it may use, single-threaded on one CPU (as when pinned).
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut builder = if cpus == 1 { tokio::runtime::Builder::new_current_thread() } else { tokio::runtime::Builder::new_multi_thread() };
    let runtime = builder.enable_all().build().expect("tokio runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap_or_else(|e| {
            eprintln!("bare_proxy: cannot listen on {listen}: {e}");
            std::process::exit(1);
        });
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Upstream = Client::builder(TokioExecutor::new()).build(connector);
        eprintln!("bare_proxy: listening on {listen}, forwarding to {upstream}");
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            let (client, upstream) = (client.clone(), upstream.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request| forward(client.clone(), upstream.clone(), request));
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
}
