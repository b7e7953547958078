//! A bounded load generator for `scripts/load-test.sh`: concurrent streaming chat
//! requests against a running gateway, every stream read to its end, and every
//! client-visible error counted. A second mode checks the gateway's ledger afterwards.
//!
//! ```text
//! # N concurrent streams per wave, W waves; samples the gateway's memory by pid.
//! load_test --url http://127.0.0.1:19200 --route load --requests 1000 --waves 5 \
//!           --gateway-pid 1234 --json load.json
//!
//! # After the gateway has exited: every request in the ledger exactly once?
//! load_test --check-ledger sqlite:///tmp/x/ledger.db --expect 5000 --client-json load.json --json ledger.json
//! ```
//!
//! A client-visible error is any of: a transport error (connect, reset, timeout), a
//! status other than 200, a stream carrying an `error` chunk, a stream without
//! `data: [DONE]`, a stream without any content, or a chunk that is not JSON. Each
//! request has a hard timeout (`--timeout`), so a run always ends.
//!
//! The ledger check uses the library's own [`LedgerStore`]: rows must equal the
//! requests sent, ids must be unique, the per-target and per-attempt-count figures the
//! client read from response headers must match the ledger's, and every request's
//! attempts must add up (failed attempts carry an `error_kind`, the answering attempt
//! is the last one).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use serde_json::{json, Value};
use switchyard::ledger::LedgerStore;

#[derive(Parser, Debug)]
#[command(name = "load_test", about = "Concurrent streaming load against a Switchyard gateway, and a ledger check.")]
struct Args {
    /// Gateway base URL (127.0.0.1 only in the scripts).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Route to put in `model`.
    #[arg(long, default_value = "load")]
    route: String,
    /// Streams per wave, all started at once.
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// Waves, one after the other (memory is read after each).
    #[arg(long, default_value_t = 1)]
    waves: usize,
    /// Hard limit on one request, seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Gateway process id: its VmRSS/VmHWM are sampled from /proc while the load runs.
    #[arg(long)]
    gateway_pid: Option<u32>,
    /// Where to write the results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A name for this run in the output.
    #[arg(long, default_value = "load")]
    label: String,

    /// Instead of load: check the ledger at this URL (sqlite://PATH).
    #[arg(long)]
    check_ledger: Option<String>,
    /// Ledger check: requests sent.
    #[arg(long)]
    expect: Option<u64>,
    /// Ledger check: the load run's JSON, whose per-target and per-attempt-count
    /// figures (from response headers) must match the ledger's.
    #[arg(long)]
    client_json: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = runtime.block_on(async {
        match &args.check_ledger {
            Some(url) => check_ledger(&args, url).await,
            None => load(&args).await,
        }
    });
    std::process::exit(code);
}

// ---------------------------------------------------------------------------- load

/// What one request saw.
#[derive(Debug, Default)]
struct Outcome {
    status: Option<u16>,
    /// Why the client would call this request failed; `None` when it is fine.
    error: Option<String>,
    /// The error's class, for counting.
    class: Option<&'static str>,
    ttfb: Option<Duration>,
    total: Duration,
    id: Option<String>,
    target: Option<String>,
    attempts: Option<u32>,
    content_chunks: u64,
    completion_tokens: Option<u64>,
}

impl Outcome {
    fn fail(&mut self, class: &'static str, message: impl Into<String>) {
        if self.error.is_none() {
            self.class = Some(class);
            self.error = Some(message.into());
        }
    }
}

