//! ConverseStream events behind valid frames: the input is a list of events separated
//! by `\n`, each `TYPE PAYLOAD` (the type a short name or a digit 0-7 for a known one).
//! Each is framed with `eventstream::encode_event` (so the CRCs pass), decoded back by
//! `FrameDecoder`, and fed to `bedrock_converse::ConverseStreamDecoder`; then every
//! stream encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::dialects::bedrock_converse::ConverseStreamDecoder;
use switchyard::providers::bedrock::eventstream::{encode_event, FrameDecoder, StreamMessage};

mod common;

const KNOWN: [&str; 8] = [
    "messageStart",
    "contentBlockStart",
    "contentBlockDelta",
    "contentBlockStop",
    "messageStop",
    "metadata",
    "internalServerException",
    "unknownEvent",
];

fuzz_target!(|data: &[u8]| {
    let (step, body) = common::reads(data);
    let mut wire = Vec::new();
    for line in body.split(|&b| b == b'\n') {
        let (name, payload) = match line.iter().position(|&b| b == b' ') {
            Some(at) => (&line[..at], &line[at + 1..]),
            None => (line, &[][..]),
        };
        let name = match name {
            [d] if d.is_ascii_digit() && ((d - b'0') as usize) < KNOWN.len() => KNOWN[(d - b'0') as usize].to_owned(),
            other => String::from_utf8_lossy(other).into_owned(),
        };
        if let Ok(frame) = encode_event(&name, payload) {
            wire.extend_from_slice(&frame);
        }
    }
    let step = step.max(1).min(wire.len().max(1));
    let mut frames = FrameDecoder::new();
    let mut decoder = ConverseStreamDecoder::new("fuzz-id", "fuzz-model");
    let mut events = Vec::new();
    let mut failed = false;
    'body: for read in wire.chunks(step) {
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
                    Ok(_) => {
                        failed = true;
                        break 'body;
                    }
                    // Frames made by encode_event always carry their headers.
                    Err(e) => panic!("a frame encode_event made did not decode: {e}"),
                },
                Ok(None) => break,
                Err(e) => panic!("frames encode_event made failed to decode: {e}"),
            }
        }
    }
    if !failed && !frames.has_partial() && !decoder.is_done() && decoder.saw_message_stop() {
        events.extend(decoder.finish());
    }
    common::reencode(&events);
});
