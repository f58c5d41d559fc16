//! Model-effect adjustment (a control variate): subtract from each model's
//! scores that model's own mean over the documents it did not train on.
//!
//! Training noise (initialisation, batch order) makes some models better
//! than others on *every* document. In the additive model
//!
//! ```text
//! s[d, j] = μ[d] + a[j] + mem[d] · in[d, j] + ε[d, j]
//! ```
//!
//! the model effect `a[j]` adds variance to both sides of the in/out
//! comparison. It is estimated in two passes over the rows:
//!
//! 1. each document's centre `c[d]`: its mean score over the models it was
//!    out of (free of memorization);
//! 2. each model's effect `m[j]`: the mean of its residuals `s[d, j] − c[d]`
//!    over the documents it was out of (leaving the document being adjusted
//!    out, so a score is never compared with itself).
//!
//! `s[d, j] − m[j]` removes `a[j]`. Centring by `c[d]` matters: without it,
//! which documents happen to be out of a model (easy or hard ones) would
//! add as much noise as it removes.
//!
//! What it estimates: `mem[d]` net of document `d`'s average effect on the
//! other documents' scores (including it helps or hurts the model overall
//! only in proportion 1/n), which for corpora of more than a few dozen
//! documents is the plain quantity.

use serde::{Deserialize, Serialize};

/// How each model's scores are adjusted before estimation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Adjustment {
    /// The scores as they are (the plain estimator).
    None,
    /// Subtract the model's mean score over its out-of-subset documents
    /// (leave-one-out for out-documents). The default.
    #[default]
    ModelMean,
}

impl std::str::FromStr for Adjustment {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "none" => Ok(Self::None),
            "model-mean" => Ok(Self::ModelMean),
            other => Err(crate::Error::Parse {
                what: "adjustment",
                input: other.to_string(),
                expected: "none or model-mean",
            }),
        }
    }
}

impl std::fmt::Display for Adjustment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::ModelMean => "model-mean",
        })
    }
}

/// The two-pass model-effect adjustment: feed every row to
/// [`Adjuster::observe`] first, then adjust rows with [`Adjuster::apply`].
#[derive(Debug, Clone)]
pub struct Adjuster {
    kind: Adjustment,
    centre: Vec<(f64, usize)>,
}

impl Adjuster {
    /// An adjuster of `kind` for `n_docs` documents.
    pub fn new(kind: Adjustment, n_docs: usize) -> Self {
        Self {
            kind,
            centre: vec![(0.0, 0); n_docs],
        }
    }

    /// Whether the rows must be observed in a first pass.
    pub fn needs_first_pass(&self) -> bool {
        self.kind != Adjustment::None
    }

    /// First pass: one model's row.
    pub fn observe(&mut self, copies: &[u32], scores: &[f64]) {
        for ((c, &k), &s) in self.centre.iter_mut().zip(copies).zip(scores) {
            if k == 0 && s.is_finite() {
                c.0 += s;
                c.1 += 1;
            }
        }
    }

