//! Spend reports through their public API: grouping, totals and ordering over a
//! small known ledger, the three renderings pinned as snapshots, and `--since` parsing.

use chrono::{DateTime, Utc};
use switchyard::canonical::Usage;
use switchyard::ledger::{
    parse_since_at, AttemptOutcome, AttemptRecord, LedgerEntry, LedgerStore, Outcome, ReportFormat,
    RequestRecord, SpendGroupBy, SpendReport, SpendRow,
};

fn t(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

const SINCE: &str = "2026-09-01T00:00:00Z";

/// One ledger entry, described by what a report reads from it.
struct Spend {
    id: &'static str,
    at: &'static str,
    route: &'static str,
    key: &'static str,
    /// The answering target; `None` when every attempt failed.
    target: Option<&'static str>,
    attempts: u32,
    usage: Usage,
    cost_micros: i64,
}

fn entry(s: &Spend) -> LedgerEntry {
    let started_at = t(s.at);
    let attempts = (0..s.attempts)
        .map(|index| {
            let last = index + 1 == s.attempts;
            let answered = last && s.target.is_some();
            let target = if answered {
                s.target.unwrap()
            } else {
                "sim-east/fast"
            };
            AttemptRecord {
                request_id: s.id.into(),
                index,
                target: target.into(),
                provider: target.split('/').next().unwrap().into(),
                provider_kind: "sim".into(),
                model: target.split('/').nth(1).unwrap().into(),
                started_at,
                latency_ms: 100,
                ttft_ms: None,
                usage: if answered { s.usage } else { Usage::default() },
                cost_micros: if answered { s.cost_micros } else { 0 },
                priced: true,
                outcome: if answered {
                    AttemptOutcome::Success
                } else {
                    AttemptOutcome::Failed
                },
                error_kind: (!answered).then(|| "upstream_5xx".to_string()),
                status: Some(if answered { 200 } else { 503 }),
                retry_after_ms: None,
            }
        })
        .collect();
    LedgerEntry {
        request: RequestRecord {
            id: s.id.into(),
            started_at,
            route: s.route.into(),
            key_id: s.key.into(),
            front_door: "openai-chat".into(),
            stream: false,
            target: s.target.map(Into::into),
            provider: s.target.map(|t| t.split('/').next().unwrap().into()),
            provider_kind: s.target.map(|_| "sim".into()),
            model: s.target.map(|t| t.split('/').nth(1).unwrap().into()),
            usage: s.usage,
            cost_micros: s.cost_micros,
            latency_ms: 250,
            ttft_ms: None,
            outcome: if s.target.is_some() {
                Outcome::Success
            } else {
                Outcome::UpstreamError
            },
            status: if s.target.is_some() { 200 } else { 502 },
            attempt_count: s.attempts,
            failover_reason: (s.attempts > 1).then(|| "upstream_5xx".to_string()),
        },
        attempts,
    }
}

fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64, reasoning: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        reasoning_tokens: reasoning,
    }
}

