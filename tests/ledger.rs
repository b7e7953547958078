//! The ledger store and writer through their public API: rows round-trip on SQLite
//! and PostgreSQL, inserts are idempotent, and the writer loses nothing on flush,
//! shutdown or under concurrent load.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPoolOptions;
use switchyard::canonical::Usage;
use switchyard::ledger::{
    AttemptOutcome, AttemptRecord, FlushError, LedgerEntry, LedgerStore, LedgerWriter, Outcome,
    RequestRecord, SpendGroupBy, SpendReport, StoreError, WriterConfig,
};
use tokio_util::task::TaskTracker;

/// A time with millisecond precision (what the ledger stores), `ms` after a fixed day.
fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_788_000_000_000 + ms).unwrap()
}

fn usage(input: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: input / 2,
        cache_write_tokens: 3,
        reasoning_tokens: output / 4,
    }
}

fn attempt(request_id: &str, index: u32, target: &str, outcome: AttemptOutcome) -> AttemptRecord {
    let (provider, model) = target.split_once('/').unwrap();
    let ok = outcome == AttemptOutcome::Success;
    AttemptRecord {
        request_id: request_id.into(),
        index,
        target: target.into(),
        provider: provider.into(),
        provider_kind: "sim".into(),
        model: model.into(),
        started_at: at(i64::from(index) * 400),
        latency_ms: 380,
        ttft_ms: ok.then_some(120),
        usage: if ok {
            usage(1_000, 200)
        } else {
            Usage::default()
        },
        cost_micros: if ok { 5_400 } else { 0 },
        priced: ok,
        outcome,
        error_kind: (!ok).then(|| "upstream_5xx".to_string()),
        status: Some(if ok { 200 } else { 503 }),
        retry_after_ms: (!ok).then_some(2_000),
    }
}

fn request(id: &str, route: &str, started_ms: i64, answered_by: Option<&str>) -> RequestRecord {
    RequestRecord {
        id: id.into(),
        started_at: at(started_ms),
        route: route.into(),
        key_id: "key_team_a".into(),
        front_door: "openai-chat".into(),
        stream: true,
        target: answered_by.map(Into::into),
        provider: answered_by.map(|t| t.split('/').next().unwrap().into()),
        provider_kind: answered_by.map(|_| "sim".into()),
        model: answered_by.map(|t| t.split('/').nth(1).unwrap().into()),
        usage: if answered_by.is_some() {
            usage(1_000, 200)
        } else {
            Usage::default()
        },
        cost_micros: if answered_by.is_some() { 5_400 } else { 0 },
        latency_ms: 812,
        ttft_ms: answered_by.map(|_| 520),
        outcome: if answered_by.is_some() {
            Outcome::Success
        } else {
            Outcome::UpstreamError
        },
        status: if answered_by.is_some() { 200 } else { 502 },
        attempt_count: 1,
        failover_reason: None,
    }
}

/// One attempt, answered: the request's time to first token is its attempt's, as
/// the pipeline records it.
fn success(id: &str, started_ms: i64) -> LedgerEntry {
    let mut request = request(id, "support-chat", started_ms, Some("sim-east/fast"));
    request.ttft_ms = Some(120);
    LedgerEntry {
        attempts: vec![attempt(id, 0, "sim-east/fast", AttemptOutcome::Success)],
        request,
    }
}

/// The first target failed with a 503, the second answered.
fn failover(id: &str, started_ms: i64) -> LedgerEntry {
    let mut request = request(id, "support-chat", started_ms, Some("sim-west/fast"));
    request.attempt_count = 2;
    request.failover_reason = Some("upstream_5xx".to_string());
    LedgerEntry {
        attempts: vec![
            attempt(id, 0, "sim-east/fast", AttemptOutcome::Failed),
            attempt(id, 1, "sim-west/fast", AttemptOutcome::Success),
        ],
        request,
    }
}

/// Both targets failed; the client got a 502 and no target answered.
fn failure(id: &str, started_ms: i64) -> LedgerEntry {
    let mut request = request(id, "batch-summaries", started_ms, None);
    request.attempt_count = 2;
    request.stream = false;
    request.failover_reason = Some("upstream_5xx".to_string());
    LedgerEntry {
        attempts: vec![
            attempt(id, 0, "sim-east/fast", AttemptOutcome::Failed),
            attempt(id, 1, "sim-west/fast", AttemptOutcome::Failed),
        ],
        request,
    }
}

async fn memory_store() -> LedgerStore {
    LedgerStore::connect("sqlite::memory:").await.unwrap()
}

