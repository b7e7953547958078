//! Routing: which targets a request tries, in what order, and when to give up.
//!
//! The failover engine takes an attempt closure and knows nothing of HTTP or wire
//! formats: it only reads the classification adapters put on each failure.

mod failover;
mod health;
mod plan;
mod window;

pub use failover::{backoff_delay, run, AttemptLog, AttemptResult, Options, Stop};
pub use health::{AttemptGuard, AttemptReport, Availability, Circuit, Health, TargetHealth, TargetHealthView};
pub use plan::{plan, Plan, PlanContext, Skipped, ShareTracker};
