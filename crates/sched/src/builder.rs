//! Creating, resuming and replacing experiments: one builder for all three.

use std::path::{Path, PathBuf};

use cfmem_analysis::{DesignConfig, DesignKind, Spectrum};
use cfmem_core::{
    Corpus, ExposureConfig, ExtractionConfig, LoadConfig, ModelConfig, ResolvedTokenizer,
    TokenizerSpec, TrainConfig,
};

use crate::error::{io, Error, Result};
use crate::experiment::{write_jsonl, Experiment};
use crate::layout::{write_atomic, Layout};
use crate::manifest::{CorpusInfo, InitInfo, Manifest, Parts, Seeding, DEFAULT_EVAL_BATCH};
use crate::units::{SpectrumSpec, UnitSpec};

/// What [`ExperimentBuilder::open`] does when the directory holds an
/// experiment whose manifest differs from the one asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChange {
    /// Refuse with [`Error::ManifestMismatch`], listing each differing field.
    Refuse,
    /// Discard the existing experiment (its manifest, corpus, records) and
    /// create the new one. An identical experiment is resumed either way.
    Replace,
}

/// The value given, else the inherited one, else the default.
fn pick<T: Clone>(given: &Option<T>, inherited: Option<T>, default: T) -> T {
    given.clone().or(inherited).unwrap_or(default)
}

#[derive(Debug, Clone)]
struct Source {
    corpus: Corpus,
    path: Option<PathBuf>,
    load: LoadConfig,
}

impl Source {
    fn info(&self) -> CorpusInfo {
        CorpusInfo {
            path: self.path.clone(),
            load: self.load.clone(),
            fingerprint: self.corpus.fingerprint(),
            n_docs: self.corpus.len(),
        }
    }
}

/// Builds the experiment in a directory: creates it, resumes it (the same
/// settings), or replaces it ([`OnChange`]). Every setting not given takes
/// its default, or with [`ExperimentBuilder::resume_settings`] the value of
/// the experiment already in the directory, so a caller can resume an
/// experiment while changing one setting (the run is then refused, or the
/// experiment replaced, as [`OnChange`] says).
///
/// | setting | default |
/// |---|---|
/// | `corpus` | required for a new experiment |
/// | `queries` | none |
/// | `model` | [`ModelConfig::tiny`] |
/// | `train` | [`TrainConfig::default`] |
/// | `design` | blocks of 2 (complementary halves) |
/// | `seed` | 0: the design's, the initialisations' and the batch orders' |
/// | `seeding` | [`Seeding::Shared`] |
/// | `units` | [`UnitSpec::Documents`] |
/// | `spectrum` | none: [`SpectrumSpec`] levels of nested units, with a [`DesignKind::Budget`] design, for `cfmem report --spectrum` ([`cfmem_analysis::spectrum()`]) |
/// | `init` | none: each model starts from its own random weights; a safetensors checkpoint (e.g. from `cfmem pretrain`) or a Hugging Face model directory (GPT-2, GPT-NeoX, Llama-style) makes every model fine-tune from it (kept as `DIR/init.safetensors` with its `config.json` as `DIR/init.config.json`, fingerprinted; its family and shape are the model's) |
/// | `extraction` | none: [`ExtractionConfig`] (e.g. 32 → 32 tokens) scores every model's greedy continuation of every document's prompt (`runs/model-NNNNNN.ext`, 1 byte per document) for `--metric extraction` |
/// | `per_token` | off: keep each model's per-token correctness and loss (`runs/model-NNNNNN.tok`, 6.125 bytes per token) for [`Experiment::token_mem`] |
/// | `tokenizer` | bytes ([`TokenizerSpec::Bytes`]); `bpe:VOCAB` trains a byte-level BPE on the corpus, or a Hugging Face `tokenizer.json`; the model's vocabulary follows it |
///
/// ```no_run
/// use cfmem_core::{Corpus, LoadConfig, TrainConfig};
/// use cfmem_sched::{Experiment, OnChange};
///
/// let corpus = Corpus::load("datasets/devil.jsonl", &LoadConfig::default())?;
/// let exp = Experiment::builder("experiments/devil")
///     .corpus(corpus)
///     .train(TrainConfig { epochs: 16, ..TrainConfig::default() })
///     .seed(7)
///     .open(OnChange::Refuse)?;
/// // Later: the same experiment, with its stored settings.
/// let again = Experiment::builder("experiments/devil").resume_settings().open(OnChange::Refuse)?;
/// assert_eq!(again.manifest().hash(), exp.manifest().hash());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ExperimentBuilder {
    dir: PathBuf,
    inherit: bool,
    corpus: Option<Source>,
    queries: Option<Source>,
    model: Option<ModelConfig>,
    train: Option<TrainConfig>,
    design: Option<DesignKind>,
    seed: Option<u64>,
    seeding: Option<Seeding>,
    units: Option<UnitSpec>,
    spectrum: Option<Option<SpectrumSpec>>,
    tokenizer: Option<TokenizerSpec>,
    per_token: Option<bool>,
    extraction: Option<Option<ExtractionConfig>>,
    exposure: Option<Option<ExposureConfig>>,
    init: Option<PathBuf>,
}