async fn one_stream(client: &reqwest::Client, url: &str, route: &str, n: usize, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::default();
    let body = json!({
        "model": route,
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": format!("load test request {n}: say something")}],
    });
    let run = async {
        let request = client
            .post(format!("{url}/v1/chat/completions"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return outcome.fail("transport", format!("send: {e}")),
        };
        let status = response.status().as_u16();
        outcome.status = Some(status);
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        outcome.target = header("x-switchyard-target");
        outcome.attempts = header("x-switchyard-attempts").and_then(|a| a.parse().ok());
        if status != 200 {
            let text = response.text().await.unwrap_or_default();
            return outcome.fail("status", format!("status {status}: {}", text.chars().take(300).collect::<String>()));
        }
        let mut body = response.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut done = false;
        while let Some(chunk) = body.next().await {
            let chunk: bytes::Bytes = match chunk {
                Ok(c) => c,
                Err(e) => return outcome.fail("transport", format!("body: {e}")),
            };
            if outcome.ttfb.is_none() {
                outcome.ttfb = Some(started.elapsed());
            }
            buf.extend_from_slice(&chunk);
            // Events end with a blank line; the gateway writes `\n\n`.
            while let Some(end) = find(&buf, b"\n\n") {
                let event: Vec<u8> = buf.drain(..end + 2).collect();
                let event = String::from_utf8_lossy(&event);
                for line in event.lines() {
                    let Some(data) = line.strip_prefix("data:") else { continue };
                    let data = data.trim_start();
                    if done {
                        outcome.fail("protocol", "data after [DONE]");
                    }
                    if data == "[DONE]" {
                        done = true;
                        continue;
                    }
                    let value: Value = match serde_json::from_str(data) {
                        Ok(v) => v,
                        Err(e) => {
                            outcome.fail("protocol", format!("a chunk is not JSON ({e}): {}", data.chars().take(200).collect::<String>()));
                            continue;
                        }
                    };
                    if let Some(error) = value.get("error") {
                        outcome.fail("error_chunk", format!("error chunk: {error}"));
                        continue;
                    }
                    if outcome.id.is_none() {
                        outcome.id = value.get("id").and_then(Value::as_str).map(str::to_owned);
                    }
                    let content = value.pointer("/choices/0/delta/content").and_then(Value::as_str).is_some_and(|s| !s.is_empty());
                    if content {
                        outcome.content_chunks += 1;
                    }
                    if let Some(tokens) = value.pointer("/usage/completion_tokens").and_then(Value::as_u64) {
                        outcome.completion_tokens = Some(tokens);
                    }
                }
            }
        }
        if !buf.iter().all(|b| b.is_ascii_whitespace()) {
            outcome.fail("protocol", format!("the body ended inside an event: {:?}", String::from_utf8_lossy(&buf)));
        }
        if !done {
            outcome.fail("missing_done", "the stream ended without data: [DONE]");
        } else if outcome.content_chunks == 0 {
            outcome.fail("no_content", "a stream without any content");
        }
    };
    if tokio::time::timeout(timeout, run).await.is_err() {
        outcome.fail("timeout", format!("no complete answer within {timeout:?}"));
    }
    outcome.total = started.elapsed();
    outcome
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// VmRSS and VmHWM of a process, in KiB.
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn latency_json(mut samples: Vec<Duration>) -> Value {
    samples.sort();
    json!({
        "p50_ms": round(percentile(&samples, 50.0)),
        "p90_ms": round(percentile(&samples, 90.0)),
        "p99_ms": round(percentile(&samples, 99.0)),
        "max_ms": round(samples.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)),
    })
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

async fn load(args: &Args) -> i32 {
    let client = match reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.requests.max(1))
        .connect_timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("load_test: cannot build the HTTP client: {e}");
            return 2;
        }
    };
    let url = args.url.trim_end_matches('/').to_owned();
    let timeout = Duration::from_secs(args.timeout);

    // Memory sampler: the peak VmRSS seen, read every 50 ms while the load runs.
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler_stop = tokio_util::sync::CancellationToken::new();
    let baseline = args.gateway_pid.and_then(memory_kib);
    if let Some(pid) = args.gateway_pid {
        let peak = peak_rss.clone();
        let stop = sampler_stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        if let Some((rss, _)) = memory_kib(pid) {
                            peak.fetch_max(rss, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
    }

    let mut all: Vec<Outcome> = Vec::with_capacity(args.requests * args.waves);
    let mut waves = Vec::new();
    let run_started = Instant::now();
    for wave in 0..args.waves {
        peak_rss.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(args.requests);
        for i in 0..args.requests {
            let client = client.clone();
            let url = url.clone();
            let route = args.route.clone();
            let n = wave * args.requests + i;
            tasks.push(tokio::spawn(async move { one_stream(&client, &url, &route, n, timeout).await }));
        }
        let mut outcomes = Vec::with_capacity(args.requests);
        for task in tasks {
            match task.await {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    let mut o = Outcome::default();
                    o.fail("panic", format!("load task failed: {e}"));
                    outcomes.push(o);
                }
            }
        }
        let elapsed = started.elapsed();
        let memory = args.gateway_pid.and_then(memory_kib);
        let errors = outcomes.iter().filter(|o| o.error.is_some()).count();
        let wave_json = json!({
            "wave": wave + 1,
            "requests": outcomes.len(),
            "client_errors": errors,
            "seconds": round(elapsed.as_secs_f64() * 10.0) / 10.0,
            "requests_per_second": round(outcomes.len() as f64 / elapsed.as_secs_f64()),
            "ttfb": latency_json(outcomes.iter().filter_map(|o| o.ttfb).collect()),
            "total": latency_json(outcomes.iter().map(|o| o.total).collect()),
            "gateway_peak_rss_kib": memory.map(|_| peak_rss.load(Ordering::Relaxed)),
            "gateway_rss_kib_after": memory.map(|m| m.0),
            "gateway_hwm_kib_after": memory.map(|m| m.1),
        });
        eprintln!(
            "load_test[{}]: wave {}/{}: {} streams in {:.2}s ({:.0}/s), {} client errors, ttfb p50 {} ms p99 {} ms, total p50 {} ms p99 {} ms, gateway rss {} KiB (peak {} KiB, hwm {} KiB)",
            args.label,
            wave + 1,
            args.waves,
            outcomes.len(),
            elapsed.as_secs_f64(),
            outcomes.len() as f64 / elapsed.as_secs_f64(),
            errors,
            wave_json["ttfb"]["p50_ms"],
            wave_json["ttfb"]["p99_ms"],
            wave_json["total"]["p50_ms"],
            wave_json["total"]["p99_ms"],
            memory.map(|m| m.0.to_string()).unwrap_or("-".into()),
            peak_rss.load(Ordering::Relaxed),
            memory.map(|m| m.1.to_string()).unwrap_or("-".into()),
        );
        waves.push(wave_json);
        all.extend(outcomes);
    }
    sampler_stop.cancel();
    let wall = run_started.elapsed();
    // Memory once the load is over and the gateway has had a moment to settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = args.gateway_pid.and_then(memory_kib);

    let mut classes: BTreeMap<&str, u64> = BTreeMap::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut targets: BTreeMap<String, u64> = BTreeMap::new();
    let mut attempts: BTreeMap<String, u64> = BTreeMap::new();
    let mut examples: Vec<String> = Vec::new();
    for o in &all {
        *statuses.entry(o.status.map(|s| s.to_string()).unwrap_or("none".into())).or_default() += 1;
        if let Some(t) = &o.target {
            *targets.entry(t.clone()).or_default() += 1;
        }
        if let Some(a) = o.attempts {
            *attempts.entry(a.to_string()).or_default() += 1;
        }
        if let (Some(class), Some(error)) = (o.class, &o.error) {
            *classes.entry(class).or_default() += 1;
            if examples.len() < 10 {
                examples.push(error.clone());
            }
        }
    }
    let errors: u64 = classes.values().sum();
    let content_chunks: u64 = all.iter().map(|o| o.content_chunks).sum();
    let tokens: u64 = all.iter().filter_map(|o| o.completion_tokens).sum();
    let ids: Vec<&str> = all.iter().filter_map(|o| o.id.as_deref()).collect();
    let distinct_ids = ids.iter().collect::<HashSet<_>>().len();
    let result = json!({
        "label": args.label,
        "route": args.route,
        "requests_sent": all.len(),
        "concurrency": args.requests,
        "waves": waves,
        "client_errors": errors,
        "client_errors_by_class": classes,
        "error_examples": examples,
        "statuses": statuses,
        "answered_by_target": targets,
        "attempts_header": attempts,
        "stream_ids": ids.len(),
        "distinct_stream_ids": distinct_ids,
        "content_chunks": content_chunks,
        "completion_tokens": tokens,
        "wall_seconds": round(wall.as_secs_f64()),
        "requests_per_second": round(all.len() as f64 / wall.as_secs_f64()),
        "ttfb": latency_json(all.iter().filter_map(|o| o.ttfb).collect()),
        "total": latency_json(all.iter().map(|o| o.total).collect()),
        "gateway_memory_kib": {
            "before": baseline.map(|m| m.0),
            "settled_after": settled.map(|m| m.0),
            "hwm": settled.map(|m| m.1),
        },
    });
    println!("{}", serde_json::to_string_pretty(&result).unwrap_or_default());
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(path, serde_json::to_vec_pretty(&result).unwrap_or_default()) {
            eprintln!("load_test: cannot write {}: {e}", path.display());
            return 2;
        }
    }
    if errors > 0 || distinct_ids != ids.len() {
        1
    } else {
        0
    }
}

