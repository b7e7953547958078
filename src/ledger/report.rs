//! Spend reports over the ledger: requests, attempts, tokens and cost per route,
//! answering target or client key since a point in time, rendered as an aligned
//! table, JSON or CSV for `switchyard report` and the admin API.
//!
//! The database does the aggregation (one GROUP BY over the requests table, see
//! `LedgerStore::spend_by`); this module sorts, totals and renders. Money stays in
//! integer micro-dollars and is shown as dollars by integer formatting, never floats.

use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::store::{LedgerStore, StoreError};

/// What a spend report groups requests by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendGroupBy {
    Route,
    /// The answering target ("provider/model"); requests no target answered are
    /// grouped as "(none)".
    Target,
    Key,
}

impl SpendGroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            SpendGroupBy::Route => "route",
            SpendGroupBy::Target => "target",
            SpendGroupBy::Key => "key",
        }
    }
}

impl FromStr for SpendGroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "route" => Ok(SpendGroupBy::Route),
            "target" => Ok(SpendGroupBy::Target),
            "key" => Ok(SpendGroupBy::Key),
            other => Err(format!(
                "unknown grouping {other:?}: expected route, target or key"
            )),
        }
    }
}

/// How a report is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
}

impl FromStr for ReportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(ReportFormat::Table),
            "json" => Ok(ReportFormat::Json),
            "csv" => Ok(ReportFormat::Csv),
            other => Err(format!(
                "unknown format {other:?}: expected table, json or csv"
            )),
        }
    }
}

/// The spend of one group (or, as [`SpendReport::total`], of all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendRow {
    pub group: String,
    pub requests: u64,
    /// Requests whose outcome was not success.
    pub failed_requests: u64,
    /// Upstream attempts made for these requests (failovers and retries included).
    pub attempts: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_micros: i64,
}

impl SpendRow {
    fn add(&mut self, other: &SpendRow) {
        self.requests += other.requests;
        self.failed_requests += other.failed_requests;
        self.attempts += other.attempts;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cost_micros = self.cost_micros.saturating_add(other.cost_micros);
    }
}

/// Spend per group since a point in time, most expensive first, with a total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendReport {
    pub group_by: SpendGroupBy,
    pub since: DateTime<Utc>,
    pub rows: Vec<SpendRow>,
    /// The sum of `rows`; its `group` is "TOTAL".
    pub total: SpendRow,
}

impl SpendReport {
    /// Aggregates the ledger's requests that started at or after `since`.
    pub async fn build(
        store: &LedgerStore,
        group_by: SpendGroupBy,
        since: DateTime<Utc>,
    ) -> Result<SpendReport, StoreError> {
        let rows = store.spend_by(group_by, since).await?;
        Ok(SpendReport::from_rows(group_by, since, rows))
    }

    /// Sorts rows (cost descending, then group name) and totals them.
    pub fn from_rows(
        group_by: SpendGroupBy,
        since: DateTime<Utc>,
        mut rows: Vec<SpendRow>,
    ) -> SpendReport {
        // Sorted here rather than in SQL: collations differ between the backends.
        rows.sort_by(|a, b| {
            b.cost_micros
                .cmp(&a.cost_micros)
                .then_with(|| a.group.cmp(&b.group))
        });
        let mut total = SpendRow {
            group: "TOTAL".to_string(),
            ..SpendRow::default()
        };
        for row in &rows {
            total.add(row);
        }
        SpendReport {
            group_by,
            since,
            rows,
            total,
        }
    }

    pub fn render(&self, format: ReportFormat) -> String {
        match format {
            ReportFormat::Table => self.render_table(),
            ReportFormat::Json => self.render_json(),
            ReportFormat::Csv => self.render_csv(),
        }
    }

