//! Operating the gateway: configuration reloads that never drop in-flight requests,
//! the admin API, and a SIGTERM that drains streams and flushes the ledger.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::openai_wire::{completion, text_chunks};
use support::{client, read_json, MockUpstream, Reply, TestGateway};
use switchyard::config::Config;

fn config(upstream: &MockUpstream, route: &str, extra: &str) -> String {
    format!(
        r#"
[ledger]
url = "{{LEDGER}}"

[admin]
token = "admin-token-0123456789"

[providers.up]
kind = "openai-compatible"
base_url = "{}/v1"

[routes.{route}]
targets = [{{ provider = "up", model = "m" }}]
{extra}
"#,
        upstream.base_url()
    )
}

/// A temporary directory with a SQLite ledger and a config file of `text`, its
/// `{LEDGER}` replaced by the ledger's URL.
struct ConfigDir {
    dir: tempfile::TempDir,
    ledger: String,
    path: std::path::PathBuf,
}

fn config_dir(text: &str) -> ConfigDir {
    let dir = tempfile::tempdir().unwrap();
    let ledger = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let path = dir.path().join("switchyard.toml");
    std::fs::write(&path, text.replace("{LEDGER}", &ledger)).unwrap();
    ConfigDir { dir, ledger, path }
}

fn parse(text: &str, ledger_url: &str) -> Config {
    Config::from_toml(&text.replace("{LEDGER}", ledger_url), &|_| None).unwrap()
}

