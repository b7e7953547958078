//! Converse request bodies: JSON into `ConverseRequest`, `bedrock_converse::decode_request`,
//! then every encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::dialects::bedrock_converse;

mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(wire) = serde_json::from_slice::<bedrock_converse::ConverseRequest>(data) else { return };
    for stream in [false, true] {
        if let Ok(request) = bedrock_converse::decode_request(wire.clone(), "fuzz-model", stream) {
            common::encode_everywhere(&request);
        }
    }
});
