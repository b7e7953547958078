//! Content blocks to and from canonical [`ContentPart`]s: the one place that knows how
//! images, documents, tool calls, tool results and thinking look on Anthropic's wire.
//!
//! Which blocks may appear in which role is the caller's concern (request.rs); this
//! module only converts one block at a time.

use serde_json::Value;

use super::wire::{AnthropicBlock, AnthropicContent, AnthropicSource};
use crate::canonical::{ApiError, ContentPart, ErrorCategory, MediaSource};

const PDF: &str = "application/pdf";
const PLAIN_TEXT: &str = "text/plain";

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(400, ErrorCategory::InvalidRequest, message).with_param(param)
}

/// Message content (string or blocks) as canonical parts. `param` names the content
/// field, e.g. `messages[2].content`, for errors.
pub(super) fn parts_from_content(param: &str, content: AnthropicContent) -> Result<Vec<ContentPart>, ApiError> {
    match content {
        AnthropicContent::Text(text) => Ok(vec![ContentPart::Text { text }]),
        AnthropicContent::Blocks(blocks) => blocks
            .into_iter()
            .enumerate()
            .map(|(i, block)| part_from_block(&format!("{param}[{i}]"), block))
            .collect(),
    }
}

/// One request block as a canonical part.
pub(super) fn part_from_block(param: &str, block: AnthropicBlock) -> Result<ContentPart, ApiError> {
    Ok(match block {
        AnthropicBlock::Text { text, .. } => ContentPart::Text { text },
        AnthropicBlock::Image { source, .. } => ContentPart::Image { source: image_source(param, source)?, detail: None },
        AnthropicBlock::Document { source, title, .. } => {
            ContentPart::Document { source: document_source(param, source)?, title }
        }
        AnthropicBlock::ToolUse { id, name, input, .. } => ContentPart::ToolUse { id, name, input },
        AnthropicBlock::ToolResult { tool_use_id, content, is_error, .. } => {
            let content_param = format!("{param}.content");
            let content = match content {
                None => Vec::new(),
                Some(content) => parts_from_content(&content_param, content)?,
            };
            if let Some((j, part)) = content.iter().enumerate().find(|(_, p)| !allowed_in_tool_result(p)) {
                return Err(invalid(
                    &format!("{content_param}[{j}]"),
                    format!("A tool_result may contain text, image and document blocks, not '{}'.", part.kind_name()),
                ));
            }
            ContentPart::ToolResult { tool_use_id, content, is_error: is_error.unwrap_or(false) }
        }
        AnthropicBlock::Thinking { thinking, signature } => {
            ContentPart::Thinking { text: thinking, signature: (!signature.is_empty()).then_some(signature) }
        }
        AnthropicBlock::RedactedThinking { data } => ContentPart::RedactedThinking { data },
        AnthropicBlock::Other(block) => {
            let kind = block.get("type").and_then(Value::as_str).unwrap_or("(missing)");
            return Err(invalid(
                &format!("{param}.type"),
                format!("Content block type '{kind}' is not supported by the gateway (server-tool and search-result blocks cannot be routed to other providers)."),
            ));
        }
    })
}

fn allowed_in_tool_result(part: &ContentPart) -> bool {
    matches!(part, ContentPart::Text { .. } | ContentPart::Image { .. } | ContentPart::Document { .. })
}

fn image_source(param: &str, source: AnthropicSource) -> Result<MediaSource, ApiError> {
    match source {
        AnthropicSource::Base64 { media_type, data } => Ok(MediaSource::Base64 { media_type, data }),
        AnthropicSource::Url { url } => Ok(MediaSource::Url { url }),
        AnthropicSource::Text { .. } => Err(invalid(&format!("{param}.source.type"), "An image source must be 'base64' or 'url'.")),
        AnthropicSource::Other(other) => Err(unroutable_source(param, &other)),
    }
}

/// A plain-text document's text becomes base64 in canonical form, so it reads the same
/// as any other inline document to every dialect.
fn document_source(param: &str, source: AnthropicSource) -> Result<MediaSource, ApiError> {
    match source {
        AnthropicSource::Base64 { media_type, data } => Ok(MediaSource::Base64 { media_type, data }),
        AnthropicSource::Url { url } => Ok(MediaSource::Url { url }),
        AnthropicSource::Text { media_type, data } => {
            Ok(MediaSource::Base64 { media_type, data: base64_encode(data.as_bytes()) })
        }
        AnthropicSource::Other(other) => Err(unroutable_source(param, &other)),
    }
}

fn unroutable_source(param: &str, source: &serde_json::Map<String, Value>) -> ApiError {
    let kind = source.get("type").and_then(Value::as_str).unwrap_or("(missing)");
    invalid(
        &format!("{param}.source.type"),
        format!("Source type '{kind}' is not supported by the gateway; send the bytes inline ('base64', 'text') or by 'url'."),
    )
}

