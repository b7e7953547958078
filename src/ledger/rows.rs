//! The ledger's records as database columns and back, shared by both backends of
//! the store: encoding for inserts (`RequestRow`, `AttemptRow`) and decoding of
//! fetched rows (`read_request`, `read_attempt`, `read_spend`) through `ReadRow`, a
//! small trait both backends' row types implement, so each record is decoded by one
//! function instead of one per backend. No SQL lives here.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::entry::{AttemptOutcome, AttemptRecord, LedgerEntry, Outcome, RequestRecord};
use super::report::SpendRow;
use super::store::StoreError;
use crate::canonical::Usage;

/// A request as column values. Counters beyond i64::MAX (impossible in practice)
/// are clamped rather than failing the whole batch they travel in.
pub(super) struct RequestRow<'a> {
    pub(super) id: &'a str,
    pub(super) started_at_ms: i64,
    pub(super) route: &'a str,
    pub(super) key_id: &'a str,
    pub(super) front_door: &'a str,
    pub(super) stream: bool,
    pub(super) target: Option<&'a str>,
    pub(super) provider: Option<&'a str>,
    pub(super) provider_kind: Option<&'a str>,
    pub(super) model: Option<&'a str>,
    pub(super) tokens: [i64; 5],
    pub(super) cost_micros: i64,
    pub(super) latency_ms: i64,
    pub(super) ttft_ms: Option<i64>,
    pub(super) outcome: &'static str,
    pub(super) status: i32,
    pub(super) attempt_count: i32,
    pub(super) failover_reason: Option<&'a str>,
    /// The request's one attempt, when this row holds it ([`inline_attempt`]).
    pub(super) attempt: Option<InlineAttempt<'a>>,
}

/// What a request row holds of its one attempt besides what the two share.
#[derive(Debug, Clone, Copy)]
pub(super) struct InlineAttempt<'a> {
    pub(super) started_at_ms: i64,
    pub(super) latency_ms: i64,
    pub(super) priced: bool,
    pub(super) model: &'a str,
    pub(super) status: Option<i32>,
}

/// An entry's request and attempts as the rows that store them: a request row each,
/// and an attempt row for every attempt its request row does not hold.
pub(super) fn rows(entries: &[LedgerEntry]) -> (Vec<RequestRow<'_>>, Vec<AttemptRow<'_>>) {
    let requests: Vec<RequestRow<'_>> = entries.iter().map(RequestRow::from).collect();
    let attempts = entries
        .iter()
        .zip(&requests)
        .filter(|(_, row)| row.attempt.is_none())
        .flat_map(|(e, _)| e.attempts.iter().map(move |a| AttemptRow::new(&e.request.id, a)))
        .collect();
    (requests, attempts)
}

/// The attempt an entry's request row holds, if it can: the request's only attempt,
/// which succeeded and shares its target, tokens, cost and time to first token with
/// the request, as most requests' one attempt does. The row then stores only the
/// rest (when it started, how long it took, whether it was priced, its model and
/// upstream status), and the `ledger_attempts` view shows it as a row of its own
/// (migration 0004). Any other attempt is written as a row.
pub(super) fn inline_attempt(entry: &LedgerEntry) -> Option<&AttemptRecord> {
    let [a] = entry.attempts.as_slice() else {
        return None;
    };
    let r = &entry.request;
    let shared = a.index == 0
        && a.request_id == r.id
        && a.outcome == AttemptOutcome::Success
        && a.error_kind.is_none()
        && a.retry_after_ms.is_none()
        && r.target.as_deref() == Some(&*a.target)
        && r.provider.as_deref() == Some(&*a.provider)
        && r.provider_kind.as_deref() == Some(&*a.provider_kind)
        && a.usage == r.usage
        && a.cost_micros == r.cost_micros
        && a.ttft_ms == r.ttft_ms;
    shared.then_some(a)
}