impl ExperimentBuilder {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            inherit: false,
            corpus: None,
            queries: None,
            model: None,
            train: None,
            design: None,
            seed: None,
            seeding: None,
            units: None,
            spectrum: None,
            tokenizer: None,
            per_token: None,
            extraction: None,
            exposure: None,
            init: None,
        }
    }

    /// Settings not given come from the experiment already in the
    /// directory (when there is one) instead of the defaults: its corpus,
    /// query corpus, configs, design, seed, seeding and units.
    pub fn resume_settings(mut self) -> Self {
        self.inherit = true;
        self
    }

    /// The corpus (validated documents).
    pub fn corpus(mut self, corpus: Corpus) -> Self {
        self.corpus = Some(Source {
            corpus,
            path: None,
            load: LoadConfig::default(),
        });
        self
    }

    /// Where the corpus was read from and how, written into the manifest
    /// (the path is informational; give it after [`ExperimentBuilder::corpus`]).
    pub fn corpus_origin(mut self, path: impl Into<PathBuf>, load: LoadConfig) -> Self {
        if let Some(s) = &mut self.corpus {
            s.path = Some(path.into());
            s.load = load;
        }
        self
    }

    /// A held-out query corpus that every model also evaluates (for influence).
    pub fn queries(mut self, queries: Corpus) -> Self {
        self.queries = Some(Source {
            corpus: queries,
            path: None,
            load: LoadConfig::default(),
        });
        self
    }

    /// Where the query corpus was read from and how.
    pub fn queries_origin(mut self, path: impl Into<PathBuf>, load: LoadConfig) -> Self {
        if let Some(s) = &mut self.queries {
            s.path = Some(path.into());
            s.load = load;
        }
        self
    }

    /// The model shape.
    pub fn model(mut self, model: ModelConfig) -> Self {
        self.model = Some(model);
        self
    }

    /// The training recipe.
    pub fn train(mut self, train: TrainConfig) -> Self {
        self.train = Some(train);
        self
    }

    /// The membership design (its seed is [`ExperimentBuilder::seed`]).
    pub fn design(mut self, design: DesignKind) -> Self {
        self.design = Some(design);
        self
    }

    /// The one seed of the design, the initialisations and the batch orders.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How seeds are derived per model.
    pub fn seeding(mut self, seeding: Seeding) -> Self {
        self.seeding = Some(seeding);
        self
    }

    /// The units of removal.
    pub fn units(mut self, units: UnitSpec) -> Self {
        self.units = Some(units);
        self
    }

    /// The levels of a spectrum design (`None`: no spectrum); it needs a
    /// budget design ([`DesignKind::Budget`]) and documents as units.
    pub fn spectrum(mut self, spectrum: Option<SpectrumSpec>) -> Self {
        self.spectrum = Some(spectrum);
        self
    }

    /// The tokenizer (kept in the directory as `tokenizer.json` when it is
    /// a Hugging Face one).
    pub fn tokenizer(mut self, tokenizer: TokenizerSpec) -> Self {
        self.tokenizer = Some(tokenizer);
        self
    }

    /// Start every model from the weights in a safetensors file (names
    /// and shapes of [`cfmem_core::Gpt::params`], without the ensemble
    /// axis; e.g. written by [`cfmem_core::Checkpoint::save`]).
    pub fn init(mut self, checkpoint: impl Into<PathBuf>) -> Self {
        self.init = Some(checkpoint.into());
        self
    }

    /// Keep each model's per-token results (for per-token memorization).
    pub fn per_token(mut self, on: bool) -> Self {
        self.per_token = Some(on);
        self
    }

    /// Score every model's extraction of every document long enough
    /// (greedy continuation of a prompt; [`cfmem_core::extraction`]),
    /// kept as `runs/model-NNNNNN.ext` (1 byte per document); `None`
    /// keeps none.
    pub fn extraction(mut self, cfg: Option<ExtractionConfig>) -> Self {
        self.extraction = Some(cfg);
        self
    }

    /// Rank every canary of the corpus among candidate secrets of its
    /// format ([`ExposureConfig`]: each model scores every candidate,
    /// `runs/model-NNNNNN.xps`, 4 bytes per candidate), for
    /// [`Experiment::exposure`]; `None` ranks none.
    pub fn exposure(mut self, cfg: Option<ExposureConfig>) -> Self {
        self.exposure = Some(cfg);
        self
    }

    fn layout(&self) -> Layout {
        Layout::new(&self.dir)
    }

    /// The experiment whose settings are inherited, when asked and present.
    /// An unreadable or other-version manifest has no settings to inherit
    /// ([`ExperimentBuilder::open`] then refuses or replaces it).
    fn existing(&self) -> Result<Option<Experiment>> {
        if !(self.inherit && self.layout().manifest().exists()) {
            return Ok(None);
        }
        match Experiment::open(&self.dir) {
            Ok(e) => Ok(Some(e)),
            Err(Error::BadManifest { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The manifest, corpus, queries, tokenizer and initial weights the
    /// builder stands for, checked.
    fn resolve(&self) -> Result<Resolved> {
        let existing = self.existing()?;
        let existing = existing.as_ref();
        let base = existing.map(Experiment::manifest);
        let corpus = self.corpus_source(existing)?;
        let queries = self.query_source(existing);
        let tokenizer = self.resolve_tokenizer(existing, &corpus)?;
        let mut model = pick(
            &self.model,
            base.map(|m| m.model.clone()),
            ModelConfig::tiny(),
        );
        // The model's vocabulary follows the tokenizer.
        model.vocab_size = tokenizer.config.vocab_size();
        let (init, init_files) = self.resolve_init(existing)?;
        if let Some(files) = &init_files {
            model = files.fit(&model)?;
        }
        let parts = Parts {
            corpus: corpus.info(),
            queries: queries.as_ref().map(Source::info),
            tokenizer: tokenizer.config.clone(),
            model,
            train: pick(
                &self.train,
                base.map(|m| m.train.clone()),
                TrainConfig::default(),
            ),
            design: pick(
                &self.design,
                base.map(|m| m.design.clone()),
                DesignConfig::default().kind,
            ),
            seed: pick(&self.seed, base.map(|m| m.seed), 0),
            seeding: pick(&self.seeding, base.map(|m| m.seeding), Seeding::default()),
            units: pick(
                &self.units,
                base.map(|m| m.units.clone()),
                UnitSpec::Documents,
            ),
            spectrum: pick(&self.spectrum, base.map(|m| m.spectrum.clone()), None),
            eval_batch: base.map_or(DEFAULT_EVAL_BATCH, |m| m.eval_batch),
            per_token: pick(&self.per_token, base.map(|m| m.per_token), false),
            extraction: pick(&self.extraction, base.map(|m| m.extraction), None),
            exposure: pick(&self.exposure, base.map(|m| m.exposure.clone()), None),
            init,
        };
        let manifest = Manifest::from_parts(parts);
        manifest.design().check()?;
        let spectrum = check_spectrum(&manifest, &corpus.corpus, &self.layout().spectrum())?;
        manifest.model.check()?;
        if let Some(e) = &manifest.extraction {
            e.check(manifest.model.ctx)?;
        }
        if manifest.exposure.as_ref().is_some_and(|x| x.candidates < 3) {
            return Err(Error::InvalidSetting {
                setting: "exposure candidates",
                value: manifest
                    .exposure
                    .as_ref()
                    .map_or(0, |x| x.candidates)
                    .to_string(),
                expected: "at least 3 (a skew-normal fit needs three)",
            });
        }
        manifest.train.check_for(&manifest.model)?;
        if manifest.train.lora.is_some() && manifest.init.is_none() {
            return Err(cfmem_core::Error::Lora(
                "adapters need a base to adapt: give the checkpoint to start from (--init)",
            )
            .into());
        }
        Ok(Resolved {
            manifest,
            corpus,
            queries,
            tokenizer,
            init: init_files,
            spectrum,
        })
    }

    /// The corpus given, or the existing experiment's.
    fn corpus_source(&self, existing: Option<&Experiment>) -> Result<Source> {
        match (&self.corpus, existing) {
            (Some(s), _) => Ok(s.clone()),
            (None, Some(e)) => Ok(Source {
                corpus: e.corpus().clone(),
                path: e.manifest().corpus.path.clone(),
                load: e.manifest().corpus.load.clone(),
            }),
            (None, None) => Err(Error::NoCorpus(self.dir.clone())),
        }
    }

    /// The queries given, or the existing experiment's.
    fn query_source(&self, existing: Option<&Experiment>) -> Option<Source> {
        match (&self.queries, existing) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(e)) => e.queries().map(|q| Source {
                corpus: q.clone(),
                path: e.manifest().queries.as_ref().and_then(|i| i.path.clone()),
                load: e
                    .manifest()
                    .queries
                    .as_ref()
                    .map(|i| i.load.clone())
                    .unwrap_or_default(),
            }),
            (None, None) => None,
        }
    }

    /// The tokenizer given (trained on the corpus when asked), the existing
    /// experiment's, or bytes.
    fn resolve_tokenizer(
        &self,
        existing: Option<&Experiment>,
        corpus: &Source,
    ) -> Result<ResolvedTokenizer> {
        match (&self.tokenizer, existing) {
            (Some(spec), _) => Ok(spec.resolve(&corpus.corpus)?),
            (None, Some(e)) => Ok(ResolvedTokenizer {
                config: e.manifest().tokenizer.clone(),
                json: match &e.manifest().tokenizer {
                    cfmem_core::TokenizerConfig::Byte => None,
                    _ => {
                        let p = e.layout().tokenizer();
                        Some(std::fs::read(&p).map_err(io(&p))?)
                    }
                },
            }),
            (None, None) => Ok(TokenizerSpec::Bytes.resolve(&corpus.corpus)?),
        }
    }

    /// The initial weights given, or the existing experiment's: what the
    /// manifest records of them, and the files.
    fn resolve_init(
        &self,
        existing: Option<&Experiment>,
    ) -> Result<(Option<InitInfo>, Option<InitFiles>)> {
        let read = |p: &Path| -> Result<InitFiles> {
            // A file (and the config beside it) or a Hugging Face model
            // directory (its shards merged into one file).
            let (weights, config) = cfmem_core::Checkpoint::files(p)?;
            Ok(InitFiles {
                path: p.to_path_buf(),
                weights,
                config,
            })
        };
        match (&self.init, existing) {
            (Some(p), _) => {
                let files = read(p)?;
                let info = InitInfo {
                    path: Some(p.clone()),
                    fingerprint: blake3::hash(&files.weights).to_hex().to_string(),
                };
                Ok((Some(info), Some(files)))
            }
            (None, Some(e)) => match &e.manifest().init {
                Some(i) => Ok((Some(i.clone()), Some(read(&e.layout().init())?))),
                None => Ok((None, None)),
            },
            (None, None) => Ok((None, None)),
        }
    }

    /// The manifest [`ExperimentBuilder::open`] would write (or resume).
    ///
    /// # Errors
    /// As [`ExperimentBuilder::open`], short of touching the directory.
    pub fn manifest(&self) -> Result<Manifest> {
        Ok(self.resolve()?.manifest)
    }

    /// Create the experiment, or resume it when the directory holds the
    /// same one; a different one is refused or replaced as `on_change` says.
    ///
    /// # Errors
    /// [`Error::NoCorpus`] for a new experiment without a corpus; invalid
    /// settings ([`Error::Core`], [`Error::Analysis`]);
    /// [`Error::ManifestMismatch`] (with [`OnChange::Refuse`]) listing each
    /// differing field; [`Error::BadManifest`] for an unreadable or
    /// other-version manifest (with [`OnChange::Refuse`]); I/O errors.
    pub fn open(self, on_change: OnChange) -> Result<Experiment> {
        let Resolved {
            manifest,
            corpus,
            queries,
            tokenizer,
            init,
            spectrum,
        } = self.resolve()?;
        let layout = self.layout();
        // Levels clustered while checking are kept for every later open.
        let keep = |layout: &Layout| {
            if let (Some(spec), Some((s, true))) = (&manifest.spectrum, &spectrum) {
                spec.keep(&corpus.corpus, s, &layout.spectrum());
            }
        };
        if layout.manifest().exists() {
            match Manifest::read(&layout) {
                Ok(old) => {
                    let diffs = old.diff(&manifest);
                    if diffs.is_empty() {
                        keep(&layout);
                        return Experiment::open(&self.dir);
                    }
                    if on_change == OnChange::Refuse {
                        return Err(Error::ManifestMismatch {
                            dir: self.dir.clone(),
                            diffs,
                        });
                    }
                }
                Err(e) if on_change == OnChange::Refuse => return Err(e),
                Err(_) => {}
            }
            layout.discard()?;
        }
        let runs = layout.runs();
        std::fs::create_dir_all(&runs).map_err(io(&runs))?;
        write_jsonl(&layout.corpus(), &corpus.corpus)?;
        if let Some(q) = &queries {
            write_jsonl(&layout.queries(), &q.corpus)?;
        }
        if let Some(json) = &tokenizer.json {
            write_atomic(&layout.tokenizer(), json)?;
        }
        if let Some(files) = &init {
            write_atomic(&layout.init(), &files.weights)?;
            if let Some(c) = &files.config {
                write_atomic(&layout.init_config(), c)?;
            }
        }
        // The manifest last: once it exists, the corpus files are complete.
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|source| Error::Json {
            path: layout.manifest(),
            source,
        })?;
        write_atomic(&layout.manifest(), &bytes)?;
        keep(&layout);
        Experiment::assemble(layout, manifest, corpus.corpus, queries.map(|q| q.corpus))
    }
}

