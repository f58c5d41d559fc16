//! Synthetic rows with known effects, for testing estimators and for
//! planning a study (how many models does a given effect size need?).

use crate::design::DesignConfig;
use crate::error::{Error, Result};
use crate::rows::{Row, RowVisitor, Rows, SkippedRow, Value};
use cfmem_hash::{hash_words, SplitMix64};

/// Rows drawn from the additive model
///
/// ```text
/// s[d, i] = μ[d] + a[i] + mem[d]·[d ∈ S_i] + Σ_u infl[u → d]·[u ∈ S_i] + ε[d, i]
/// a[i]    = σ_model · ( √(1−|ρ|)·z_i + √|ρ|·sign_i·z_block(i) )
/// ε[d, i] ~ N(0, σ²)
/// ```
///
/// with the membership `S_i` of `design`. `a[i]` is the model's overall
/// quality; within a block (for block designs) partners' qualities have
/// correlation `ρ` (`sign_i = +1` for every model when `ρ ≥ 0`, alternating
/// `±1` along the block when `ρ < 0`, so complementary halves get
/// correlation −|ρ|). Rows are a pure function of the settings: visiting
/// twice gives the same numbers. As [`Value::Loss`] the rows give `−s`.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `mem` | (given) | true memorization per document |
/// | `doc_means` | 0.5 each | `μ[d]` |
/// | `noise` | 0.05 | `σ` |
/// | `doc_noise` | none | `σ_d` per document in place of `σ` |
/// | `model_sd` | 0 | `σ_model` |
/// | `mem_sd` | 0 | spread of the models' memorization strength ([`Synthetic::mem_sd`]) |
/// | `partner_corr` | 0 | `ρ` |
/// | `influence` | none | planted `(unit, document, size)` effects |
/// | `seed` | 0 | seed of every draw |
#[derive(Debug, Clone)]
pub struct Synthetic {
    design: DesignConfig,
    n_models: usize,
    mem: Vec<f64>,
    doc_means: Vec<f64>,
    noise: f64,
    doc_noise: Option<Vec<f64>>,
    model_sd: f64,
    mem_sd: f64,
    partner_corr: f64,
    influence: Vec<(usize, usize, f64)>,
    seed: u64,
}

impl Synthetic {
    /// `n_models` rows under `design` for documents with memorization `mem`.
    pub fn new(design: DesignConfig, n_models: usize, mem: Vec<f64>) -> Self {
        let n = mem.len();
        Self {
            design,
            n_models,
            mem,
            doc_means: vec![0.5; n],
            noise: 0.05,
            doc_noise: None,
            model_sd: 0.0,
            mem_sd: 0.0,
            partner_corr: 0.0,
            influence: Vec::new(),
            seed: 0,
        }
    }

    /// Per-document means `μ[d]`.
    pub fn doc_means(mut self, mu: Vec<f64>) -> Self {
        self.doc_means = mu;
        self
    }

    /// Noise standard deviation `σ`.
    pub fn noise(mut self, sd: f64) -> Self {
        self.noise = sd;
        self
    }

    /// A noise standard deviation per document (`σ_d` in place of `σ`),
    /// as documents differ in how much models disagree on them.
    pub fn doc_noise(mut self, sd: Vec<f64>) -> Self {
        self.doc_noise = Some(sd);
        self
    }

    /// Standard deviation of the model effects `σ_model`.
    pub fn model_sd(mut self, sd: f64) -> Self {
        self.model_sd = sd;
        self
    }

    /// Correlation `ρ` in [−1, 1] of the model effects of block partners.
    pub fn partner_corr(mut self, rho: f64) -> Self {
        self.partner_corr = rho.clamp(-1.0, 1.0);
        self
    }

    /// Planted influences: including `unit` adds `size` to `document`'s score.
    pub fn influence(mut self, pairs: Vec<(usize, usize, f64)>) -> Self {
        self.influence = pairs;
        self
    }

    /// Spread of the models' memorization strength: model `i` memorizes
    /// `mem[d] · (1 + g_i)`, `g_i ~ N(0, sd²)` (default 0), as a model with a
    /// lucky initialisation or batch order memorizes every document more.
    pub fn mem_sd(mut self, sd: f64) -> Self {
        self.mem_sd = sd;
        self
    }

