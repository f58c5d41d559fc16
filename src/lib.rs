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
//! - [`analysis`] (`cfmem-analysis`): designs, estimators and their outputs on plain data (no candle);
//! - [`bundled`]: the corpora in `datasets/`;
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
pub use cfmem_sched as sched;

/// The corpora bundled in `datasets/` (read from this checkout).
pub mod bundled {
    use cfmem_core::{canaries, CanaryConfig, Corpus, Document, LoadConfig, Result};

    /// Path of The Devil's Dictionary (999 entries, `datasets/devil.jsonl`).
    pub const DEVIL_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/devil.jsonl");

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

/// The types most programs need.
pub mod prelude {
    pub use cfmem_analysis::{
        analyse, report, AnalysisConfig, DesignConfig, DesignKind, Estimate, MemAccumulator,
        Membership, Metric, ReportConfig, Rows,
    };
    pub use cfmem_core::{
        canaries, CanaryConfig, Corpus, Document, LoadConfig, ModelConfig, TrainConfig,
    };
    pub use cfmem_sched::{
        run, Experiment, Observer, OnChange, PrintProgress, RunConfig, Seeding, Silent,
    };
}

/// The README's code blocks, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
