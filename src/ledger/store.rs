//! Where ledger rows live: SQLite (one file, the zero-setup default) or PostgreSQL
//! (shared by many gateway nodes), behind one [`LedgerStore`].
//!
//! Both backends use the same schema (times as unix milliseconds, money as integer
//! micro-dollars) and the same SQL; the only difference is the pool type, so every
//! query is written once and expanded per backend by `on_backend!`. Inserts are
//! idempotent (`ON CONFLICT DO NOTHING` on the request id and on the attempt's
//! (request id, index)), which is what lets the writer retry a batch without billing
//! anything twice. This module knows nothing about prices or about batching.

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

use super::entry::{AttemptRecord, LedgerEntry, RequestRecord};
use super::migrations::{self, Dialect};
use super::report::{SpendGroupBy, SpendRow};
use super::rows::{read_attempt, read_request, read_spend, AttemptRow, RequestRow};

/// How long a SQLite connection waits for a lock before giving up: the writer and
/// report readers share the file, and WAL makes waits short but not impossible.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows per INSERT statement. A batch is one transaction of several statements, and
/// the SQLite connection's thread hands control back between statements: short
/// statements keep each burst of its work short (about 0.25 ms at 32 rows) on a core
/// that also serves requests, while the commit is still paid once per batch. Also keeps
/// bind parameters (22 per request row) far below the databases' limits.
const ROWS_PER_STATEMENT: usize = 32;

/// Cuts `rows` into INSERT statements of a few fixed sizes: full statements of
/// [`ROWS_PER_STATEMENT`] rows, then the rest in powers of two (100 = 3 × 32 + 4).
/// With so few distinct statements, every one can stay prepared on the connection:
/// the batch pays for binding, not for parsing and planning a statement of a new shape,
/// and the cache of prepared statements cannot grow without bound.
fn statement_chunks<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = if rest.len() >= ROWS_PER_STATEMENT { ROWS_PER_STATEMENT } else { 1 << rest.len().ilog2() };
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

/// An INSERT of `rows` rows whose argument list is allocated once for all of its
/// values, not grown value by value as they are bound (hundreds per statement).
fn insert_query<'q, DB: sqlx::Database>(insert: &'static Insert, placeholders: Placeholders, rows: usize) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>
where
    DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    let mut arguments = DB::Arguments::default();
    sqlx::Arguments::reserve(&mut arguments, rows * insert.columns, 0);
    sqlx::query_with(insert.sql(placeholders, rows), arguments)
}

