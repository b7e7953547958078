//! A real gateway for integration tests: the library's `app::start` on a
//! `127.0.0.1:0` socket, with its ledger in a fresh temporary directory.
//!
//! The config is ordinary TOML; `{LEDGER}` in it is replaced by the SQLite URL of
//! this gateway's own ledger file, so tests never share state:
//!
//! ```toml
//! [ledger]
//! url = "{LEDGER}"
//! [providers.mock]
//! kind = "openai-compatible"
//! base_url = "http://127.0.0.1:PORT/v1"
//! api_key = "sk-test"
//! [routes.chat]
//! targets = [{ provider = "mock", model = "gpt-4.1-mini" }]
//! ```
//!
//! [`mock_config`] writes exactly that for a [`MockUpstream`].

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use switchyard::app::{self, RunningGateway};
use switchyard::config::Config;
use tempfile::TempDir;

use super::mock_upstream::MockUpstream;
use super::JsonBody;

/// A running in-process gateway. Call [`TestGateway::shutdown`] to drain it and
/// flush its ledger; dropping it also stops serving, without the flush.
pub struct TestGateway {
    /// Where the gateway listens.
    pub addr: SocketAddr,
    /// `http://ADDR`, without a trailing slash.
    pub url: String,
    /// The ledger's SQLite file.
    pub ledger_path: PathBuf,
    /// The ledger URL substituted for `{LEDGER}`.
    pub ledger_url: String,
    /// Holds the ledger file; removed when the gateway is dropped.
    pub dir: TempDir,
    running: Option<RunningGateway>,
}

impl TestGateway {
    /// Starts a gateway from TOML; `${ENV}` references resolve to nothing (an error).
    /// Panics with every config problem listed if the config is invalid.
    pub async fn start(config_toml: &str) -> TestGateway {
        TestGateway::start_with_env(config_toml, &[]).await
    }

    /// Like [`TestGateway::start`], resolving `${NAME}` from `env` only.
    pub async fn start_with_env(config_toml: &str, env: &[(&str, &str)]) -> TestGateway {
        match TestGateway::try_start_with_env(config_toml, env).await {
            Ok(gateway) => gateway,
            Err(problem) => {
                panic!("test gateway did not start:\n{problem}\n--- config ---\n{config_toml}")
            }
        }
    }

    /// Starts a gateway, returning the config or start error as text instead of
    /// panicking (for tests of bad configs).
    pub async fn try_start_with_env(
        config_toml: &str,
        env: &[(&str, &str)],
    ) -> Result<TestGateway, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let ledger_path = dir.path().join("ledger.db");
        let ledger_url = format!("sqlite://{}", ledger_path.display());
        let text = config_toml.replace("{LEDGER}", &ledger_url);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let config = Config::from_toml(&text, &lookup).map_err(|errors| errors.to_string())?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
        let running = app::start(config, listener)
            .await
            .map_err(|e| e.to_string())?;
        let addr = running.addr;
        Ok(TestGateway {
            addr,
            url: format!("http://{addr}"),
            ledger_path,
            ledger_url,
            dir,
            running: Some(running),
        })
    }

    /// `http://ADDR/v1`, the base URL OpenAI clients are given.
    pub fn v1_url(&self) -> String {
        format!("{}/v1", self.url)
    }

    /// The running gateway, for calls this builder does not wrap.
    pub fn running(&self) -> &RunningGateway {
        self.running.as_ref().expect("gateway already shut down")
    }

    /// Waits until every ledger entry recorded so far is written.
    pub async fn flush_ledger(&self) {
        self.running().flush_ledger().await;
    }

    /// `POST /v1/chat/completions` with a JSON body and no client key.
    pub async fn post_chat(&self, body: &Value) -> reqwest::Response {
        client()
            .post(format!("{}/v1/chat/completions", self.url))
            .json_body(body)
            .send()
            .await
            .expect("send to gateway")
    }

    /// Graceful shutdown: stop accepting, drain in-flight requests, flush the ledger.
    /// The temporary directory (and ledger file) stays until `self` is dropped here.
    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// A client for talking to a test gateway: no proxies (an environment proxy must
/// never see loopback test traffic) and a timeout so a hung test fails.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("build reqwest client")
}

/// The smallest useful config: one `openai-compatible` provider `mock` pointing at
/// the mock upstream, and one route `chat` targeting its `gpt-4.1-mini`.
pub fn mock_config(upstream: &MockUpstream) -> String {
    format!(
        r#"
[ledger]
url = "{{LEDGER}}"

[providers.mock]
kind = "openai-compatible"
base_url = "{}/v1"
api_key = "sk-test"

[routes.chat]
targets = [{{ provider = "mock", model = "gpt-4.1-mini" }}]
"#,
        upstream.base_url()
    )
}
