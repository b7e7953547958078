//! An upstream behind TLS, as real providers and self-hosted servers are: its
//! certificate chains to a CA the provider's `ca_file` names (an internal CA), and the
//! connection speaks HTTP/2 when the server offers it over ALPN.
//!
//! The certificates are test fixtures (tests/fixtures/tls/README.md): a CA and a
//! server certificate for `localhost` and 127.0.0.1, signed by it.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use support::openai_wire::completion;
use support::TestGateway;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

/// What the HTTPS upstream saw: the HTTP version of each request, and how many TLS
/// connections it accepted.
#[derive(Default)]
struct Seen {
    versions: Vec<http::Version>,
    connections: usize,
}

/// An OpenAI-compatible upstream on `https://localhost:PORT/v1` with the fixture
/// certificate, offering HTTP/2 and HTTP/1.1 over ALPN.
async fn https_upstream() -> (String, Arc<Mutex<Seen>>) {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{FIXTURES}/server.pem")).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{FIXTURES}/server.key")).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server_seen = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, seen) = (acceptor.clone(), server_seen.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate ends the handshake here.
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                seen.lock().unwrap().connections += 1;
                let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
                    seen.lock().unwrap().versions.push(request.version());
                    let body = completion("m", "over tls", (3, 2)).to_string();
                    async move {
                        Ok::<_, Infallible>(
                            http::Response::builder().header("content-type", "application/json").body(Full::new(Bytes::from(body))).unwrap(),
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
    (format!("https://localhost:{port}/v1"), seen)
}

fn config(base_url: &str, ca_file: Option<&str>) -> String {
    let ca_file = ca_file.map(|file| format!("ca_file = \"{file}\"\n")).unwrap_or_default();
    format!(
        r#"
[ledger]
url = "{{LEDGER}}"

[providers.internal]
kind = "openai-compatible"
base_url = "{base_url}"
{ca_file}
[routes.chat]
targets = [{{ provider = "internal", model = "m" }}]
retries = 0
"#
    )
}

fn hello() -> Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test]
async fn an_upstream_signed_by_the_providers_own_ca_is_trusted_and_spoken_to_over_one_http2_connection() {
    let (base_url, seen) = https_upstream().await;
    let gateway = TestGateway::start(&config(&base_url, Some(&format!("{FIXTURES}/ca.pem")))).await;

    for _ in 0..3 {
        let response = gateway.post_chat(&hello()).await;
        assert_eq!(response.status(), 200);
        let answer = support::read_json(response).await;
        assert_eq!(answer["choices"][0]["message"]["content"], "over tls");
    }
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.versions, [http::Version::HTTP_2; 3], "ALPN chose HTTP/2");
        assert_eq!(seen.connections, 1, "the requests shared one connection");
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn without_its_ca_file_the_same_upstream_is_refused_as_untrusted_and_nothing_is_sent() {
    let (base_url, seen) = https_upstream().await;
    let gateway = TestGateway::start(&config(&base_url, None)).await;

    let response = gateway.post_chat(&hello()).await;
    assert_eq!(response.status(), 502);
    let body = support::read_json(response).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("connect_error") && message.to_lowercase().contains("certificate"), "{message}");
    assert!(seen.lock().unwrap().versions.is_empty(), "no request reached the upstream");
    gateway.shutdown().await;
}
