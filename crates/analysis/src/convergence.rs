//! Convergence of the estimates: split-half rank agreement as models are added.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::estimate::{MemAccumulator, Metric};
use crate::report::adjuster;
use crate::rows::{count_rows, Rows, Value};

/// Spearman's rank correlation of `a` and `b` (average ranks for ties),
/// over the pairs where both are finite. `None` below three pairs or when a
/// side is constant.
///
/// # Formula
/// ```text
/// ρ = Pearson( rank(a), rank(b) )
/// ```
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    let (x, y): (Vec<f64>, Vec<f64>) = a
        .iter()
        .zip(b)
        .filter(|(p, q)| p.is_finite() && q.is_finite())
        .map(|(p, q)| (*p, *q))
        .unzip();
    if x.len() < 3 {
        return None;
    }
    pearson(&ranks(&x), &ranks(&y))
}

/// Average ranks (1-based), ties sharing the mean of their positions.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Pearson's correlation; `None` when a side is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Spearman–Brown prophecy: the reliability of an estimate from twice the
/// models of a half whose split-half correlation is `r`.
///
/// # Formula
/// ```text
/// r_full = 2 r / (1 + r)
/// ```
pub fn spearman_brown(r: f64) -> f64 {
    2.0 * r / (1.0 + r)
}

/// One point of the convergence curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvergencePoint {
    /// Models used in all (half in each half).
    pub n_models: usize,
    /// Spearman correlation between the two halves' estimates (`None` when
    /// fewer than three documents have an estimate in both).
    pub spearman: Option<f64>,
    /// Spearman–Brown reliability of an estimate from all `n_models`.
    pub reliability: Option<f64>,
    /// Documents with an estimate in both halves.
    pub n_docs: usize,
}

/// Split-half convergence, streamed: models are assigned to two disjoint
/// halves (by block when the design has blocks, so each half keeps whole,
/// balanced blocks; alternately otherwise), and at each checkpoint the
/// estimates of the two halves are rank-correlated.
///
/// Memory: O(documents × checkpoints).
#[derive(Debug, Clone)]
pub struct Convergence {
    metric: Metric,
    block: usize,
    checkpoints: Vec<usize>,
    halves: [MemAccumulator; 2],
    next: usize,
    added: usize,
    points: Vec<ConvergencePoint>,
}

impl Convergence {
    /// Checkpoints at 8, 16, 32, … and `n_models` (which is included).
    /// `block` is the design's block size (1 for designs without blocks).
    ///
    /// # Errors
    /// [`Error::InvalidDesign`] for `block == 0`.
    pub fn new(n_docs: usize, metric: Metric, n_models: usize, block: usize) -> Result<Self> {
        if block == 0 {
            return Err(Error::InvalidDesign("block size must be at least 1".into()));
        }
        let mut checkpoints = Vec::new();
        let mut c = 8;
        while c < n_models {
            checkpoints.push(c);
            c *= 2;
        }
        checkpoints.push(n_models);
        Ok(Self {
            metric,
            block,
            checkpoints,
            halves: [
                MemAccumulator::new(n_docs, metric),
                MemAccumulator::new(n_docs, metric),
            ],
            next: 0,
            added: 0,
            points: Vec::new(),
        })
    }

    /// Checkpoints of the caller's choosing (sorted, deduplicated; those
    /// above `n_models` dropped, `n_models` added).
    ///
    /// # Errors
    /// As [`Convergence::new`].
    pub fn with_checkpoints(
        n_docs: usize,
        metric: Metric,
        n_models: usize,
        block: usize,
        checkpoints: &[usize],
    ) -> Result<Self> {
        let mut c = Self::new(n_docs, metric, n_models, block)?;
        let mut cps: Vec<usize> = checkpoints
            .iter()
            .copied()
            .filter(|&x| x > 0 && x < n_models)
            .collect();
        cps.push(n_models);
        cps.sort_unstable();
        cps.dedup();
        c.checkpoints = cps;
        Ok(c)
    }

    /// Which half model `i` belongs to.
    pub fn half_of(&self, i: usize) -> usize {
        (i / self.block) % 2
    }

    /// Add model `i` (models must come in index order).
    ///
    /// # Errors
    /// [`Error::RowLength`] for rows of the wrong length.
    pub fn add(&mut self, i: usize, copies: &[u32], scores: &[f64]) -> Result<()> {
        let h = self.half_of(i);
        self.halves[h].add(copies, scores)?;
        self.added += 1;
        while self.next < self.checkpoints.len() && self.added == self.checkpoints[self.next] {
            self.snapshot();
            self.next += 1;
        }
        Ok(())
    }

