//! Units of removal: what a design includes or removes together.

use cfmem_analysis::Units;
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
        })
    }
}

impl std::str::FromStr for UnitSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Parse {
            what: "units",
            input: s.to_string(),
            expected:
                "documents, group, contains:TEXT, regex:PATTERN or near-dup[:NGRAM:THRESHOLD]",
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
