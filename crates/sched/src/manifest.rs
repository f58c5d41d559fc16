//! The manifest: everything that determines an experiment's records.

use std::path::PathBuf;

use cfmem_analysis::{DesignConfig, DesignKind};
use cfmem_core::{
    ExposureConfig, ExtractionConfig, LoadConfig, ModelConfig, TokenizerConfig, TrainConfig,
};
use cfmem_hash::hash_words;
use serde::{Deserialize, Serialize};

use crate::error::{io, Difference, Error, ManifestProblem, Result};
use crate::layout::Layout;
use crate::units::{SpectrumSpec, UnitSpec};

/// Version of the manifest and record formats.
///
/// | version | change |
/// |---|---|
/// | 1 | first format |
/// | 2 | one seed: the design's seed is the manifest's `seed` (the design holds only its kind) |
/// | 3 | binary records (18 bytes per document, `record.rs`) and the tokenized corpus kept in the directory |
pub const FORMAT_VERSION: u32 = 3;

/// Revision of the training numerics (model, optimizer, batching). Bump it
/// whenever a change makes the same manifest and model index train to a
/// different record, so that old experiments are refused instead of mixed.
///
/// | revision | change |
/// |---|---|
/// | 1 | composed candle ops, fused host AdamW step |
/// | 2 | fused CPU kernels (layer norm, attention, GELU, cross-entropy, embedding) in f32; batch order by hashed keys (common random numbers possible) |
/// | 3 | the native CPU step (hand-written forward and backward over owned buffers; gradients summed in another order); `train.precision` (bf16 products) |
pub const TRAINER_REVISION: u32 = 3;

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
    /// initialisation and order stream, with less training noise; see the
    /// book's "Statistical efficiency" (docs/src/results/efficiency.md).
    #[default]
    Shared,
}

impl std::str::FromStr for Seeding {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "per-model" | "per_model" => Ok(Self::PerModel),
            "shared" => Ok(Self::Shared),
            other => Err(Error::Parse {
                what: "seeding",
                input: other.to_string(),
                expected: "per-model or shared",
            }),
        }
    }
}

impl std::fmt::Display for Seeding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PerModel => "per-model",
            Self::Shared => "shared",
        })
    }
}

/// Where a corpus came from and what it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusInfo {
    /// Path as given when the experiment was created (informational).
    pub path: Option<PathBuf>,
    /// How it was read.
    pub load: LoadConfig,
    /// blake3 fingerprint of ids, texts and groups.
    pub fingerprint: String,
    /// Number of documents.
    pub n_docs: usize,
}

/// The pretrained weights every model starts from (fine-tuning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitInfo {
    /// Path as given (informational; the experiment keeps a copy,
    /// `DIR/init.safetensors`).
    pub path: Option<PathBuf>,
    /// blake3 of the safetensors file.
    pub fingerprint: String,
}

/// The experiment's manifest (`manifest.json`), written by
/// [`crate::ExperimentBuilder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// [`TRAINER_REVISION`] of the code that trains the records.
    pub trainer: u32,
    /// The corpus.
    pub corpus: CorpusInfo,
    /// The tokenizer (it builds the tokenizer every run uses).
    pub tokenizer: TokenizerConfig,
    /// The model shape.
    pub model: ModelConfig,
    /// The training recipe.
    pub train: TrainConfig,
    /// The membership design's kind; its seed is [`Manifest::seed`].
    pub design: DesignKind,
    /// The one seed: of the design, the initialisations and the batch orders.
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
    /// The levels of a spectrum design (with [`DesignKind::Budget`]):
    /// nested units whose removal the records contrast level by level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spectrum: Option<SpectrumSpec>,
    /// Whether every model keeps its per-token results
    /// (`runs/model-NNNNNN.tok`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub per_token: bool,
    /// Extraction test every model takes on every document long enough
    /// (`runs/model-NNNNNN.ext`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction: Option<ExtractionConfig>,
    /// Canary exposure: every model also scores the candidate secrets
    /// (`runs/model-NNNNNN.xps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure: Option<ExposureConfig>,
    /// Pretrained weights every model starts from, instead of its own
    /// random initialisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitInfo>,
}

/// Model `i`'s initialisation and batch-order seeds under `seed` and
/// `seeding` (also what [`crate::pretrain`] gives its one model).
pub(crate) fn seeds(seed: u64, seeding: Seeding, i: usize) -> (u64, u64) {
    match seeding {
        Seeding::PerModel => (
            hash_words(&[seed, 0x1417, i as u64]),
            hash_words(&[seed, 0xda7a, i as u64]),
        ),
        Seeding::Shared => (hash_words(&[seed, 0x1417]), hash_words(&[seed, 0xda7a])),
    }
}