/// Checks that `entries` are stored exactly, attempts included.
async fn assert_stored(store: &LedgerStore, entries: &[LedgerEntry]) {
    let stored = store.requests_since(at(-1_000_000)).await.unwrap();
    let expected: Vec<RequestRecord> = entries.iter().map(|e| e.request.clone()).collect();
    assert_eq!(stored, expected);
    for entry in entries {
        let attempts = store.attempts_for(&entry.request.id).await.unwrap();
        assert_eq!(attempts, entry.attempts, "attempts of {}", entry.request.id);
    }
}

fn round_trip_entries() -> Vec<LedgerEntry> {
    vec![
        success("req-1", 0),
        failover("req-2", 10),
        failure("req-3", 20),
    ]
}

#[tokio::test]
async fn success_failover_and_failure_entries_round_trip() {
    let store = memory_store().await;
    let entries = round_trip_entries();
    store.insert_batch(entries.clone()).await.unwrap();
    assert_stored(&store, &entries).await;
    assert_eq!(store.count_requests().await.unwrap(), 3);
}

/// The write path hands SQLite the entries' own strings instead of copies: whatever
/// they hold, empty, non-ASCII, quoted or long, must come back byte for byte, and a
/// batch of many sizes (every statement shape) must land whole.
#[tokio::test]
async fn text_of_every_kind_and_batches_of_every_size_round_trip_exactly() {
    let store = memory_store().await;
    let mut odd = failover("req-odd", 0);
    odd.request.key_id = "".into();
    odd.request.route = "r\u{e9}sum\u{e9}s-\u{8def}\u{7531}-\u{1f680}".into();
    odd.request.failover_reason = Some(format!("quote ' double \" semicolon; -- {}", "x".repeat(100_000)));
    odd.attempts[0].error_kind = Some(String::new());
    let mut entries = vec![odd];
    entries.extend((1..=70).map(|i| success(&format!("req-{i:03}"), i)));
    store.insert_batch(entries.clone()).await.unwrap();
    assert_stored(&store, &entries).await;
    assert_eq!(store.count_requests().await.unwrap(), 71);
}

async fn file_store() -> (tempfile::TempDir, String, LedgerStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let store = LedgerStore::connect(&url).await.unwrap();
    (dir, url, store)
}