    /// Second pass: one model's adjusted row. Non-finite scores stay as they
    /// are and documents never out of any model are not used for the model
    /// effect; with fewer than two usable out-documents nothing is adjusted.
    pub fn apply(&self, copies: &[u32], scores: &[f64]) -> Vec<f64> {
        if self.kind == Adjustment::None {
            return scores.to_vec();
        }
        let resid = |d: usize| -> Option<f64> {
            let (sum, n) = self.centre.get(d).copied()?;
            (copies[d] == 0 && scores[d].is_finite() && n > 0).then(|| scores[d] - sum / n as f64)
        };
        let (mut sum, mut n) = (0.0, 0usize);
        for d in 0..scores.len().min(copies.len()) {
            if let Some(r) = resid(d) {
                sum += r;
                n += 1;
            }
        }
        if n < 2 {
            return scores.to_vec();
        }
        (0..scores.len())
            .map(|d| {
                let s = scores[d];
                match resid(d) {
                    Some(r) => s - (sum - r) / (n - 1) as f64,
                    None if s.is_finite() => s - sum / n as f64,
                    None => s,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accumulator::MemAccumulator;
    use crate::estimate::Metric;
    use cfmem_hash::SplitMix64;

    #[test]
    fn hand_example() {
        // Two models, four documents. Model 0 trained on document 0 only,
        // model 1 on document 3 only.
        let rows = [
            ([1u32, 0, 0, 0], [1.0, 0.2, 0.4, 0.9]),
            ([0, 0, 0, 1], [0.5, 0.4, 0.6, 1.0]),
        ];
        let mut adj = Adjuster::new(Adjustment::ModelMean, 4);
        assert!(adj.needs_first_pass());
        for (c, s) in &rows {
            adj.observe(c, s);
        }
        // Centres (out-means): d0 0.5 (model 1 only), d1 0.3, d2 0.5, d3 0.9 (model 0 only).
        // Model 0's residuals on its out-docs 1, 2, 3: −0.1, −0.1, 0.
        let a = adj.apply(&rows[0].0, &rows[0].1);
        let want = [
            1.0 - (-0.2 / 3.0), // in-doc: mean of all three residuals
            0.2 - (-0.1 / 2.0), // leave doc 1 out: (−0.1 + 0) / 2
            0.4 - (-0.1 / 2.0), // leave doc 2 out
            0.9 - (-0.2 / 2.0), // leave doc 3 out
        ];
        for (x, y) in a.iter().zip(want) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {want:?}");
        }
        assert_eq!(
            Adjuster::new(Adjustment::None, 4).apply(&rows[0].0, &rows[0].1),
            rows[0].1.to_vec()
        );
        // Too few out-documents: unchanged.
        let mut few = Adjuster::new(Adjustment::ModelMean, 3);
        few.observe(&[0, 0, 0], &[1.0, 2.0, 3.0]);
        assert_eq!(few.apply(&[1, 1, 0], &[1.0, 2.0, 3.0]), vec![1.0, 2.0, 3.0]);
        assert_eq!(
            "model-mean".parse::<Adjustment>().ok(),
            Some(Adjustment::ModelMean)
        );
        let err = "mean".parse::<Adjustment>().unwrap_err().to_string();
        assert!(
            err.contains("\"mean\"") && err.contains("model-mean"),
            "{err}"
        );
    }

    /// Synthetic records from the additive model with known `mem[d]`: over
    /// many replications both estimators average to the truth (within
    /// 4 standard errors of the replication mean), and the adjusted one has
    /// a much smaller spread when model effects dominate.
    #[test]
    fn both_estimators_are_unbiased_and_the_adjustment_removes_model_noise() {
        let (n_docs, n_models, reps) = (40, 16, 300);
        let mem: Vec<f64> = (0..n_docs).map(|d| 0.01 * (d % 5) as f64).collect();
        let mu: Vec<f64> = (0..n_docs).map(|d| 0.3 + 0.01 * d as f64).collect();
        let mut rng = SplitMix64::new(11);
        // Per estimator and document: Σ estimate, Σ estimate², count.
        let mut sums = [
            vec![(0.0f64, 0.0f64, 0.0f64); n_docs],
            vec![(0.0, 0.0, 0.0); n_docs],
        ];
        for _ in 0..reps {
            let mut accs = [
                MemAccumulator::new(n_docs, Metric::Accuracy),
                MemAccumulator::new(n_docs, Metric::Accuracy),
            ];
            let mut rows = Vec::new();
            for _ in 0..n_models {
                let a = 0.05 * rng.normal(); // model effect
                let copies: Vec<u32> = (0..n_docs)
                    .map(|_| u32::from(rng.next_f64() < 0.5))
                    .collect();
                let s: Vec<f64> = (0..n_docs)
                    .map(|d| mu[d] + a + mem[d] * f64::from(copies[d]) + 0.01 * rng.normal())
                    .collect();
                rows.push((copies, s));
            }
            for (k, kind) in [Adjustment::None, Adjustment::ModelMean]
                .into_iter()
                .enumerate()
            {
                let mut adj = Adjuster::new(kind, n_docs);
                for (c, s) in &rows {
                    adj.observe(c, s);
                }
                for (c, s) in &rows {
                    accs[k].add(c, &adj.apply(c, s)).unwrap();
                }
            }
            for k in 0..2 {
                // A document with fewer than two models on a side (rare at
                // 16 models) has no estimate in that replication.
                for (d, e) in accs[k].finish().iter().enumerate() {
                    if let Some(m) = e.mem {
                        sums[k][d].0 += m;
                        sums[k][d].1 += m * m;
                        sums[k][d].2 += 1.0;
                    }
                }
            }
        }
        let mut var = [0.0, 0.0];
        for k in 0..2 {
            for d in 0..n_docs {
                let r = sums[k][d].2;
                assert!(r > 0.9 * reps as f64);
                let mean = sums[k][d].0 / r;
                let v = sums[k][d].1 / r - mean * mean;
                var[k] += v / n_docs as f64;
                let se = (v / r).sqrt();
                assert!(
                    (mean - mem[d]).abs() < 4.0 * se + 1e-4,
                    "estimator {k}, doc {d}: mean {mean} vs true {}, se {se}",
                    mem[d]
                );
            }
        }
        // Plain variance ≈ 4·(0.05² + 0.01²)/16 ≈ 6.8e-4; adjusted ≈ 4·0.01²/16 ≈ 2.5e-5
        // plus the model effects' estimation error.
        assert!(
            var[1] < var[0] / 10.0,
            "variance plain {} adjusted {}",
            var[0],
            var[1]
        );
    }
}
