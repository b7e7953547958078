//! The AWS Bedrock Converse dialect (`POST /model/{modelId}/converse` and
//! `/converse-stream`).
//!
//! Reference: <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>.
//! The Bedrock provider uses it to talk to Bedrock; the decode-request direction is here
//! for property tests and a future Converse front door. Like every dialect it imports
//! only `canonical`: the eventstream framing and SigV4 signing live in the provider.

mod request;
mod response;
mod stream;
mod wire;

pub use request::{decode_request, encode_request};
pub use response::{converse_stop_reason, decode_response, encode_response, stop_reason, usage_from_wire, usage_to_wire, ResponseContext};
pub use stream::{ConverseStreamDecoder, ConverseStreamEncoder};
pub use wire::*;