    fn render_table(&self) -> String {
        let header = [
            self.group_by.as_str().to_uppercase(),
            "REQUESTS".into(),
            "FAILED".into(),
            "ATTEMPTS".into(),
            "INPUT".into(),
            "OUTPUT".into(),
            "CACHE READ".into(),
            "CACHE WRITE".into(),
            "REASONING".into(),
            "COST".into(),
        ];
        let cells = |row: &SpendRow| -> [String; 10] {
            [
                row.group.clone(),
                row.requests.to_string(),
                row.failed_requests.to_string(),
                row.attempts.to_string(),
                row.input_tokens.to_string(),
                row.output_tokens.to_string(),
                row.cache_read_tokens.to_string(),
                row.cache_write_tokens.to_string(),
                row.reasoning_tokens.to_string(),
                format_usd(row.cost_micros),
            ]
        };
        let body: Vec<[String; 10]> = self.rows.iter().map(cells).collect();
        let total = cells(&self.total);
        let mut widths = header.clone().map(|h| h.chars().count());
        for line in body.iter().chain(std::iter::once(&total)) {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let format_line = |cells: &[String; 10]| -> String {
            let mut line = String::new();
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                if i == 0 {
                    // The name column is left-aligned, the figures right-aligned.
                    let _ = write!(line, "{cell:<width$}");
                } else {
                    let _ = write!(line, "  {cell:>width$}");
                }
            }
            line
        };
        let mut out = format!(
            "Spend by {} since {}\n\n",
            self.group_by.as_str(),
            self.since.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        out.push_str(&format_line(&header));
        out.push('\n');
        for line in &body {
            out.push_str(&format_line(line));
            out.push('\n');
        }
        let rule_width = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        out.push_str(&"-".repeat(rule_width));
        out.push('\n');
        out.push_str(&format_line(&total));
        out.push('\n');
        out
    }

    fn render_json(&self) -> String {
        let view = JsonReport {
            group_by: self.group_by,
            since: self.since.to_rfc3339_opts(SecondsFormat::Secs, true),
            rows: self
                .rows
                .iter()
                .map(|r| JsonRow::of(r, Some(&r.group)))
                .collect(),
            total: JsonRow::of(&self.total, None),
        };
        // Serialising plain structs of strings and integers cannot fail.
        serde_json::to_string_pretty(&view).unwrap_or_default() + "\n"
    }

    /// One header line and one line per group. No total line: CSV is for machines,
    /// which sum for themselves, and a total row would be summed twice.
    fn render_csv(&self) -> String {
        let mut out = format!(
            "{},requests,failed_requests,attempts,input_tokens,output_tokens,\
             cache_read_tokens,cache_write_tokens,reasoning_tokens,cost_micros,cost_usd\n",
            self.group_by.as_str()
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&r.group),
                r.requests,
                r.failed_requests,
                r.attempts,
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.reasoning_tokens,
                r.cost_micros,
                format_decimal_usd(r.cost_micros),
            );
        }
        out
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    group_by: SpendGroupBy,
    since: String,
    rows: Vec<JsonRow<'a>>,
    total: JsonRow<'a>,
}

/// A row as JSON: the integer figures, plus the cost as a decimal string so no
/// consumer has to divide (or round through a float).
#[derive(Serialize)]
struct JsonRow<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    requests: u64,
    failed_requests: u64,
    attempts: u64,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    reasoning_tokens: u64,
    cost_micros: i64,
    cost_usd: String,
}

impl<'a> JsonRow<'a> {
    /// The figures of `r` under `group` (`None` for the total, which has no name).
    fn of(r: &SpendRow, group: Option<&'a str>) -> Self {
        JsonRow {
            group,
            requests: r.requests,
            failed_requests: r.failed_requests,
            attempts: r.attempts,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cache_read_tokens: r.cache_read_tokens,
            cache_write_tokens: r.cache_write_tokens,
            reasoning_tokens: r.reasoning_tokens,
            cost_micros: r.cost_micros,
            cost_usd: format_decimal_usd(r.cost_micros),
        }
    }
}

/// Micro-dollars as "$X.XXXXXX" (e.g. 1_234_567 → "$1.234567").
pub fn format_usd(micros: i64) -> String {
    let decimal = format_decimal_usd(micros);
    match decimal.strip_prefix('-') {
        Some(positive) => format!("-${positive}"),
        None => format!("${decimal}"),
    }
}

/// Micro-dollars as a plain decimal "X.XXXXXX", by integer arithmetic.
fn format_decimal_usd(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

/// Quotes a CSV field when it holds a separator, quote or line break (RFC 4180).
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// Reads a report's start: a duration back from now ("7d", "24h", "30m"), an
/// RFC 3339 time ("2026-09-01T00:00:00Z") or a date ("2026-09-01", midnight UTC).
pub fn parse_since(input: &str) -> Result<DateTime<Utc>, String> {
    parse_since_at(input, Utc::now())
}

/// [`parse_since`] with an explicit "now", for tests and reproducible reports.
pub fn parse_since_at(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let input = input.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(input) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(input, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    let ago = humantime::parse_duration(input).map_err(|_| {
        format!(
            "cannot read {input:?} as a start time: expected a duration like 7d, 24h or 30m, \
             an RFC 3339 time like 2026-09-01T00:00:00Z, or a date like 2026-09-01"
        )
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|ago| now.checked_sub_signed(ago))
        .ok_or_else(|| format!("{input:?} reaches back before the earliest representable time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_are_formatted_from_integer_micros() {
        assert_eq!(format_usd(0), "$0.000000");
        assert_eq!(format_usd(1), "$0.000001");
        assert_eq!(format_usd(1_234_567), "$1.234567");
        assert_eq!(format_usd(-1_500_000), "-$1.500000");
        assert_eq!(format_usd(i64::MIN), "-$9223372036854.775808");
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("support-chat"), "support-chat");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