/// Windows per evaluation batch of a new experiment.
pub(crate) const DEFAULT_EVAL_BATCH: usize = 64;

impl Manifest {
    /// A manifest from its parts (format and trainer revision of this code).
    pub(crate) fn from_parts(parts: Parts) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            trainer: TRAINER_REVISION,
            corpus: parts.corpus,
            tokenizer: parts.tokenizer,
            model: parts.model,
            train: parts.train,
            design: parts.design,
            seed: parts.seed,
            seeding: parts.seeding,
            eval_batch: parts.eval_batch,
            queries: parts.queries,
            units: parts.units,
            spectrum: parts.spectrum,
            per_token: parts.per_token,
            extraction: parts.extraction,
            exposure: parts.exposure,
            init: parts.init,
        }
    }

    /// The membership design: [`Manifest::design`] with [`Manifest::seed`].
    pub fn design(&self) -> DesignConfig {
        DesignConfig {
            kind: self.design.clone(),
            seed: self.seed,
        }
    }

    /// Seed of model `i`'s initial weights.
    pub fn init_seed(&self, i: usize) -> u64 {
        seeds(self.seed, self.seeding, i).0
    }

    /// Seed of model `i`'s batch order.
    pub fn data_seed(&self, i: usize) -> u64 {
        seeds(self.seed, self.seeding, i).1
    }

    /// blake3 of the canonical JSON without the informational paths
    /// (`corpus.path`, `queries.path`, `init.path`): what records are tied to. The same
    /// corpus read from a JSONL, a `.jsonl.zst` or a Parquet copy, or moved,
    /// gives the same hash and so byte-identical records.
    pub fn hash(&self) -> String {
        let mut m = self.clone();
        m.corpus.path = None;
        if let Some(q) = &mut m.queries {
            q.path = None;
        }
        if let Some(i) = &mut m.init {
            i.path = None;
        }
        m.full_hash()
    }

    /// blake3 of the canonical JSON, paths included: what records written
    /// before [`Manifest::hash`] left the paths out are tied to.
    fn full_hash(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        blake3::hash(&bytes).to_hex().to_string()
    }

    /// Whether a record tied to `hash` belongs to this manifest (its
    /// [`Manifest::hash`], or the hash with paths of earlier records).
    pub fn ties(&self, hash: &str) -> bool {
        hash == self.hash() || hash == self.full_hash()
    }

    /// Read the manifest of the experiment in `layout`.
    ///
    /// # Errors
    /// [`Error::NotAnExperiment`]; [`Error::BadManifest`] for an unreadable
    /// manifest or one of another format version (saying which).
    pub(crate) fn read(layout: &Layout) -> Result<Self> {
        let path = layout.manifest();
        if !path.exists() {
            return Err(Error::NotAnExperiment(layout.dir().to_path_buf()));
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let bad = |problem: ManifestProblem| Error::BadManifest {
            path: path.clone(),
            problem,
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.into()))?;
        match v.get("format_version").and_then(serde_json::Value::as_u64) {
            Some(n) if n == u64::from(FORMAT_VERSION) => {}
            Some(found) => {
                return Err(bad(ManifestProblem::Version {
                    found,
                    supported: u64::from(FORMAT_VERSION),
                }))
            }
            None => return Err(bad(ManifestProblem::NoVersion)),
        }
        serde_json::from_value(v).map_err(|e| bad(e.into()))
    }

    /// Differences that matter for the records, one line per field
    /// (`corpus.path`, `queries.path` and `init.path` are informational and
    /// ignored).
    pub fn diff(&self, other: &Manifest) -> Vec<Difference> {
        let mut a = flatten(&serde_json::to_value(self).unwrap_or_default());
        let mut b = flatten(&serde_json::to_value(other).unwrap_or_default());
        let informational =
            |k: &String| k == "corpus.path" || k == "queries.path" || k == "init.path";
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
                (x != y).then(|| Difference {
                    field: k.clone(),
                    existing: x,
                    requested: y,
                })
            })
            .collect()
    }
}

/// Everything a manifest is made of, besides the versions.
pub(crate) struct Parts {
    pub(crate) corpus: CorpusInfo,
    pub(crate) tokenizer: TokenizerConfig,
    pub(crate) model: ModelConfig,
    pub(crate) train: TrainConfig,
    pub(crate) design: DesignKind,
    pub(crate) seed: u64,
    pub(crate) seeding: Seeding,
    pub(crate) eval_batch: usize,
    pub(crate) queries: Option<CorpusInfo>,
    pub(crate) units: UnitSpec,
    pub(crate) spectrum: Option<SpectrumSpec>,
    pub(crate) per_token: bool,
    pub(crate) extraction: Option<ExtractionConfig>,
    pub(crate) exposure: Option<ExposureConfig>,
    pub(crate) init: Option<InitInfo>,
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
