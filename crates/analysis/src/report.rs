//! Per-document memorization estimates from any source of rows.

use serde::{Deserialize, Serialize};

use crate::accumulator::MemAccumulator;
use crate::adjust::{Adjuster, Adjustment};
use crate::error::{Error, Result};
use crate::estimate::{Estimate, Metric};
use crate::fdr::{p_value, q_values};
use crate::rows::{Rows, SkippedRow, Value};

/// How estimates are computed. The one default for the library and the
/// `cfmem report` command alike.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `metric` | accuracy | per-token accuracy (Zhang et al.), loss or sequence log-probability |
/// | `adjustment` | model-mean | subtract each model's effect before estimating ([`Adjustment`]); `none` is the plain estimator; a 0/1 metric (extraction) is never adjusted, and its report says `none` |
/// | `level` | 0.95 | confidence level of the intervals, in (0, 1) |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReportConfig {
    /// The per-document measure.
    pub metric: Metric,
    /// Model-effect adjustment.
    pub adjustment: Adjustment,
    /// Confidence level of the intervals.
    pub level: f64,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            metric: Metric::Accuracy,
            adjustment: Adjustment::ModelMean,
            level: 0.95,
        }
    }
}

impl ReportConfig {
    /// The plain estimator (no adjustment) under `metric`.
    pub fn plain(metric: Metric) -> Self {
        Self {
            metric,
            adjustment: Adjustment::None,
            ..Self::default()
        }
    }

    /// The default settings under `metric`.
    pub fn with_metric(metric: Metric) -> Self {
        Self {
            metric,
            ..Self::default()
        }
    }

    /// Validate.
    ///
    /// # Errors
    /// [`Error::InvalidLevel`] for a level outside (0, 1).
    pub fn check(&self) -> Result<()> {
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::InvalidLevel(self.level));
        }
        Ok(())
    }
}

/// The estimate of one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocEstimate {
    /// Index in the corpus.
    pub index: usize,
    /// Document id.
    pub id: String,
    /// The estimate.
    #[serde(flatten)]
    pub estimate: Estimate,
}

/// Estimates for every document, and which rows were used.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// How it was computed.
    pub config: ReportConfig,
    /// One per document, in corpus order.
    pub docs: Vec<DocEstimate>,
    /// Rows used.
    pub n_models: usize,
    /// Rows left out, with the reason.
    pub skipped: Vec<SkippedRow>,
    /// Models per block of the design (1 without blocks): the standard
    /// errors are clustered by block when it is above 1, Welch's otherwise.
    pub block_size: usize,
}

/// Which standard error a [`Report`]'s intervals rest on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StandardError {
    /// Clustered by block of the design (CR1, `K − 1` degrees of freedom).
    BlockClustered,
    /// Welch's unequal-variance error (Welch–Satterthwaite degrees of freedom).
    Welch,
    /// For a 0/1 metric with independent models: the MOVER interval of a
    /// difference of proportions on Clopper–Pearson bounds.
    ExactMover,
    /// For a 0/1 metric in a block design: the same, widened by a negative
    /// correlation of the sides estimated across blocks.
    ExactMoverBlocks,
}

impl StandardError {
    /// How outputs name it: `block-clustered` or `Welch`.
    pub fn label(self) -> &'static str {
        match self {
            Self::BlockClustered => "block-clustered",
            Self::Welch => "Welch",
            Self::ExactMover => "Clopper-Pearson MOVER",
            Self::ExactMoverBlocks => "Clopper-Pearson MOVER, block-correlated",
        }
    }
}

impl StandardError {
    /// The interval it gives, in words: `Student t, Welch error`,
    /// `Student t, block-clustered error`, or the 0/1 metrics' interval.
    pub fn interval(self) -> String {
        match self {
            Self::BlockClustered | Self::Welch => format!("Student t, {} error", self.label()),
            Self::ExactMover | Self::ExactMoverBlocks => {
                format!("{} interval of a difference of proportions", self.label())
            }
        }
    }
}

impl std::fmt::Display for StandardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl Report {
    /// The metric.
    pub fn metric(&self) -> Metric {
        self.config.metric
    }

