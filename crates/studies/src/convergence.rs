//! Split-half convergence of the estimates against the number of models.

use std::path::Path;

use cfmem::analysis::{
    convergence as split, Adjustment, ConvergenceConfig, DesignKind, ReportConfig,
};
use cfmem::engine::Corpus;
use cfmem::sched::{Experiment, Observer, UnitSpec};

use crate::{experiment, Result, Scale};

/// One point of a split-half curve.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    /// Models used (half in each half).
    pub models: usize,
    /// Spearman correlation of the two halves' estimates (mean over
    /// random partitions of the models).
    pub spearman: Option<f64>,
    /// Lower end of its 95 % bootstrap interval over documents.
    pub ci_low: Option<f64>,
    /// Upper end.
    pub ci_high: Option<f64>,
    /// Spearman–Brown reliability of the estimate from all `models`.
    pub reliability: Option<f64>,
    /// Training seconds of the first `models` models, summed (one core each).
    pub model_seconds: f64,
}

/// Split-half convergence of the first `n` models' estimates (per-token
/// accuracy, adjusted as asked) at `checkpoints` (and `n`).
///
/// # Errors
/// I/O or analysis errors.
pub fn split_half(
    exp: &Experiment,
    n: usize,
    adjustment: Adjustment,
    checkpoints: &[usize],
) -> Result<Vec<CurvePoint>> {
    let cfg = ConvergenceConfig {
        report: ReportConfig {
            adjustment,
            ..ReportConfig::default()
        },
        checkpoints: Some(checkpoints.to_vec()),
        n_models: Some(n),
        ..ConvergenceConfig::default()
    };
    let points = split(exp, &cfg)?;
    let secs: Vec<f64> = (0..n)
        .map(|i| exp.read_meta(i).map_or(0.0, |m| m.seconds))
        .collect();
    Ok(points
        .into_iter()
        .map(|p| CurvePoint {
            models: p.n_models,
            spearman: p.spearman,
            ci_low: p.ci_low,
            ci_high: p.ci_high,
            reliability: p.reliability,
            model_seconds: secs[..p.n_models.min(n)].iter().sum(),
        })
        .collect())
}

/// The first checkpoint at which the split-half Spearman reached 0.9.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    /// Models at that checkpoint.
    pub models: usize,
    /// Wall seconds to train them on this machine's cores.
    pub wall_seconds: f64,
}

/// Split-half convergence of the estimates against the number of models.
#[derive(Debug, Clone)]
pub struct ConvergenceStudy {
    /// The curve at 8, 16, 24, 32, 48, 64, 96 models (those ≤ the budget).
    pub curve: Vec<CurvePoint>,
    /// Where the split-half Spearman first reached 0.9.
    pub crossing: Option<Crossing>,
    /// Cores the wall time is computed for.
    pub cores: usize,
}

/// What the compute buys: `scale.n_models` models on `corpus` with the
/// default settings (shared seeds, blocks of 2, model-mean adjustment,
/// `scale.epochs` epochs), and the split-half curve of their estimates.
///
/// # Errors
/// Training or I/O errors.
pub fn convergence(
    dir: &Path,
    corpus: Corpus,
    scale: &Scale,
    observer: &dyn Observer,
) -> Result<ConvergenceStudy> {
    let exp = experiment(
        dir,
        corpus,
        None,
        DesignKind::Blocks { b: 2 },
        UnitSpec::Documents,
        scale,
        observer,
    )?;
    let curve = split_half(
        &exp,
        scale.n_models,
        Adjustment::ModelMean,
        &[8, 16, 24, 32, 48, 64, 96],
    )?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let crossing = curve
        .iter()
        .find(|c| c.spearman.is_some_and(|r| r >= 0.9))
        .map(|c| Crossing {
            models: c.models,
            wall_seconds: c.model_seconds / cores as f64,
        });
    Ok(ConvergenceStudy {
        curve,
        crossing,
        cores,
    })
}
