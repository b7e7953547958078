//! A ConverseStream body as raw bytes: `bedrock::eventstream::FrameDecoder` (in reads
//! of any size), each message through `StreamMessage::from_message`, events through
//! `bedrock_converse::ConverseStreamDecoder`, then every stream encoder.
//!
//! Random bytes rarely pass the frame CRCs; `bedrock_converse_stream` covers the
//! decoder behind well-formed frames.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let (step, body) = common::reads(data);
    common::reencode(&common::converse_events(step, body, false));
});
