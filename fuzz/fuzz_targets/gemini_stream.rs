//! A Gemini `streamGenerateContent?alt=sse` body: `SseDecoder` (in reads of any size),
//! each `data` through `gemini::GeminiStreamDecoder` (stop at the first error; `finish`
//! when the body ends after a finish reason, as the provider does), then every stream encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::dialects::gemini::GeminiStreamDecoder;

mod common;

fuzz_target!(|data: &[u8]| {
    common::reencode(&common::sse_events(data, GeminiStreamDecoder::new("fuzz-model")));
});