/// A failure to reach, migrate, write or read the ledger database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite:` nor `postgres://`. Only the scheme is echoed,
    /// because a PostgreSQL URL may carry a password.
    #[error("unsupported ledger database URL scheme {scheme:?}: expected sqlite://PATH, sqlite::memory: or postgres://...")]
    UnsupportedUrl { scheme: String },
    #[error("cannot open the ledger database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot migrate the ledger database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("ledger database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value cannot be turned back into a record (edited by hand, or
    /// written by a newer version).
    #[error("ledger row {id:?} is unreadable: {problem}")]
    Corrupt { id: String, problem: String },
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code against whichever pool the store holds. The body is expanded
/// once per backend, so sqlx's types are resolved separately for each.
macro_rules! on_backend {
    ($backend:expr, |$pool:ident| $body:expr) => {
        match $backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

/// The ledger database. Cheap to clone: it holds a connection pool.
#[derive(Debug, Clone)]
pub struct LedgerStore {
    backend: Backend,
}

impl LedgerStore {
    /// Opens (creating a SQLite file if missing) and migrates the database at `url`:
    /// `sqlite://path/to/file.db`, `sqlite::memory:` or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite(connect_sqlite(url).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(StoreError::Connect)?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(StoreError::Connect)?;
            Backend::Postgres(pool)
        } else {
            let scheme = url.split(':').next().unwrap_or_default().to_string();
            return Err(StoreError::UnsupportedUrl { scheme });
        };
        let store = LedgerStore { backend };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(pool) => {
                migrations::migrator(Dialect::Sqlite)
                    .await?
                    .run(pool)
                    .await?
            }
            Backend::Postgres(pool) => {
                migrations::migrator(Dialect::Postgres)
                    .await?
                    .run(pool)
                    .await?
            }
        }
        Ok(())
    }

    /// "sqlite" or "postgres", for logs and the readiness report.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool; later calls fail. For shutdown, after the writer has drained.
    pub async fn close(&self) {
        on_backend!(&self.backend, |pool| pool.close().await)
    }

    /// Writes every entry (request row and attempt rows) in one transaction. Rows
    /// already present are left as they are, so retrying a batch is harmless.
    pub async fn insert_batch(&self, entries: &[LedgerEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let requests: Vec<RequestRow<'_>> = entries.iter().map(RequestRow::from).collect();
        let attempts: Vec<AttemptRow<'_>> = entries
            .iter()
            .flat_map(|e| {
                e.attempts
                    .iter()
                    .map(move |a| AttemptRow::new(&e.request.id, a))
            })
            .collect();
        let placeholders = match self.backend {
            Backend::Sqlite(_) => Placeholders::Positional,
            Backend::Postgres(_) => Placeholders::Numbered,
        };
        on_backend!(&self.backend, |pool| {
            let mut tx = pool.begin().await?;
            for chunk in statement_chunks(&requests) {
                let mut insert = insert_query(&REQUEST_INSERT, placeholders, chunk.len());
                for r in chunk {
                    let [a, b, c, d, e] = r.tokens;
                    insert = insert
                        .bind(r.id)
                        .bind(r.started_at_ms)
                        .bind(r.route)
                        .bind(r.key_id)
                        .bind(r.front_door)
                        .bind(r.stream)
                        .bind(r.target)
                        .bind(r.provider)
                        .bind(r.provider_kind)
                        .bind(r.model)
                        .bind(a)
                        .bind(b)
                        .bind(c)
                        .bind(d)
                        .bind(e)
                        .bind(r.cost_micros)
                        .bind(r.latency_ms)
                        .bind(r.ttft_ms)
                        .bind(r.outcome)
                        .bind(r.status)
                        .bind(r.attempt_count)
                        .bind(r.failover_reason);
                }
                insert.execute(&mut *tx).await?;
            }
            for chunk in statement_chunks(&attempts) {
                let mut insert = insert_query(&ATTEMPT_INSERT, placeholders, chunk.len());
                for a in chunk {
                    let [t1, t2, t3, t4, t5] = a.tokens;
                    insert = insert
                        .bind(a.request_id)
                        .bind(a.index)
                        .bind(a.target)
                        .bind(a.provider)
                        .bind(a.provider_kind)
                        .bind(a.model)
                        .bind(a.started_at_ms)
                        .bind(a.latency_ms)
                        .bind(a.ttft_ms)
                        .bind(t1)
                        .bind(t2)
                        .bind(t3)
                        .bind(t4)
                        .bind(t5)
                        .bind(a.cost_micros)
                        .bind(a.priced)
                        .bind(a.outcome)
                        .bind(a.error_kind)
                        .bind(a.status)
                        .bind(a.retry_after_ms);
                }
                insert.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Requests that started at or after `since`, oldest first.
    pub async fn requests_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let sql =
            "SELECT * FROM ledger_requests WHERE started_at_ms >= $1 ORDER BY started_at_ms, id";
        on_backend!(&self.backend, |pool| {
            let rows = sqlx::query(sql)
                .bind(since.timestamp_millis())
                .fetch_all(pool)
                .await?;
            rows.iter().map(read_request).collect()
        })
    }

    /// The attempts of one request, in the order they were made.
    pub async fn attempts_for(&self, request_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let sql = "SELECT * FROM ledger_attempts WHERE request_id = $1 ORDER BY attempt_index";
        on_backend!(&self.backend, |pool| {
            let rows = sqlx::query(sql).bind(request_id).fetch_all(pool).await?;
            rows.iter().map(read_attempt).collect()
        })
    }

    /// How many requests the ledger holds.
    pub async fn count_requests(&self) -> Result<u64, StoreError> {
        let sql = "SELECT COUNT(*) AS n FROM ledger_requests";
        let n: i64 = on_backend!(&self.backend, |pool| {
            sqlx::query(sql).fetch_one(pool).await?.try_get("n")?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Spend per group since `since`, aggregated by the database. Unsorted.
    pub(crate) async fn spend_by(
        &self,
        group_by: SpendGroupBy,
        since: DateTime<Utc>,
    ) -> Result<Vec<SpendRow>, StoreError> {
        // The group expression comes from this closed match, never from user input.
        let group = match group_by {
            SpendGroupBy::Route => "route",
            SpendGroupBy::Key => "key_id",
            SpendGroupBy::Target => "COALESCE(target, '(none)')",
        };
        // SUM over BIGINT is NUMERIC in PostgreSQL; the casts keep both backends at i64.
        let sql = format!(
            "SELECT {group} AS grp, \
               COUNT(*) AS requests, \
               CAST(SUM(CASE WHEN outcome = 'success' THEN 0 ELSE 1 END) AS BIGINT) AS failed, \
               CAST(SUM(attempt_count) AS BIGINT) AS attempts, \
               CAST(SUM(input_tokens) AS BIGINT) AS input_tokens, \
               CAST(SUM(output_tokens) AS BIGINT) AS output_tokens, \
               CAST(SUM(cache_read_tokens) AS BIGINT) AS cache_read_tokens, \
               CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens, \
               CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens, \
               CAST(SUM(cost_micros) AS BIGINT) AS cost_micros \
             FROM ledger_requests WHERE started_at_ms >= $1 GROUP BY {group}"
        );
        on_backend!(&self.backend, |pool| {
            let rows = sqlx::query(&sql)
                .bind(since.timestamp_millis())
                .fetch_all(pool)
                .await?;
            rows.iter().map(read_spend).collect()
        })
    }
}

async fn connect_sqlite(url: &str) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(StoreError::Connect)?
        .create_if_missing(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        // The ledger is billing data: FULL syncs every commit, and batching keeps
        // that to one sync per batch.
        .synchronous(SqliteSynchronous::Full);
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if !in_memory {
        // `sqlite://data/ledger.db` should work on a fresh machine, as the file does.
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| StoreError::Connect(sqlx::Error::Io(e)))?;
            }
        }
    }
    let pool = if in_memory {
        // An in-memory database vanishes with its last connection, and the shared
        // cache sqlx gives it locks whole tables between connections, so use exactly
        // one connection that never expires.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
    } else {
        // WAL lets report readers run while the writer commits.
        SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.journal_mode(SqliteJournalMode::Wal))
            .await
    };
    pool.map_err(StoreError::Connect)
}

/// One table's multi-row INSERT, its text made once per statement size: a batch binds
/// values to statements it already has, instead of writing out hundreds of
/// placeholders per statement and having the driver hash the result to find it
/// prepared.
struct Insert {
    head: &'static str,
    columns: usize,
    tail: &'static str,
    /// By placeholder style, then by log2 of the row count (the sizes
    /// [`statement_chunks`] makes).
    texts: [[OnceLock<String>; STATEMENT_SIZES]; 2],
}

/// How a backend writes bind parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholders {
    /// `?`, bound in order (SQLite). SQLite also reads `$1`, but as a parameter *name*
    /// that binding looks up among all the statement's names, which for a 700-value
    /// statement costs more than the insert itself.
    Positional,
    /// `$1`, `$2`, ... (PostgreSQL).
    Numbered,
}

/// 1, 2, 4, ... [`ROWS_PER_STATEMENT`] rows.
const STATEMENT_SIZES: usize = ROWS_PER_STATEMENT.ilog2() as usize + 1;

impl Insert {
    const fn new(head: &'static str, columns: usize, tail: &'static str) -> Insert {
        Insert { head, columns, tail, texts: [const { [const { OnceLock::new() }; STATEMENT_SIZES] }; 2] }
    }

    /// The statement for `rows` rows, a power of two up to [`ROWS_PER_STATEMENT`].
    fn sql(&self, placeholders: Placeholders, rows: usize) -> &str {
        debug_assert!(rows.is_power_of_two() && rows <= ROWS_PER_STATEMENT);
        self.texts[placeholders as usize][rows.ilog2() as usize].get_or_init(|| {
            let mut sql = String::from(self.head);
            sql.push_str("VALUES ");
            for row in 0..rows {
                sql.push_str(if row == 0 { "(" } else { ", (" });
                for column in 0..self.columns {
                    let separator = if column == 0 { "" } else { ", " };
                    match placeholders {
                        Placeholders::Positional => {
                            sql.push_str(separator);
                            sql.push('?');
                        }
                        Placeholders::Numbered => sql.push_str(&format!("{separator}${}", row * self.columns + column + 1)),
                    }
                }
                sql.push(')');
            }
            sql.push_str(self.tail);
            sql
        })
    }
}

static REQUEST_INSERT: Insert = Insert::new(
    "INSERT INTO ledger_requests (id, started_at_ms, route, key_id, front_door, stream, target, \
     provider, provider_kind, model, input_tokens, output_tokens, cache_read_tokens, \
     cache_write_tokens, reasoning_tokens, cost_micros, latency_ms, ttft_ms, outcome, status, \
     attempt_count, failover_reason) ",
    22,
    " ON CONFLICT (id) DO NOTHING",
);

static ATTEMPT_INSERT: Insert = Insert::new(
    "INSERT INTO ledger_attempts (request_id, attempt_index, target, provider, provider_kind, \
     model, started_at_ms, latency_ms, ttft_ms, input_tokens, output_tokens, cache_read_tokens, \
     cache_write_tokens, reasoning_tokens, cost_micros, priced, outcome, error_kind, status, \
     retry_after_ms) ",
    20,
    " ON CONFLICT (request_id, attempt_index) DO NOTHING",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insert_statement_has_one_placeholder_per_value_in_the_backends_style() {
        let insert = Insert::new("INSERT INTO t (a, b) ", 2, " ON CONFLICT (a) DO NOTHING");
        let numbered = |rows| insert.sql(Placeholders::Numbered, rows);
        assert_eq!(numbered(1), "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT (a) DO NOTHING");
        assert_eq!(numbered(2), "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT (a) DO NOTHING");
        assert_eq!(insert.sql(Placeholders::Positional, 2), "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT (a) DO NOTHING");
        assert!(REQUEST_INSERT.sql(Placeholders::Numbered, ROWS_PER_STATEMENT).ends_with("$703, $704) ON CONFLICT (id) DO NOTHING"));
    }

    #[test]
    fn a_batch_is_cut_into_statements_of_few_distinct_sizes_keeping_every_row_once() {
        for n in [0, 1, 2, 3, 100, 255, 256, 257, 1000] {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = statement_chunks(&rows).collect();
            assert_eq!(chunks.concat(), rows, "{n} rows");
            assert!(
                chunks.iter().all(|c| c.len() == ROWS_PER_STATEMENT || c.len().is_power_of_two()),
                "{n} rows: sizes {:?}",
                chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
            );
        }
        let sizes: Vec<usize> = statement_chunks(&[0; 100]).map(<[i32]>::len).collect();
        assert_eq!(sizes, [32, 32, 32, 4]);
    }
}