    /// Seed of the draws.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The true memorization per document.
    pub fn truth(&self) -> &[f64] {
        &self.mem
    }

    /// Model `i`'s copies and scores.
    ///
    /// # Errors
    /// Design errors.
    pub fn row(&self, i: usize) -> Result<(Vec<u32>, Vec<f64>)> {
        let n = self.mem.len();
        if self.doc_means.len() != n {
            return Err(Error::RowLength {
                model: i,
                got: self.doc_means.len(),
                expected: n,
            });
        }
        let copies = self.design.checked()?.row(i, n);
        let b = self.design.block_size().max(1);
        let rho = self.partner_corr;
        let block_z = SplitMix64::new(hash_words(&[self.seed, 0xb10c, (i / b) as u64])).normal();
        let mut rng = SplitMix64::new(hash_words(&[self.seed, 0x5c0e, i as u64]));
        let sign = if rho < 0.0 && (i % b) % 2 == 1 {
            -1.0
        } else {
            1.0
        };
        let a = self.model_sd
            * ((1.0 - rho.abs()).sqrt() * rng.normal() + rho.abs().sqrt() * sign * block_z);
        // Its own stream, so that rows without it stay as they were.
        let strength = if self.mem_sd > 0.0 {
            1.0 + self.mem_sd * SplitMix64::new(hash_words(&[self.seed, 0x3e3, i as u64])).normal()
        } else {
            1.0
        };
        let mut scores: Vec<f64> = (0..n)
            .map(|d| {
                self.doc_means[d]
                    + a
                    + strength * self.mem[d] * f64::from(u32::from(copies[d] > 0))
                    + self
                        .doc_noise
                        .as_ref()
                        .and_then(|s| s.get(d).copied())
                        .unwrap_or(self.noise)
                        * rng.normal()
            })
            .collect();
        for &(u, d, size) in &self.influence {
            if u < n && d < n && copies[u] > 0 {
                scores[d] += size;
            }
        }
        Ok((copies, scores))
    }
}

impl Rows for Synthetic {
    fn ids(&self) -> Vec<String> {
        (0..self.mem.len()).map(|d| format!("doc-{d}")).collect()
    }

    fn design(&self) -> Option<DesignConfig> {
        Some(self.design.clone())
    }

    fn visit(&self, value: Value, f: &mut RowVisitor<'_>) -> Result<Vec<SkippedRow>> {
        for i in 0..self.n_models {
            let (copies, mut scores) = self.row(i)?;
            match value {
                Value::Scores(_) => {}
                Value::Loss => scores.iter_mut().for_each(|s| *s = -*s),
                Value::QueryScores(_) => return Err(Error::NoQueries),
            }
            f(Row {
                model: i,
                copies: &copies,
                values: &scores,
            })?;
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partner_correlation_and_effects_are_as_asked() {
        // Blocks of 2, ρ = −0.6: partners' model effects correlate at −0.6.
        let n_models = 4000;
        let s = Synthetic::new(DesignConfig::blocks(2, 0), n_models, vec![0.0; 3])
            .noise(0.0)
            .model_sd(1.0)
            .partner_corr(-0.6);
        let a: Vec<f64> = (0..n_models)
            .map(|i| s.row(i).unwrap().1[0] - 0.5)
            .collect();
        let (x, y): (Vec<f64>, Vec<f64>) = a.chunks(2).map(|p| (p[0], p[1])).unzip();
        let r = crate::pearson(&x, &y).unwrap();
        // SE of r ≈ (1 − r²)/√n ≈ 0.014 at 2000 pairs.
        assert!((r + 0.6).abs() < 0.06, "{r}");
        // Memorization and a planted influence show up where they should.
        let s = Synthetic::new(DesignConfig::blocks(2, 0), 2, vec![0.3, 0.0])
            .noise(0.0)
            .influence(vec![(0, 1, 0.2)]);
        for i in 0..2 {
            let (c, v) = s.row(i).unwrap();
            let inn = f64::from(u32::from(c[0] > 0));
            assert!((v[0] - (0.5 + 0.3 * inn)).abs() < 1e-12);
            assert!((v[1] - (0.5 + 0.2 * inn)).abs() < 1e-12);
        }
    }
}
