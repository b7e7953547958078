//! The SQLite ledger's write connection: rusqlite on one connection of its own, used
//! from a blocking thread, one transaction per batch.
//!
//! Why not sqlx, which the store uses for everything else: sqlx runs each SQLite
//! statement on its connection's worker thread, copies every bound value into owned
//! arguments to send it there, and clears and frees them twice per statement. For the
//! ledger's inserts, the hottest statements the gateway runs (one request row and one
//! row per attempt for every request it serves), that driver work cost more CPU than
//! SQLite's own (BENCHMARKS.md). Here each row binds its values straight from the entry
//! to a prepared statement, and the batch crosses to another thread once.
//!
//! Both drivers link the same SQLite library (libsqlite3-sys, which is why rusqlite's
//! version follows sqlx's). Migrations and reads stay on sqlx.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{params_from_iter, Connection, OpenFlags, TransactionBehavior};

use super::entry::LedgerEntry;
use super::inserts::{statement_chunks, Insert, Placeholders, ATTEMPT_INSERT, REQUEST_INSERT, STATEMENT_SIZES};
use super::rows::{AttemptRow, RequestRow, Value};
use super::store::StoreError;

/// The write connection. Shared by the store's clones; one batch at a time.
#[derive(Debug)]
pub(super) struct SqliteWriteConnection {
    /// `None` once closed.
    connection: Mutex<Option<Connection>>,
}

/// Where the write connection opens the database sqlx already opened.
pub(super) struct SqliteTarget {
    pub(super) filename: PathBuf,
    /// sqlx names an in-memory database `file:sqlx-in-memory-N` and shares it between
    /// connections through SQLite's shared cache; the write connection joins it the
    /// same way.
    pub(super) in_memory: bool,
    pub(super) busy_timeout: Duration,
}

impl SqliteWriteConnection {
    /// Opens the connection. The database must exist and be migrated: the insert
    /// statements are prepared against its tables.
    pub(super) fn open(target: &SqliteTarget) -> rusqlite::Result<Self> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if target.in_memory {
            flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        let connection = Connection::open_with_flags(&target.filename, flags)?;
        connection.busy_timeout(target.busy_timeout)?;
        // Room for every statement shape both inserts use, so none is ever re-prepared.
        connection.set_prepared_statement_cache_capacity(2 * STATEMENT_SIZES);
        // The ledger is billing data: FULL syncs every commit, once per batch.
        connection.pragma_update(None, "synchronous", "FULL")?;
        // Fail at start, not at the first request, if the statements do not fit the schema.
        connection.prepare_cached(REQUEST_INSERT.sql(Placeholders::Positional, 1))?;
        connection.prepare_cached(ATTEMPT_INSERT.sql(Placeholders::Positional, 1))?;
        Ok(SqliteWriteConnection { connection: Mutex::new(Some(connection)) })
    }

    /// Writes every entry in one transaction. Blocks: call it from a blocking thread.
    pub(super) fn insert(&self, entries: &[LedgerEntry]) -> Result<(), StoreError> {
        let requests: Vec<RequestRow<'_>> = entries.iter().map(RequestRow::from).collect();
        let attempts: Vec<AttemptRow<'_>> = entries
            .iter()
            .flat_map(|e| e.attempts.iter().map(move |a| AttemptRow::new(&e.request.id, a)))
            .collect();
        // A panic while the lock was held left no transaction open: rusqlite rolls back
        // a transaction that is dropped unfinished.
        let mut guard = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        let connection = guard.as_mut().ok_or(StoreError::Closed)?;
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert_rows(&transaction, &REQUEST_INSERT, &requests, RequestRow::values)?;
        insert_rows(&transaction, &ATTEMPT_INSERT, &attempts, AttemptRow::values)?;
        transaction.commit()?;
        Ok(())
    }

    /// Closes the connection; later inserts fail with [`StoreError::Closed`].
    pub(super) fn close(&self) {
        let connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(Err((_, error))) = connection.map(Connection::close) {
            tracing::warn!(%error, "closing the ledger's SQLite write connection failed");
        }
    }
}

/// Inserts `rows` with multi-row statements of a few sizes, each prepared once per
/// connection: one statement of 32 rows costs SQLite much less than 32 of one row.
///
/// The batch runs without pause. Offering the CPU to other threads after each
/// statement (`sched_yield`) was tried: on a core saturated with requests the writer
/// then got too little of it, fell behind traffic, and its queue grew by hundreds of
/// MiB. A request that arrives during a batch can still preempt it (the kernel favours
/// a waking thread over one that has been running); fixed-load latency runs could not
/// tell the two versions apart.
fn insert_rows<'a, R, const N: usize>(
    connection: &Connection,
    insert: &'static Insert,
    rows: &[R],
    values: impl Fn(&R) -> [Value<'a>; N],
) -> rusqlite::Result<()> {
    for chunk in statement_chunks(rows) {
        let mut statement = connection.prepare_cached(insert.sql(Placeholders::Positional, chunk.len()))?;
        statement.execute(params_from_iter(chunk.iter().flat_map(&values)))?;
    }
    Ok(())
}
