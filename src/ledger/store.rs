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
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

use super::entry::{AttemptRecord, LedgerEntry, RequestRecord};
use super::migrations::{self, Dialect};
use super::report::{SpendGroupBy, SpendRow};
use super::inserts::{statement_chunks, Insert, Placeholders, ATTEMPT_INSERT, REQUEST_INSERT};
use super::rows::{read_attempt, read_request, read_spend, rows, AttemptRow, RequestRow, Value};
use super::sqlite_write::{SqliteTarget, SqliteWriteConnection};

/// How long a SQLite connection waits for a lock before giving up: the writer and
/// report readers share the file, and WAL makes waits short but not impossible.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL INSERT of `rows` rows bound to `values`, in order. Its argument list
/// is allocated once for all of its values, not grown value by value as they are bound
/// (hundreds per statement). SQLite's inserts are in `sqlite_write`.
fn postgres_insert<'q>(
    insert: &'static Insert,
    rows: usize,
    values: impl Iterator<Item = Value<'q>>,
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    let mut arguments = PgArguments::default();
    sqlx::Arguments::reserve(&mut arguments, rows * insert.columns, 0);
    let mut query = sqlx::query_with(insert.sql(Placeholders::Numbered, rows), arguments);
    for value in values {
        query = match value {
            Value::Text(text) => query.bind(text),
            Value::BigInt(n) => query.bind(n),
            Value::Int(n) => query.bind(n),
            Value::Bool(b) => query.bind(b),
        };
    }
    query
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
    #[error("ledger database error: {0}")]
    SqliteWrite(#[from] rusqlite::Error),
    #[error("the ledger database is closed")]
    Closed,
    /// The blocking thread that writes a SQLite batch panicked or was cancelled.
    #[error("the ledger's SQLite write failed: {0}")]
    WriteTask(String),
    /// A stored value cannot be turned back into a record (edited by hand, or
    /// written by a newer version).
    #[error("ledger row {id:?} is unreadable: {problem}")]
    Corrupt { id: String, problem: String },
}

#[derive(Debug, Clone)]
enum Backend {
    /// sqlx for migrations and reads; the ledger's inserts go through a connection of
    /// their own (`sqlite_write`), where they cost far less CPU.
    Sqlite { pool: SqlitePool, writes: Arc<SqliteWriteConnection> },
    Postgres(PgPool),
}

