//! Memorization as a function of repetition: `mem(k) = E[M | k copies] − E[M | 0 copies]`.

use serde::{Deserialize, Serialize};

use crate::contrast::Contrast;
use crate::design::DesignKind;
use crate::error::{Error, Result};
use crate::estimate::{Estimate, Metric, RunningStats};
use crate::rows::{Rows, Value};
use crate::summary::MeanCi;

/// Per-document estimates at each copy count, and the corpus average.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepetitionCurve {
    /// The copy counts above 0, ascending.
    pub copies: Vec<u32>,
    /// `per_doc[d][l]`: document `d` at `copies[l]` against 0 copies.
    pub per_doc: Vec<Vec<Estimate>>,
    /// `overall[l]`: mean over documents with an estimate of `mem(copies[l])`.
    pub overall: Vec<OverallPoint>,
    /// Confidence level of every interval of the curve.
    #[serde(default = "default_level")]
    pub level: f64,
}

fn default_level() -> f64 {
    0.95
}

/// The corpus average at one copy count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OverallPoint {
    /// Copies.
    pub copies: u32,
    /// Mean over documents of `mem(k)`, with its interval: the design's
    /// (clustered by model) from [`repetition`], a t-interval over the
    /// documents from [`RepetitionAccumulator::finish`] alone.
    #[serde(flatten)]
    pub mem: MeanCi,
}

/// Streams `(copies, scores)` rows into per-document, per-copy-count statistics.
///
/// # Formula
/// ```text
/// mem_k(x) = mean{ M(model_i, x) : x has k copies in S_i } − mean{ M(model_i, x) : x ∉ S_i }
/// ```
/// (sign flipped for losses), Welch SE and Student-t interval per level.
#[derive(Debug, Clone)]
pub struct RepetitionAccumulator {
    metric: Metric,
    level: f64,
    levels: Vec<u32>,
    stats: Vec<Vec<RunningStats>>,
}

impl RepetitionAccumulator {
    /// For `n_docs` documents and the design's copy counts (0 included or not).
    pub fn new(n_docs: usize, metric: Metric, copies: &[u32]) -> Self {
        let mut levels: Vec<u32> = copies.to_vec();
        levels.push(0);
        levels.sort_unstable();
        levels.dedup();
        Self {
            metric,
            level: 0.95,
            stats: vec![vec![RunningStats::default(); levels.len()]; n_docs],
            levels,
        }
    }

    /// Set the confidence level of the intervals (default 0.95).
    pub fn level(mut self, level: f64) -> Self {
        self.level = level;
        self
    }

    /// Add one model.
    ///
    /// # Errors
    /// [`Error::RowLength`]; [`Error::Index`] for a copy count not in the design.
    pub fn add(&mut self, copies: &[u32], scores: &[f64]) -> Result<()> {
        let n = self.stats.len();
        if copies.len() != n || scores.len() != n {
            return Err(Error::RowLength {
                model: 0,
                got: copies.len().min(scores.len()),
                expected: n,
            });
        }
        for d in 0..n {
            let l = self
                .levels
                .binary_search(&copies[d])
                .map_err(|_| Error::NotALevel {
                    document: d,
                    copies: copies[d],
                })?;
            if scores[d].is_finite() {
                self.stats[d][l].push(scores[d]);
            }
        }
        Ok(())
    }

    /// The curves.
    pub fn finish(&self) -> RepetitionCurve {
        let copies: Vec<u32> = self.levels[1..].to_vec();
        let per_doc: Vec<Vec<Estimate>> = self
            .stats
            .iter()
            .map(|s| {
                (1..self.levels.len())
                    .map(|l| Estimate::from_stats(&s[l], &s[0], self.metric, self.level))
                    .collect()
            })
            .collect();
        let overall = copies
            .iter()
            .enumerate()
            .map(|(l, &c)| {
                let mems: Vec<f64> = per_doc.iter().filter_map(|e| e[l].mem).collect();
                OverallPoint {
                    copies: c,
                    mem: MeanCi::of(&mems, self.level),
                }
            })
            .collect();
        RepetitionCurve {
            copies,
            per_doc,
            overall,
            level: self.level,
        }
    }
}

impl RepetitionCurve {
    /// Per document `mem(hi) − mem(lo)` (paired over documents: the models
    /// with `hi` copies against those with `lo`), averaged, with the
    /// design's error ([`crate::contrast`], clustered by block of `src`,
    /// the rows the curve came from); `None` when a level is not in the
    /// curve. `metric` is the curve's.
    ///
    /// # Errors
    /// Errors of the source.
    pub fn paired(
        &self,
        src: &dyn Rows,
        metric: Metric,
        hi: u32,
        lo: u32,
    ) -> Result<Option<MeanCi>> {
        let (Some(h), Some(l)) = (
            self.copies.iter().position(|&c| c == hi),
            self.copies.iter().position(|&c| c == lo),
        ) else {
            return Ok(None);
        };
        // Each document's estimate of `hi` against `lo`, as a contrast sees
        // it: `hi`'s models the in-side, `lo`'s the out-side.
        let sign = metric.orientation();
        let estimates: Vec<Estimate> = self
            .per_doc
            .iter()
            .map(|d| {
                let (a, b) = (&d[h], &d[l]);
                let mem = match (a.in_mean, b.in_mean) {
                    (Some(x), Some(y)) => Some(sign * (x - y)),
                    _ => None,
                };
                Estimate {
                    n_in: a.n_in,
                    n_out: b.n_in,
                    in_mean: a.in_mean,
                    out_mean: b.in_mean,
                    mem,
                    se: None,
                    df: None,
                    ci_low: None,
                    ci_high: None,
                    reason: None,
                }
            })
            .collect();
        let refs: Vec<&Estimate> = estimates.iter().collect();
        Ok(Some(levels_mean(&refs, src, metric, self.level, hi, lo)?))
    }
}