// ---------------------------------------------------------------------------- ledger

async fn check_ledger(args: &Args, url: &str) -> i32 {
    let store = match LedgerStore::connect(url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("load_test: cannot open the ledger {url}: {e}");
            return 2;
        }
    };
    let epoch = chrono::DateTime::from_timestamp(0, 0).unwrap_or_default();
    let requests = match store.requests_since(epoch).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load_test: cannot read the ledger: {e}");
            return 2;
        }
    };
    let count = store.count_requests().await.unwrap_or(0);
    let mut problems: Vec<String> = Vec::new();
    let mut seen: HashSet<std::sync::Arc<str>> = HashSet::new();
    let mut duplicates = 0u64;
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut answered: BTreeMap<String, u64> = BTreeMap::new();
    let mut failover_reasons: BTreeMap<String, u64> = BTreeMap::new();
    let mut attempt_counts: BTreeMap<u32, u64> = BTreeMap::new();
    let mut attempts_by_target: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut error_kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut attempt_rows = 0u64;
    let mut failed_over = 0u64;
    let mut output_tokens = 0u64;
    for request in &requests {
        if !seen.insert(request.id.clone()) {
            duplicates += 1;
        }
        *outcomes.entry(request.outcome.as_str().to_owned()).or_default() += 1;
        *answered.entry(request.target.as_deref().unwrap_or("(none)").to_owned()).or_default() += 1;
        if let Some(reason) = &request.failover_reason {
            *failover_reasons.entry(reason.clone()).or_default() += 1;
        }
        *attempt_counts.entry(request.attempt_count).or_default() += 1;
        output_tokens += request.usage.output_tokens;
        let attempts = match store.attempts_for(&request.id).await {
            Ok(a) => a,
            Err(e) => {
                problems.push(format!("{}: cannot read attempts: {e}", request.id));
                continue;
            }
        };
        attempt_rows += attempts.len() as u64;
        if attempts.len() as u32 != request.attempt_count {
            problems.push(format!("{}: attempt_count {} but {} attempt rows", request.id, request.attempt_count, attempts.len()));
        }
        if attempts.iter().enumerate().any(|(i, a)| a.index as usize != i) {
            problems.push(format!("{}: attempt indexes are not 0..n", request.id));
        }
        let mut targets_tried = HashSet::new();
        for (i, attempt) in attempts.iter().enumerate() {
            targets_tried.insert(attempt.target.clone());
            let outcome = attempt.outcome.as_str();
            *attempts_by_target.entry(attempt.target.to_string()).or_default().entry(outcome.to_owned()).or_default() += 1;
            if let Some(kind) = &attempt.error_kind {
                *error_kinds.entry(kind.clone()).or_default() += 1;
            }
            let last = i + 1 == attempts.len();
            if outcome == "failed" && attempt.error_kind.is_none() {
                problems.push(format!("{}: attempt {i} failed without an error_kind", request.id));
            }
            if request.outcome.as_str() == "success" && last && outcome != "success" {
                problems.push(format!("{}: a successful request whose last attempt is {outcome}", request.id));
            }
            if request.outcome.as_str() == "success" && !last && outcome == "success" {
                problems.push(format!("{}: attempt {i} succeeded but more attempts followed", request.id));
            }
        }
        if targets_tried.len() > 1 {
            failed_over += 1;
        }
        if request.attempt_count > 1 && request.failover_reason.is_none() {
            problems.push(format!("{}: {} attempts but no failover_reason", request.id, request.attempt_count));
        }
    }
    let expect = args.expect.unwrap_or(requests.len() as u64);
    if requests.len() as u64 != expect || count != expect {
        problems.push(format!("ledger holds {} requests (COUNT(*) {count}), expected {expect}", requests.len()));
    }
    if duplicates > 0 {
        problems.push(format!("{duplicates} duplicate request ids"));
    }
    // The client's view must agree with the ledger's: how many streams each target
    // answered (`x-switchyard-target`) and how many took 1, 2, 3... attempts
    // (`x-switchyard-attempts`). Stream ids cannot be matched to ledger rows: a chunk's
    // `id` is the upstream message id when there is one, and no header carries the
    // ledger's request id.
    let mut client_view = Value::Null;
    if let Some(path) = &args.client_json {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let client: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let as_map = |v: &Value| -> BTreeMap<String, u64> {
            v.as_object().map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect()).unwrap_or_default()
        };
        let client_targets = as_map(&client["answered_by_target"]);
        let client_attempts = as_map(&client["attempts_header"]);
        let ledger_targets: BTreeMap<String, u64> =
            answered.iter().filter(|(k, _)| k.as_str() != "(none)").map(|(k, v)| (k.clone(), *v)).collect();
        let ledger_attempts: BTreeMap<String, u64> = requests
            .iter()
            .filter(|r| r.target.is_some())
            .fold(BTreeMap::new(), |mut m, r| {
                *m.entry(r.attempt_count.to_string()).or_default() += 1;
                m
            });
        if client_targets != ledger_targets {
            problems.push(format!("answering targets differ: client saw {client_targets:?}, ledger says {ledger_targets:?}"));
        }
        if client_attempts != ledger_attempts {
            problems.push(format!("attempt counts differ: client saw {client_attempts:?}, ledger says {ledger_attempts:?}"));
        }
        client_view = json!({"answered_by_target": client_targets, "attempts_header": client_attempts, "matches_ledger": client_targets == ledger_targets && client_attempts == ledger_attempts});
    }
    let result = json!({
        "ledger_url": url,
        "requests_expected": expect,
        "ledger_requests": requests.len(),
        "ledger_count_requests": count,
        "duplicate_ids": duplicates,
        "client_view": client_view,
        "outcomes": outcomes,
        "answered_by_target": answered,
        "attempt_count_histogram": attempt_counts,
        "attempt_rows": attempt_rows,
        "attempts_by_target_and_outcome": attempts_by_target,
        "attempt_error_kinds": error_kinds,
        "requests_with_failover_reason": failover_reasons.values().sum::<u64>(),
        "failover_reasons": failover_reasons,
        "requests_answered_after_changing_target": failed_over,
        "output_tokens": output_tokens,
        "problems": problems.iter().take(50).collect::<Vec<_>>(),
        "problem_count": problems.len(),
    });
    println!("{}", serde_json::to_string_pretty(&result).unwrap_or_default());
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(path, serde_json::to_vec_pretty(&result).unwrap_or_default()) {
            eprintln!("load_test: cannot write {}: {e}", path.display());
            return 2;
        }
    }
    store.close().await;
    if problems.is_empty() {
        0
    } else {
        1
    }
}
