//! Gemini `generateContent` request bodies: JSON into `GeminiRequest`,
//! `gemini::decode_request`, then every encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::dialects::gemini;

mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(wire) = serde_json::from_slice::<gemini::GeminiRequest>(data) else { return };
    for stream in [false, true] {
        if let Ok(request) = gemini::decode_request(wire.clone(), "fuzz-model", stream) {
            common::encode_everywhere(&request);
        }
    }
});