/// The mean over the documents with an estimate of `estimates` (`hi`
/// copies against `lo`), with the design's error ([`crate::contrast`]).
fn levels_mean(
    estimates: &[&Estimate],
    src: &dyn Rows,
    metric: Metric,
    level: f64,
    hi: u32,
    lo: u32,
) -> Result<MeanCi> {
    let with = estimates.iter().filter(|e| e.mem.is_some()).count();
    let weights: Vec<f64> = estimates
        .iter()
        .map(|e| {
            if e.mem.is_some() {
                1.0 / with as f64
            } else {
                0.0
            }
        })
        .collect();
    let side = |c: u32| {
        if c == hi {
            Some(true)
        } else if c == lo {
            Some(false)
        } else {
            None
        }
    };
    let setting = Contrast {
        metric,
        level,
        block: src.block_size(),
        side: &side,
    };
    let c = setting.of(estimates, src, &weights, &|_, v| v.to_vec())?;
    Ok(MeanCi::of_contrast(with, c))
}

/// Memorization as a function of copies per epoch, from the rows of a
/// repetition design ([`Rows::design`]); other designs give the single
/// level 1. Intervals at confidence `level` (the report's); the means over
/// documents (`overall`) get the design's error, clustered by model
/// ([`crate::contrast`]), where [`RepetitionAccumulator::finish`] alone
/// (which has no rows to cluster) gives a t-interval over documents.
///
/// # Errors
/// Errors of the source; [`Error::Index`] for copies not in the design.
pub fn repetition(src: &dyn Rows, metric: Metric, level: f64) -> Result<RepetitionCurve> {
    let levels = match src.design().map(|d| d.kind) {
        Some(DesignKind::Repetition { copies, .. }) => copies,
        _ => vec![0, 1],
    };
    let mut acc = RepetitionAccumulator::new(src.ids().len(), metric, &levels).level(level);
    src.visit(Value::Scores(metric), &mut |r| acc.add(r.copies, r.values))?;
    let mut curve = acc.finish();
    // The means over documents with the design's error: every document is
    // scored by the same models (`crate::contrast`).
    for (l, point) in curve.overall.iter_mut().enumerate() {
        let estimates: Vec<&Estimate> = curve.per_doc.iter().map(|e| &e[l]).collect();
        point.mem = levels_mean(&estimates, src, metric, level, point.copies, 0)?;
    }
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_means_get_the_design_error() {
        // A repetition design with levels 0 and 1 is a plain design: the
        // curve's mean at 1 copy is the plain report's mean over all
        // documents, with the same clustered error.
        use crate::{report, DesignConfig, MeanCi, ReportConfig, Synthetic};
        let design = DesignConfig::repetition(vec![0, 1], vec![0.5, 0.5], 4);
        let src = Synthetic::new(design, 12, (0..30).map(|d| 0.01 * d as f64).collect())
            .model_sd(0.05)
            .seed(3);
        let curve = repetition(&src, Metric::Accuracy, 0.95).unwrap();
        let rep = report(&src, &ReportConfig::plain(Metric::Accuracy)).unwrap();
        let all: Vec<usize> = (0..30).collect();
        let m = MeanCi::over(&rep, &src, &all).unwrap();
        let p = curve.overall[0].mem;
        assert_eq!(p.n, m.n);
        assert!((p.mean - m.mean).abs() < 1e-12 && (p.se - m.se).abs() < 1e-12);
        assert!((p.ci_low - m.ci_low).abs() < 1e-12);
        // Not the t-interval over documents.
        assert_ne!(p.se, MeanCi::of(&rep.mems(), 0.95).se);
    }

    #[test]
    fn levels_against_zero_by_hand() {
        // One document; models with 0, 1, 2 copies.
        let rows = [
            (0, 0.2),
            (0, 0.4),
            (1, 0.5),
            (1, 0.7),
            (2, 0.9),
            (2, 0.8),
            (0, 0.3),
        ];
        let mut acc = RepetitionAccumulator::new(1, Metric::Accuracy, &[0, 1, 2]);
        for (c, s) in rows {
            acc.add(&[c], &[s]).unwrap();
        }
        let curve = acc.finish();
        assert_eq!(curve.copies, vec![1, 2]);
        // E[M|0] = 0.3, E[M|1] = 0.6, E[M|2] = 0.85.
        assert!((curve.per_doc[0][0].mem.unwrap() - 0.3).abs() < 1e-12);
        assert!((curve.per_doc[0][1].mem.unwrap() - 0.55).abs() < 1e-12);
        assert_eq!(curve.overall[1].mem.n, 1);
        assert!((curve.overall[1].mem.mean - 0.55).abs() < 1e-12);
        assert!(acc.add(&[3], &[0.1]).is_err());
        // The level is the one asked: a 50 % interval is inside the 95 % one.
        let mut half = RepetitionAccumulator::new(1, Metric::Accuracy, &[0, 1, 2]).level(0.5);
        for (c, s) in rows {
            half.add(&[c], &[s]).unwrap();
        }
        let (wide, narrow) = (&curve.per_doc[0][0], &half.finish().per_doc[0][0]);
        assert_eq!(curve.level, 0.95);
        assert!(narrow.ci_low.unwrap() > wide.ci_low.unwrap());
        assert!(narrow.ci_high.unwrap() < wide.ci_high.unwrap());
    }
}