impl<'a> From<&'a LedgerEntry> for RequestRow<'a> {
    fn from(entry: &'a LedgerEntry) -> Self {
        let r = &entry.request;
        RequestRow {
            attempt: inline_attempt(entry).map(|a| InlineAttempt {
                started_at_ms: a.started_at.timestamp_millis(),
                latency_ms: clamp(a.latency_ms),
                priced: a.priced,
                model: &a.model,
                status: a.status.map(i32::from),
            }),
            id: &r.id,
            started_at_ms: r.started_at.timestamp_millis(),
            route: &r.route,
            key_id: &r.key_id,
            front_door: &r.front_door,
            stream: r.stream,
            target: r.target.as_deref(),
            provider: r.provider.as_deref(),
            provider_kind: r.provider_kind.as_deref(),
            model: r.model.as_deref(),
            tokens: usage_columns(&r.usage),
            cost_micros: r.cost_micros,
            latency_ms: clamp(r.latency_ms),
            ttft_ms: r.ttft_ms.map(clamp),
            outcome: r.outcome.as_str(),
            status: i32::from(r.status),
            attempt_count: i32::try_from(r.attempt_count).unwrap_or(i32::MAX),
            failover_reason: r.failover_reason.as_deref(),
        }
    }
}

pub(super) struct AttemptRow<'a> {
    pub(super) request_id: &'a str,
    pub(super) index: i32,
    pub(super) target: &'a str,
    pub(super) provider: &'a str,
    pub(super) provider_kind: &'a str,
    pub(super) model: &'a str,
    pub(super) started_at_ms: i64,
    pub(super) latency_ms: i64,
    pub(super) ttft_ms: Option<i64>,
    pub(super) tokens: [i64; 5],
    pub(super) cost_micros: i64,
    pub(super) priced: bool,
    pub(super) outcome: &'static str,
    pub(super) error_kind: Option<&'a str>,
    pub(super) status: Option<i32>,
    pub(super) retry_after_ms: Option<i64>,
}

impl<'a> AttemptRow<'a> {
    /// The attempt is stored under its entry's request id: the entry is the unit the
    /// ledger records, and a mismatched `request_id` would otherwise fail the foreign
    /// key and with it every other entry in the batch.
    pub(super) fn new(request_id: &'a str, a: &'a AttemptRecord) -> Self {
        if *a.request_id != *request_id {
            tracing::warn!(
                request_id,
                attempt_request_id = %a.request_id,
                "ledger attempt carries another request's id; stored under its entry's id"
            );
        }
        AttemptRow {
            request_id,
            index: i32::try_from(a.index).unwrap_or(i32::MAX),
            target: &a.target,
            provider: &a.provider,
            provider_kind: &a.provider_kind,
            model: &a.model,
            started_at_ms: a.started_at.timestamp_millis(),
            latency_ms: clamp(a.latency_ms),
            ttft_ms: a.ttft_ms.map(clamp),
            tokens: usage_columns(&a.usage),
            cost_micros: a.cost_micros,
            priced: a.priced,
            outcome: a.outcome.as_str(),
            error_kind: a.error_kind.as_deref(),
            status: a.status.map(i32::from),
            retry_after_ms: a.retry_after_ms.map(clamp),
        }
    }
}

/// One column value of an insert, in the types both backends store. Rows hand their
/// values out in column order ([`RequestRow::values`], [`AttemptRow::values`]), so the
/// order is written once, next to the columns, whichever driver binds them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value<'a> {
    Text(Option<&'a str>),
    BigInt(Option<i64>),
    Int(Option<i32>),
    Bool(Option<bool>),
}

impl<'a> RequestRow<'a> {
    /// The values in the order of the insert's columns (`REQUEST_INSERT` in the store).
    pub(super) fn values(&self) -> [Value<'a>; 27] {
        use Value::*;
        let [input, output, cache_read, cache_write, reasoning] = self.tokens;
        [
            Text(Some(self.id)),
            BigInt(Some(self.started_at_ms)),
            Text(Some(self.route)),
            Text(Some(self.key_id)),
            Text(Some(self.front_door)),
            Bool(Some(self.stream)),
            Text(self.target),
            Text(self.provider),
            Text(self.provider_kind),
            Text(self.model),
            BigInt(Some(input)),
            BigInt(Some(output)),
            BigInt(Some(cache_read)),
            BigInt(Some(cache_write)),
            BigInt(Some(reasoning)),
            BigInt(Some(self.cost_micros)),
            BigInt(Some(self.latency_ms)),
            BigInt(self.ttft_ms),
            Text(Some(self.outcome)),
            Int(Some(self.status)),
            Int(Some(self.attempt_count)),
            Text(self.failover_reason),
            BigInt(self.attempt.map(|a| a.started_at_ms)),
            BigInt(self.attempt.map(|a| a.latency_ms)),
            Bool(self.attempt.map(|a| a.priced)),
            Text(self.attempt.map(|a| a.model)),
            Int(self.attempt.and_then(|a| a.status)),
        ]
    }
}

