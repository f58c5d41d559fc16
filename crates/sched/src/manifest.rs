//! The manifest: everything that determines an experiment's records.

use std::path::{Path, PathBuf};

use cfmem_analysis::{hash_words, DesignConfig};
use cfmem_core::{Corpus, LoadConfig, ModelConfig, TokenizerConfig, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::error::{io, Error, Result};

/// Version of the manifest and record formats.
pub const FORMAT_VERSION: u32 = 1;

/// How models draw their initial weights and batch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Seeding {
    /// Each model has its own initialisation and batch order, both derived
    /// from `(seed, model index)`: the unconditional definition.
    #[default]
    PerModel,
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
            seeding: Seeding::PerModel,
            eval_batch: 64,
            queries: None,
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
        }
    }

    /// Seed of model `i`'s batch order.
    pub fn data_seed(&self, i: usize) -> u64 {
        match self.seeding {
            Seeding::PerModel => hash_words(&[self.seed, 0xda7a, i as u64]),
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
