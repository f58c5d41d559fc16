//! Means over documents whose interval knows that every document is scored
//! by the same models.
//!
//! A t-interval over documents treats their estimates as independent. They
//! are not: a model that memorizes more than the others (a lucky
//! initialisation or batch order) raises every document's gap at once, and
//! a model that is better overall shifts every document it left out. The
//! interval here is the same design-based one a single document gets: the
//! document-averaged contrast is a linear function of the scores, and its
//! error is clustered by block of the design (by model for designs without
//! blocks), so that whatever the models share across documents enters it.
//!
//! It is the interval of the mean over *these* documents (what the models
//! did to them), not of a population of documents they were drawn from.

use crate::error::Result;
use crate::estimate::{t_interval, Estimate, Metric, Welch};
use crate::report::{adjuster, Report};
use crate::rows::{Rows, Value};

/// `Σ_d weight[d] · mem(d)` over the documents of `report` (computed from
/// `src`, under its metric and adjustment), with its block-clustered
/// standard error and a Student-t interval on `K − 1` degrees of freedom
/// (`K` blocks, or models without blocks) at the report's level. Documents
/// without an estimate must have weight 0. `None` below two clusters.
///
/// # Formula
/// ```text
/// C   = Σ_d w_d (m_in(d) − m_out(d))                       (sign flipped for losses)
/// T_i = Σ_d w_d ( [d ∈ S_i] (s_id − m_in(d)) / n_in(d) − [d ∉ S_i] (s_id − m_out(d)) / n_out(d) )
/// se² = K / (K − 1) · Σ_k (Σ_{i ∈ block k} T_i)²
/// ```
/// (Liang & Zeger 1986, the CR1 factor; for one document with weight 1 it
/// is that document's clustered error.)
///
/// # Errors
/// Errors of the source.
pub fn contrast(report: &Report, src: &dyn Rows, weights: &[f64]) -> Result<Option<Welch>> {
    let cfg = &report.config;
    let estimates: Vec<&Estimate> = report.docs.iter().map(|d| &d.estimate).collect();
    let adj = adjuster(src, cfg.metric, cfg.adjustment, &|_| true)?;
    let setting = Contrast {
        metric: cfg.metric,
        level: cfg.level,
        block: report.block_size,
        side: &|c| Some(c > 0),
    };
    setting.of(&estimates, src, weights, &|copies, values| {
        adj.apply(copies, values)
    })
}

/// A row's scores as a contrast uses them, from its copies and values
/// (adjusted, or as they are).
pub(crate) type ScoresOf<'a> = dyn Fn(&[u32], &[f64]) -> Vec<f64> + 'a;

/// How a contrast's estimates were made: the metric (its orientation),
/// the level, the models per block (1: each model its own cluster) and
/// which side a model's copies of a document put it on (`None`: neither,
/// e.g. another copy count of a repetition design).
pub(crate) struct Contrast<'a> {
    pub(crate) metric: Metric,
    pub(crate) level: f64,
    pub(crate) block: usize,
    pub(crate) side: &'a dyn Fn(u32) -> Option<bool>,
}

impl Contrast<'_> {
    /// [`contrast`] over per-document `estimates` whose in- and out-models
    /// are given by `side`, the scores as `scores` makes them from a row.
    pub(crate) fn of(
        &self,
        estimates: &[&Estimate],
        src: &dyn Rows,
        weights: &[f64],
        scores: &ScoresOf<'_>,
    ) -> Result<Option<Welch>> {
        let sign = self.metric.orientation();
        let n = estimates.len().min(weights.len());
        // Per document: weight over n_in, weight over n_out, the side means.
        let parts: Vec<Option<[f64; 4]>> = (0..n)
            .map(|d| {
                let e = estimates[d];
                let w = weights[d];
                if w == 0.0 || e.mem.is_none() {
                    return None;
                }
                Some([
                    w / e.n_in as f64,
                    w / e.n_out as f64,
                    e.in_mean?,
                    e.out_mean?,
                ])
            })
            .collect();
        let value: f64 = (0..n)
            .filter_map(|d| Some(weights[d] * estimates[d].mem?))
            .sum();
        let block = self.block.max(1);
        let mut clusters: Vec<f64> = Vec::new();
        src.visit(Value::Scores(self.metric), &mut |r| {
            let scores = scores(r.copies, r.values);
            let mut t = 0.0;
            for (d, p) in parts.iter().enumerate() {
                let Some([wi, wo, mi, mo]) = *p else { continue };
                let s = scores[d];
                if !s.is_finite() {
                    continue;
                }
                t += match (self.side)(r.copies[d]) {
                    Some(true) => wi * (s - mi),
                    Some(false) => -wo * (s - mo),
                    None => 0.0,
                };
            }
            let k = r.model / block;
            if clusters.len() <= k {
                clusters.resize(k + 1, 0.0);
            }
            clusters[k] += sign * t;
            Ok(())
        })?;
        let k = clusters.len() as f64;
        if clusters.len() < 2 {
            return Ok(None);
        }
        let se = (k / (k - 1.0) * clusters.iter().map(|t| t * t).sum::<f64>()).sqrt();
        Ok(t_interval(value, se, k - 1.0, self.level))
    }
}

/// Weights that average the documents of `docs` that have an estimate
/// (`1/n` each), for [`contrast`].
pub fn mean_weights(report: &Report, docs: &[usize]) -> Vec<f64> {
    let with: Vec<usize> = docs
        .iter()
        .copied()
        .filter(|&d| report.docs.get(d).is_some_and(|e| e.estimate.mem.is_some()))
        .collect();
    let mut w = vec![0.0; report.docs.len()];
    for &d in &with {
        w[d] += 1.0 / with.len() as f64;
    }
    w
}

/// Weights of the difference of the means of `a` and `b` ([`mean_weights`]
/// of `a` minus those of `b`), for [`contrast`].
pub fn difference_weights(report: &Report, a: &[usize], b: &[usize]) -> Vec<f64> {
    mean_weights(report, a)
        .into_iter()
        .zip(mean_weights(report, b))
        .map(|(x, y)| x - y)
        .collect()
}
