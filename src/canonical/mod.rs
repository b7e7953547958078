//! The hub every dialect and provider meets in: one request, one response and one
//! stream-event vocabulary that can express what any supported wire format expresses.
//!
//! Front doors decode their dialect into these types, provider adapters encode them
//! into their upstream's dialect, and the way back mirrors that. Nothing in here knows
//! about HTTP, configuration or any particular vendor: this module imports nothing else
//! from the crate, so it can never become the place where two dialects leak into
//! each other.

mod error;
mod request;
mod response;
mod stream;
mod usage;

pub use error::*;
pub use request::*;
pub use response::*;
pub use stream::*;
pub use usage::*;
