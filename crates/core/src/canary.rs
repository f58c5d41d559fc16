//! Planted documents: random canaries that only memorization can predict,
//! and low-information controls that any model predicts.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use serde::{Deserialize, Serialize};

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
/// | `format` | `hex32` | the secret's alphabet and length ([`CanaryFormat`]) |
/// | `copies` | 1 | documents per random canary, all with its text and its id as their `group` (the Secret Sharer's insertions: removed together under `--units group`) |
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
    /// The secret's format.
    pub format: CanaryFormat,
    /// Documents per random canary (at least 1).
    pub copies: usize,
}

/// The alphabet of a canary's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alphabet {
    /// `0-9a-f`.
    Hex,
    /// `0-9`.
    Digits,
}

impl Alphabet {
    /// Its symbols, in order.
    pub fn symbols(self) -> &'static [u8] {
        match self {
            Alphabet::Hex => b"0123456789abcdef",
            Alphabet::Digits => b"0123456789",
        }
    }
}

/// A canary secret's format: `length` symbols of `alphabet`, written
/// `hex32` (the default: 128 bits) or `digits6` (the Secret Sharer's
/// "my PIN is" shape: 10⁶ secrets, few enough to rank among them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryFormat {
    /// The symbols.
    pub alphabet: Alphabet,
    /// How many.
    pub length: usize,
}

impl Default for CanaryFormat {
    fn default() -> Self {
        Self {
            alphabet: Alphabet::Hex,
            length: 32,
        }
    }
}

impl CanaryFormat {
    /// `log2 |R|`: the bits of a random secret (the largest exposure).
    pub fn bits(&self) -> f64 {
        self.length as f64 * (self.alphabet.symbols().len() as f64).log2()
    }

    /// `|R|`, the number of secrets, when it fits in a `u64`.
    pub fn size(&self) -> Option<u64> {
        let n = self.alphabet.symbols().len() as u64;
        (0..self.length).try_fold(1u64, |acc, _| acc.checked_mul(n))
    }

    /// The `i`-th secret in lexicographic order (`i < size()`).
    pub fn nth(&self, mut i: u64) -> String {
        let sym = self.alphabet.symbols();
        let n = sym.len() as u64;
        let mut out = vec![b'0'; self.length];
        for c in out.iter_mut().rev() {
            *c = sym[(i % n) as usize];
            i /= n;
        }
        out.into_iter().map(char::from).collect()
    }

    /// A uniformly random secret.
    pub fn random(&self, rng: &mut impl Rng) -> String {
        let sym = self.alphabet.symbols();
        (0..self.length)
            // A u32 range: the draws of the first canaries, which used one.
            .map(|_| char::from(sym[rng.gen_range(0..sym.len() as u32) as usize]))
            .collect()
    }

    /// Whether `s` is a secret of this format.
    pub fn matches(&self, s: &str) -> bool {
        s.len() == self.length && s.bytes().all(|b| self.alphabet.symbols().contains(&b))
    }
}

impl std::fmt::Display for CanaryFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = match self.alphabet {
            Alphabet::Hex => "hex",
            Alphabet::Digits => "digits",
        };
        write!(f, "{a}{}", self.length)
    }
}

impl std::str::FromStr for CanaryFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || {
            format!("canary format {s:?}: expected hexN or digitsN with 1 <= N <= 64 (e.g. hex32, digits6)")
        };
        let (alphabet, n) = if let Some(n) = s.strip_prefix("hex") {
            (Alphabet::Hex, n)
        } else if let Some(n) = s.strip_prefix("digits") {
            (Alphabet::Digits, n)
        } else {
            return Err(bad());
        };
        let length: usize = n.parse().map_err(|_| bad())?;
        if !(1..=64).contains(&length) {
            return Err(bad());
        }
        Ok(Self { alphabet, length })
    }
}

/// What exposure ranks canaries among (Carlini et al. 2019): the secrets
/// of `format` after `prefix`, all of them when there are at most
/// `candidates`, else `candidates` drawn uniformly (seeded). Each model of
/// an experiment with exposure evaluates every candidate text; a document
/// whose text is `prefix` followed by a secret of `format` is a canary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposureConfig {
    /// The text before the secret.
    pub prefix: String,
    /// The secret's format.
    pub format: CanaryFormat,
    /// Candidates each model ranks the canaries among.
    pub candidates: usize,
}

/// Candidates of a new experiment with exposure: a sample of 2,000 keeps a
/// skew-normal fit within half a bit of the exact rank up to 13 bits of
/// exposure (tested in `cfmem-analysis`), at 2,000 short texts of
/// evaluation per model.
pub const DEFAULT_CANDIDATES: usize = 2000;

impl ExposureConfig {
    /// How many candidates [`ExposureConfig::secrets`] gives: every secret
    /// when there are at most `candidates`, else `candidates`.
    pub fn n_candidates(&self) -> usize {
        match self.format.size() {
            Some(n) if n <= self.candidates as u64 => n as usize,
            _ => self.candidates,
        }
    }