/// One canonical part as a block, or `None` for a part Anthropic must not receive:
/// thinking without a signature came from another vendor, and Claude rejects reasoning
/// it cannot verify. The `Err` names the feature this dialect cannot carry.
pub(super) fn block_from_part(part: &ContentPart) -> Result<Option<AnthropicBlock>, String> {
    Ok(Some(match part {
        ContentPart::Text { text } => AnthropicBlock::Text { text: text.clone(), citations: None, cache_control: None },
        ContentPart::Image { source, .. } => AnthropicBlock::Image { source: image_source_to_wire(source), cache_control: None },
        ContentPart::Document { source, title } => AnthropicBlock::Document {
            source: document_source_to_wire(source)?,
            title: title.clone(),
            context: None,
            citations: None,
            cache_control: None,
        },
        ContentPart::ToolUse { id, name, input } => {
            if !input.is_object() {
                return Err(format!("tool_use input that is not a JSON object (tool call '{id}')"));
            }
            AnthropicBlock::ToolUse { id: id.clone(), name: name.clone(), input: input.clone(), cache_control: None }
        }
        ContentPart::ToolResult { tool_use_id, content, is_error } => AnthropicBlock::ToolResult {
            tool_use_id: tool_use_id.clone(),
            content: tool_result_content(content)?,
            is_error: is_error.then_some(true),
            cache_control: None,
        },
        ContentPart::Thinking { text, signature: Some(signature) } => {
            AnthropicBlock::Thinking { thinking: text.clone(), signature: signature.clone() }
        }
        ContentPart::Thinking { signature: None, .. } => return Ok(None),
        ContentPart::RedactedThinking { data } => AnthropicBlock::RedactedThinking { data: data.clone() },
    }))
}

/// A lone text result stays a plain string (the documented shorthand); no content at
/// all is omitted, which the API accepts.
fn tool_result_content(parts: &[ContentPart]) -> Result<Option<AnthropicContent>, String> {
    match parts {
        [] => Ok(None),
        [ContentPart::Text { text }] => Ok(Some(AnthropicContent::Text(text.clone()))),
        parts => {
            let mut blocks = Vec::with_capacity(parts.len());
            for part in parts {
                if !allowed_in_tool_result(part) {
                    return Err(format!("a {} part inside a tool result", part.kind_name()));
                }
                blocks.extend(block_from_part(part)?);
            }
            Ok(Some(AnthropicContent::Blocks(blocks)))
        }
    }
}

fn image_source_to_wire(source: &MediaSource) -> AnthropicSource {
    match source {
        MediaSource::Base64 { media_type, data } => AnthropicSource::Base64 { media_type: media_type.clone(), data: data.clone() },
        MediaSource::Url { url } => AnthropicSource::Url { url: url.clone() },
    }
}

/// Anthropic reads PDFs (base64 or URL) and plain text (as text, not base64).
/// See <https://platform.claude.com/docs/en/build-with-claude/pdf-support>.
fn document_source_to_wire(source: &MediaSource) -> Result<AnthropicSource, String> {
    match source {
        MediaSource::Url { url } => Ok(AnthropicSource::Url { url: url.clone() }),
        MediaSource::Base64 { media_type, data } if media_type == PDF => {
            Ok(AnthropicSource::Base64 { media_type: media_type.clone(), data: data.clone() })
        }
        MediaSource::Base64 { media_type, data } if media_type == PLAIN_TEXT => {
            let text = base64_decode(data)
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or("a text/plain document whose data is not base64-encoded UTF-8")?;
            Ok(AnthropicSource::Text { media_type: media_type.clone(), data: text })
        }
        MediaSource::Base64 { media_type, .. } => Err(format!("a document of type '{media_type}' (only PDF and plain text)")),
    }
}

// ---- base64 (standard alphabet, padded), for plain-text documents only ----

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(super) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // A chunk of k bytes yields k + 1 digits, padded to four with '='.
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            match ALPHABET.get(((n >> shift) & 63) as usize) {
                Some(&digit) if i <= chunk.len() => out.push(char::from(digit)),
                _ => out.push('='),
            }
        }
    }
    out
}

/// Decodes standard base64; padding is optional, anything else invalid is `None`.
pub(super) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let digits = text.trim_end_matches('=').as_bytes();
    if digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n: u32 = 0;
        for (i, &c) in chunk.iter().enumerate() {
            n |= sextet(c)? << (18 - 6 * i as u32);
        }
        // k digits carry k - 1 whole bytes: the low bytes of `n` below the top one.
        out.extend(n.to_be_bytes().into_iter().skip(1).take(chunk.len() - 1));
    }
    Some(out)
}

fn sextet(c: u8) -> Option<u32> {
    let value = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        for (plain, encoded) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).as_deref(), Some(plain.as_bytes()));
        }
        assert_eq!(base64_decode("Zm9v!"), None);
        assert_eq!(base64_decode("Z"), None);
    }
}