async fn route_ids(url: &str) -> Vec<String> {
    let body = read_json(client().get(format!("{url}/v1/models")).send().await.unwrap()).await;
    body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_reload_swaps_routes_without_dropping_an_in_flight_stream() {
    let old = MockUpstream::start().await;
    let new = MockUpstream::start().await;
    old.set_default(Reply::sse(text_chunks("old-model", &["a", "b", "c", "d"], None)).with_gap(Duration::from_millis(150)));
    new.set_default(Reply::json(200, completion("new-model", "from new", (1, 1))));
    let gateway = TestGateway::start(&config(&old, "chat", "")).await;

    let mut streaming = gateway.post_chat(&json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "x"}]})).await;
    let first = streaming.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());

    gateway.running().reload(parse(&config(&new, "chat", ""), &gateway.ledger_url)).unwrap();

    let mut rest = String::from_utf8_lossy(&first).into_owned();
    while let Some(chunk) = streaming.chunk().await.unwrap() {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(rest.contains(r#""content":"d""#) && rest.ends_with("data: [DONE]\n\n"), "the in-flight stream finished on the old config: {rest}");
    let after = read_json(gateway.post_chat(&json!({"model": "chat", "messages": [{"role": "user", "content": "x"}]})).await).await;
    assert_eq!(after["model"], "new-model");
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_edited_config_file_is_picked_up_and_a_broken_one_is_refused() {
    let upstream = MockUpstream::start().await;
    upstream.set_default(Reply::json(200, completion("m", "ok", (1, 1))));
    let ConfigDir { dir: _dir, ledger, path } = config_dir(&config(&upstream, "first", ""));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = switchyard::app::start_serving(Config::load(&path).unwrap(), listener, 1, Some(path.clone())).await.unwrap();
    let url = format!("http://{}", running.addr);
    assert_eq!(route_ids(&url).await, ["first"]);

    // The watcher polls the file's modification time every 2 s.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&path, config(&upstream, "second", "").replace("{LEDGER}", &ledger)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while route_ids(&url).await != ["second"] {
        assert!(Instant::now() < deadline, "the edited file was not picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    std::fs::write(&path, "[routes.broken]\ntargets = [{ provider = \"nope\", model = \"m\" }]\n").unwrap();
    let response = client().post(format!("{url}/admin/api/reload")).bearer_auth("admin-token-0123456789").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body = read_json(response).await;
    assert!(body["error"]["message"].as_str().unwrap().contains(r#"routes.broken.targets[0].provider: no provider named "nope""#), "{body}");
    assert_eq!(route_ids(&url).await, ["second"], "a broken file leaves the running config alone");
    running.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_needs_its_token_and_shows_an_open_circuit() {
    let upstream = MockUpstream::start().await;
    upstream.set_default(Reply::openai_error(500, "server_error", "down"));
    let extra = "retries = 0";
    let text = config(&upstream, "chat", extra).replace("kind = \"openai-compatible\"", "kind = \"openai-compatible\"\nbreaker = { consecutive_failures = 2, open_for = \"1m\" }");
    let gateway = TestGateway::start(&text).await;
    for _ in 0..2 {
        gateway.post_chat(&json!({"model": "chat", "messages": [{"role": "user", "content": "x"}]})).await;
    }
    let url = format!("{}/admin/api/health", gateway.url);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 401);
    assert_eq!(client().get(&url).bearer_auth("wrong-token-0000000000").send().await.unwrap().status(), 401);
    let health: Value = read_json(client().get(&url).bearer_auth("admin-token-0123456789").send().await.unwrap()).await;
    assert_eq!(health["targets"][0]["target"], "up/m");
    assert_eq!(health["targets"][0]["circuit"], "open");

    let response = gateway.post_chat(&json!({"model": "chat", "messages": [{"role": "user", "content": "x"}]})).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(read_json(response).await["error"]["code"], "no_target_available");
    assert_eq!(upstream.request_count(), 2, "an open circuit sends nothing upstream");
    gateway.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_does_not_exist_without_a_token() {
    let upstream = MockUpstream::start().await;
    let gateway = TestGateway::start(&config(&upstream, "chat", "").replace("[admin]\ntoken = \"admin-token-0123456789\"", "")).await;
    let response = client().get(format!("{}/admin/api/health", gateway.url)).bearer_auth("anything").send().await.unwrap();
    assert_eq!(response.status(), 404);
}

/// `switchyard serve --config PATH` as a process of its own on a free port, with
/// `RUST_LOG=warn` and whatever `customize` adds; started once it answers `/healthz`.
/// Killed when dropped before [`ServedProcess::exits_cleanly`], so a failing test leaves
/// no gateway behind.
#[cfg(unix)]
struct ServedProcess {
    child: Option<std::process::Child>,
    url: String,
}

#[cfg(unix)]
impl Drop for ServedProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(unix)]
impl ServedProcess {
    async fn start(config: &std::path::Path, customize: impl FnOnce(&mut std::process::Command)) -> ServedProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
        command.args(["serve", "--config"]).arg(config).args(["--listen", &format!("127.0.0.1:{port}")]).env("RUST_LOG", "warn");
        customize(&mut command);
        let child = command.spawn().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while client().get(format!("{url}/healthz")).send().await.is_err() {
            assert!(Instant::now() < deadline, "gateway did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ServedProcess { child: Some(child), url }
    }

    fn id(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM, as an orchestrator stopping the gateway does.
    fn terminate(&self) {
        let status = std::process::Command::new("kill").args(["-TERM", &self.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    async fn exits_cleanly(mut self) {
        let mut child = self.child.take().expect("running");
        let exit = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
        assert!(exit.success(), "{exit:?}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_drains_an_in_flight_stream_and_flushes_the_ledger() {
    sigterm_drains_streams(None, 1).await;
}

#[cfg(unix)]
#[tokio::test]
async fn with_four_serving_threads_sigterm_drains_the_streams_of_every_thread_and_bills_each_once() {
    // Sixteen connections, shared out over the four threads.
    sigterm_drains_streams(Some(4), 16).await;
}

/// Open client connections per serving thread, from `/metrics` (scraped on a connection
/// of its own, which counts too).
#[cfg(unix)]
async fn connections_per_thread(url: &str) -> Vec<u64> {
    let text = reqwest::Client::new().get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
    let mut counts: Vec<(String, u64)> = text
        .lines()
        .filter_map(|line| line.strip_prefix("switchyard_client_connections{thread=\""))
        .map(|rest| {
            let (thread, value) = rest.split_once("\"} ").unwrap();
            (thread.to_owned(), value.parse::<f64>().unwrap() as u64)
        })
        .collect();
    counts.sort();
    counts.into_iter().map(|(_, open)| open).collect()
}

#[cfg(unix)]
#[tokio::test]
async fn with_four_serving_threads_new_connections_are_shared_out_evenly_and_each_is_served() {
    let upstream = MockUpstream::start().await;
    upstream.set_default(Reply::json(200, completion("m", "hi", (1, 1))));
    let ConfigDir { dir: _dir, path, .. } = config_dir(&("[server]\nthreads = 4\n".to_owned() + &config(&upstream, "chat", "")));
    let gateway = ServedProcess::start(&path, |_| {}).await;

    // Eight clients of one connection each, kept open: every one is answered, whichever
    // thread it was given to.
    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "x"}]});
    let mut clients = Vec::new();
    for _ in 0..8 {
        let own_connection = reqwest::Client::new();
        let response = own_connection.post(format!("{}/v1/chat/completions", gateway.url)).header("content-type", "application/json").body(body.to_string()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(read_json(response).await["choices"][0]["message"]["content"], "hi");
        clients.push(own_connection);
    }
    let open = connections_per_thread(&gateway.url).await;
    assert_eq!(open.len(), 4, "one gauge per serving thread: {open:?}");
    // The eight, the scrape's own and the start-up probe's, if its client still keeps it.
    assert!(open.iter().sum::<u64>() >= 9, "{open:?}");
    assert!(open.iter().max().unwrap() - open.iter().min().unwrap() <= 1, "shared out evenly: {open:?}");

    // Closed connections are counted out: left are the scrape's own, perhaps the one
    // before it (still closing) and the start-up probe's.
    drop(clients);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let open = connections_per_thread(&gateway.url).await;
        if open.iter().sum::<u64>() <= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "closed connections still counted: {open:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.terminate();
    gateway.exits_cleanly().await;
}

/// Starts `switchyard serve` (with `threads` serving threads, or the default), opens
/// `streams` streams on connections of their own, sends SIGTERM once each has had its
/// first event, and checks that every one still ends with `[DONE]`, that the process
/// exits cleanly, and that the ledger bills each stream once.
#[cfg(unix)]
async fn sigterm_drains_streams(threads: Option<usize>, streams: usize) {
    let upstream = MockUpstream::start().await;
    upstream.set_default(Reply::sse(text_chunks("m", &["one ", "two ", "three"], Some((3, 3)))).with_gap(Duration::from_millis(300)));
    let server = threads.map_or(String::new(), |n| format!("[server]\nthreads = {n}\n"));
    let ConfigDir { dir: _dir, ledger, path } = config_dir(&(server + &config(&upstream, "chat", "")));
    let gateway = ServedProcess::start(&path, |_| {}).await;
    #[cfg(target_os = "linux")]
    if let Some(threads) = threads {
        let named: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", gateway.id()))
            .unwrap()
            .map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap().trim().to_owned())
            .filter(|name| name.starts_with("switchyard-serv"))
            .collect();
        assert_eq!(named.len(), threads - 1, "the main thread and the others serve: {named:?}");
    }

    let body = json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "x"}]});
    let opened = futures_util::future::join_all((0..streams).map(|_| async {
        let own_connection = reqwest::Client::new();
        let mut stream = own_connection.post(format!("{}/v1/chat/completions", gateway.url)).header("content-type", "application/json").body(body.to_string()).send().await.unwrap();
        let first = String::from_utf8_lossy(&stream.chunk().await.unwrap().unwrap()).into_owned();
        (stream, first)
    }))
    .await;
    gateway.terminate();
    for (mut stream, mut text) in opened {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(text.contains(r#""content":"three""#) && text.ends_with("data: [DONE]\n\n"), "{text}");
    }
    gateway.exits_cleanly().await;

    let store = switchyard::ledger::LedgerStore::connect(&ledger).await.unwrap();
    let rows = store.requests_since(chrono::DateTime::UNIX_EPOCH).await.unwrap();
    assert_eq!(rows.len(), streams);
    assert!(rows.iter().all(|row| row.outcome == switchyard::ledger::Outcome::Success && row.usage.output_tokens == 3));
}

#[tokio::test]
async fn a_stream_still_running_when_the_drain_time_is_up_ends_with_an_error_and_is_recorded() {
    let upstream = MockUpstream::start().await;
    let pieces: Vec<String> = (0..20).map(|i| format!("w{i} ")).collect();
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    upstream.set_default(Reply::sse(text_chunks("m", &pieces, None)).with_gap(Duration::from_millis(300)));
    let mut gateway = TestGateway::start(&config(&upstream, "chat", "").replace("[admin]", "[server]\ndrain_timeout = \"300ms\"\n\n[admin]")).await;

    let mut stream = gateway.post_chat(&json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "x"}]})).await;
    let mut text = String::from_utf8_lossy(&stream.chunk().await.unwrap().unwrap()).into_owned();
    let ledger_url = gateway.ledger_url.clone();
    let _dir = std::mem::replace(&mut gateway.dir, tempfile::tempdir().unwrap());
    let shutdown = tokio::spawn(gateway.shutdown());
    while let Ok(Some(chunk)) = stream.chunk().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    shutdown.await.unwrap();
    assert!(text.contains("stream_interrupted") && text.contains("shut down"), "{text}");
    assert!(!text.contains("[DONE]"));

    let store = switchyard::ledger::LedgerStore::connect(&ledger_url).await.unwrap();
    let rows = store.requests_since(chrono::DateTime::UNIX_EPOCH).await.unwrap();
    assert_eq!(rows.len(), 1, "the cut stream is in the ledger");
    assert_eq!(rows[0].outcome, switchyard::ledger::Outcome::StreamError);
}

#[cfg(unix)]
#[tokio::test]
async fn a_failed_requests_log_line_names_the_ledger_entry_its_reply_names_and_never_the_key() {
    let upstream = MockUpstream::start().await;
    upstream.set_default(Reply::openai_error(500, "server_error", "down"));
    let ConfigDir { dir, ledger, path } = config_dir(&config(&upstream, "chat", "retries = 0").replace("base_url =", "api_key = \"${UP_KEY}\"\nbase_url ="));
    // The gateway logs to standard output.
    let log_path = dir.path().join("stdout.log");
    let gateway = ServedProcess::start(&path, |command| {
        command.env("UP_KEY", "sk-upstream-secret-4242").stdout(std::fs::File::create(&log_path).unwrap());
    })
    .await;

    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "x"}]});
    let response = client().post(format!("{}/v1/chat/completions", gateway.url)).header("content-type", "application/json").body(body.to_string()).send().await.unwrap();
    assert_eq!(response.status(), 502);
    let id = response.headers()["x-switchyard-request-id"].to_str().unwrap().to_owned();
    gateway.terminate();
    gateway.exits_cleanly().await;

    let log = std::fs::read_to_string(&log_path).unwrap();
    let line = log.lines().find(|l| l.contains("request failed")).unwrap_or_else(|| panic!("no 'request failed' line in:\n{log}"));
    assert!(line.contains(&format!("request_id=\"{id}\"")), "the log line names {id}: {line}");
    assert!(!log.contains('\u{1b}'), "a log that is not a terminal gets no colour codes: {line}");
    assert!(!log.contains("sk-upstream-secret-4242"), "{log}");
    let store = switchyard::ledger::LedgerStore::connect(&ledger).await.unwrap();
    let rows = store.requests_since(chrono::DateTime::UNIX_EPOCH).await.unwrap();
    assert_eq!(rows.iter().map(|r| &*r.id).collect::<Vec<_>>(), [id.as_str()]);
}
