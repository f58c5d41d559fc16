//! Extraction (Carlini et al. 2022, "Quantifying Memorization Across
//! Neural Language Models"; the Pythia memorization evaluations): prompted
//! with the first `prefix` tokens of a document, does greedy decoding write
//! the next `suffix` tokens?
//!
//! # Computed from teacher forcing
//! Greedy decoding from a document's prefix writes the document's own next
//! token exactly when the argmax at that position, with the true tokens as
//! context, is the true token. So as long as the continuation is right,
//! greedy decoding and teacher forcing see the same context, and the length
//! of the longest correct prefix of the greedy continuation is the number
//! of leading positions after the prompt whose teacher-forced argmax is
//! right. cfmem reads it off the per-token correctness that evaluation
//! computes anyway ([`crate::evaluate_tokens`]): one forward pass per
//! window instead of `suffix` passes per document. The equivalence is
//! tested against [`crate::greedy`] on trained models
//! (`crates/core/tests/extract.rs`).

use serde::{Deserialize, Serialize};

use crate::data::TokenizedCorpus;
use crate::error::{Error, Result};
use crate::eval::TokenScores;

/// The matched length of a document too short to score.
pub const TOO_SHORT: u8 = u8::MAX;

/// Prompt and continuation lengths of the extraction test, in tokens.
///
/// The prompt is the beginning-of-document token and the first `prefix`
/// tokens of the text; the continuation is the `suffix` tokens after them
/// (the end-of-document token counts). A document needs `prefix + suffix`
/// tokens after its beginning-of-document token to be scored, and the
/// model's context must hold `prefix + suffix` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractionConfig {
    /// Prompt tokens after the beginning-of-document token.
    pub prefix: u32,
    /// Continuation tokens scored.
    pub suffix: u32,
}

impl Default for ExtractionConfig {
    /// 32 → 32 tokens, as in the Pythia memorization evaluations.
    fn default() -> Self {
        Self {
            prefix: 32,
            suffix: 32,
        }
    }
}

impl std::fmt::Display for ExtractionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.prefix, self.suffix)
    }
}

impl std::str::FromStr for ExtractionConfig {
    type Err = Error;
    /// `PREFIX:SUFFIX`, e.g. `32:32`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Parse {
            what: "extraction",
            input: s.to_string(),
            expected: "PREFIX:SUFFIX in tokens, e.g. 32:32",
        };
        let (p, q) = s.split_once(':').ok_or_else(bad)?;
        Ok(Self {
            prefix: p.trim().parse().map_err(|_| bad())?,
            suffix: q.trim().parse().map_err(|_| bad())?,
        })
    }
}

impl ExtractionConfig {
    /// Check the lengths against a model context of `ctx` tokens.
    ///
    /// # Errors
    /// [`Error::ExtractionLengths`] for an empty prompt or continuation, a
    /// continuation over 254 tokens, or `prefix + suffix > ctx`.
    pub fn check(&self, ctx: usize) -> Result<()> {
        if self.prefix == 0 || self.suffix == 0 || self.suffix >= u32::from(TOO_SHORT) {
            return Err(Error::ExtractionLengths(*self));
        }
        let need = self.prefix as usize + self.suffix as usize;
        if need > ctx {
            return Err(Error::ExtractionContext { config: *self, ctx });
        }
        Ok(())
    }

    /// Whether document `d` of `corpus` is long enough to score.
    pub fn fits(&self, corpus: &TokenizedCorpus, d: usize) -> bool {
        corpus.n_targets(d) >= (self.prefix + self.suffix) as usize
    }

    /// The prompt of document `d` (beginning-of-document token and the
    /// first `prefix` tokens) and its true continuation (`suffix` tokens);
    /// `None` for a document too short.
    pub fn split(&self, corpus: &TokenizedCorpus, d: usize) -> Option<(Vec<u32>, Vec<u32>)> {
        let (p, s) = (self.prefix as usize, self.suffix as usize);
        self.fits(corpus, d).then(|| {
            (
                (0..=p).map(|i| corpus.token(d, i)).collect(),
                (p + 1..=p + s).map(|i| corpus.token(d, i)).collect(),
            )
        })
    }
}

