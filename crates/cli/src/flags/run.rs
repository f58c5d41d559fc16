//! `cfmem run` flags.

use std::path::PathBuf;

use super::canaries::CanarySpec;
use super::recipe::RecipeArgs;
use anyhow::{bail, Result};
use cfmem_analysis::DesignKind;
use cfmem_core::{Corpus, DeviceChoice, ExtractionConfig, LoadConfig, TokenizerSpec};
use cfmem_sched::{
    Experiment, ExperimentBuilder, RunConfig, Seeding, Shard, SpectrumSpec, UnitSpec, GPU_ENSEMBLE,
};
use clap::Args;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Experiment directory (same as --out).
    dir: Option<PathBuf>,
    /// Experiment directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Corpus: a .jsonl file, a plain-text file, or a directory of .txt files.
    ///
    /// JSONL holds one `{"id", "text", "group"}` object per line
    /// (--id-field, --text-field and --group-field rename them); a plain-text
    /// file has one document per blank-line-separated paragraph (per line
    /// with --per-line); a directory's .txt files are one document each (id
    /// = relative path). Files may be gzip- or zstd-compressed
    /// (corpus.jsonl.gz, corpus.jsonl.zst), decompressed as they are read.
    /// Parquet: a .parquet file or a directory of them read in name order
    /// (as Hugging Face datasets store their shards), text from the
    /// --text-field string column, id from --id-field (string or integer;
    /// the row number when absent). The same documents in any of these forms
    /// make the same experiment, with byte-identical records.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Held-out query corpus that every model also evaluates (for `report --influence --queries`).
    #[arg(long)]
    queries: Option<PathBuf>,
    /// Number of models the experiment should have when done [default: the last count asked for, or 16].
    #[arg(long)]
    pub models: Option<usize>,
    /// Bernoulli design: each document is in each model with probability P.
    #[arg(long, conflicts_with = "blocks")]
    p: Option<f64>,
    /// Block design: blocks of B models, each document in exactly one model per block [default: 2].
    #[arg(long, conflicts_with = "repetition")]
    blocks: Option<usize>,
    /// Repetition design: COPIES:PROB pairs, e.g. 0:0.4,1:0.2,2:0.2,4:0.2 (a unit gets COPIES copies per epoch with probability PROB).
    #[arg(long, conflicts_with = "p")]
    repetition: Option<Repetition>,
    /// Budget design: every model leaves out exactly this fraction of the documents (round(F · n) of them), drawn at random; with --spectrum, as whole units of its levels. Holds the training set's size fixed across models.
    #[arg(long, value_name = "F", conflicts_with_all = ["p", "blocks", "repetition"])]
    budget: Option<f64>,
    /// Memorization-to-generalization spectrum: nested levels of removal, finest first, e.g. document,near-dup:5:0.8,near-dup:5:0.5,topic:64 (any of group, contains:TEXT, regex:PATTERN, near-dup[:NGRAM:THRESHOLD], topic:K; each level is made a union of whole units of the one below). Each model leaves out --budget of the documents [default: 0.5] as whole units of every level, so that `cfmem report --spectrum` contrasts, per document, removing it alone, its cluster and its topic. Part of the experiment's settings.
    #[arg(long, value_name = "LEVELS", conflicts_with_all = ["p", "blocks", "repetition", "units"])]
    spectrum: Option<SpectrumSpec>,
    /// Units of removal: documents, group (the corpus's group field), contains:TEXT, regex:PATTERN, near-dup[:NGRAM:THRESHOLD], topic:K.
    #[arg(long)]
    units: Option<UnitSpec>,
    /// Seed of the design, initialisation and batch order [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Seeding: `shared` (common random numbers: one initialisation and batch-order stream for all models; memorization conditional on it) or `per-model` (each model its own: the unconditional definition) [default: shared].
    #[arg(long)]
    seeding: Option<Seeding>,
    /// Keep adding models, a block at a time, until the split-half Spearman of the estimates reaches R (e.g. 0.9); --models is then the budget.
    #[arg(long, value_name = "R")]
    pub until_reliability: Option<f64>,
    /// Tokenizer: bytes, bpe:VOCAB (a byte-level BPE trained on the corpus, kept as DIR/tokenizer.json), or the path of a Hugging Face tokenizer.json [default: bytes]. The model's vocabulary follows it.
    #[arg(long)]
    tokenizer: Option<TokenizerSpec>,
    /// Fine-tune: every model starts from these weights instead of its own random initialisation: a safetensors file from `cfmem pretrain` (same model shape), or a Hugging Face model directory (config.json, model.safetensors or its shards; GPT-2, GPT-NeoX/Pythia or Llama-style), whose family and shape the model takes and whose tokenizer.json is the tokenizer unless --tokenizer is given. Kept as DIR/init.safetensors; part of the experiment's settings.
    #[arg(long, value_name = "CHECKPOINT")]
    init: Option<PathBuf>,
    /// Keep each model's per-token correctness and loss (runs/model-N.tok, 6.125 bytes per token), for per-token memorization in the HTML report: which part of a document is memorized. Part of the experiment's settings.
    #[arg(long)]
    per_token: bool,
    /// Extraction test: every model continues every document's first PREFIX tokens greedily, scored on the next SUFFIX tokens (runs/model-N.ext, 1 byte per document), for `cfmem report --metric extraction`. Documents shorter than PREFIX + SUFFIX tokens are not scored. Part of the experiment's settings. `--extraction` alone is 32:32; others as `--extraction=16:16`.
    #[arg(long, value_name = "PREFIX:SUFFIX", num_args = 0..=1, require_equals = true, default_missing_value = "32:32")]
    extraction: Option<ExtractionConfig>,
    /// Plant N random canaries ("The secret code is " and a secret of FORMAT: hex32, the default, 128 bits; or digitsK, hexK), each COPIES times [default: 1], in the corpus given with --corpus, and rank each among candidate secrets of its format under every model (runs/model-N.xps; all secrets when there are at most 2,000, else 2,000 drawn), for the exposure of Carlini et al. 2019 in `cfmem report`. A canary's copies share a group and are removed together (--units group, unless near-dup is asked). Part of the experiment's settings.
    #[arg(long, value_name = "N[:FORMAT[:COPIES]]")]
    canaries: Option<CanarySpec>,
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Models (or ensembles) trained at once [default: number of cores; 1 with --device cuda].
    #[arg(long)]
    jobs: Option<usize>,
    /// Threads per job: each job trains on a pool of its own of this many threads (matrix products and fused kernels) [default: 1].
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Models packed into one ensemble graph [default: 1; 64 with --device cuda].
    #[arg(long)]
    ensemble: Option<usize>,
    /// cpu, cuda or auto.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Also keep each trained model's weights (runs/model-N.safetensors, ≈ 0.5 MB for the tiny preset; a LoRA model's adapters only), for probing later.
    #[arg(long)]
    save_models: bool,
    /// CUDA: TF32 matrix products (weights, gradients and the optimizer stay f32; each product rounds its inputs to a 10-bit mantissa on the tensor cores). Not part of the experiment's settings: records differ in the last digits.
    #[arg(long)]
    tf32: bool,
    /// Discard an existing, different experiment in the directory (its records included) instead of refusing; the settings not given then take their defaults, not the stored ones.
    #[arg(long)]
    pub fresh: bool,
    /// Train only shard I of N (the models with index % N == I). Without it,
    /// the shard comes from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or
    /// JOB_COMPLETION_INDEX (with --shards N) when set.
    #[arg(long)]
    shard: Option<Shard>,
    /// Number of shards, for JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs).
    #[arg(long)]
    shards: Option<usize>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Skip empty documents (counted) instead of failing.
    #[arg(long)]
    skip_empty: bool,
    /// Plain-text corpora: one document per line instead of per paragraph.
    #[arg(long)]
    per_line: bool,
    /// JSONL field with the document id.
    #[arg(long, default_value = "id")]
    id_field: String,
    /// JSONL field with the text.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// JSONL field with the optional group.
    #[arg(long, default_value = "group")]
    group_field: String,
}