/// A small ledger: two routes, three keys, a failover, a total failure, and one
/// request before the report window that must not be counted.
async fn sample_ledger() -> LedgerStore {
    let spends = [
        Spend {
            id: "r1",
            at: "2026-09-01T08:00:00Z",
            route: "support-chat",
            key: "key_support",
            target: Some("anthropic-main/claude-sonnet-4-6"),
            attempts: 1,
            usage: usage(1_000, 500, 2_000, 100, 0),
            cost_micros: 11_475,
        },
        Spend {
            id: "r2",
            at: "2026-09-01T09:00:00Z",
            route: "support-chat",
            key: "key_support",
            target: Some("bedrock-us/us.anthropic.claude-sonnet-4-6"),
            attempts: 2,
            usage: usage(1_000, 500, 0, 0, 0),
            cost_micros: 11_550,
        },
        Spend {
            id: "r3",
            at: "2026-09-02T10:30:00Z",
            route: "batch-summaries",
            key: "key_batch",
            target: Some("openai-main/gpt-5-mini"),
            attempts: 1,
            usage: usage(40_000, 8_000, 0, 0, 6_000),
            cost_micros: 26_000,
        },
        Spend {
            id: "r4",
            at: "2026-09-02T11:00:00Z",
            route: "batch-summaries",
            key: "key_batch",
            target: None,
            attempts: 3,
            usage: Usage::default(),
            cost_micros: 0,
        },
        Spend {
            id: "r5",
            at: "2026-09-03T12:00:00Z",
            route: "support-chat",
            key: "key_research",
            target: Some("anthropic-main/claude-sonnet-4-6"),
            attempts: 1,
            usage: usage(200, 50, 0, 0, 0),
            cost_micros: 1_350,
        },
        Spend {
            id: "old",
            at: "2026-08-31T23:59:59Z",
            route: "support-chat",
            key: "key_support",
            target: Some("anthropic-main/claude-sonnet-4-6"),
            attempts: 1,
            usage: usage(9_999, 9_999, 0, 0, 0),
            cost_micros: 999_999,
        },
    ];
    let store = LedgerStore::connect("sqlite::memory:").await.unwrap();
    let entries: Vec<LedgerEntry> = spends.iter().map(entry).collect();
    store.insert_batch(entries.clone()).await.unwrap();
    store
}

async fn report(group_by: SpendGroupBy) -> SpendReport {
    SpendReport::build(&sample_ledger().await, group_by, t(SINCE))
        .await
        .unwrap()
}

#[tokio::test]
async fn spend_by_route_counts_requests_attempts_tokens_and_cost() {
    let report = report(SpendGroupBy::Route).await;
    // batch-summaries (26,000) costs more than support-chat (24,375), so comes first.
    let support = &report.rows[1];
    assert_eq!(
        *support,
        SpendRow {
            group: "support-chat".to_string(),
            requests: 3,
            failed_requests: 0,
            attempts: 4,
            input_tokens: 2_200,
            output_tokens: 1_050,
            cache_read_tokens: 2_000,
            cache_write_tokens: 100,
            reasoning_tokens: 0,
            cost_micros: 24_375,
        }
    );
    let batch = &report.rows[0];
    assert_eq!(
        (batch.group.as_str(), batch.requests, batch.failed_requests),
        ("batch-summaries", 2, 1)
    );
    assert_eq!((batch.attempts, batch.cost_micros), (4, 26_000));
}

#[tokio::test]
async fn rows_are_sorted_by_cost_then_name_and_the_total_is_their_sum() {
    let report = report(SpendGroupBy::Key).await;
    let order: Vec<(&str, i64)> = report
        .rows
        .iter()
        .map(|r| (r.group.as_str(), r.cost_micros))
        .collect();
    assert_eq!(
        order,
        [
            ("key_batch", 26_000),
            ("key_support", 23_025),
            ("key_research", 1_350)
        ]
    );
    assert_eq!(report.total.group, "TOTAL");
    assert_eq!(report.total.requests, 5);
    assert_eq!(report.total.attempts, 8);
    assert_eq!(
        report.total.cost_micros,
        report.rows.iter().map(|r| r.cost_micros).sum::<i64>()
    );
    assert_eq!(
        report.total.cost_micros, 50_375,
        "the request before --since is left out"
    );
}

#[tokio::test]
async fn equal_costs_are_ordered_by_name() {
    let rows = ["b", "a", "c"]
        .map(|g| SpendRow {
            group: g.to_string(),
            cost_micros: 7,
            ..SpendRow::default()
        })
        .to_vec();
    let report = SpendReport::from_rows(SpendGroupBy::Route, t(SINCE), rows);
    let order: Vec<&str> = report.rows.iter().map(|r| r.group.as_str()).collect();
    assert_eq!(order, ["a", "b", "c"]);
}

