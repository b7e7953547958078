//! An OpenAI-dialect upstream's SSE body: `SseDecoder` (in reads of any size), each
//! `data` through `openai_chat::ChunkDecoder` the way a provider does (stop at the
//! first error; `finish` when the body ends), then every stream encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::dialects::openai_chat::ChunkDecoder;

mod common;

fuzz_target!(|data: &[u8]| {
    let (step, body) = common::reads(data);
    let mut decoder = ChunkDecoder::new();
    let mut events = Vec::new();
    for (_, payload) in common::sse_payloads(step, body) {
        match decoder.push(&payload) {
            Ok(more) => events.extend(more),
            Err(_) => break,
        }
        if decoder.is_done() {
            break;
        }
    }
    let _ = decoder.saw_finish_reason();
    events.extend(decoder.finish());
    common::reencode(&events);
});