/// Rows in a table or view of the SQLite ledger at `url`, counted over a connection
/// of the test's own.
async fn count_rows(url: &str, table: &str) -> i64 {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let n = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

#[tokio::test]
async fn a_requests_only_successful_attempt_is_kept_in_its_row_and_still_read_as_an_attempt() {
    let (_dir, url, store) = file_store().await;
    let entries = round_trip_entries();
    store.insert_batch(entries.clone()).await.unwrap();
    store.close().await;
    // Failover and failure keep their two attempts each as rows; the success's one
    // attempt lives in its request row, and the view shows all five.
    assert_eq!(count_rows(&url, "ledger_attempt_rows").await, 4);
    assert_eq!(count_rows(&url, "ledger_attempts").await, 5);
    let reopened = LedgerStore::connect(&url).await.unwrap();
    assert_stored(&reopened, &entries).await;
}

#[tokio::test]
async fn an_only_attempt_that_differs_from_its_request_gets_a_row_and_round_trips() {
    type Change = fn(&mut LedgerEntry);
    let changes: [(&str, Change); 8] = [
        ("time to first token", |e| e.attempts[0].ttft_ms = Some(7)),
        ("tokens", |e| e.attempts[0].usage.reasoning_tokens += 1),
        ("cost", |e| e.attempts[0].cost_micros += 1),
        ("provider", |e| e.attempts[0].provider = "other".into()),
        ("error kind", |e| e.attempts[0].error_kind = Some("stream_cut".to_string())),
        ("retry-after", |e| e.attempts[0].retry_after_ms = Some(10)),
        ("cancelled", |e| e.attempts[0].outcome = AttemptOutcome::Cancelled),
        ("no answering target", |e| e.request.target = None),
    ];
    let (_dir, url, store) = file_store().await;
    let mut entries: Vec<LedgerEntry> = changes
        .iter()
        .enumerate()
        .map(|(i, (_, change))| {
            let mut entry = success(&format!("req-{i}"), i as i64);
            change(&mut entry);
            entry
        })
        .collect();
    // What the row holds of its attempt may differ from the request's: still held.
    let kept: [Change; 4] = [
        |e| e.attempts[0].priced = false,
        |e| e.attempts[0].model = "configured-name".into(),
        |e| e.attempts[0].status = None,
        |e| e.attempts[0].status = Some(299),
    ];
    entries.extend(kept.iter().enumerate().map(|(i, change)| {
        let mut entry = success(&format!("req-kept-{i}"), 100 + i as i64);
        change(&mut entry);
        entry
    }));
    store.insert_batch(entries.clone()).await.unwrap();
    assert_stored(&store, &entries).await;
    store.close().await;
    assert_eq!(count_rows(&url, "ledger_attempt_rows").await, changes.len() as i64);
}

#[tokio::test]
async fn requests_before_since_are_not_returned() {
    let store = memory_store().await;
    store.insert_batch(round_trip_entries()).await.unwrap();
    let recent = store.requests_since(at(10)).await.unwrap();
    let ids: Vec<&str> = recent.iter().map(|r| &*r.id).collect();
    assert_eq!(ids, ["req-2", "req-3"]);
}

/// Reports by time walk the primary key from the lowest id a request of that time
/// can have (SQLite keeps no start-time index): with ids made as the pipeline makes
/// them, uuid v7 as the request arrives, nothing on either side of `since` is missed
/// or let in.
#[tokio::test]
async fn requests_with_uuid_v7_ids_are_found_by_start_time_exactly() {
    let (_dir, _url, store) = file_store().await;
    let since = Utc::now() - chrono::TimeDelta::days(3);
    let made_at = |offset_ms: i64| {
        let time = since + chrono::TimeDelta::milliseconds(offset_ms);
        let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, time.timestamp() as u64, time.timestamp_subsec_nanos()));
        (id.to_string(), time)
    };
    // (id made, request started) in ms after `since`: the id is read from the clock
    // just before the start time is.
    let times = [(-7_200_000, -7_200_000), (-60_000, -60_000), (-1, 0), (-2, -1), (0, 0), (5, 6), (86_400_000, 86_400_000)];
    let entries: Vec<LedgerEntry> = times
        .iter()
        .map(|&(id_ms, start_ms)| {
            let (id, _) = made_at(id_ms);
            let mut entry = success(&id, 0);
            entry.request.started_at = made_at(start_ms).1;
            entry.attempts[0].request_id = id.into();
            entry
        })
        .collect();
    store.insert_batch(entries.clone()).await.unwrap();
    let found: Vec<String> = store.requests_since(since).await.unwrap().into_iter().map(|r| r.id.to_string()).collect();
    let expected: Vec<String> = entries.iter().filter(|e| e.request.started_at >= since).map(|e| e.request.id.to_string()).collect();
    assert_eq!(found, expected);
    assert_eq!(found.len(), 4);
    let report = SpendReport::build(&store, SpendGroupBy::Route, since).await.unwrap();
    assert_eq!(report.total.requests, 4);
}

#[tokio::test]
async fn a_batch_retried_after_a_failure_is_not_billed_twice() {
    let store = memory_store().await;
    let entries = round_trip_entries();
    store.insert_batch(entries.clone()).await.unwrap();

    // The retry carries the same entries plus one that arrived since, and an altered
    // copy of a stored one: the ledger is append-only, so the first write stands.
    let mut retry = entries.clone();
    retry[0].request.cost_micros = 999_999;
    retry.push(success("req-4", 30));
    store.insert_batch(retry.clone()).await.unwrap();

    let mut expected = entries;
    expected.push(success("req-4", 30));
    assert_stored(&store, &expected).await;
    assert_eq!(store.count_requests().await.unwrap(), 4);
}

#[tokio::test]
async fn the_same_entry_twice_in_one_batch_is_stored_once() {
    let store = memory_store().await;
    let entry = failover("req-1", 0);
    store
        .insert_batch(vec![entry.clone(), entry.clone()])
        .await
        .unwrap();
    assert_stored(&store, &[entry]).await;
}

#[tokio::test]
async fn a_sqlite_file_is_created_with_its_directory_and_reopened_without_losing_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("ledger.db");
    let url = format!("sqlite://{}", path.display());
    {
        let store = LedgerStore::connect(&url).await.unwrap();
        store.insert_batch(round_trip_entries()).await.unwrap();
        assert!(path.exists());
        // WAL mode leaves a write-ahead log beside the database while it is open.
        assert!(dir.path().join("data").join("ledger.db-wal").exists());
        store.close().await;
    }
    let reopened = LedgerStore::connect(&url).await.unwrap();
    assert_eq!(reopened.count_requests().await.unwrap(), 3);
    assert_stored(&reopened, &round_trip_entries()).await;
}

