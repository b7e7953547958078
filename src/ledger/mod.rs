//! The ledger: an append-only record of every request and every upstream attempt made
//! for it (route, target, key, tokens, cost, latency, outcome, failover reason), and
//! what turns that record into money and reports.
//!
//! - `entry`: the rows as Rust values ([`LedgerEntry`], [`RequestRecord`],
//!   [`AttemptRecord`]).
//! - `prices`: the effective-dated [`PriceCatalog`] and integer cost arithmetic.
//! - `store`: [`LedgerStore`], SQLite or PostgreSQL, idempotent batch inserts;
//!   `rows` maps records to columns and back for it; `sqlite_write` is SQLite's
//!   write connection.
//! - `writer`: the batched background [`LedgerWriter`] and the request path's
//!   [`LedgerHandle`].
//! - `report`: [`SpendReport`] aggregation and rendering.
//!
//! The ledger depends only on `canonical` (for [`Usage`](crate::canonical::Usage)):
//! it knows nothing about HTTP, dialects, providers or routing. The pipeline decides
//! what an entry says; the ledger stores it without second-guessing it.

mod entry;
mod inserts;
mod migrations;
pub mod prices;
pub mod report;
mod rows;
mod sqlite_write;
mod store;
mod writer;

pub use entry::{AttemptOutcome, AttemptRecord, LedgerEntry, Outcome, RequestRecord};
pub use prices::{cost_micros, Price, PriceCatalog, PriceError, PriceRow};
pub use report::{
    format_usd, parse_since, parse_since_at, ReportFormat, SpendGroupBy, SpendReport, SpendRow,
};
pub use store::{LedgerStore, StoreError};
pub use writer::{FlushError, LedgerHandle, LedgerWriter, WriterConfig, DEFAULT_BATCH_SIZE};
