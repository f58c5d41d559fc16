//! Does shrinkage rank better? The estimates of the first 8 and 16 models
//! of an experiment, raw and shrunk ([`cfmem::analysis::shrink`]), against
//! the raw estimates of its other models (an independent experiment: other
//! subsets, other seeds), by Spearman over the documents.

use std::path::Path;

use cfmem::analysis::{
    report, shrink, spearman, spearman_ci, Correlation, DesignKind, ModelRange, ReportConfig, Rows,
};
use cfmem::engine::Corpus;
use cfmem::hash::SplitMix64;
use cfmem::sched::{Experiment, Observer, UnitSpec};

use crate::{experiment, Result, Scale, LEVEL};

/// One row of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct ShrinkPoint {
    /// Models whose estimates are compared (the experiment's first ones).
    pub models: usize,
    /// Spearman of their raw estimates with the reference.
    pub raw: Option<Correlation>,
    /// Spearman of their shrunk estimates with the reference.
    pub shrunk: Option<Correlation>,
    /// `shrunk − raw` with a 95 % paired bootstrap interval over documents
    /// (1,000 resamples): `(difference, low, high)`.
    pub gain: Option<(f64, f64, f64)>,
}

/// The comparison over one experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct ShrinkageStudy {
    /// Models of the reference (the experiment's last ones).
    pub reference_models: usize,
    /// Documents compared.
    pub n_docs: usize,
    /// One row per size of the compared experiment.
    pub points: Vec<ShrinkPoint>,
}

/// Train (or resume) `scale.n_models` models on `corpus` with the default
/// settings in `dir` and compare.
///
/// # Errors
/// Training or estimation errors.
pub fn shrinkage(
    dir: &Path,
    corpus: Corpus,
    scale: &Scale,
    observer: &dyn Observer,
) -> Result<ShrinkageStudy> {
    let exp: Experiment = experiment(
        dir,
        corpus,
        None,
        DesignKind::Blocks { b: 2 },
        UnitSpec::Documents,
        scale,
        observer,
    )?;
    let n = exp.n_recorded()?;
    shrinkage_of(&exp, n, &[8, 16])
}

/// The comparison over the first `n_models` models of `src`: the first
/// `sizes` models against models `max(sizes)..n_models`, with the report's
/// default settings.
///
/// # Errors
/// Estimation errors; [`crate::Error::Missing`] with too few models.
pub fn shrinkage_of(src: &dyn Rows, n_models: usize, sizes: &[usize]) -> Result<ShrinkageStudy> {
    let split = sizes.iter().copied().max().unwrap_or(0);
    if n_models < split + 4 {
        return Err(crate::Error::Missing(format!(
            "models beyond the first {split} for a reference (have {n_models})"
        )));
    }
    let cfg = ReportConfig::default();
    let reference = report(&ModelRange::new(src, split..n_models)?, &cfg)?;
    let truth: Vec<f64> = reference
        .docs
        .iter()
        .map(|d| d.estimate.mem.unwrap_or(f64::NAN))
        .collect();
    let mut points = Vec::new();
    for &m in sizes {
        let small = report(&ModelRange::new(src, 0..m)?, &cfg)?;
        let raw: Vec<f64> = small
            .docs
            .iter()
            .map(|d| d.estimate.mem.unwrap_or(f64::NAN))
            .collect();
        let shrunk: Vec<f64> = shrink(&small)?
            .means()
            .into_iter()
            .map(|x| x.unwrap_or(f64::NAN))
            .collect();
        points.push(ShrinkPoint {
            models: m,
            raw: spearman_ci(&raw, &truth, LEVEL),
            shrunk: spearman_ci(&shrunk, &truth, LEVEL),
            gain: paired_gain(&raw, &shrunk, &truth),
        });
    }
    Ok(ShrinkageStudy {
        reference_models: n_models - split,
        n_docs: truth.iter().filter(|x| x.is_finite()).count(),
        points,
    })
}

/// `spearman(b, t) − spearman(a, t)` with its 95 % percentile bootstrap
/// interval over documents (1,000 resamples, seed 0).
pub(crate) fn paired_gain(a: &[f64], b: &[f64], t: &[f64]) -> Option<(f64, f64, f64)> {
    let keep: Vec<usize> = (0..t.len())
        .filter(|&d| a[d].is_finite() && b[d].is_finite() && t[d].is_finite())
        .collect();
    let pick = |idx: &[usize], v: &[f64]| -> Vec<f64> { idx.iter().map(|&d| v[d]).collect() };
    let gain = |idx: &[usize]| -> Option<f64> {
        let tt = pick(idx, t);
        Some(spearman(&pick(idx, b), &tt)? - spearman(&pick(idx, a), &tt)?)
    };
    let point = gain(&keep)?;
    let mut rng = SplitMix64::new(0);
    let mut draws: Vec<f64> = (0..1000)
        .filter_map(|_| {
            let idx: Vec<usize> = (0..keep.len())
                .map(|_| keep[(rng.next_u64() % keep.len() as u64) as usize])
                .collect();
            gain(&idx)
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let q = |p: f64| draws[((draws.len() - 1) as f64 * p).round() as usize];
    (!draws.is_empty()).then(|| (point, q(0.025), q(0.975)))
}