impl LoadArgs {
    /// How to read the corpus.
    pub fn config(&self) -> LoadConfig {
        LoadConfig {
            id_field: self.id_field.clone(),
            text_field: self.text_field.clone(),
            group_field: self.group_field.clone(),
            skip_empty: self.skip_empty,
            per_line: self.per_line,
        }
    }
}

/// The fraction of the documents each model of a spectrum design leaves
/// out when --budget is not given: half of them, with every level taking
/// about an equal share (`cfmem_analysis::Spectrum::row`).
const DEFAULT_BUDGET: f64 = 0.5;

/// `--repetition 0:0.4,1:0.2,2:0.2,4:0.2`.
#[derive(Debug, Clone)]
pub struct Repetition(DesignKind);

impl std::str::FromStr for Repetition {
    type Err = String;
    fn from_str(spec: &str) -> std::result::Result<Self, String> {
        let bad = || format!("{spec:?}: expected COPIES:PROB pairs, e.g. 0:0.5,1:0.25,4:0.25");
        let (mut copies, mut probs) = (Vec::new(), Vec::new());
        for part in spec.split(',') {
            let (c, p) = part.split_once(':').ok_or_else(bad)?;
            copies.push(c.trim().parse().map_err(|_| bad())?);
            probs.push(p.trim().parse().map_err(|_| bad())?);
        }
        Ok(Self(DesignKind::Repetition { copies, probs }))
    }
}

impl RunArgs {
    /// The experiment directory, given once (positional or `--out`).
    pub fn dir(&self) -> Result<PathBuf> {
        match (&self.dir, &self.out) {
            (Some(d), None) | (None, Some(d)) => Ok(d.clone()),
            (Some(x), Some(y)) if x == y => Ok(x.clone()),
            (Some(_), Some(_)) => bail!("give the experiment directory once (positional or --out)"),
            (None, None) => bail!("give the experiment directory (--out DIR)"),
        }
    }

