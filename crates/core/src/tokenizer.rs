//! Tokenizers: text → token ids with BOS/EOS/PAD.

use serde::{Deserialize, Serialize};

/// A tokenizer: turns a document into ids, framed by BOS and EOS.
pub trait Tokenizer: Send + Sync {
    /// Ids of `text`, without BOS/EOS.
    fn encode(&self, text: &str) -> Vec<u32>;
    /// Number of ids, specials included.
    fn vocab_size(&self) -> usize;
    /// Beginning-of-sequence id.
    fn bos(&self) -> u32;
    /// End-of-sequence id.
    fn eos(&self) -> u32;
    /// Padding id (never a prediction target).
    fn pad(&self) -> u32;
}

/// Byte-level tokenizer: ids 0–255 are bytes, then BOS, EOS and PAD.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteTokenizer;

impl Tokenizer for ByteTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }
    fn vocab_size(&self) -> usize {
        259
    }
    fn bos(&self) -> u32 {
        256
    }
    fn eos(&self) -> u32 {
        257
    }
    fn pad(&self) -> u32 {
        258
    }
}

/// Which tokenizer an experiment uses (written into its manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenizerConfig {
    /// [`ByteTokenizer`].
    #[default]
    Byte,
}

impl TokenizerConfig {
    /// Build the tokenizer.
    pub fn build(&self) -> Box<dyn Tokenizer> {
        match self {
            TokenizerConfig::Byte => Box::new(ByteTokenizer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_roundtrip_and_specials_are_distinct() {
        let t = ByteTokenizer;
        let ids = t.encode("hé!");
        assert_eq!(ids, vec![104, 0xc3, 0xa9, 33]);
        let specials = [t.bos(), t.eos(), t.pad()];
        assert!(specials
            .iter()
            .all(|&s| s >= 256 && (s as usize) < t.vocab_size()));
        assert_eq!(specials.len(), 3);
        assert!(specials[0] != specials[1] && specials[1] != specials[2]);
    }
}