impl<'a> AttemptRow<'a> {
    /// The values in the order of the insert's columns (`ATTEMPT_INSERT` in the store).
    pub(super) fn values(&self) -> [Value<'a>; 20] {
        use Value::*;
        let [input, output, cache_read, cache_write, reasoning] = self.tokens;
        [
            Text(Some(self.request_id)),
            Int(Some(self.index)),
            Text(Some(self.target)),
            Text(Some(self.provider)),
            Text(Some(self.provider_kind)),
            Text(Some(self.model)),
            BigInt(Some(self.started_at_ms)),
            BigInt(Some(self.latency_ms)),
            BigInt(self.ttft_ms),
            BigInt(Some(input)),
            BigInt(Some(output)),
            BigInt(Some(cache_read)),
            BigInt(Some(cache_write)),
            BigInt(Some(reasoning)),
            BigInt(Some(self.cost_micros)),
            Bool(Some(self.priced)),
            Text(Some(self.outcome)),
            Text(self.error_kind),
            Int(self.status),
            BigInt(self.retry_after_ms),
        ]
    }
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn usage_columns(u: &Usage) -> [i64; 5] {
    [
        clamp(u.input_tokens),
        clamp(u.output_tokens),
        clamp(u.cache_read_tokens),
        clamp(u.cache_write_tokens),
        clamp(u.reasoning_tokens),
    ]
}

/// Typed column access shared by both backends' row types, so each record is
/// decoded by one function rather than one per backend.
pub(super) trait ReadRow {
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn small(&self, col: &str) -> Result<i32, sqlx::Error>;
    fn opt_small(&self, col: &str) -> Result<Option<i32>, sqlx::Error>;
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn flag(&self, col: &str) -> Result<bool, sqlx::Error>;
}

macro_rules! impl_read_row {
    ($row:ty) => {
        impl ReadRow for $row {
            fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(col)
            }
            fn small(&self, col: &str) -> Result<i32, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_small(&self, col: &str) -> Result<Option<i32>, sqlx::Error> {
                self.try_get(col)
            }
            fn text(&self, col: &str) -> Result<String, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(col)
            }
            fn flag(&self, col: &str) -> Result<bool, sqlx::Error> {
                self.try_get(col)
            }
        }
    };
}

impl_read_row!(SqliteRow);
impl_read_row!(PgRow);

/// Turns stored integers back into record fields, naming the row on failure.
struct Decoder<'a> {
    id: &'a str,
}

impl Decoder<'_> {
    fn corrupt(&self, problem: String) -> StoreError {
        StoreError::Corrupt {
            id: self.id.to_string(),
            problem,
        }
    }

    fn unsigned<T: TryFrom<i64>>(&self, col: &str, value: i64) -> Result<T, StoreError> {
        T::try_from(value).map_err(|_| self.corrupt(format!("{col} = {value} is out of range")))
    }

    fn time(&self, col: &str, ms: i64) -> Result<DateTime<Utc>, StoreError> {
        DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| self.corrupt(format!("{col} = {ms} is not a time")))
    }

    fn usage(&self, row: &impl ReadRow) -> Result<Usage, StoreError> {
        let get = |col: &str| -> Result<u64, StoreError> { self.unsigned(col, row.int(col)?) };
        Ok(Usage {
            input_tokens: get("input_tokens")?,
            output_tokens: get("output_tokens")?,
            cache_read_tokens: get("cache_read_tokens")?,
            cache_write_tokens: get("cache_write_tokens")?,
            reasoning_tokens: get("reasoning_tokens")?,
        })
    }

    fn opt_unsigned<T: TryFrom<i64>>(
        &self,
        col: &str,
        value: Option<i64>,
    ) -> Result<Option<T>, StoreError> {
        value.map(|v| self.unsigned(col, v)).transpose()
    }
}

