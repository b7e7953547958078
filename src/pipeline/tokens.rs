//! Token estimates before any upstream is asked: `count_tokens`, and later budget
//! reservations. Counted with OpenAI's `o200k_base` encoding, which ships inside the
//! `tiktoken-rs` crate (no download). For other vendors' models it is an estimate:
//! their tokenizers differ, typically within a few tens of percent.

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

use crate::canonical::{ChatRequest, ContentPart};

/// Tokens a vision model charges for an image whose size we don't decode: the figure
/// OpenAI documents for a 512×512 tile at high detail plus its base (85 + 170).
const IMAGE_TOKENS: u64 = 255;
/// Per-message framing (role markers) in chat formats.
const MESSAGE_OVERHEAD: u64 = 3;

fn encoding() -> Option<&'static CoreBPE> {
    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().ok()).as_ref()
}

/// Tokens of a text in `o200k_base`.
pub fn text_tokens(text: &str) -> u64 {
    match encoding() {
        Some(bpe) => bpe.encode_ordinary(text).len() as u64,
        // Four characters a token is the usual rule of thumb.
        None => (text.len() as u64).div_ceil(4),
    }
}

fn part_tokens(part: &ContentPart) -> u64 {
    match part {
        ContentPart::Text { text } | ContentPart::Thinking { text, .. } => text_tokens(text),
        ContentPart::Image { .. } => IMAGE_TOKENS,
        // Documents are billed per page by most vendors; without decoding, count the data size.
        ContentPart::Document { source, .. } => (source.to_url().len() as u64).div_ceil(16),
        ContentPart::ToolUse { name, input, .. } => text_tokens(name) + text_tokens(&input.to_string()),
        ContentPart::ToolResult { content, .. } => content.iter().map(part_tokens).sum(),
        ContentPart::RedactedThinking { .. } => 0,
    }
}

/// Estimated input tokens of a request: system, messages and tool definitions.
pub fn estimate_input_tokens(request: &ChatRequest) -> u64 {
    let system: u64 = request.system.iter().map(part_tokens).sum();
    let messages: u64 = request.messages.iter().map(|m| MESSAGE_OVERHEAD + m.content.iter().map(part_tokens).sum::<u64>()).sum();
    let tools: u64 = request
        .tools
        .iter()
        .map(|t| text_tokens(&t.name) + t.description.as_deref().map_or(0, text_tokens) + text_tokens(&t.parameters.to_string()))
        .sum();
    system + messages + tools
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{Message, Role};

    #[test]
    fn an_estimate_counts_text_with_the_bpe_and_grows_with_the_prompt() {
        let mut request = ChatRequest { messages: vec![Message::text(Role::User, "Hello, world!")], ..ChatRequest::default() };
        let short = estimate_input_tokens(&request);
        assert_eq!(short, MESSAGE_OVERHEAD + 4, "o200k_base: Hello , world !");
        request.messages.push(Message::text(Role::User, "Tell me a long story about the sea."));
        assert!(estimate_input_tokens(&request) > short);
    }
}
