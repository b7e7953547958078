//! A ConverseStream body as raw bytes: `bedrock::eventstream::FrameDecoder` (in reads
//! of any size), each message through `StreamMessage::from_message`, events through
//! `bedrock_converse::ConverseStreamDecoder`, then every stream encoder.
//!
//! Random bytes rarely pass the frame CRCs; `bedrock_converse_stream` covers the
//! decoder behind well-formed frames.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::dialects::bedrock_converse::ConverseStreamDecoder;
use switchyard::providers::bedrock::eventstream::{FrameDecoder, StreamMessage};

mod common;

fuzz_target!(|data: &[u8]| {
    let (step, body) = common::reads(data);
    let step = step.max(1).min(body.len().max(1));
    let mut frames = FrameDecoder::new();
    let mut decoder = ConverseStreamDecoder::new("fuzz-id", "fuzz-model");
    let mut events = Vec::new();
    let mut failed = false;
    'body: for read in body.chunks(step) {
        frames.push(read);
        loop {
            match frames.next_message() {
                Ok(Some(message)) => match StreamMessage::from_message(message) {
                    Ok(StreamMessage::Event { event_type, payload }) => match decoder.push(&event_type, &payload) {
                        Ok(more) => {
                            events.extend(more);
                            if decoder.is_done() {
                                break 'body;
                            }
                        }
                        Err(_) => {
                            failed = true;
                            break 'body;
                        }
                    },
                    Ok(_) | Err(_) => {
                        failed = true;
                        break 'body;
                    }
                },
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break 'body;
                }
            }
        }
    }
    // As the provider does at the end of the body: complete after messageStop, cut
    // before it or inside a frame.
    if !failed && !frames.has_partial() && !decoder.is_done() && decoder.saw_message_stop() {
        events.extend(decoder.finish());
    }
    common::reencode(&events);
});
