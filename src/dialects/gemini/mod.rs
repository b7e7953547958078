//! The Gemini dialect: `generateContent` and `streamGenerateContent`, as the Gemini API
//! (`generativelanguage.googleapis.com/v1beta`) and Vertex AI (`aiplatform.googleapis.com/v1`)
//! both speak it.
//!
//! Reference: <https://ai.google.dev/api/generate-content>. The Gemini provider uses this
//! module to talk to Google; the decode-request and encode-answer directions are here for
//! property tests and a future Gemini front door. Like every dialect it imports only
//! `canonical`: URLs, authentication and error classification live in the provider.
//!
//! Three Gemini habits shape the conversions:
//! - **Tool calls are matched by name.** A `functionResponse` names the function it
//!   answers; ids are optional and often absent. Answers get synthesized ids
//!   ([`tool_call_id`]), and a canonical tool result is sent under the name of the call
//!   with its id found earlier in the conversation.
//! - **Reasoning state rides on parts.** A `thoughtSignature` can sit on any part (a
//!   function call, a text part), not only on thought parts; it is carried as a
//!   canonical thinking part with empty text just before the part it belongs to.
//! - **Usage is counted differently** (see [`usage_from_wire`]).

mod request;
mod response;
mod stream;
mod wire;

pub use request::{decode_request, encode_request, EncodeOptions, GeminiSurface, SKIP_THOUGHT_SIGNATURE};
pub use response::{
    decode_response, encode_response, error_body, error_reason, finish_reason, is_policy_block, parse_error_body,
    retry_delay, stop_reason, tool_call_id, usage_from_wire, usage_to_wire, AnswerError, ResponseContext,
};
pub use stream::{GeminiStreamDecoder, GeminiStreamEncoder};
pub use wire::*;
