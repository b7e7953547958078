//! Switchyard: a self-hosted AI gateway.
//!
//! Requests arrive in a client's dialect at a front door, become canonical requests,
//! are routed across providers with failover, and are recorded in the ledger. See
//! `ARCHITECTURE.md` for the life of a request and the invariants the modules keep.

pub mod app;
pub mod body;
pub mod canonical;
pub mod config;
pub mod dialects;
pub mod error;
pub mod ledger;
pub mod pipeline;
pub mod providers;
pub mod routing;
pub mod telemetry;