    fn load(&self) -> LoadConfig {
        self.load.config()
    }

    fn design(&self) -> Option<DesignKind> {
        match (self.p, self.blocks, &self.repetition, self.budget) {
            (Some(p), _, _, _) => Some(DesignKind::Bernoulli { p }),
            (_, Some(b), _, _) => Some(DesignKind::Blocks { b }),
            (_, _, Some(r), _) => Some(r.0.clone()),
            (_, _, _, Some(fraction)) => Some(DesignKind::Budget { fraction }),
            _ => None,
        }
    }

    /// The experiment the flags describe: the stored settings of the one in
    /// the directory (unless `--fresh`), with the flags given on top.
    pub fn builder(&self, dir: &std::path::Path) -> Result<ExperimentBuilder> {
        if let Some(r) = self.until_reliability {
            if !(r > 0.0 && r < 1.0) {
                bail!("--until-reliability {r}: expected a split-half Spearman between 0 and 1, e.g. 0.9");
            }
        }
        let mut b = Experiment::builder(dir);
        if !self.fresh {
            b = b.resume_settings();
        }
        // The first document of the corpus given with a group of its own.
        let mut grouped = None;
        if let Some(p) = &self.corpus {
            let load = self.load();
            let c = Corpus::load(p, &load)?;
            if c.n_skipped_empty() > 0 {
                eprintln!(
                    "warning: skipped {} empty documents in {}",
                    c.n_skipped_empty(),
                    p.display()
                );
            }
            grouped = c
                .documents()
                .iter()
                .find(|d| d.group.is_some())
                .map(|d| d.id.clone());
            let c = match &self.canaries {
                Some(spec) => spec.plant(c, self.seed.unwrap_or(0))?,
                None => c,
            };
            b = b.corpus(c).corpus_origin(p, load);
            if let Some(spec) = &self.canaries {
                b = b.exposure(Some(spec.exposure()));
            }
        } else if self.canaries.is_some() {
            bail!("--canaries plants canaries in a new corpus: give it with --corpus");
        }
        if let Some(p) = &self.queries {
            let load = LoadConfig::default();
            b = b.queries(Corpus::load(p, &load)?).queries_origin(p, load);
        }
        // Flags that change part of a config apply to the stored one.
        let stored = if self.fresh { None } else { b.manifest().ok() };
        b = self.recipe.apply(b, stored.as_ref())?;
        match (self.design(), &self.spectrum) {
            (Some(d), _) => b = b.design(d),
            // A spectrum is drawn by a budget design: half by default,
            // unless the stored experiment has one.
            (None, Some(_))
                if !stored
                    .as_ref()
                    .is_some_and(|m| matches!(m.design, DesignKind::Budget { .. })) =>
            {
                b = b.design(DesignKind::Budget {
                    fraction: DEFAULT_BUDGET,
                });
            }
            _ => {}
        }
        if let Some(s) = &self.spectrum {
            b = b.spectrum(Some(s.clone()));
        }
        if let Some(s) = self.seed {
            b = b.seed(s);
        }
        if let Some(s) = self.seeding {
            b = b.seeding(s);
        }
        let units = match &self.canaries {
            Some(spec) if self.corpus.is_some() => spec.units(
                self.units.as_ref(),
                stored.as_ref().map(|m| &m.units),
                grouped.as_deref(),
            )?,
            _ => self.units.clone(),
        };
        if let Some(u) = units {
            b = b.units(u);
        }
        match (&self.tokenizer, &self.init) {
            (Some(t), _) => b = b.tokenizer(t.clone()),
            // A Hugging Face model directory's own tokenizer.
            (None, Some(dir)) if dir.join("tokenizer.json").is_file() => {
                b = b.tokenizer(TokenizerSpec::File(dir.join("tokenizer.json")));
            }
            _ => {}
        }
        if self.per_token {
            b = b.per_token(true);
        }
        if self.extraction.is_some() {
            b = b.extraction(self.extraction);
        }
        if let Some(p) = &self.init {
            b = b.init(p);
        }
        Ok(b)
    }

    /// The shard: `--shard`, else the cluster engine's environment.
    pub fn shard(&self) -> Result<Option<Shard>> {
        Ok(match self.shard {
            Some(s) => Some(s),
            None => Shard::from_env(self.shards)?,
        })
    }

    /// Matrix-product threads per job.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How to run (`n_models` is set per round by the caller).
    pub fn run_config(&self, shard: Option<Shard>) -> RunConfig {
        let d = RunConfig::default();
        let gpu = self.device == DeviceChoice::Cuda;
        RunConfig {
            jobs: self.jobs.unwrap_or(if gpu { 1 } else { d.jobs }),
            threads: self.threads,
            ensemble: self
                .ensemble
                .unwrap_or(if gpu { GPU_ENSEMBLE } else { d.ensemble }),
            device: self.device,
            shard,
            save_models: self.save_models,
            tf32: self.tf32,
            ..d
        }
    }
}
