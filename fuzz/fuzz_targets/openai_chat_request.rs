//! `POST /v1/chat/completions` bodies: `openai_chat::decode_request`, then every encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = switchyard::dialects::openai_chat::decode_request(data) {
        common::encode_everywhere(&decoded);
    }
});
