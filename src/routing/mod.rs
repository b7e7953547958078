//! Routing: which targets a request tries, in what order, and when to give up.
//!
//! The failover engine takes an attempt closure and knows nothing of HTTP or wire
//! formats: it only reads the classification adapters put on each failure.

mod failover;

pub use failover::{backoff_delay, run, AttemptLog, Failover, Stop};
