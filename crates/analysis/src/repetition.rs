//! Memorization as a function of repetition: `mem(k) = E[M | k copies] − E[M | 0 copies]`.

use serde::{Deserialize, Serialize};

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
}

/// The corpus average at one copy count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OverallPoint {
    /// Copies.
    pub copies: u32,
    /// Mean over documents of `mem(k)`, with its Student-t interval over
    /// documents ([`MeanCi`]).
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
            stats: vec![vec![RunningStats::default(); levels.len()]; n_docs],
            levels,
        }
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
                    .map(|l| Estimate::from_stats(&s[l], &s[0], self.metric, 0.95))
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
                    mem: MeanCi::of(&mems, 0.95),
                }
            })
            .collect();
        RepetitionCurve {
            copies,
            per_doc,
            overall,
        }
    }
}

impl RepetitionCurve {
    /// Per document, `mem(hi) − mem(lo)` (paired over documents), averaged
    /// with its interval; `None` when a level is not in the curve.
    pub fn paired(&self, hi: u32, lo: u32) -> Option<MeanCi> {
        let h = self.copies.iter().position(|&c| c == hi)?;
        let l = self.copies.iter().position(|&c| c == lo)?;
        let v: Vec<f64> = self
            .per_doc
            .iter()
            .filter_map(|d| Some(d[h].mem? - d[l].mem?))
            .collect();
        Some(MeanCi::of(&v, 0.95))
    }
}

/// Memorization as a function of copies per epoch, from the rows of a
/// repetition design ([`Rows::design`]); other designs give the single
/// level 1.
///
/// # Errors
/// Errors of the source; [`Error::Index`] for copies not in the design.
pub fn repetition(src: &dyn Rows, metric: Metric) -> Result<RepetitionCurve> {
    let levels = match src.design().map(|d| d.kind) {
        Some(DesignKind::Repetition { copies, .. }) => copies,
        _ => vec![0, 1],
    };
    let mut acc = RepetitionAccumulator::new(src.ids().len(), metric, &levels);
    src.visit(Value::Scores(metric), &mut |r| acc.add(r.copies, r.values))?;
    Ok(acc.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
