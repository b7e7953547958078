//! ConverseStream events behind valid frames: the input is a list of events separated
//! by `\n`, each `TYPE PAYLOAD` (the type a short name or a digit 0-7 for a known one).
//! Each is framed with `eventstream::encode_event` (so the CRCs pass), decoded back by
//! `FrameDecoder`, and fed to `bedrock_converse::ConverseStreamDecoder`; then every
//! stream encoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::providers::bedrock::eventstream::encode_event;

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
    let events = common::converse_events(step, &wire, true);
    common::reencode(&events);
});
