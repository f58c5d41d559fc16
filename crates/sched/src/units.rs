//! Units of removal: what a design includes or removes together.

use std::path::Path;

use cfmem_analysis::{Spectrum, Units};
use cfmem_core::Corpus;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the design includes or removes as one unit.
///
/// | spec | flag | units |
/// |---|---|---|
/// | `Documents` | `--units documents` | every document (the plain estimate) |
/// | `GroupField` | `--units group` | documents sharing the corpus's `group` field; others alone |
/// | `Contains { text }` | `--units contains:TEXT` | documents containing `text` form one unit; others alone |
/// | `Regex { pattern }` | `--units regex:PATTERN` | documents matching the regex form one unit; others alone |
/// | `NearDuplicates { ngram, threshold }` | `--units near-dup[:NGRAM:THRESHOLD]` | clusters of documents whose character-`ngram` shingles have Jaccard ≥ `threshold` (default 5, 0.7) |
/// | `Topics { k }` | `--units topic:K` | `k` topics: spherical k-means over the documents' TF-IDF word vectors ([`Units::topics`]) |
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnitSpec {
    /// Each document is a unit.
    #[default]
    Documents,
    /// The `group` field.
    GroupField,
    /// A substring selects one group.
    Contains {
        /// The substring.
        text: String,
    },
    /// A regular expression selects one group.
    Regex {
        /// The pattern.
        pattern: String,
    },
    /// Near-duplicate clusters.
    NearDuplicates {
        /// Shingle length in characters.
        ngram: usize,
        /// Jaccard threshold.
        threshold: f64,
    },
    /// Topics: documents clustered by their words.
    Topics {
        /// Number of topics.
        k: usize,
    },
}

impl UnitSpec {
    /// Whether this is the default (each document its own unit).
    pub fn is_documents(&self) -> bool {
        *self == UnitSpec::Documents
    }

    /// The units of `corpus`.
    ///
    /// # Errors
    /// [`Error::UnitRegex`] for a bad regex; [`Error::Analysis`] for a bad near-duplicate setting.
    pub fn build(&self, corpus: &Corpus) -> Result<Units> {
        let docs = corpus.documents();
        let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        Ok(match self {
            UnitSpec::Documents => Units::singletons(&ids),
            UnitSpec::GroupField => {
                let labels: Vec<Option<&str>> = docs.iter().map(|d| d.group.as_deref()).collect();
                Units::from_labels(&ids, &labels)
            }
            UnitSpec::Contains { text } => {
                Units::selected(&ids, &texts, &format!("contains:{text}"), |t| {
                    t.contains(text.as_str())
                })
            }
            UnitSpec::Regex { pattern } => {
                let re = regex::Regex::new(pattern).map_err(|source| Error::UnitRegex {
                    pattern: pattern.clone(),
                    source,
                })?;
                Units::selected(&ids, &texts, &format!("regex:{pattern}"), |t| {
                    re.is_match(t)
                })
            }
            UnitSpec::NearDuplicates { ngram, threshold } => {
                Units::near_duplicates(&ids, &texts, *ngram, *threshold)?
            }
            UnitSpec::Topics { k } => Units::topics(&ids, &texts, *k)?,
        })
    }
}

impl std::fmt::Display for UnitSpec {
    /// The flag's form (what [`str::parse`] reads back).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnitSpec::Documents => write!(f, "documents"),
            UnitSpec::GroupField => write!(f, "group"),
            UnitSpec::Contains { text } => write!(f, "contains:{text}"),
            UnitSpec::Regex { pattern } => write!(f, "regex:{pattern}"),
            UnitSpec::NearDuplicates { ngram, threshold } => {
                write!(f, "near-dup:{ngram}:{threshold}")
            }
            UnitSpec::Topics { k } => write!(f, "topic:{k}"),
        }
    }
}

/// The levels of a spectrum design above the documents, finest first
/// (`--spectrum document,near-dup:5:0.8,near-dup:5:0.5,topic:64`: the
/// document level is always the first, named or not). Each level is
/// made a union of whole units of the one below
/// ([`cfmem_analysis::Spectrum::new`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectrumSpec {
    /// Levels above the documents.
    pub levels: Vec<UnitSpec>,
}

