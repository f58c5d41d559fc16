//! # cfmem: counterfactual memorization of documents in language models
//!
//! cfmem trains many small language models (candle) on random subsets of a
//! corpus, evaluates every model on every document, and estimates per
//! document how much a model's performance depends on the document having
//! been in its training set (Zhang et al. 2021):
//!
//! ```text
//! mem(x) = E[ M(A(S), x) | x ∈ S ] − E[ M(A(S), x) | x ∉ S ]
//! ```
//!
//! This crate only gathers the others:
//! - [`engine`] (`cfmem-core`): corpora, tokenizers, the ensemble transformer, training, evaluation;
//! - [`sched`] (`cfmem-sched`): experiment directories, the parallel, resumable executor;
//! - [`analysis`] (`cfmem-analysis`): designs and estimators on plain data (no candle);
//! - [`report`] (`cfmem-report`): their outputs: CSV, JSON, Parquet, charts, HTML, terminal tables;
//! - [`hash`] (`cfmem-hash`): the seeded hashes and generator every random draw comes from;
//! - [`bundled`]: the corpora in `datasets/`; [`synthetic`]: generated corpora of any size;
//! - [`prelude`]: the types most programs need.
//!
//! ```no_run
//! use cfmem::prelude::*;
//!
//! let corpus = Corpus::load("datasets/devil.jsonl", &LoadConfig::default())?;
//! let exp = Experiment::builder("experiments/devil").corpus(corpus).open(OnChange::Refuse)?;
//! run(&exp, &RunConfig { n_models: 16, ..RunConfig::default() }, &PrintProgress::every(4))?;
//! for d in report(&exp, &ReportConfig::default())?.ranked().iter().take(10) {
//!     let e = &d.estimate;
//!     println!("{:<20} mem {:.3} [{:.3}, {:.3}]", d.id, e.mem.unwrap(), e.ci_low.unwrap(), e.ci_high.unwrap());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub use cfmem_analysis as analysis;
pub use cfmem_core as engine;
pub use cfmem_hash as hash;
pub use cfmem_report as report;
pub use cfmem_sched as sched;

/// The corpora bundled in `datasets/` (read from this checkout).
pub mod bundled {
    use cfmem_core::{canaries, CanaryConfig, Corpus, Document, LoadConfig, Result};

    /// Path of The Devil's Dictionary (999 entries, `datasets/devil.jsonl`).
    pub const DEVIL_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/devil.jsonl");

    /// Path of The Jargon File 4.4.7 (2,307 entries, `datasets/jargon.jsonl`):
    /// a second natural corpus, e.g. to pretrain a base model on.
    pub const JARGON_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/jargon.jsonl");

    /// Path of 10,000 WordNet 3.0 glosses (`datasets/wordnet.jsonl`): a
    /// corpus of realistic size for the large-corpus recipe.
    pub const WORDNET_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/wordnet.jsonl");

    /// The 10,000 WordNet glosses.
    ///
    /// # Errors
    /// When `datasets/wordnet.jsonl` cannot be read.
    pub fn wordnet() -> Result<Corpus> {
        Corpus::load(WORDNET_PATH, &LoadConfig::default())
    }

    /// The quickstart corpus: 120 short dictionary entries (at most 160
    /// characters, evenly spaced through the dictionary) plus 16 random
    /// canaries and 16 controls ([`canaries`] with its defaults): 152
    /// documents.
    ///
    /// # Errors
    /// When `datasets/devil.jsonl` cannot be read.
    pub fn quickstart_corpus() -> Result<Corpus> {
        let mut docs = short_entries(120)?;
        docs.extend(canaries(&CanaryConfig::default()));
        Corpus::from_documents(docs)
    }

    /// `n` entries of The Devil's Dictionary of at most 160 characters,
    /// evenly spaced through it.
    ///
    /// # Errors
    /// When `datasets/devil.jsonl` cannot be read.
    pub fn short_entries(n: usize) -> Result<Vec<Document>> {
        const MAX_CHARS: usize = 160;
        let full = Corpus::load(DEVIL_PATH, &LoadConfig::default())?;
        let short: Vec<&Document> = full
            .documents()
            .iter()
            .filter(|d| d.text.len() <= MAX_CHARS)
            .collect();
        let step = (short.len() / n.max(1)).max(1);
        Ok(short
            .iter()
            .step_by(step)
            .take(n)
            .map(|&d| d.clone())
            .collect())
    }
}

/// Synthetic corpora of any size, for scale tests and benchmarks.
pub mod synthetic {
    use cfmem_core::{Corpus, Document, Result};
    use cfmem_hash::SplitMix64;

