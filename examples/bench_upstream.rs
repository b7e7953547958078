//! A minimal, fast mock OpenAI upstream for benchmarks (`scripts/bench.sh`).
//!
//! Answers `POST /v1/chat/completions` at once with one fixed, realistic
//! `chat.completion` body (after reading the request body in full, as a real server
//! would). `GET /healthz` answers `ok`, for readiness checks. Nothing else is served.
//!
//! ```text
//! cargo run --release --example bench_upstream -- --listen 127.0.0.1:9101 [--threads N]
//! ```
//!
//! Multi-threaded tokio runtime: one worker per CPU the process may run on (so
//! `taskset -c 0 …` gives one worker), or `--threads N`. TCP_NODELAY is set on every
//! accepted connection. This is not a test double for behaviour (see `tests/support`
//! for scripted mocks); it exists only to be as cheap as possible, so that what a
//! benchmark measures is the proxy in front of it.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;

/// A typical small non-streaming answer, as OpenAI sends it (708 bytes; also read by
/// `examples/summary_cost.rs` and the tests of `src/dialects/openai_chat/summary.rs`).
const COMPLETION: &str = include_str!("bench_answer.json");

struct Args {
    listen: SocketAddr,
    threads: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut listen: SocketAddr = "127.0.0.1:9101".parse().map_err(|e| format!("{e}"))?;
    let mut threads = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => listen = value("--listen")?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--port" => {
                let port: u16 = value("--port")?.parse().map_err(|e| format!("--port: {e}"))?;
                listen = SocketAddr::from(([127, 0, 0, 1], port));
            }
            "--threads" => threads = Some(value("--threads")?.parse().map_err(|e| format!("--threads: {e}"))?),
            "-h" | "--help" => {
                println!("usage: bench_upstream [--listen ADDR | --port PORT] [--threads N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args { listen, threads })
}

async fn chat_completions(body: Bytes) -> Response {
    // The body is read in full (the extractor does that); an empty one is a client bug.
    if body.is_empty() {
        return (StatusCode::BAD_REQUEST, "empty body").into_response();
    }
    let mut response = Response::new(axum::body::Body::from(COMPLETION));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_upstream: {e}");
            std::process::exit(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder.build().expect("tokio runtime");
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bench_upstream: cannot listen on {}: {e}", args.listen);
                std::process::exit(1);
            }
        };
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = Router::new().route("/v1/chat/completions", post(chat_completions)).route("/healthz", get(|| async { "ok" }));
        eprintln!("bench_upstream: listening on {}", args.listen);
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("bench_upstream: {e}");
            std::process::exit(1);
        }
    });
}