    fn snapshot(&mut self) {
        let a = self.halves[0].finish();
        let b = self.halves[1].finish();
        let (x, y): (Vec<f64>, Vec<f64>) = a
            .iter()
            .zip(&b)
            .filter_map(|(p, q)| Some((p.mem?, q.mem?)))
            .unzip();
        let rho = spearman(&x, &y);
        self.points.push(ConvergencePoint {
            n_models: self.added,
            spearman: rho,
            reliability: rho.map(spearman_brown),
            n_docs: x.len(),
        });
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The points so far (one per checkpoint reached).
    pub fn finish(self) -> Vec<ConvergencePoint> {
        self.points
    }
}

/// Settings of [`convergence`].
///
/// | field | default | meaning |
/// |---|---|---|
/// | `metric`, `adjustment` | as [`crate::ReportConfig`] | how the estimates are computed |
/// | `checkpoints` | 8, 16, 32, … | model counts at which the halves are compared |
/// | `n_models` | all rows | use only the rows of models `0..n_models` |
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConvergenceConfig {
    /// The metric and adjustment of the estimates.
    pub report: crate::ReportConfig,
    /// Checkpoints (`None`: 8, 16, 32, …).
    pub checkpoints: Option<Vec<usize>>,
    /// Only models below this index (`None`: all).
    pub n_models: Option<usize>,
}

/// Split-half convergence of the estimates of `src` as models are added
/// (rows in index order; halves by block for block designs).
///
/// # Errors
/// Errors of the source.
pub fn convergence(src: &dyn Rows, cfg: &ConvergenceConfig) -> Result<Vec<ConvergencePoint>> {
    let metric = cfg.report.metric;
    let limit = cfg.n_models.unwrap_or(usize::MAX);
    let keep = |i: usize| i < limit;
    let n = match cfg.n_models {
        Some(n) => n,
        None => count_rows(src, Value::Scores(metric))?,
    };
    let adj = adjuster(src, metric, cfg.report.adjustment, &keep)?;
    let (n_docs, block) = (src.ids().len(), src.block_size());
    let mut conv = match &cfg.checkpoints {
        Some(c) => Convergence::with_checkpoints(n_docs, metric, n, block, c)?,
        None => Convergence::new(n_docs, metric, n, block)?,
    };
    src.visit(Value::Scores(metric), &mut |r| {
        if keep(r.model) {
            conv.add(r.model, r.copies, &adj.apply(r.copies, r.values))?;
        }
        Ok(())
    })?;
    Ok(conv.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfmem_hash::SplitMix64;

    #[test]
    fn spearman_matches_hand_values() {
        // Perfect monotone → 1; reversed → −1.
        assert_eq!(
            spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 25.0, 100.0]),
            Some(1.0)
        );
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        // Hand example without ties: ranks a = [1,2,3,4,5], b = [2,1,4,3,5];
        // Σd² = 1+1+1+1+0 = 4, ρ = 1 − 6·4/(5·24) = 0.8.
        let r = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[0.2, 0.1, 0.4, 0.3, 0.5]).unwrap();
        assert!((r - 0.8).abs() < 1e-12);
        // Ties get average ranks: [1, 2, 2, 3] → [1, 2.5, 2.5, 4].
        assert_eq!(ranks(&[1.0, 2.0, 2.0, 3.0]), vec![1.0, 2.5, 2.5, 4.0]);
        // With ties (scipy.stats.spearmanr([1,2,2,3],[1,3,2,4]) = 0.9486832980505138).
        let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((r - 0.948_683_298_050_513_8).abs() < 1e-12, "{r}");
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        assert!((spearman_brown(0.5) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn convergence_rises_with_models_on_synthetic_scores() {
        // 60 documents with true memorization spread over [0, 0.3]; scores
        // are in/out means plus noise. More models → higher agreement.
        let n_docs = 60;
        let truth: Vec<f64> = (0..n_docs)
            .map(|d| 0.3 * d as f64 / n_docs as f64)
            .collect();
        let design = crate::DesignConfig::blocks(2, 1);
        let mut conv = Convergence::new(n_docs, Metric::Accuracy, 64, 2).unwrap();
        let mut rng = SplitMix64::new(5);
        for i in 0..64 {
            let copies = design.row(i, n_docs).unwrap();
            let scores: Vec<f64> = (0..n_docs)
                .map(|d| {
                    let noise = (cfmem_hash::unit_f64(rng.next_u64()) - 0.5) * 0.6;
                    0.4 + if copies[d] > 0 { truth[d] } else { 0.0 } + noise
                })
                .collect();
            conv.add(i, &copies, &scores).unwrap();
        }
        let pts = conv.finish();
        assert_eq!(
            pts.iter().map(|p| p.n_models).collect::<Vec<_>>(),
            vec![8, 16, 32, 64]
        );
        let rho: Vec<f64> = pts.iter().map(|p| p.spearman.unwrap()).collect();
        assert!(rho[3] > rho[0] && rho[3] > 0.7, "{rho:?}");
        let r = pts[3].reliability.unwrap();
        assert!((r - 2.0 * rho[3] / (1.0 + rho[3])).abs() < 1e-12);
        // Blocks stay whole: models 0,1 in half 0; 2,3 in half 1.
        let c = Convergence::new(1, Metric::Accuracy, 8, 2).unwrap();
        assert_eq!(
            (0..6).map(|i| c.half_of(i)).collect::<Vec<_>>(),
            vec![0, 0, 1, 1, 0, 0]
        );
    }
}
