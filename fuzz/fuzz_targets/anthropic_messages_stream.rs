//! An Anthropic-dialect upstream's SSE body: `SseDecoder` (in reads of any size), each
//! `data` through `anthropic_messages::EventDecoder` (stop at the first error;
//! `finish` when the body ends after a stop reason, as the provider does), then every stream encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::dialects::anthropic_messages::EventDecoder;

mod common;

fuzz_target!(|data: &[u8]| {
    common::reencode(&common::sse_events(data, EventDecoder::new()));
});