pub(super) fn read_request(row: &impl ReadRow) -> Result<RequestRecord, StoreError> {
    let id = row.text("id")?;
    let d = Decoder { id: &id };
    let outcome_name = row.text("outcome")?;
    let outcome = Outcome::parse(&outcome_name)
        .ok_or_else(|| d.corrupt(format!("unknown outcome {outcome_name:?}")))?;
    Ok(RequestRecord {
        started_at: d.time("started_at_ms", row.int("started_at_ms")?)?,
        route: row.text("route")?.into(),
        key_id: row.text("key_id")?.into(),
        front_door: row.text("front_door")?.into(),
        stream: row.flag("stream")?,
        target: row.opt_text("target")?.map(Arc::from),
        provider: row.opt_text("provider")?.map(Arc::from),
        provider_kind: row.opt_text("provider_kind")?.map(Arc::from),
        model: row.opt_text("model")?.map(Arc::from),
        usage: d.usage(row)?,
        cost_micros: row.int("cost_micros")?,
        latency_ms: d.unsigned("latency_ms", row.int("latency_ms")?)?,
        ttft_ms: d.opt_unsigned("ttft_ms", row.opt_int("ttft_ms")?)?,
        outcome,
        status: d.unsigned("status", i64::from(row.small("status")?))?,
        attempt_count: d.unsigned("attempt_count", i64::from(row.small("attempt_count")?))?,
        failover_reason: row.opt_text("failover_reason")?,
        id: id.into(),
    })
}

pub(super) fn read_attempt(row: &impl ReadRow) -> Result<AttemptRecord, StoreError> {
    let request_id = row.text("request_id")?;
    let d = Decoder { id: &request_id };
    let outcome_name = row.text("outcome")?;
    let outcome = AttemptOutcome::parse(&outcome_name)
        .ok_or_else(|| d.corrupt(format!("unknown attempt outcome {outcome_name:?}")))?;
    Ok(AttemptRecord {
        index: d.unsigned("attempt_index", i64::from(row.small("attempt_index")?))?,
        target: row.text("target")?.into(),
        provider: row.text("provider")?.into(),
        provider_kind: row.text("provider_kind")?.into(),
        model: row.text("model")?.into(),
        started_at: d.time("started_at_ms", row.int("started_at_ms")?)?,
        latency_ms: d.unsigned("latency_ms", row.int("latency_ms")?)?,
        ttft_ms: d.opt_unsigned("ttft_ms", row.opt_int("ttft_ms")?)?,
        usage: d.usage(row)?,
        cost_micros: row.int("cost_micros")?,
        priced: row.flag("priced")?,
        outcome,
        error_kind: row.opt_text("error_kind")?,
        status: d.opt_unsigned("status", row.opt_small("status")?.map(i64::from))?,
        retry_after_ms: d.opt_unsigned("retry_after_ms", row.opt_int("retry_after_ms")?)?,
        request_id: request_id.into(),
    })
}

pub(super) fn read_spend(row: &impl ReadRow) -> Result<SpendRow, StoreError> {
    let group = row.text("grp")?;
    let d = Decoder { id: &group };
    let get = |col: &str| -> Result<u64, StoreError> { d.unsigned(col, row.int(col)?) };
    Ok(SpendRow {
        requests: get("requests")?,
        failed_requests: get("failed")?,
        attempts: get("attempts")?,
        input_tokens: get("input_tokens")?,
        output_tokens: get("output_tokens")?,
        cache_read_tokens: get("cache_read_tokens")?,
        cache_write_tokens: get("cache_write_tokens")?,
        reasoning_tokens: get("reasoning_tokens")?,
        cost_micros: row.int("cost_micros")?,
        group,
    })
}
