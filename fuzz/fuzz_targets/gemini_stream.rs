//! A Gemini `streamGenerateContent?alt=sse` body: `SseDecoder` (in reads of any size),
//! each `data` through `gemini::GeminiStreamDecoder` (stop at the first error; `finish`
//! when the body ends after a finish reason, as the provider does), then every stream encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::dialects::gemini::GeminiStreamDecoder;

mod common;

fuzz_target!(|data: &[u8]| {
    let (step, body) = common::reads(data);
    let mut decoder = GeminiStreamDecoder::new("fuzz-model");
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
    // As the provider does at the end of the body: complete after a finish reason, cut before.
    if !failed && !decoder.is_done() && decoder.saw_finish_reason() {
        events.extend(decoder.finish());
    }
    common::reencode(&events);
});