impl SpectrumSpec {
    /// The spectrum over `corpus`.
    ///
    /// # Errors
    /// As [`UnitSpec::build`]; [`Error::Analysis`] for no level or too many.
    pub fn build(&self, corpus: &Corpus) -> Result<Spectrum> {
        let levels = self
            .levels
            .iter()
            .map(|l| Ok((l.to_string(), l.build(corpus)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Spectrum::new(&ids(corpus), levels)?)
    }

    /// What kept levels must have been built from: a blake3 of the
    /// corpus fingerprint and the levels.
    fn key(&self, corpus: &Corpus) -> String {
        let mut h = blake3::Hasher::new();
        h.update(corpus.fingerprint().as_bytes());
        h.update(&serde_json::to_vec(self).unwrap_or_default());
        h.finalize().to_hex().to_string()
    }

    /// The spectrum over `corpus`, read from `path` when it was kept there
    /// for the same corpus and levels, else built; and whether it was
    /// built (then [`SpectrumSpec::keep`] it).
    ///
    /// # Errors
    /// As [`SpectrumSpec::build`].
    pub(crate) fn read_or_build(&self, corpus: &Corpus, path: &Path) -> Result<(Spectrum, bool)> {
        let key = self.key(corpus);
        let kept = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Cached>(&b).ok())
            .filter(|c| c.key == key)
            .and_then(|c| Spectrum::new(&ids(corpus), c.levels).ok());
        match kept {
            Some(s) => Ok((s, false)),
            None => Ok((self.build(corpus)?, true)),
        }
    }

    /// Keep `spectrum`'s levels (nested, which [`Spectrum::new`] leaves
    /// as they are) in `path`, atomically; a directory that cannot be
    /// written keeps nothing.
    pub(crate) fn keep(&self, corpus: &Corpus, spectrum: &Spectrum, path: &Path) {
        let levels = (1..spectrum.n_levels())
            .map(|l| (spectrum.names()[l].clone(), spectrum.level(l).clone()))
            .collect();
        let cached = Cached {
            key: self.key(corpus),
            levels,
        };
        if let Ok(bytes) = serde_json::to_vec(&cached) {
            let _ = crate::layout::write_atomic(path, &bytes);
        }
    }

    /// [`SpectrumSpec::read_or_build`], kept when built.
    ///
    /// # Errors
    /// As [`SpectrumSpec::build`].
    pub(crate) fn load_or_build(&self, corpus: &Corpus, path: &Path) -> Result<Spectrum> {
        let (s, built) = self.read_or_build(corpus, path)?;
        if built {
            self.keep(corpus, &s, path);
        }
        Ok(s)
    }
}

fn ids(corpus: &Corpus) -> Vec<&str> {
    corpus.documents().iter().map(|d| d.id.as_str()).collect()
}

/// `DIR/spectrum.json`: the levels' units as built, and what they were
/// built from ([`SpectrumSpec::key`]), so that opening the experiment
/// does not cluster the corpus again.
#[derive(Serialize, Deserialize)]
struct Cached {
    key: String,
    levels: Vec<(String, Units)>,
}

impl std::fmt::Display for SpectrumSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "document")?;
        for l in &self.levels {
            write!(f, ",{l}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for SpectrumSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let mut levels = Vec::new();
        for (i, part) in s.split(',').map(str::trim).enumerate() {
            if i == 0 && (part == "document" || part == "documents") {
                continue;
            }
            let level: UnitSpec = part.parse()?;
            if level.is_documents() {
                return Err(Error::Parse {
                    what: "spectrum",
                    input: s.to_string(),
                    expected: "the document level first (or left out), then coarser levels: group, contains:TEXT, regex:PATTERN, near-dup[:NGRAM:THRESHOLD], topic:K",
                });
            }
            levels.push(level);
        }
        Ok(Self { levels })
    }
}

impl std::str::FromStr for UnitSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Parse {
            what: "units",
            input: s.to_string(),
            expected:
                "documents, group, contains:TEXT, regex:PATTERN, near-dup[:NGRAM:THRESHOLD] or topic:K",
        }
        };
        if s == "documents" {
            return Ok(UnitSpec::Documents);
        }
        if s == "group" {
            return Ok(UnitSpec::GroupField);
        }
        if let Some(t) = s.strip_prefix("contains:") {
            return Ok(UnitSpec::Contains {
                text: t.to_string(),
            });
        }
        if let Some(p) = s.strip_prefix("regex:") {
            return Ok(UnitSpec::Regex {
                pattern: p.to_string(),
            });
        }
        if s == "near-dup" {
            return Ok(UnitSpec::NearDuplicates {
                ngram: 5,
                threshold: 0.7,
            });
        }
        if let Some(k) = s.strip_prefix("topic:") {
            return Ok(UnitSpec::Topics {
                k: k.parse().map_err(|_| bad())?,
            });
        }
        if let Some(rest) = s.strip_prefix("near-dup:") {
            let (n, t) = rest.split_once(':').ok_or_else(bad)?;
            return Ok(UnitSpec::NearDuplicates {
                ngram: n.parse().map_err(|_| bad())?,
                threshold: t.parse().map_err(|_| bad())?,
            });
        }
        Err(bad())
    }
}
