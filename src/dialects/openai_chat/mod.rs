//! The OpenAI Chat Completions dialect (`POST /v1/chat/completions`).
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat>. Inbound types are
//! lenient (unknown fields are kept in `extra` and survive to OpenAI-dialect upstreams);
//! the same types serialize the exact outbound shape.

mod error;
mod request;
mod request_scan;
mod response;
mod stream;
mod summary;
mod wire;

pub use error::{error_body, parse_error_body, UpstreamErrorBody};
pub use request::{decode_request, encode_request, EncodeOptions, MaxTokensField};
pub use response::{decode_passthrough_response, decode_response, encode_response, finish_reason, stop_reason};
#[doc(hidden)]
pub use response::decode_passthrough_response_serde_only;
pub use stream::{ChunkDecoder, ChunkEncoder};
pub use wire::*;
