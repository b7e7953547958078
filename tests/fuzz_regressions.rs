//! Inputs found by the fuzz targets in `fuzz/` (see `docs/fuzzing.md`), kept as plain
//! tests so they run with the suite, without a fuzzer.
//!
//! The default targets (panics, overflows, runaway memory, hangs) have found nothing so
//! far. The tests below come from the opt-in round-trip check
//! (`SWITCHYARD_FUZZ_ROUNDTRIP=1`): a request the gateway accepts from a client,
//! encoded for an upstream dialect, must be a request that dialect's own decoder
//! accepts (or the encoder must refuse it). Each names where it was fixed.

use switchyard::dialects::{anthropic_messages, bedrock_converse, gemini, openai_chat};

/// A Gemini turn without `parts` is accepted (`parts` defaults to empty), but the
/// canonical request it becomes encodes back to `"contents": []`, which the same
/// decoder refuses ("'contents' must contain at least one turn"); for an OpenAI or
/// Converse upstream it becomes `"messages": []`. Found by `gemini_request`:
/// `{"contents": [{"role": "user", "p!rts": [{"text": "Hello"}]}]}`.
/// Where: `dialects::gemini::decode_request` (src/dialects/gemini/request.rs) accepts a
/// turn with no parts; the Gemini API refuses one.
#[test]
fn gemini_turn_without_parts_survives_a_round_trip() {
    let wire: gemini::GeminiRequest = serde_json::from_str(r#"{"contents": [{"role": "user"}]}"#).unwrap();
    let Ok(request) = gemini::decode_request(wire, "gemini-2.5-flash", false) else {
        return; // refusing it at the front door is one fix
    };
    let options = gemini::EncodeOptions { surface: gemini::GeminiSurface::VertexAi };
    let Ok(encoded) = gemini::encode_request(&request, options) else {
        return; // refusing it in the encoder is the other
    };
    let body = serde_json::to_vec(&encoded).unwrap();
    let again: gemini::GeminiRequest = serde_json::from_slice(&body).unwrap();
    let result = gemini::decode_request(again, "gemini-2.5-flash", false);
    assert!(result.is_ok(), "accepted, then re-encoded as {} which is refused: {result:?}", String::from_utf8_lossy(&body));
}

/// An OpenAI request whose only message is a system (or developer) message is accepted;
/// the canonical request has no messages, so the Converse encoder writes
/// `"messages": []`, which Converse (and `bedrock_converse::decode_request`) refuses.
/// The OpenAI encoder is fine (system-only is valid OpenAI). Found by
/// `openai_chat_request`.
/// Where: `dialects::bedrock_converse::encode_request`
/// (src/dialects/bedrock_converse/request.rs) should refuse (an `Err`, so routing can
/// skip the target) or the request needs a user turn.
#[test]
fn system_only_openai_request_is_not_sent_to_converse_as_empty_messages() {
    let decoded = openai_chat::decode_request(br#"{"model": "chat", "messages": [{"role": "system", "content": "Rules"}]}"#)
        .expect("OpenAI accepts a system-only conversation");
    let Ok(encoded) = bedrock_converse::encode_request(&decoded.request) else {
        return;
    };
    let body = serde_json::to_vec(&encoded).unwrap();
    let again: bedrock_converse::ConverseRequest = serde_json::from_slice(&body).unwrap();
    let result = bedrock_converse::decode_request(again, "anthropic.claude-haiku-4-5", false);
    assert!(result.is_ok(), "encoded for Converse as {} which is refused: {result:?}", String::from_utf8_lossy(&body));
}

/// `top_p` above 1 is accepted by the OpenAI, Converse and Gemini decoders and passed
/// through unchanged by the Anthropic encoder (which clamps `temperature` to 1 but not
/// `top_p`), so an Anthropic upstream answers 400; `anthropic_messages::decode_request`
/// itself refuses it ("'top_p' must be between 0 and 1."). Found by
/// `openai_chat_request` and `bedrock_converse_request` (`"top_p": 1.9`, `"topP": 5.9`).
/// Where: the decoders in src/dialects/{openai_chat,bedrock_converse,gemini}/request.rs
/// (OpenAI's own API refuses `top_p` > 1 too), or
/// `dialects::anthropic_messages::encode_request` (src/dialects/anthropic_messages/encode.rs).
#[test]
fn top_p_above_one_is_not_sent_to_anthropic() {
    let Ok(decoded) = openai_chat::decode_request(br#"{"model": "chat", "top_p": 1.5, "messages": [{"role": "user", "content": "hi"}]}"#) else {
        return; // refusing it at the front door is one fix
    };
    let Ok(encoded) = anthropic_messages::encode_request(&decoded.request, "claude-haiku-4-5", anthropic_messages::EncodeOptions::default()) else {
        return;
    };
    let body = serde_json::to_vec(&encoded).unwrap();
    let result = anthropic_messages::decode_request(&body);
    assert!(result.is_ok(), "encoded for Anthropic as {} which is refused: {result:?}", String::from_utf8_lossy(&body));
}