/// What an [`ExperimentBuilder`] stands for, checked: the manifest and the
/// files a new experiment's directory gets.
struct Resolved {
    manifest: Manifest,
    corpus: Source,
    queries: Option<Source>,
    tokenizer: ResolvedTokenizer,
    init: Option<InitFiles>,
    /// The spectrum, when the manifest has one, and whether it was built
    /// (not read from the directory).
    spectrum: Option<(Spectrum, bool)>,
}

/// The initial weights' files: the safetensors file and the GPT-2
/// `config.json` beside it, when there is one.
struct InitFiles {
    /// Where the weights were read from (for messages).
    path: PathBuf,
    weights: Vec<u8>,
    config: Option<Vec<u8>>,
}

impl InitFiles {
    /// The model these weights fit: a GPT-2-layout checkpoint gives the
    /// model its shape. Weights that do not fit are refused now, not in
    /// every job.
    fn fit(&self, model: &ModelConfig) -> Result<ModelConfig> {
        let named = |source: cfmem_core::Error| Error::Checkpoint {
            path: self.path.clone(),
            source: Box::new(source),
        };
        let ck =
            cfmem_core::Checkpoint::from_bytes_with_config(&self.weights, self.config.as_deref())
                .map_err(named)?;
        let model = ck.shape_model(model);
        cfmem_core::Gpt::from_weights(
            &model,
            &ck.weights_for(&model).map_err(named)?,
            1,
            cfmem_core::DType::F32,
            &cfmem_core::Device::Cpu,
        )
        .map_err(named)?;
        Ok(model)
    }
}

/// A spectrum needs a budget design over documents, and every unit of
/// every level must fit in the budget; a budget design alone must leave
/// out some documents and keep some. Returns the spectrum (read from
/// `kept` when the directory keeps it) and whether it was built.
fn check_spectrum(
    m: &Manifest,
    corpus: &cfmem_core::Corpus,
    kept: &Path,
) -> Result<Option<(Spectrum, bool)>> {
    let design = m.design().checked()?;
    let Some(spec) = &m.spectrum else {
        design.config().budget_docs(corpus.len())?;
        return Ok(None);
    };
    if !m.units.is_documents() {
        return Err(Error::InvalidSetting {
            setting: "units",
            value: m.units.to_string(),
            expected: "documents with a spectrum (its levels are the units: --spectrum document,near-dup,topic:K)",
        });
    }
    let (spectrum, built) = spec.read_or_build(corpus, kept)?;
    spectrum.budget(&design)?;
    Ok(Some((spectrum, built)))
}