#[tokio::test]
async fn requests_no_target_answered_are_grouped_as_none() {
    let report = report(SpendGroupBy::Target).await;
    let none = report.rows.iter().find(|r| r.group == "(none)").unwrap();
    assert_eq!(
        (none.requests, none.failed_requests, none.attempts),
        (1, 1, 3)
    );
    assert_eq!(report.rows.len(), 4);
}

#[tokio::test]
async fn an_empty_window_renders_a_zero_total() {
    let store = sample_ledger().await;
    let report = SpendReport::build(&store, SpendGroupBy::Route, t("2030-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert!(report.rows.is_empty());
    assert_eq!(report.total.cost_micros, 0);
    insta::assert_snapshot!("empty_table", report.render(ReportFormat::Table));
}

#[tokio::test]
async fn the_route_report_renders_as_an_aligned_table() {
    insta::assert_snapshot!(
        "route_table",
        report(SpendGroupBy::Route)
            .await
            .render(ReportFormat::Table)
    );
}

#[tokio::test]
async fn the_target_report_renders_as_an_aligned_table() {
    insta::assert_snapshot!(
        "target_table",
        report(SpendGroupBy::Target)
            .await
            .render(ReportFormat::Table)
    );
}

#[tokio::test]
async fn the_route_report_renders_as_json_with_integer_and_string_costs() {
    let json = report(SpendGroupBy::Route).await.render(ReportFormat::Json);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["total"]["cost_micros"], 50_375);
    assert_eq!(value["total"]["cost_usd"], "0.050375");
    insta::assert_snapshot!("route_json", json);
}

#[tokio::test]
async fn the_key_report_renders_as_csv() {
    insta::assert_snapshot!(
        "key_csv",
        report(SpendGroupBy::Key).await.render(ReportFormat::Csv)
    );
}

#[test]
fn csv_quotes_names_holding_commas_and_quotes() {
    let rows = vec![SpendRow {
        group: "team \"a\", west".to_string(),
        requests: 1,
        cost_micros: 1_500_000,
        ..SpendRow::default()
    }];
    let csv = SpendReport::from_rows(SpendGroupBy::Key, t(SINCE), rows).render(ReportFormat::Csv);
    let line = csv.lines().nth(1).unwrap();
    assert_eq!(
        line,
        "\"team \"\"a\"\", west\",1,0,0,0,0,0,0,0,1500000,1.500000"
    );
}

#[test]
fn since_reads_durations_back_from_now() {
    let now = t("2026-09-10T12:00:00Z");
    assert_eq!(parse_since_at("7d", now), Ok(t("2026-09-03T12:00:00Z")));
    assert_eq!(parse_since_at("24h", now), Ok(t("2026-09-09T12:00:00Z")));
    assert_eq!(parse_since_at("30m", now), Ok(t("2026-09-10T11:30:00Z")));
}

#[test]
fn since_reads_rfc3339_times_and_plain_dates() {
    let now = t("2026-09-10T12:00:00Z");
    assert_eq!(
        parse_since_at("2026-09-01", now),
        Ok(t("2026-09-01T00:00:00Z"))
    );
    assert_eq!(
        parse_since_at("2026-09-01T02:00:00+02:00", now),
        Ok(t("2026-09-01T00:00:00Z"))
    );
}

#[test]
fn since_refuses_anything_else_and_says_what_it_expects() {
    let error = parse_since_at("last tuesday", t(SINCE)).unwrap_err();
    assert!(error.contains("\"last tuesday\""), "{error}");
    assert!(error.contains("7d"), "{error}");
}

#[test]
fn group_and_format_names_parse_for_the_cli() {
    assert_eq!("target".parse::<SpendGroupBy>(), Ok(SpendGroupBy::Target));
    assert_eq!("csv".parse::<ReportFormat>(), Ok(ReportFormat::Csv));
    assert!("model".parse::<SpendGroupBy>().is_err());
}
