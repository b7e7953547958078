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
    let Ok(encoded) = bedrock_converse::encode_request(&decoded) else {
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
    let Ok(encoded) = anthropic_messages::encode_request(&decoded, "claude-haiku-4-5", anthropic_messages::EncodeOptions::default()) else {
        return;
    };
    let body = serde_json::to_vec(&encoded).unwrap();
    let result = anthropic_messages::decode_request(&body);
    assert!(result.is_ok(), "encoded for Anthropic as {} which is refused: {result:?}", String::from_utf8_lossy(&body));
}

// ---- Second round of SWITCHYARD_FUZZ_ROUNDTRIP=1, after the fixes above.

/// What a request of `dialect` becomes when decoded again after encoding: `Ok` when the
/// encoder refused it (routing skips the target) or the decoder accepts it.
fn reencoded_is_accepted(request: &switchyard::canonical::ChatRequest, dialect: &str) -> Result<(), String> {
    let body = match dialect {
        "openai-chat" => {
            let options = openai_chat::EncodeOptions { max_tokens_field: openai_chat::MaxTokensField::MaxTokens, force_stream_usage: false };
            let Ok(wire) = openai_chat::encode_request(request, "m", options) else { return Ok(()) };
            let body = serde_json::to_vec(&wire).unwrap();
            return openai_chat::decode_request(&body).map(drop).map_err(|e| format!("{} refused: {e:?}", String::from_utf8_lossy(&body)));
        }
        "bedrock-converse" => {
            let Ok(wire) = bedrock_converse::encode_request(request) else { return Ok(()) };
            serde_json::to_vec(&wire).unwrap()
        }
        "gemini" => {
            let options = gemini::EncodeOptions { surface: gemini::GeminiSurface::VertexAi };
            let Ok(wire) = gemini::encode_request(request, options) else { return Ok(()) };
            serde_json::to_vec(&wire).unwrap()
        }
        other => panic!("no dialect {other}"),
    };
    let result = if dialect == "gemini" {
        gemini::decode_request(serde_json::from_slice(&body).unwrap(), "m", false).map(drop)
    } else {
        bedrock_converse::decode_request(serde_json::from_slice(&body).unwrap(), "m", false).map(drop)
    };
    result.map_err(|e| format!("{} refused: {e:?}", String::from_utf8_lossy(&body)))
}

