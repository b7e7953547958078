//! Token usage, in the gateway's own accounting categories.

use serde::{Deserialize, Serialize};

/// Tokens an answer consumed, split the way prices are.
///
/// `input_tokens` counts only uncached input: cache reads and writes are separate,
/// because they are priced separately (a dialect whose prompt count includes cached
/// tokens subtracts them when it converts). `reasoning_tokens` is the part of
/// `output_tokens` spent thinking; it is billed as output and kept for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    /// All prompt-side tokens, cached or not.
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens() + self.output_tokens
    }

    /// Folds a later report into this one, keeping the larger figure of each kind:
    /// streams report cumulative counts, sometimes split across events.
    pub fn merge_max(&mut self, other: &Usage) {
        self.input_tokens = self.input_tokens.max(other.input_tokens);
        self.output_tokens = self.output_tokens.max(other.output_tokens);
        self.cache_read_tokens = self.cache_read_tokens.max(other.cache_read_tokens);
        self.cache_write_tokens = self.cache_write_tokens.max(other.cache_write_tokens);
        self.reasoning_tokens = self.reasoning_tokens.max(other.reasoning_tokens);
    }

    pub fn is_zero(&self) -> bool {
        *self == Usage::default()
    }
}