    /// The standard error behind the intervals: block-clustered when the
    /// design has blocks of more than one model, Welch's otherwise.
    pub fn standard_error(&self) -> StandardError {
        match (self.metric().is_binary(), self.block_size > 1) {
            (true, true) => StandardError::ExactMoverBlocks,
            (true, false) => StandardError::ExactMover,
            (false, true) => StandardError::BlockClustered,
            (false, false) => StandardError::Welch,
        }
    }

    /// Each document's Benjamini–Hochberg q-value for `mem > 0`, in corpus
    /// order, over the documents with an error ([`crate::q_values`]).
    pub fn q_values(&self) -> Vec<Option<f64>> {
        let p: Vec<Option<f64>> = self.docs.iter().map(|d| p_value(&d.estimate)).collect();
        q_values(&p)
    }

    /// Documents memorized at false discovery rate `fdr`: q-value ≤ `fdr`.
    pub fn discoveries(&self, fdr: f64) -> usize {
        crate::fdr::discoveries(&self.q_values(), fdr)
    }

    /// Documents with an estimate, most memorized first.
    pub fn ranked(&self) -> Vec<&DocEstimate> {
        let mut v: Vec<&DocEstimate> = self
            .docs
            .iter()
            .filter(|d| d.estimate.mem.is_some())
            .collect();
        v.sort_by(|a, b| {
            b.estimate
                .mem
                .partial_cmp(&a.estimate.mem)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        v
    }

    /// Documents without an estimate because a side has no model (more
    /// models would give them one).
    pub fn n_missing(&self) -> usize {
        self.docs
            .iter()
            .filter(|d| d.estimate.mem.is_none() && !self.not_scored(d))
            .count()
    }

    /// Documents no model scored under the metric (too short for the
    /// extraction test).
    pub fn n_not_scored(&self) -> usize {
        self.docs.iter().filter(|d| self.not_scored(d)).count()
    }

    fn not_scored(&self, d: &DocEstimate) -> bool {
        d.estimate.reason == Some(crate::estimate::NoEstimate::NotScored)
    }

    /// `mem` per document in corpus order (`NaN` where there is none).
    pub fn mems(&self) -> Vec<f64> {
        self.docs
            .iter()
            .map(|d| d.estimate.mem.unwrap_or(f64::NAN))
            .collect()
    }
}

/// The first pass of an adjustment over the rows `keep` accepts (nothing
/// to do for [`Adjustment::None`]).
pub(crate) fn adjuster(
    src: &dyn Rows,
    metric: Metric,
    adjustment: Adjustment,
    keep: &dyn Fn(usize) -> bool,
) -> Result<Adjuster> {
    let mut adj = Adjuster::new(adjustment, src.ids().len());
    if adj.needs_first_pass() {
        src.visit(Value::Scores(metric), &mut |r| {
            if keep(r.model) {
                adj.observe(r.copies, r.values);
            }
            Ok(())
        })?;
    }
    Ok(adj)
}

/// Stream every usable row of `src` into per-document estimates (memory
/// O(documents); two passes over the rows when adjusting). The standard
/// error is clustered by block for block designs ([`MemAccumulator`]).
///
/// ```
/// use cfmem_analysis::{report, DesignConfig, Metric, ReportConfig, Synthetic};
///
/// // 16 models on blocks of 2 over 20 documents whose true memorization is 0.3.
/// let rows = Synthetic::new(DesignConfig::blocks(2, 1), 16, vec![0.3; 20]).noise(0.05);
/// let rep = report(&rows, &ReportConfig::default())?;
/// for d in &rep.docs {
///     let e = &d.estimate;
///     assert_eq!((e.n_in, e.n_out), (8, 8));
///     assert!(e.ci_low.unwrap() < 0.3 + 0.1 && e.ci_high.unwrap() > 0.3 - 0.1);
/// }
/// # Ok::<(), cfmem_analysis::Error>(())
/// ```
///
/// # Errors
/// Errors of the source; an invalid [`ReportConfig`].
pub fn report(src: &dyn Rows, cfg: &ReportConfig) -> Result<Report> {
    cfg.check()?;
    let mut cfg = *cfg;
    if cfg.metric.is_binary() {
        // The interval of a difference of proportions needs the 0/1 scores
        // themselves: no model-effect adjustment.
        cfg.adjustment = Adjustment::None;
    }
    let ids = src.ids();
    let adj = adjuster(src, cfg.metric, cfg.adjustment, &|_| true)?;
    let block_size = src.block_size();
    let mut acc = MemAccumulator::new(ids.len(), cfg.metric)
        .level(cfg.level)
        .blocks(block_size);
    let skipped = src.visit(Value::Scores(cfg.metric), &mut |r| {
        acc.add_model(r.model, r.copies, &adj.apply(r.copies, r.values))
    })?;
    let docs = acc
        .finish()
        .into_iter()
        .zip(ids)
        .enumerate()
        .map(|(index, (estimate, id))| DocEstimate {
            index,
            id,
            estimate,
        })
        .collect();
    Ok(Report {
        config: cfg,
        docs,
        n_models: acc.n_models(),
        skipped,
        block_size,
    })
}

/// How two reports on the same documents agree (e.g. per-token
/// memorization against extraction): each estimate called present when it
/// is a discovery at the false discovery rate asked (its q-value over its
/// report's documents at most that rate; [`Report::q_values`]), "not
/// detected" otherwise. Documents without an estimate in either report
/// (too short, a side with no model) are left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// Present in both.
    pub both: usize,
    /// Present in the first report only.
    pub first_only: usize,
    /// Present in the second report only.
    pub second_only: usize,
    /// Present in neither.
    pub neither: usize,
}

impl Agreement {
    /// Count `first` against `second`, document by document, discoveries
    /// at false discovery rate `fdr` (e.g. [`crate::DEFAULT_FDR`]).
    pub fn of(first: &Report, second: &Report, fdr: f64) -> Self {
        let (qx, qy) = (first.q_values(), second.q_values());
        let found = |q: Option<f64>| q.is_some_and(|q| q <= fdr);
        let mut a = Self::default();
        for (k, (x, y)) in first.docs.iter().zip(&second.docs).enumerate() {
            if x.estimate.mem.is_none() || y.estimate.mem.is_none() {
                continue;
            }
            *match (found(qx[k]), found(qy[k])) {
                (true, true) => &mut a.both,
                (true, false) => &mut a.first_only,
                (false, true) => &mut a.second_only,
                (false, false) => &mut a.neither,
            } += 1;
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::{NoEstimate, RunningStats};

    /// Estimates with `(mem, se)` (infinite degrees of freedom).
    fn rep(cis: &[Option<(f64, f64)>]) -> Report {
        let docs = cis
            .iter()
            .enumerate()
            .map(|(index, ci)| {
                let s = RunningStats {
                    n: 2,
                    mean: 0.0,
                    m2: 0.0,
                };
                let mut estimate = Estimate::from_stats(&s, &s, Metric::Accuracy, 0.95);
                match ci {
                    Some((mem, se)) => {
                        estimate.mem = Some(*mem);
                        estimate.se = Some(*se);
                        estimate.df = Some(f64::INFINITY);
                    }
                    None => {
                        estimate.mem = None;
                        estimate.reason = Some(NoEstimate::NotScored);
                    }
                }
                DocEstimate {
                    index,
                    id: format!("d{index}"),
                    estimate,
                }
            })
            .collect();
        Report {
            config: ReportConfig::default(),
            docs,
            n_models: 4,
            skipped: Vec::new(),
            block_size: 1,
        }
    }

    #[test]
    fn agreement_counts_by_hand() {
        // z = 5 (p ≈ 3e-7) and z = 0.5 (p ≈ 0.31): q-values over 5
        // documents keep the first a discovery and the second not.
        let (up, flat) = (Some((0.5, 0.1)), Some((0.05, 0.1)));
        let a = rep(&[up, up, flat, flat, up, None]);
        let b = rep(&[up, flat, up, flat, None, up]);
        // d0 both, d1 first only, d2 second only, d3 neither; d4, d5 left out.
        assert_eq!(
            Agreement::of(&a, &b, 0.05),
            Agreement {
                both: 1,
                first_only: 1,
                second_only: 1,
                neither: 1
            }
        );
    }
}
