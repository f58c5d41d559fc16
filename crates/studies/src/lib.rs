//! The studies behind cfmem's prediction examples: each tests one
//! prediction about counterfactual memorization on a corpus it builds,
//! trains (or resumes) its experiments under a directory, and returns its
//! numbers. The examples run them at full size and print and plot the
//! results; the integration tests (`tests/studies.rs` at the root) run them
//! small and check the direction of each effect, so a regression in
//! training or estimation that breaks the science fails CI.
//!
//! A prediction *holds* when the 95 % interval of the effect excludes 0 in
//! the predicted direction; a prediction that fails is reported as such.
//!
//! This crate is not published: it is the code of the examples, kept where
//! the tests can reach it.
#![deny(missing_docs)]

use std::path::Path;

use cfmem::analysis::{report, DesignKind, Estimate, ReportConfig};
use cfmem::engine::{Corpus, TrainConfig};
use cfmem::sched::{run, Experiment, ExperimentBuilder, Observer, OnChange, RunConfig, UnitSpec};

mod convergence;
mod duplicates;
mod families;
mod finetune;
mod influence;
mod precision;
mod proxies;
mod random;
mod repetition;
mod shrinkage;
mod spectrum;
mod text;

pub use cfmem::analysis::{Difference, MeanCi};
pub use convergence::{convergence, split_half, ConvergenceStudy, Crossing, CurvePoint};
pub use duplicates::{near_duplicates, NearDuplicates};
pub use families::{family_model, model_families, FamiliesStudy, MethodArm, FAMILIES};
pub use finetune::{fine_tuning_corpus, finetune, Arm, BaseScale, FinetuneStudy, KindSummary};
pub use influence::{influence, InfluenceStudy, QueryTop, RankedUnit};
pub use precision::{precision_study, PrecisionArm, PrecisionStudy};
pub use proxies::{proxy_study, proxy_study_of, ProxyRow, ProxyStudy};
pub use random::{random_vs_predictable, KindPoint, RandomVsPredictable};
pub use repetition::{repetition, Level, RepetitionStudy};
pub use shrinkage::{shrinkage, shrinkage_of, ShrinkPoint, ShrinkageStudy};
pub use spectrum::{
    spectrum_corpus, spectrum_kind, spectrum_levels, spectrum_models, spectrum_natural,
    spectrum_study, CanaryParts, NaturalSpectrum, SpectrumStudy, TopicDriven, Verdict,
    SPECTRUM_KINDS,
};

/// Errors of a study.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Corpus or training errors.
    #[error(transparent)]
    Core(#[from] cfmem::engine::Error),
    /// Experiment directory or run errors.
    #[error(transparent)]
    Sched(#[from] cfmem::sched::Error),
    /// Estimation errors.
    #[error(transparent)]
    Analysis(#[from] cfmem::analysis::Error),
    /// Something the study planted is missing from its results.
    #[error("the study's results lack {0}")]
    Missing(String),
}

/// Result with the studies' [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// How big a study runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// Models per experiment (the budget, for the convergence study).
    pub n_models: usize,
    /// Epochs per model.
    pub epochs: usize,
    /// Natural-text documents (short dictionary entries) in the corpus.
    pub n_natural: usize,
    /// Documents per planted group (random ids, repeated words, duplicates…).
    pub n_planted: usize,
}

impl Scale {
    /// The examples' size: 32 models, 64 epochs, 64 dictionary entries, 16
    /// planted documents per group (each study under 10 minutes on 2 cores).
    pub fn full() -> Self {
        Self {
            n_models: 32,
            epochs: 64,
            n_natural: 64,
            n_planted: 16,
        }
    }

    /// The integration tests' size (seconds).
    pub fn small() -> Self {
        Self {
            n_models: 16,
            epochs: 48,
            n_natural: 24,
            n_planted: 8,
        }
    }
}

/// The 95 % level every study reports.
const LEVEL: f64 = 0.95;

/// Train (or resume) an experiment in `dir` with the default settings but
/// `design`, `units` and the scale's epochs; recreated when its settings
/// changed (the examples own their directories).
fn experiment(
    dir: &Path,
    corpus: Corpus,
    queries: Option<Corpus>,
    design: DesignKind,
    units: UnitSpec,
    scale: &Scale,
    observer: &dyn Observer,
) -> Result<Experiment> {
    let mut b = Experiment::builder(dir)
        .corpus(corpus)
        .design(design)
        .units(units);
    if let Some(q) = queries {
        b = b.queries(q);
    }
    train(b, scale, observer)
}

/// Open the experiment `b` describes with the scale's epochs (recreated
/// when its settings changed) and train the scale's models.
fn train(b: ExperimentBuilder, scale: &Scale, observer: &dyn Observer) -> Result<Experiment> {
    let exp = b
        .train(TrainConfig {
            epochs: scale.epochs,
            ..TrainConfig::default()
        })
        .open(OnChange::Replace)?;
    run(
        &exp,
        &RunConfig {
            n_models: scale.n_models,
            ..RunConfig::default()
        },
        observer,
    )?;
    Ok(exp)
}

/// Per-document estimates with the report's defaults (model-mean adjusted
/// per-token accuracy), by id.
fn estimates(exp: &Experiment) -> Result<Vec<(String, Estimate)>> {
    let rep = report(exp, &ReportConfig::default())?;
    Ok(rep.docs.into_iter().map(|d| (d.id, d.estimate)).collect())
}

/// The indices of `rep`'s documents whose id starts with `prefix`.
fn indices(rep: &cfmem::analysis::Report, prefix: &str) -> Vec<usize> {
    rep.docs
        .iter()
        .filter(|d| d.id.starts_with(prefix))
        .map(|d| d.index)
        .collect()
}

/// The indices of `rep`'s documents of kind `kind`
/// ([`cfmem::engine::kind_of`]: `"documents"`, `"random canaries"` or
/// `"controls"`).
fn of_kind(rep: &cfmem::analysis::Report, kind: &str) -> Vec<usize> {
    rep.docs
        .iter()
        .filter(|d| cfmem::engine::kind_of(&d.id) == kind)
        .map(|d| d.index)
        .collect()
}
