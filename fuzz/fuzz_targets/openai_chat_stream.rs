//! An OpenAI-dialect upstream's SSE body: `SseDecoder` (in reads of any size), each
//! `data` through `openai_chat::ChunkDecoder` the way the OpenAI provider does: stop at
//! the first error; `[DONE]` finishes; a body that ends after a finish reason is
//! finished, one that ends before it was cut. Then every stream encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::dialects::openai_chat::ChunkDecoder;

mod common;

fuzz_target!(|data: &[u8]| {
    common::reencode(&common::sse_events(data, ChunkDecoder::new()));
});
