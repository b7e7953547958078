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
//! rusqlite opens the connection and runs its transactions; the inserts themselves are
//! prepared and bound through SQLite's C API ([`PreparedInsert`]), the one place in the
//! crate with `unsafe` code, because rusqlite always has SQLite copy bound text.
//!
//! Both drivers link the same SQLite library (libsqlite3-sys, which is why rusqlite's
//! version follows sqlx's). Migrations and reads stay on sqlx.

use std::ffi::c_int;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{ffi, Connection, OpenFlags, TransactionBehavior};

use super::entry::LedgerEntry;
use super::inserts::{statement_chunks, Insert, Placeholders, ATTEMPT_INSERT, REQUEST_INSERT, STATEMENT_SIZES};
use super::rows::{rows, AttemptRow, RequestRow, Value};
use super::store::StoreError;

/// The write connection. Shared by the store's clones; one batch at a time.
#[derive(Debug)]
pub(super) struct SqliteWriteConnection {
    /// `None` once closed.
    state: Mutex<Option<WriteState>>,
}

/// The connection and the inserts prepared on it.
#[derive(Debug)]
struct WriteState {
    // Declared first, so dropped first: a statement must be finalized before its
    // connection closes.
    requests: Statements,
    attempts: Statements,
    connection: Connection,
}

/// One table's insert, prepared once per statement size (by log2 of its rows).
type Statements = [Option<PreparedInsert>; STATEMENT_SIZES];

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
        // The ledger is billing data: FULL syncs every commit, once per batch.
        connection.pragma_update(None, "synchronous", "FULL")?;
        let mut state = WriteState { requests: Default::default(), attempts: Default::default(), connection };
        // Fail at start, not at the first request, if the statements do not fit the schema.
        statement(&state.connection, &mut state.requests, &REQUEST_INSERT, 1)?;
        statement(&state.connection, &mut state.attempts, &ATTEMPT_INSERT, 1)?;
        Ok(SqliteWriteConnection { state: Mutex::new(Some(state)) })
    }

    /// Writes every entry in one transaction. Blocks: call it from a blocking thread.
    pub(super) fn insert(&self, entries: &[LedgerEntry]) -> Result<(), StoreError> {
        let (requests, attempts) = rows(entries);
        // A panic while the lock was held left no transaction open: rusqlite rolls back
        // a transaction that is dropped unfinished.
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let WriteState { requests: request_inserts, attempts: attempt_inserts, connection } = guard.as_mut().ok_or(StoreError::Closed)?;
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert_rows(&transaction, request_inserts, &REQUEST_INSERT, &requests, RequestRow::values)?;
        insert_rows(&transaction, attempt_inserts, &ATTEMPT_INSERT, &attempts, AttemptRow::values)?;
        transaction.commit()?;
        Ok(())
    }

    /// Closes the connection; later inserts fail with [`StoreError::Closed`].
    pub(super) fn close(&self) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(WriteState { requests, attempts, connection }) = state {
            drop((requests, attempts));
            if let Err((_, error)) = connection.close() {
                tracing::warn!(%error, "closing the ledger's SQLite write connection failed");
            }
        }
    }
}

/// Sets SQLite's process-wide options, once, before the first connection opens (later
/// they cannot change): no memory-use statistics. SQLite counts every allocation it
/// makes under a global mutex for `sqlite3_status`, which nothing here reads; the
/// ledger's inserts allocate a few times per row.
pub(super) fn configure_process_once() {
    static CONFIGURED: std::sync::Once = std::sync::Once::new();
    CONFIGURED.call_once(|| {
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int. Called before SQLite is
        // initialized it applies; after (another part of the process opened a database
        // first) SQLite refuses it with SQLITE_MISUSE and nothing changes.
        let code = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int) };
        if code != ffi::SQLITE_OK {
            tracing::debug!(code, "SQLite was initialized already; its memory statistics stay on");
        }
    });
}

/// `insert`'s statement for `rows` rows (a size [`statement_chunks`] makes), prepared
/// on `connection` on first use and kept in `statements`.
fn statement<'s>(connection: &Connection, statements: &'s mut Statements, insert: &'static Insert, rows: usize) -> rusqlite::Result<&'s mut PreparedInsert> {
    let slot = &mut statements[rows.ilog2() as usize];
    if slot.is_none() {
        let sql = insert.sql(Placeholders::Positional, rows);
        // SAFETY: the connection is open, and `statements` lives beside it in a
        // `WriteState`, which drops (finalizes) statements before the connection.
        *slot = Some(unsafe { PreparedInsert::prepare(connection.handle(), sql, rows * insert.columns)? });
    }
    Ok(slot.as_mut().expect("prepared above"))
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
    statements: &mut Statements,
    insert: &'static Insert,
    rows: &'a [R],
    values: impl Fn(&'a R) -> [Value<'a>; N],
) -> rusqlite::Result<()> {
    for chunk in statement_chunks(rows) {
        statement(connection, statements, insert, chunk.len())?.execute(chunk.iter().flat_map(&values))?;
    }
    Ok(())
}