/// Runs the same code against whichever pool the store holds. The body is expanded
/// once per backend, so sqlx's types are resolved separately for each.
macro_rules! on_backend {
    ($backend:expr, |$pool:ident| $body:expr) => {
        match $backend {
            Backend::Sqlite { pool: $pool, .. } => $body,
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
            let (pool, target) = connect_sqlite(url).await?;
            migrations::migrator(Dialect::Sqlite).await?.run(&pool).await?;
            let writes = open_sqlite_writes(target).await?;
            Backend::Sqlite { pool, writes: Arc::new(writes) }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(StoreError::Connect)?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(StoreError::Connect)?;
            migrations::migrator(Dialect::Postgres).await?.run(&pool).await?;
            Backend::Postgres(pool)
        } else {
            let scheme = url.split(':').next().unwrap_or_default().to_string();
            return Err(StoreError::UnsupportedUrl { scheme });
        };
        Ok(LedgerStore { backend })
    }

    /// "sqlite" or "postgres", for logs and the readiness report.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool; later calls fail. For shutdown, after the writer has drained.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { pool, writes } => {
                let writes = Arc::clone(writes);
                // Closing may finish a WAL checkpoint: file I/O, off the async threads.
                let _ = tokio::task::spawn_blocking(move || writes.close()).await;
                pool.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// Writes every entry (request row and attempt rows) in one transaction. Rows
    /// already present are left as they are, so retrying a batch is harmless. Shared,
    /// not borrowed: SQLite writes it from a blocking thread, and a retry reuses it.
    pub async fn insert_batch(&self, entries: impl Into<Arc<Vec<LedgerEntry>>>) -> Result<(), StoreError> {
        let entries: Arc<Vec<LedgerEntry>> = entries.into();
        if entries.is_empty() {
            return Ok(());
        }
        match &self.backend {
            Backend::Sqlite { writes, .. } => {
                let writes = Arc::clone(writes);
                tokio::task::spawn_blocking(move || writes.insert(&entries))
                    .await
                    .map_err(|e| StoreError::WriteTask(e.to_string()))??;
            }
            Backend::Postgres(pool) => {
                let (requests, attempts) = rows(&entries);
                let mut tx = pool.begin().await?;
                for chunk in statement_chunks(&requests) {
                    let values = chunk.iter().flat_map(RequestRow::values);
                    postgres_insert(&REQUEST_INSERT, chunk.len(), values).execute(&mut *tx).await?;
                }
                for chunk in statement_chunks(&attempts) {
                    let values = chunk.iter().flat_map(AttemptRow::values);
                    postgres_insert(&ATTEMPT_INSERT, chunk.len(), values).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Requests that started at or after `since`, oldest first.
    pub async fn requests_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let sql = "SELECT * FROM ledger_requests WHERE id >= $2 AND started_at_ms >= $1 \
                   ORDER BY started_at_ms, id";
        on_backend!(&self.backend, |pool| {
            let rows = sqlx::query(sql)
                .bind(since.timestamp_millis())
                .bind(lowest_id_since(since))
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
             FROM ledger_requests WHERE id >= $2 AND started_at_ms >= $1 GROUP BY {group}"
        );
        on_backend!(&self.backend, |pool| {
            let rows = sqlx::query(&sql)
                .bind(since.timestamp_millis())
                .bind(lowest_id_since(since))
                .fetch_all(pool)
                .await?;
            rows.iter().map(read_spend).collect()
        })
    }
}

/// How far before a request's start its id's time may lie. The id is read from the
/// clock a moment before the start time is; the margin covers that and any clock
/// adjustment in between with room to spare.
const ID_CLOCK_MARGIN: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// A lower bound for the id of every request that started at or after `since`, so
/// that queries by start time can walk the primary key: SQLite keeps no index on the
/// start time (migration 0005), because its upkeep cost every insert more than the
/// rare report gains from it.
///
/// Request ids are uuid v7 strings (`RequestRecord::id`), made as the request
/// arrives; their text sorts by the millisecond they were made, and the smallest
/// uuid v7 of a millisecond has every bit after the time (but version and variant)
/// zero.
fn lowest_id_since(since: DateTime<Utc>) -> String {
    let millis = u64::try_from((since - ID_CLOCK_MARGIN).timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid().hyphenated().to_string()
}

/// Opens the sqlx pool, for migrations and reads, and says where the write connection
/// will find the same database.
async fn connect_sqlite(url: &str) -> Result<(SqlitePool, SqliteTarget), StoreError> {
    let mut options = SqliteConnectOptions::from_str(url)
        .map_err(StoreError::Connect)?
        .create_if_missing(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        // The ledger is billing data: FULL syncs every commit, and batching keeps
        // that to one sync per batch.
        .synchronous(SqliteSynchronous::Full);
    let in_memory = is_in_memory(url);
    if in_memory {
        // The write connection joins the database by name through the shared cache,
        // so an in-memory database needs both (`sqlite::memory:` has them already).
        if options.get_filename().as_os_str().is_empty() {
            let n = ANONYMOUS_MEMORY_DATABASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            options = options.filename(format!("file:switchyard-ledger-{}-{n}", std::process::id()));
        }
        options = options.shared_cache(true);
    } else {
        // `sqlite://data/ledger.db` should work on a fresh machine, as the file does.
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| StoreError::Connect(sqlx::Error::Io(e)))?;
            }
        }
        // WAL lets report readers run while the writer commits.
        options = options.journal_mode(SqliteJournalMode::Wal);
    }
    super::sqlite_write::configure_process_once();
    let pool = if in_memory {
        // An in-memory database vanishes with its last connection, and the shared
        // cache locks whole tables between connections, so use exactly one connection
        // (besides the write connection) that never expires.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
    } else {
        SqlitePoolOptions::new().max_connections(4).connect_with(options.clone()).await
    };
    let target = SqliteTarget {
        filename: options.get_filename().to_path_buf(),
        in_memory,
        busy_timeout: SQLITE_BUSY_TIMEOUT,
    };
    Ok((pool.map_err(StoreError::Connect)?, target))
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Names for in-memory databases whose URL gave none.
static ANONYMOUS_MEMORY_DATABASES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Opens the write connection on a blocking thread (opening a file is blocking I/O).
async fn open_sqlite_writes(target: SqliteTarget) -> Result<SqliteWriteConnection, StoreError> {
    tokio::task::spawn_blocking(move || SqliteWriteConnection::open(&target))
        .await
        .map_err(|e| StoreError::WriteTask(e.to_string()))?
        .map_err(StoreError::SqliteWrite)
}
