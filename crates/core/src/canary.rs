//! Planted documents: random canaries that only memorization can predict,
//! and low-information controls that any model predicts.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::corpus::Document;

/// What to plant.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `n_random` | 16 | documents `"<prefix><32 random hex digits>"` |
/// | `n_controls` | 16 | documents of one word repeated (`"the the the …"`), control `i` with `repeats + i` words |
/// | `prefix` | `"The secret code is "` | fixed text before the random digits |
/// | `control_word` | `"the"` | the repeated word |
/// | `repeats` | 8 | words in the shortest control |
///
/// The controls differ only in length, so a model that never saw one has
/// seen the pattern in the others: their memorization is bounded by how
/// easy they are without them. The random digits carry 128 bits that
/// nothing else in the corpus predicts.
/// | `seed` | 0 | seed of the random digits |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryConfig {
    /// Random-identifier documents.
    pub n_random: usize,
    /// Low-information controls.
    pub n_controls: usize,
    /// Text before the random digits.
    pub prefix: String,
    /// The word the controls repeat.
    pub control_word: String,
    /// Words in the shortest control.
    pub repeats: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        Self {
            n_random: 16,
            n_controls: 16,
            prefix: "The secret code is ".into(),
            control_word: "the".into(),
            repeats: 8,
            seed: 0,
        }
    }
}

/// Id prefix of random canaries.
pub const RANDOM_PREFIX: &str = "canary-random-";
/// Id prefix of controls.
pub const CONTROL_PREFIX: &str = "canary-control-";

/// The kind of a document by its id, as the charts and summaries group
/// documents: `"random canaries"`, `"controls"` or `"documents"`.
pub fn kind_of(id: &str) -> &'static str {
    if id.starts_with(RANDOM_PREFIX) {
        "random canaries"
    } else if id.starts_with(CONTROL_PREFIX) {
        "controls"
    } else {
        "documents"
    }
}

/// The planted documents: ids `canary-random-NN` then `canary-control-NN`.
pub fn canaries(cfg: &CanaryConfig) -> Vec<Document> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut docs = Vec::with_capacity(cfg.n_random + cfg.n_controls);
    for i in 0..cfg.n_random {
        let digits: String = (0..32)
            .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
            .collect();
        docs.push(Document::new(
            format!("{RANDOM_PREFIX}{i:02}"),
            format!("{}{digits}", cfg.prefix),
        ));
    }
    for i in 0..cfg.n_controls {
        let text = vec![cfg.control_word.as_str(); cfg.repeats + i].join(" ");
        docs.push(Document::new(format!("{CONTROL_PREFIX}{i:02}"), text));
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canaries_are_seeded_and_distinct() {
        let cfg = CanaryConfig::default();
        let a = canaries(&cfg);
        assert_eq!(a, canaries(&cfg));
        assert_eq!(a.len(), 32);
        let b = canaries(&CanaryConfig {
            seed: 1,
            ..cfg.clone()
        });
        assert_ne!(a[0].text, b[0].text);
        let r = &a[0].text;
        assert!(r.starts_with("The secret code is "));
        let digits = &r["The secret code is ".len()..];
        assert_eq!(digits.len(), 32);
        assert!(digits.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a[16].text, ["the"; 8].join(" "));
        assert_eq!(a[31].text, ["the"; 23].join(" "));
        let ids: std::collections::HashSet<_> = a.iter().map(|d| &d.id).collect();
        assert_eq!(ids.len(), 32);
    }
}
