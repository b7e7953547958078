//! An OpenAI-dialect upstream's SSE body: `SseDecoder` (in reads of any size), each
//! `data` through `openai_chat::ChunkDecoder` the way the OpenAI provider does: stop at
//! the first error; `[DONE]` finishes; a body that ends after a finish reason is
//! finished, one that ends before it was cut. Then every stream encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::dialects::openai_chat::ChunkDecoder;

mod common;

fuzz_target!(|data: &[u8]| {
    let (step, body) = common::reads(data);
    let mut decoder = ChunkDecoder::new();
    let mut events = Vec::new();
    let mut failed = false;
    for (_, payload) in common::sse_payloads(step, body) {
        if payload.trim() == "[DONE]" {
            events.extend(decoder.finish());
            break;
        }
        match decoder.push(&payload) {
            Ok(more) => events.extend(more),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if !failed && !decoder.is_done() && decoder.saw_finish_reason() {
        events.extend(decoder.finish());
    }
    common::reencode(&events);
});
