//! `POST /v1/messages` (and `/v1/messages/count_tokens`) bodies:
//! `anthropic_messages::decode_request`, then every encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::dialects::anthropic_messages;

mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = anthropic_messages::decode_request(data) {
        common::encode_everywhere(&decoded);
    }
    if let Ok(decoded) = anthropic_messages::decode_count_tokens_request(data) {
        common::encode_everywhere(&decoded);
    }
});