/// A prepared INSERT whose text values are bound in place. rusqlite's binding always
/// has SQLite copy a string into memory of its own (and free it when the statement is
/// reset); for the ledger's rows, a few dozen short strings each, that copying cost
/// about as many instructions as SQLite's insert itself. Here SQLite is told the text
/// is static (`SQLITE_STATIC`) and reads it where the entry holds it: sound because
/// [`PreparedInsert::execute`] binds, runs, resets and unbinds within one call, while
/// it borrows the values.
#[derive(Debug)]
struct PreparedInsert {
    statement: NonNull<ffi::sqlite3_stmt>,
    parameters: usize,
}

// SAFETY: a statement may move between threads with its connection (opened
// `SQLITE_OPEN_NO_MUTEX`, the multi-thread mode) as long as the two are never used
// from two threads at once; both live in one `WriteState`, used under a mutex.
unsafe impl Send for PreparedInsert {}

impl PreparedInsert {
    /// Prepares `sql`, which must take exactly `parameters` values.
    ///
    /// # Safety
    /// `db` is an open connection that outlives the returned statement.
    unsafe fn prepare(db: *mut ffi::sqlite3, sql: &str, parameters: usize) -> rusqlite::Result<PreparedInsert> {
        let length = c_int::try_from(sql.len()).map_err(|_| rusqlite::Error::InvalidQuery)?;
        let mut statement = std::ptr::null_mut();
        let code = ffi::sqlite3_prepare_v3(
            db,
            sql.as_ptr().cast(),
            length,
            ffi::SQLITE_PREPARE_PERSISTENT,
            &mut statement,
            std::ptr::null_mut(),
        );
        if code != ffi::SQLITE_OK {
            return Err(error(db, code));
        }
        let statement = NonNull::new(statement).ok_or(rusqlite::Error::InvalidQuery)?;
        let prepared = PreparedInsert { statement, parameters };
        let expected = ffi::sqlite3_bind_parameter_count(statement.as_ptr());
        if usize::try_from(expected) != Ok(parameters) {
            return Err(rusqlite::Error::InvalidParameterCount(usize::try_from(expected).unwrap_or(0), parameters));
        }
        Ok(prepared)
    }

    /// Binds `values` in order (exactly as many as the statement takes), runs the
    /// statement and resets it with nothing left bound.
    fn execute<'a>(&mut self, values: impl Iterator<Item = Value<'a>>) -> rusqlite::Result<()> {
        let statement = self.statement.as_ptr();
        // SAFETY: `statement` is a live prepared statement (finalized only on drop), used
        // by one thread at a time (`&mut self`). Text pointers handed to SQLite as static
        // point into `values`' borrows, which outlive this call, and the `reset` and
        // `clear_bindings` below drop every binding before the call returns.
        unsafe {
            let db = ffi::sqlite3_db_handle(statement);
            let result = bind_all(statement, self.parameters, values).and_then(|()| match ffi::sqlite3_step(statement) {
                ffi::SQLITE_DONE => Ok(()),
                code => Err(error(db, code)),
            });
            ffi::sqlite3_reset(statement);
            ffi::sqlite3_clear_bindings(statement);
            result
        }
    }
}

/// Binds `values` to `statement`'s parameters 1, 2, ...; they must be exactly
/// `parameters` many.
///
/// # Safety
/// `statement` is a live prepared statement, and the text in `values` stays where it
/// is until the statement's bindings are cleared.
unsafe fn bind_all<'a>(statement: *mut ffi::sqlite3_stmt, parameters: usize, values: impl Iterator<Item = Value<'a>>) -> rusqlite::Result<()> {
    let mut bound = 0;
    for value in values {
        bound += 1;
        let index = c_int::try_from(bound).map_err(|_| rusqlite::Error::InvalidParameterCount(bound, parameters))?;
        let code = match value {
            Value::Text(Some(text)) => {
                let length = c_int::try_from(text.len()).map_err(|_| rusqlite::Error::ToSqlConversionFailure("a ledger text value over 2 GiB".into()))?;
                // An empty `&str` may point anywhere; give SQLite a real address.
                let pointer = if text.is_empty() { c"".as_ptr() } else { text.as_ptr().cast() };
                ffi::sqlite3_bind_text(statement, index, pointer, length, ffi::SQLITE_STATIC())
            }
            Value::BigInt(Some(n)) => ffi::sqlite3_bind_int64(statement, index, n),
            Value::Int(Some(n)) => ffi::sqlite3_bind_int(statement, index, n),
            Value::Bool(Some(b)) => ffi::sqlite3_bind_int(statement, index, c_int::from(b)),
            Value::Text(None) | Value::BigInt(None) | Value::Int(None) | Value::Bool(None) => ffi::sqlite3_bind_null(statement, index),
        };
        if code != ffi::SQLITE_OK {
            return Err(error(ffi::sqlite3_db_handle(statement), code));
        }
    }
    if bound == parameters {
        Ok(())
    } else {
        Err(rusqlite::Error::InvalidParameterCount(bound, parameters))
    }
}

/// The connection's error for a failed call that returned `code`.
///
/// # Safety
/// `db` is an open connection.
#[cold]
unsafe fn error(db: *mut ffi::sqlite3, code: c_int) -> rusqlite::Error {
    let message = std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(db)).to_string_lossy().into_owned();
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message))
}

impl Drop for PreparedInsert {
    fn drop(&mut self) {
        // SAFETY: the statement is live and finalized once, here, before its connection
        // closes (see `WriteState`).
        unsafe {
            ffi::sqlite3_finalize(self.statement.as_ptr());
        }
    }
}