#[tokio::test]
async fn an_unsupported_url_is_refused_without_echoing_its_password() {
    let error = LedgerStore::connect("mysql://ledger:hunter2@db/ledger")
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::UnsupportedUrl { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

fn patient() -> WriterConfig {
    // Batches are only written when full or flushed, so tests control timing.
    WriterConfig {
        max_batch: 100,
        max_delay: Duration::from_secs(3600),
        channel_capacity: 10,
    }
}

#[tokio::test]
async fn flush_waits_until_everything_recorded_is_written() {
    let store = memory_store().await;
    let tracker = TaskTracker::new();
    let (ledger, _stop) = LedgerWriter::spawn(store.clone(), &tracker, patient());
    for i in 0..42 {
        ledger.record(success(&format!("req-{i:03}"), i));
    }
    ledger.flush().await.unwrap();
    assert_eq!(store.count_requests().await.unwrap(), 42);
    assert_eq!(ledger.queue_depth(), 0);
}

#[tokio::test]
async fn the_writer_writes_a_partial_batch_after_max_delay() {
    let store = memory_store().await;
    let tracker = TaskTracker::new();
    let config = WriterConfig {
        max_delay: Duration::from_millis(20),
        ..patient()
    };
    let (ledger, _stop) = LedgerWriter::spawn(store.clone(), &tracker, config);
    ledger.record(success("req-1", 0));
    // No flush: only the delay can write this lone entry.
    for _ in 0..200 {
        if store.count_requests().await.unwrap() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a partial batch was not written within 2 s of a 20 ms max_delay");
}

#[tokio::test]
async fn a_full_batch_is_written_at_once_without_waiting_for_max_delay() {
    let store = memory_store().await;
    let tracker = TaskTracker::new();
    // max_delay is an hour: only a full batch (100 entries) can make the writer write.
    let (ledger, _stop) = LedgerWriter::spawn(store.clone(), &tracker, patient());
    for i in 0..99 {
        ledger.record(success(&format!("req-{i:03}"), i));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.count_requests().await.unwrap(), 0, "a partial batch was written before max_delay");
    ledger.record(success("req-099", 99));
    for _ in 0..200 {
        if store.count_requests().await.unwrap() == 100 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a full batch was not written within 2 s");
}

#[tokio::test]
async fn shutting_down_the_tracker_writes_everything_once_handles_are_dropped() {
    let store = memory_store().await;
    let tracker = TaskTracker::new();
    let (ledger, _stop) = LedgerWriter::spawn(store.clone(), &tracker, patient());
    let clone = ledger.clone();
    for i in 0..250 {
        let handle = if i % 2 == 0 { &ledger } else { &clone };
        handle.record(success(&format!("req-{i:03}"), i));
    }
    drop(ledger);
    drop(clone);
    tracker.close();
    tracker.wait().await;
    assert_eq!(store.count_requests().await.unwrap(), 250);
}

#[tokio::test]
async fn close_drains_the_queue_while_handles_are_still_alive() {
    let store = memory_store().await;
    let tracker = TaskTracker::new();
    let (ledger, _stop) = LedgerWriter::spawn(store.clone(), &tracker, patient());
    for i in 0..150 {
        ledger.record(success(&format!("req-{i:03}"), i));
    }
    ledger.close();
    tracker.close();
    tracker.wait().await;
    assert_eq!(store.count_requests().await.unwrap(), 150);

    // Too late: recorded after close, the entry is counted as lost, and flush says so.
    ledger.record(success("req-late", 1_000));
    assert_eq!(ledger.flush().await, Err(FlushError::RowsLost { rows: 1 }));
    assert_eq!(store.count_requests().await.unwrap(), 150);
}

#[tokio::test]
async fn cancelling_the_stop_token_drains_like_close() {
    let store = memory_store().await;
    let tracker = TaskTracker::new();
    let (ledger, stop) = LedgerWriter::spawn(store.clone(), &tracker, patient());
    ledger.record(failover("req-1", 0));
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    assert_stored(&store, &[failover("req-1", 0)]).await;
    assert_eq!(ledger.flush().await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_concurrent_records_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let store = LedgerStore::connect(&url).await.unwrap();
    let tracker = TaskTracker::new();
    let config = WriterConfig {
        max_batch: 100,
        max_delay: Duration::from_millis(5),
        channel_capacity: 1_000,
    };
    let (ledger, _stop) = LedgerWriter::spawn(store.clone(), &tracker, config);

    let producers: Vec<_> = (0..50)
        .map(|task| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    ledger.record(failover(&format!("req-{task:02}-{i:03}"), i));
                    if i % 10 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.unwrap();
    }
    ledger.flush().await.unwrap();
    assert_eq!(store.count_requests().await.unwrap(), 5_000);

    drop(ledger);
    tracker.close();
    tracker.wait().await;
    let attempts = store.attempts_for("req-49-099").await.unwrap();
    assert_eq!(attempts.len(), 2);
}

#[tokio::test]
async fn a_write_that_keeps_failing_is_reported_by_flush_not_hidden() {
    let store = memory_store().await;
    let tracker = TaskTracker::new();
    let (ledger, _stop) = LedgerWriter::spawn(store.clone(), &tracker, patient());
    // A closed pool fails every write, through every retry (about 1.5 s of backoff).
    store.close().await;
    for i in 0..3 {
        ledger.record(success(&format!("req-{i}"), i));
    }
    assert_eq!(ledger.flush().await, Err(FlushError::RowsLost { rows: 3 }));
    // The loss is reported once; the writer keeps serving.
    assert_eq!(ledger.flush().await, Ok(()));
}

// ---------------------------------------------------------------- PostgreSQL

/// Connects to the test PostgreSQL as `postgres`, then as `root` (trust auth).
/// With CI=true an unreachable server fails the test; otherwise it is skipped loudly.
async fn postgres_base_url() -> Option<String> {
    let mut last_error = String::new();
    for user in ["postgres", "root"] {
        let url = format!("postgres://{user}@127.0.0.1:5432/test");
        let attempt = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await;
        match attempt {
            Ok(pool) => {
                pool.close().await;
                return Some(url);
            }
            Err(error) => last_error = format!("{url}: {error}"),
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and PostgreSQL is unreachable ({last_error})");
    }
    eprintln!();
    eprintln!("!!!!!!!!!! SKIPPING the PostgreSQL ledger test: {last_error}");
    eprintln!("!!!!!!!!!! start PostgreSQL on 127.0.0.1:5432 with a `test` database, or set CI=true to make this a failure");
    eprintln!();
    None
}

#[tokio::test]
async fn the_postgres_store_keeps_the_same_rows_in_a_private_schema() {
    let Some(base) = postgres_base_url().await else {
        return;
    };
    // A fresh schema per run, so parallel runs and earlier runs never collide.
    let schema = format!("sy_test_{}", uuid::Uuid::now_v7().simple());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();

    let url = format!("{base}?options[search_path]={schema}");
    let checks = async {
        let store = LedgerStore::connect(&url)
            .await
            .map_err(|e| e.to_string())?;
        let outcome = postgres_checks(&store).await;
        store.close().await;
        outcome
    }
    .await;

    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    checks.unwrap();
}

/// The same checks as on SQLite; returns an error instead of panicking so the
/// schema is dropped either way.
async fn postgres_checks(store: &LedgerStore) -> Result<(), String> {
    if store.backend_name() != "postgres" {
        return Err(format!("connected to {}", store.backend_name()));
    }
    let entries = round_trip_entries();
    store
        .insert_batch(entries.clone())
        .await
        .map_err(|e| e.to_string())?;
    // Retried batch: nothing billed twice.
    store
        .insert_batch(entries.clone())
        .await
        .map_err(|e| e.to_string())?;

    let stored = store
        .requests_since(at(-1_000_000))
        .await
        .map_err(|e| e.to_string())?;
    let expected: Vec<RequestRecord> = entries.iter().map(|e| e.request.clone()).collect();
    if stored != expected {
        return Err(format!("requests differ:\n{stored:#?}\n!=\n{expected:#?}"));
    }
    for entry in &entries {
        let attempts = store
            .attempts_for(&entry.request.id)
            .await
            .map_err(|e| e.to_string())?;
        if attempts != entry.attempts {
            return Err(format!(
                "attempts of {} differ: {attempts:#?}",
                entry.request.id
            ));
        }
    }

    // The report's SUMs come back as BIGINT on PostgreSQL too.
    let report = SpendReport::build(store, SpendGroupBy::Target, at(-1_000_000))
        .await
        .map_err(|e| e.to_string())?;
    let groups: Vec<(&str, u64, i64)> = report
        .rows
        .iter()
        .map(|r| (r.group.as_str(), r.requests, r.cost_micros))
        .collect();
    let expected = [
        ("sim-east/fast", 1, 5_400),
        ("sim-west/fast", 1, 5_400),
        ("(none)", 1, 0),
    ];
    if groups != expected {
        return Err(format!("report groups differ: {groups:?}"));
    }
    if report.total.attempts != 5 || report.total.failed_requests != 1 {
        return Err(format!("report total is wrong: {:?}", report.total));
    }
    Ok(())
}