    /// The candidate secrets under the experiment's `seed`, and whether
    /// they are all of the format's secrets (exact ranks).
    pub fn secrets(&self, seed: u64) -> (Vec<String>, bool) {
        match self.format.size() {
            Some(n) if n <= self.candidates as u64 => {
                ((0..n).map(|i| self.format.nth(i)).collect(), true)
            }
            _ => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6578_706f_7375_7265);
                (
                    (0..self.candidates)
                        .map(|_| self.format.random(&mut rng))
                        .collect(),
                    false,
                )
            }
        }
    }

    /// The candidate documents (ids `exposure-candidate-N`).
    pub fn documents(&self, seed: u64) -> Vec<Document> {
        self.secrets(seed)
            .0
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                Document::new(
                    format!("exposure-candidate-{i}"),
                    format!("{}{s}", self.prefix),
                )
            })
            .collect()
    }

    /// The secret of a canary's text, `None` when the text is not one.
    pub fn secret_of<'a>(&self, text: &'a str) -> Option<&'a str> {
        text.strip_prefix(self.prefix.as_str())
            .filter(|s| self.format.matches(s))
    }
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
            format: CanaryFormat::default(),
            copies: 1,
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

/// The planted documents: ids `canary-random-NN` then `canary-control-NN`. With `copies` > 1, random canary `NN` is
/// `copies` documents `canary-random-NN-cK` (`K` from 1) of one text, each
/// with group `canary-random-NN`, so that a design over the group field
/// puts them in or out together.
pub fn canaries(cfg: &CanaryConfig) -> Vec<Document> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let copies = cfg.copies.max(1);
    let mut docs = Vec::with_capacity(cfg.n_random * copies + cfg.n_controls);
    for i in 0..cfg.n_random {
        let text = format!("{}{}", cfg.prefix, cfg.format.random(&mut rng));
        let id = format!("{RANDOM_PREFIX}{i:02}");
        if copies == 1 {
            docs.push(Document::new(id, text));
            continue;
        }
        for k in 1..=copies {
            docs.push(Document {
                group: Some(id.clone()),
                ..Document::new(format!("{id}-c{k}"), text.clone())
            });
        }
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
        // The same secrets as drawn before formats existed: 32 hex digits,
        // each `from_digit(gen_range(0..16u32), 16)`.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let old: String = (0..32)
            .map(|_| char::from_digit(rng.gen_range(0..16u32), 16).unwrap())
            .collect();
        assert_eq!(digits, old);
        // The default format is that text's: 32 hex digits, 128 bits.
        let f = CanaryFormat::default();
        assert!(f.matches(digits) && f.bits() == 128.0 && f.size().is_none());
    }

    #[test]
    fn copies_repeat_each_random_canary_in_its_own_group() {
        let one = canaries(&CanaryConfig {
            n_controls: 2,
            ..CanaryConfig::default()
        });
        let three = canaries(&CanaryConfig {
            n_controls: 2,
            copies: 3,
            ..CanaryConfig::default()
        });
        assert_eq!(three.len(), 16 * 3 + 2);
        for (i, c) in one[..16].iter().enumerate() {
            let copies = &three[3 * i..3 * i + 3];
            for (k, d) in copies.iter().enumerate() {
                // The same secrets as one copy draws, in the canary's group.
                assert_eq!(d.text, c.text);
                assert_eq!(d.id, format!("{}-c{}", c.id, k + 1));
                assert_eq!(d.group.as_deref(), Some(c.id.as_str()));
                assert_eq!(kind_of(&d.id), "random canaries");
            }
            assert!(c.group.is_none());
        }
        assert_eq!(&three[48..], &one[16..]);
        assert!(three[48].group.is_none());
    }

    #[test]
    fn exposure_candidates_enumerate_small_formats_and_sample_large_ones() {
        let small = ExposureConfig {
            prefix: "PIN ".into(),
            format: "digits2".parse().unwrap(),
            candidates: 500,
        };
        let (s, all) = small.secrets(1);
        assert!(all && s.len() == 100 && s[7] == "07");
        let docs = small.documents(1);
        assert_eq!(docs[99].text, "PIN 99");
        assert_eq!(small.secret_of("PIN 42"), Some("42"));
        assert_eq!(small.secret_of("PIN 4x"), None);
        assert_eq!(small.secret_of("pin 42"), None);
        let large = ExposureConfig {
            prefix: "The secret code is ".into(),
            format: CanaryFormat::default(),
            candidates: 300,
        };
        let (a, all) = large.secrets(5);
        assert!(!all && a.len() == 300 && large.n_candidates() == 300);
        assert_eq!(small.n_candidates(), 100);
        assert_eq!(a, large.secrets(5).0);
        assert_ne!(a, large.secrets(6).0);
        // The default canaries are canaries of this exposure.
        let c = canaries(&CanaryConfig::default());
        assert!(large.secret_of(&c[0].text).is_some());
        assert!(large.secret_of(&c[20].text).is_none());
    }

    #[test]
    fn formats_parse_enumerate_and_draw() {
        let f: CanaryFormat = "digits3".parse().unwrap();
        assert_eq!(f.to_string(), "digits3");
        assert_eq!(f.size(), Some(1000));
        assert!((f.bits() - 1000f64.log2()).abs() < 1e-12);
        assert_eq!(f.nth(0), "000");
        assert_eq!(f.nth(42), "042");
        assert_eq!(f.nth(999), "999");
        let h: CanaryFormat = "hex2".parse().unwrap();
        assert_eq!((h.size(), h.nth(255).as_str()), (Some(256), "ff"));
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            assert!(f.matches(&f.random(&mut rng)));
        }
        assert!(!f.matches("12") && !f.matches("12a"));
        for bad in ["hex", "hex0", "hex65", "octal3", "digitsx"] {
            let err = bad.parse::<CanaryFormat>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}
