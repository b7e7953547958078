//! The Anthropic Messages dialect (`POST /v1/messages`, `POST /v1/messages/count_tokens`),
//! spoken by the Claude API and, with the model moved to the URL, by Claude on Vertex AI
//! and Bedrock.
//!
//! Reference: <https://platform.claude.com/docs/en/api/messages>. Inbound types are
//! lenient (unknown fields are kept in `extra` and survive to Anthropic-dialect
//! upstreams); the same types serialize the exact outbound shape. Like every dialect,
//! this module imports only `canonical`, never providers, routing or HTTP plumbing.
//!
//! Layout: `wire` and `wire_response` (serde types), `content` (one block ↔ one
//! canonical part), `request` (decoding and validation), `encode` (canonical →
//! Anthropic), `response`, `stream` (decoding), `stream_encoder` and `error`.

#[macro_use]
mod macros;

mod content;
mod encode;
mod error;
mod request;
mod response;
mod stream;
mod stream_encoder;
mod wire;
mod wire_response;

pub use encode::{
    encode_count_tokens_request, encode_request, EncodeOptions, Platform, ANTHROPIC_VERSION, BEDROCK_ANTHROPIC_VERSION,
    DEFAULT_MAX_TOKENS, VERTEX_ANTHROPIC_VERSION,
};
pub use error::{classify, error_body, error_type, parse_error_body, status_for_error_type, ErrorClass, UpstreamErrorBody};
pub use request::{decode_count_tokens_request, decode_request, RESPONSE_FORMAT_NAME};
pub use response::{decode_passthrough_response, decode_response, encode_response, new_message_id, stop_reason, stop_reason_name, usage_from_wire, usage_to_wire};
pub use stream::{EventDecoder, StreamError};
pub use stream_encoder::EventEncoder;
pub use wire::*;
pub use wire_response::*;
