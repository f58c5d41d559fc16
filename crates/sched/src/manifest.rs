//! The manifest: everything that determines an experiment's records.

use std::path::{Path, PathBuf};

use cfmem_analysis::{hash_words, DesignConfig};
use cfmem_core::{Corpus, LoadConfig, ModelConfig, TokenizerConfig, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::error::{io, Error, Result};

/// Version of the manifest and record formats.
pub const FORMAT_VERSION: u32 = 1;

/// Revision of the training numerics (model, optimizer, batching). Bump it
/// whenever a change makes the same manifest and model index train to a
/// different record, so that old experiments are refused instead of mixed.
///
/// | revision | change |
/// |---|---|
/// | 1 | composed candle ops, fused host AdamW step |
/// | 2 | fused CPU kernels (layer norm, attention, GELU, cross-entropy, embedding) in f32; batch order by hashed keys (common random numbers possible) |
pub const TRAINER_REVISION: u32 = 2;

/// How models draw their initial weights and batch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Seeding {
    /// Each model has its own initialisation and batch order, both derived
    /// from `(seed, model index)`: the unconditional definition.
    PerModel,
    /// Common random numbers: every model starts from the same weights and
    /// draws its batches from the same ordering stream (windows shared by two
    /// models come in the same relative order), so two models differ only in
    /// their subsets. This estimates memorization *conditional on* the
    /// initialisation and order stream, with much less training noise; see
    /// the README's "Statistical efficiency". The default: on the
    /// quickstart corpus it gave a higher split-half Spearman at every model
    /// count at 32 epochs (0.79 vs 0.74 at 16 models, 0.90 vs 0.88 at 64).
    #[default]
    Shared,
}

impl std::str::FromStr for Seeding {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "per-model" | "per_model" => Ok(Self::PerModel),
            "shared" => Ok(Self::Shared),
            other => Err(format!(
                "unknown seeding `{other}` (expected `per-model` or `shared`)"
            )),
        }
    }
}

/// Where the corpus came from and what it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusInfo {
    /// Path as given when the experiment was created.
    pub path: Option<PathBuf>,
    /// How it was read.
    pub load: LoadConfig,
    /// blake3 fingerprint of ids, texts and groups.
    pub fingerprint: String,
    /// Number of documents.
    pub n_docs: usize,
}

/// The experiment's manifest (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// [`TRAINER_REVISION`] of the code that trains the records (0 in
    /// manifests written before the field existed).
    #[serde(default)]
    pub trainer: u32,
    /// The corpus.
    pub corpus: CorpusInfo,
    /// The tokenizer.
    pub tokenizer: TokenizerConfig,
    /// The model shape.
    pub model: ModelConfig,
    /// The training recipe.
    pub train: TrainConfig,
    /// The membership design.
    pub design: DesignConfig,
    /// Seed of initialisation and batch order.
    pub seed: u64,
    /// How seeds are derived per model.
    pub seeding: Seeding,
    /// Windows per evaluation batch (does not change results).
    pub eval_batch: usize,
    /// A held-out query corpus that every model also evaluates (for influence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queries: Option<CorpusInfo>,
    /// The units of removal (documents by default).
    #[serde(default, skip_serializing_if = "UnitSpec::is_documents")]
    pub units: UnitSpec,
}

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
    /// [`Error::Config`] for a bad regex or near-duplicate setting.
    pub fn build(&self, corpus: &Corpus) -> Result<cfmem_analysis::Units> {
        use cfmem_analysis::Units;
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
                let re = regex::Regex::new(pattern)
                    .map_err(|e| Error::Config(format!("--units regex: {e}")))?;
                Units::selected(&ids, &texts, &format!("regex:{pattern}"), |t| {
                    re.is_match(t)
                })
            }
            UnitSpec::NearDuplicates { ngram, threshold } => {
                Units::near_duplicates(&ids, &texts, *ngram, *threshold)
                    .map_err(|e| Error::Config(e.to_string()))?
            }
        })
    }
}