/// An OpenAI conversation of system instructions only is encoded for Gemini as
/// `"contents": []` (the Converse encoder now refuses it; the Gemini one does not).
/// Found by `openai_chat_request`.
/// Fixed in `dialects::gemini::encode_request` (src/dialects/gemini/request.rs), which
/// refuses a conversation left without turns, as the Converse encoder does.
#[test]
fn system_only_openai_request_is_not_sent_to_gemini_as_empty_contents() {
    let decoded = openai_chat::decode_request(br#"{"model": "chat", "messages": [{"role": "system", "content": "Hi"}]}"#).unwrap();
    reencoded_is_accepted(&decoded, "gemini").unwrap();
    let options = gemini::EncodeOptions { surface: gemini::GeminiSurface::VertexAi };
    assert!(gemini::encode_request(&decoded, options).is_err(), "the Gemini encoder refuses a conversation without turns");
}

/// An OpenAI assistant message with neither `content` nor `tool_calls` is accepted
/// (OpenAI's API refuses it: content is required unless tool_calls is given); its turn is
/// empty, the Converse and Gemini encoders drop it and write `"messages": []` /
/// `"contents": []`. Found by `openai_chat_request`
/// (`{"role": "assistant", "convent": [...]}`: the misspelt field is ignored).
/// Fixed in `dialects::openai_chat::decode_request` (src/dialects/openai_chat/request.rs),
/// which now refuses it as OpenAI does, and in both encoders, which refuse a conversation
/// left empty.
#[test]
fn empty_openai_assistant_message_is_not_sent_as_an_empty_conversation() {
    let body = br#"{"model": "chat", "messages": [{"role": "assistant"}]}"#;
    let error = openai_chat::decode_request(body).expect_err("the front door refuses it, as OpenAI does");
    assert_eq!(error.param.as_deref(), Some("messages[0].content"));
    let Ok(decoded) = openai_chat::decode_request(body) else {
        return; // refusing it at the front door is one fix
    };
    reencoded_is_accepted(&decoded, "bedrock-converse").unwrap();
    reencoded_is_accepted(&decoded, "gemini").unwrap();
}

/// A Gemini part with no data (`{}`, or only fields the decoder does not know) is
/// accepted; the turn is then empty and is encoded as `"contents": []`, which the same
/// decoder refuses. Found by `gemini_request` (`{"text'": ...}`).
/// Fixed in `dialects::gemini::decode_request` (src/dialects/gemini/request.rs), which
/// refuses a part with no data, as the Gemini API does.
#[test]
fn gemini_part_without_data_survives_a_round_trip() {
    let wire: gemini::GeminiRequest = serde_json::from_str(r#"{"contents": [{"role": "user", "parts": [{}]}]}"#).unwrap();
    let error = gemini::decode_request(wire.clone(), "gemini-2.5-flash", false).expect_err("a part with no data is refused");
    assert_eq!(error.param.as_deref(), Some("contents[0].parts[0]"));
    let Ok(request) = gemini::decode_request(wire, "gemini-2.5-flash", false) else {
        return;
    };
    reencoded_is_accepted(&request, "gemini").unwrap();
}

/// `topP` above 1 (and `temperature` above 2) pass the Gemini and Converse decoders and
/// reach OpenAI and Anthropic upstreams, which refuse them; the OpenAI front door now
/// refuses them. Found by `gemini_request` (`"topP": 3.0`) and `bedrock_converse_request`
/// (`"topP": 1.9`). Fixed in `dialects::gemini::decode_request` and
/// `dialects::bedrock_converse::decode_request`, which enforce the documented ranges
/// (Gemini: topP 0..1, temperature 0..2; Converse: topP 0..1, temperature 0..1).
#[test]
fn gemini_and_converse_top_p_above_one_is_not_sent_to_openai() {
    let wire: gemini::GeminiRequest =
        serde_json::from_str(r#"{"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"topP": 3.0}}"#).unwrap();
    let error = gemini::decode_request(wire.clone(), "gemini-2.5-flash", false).expect_err("topP above 1 is refused");
    assert_eq!(error.param.as_deref(), Some("generationConfig.topP"));
    if let Ok(request) = gemini::decode_request(wire, "gemini-2.5-flash", false) {
        reencoded_is_accepted(&request, "openai-chat").unwrap();
    }
    let wire: bedrock_converse::ConverseRequest =
        serde_json::from_str(r#"{"messages": [{"role": "user", "content": [{"text": "hi"}]}], "inferenceConfig": {"topP": 1.9}}"#).unwrap();
    let error = bedrock_converse::decode_request(wire.clone(), "anthropic.claude-haiku-4-5", false).expect_err("topP above 1 is refused");
    assert_eq!(error.param.as_deref(), Some("inferenceConfig.topP"));
    if let Ok(request) = bedrock_converse::decode_request(wire, "anthropic.claude-haiku-4-5", false) {
        reencoded_is_accepted(&request, "openai-chat").unwrap();
    }
}

// ---- Third round of SWITCHYARD_FUZZ_ROUNDTRIP=1, after the fixes above.

/// An Anthropic conversation whose assistant turn holds only a thinking block was
/// encoded for OpenAI as an assistant message with neither content nor tool calls
/// (reasoning is never sent back), which OpenAI and the OpenAI front door refuse.
/// Found by `anthropic_messages_request`. Fixed in `dialects::openai_chat::encode_request`
/// (src/dialects/openai_chat/request.rs), which leaves such a turn out.
#[test]
fn a_thinking_only_assistant_turn_is_left_out_for_openai() {
    let body = br#"{"model": "chat", "max_tokens": 64, "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "Use the tool.", "signature": "sig"}]},
        {"role": "user", "content": "Well?"}]}"#;
    let decoded = anthropic_messages::decode_request(body).expect("Anthropic accepts it");
    reencoded_is_accepted(&decoded, "openai-chat").unwrap();
}

/// A Converse message with an empty `content` list was accepted (Converse refuses it),
/// and reached other dialects as an empty turn. Found by `bedrock_converse_request`:
/// `{"messages": [{"role": "user", "content": []}]}`. Fixed in
/// `dialects::bedrock_converse::decode_request` (src/dialects/bedrock_converse/request.rs).
#[test]
fn a_converse_message_without_content_blocks_is_refused() {
    let wire: bedrock_converse::ConverseRequest = serde_json::from_str(r#"{"messages": [{"role": "user", "content": []}]}"#).unwrap();
    let error = bedrock_converse::decode_request(wire, "anthropic.claude-haiku-4-5", false).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("messages[0].content"));
}

/// An OpenAI `temperature` of 1.2 (valid: OpenAI's range is 0 to 2) was sent to Converse
/// unchanged, whose range is 0 to 1, so Converse (and the gateway's Converse decoder)
/// refuses it. Found by `openai_chat_request` once the Converse decoder enforced its
/// range. Fixed in `dialects::bedrock_converse::encode_request`, which clamps it to 1 as
/// the Anthropic encoder does.
#[test]
fn an_openai_temperature_above_one_is_clamped_for_converse() {
    let decoded = openai_chat::decode_request(br#"{"model": "chat", "temperature": 1.2, "messages": [{"role": "user", "content": "hi"}]}"#).unwrap();
    let wire = bedrock_converse::encode_request(&decoded).expect("Converse can take it");
    assert_eq!(wire.inference_config.and_then(|c| c.temperature), Some(1.0));
    reencoded_is_accepted(&decoded, "bedrock-converse").unwrap();
}