    /// `n_docs` documents of pseudo-words (a vocabulary of 2,000 words of 2
    /// to 9 letters, drawn with Zipf-like frequencies, so that a model has
    /// something to learn), 40 to 160 bytes each (100 on average), with
    /// ids `doc-NNNNNNN`: a pure function of `(n_docs, seed)`.
    ///
    /// ```
    /// let c = cfmem::synthetic::corpus(100, 1)?;
    /// assert_eq!(c.len(), 100);
    /// assert_eq!(c.documents(), cfmem::synthetic::corpus(100, 1)?.documents());
    /// # Ok::<(), cfmem::engine::Error>(())
    /// ```
    ///
    /// # Errors
    /// Never for `n_docs ≥ 1` (an empty corpus is an error).
    pub fn corpus(n_docs: usize, seed: u64) -> Result<Corpus> {
        let mut rng = SplitMix64::new(seed);
        let words: Vec<String> = (0..2000)
            .map(|_| {
                let len = 2 + rng.below(8) as usize;
                (0..len)
                    .map(|_| char::from(b'a' + rng.below(26) as u8))
                    .collect()
            })
            .collect();
        let docs = (0..n_docs)
            .map(|i| {
                let target = 40 + rng.below(121) as usize;
                let mut text = String::with_capacity(target + 10);
                while text.len() < target {
                    // Zipf-like: index ⌊2000 · u³⌋ favours the first words.
                    let u = rng.next_f64();
                    let w = &words[((u * u * u) * words.len() as f64) as usize];
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(w);
                }
                Document::new(format!("doc-{i:07}"), text)
            })
            .collect();
        Corpus::from_documents(docs)
    }
}

/// The types most programs need.
pub mod prelude {
    pub use cfmem_analysis::{
        analyse, report, AnalysisConfig, DesignConfig, DesignKind, Estimate, MemAccumulator,
        Membership, Metric, ReportConfig, Rows,
    };
    pub use cfmem_core::{
        canaries, CanaryConfig, Corpus, Document, LoadConfig, ModelConfig, Precision, TrainConfig,
    };
    pub use cfmem_sched::{
        run, Experiment, Observer, OnChange, PrintProgress, RunConfig, Seeding, Silent,
    };
}

/// The README's code blocks, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The book's chapters (`docs/src/`), their code blocks compiled and run as
/// doctests, so that the documentation cannot drift from the code (the
/// command-line reference is checked by a test of `cfmem-cli`).
#[cfg(doctest)]
mod book {
    #[doc = include_str!("../docs/src/introduction.md")]
    struct Introduction;
    #[doc = include_str!("../docs/src/guide/cli.md")]
    struct GuideCli;
    #[doc = include_str!("../docs/src/guide/library.md")]
    struct GuideLibrary;
    #[doc = include_str!("../docs/src/guide/html-report.md")]
    struct GuideHtmlReport;
    #[doc = include_str!("../docs/src/guide/finetuning.md")]
    struct GuideFinetuning;
    #[doc = include_str!("../docs/src/guide/gpu.md")]
    struct GuideGpu;
    #[doc = include_str!("../docs/src/guide/cluster.md")]
    struct GuideCluster;
    #[doc = include_str!("../docs/src/reference/cli.md")]
    struct ReferenceCli;
    #[doc = include_str!("../docs/src/reference/experiment-directory.md")]
    struct ReferenceExperimentDirectory;
    #[doc = include_str!("../docs/src/reference/estimators.md")]
    struct ReferenceEstimators;
    #[doc = include_str!("../docs/src/reference/crates.md")]
    struct ReferenceCrates;
    #[doc = include_str!("../docs/src/results/quickstart.md")]
    struct ResultsQuickstart;
    #[doc = include_str!("../docs/src/results/examples.md")]
    struct ResultsExamples;
    #[doc = include_str!("../docs/src/results/efficiency.md")]
    struct ResultsEfficiency;
    #[doc = include_str!("../docs/src/results/scale.md")]
    struct ResultsScale;
    #[doc = include_str!("../docs/src/results/large-corpora.md")]
    struct ResultsLargeCorpora;
    #[doc = include_str!("../docs/src/results/precision.md")]
    struct ResultsPrecision;
    #[doc = include_str!("../docs/src/results/model-families.md")]
    struct ResultsModelFamilies;
    #[doc = include_str!("../docs/src/results/spectrum.md")]
    struct ResultsSpectrum;
    #[doc = include_str!("../docs/src/benchmarks.md")]
    struct Benchmarks;
    #[doc = include_str!("../docs/src/changelog.md")]
    struct Changelog;
    #[doc = include_str!("../docs/src/development.md")]
    struct Development;
}