impl std::str::FromStr for UnitSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || {
            format!("units {s:?}: expected documents, group, contains:TEXT, regex:PATTERN or near-dup[:NGRAM:THRESHOLD]")
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

impl Manifest {
    /// A manifest for `corpus` with the given configs.
    pub fn new(
        corpus: &Corpus,
        corpus_path: Option<&Path>,
        load: LoadConfig,
        model: ModelConfig,
        train: TrainConfig,
        design: DesignConfig,
        seed: u64,
    ) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            trainer: TRAINER_REVISION,
            corpus: CorpusInfo {
                path: corpus_path.map(Path::to_path_buf),
                load,
                fingerprint: corpus.fingerprint(),
                n_docs: corpus.len(),
            },
            tokenizer: TokenizerConfig::Byte,
            model,
            train,
            design,
            seed,
            seeding: Seeding::default(),
            eval_batch: 64,
            queries: None,
            units: UnitSpec::Documents,
        }
    }

    /// Add a query corpus that every model also evaluates.
    pub fn with_queries(mut self, queries: &Corpus, path: Option<&Path>, load: LoadConfig) -> Self {
        self.queries = Some(CorpusInfo {
            path: path.map(Path::to_path_buf),
            load,
            fingerprint: queries.fingerprint(),
            n_docs: queries.len(),
        });
        self
    }

    /// Seed of model `i`'s initial weights.
    pub fn init_seed(&self, i: usize) -> u64 {
        match self.seeding {
            Seeding::PerModel => hash_words(&[self.seed, 0x1417, i as u64]),
            Seeding::Shared => hash_words(&[self.seed, 0x1417]),
        }
    }

    /// Seed of model `i`'s batch order.
    pub fn data_seed(&self, i: usize) -> u64 {
        match self.seeding {
            Seeding::PerModel => hash_words(&[self.seed, 0xda7a, i as u64]),
            Seeding::Shared => hash_words(&[self.seed, 0xda7a]),
        }
    }

    /// blake3 of the canonical JSON (what records are tied to).
    pub fn hash(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        blake3::hash(&bytes).to_hex().to_string()
    }

    /// Read `DIR/manifest.json`.
    ///
    /// # Errors
    /// [`Error::NotAnExperiment`], [`Error::BadManifest`].
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        if !path.exists() {
            return Err(Error::NotAnExperiment(dir.to_path_buf()));
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::BadManifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if m.format_version != FORMAT_VERSION {
            return Err(Error::BadManifest {
                path,
                message: format!(
                    "format version {} (this cfmem reads {FORMAT_VERSION})",
                    m.format_version
                ),
            });
        }
        Ok(m)
    }

    /// Differences that matter for the records, one line per field
    /// (`corpus.path` is informational and ignored).
    pub fn diff(&self, other: &Manifest) -> Vec<String> {
        let mut a = flatten(&serde_json::to_value(self).unwrap_or_default());
        let mut b = flatten(&serde_json::to_value(other).unwrap_or_default());
        let informational = |k: &String| k == "corpus.path" || k == "queries.path";
        a.retain(|(k, _)| !informational(k));
        b.retain(|(k, _)| !informational(k));
        let keys: std::collections::BTreeSet<&String> =
            a.iter().chain(&b).map(|(k, _)| k).collect();
        let get = |v: &[(String, String)], k: &str| {
            v.iter()
                .find(|(kk, _)| kk == k)
                .map(|(_, x)| x.clone())
                .unwrap_or_else(|| "(absent)".into())
        };
        keys.into_iter()
            .filter_map(|k| {
                let (x, y) = (get(&a, k), get(&b, k));
                (x != y).then(|| format!("{k}: existing {x}, requested {y}"))
            })
            .collect()
    }
}

fn flatten(v: &serde_json::Value) -> Vec<(String, String)> {
    fn go(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    go(&p, x, out);
                }
            }
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    go("", v, &mut out);
    out
}