/// Each document's matched length: how many tokens of its continuation
/// greedy decoding from its prompt writes correctly before the first
/// mistake (`suffix` = the whole continuation, extractable), or
/// [`TOO_SHORT`]. `scores` are one model's per-token results on `corpus`
/// ([`crate::evaluate_tokens`]).
///
/// # Errors
/// [`Error::ExtractionScores`] when `scores` do not cover the corpus's targets.
pub fn extraction(
    corpus: &TokenizedCorpus,
    scores: &TokenScores,
    cfg: &ExtractionConfig,
) -> Result<Vec<u8>> {
    if scores.correct.len() != corpus.total_targets() {
        return Err(Error::ExtractionScores {
            found: scores.correct.len(),
            expected: corpus.total_targets(),
        });
    }
    let (p, s) = (cfg.prefix as usize, cfg.suffix as usize);
    Ok((0..corpus.n_docs())
        .map(|d| {
            if !cfg.fits(corpus, d) {
                return TOO_SHORT;
            }
            // Target i predicts token i + 1: the continuation's first token
            // (token p + 1) is target p.
            let at = corpus.target_offset(d) + p;
            scores.correct[at..at + s]
                .iter()
                .take_while(|&&c| c)
                .count() as u8
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ByteTokenizer, Corpus, Document};

    fn corpus() -> TokenizedCorpus {
        let c = Corpus::from_documents(vec![
            Document::new("a", "abcdefgh"),
            Document::new("b", "ab"),
            Document::new("c", "abcdefghij"),
        ])
        .unwrap();
        TokenizedCorpus::new(&c, &ByteTokenizer, 8).unwrap()
    }

    #[test]
    fn matched_length_is_the_leading_run_of_correct_continuation_tokens() {
        let c = corpus();
        let cfg = ExtractionConfig {
            prefix: 3,
            suffix: 4,
        };
        // Targets: "a" has 9 (8 bytes + EOS), "b" 3, "c" 11.
        assert_eq!(c.total_targets(), 23);
        let mut correct = vec![true; 23];
        // "a": continuation targets 3..7; the third is wrong.
        correct[5] = false;
        // "c" (from 12): the continuation 15..19 all right; a prompt target
        // (13) wrong does not matter.
        correct[13] = false;
        let scores = TokenScores {
            nll: vec![0.0; 23],
            correct,
            ..TokenScores::default()
        };
        let got = extraction(&c, &scores, &cfg).unwrap();
        assert_eq!(got, vec![2, TOO_SHORT, 4]);
        // The prompt is BOS + 3 bytes; the continuation the next 4.
        let (prompt, truth) = cfg.split(&c, 0).unwrap();
        assert_eq!(prompt.len(), 4);
        assert_eq!(
            truth,
            b"defg".iter().map(|&b| u32::from(b)).collect::<Vec<_>>()
        );
        assert!(cfg.split(&c, 1).is_none());
        // The end-of-document token counts: "a" has 8 + 1 tokens after BOS.
        let tight = ExtractionConfig {
            prefix: 4,
            suffix: 5,
        };
        assert!(tight.fits(&c, 0));
        assert!(!ExtractionConfig { prefix: 5, ..tight }.fits(&c, 0));
        let short = TokenScores {
            correct: vec![true; 3],
            nll: vec![0.0; 3],
            ..TokenScores::default()
        };
        assert!(extraction(&c, &short, &cfg).is_err());
    }

    #[test]
    fn config_parses_and_checks() {
        let c: ExtractionConfig = "32:16".parse().unwrap();
        assert_eq!((c.prefix, c.suffix), (32, 16));
        assert_eq!(c.to_string(), "32:16");
        assert!("32".parse::<ExtractionConfig>().is_err());
        assert!("a:3".parse::<ExtractionConfig>().is_err());
        assert!(c.check(48).is_ok());
        let err = c.check(47).unwrap_err().to_string();
        assert!(err.contains("context of 47"), "{err}");
        assert!("0:4"
            .parse::<ExtractionConfig>()
            .unwrap()
            .check(64)
            .is_err());
        assert!("1:255"
            .parse::<ExtractionConfig>()
            .unwrap()
            .check(512)
            .is_err());
    }
}
