//! An Anthropic-dialect upstream's SSE body: `SseDecoder` (in reads of any size), each
//! `data` through `anthropic_messages::EventDecoder` (stop at the first error;
//! `finish` when the body ends after a stop reason, as the provider does), then every stream encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::dialects::anthropic_messages::EventDecoder;

mod common;

fuzz_target!(|data: &[u8]| {
    let (step, body) = common::reads(data);
    let mut decoder = EventDecoder::new();
    let mut events = Vec::new();
    let mut failed = false;
    for (_, payload) in common::sse_payloads(step, body) {
        match decoder.push(&payload) {
            Ok(more) => events.extend(more),
            Err(_) => {
                failed = true;
                break;
            }
        }
        if decoder.is_done() {
            break;
        }
    }
    // As the provider does at the end of the body: complete after a stop reason, cut before.
    if !failed && !decoder.is_done() && decoder.saw_stop_reason() {
        events.extend(decoder.finish());
    }
    common::reencode(&events);
});
