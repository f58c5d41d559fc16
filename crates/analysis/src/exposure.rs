//! Exposure of planted canaries (Carlini et al. 2019, "The Secret Sharer:
//! Evaluating and Testing Unintended Memorization in Neural Networks"):
//! how far a model ranks the canary's secret above the other secrets of
//! its format, in bits.
//!
//! A canary is a text of a known format (a fixed prefix and a secret of
//! `length` random symbols); `R` is the set of all secrets of that format.
//! Each candidate secret's *log-perplexity* under the model (its text's
//! negative log-likelihood) ranks it; the canary's rank among them gives
//!
//! ```text
//! exposure = log2 |R| − log2 rank(canary)        (0 ≤ exposure ≤ log2 |R|)
//! ```
//!
//! When `R` is small it is enumerated and the rank is exact
//! ([`exposure_by_rank`] with every other secret). When it is not (32 hex
//! digits: 2¹²⁸), the paper's two estimates are given: the rank from a
//! uniform sample of candidates (`rank ≈ 1 + (|R| − 1) · lower / sampled`,
//! which cannot exceed `log2 (sample size)` bits of resolution), and the
//! distribution-fitting approximation (§4.3): a skew-normal fitted to the
//! candidates' log-perplexities, `exposure ≈ −log2 F(px(canary))`
//! ([`exposure_by_fit`]), capped at `log2 |R|`.

use serde::{Deserialize, Serialize};

/// Exposure from the canary's rank among `others`, the log-perplexities of
/// other secrets of its format (not the canary's own), in a space of
/// `bits = log2 |R|`. When `others` holds every other secret
/// (`others.len() + 1 == |R|`) the rank is exact; otherwise `others` is a
/// uniform sample and the rank is estimated from it. Ties count half.
///
/// # Formula
/// ```text
/// lower = #{c : px(c) < px(canary)} + ½ #{c : px(c) = px(canary)}
/// rank  = 1 + (|R| − 1) · lower / |others|
/// exposure = log2 |R| − log2 rank
/// ```
/// `NaN` without candidates.
pub fn exposure_by_rank(canary: f64, others: &[f64], bits: f64) -> f64 {
    if others.is_empty() || !canary.is_finite() {
        return f64::NAN;
    }
    let lower: f64 = others
        .iter()
        .map(|&c| {
            if c < canary {
                1.0
            } else if c == canary {
                0.5
            } else {
                0.0
            }
        })
        .sum();
    let size = bits.exp2();
    let rank = 1.0 + (size - 1.0) * lower / others.len() as f64;
    (bits - rank.log2()).clamp(0.0, bits)
}

/// A skew-normal distribution (Azzalini 1985): location `xi`, scale
/// `omega`, shape `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SkewNormal {
    /// Location ξ.
    pub xi: f64,
    /// Scale ω > 0.
    pub omega: f64,
    /// Shape α.
    pub alpha: f64,
}

/// `ln Φ(x)`, accurate far into the left tail.
fn ln_norm_cdf(x: f64) -> f64 {
    if x > -30.0 {
        (0.5 * statrs::function::erf::erfc(-x / std::f64::consts::SQRT_2)).ln()
    } else {
        // Mills' ratio: Φ(x) ≈ φ(x)/(−x) · (1 − 1/x² + 3/x⁴).
        let x2 = x * x;
        -0.5 * x2 - (-x).ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
            + (1.0 - 1.0 / x2 + 3.0 / (x2 * x2)).ln()
    }
}

impl SkewNormal {
    /// The fit to `x`: location and scale match the sample's mean and
    /// variance for every shape, and the shape maximises the likelihood
    /// over a grid (`α = sinh t`, `t` in steps of 0.02 over [−4, 4]): the
    /// sample skewness that a pure method of moments would use is too noisy
    /// in the tail that exposure reads. `None` for fewer than three values
    /// or no spread.
    pub fn fit(x: &[f64]) -> Option<Self> {
        let n = x.len();
        if n < 3 {
            return None;
        }
        let mean = x.iter().sum::<f64>() / n as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        if var <= 0.0 || !var.is_finite() {
            return None;
        }
        let mut best: Option<(f64, Self)> = None;
        for k in -200..=200 {
            let d = Self::matched(mean, var, (f64::from(k) * 0.02).sinh());
            let ll: f64 = x.iter().map(|&v| d.ln_pdf(v)).sum();
            if ll.is_finite() && best.is_none_or(|(b, _)| ll > b) {
                best = Some((ll, d));
            }
        }
        best.map(|(_, d)| d)
    }

    /// The skew-normal of shape `alpha` with mean `mean` and variance `var`.
    fn matched(mean: f64, var: f64, alpha: f64) -> Self {
        use std::f64::consts::PI;
        let delta = alpha / (1.0 + alpha * alpha).sqrt();
        let omega = (var / (1.0 - 2.0 * delta * delta / PI)).sqrt();
        let xi = mean - omega * delta * (2.0 / PI).sqrt();
        Self { xi, omega, alpha }
    }

    /// `ln` of the density at `x`: `ln 2 − ln ω + ln φ(z) + ln Φ(α z)`,
    /// `z = (x − ξ)/ω`.
    pub fn ln_pdf(&self, x: f64) -> f64 {
        let z = (x - self.xi) / self.omega;
        std::f64::consts::LN_2
            - self.omega.ln()
            - 0.5 * z * z
            - 0.5 * (2.0 * std::f64::consts::PI).ln()
            + ln_norm_cdf(self.alpha * z)
    }

    /// `ln F(x)`, the log of the distribution function, by the trapezoid
    /// rule in log space over `[x − 40 ω, x]` (the density is log-concave,
    /// so the mass below `x − 40 ω` is negligible beside that above it,
    /// however far into a tail `x` lies).
    pub fn ln_cdf(&self, x: f64) -> f64 {
        const STEPS: usize = 4000;
        let lo = x - 40.0 * self.omega;
        let h = (x - lo) / STEPS as f64;
        let mut terms: Vec<f64> = (0..=STEPS)
            .map(|k| {
                let w: f64 = if k == 0 || k == STEPS { 0.5 } else { 1.0 };
                w.ln() + self.ln_pdf(lo + k as f64 * h)
            })
            .collect();
        terms.retain(|t| t.is_finite());
        let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return f64::NEG_INFINITY;
        }
        let sum: f64 = terms.iter().map(|t| (t - max).exp()).sum();
        (max + sum.ln() + h.ln()).min(0.0)
    }
}

/// Exposure by the distribution-fitting approximation (Carlini et al.
/// 2019, §4.3): a skew-normal fitted to the log-perplexities of sampled
/// candidates ([`SkewNormal::fit`]), and the canary's exposure the
/// negative log₂ of its fitted distribution function, capped at
/// `bits = log2 |R|`.
///
/// # Formula
/// ```text
/// exposure ≈ −log2 ∫_{−∞}^{px(canary)} ρ(x) dx,   ρ the fitted skew-normal density
/// ```
/// `NaN` when no fit is possible (fewer than three candidates, no spread).
pub fn exposure_by_fit(canary: f64, candidates: &[f64], bits: f64) -> f64 {
    match SkewNormal::fit(candidates) {
        Some(f) if canary.is_finite() => {
            (-f.ln_cdf(canary) / std::f64::consts::LN_2).clamp(0.0, bits)
        }
        _ => f64::NAN,
    }
}

/// One canary's exposure across an experiment's models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryExposure {
    /// The document's index (the first, when it has copies).
    pub index: usize,
    /// Its id.
    pub id: String,
    /// Documents of the corpus with its text in its group (the canary's
    /// insertions).
    #[serde(default = "one")]
    pub copies: usize,
    /// Its counterfactual memorization in the report's metric (`None`
    /// without an estimate).
    pub mem: Option<f64>,
    /// Mean exposure over the models that trained on it, and their number.
    pub exposure_in: Option<f64>,
    /// Models that trained on it.
    pub n_in: usize,
    /// Mean exposure over the models that did not.
    pub exposure_out: Option<f64>,
    /// Models that did not.
    pub n_out: usize,
}

fn one() -> usize {
    1
}

/// The exposure of an experiment's canaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExposureReport {
    /// The secrets' format (`hex32`, `digits6`, …).
    pub format: String,
    /// `log2 |R|`.
    pub bits: f64,
    /// Candidates each model ranks the canaries among.
    pub candidates: usize,
    /// Whether they are all of `R` (exact ranks) or a sample (the
    /// distribution-fitting approximation).
    pub exhaustive: bool,
    /// One per canary (its copies, one text in one group, counted once),
    /// in corpus order.
    pub canaries: Vec<CanaryExposure>,
}

impl ExposureReport {
    /// How the ranks were found, in words.
    pub fn method(&self) -> String {
        if self.exhaustive {
            format!("exact ranks among all {} secrets", self.candidates)
        } else {
            format!(
                "skew-normal fit to {} sampled secrets (Carlini et al. 2019, §4.3)",
                self.candidates
            )
        }
    }
}

/// Exposure of each canary under each model: `exact` ranks among every
/// other secret when the candidates are all of `R`, the skew-normal
/// approximation otherwise. `canary` is the canary's log-perplexity and
/// `others` the candidates' (the canary's own secret taken out).
pub fn exposure(canary: f64, others: &[f64], bits: f64, exhaustive: bool) -> f64 {
    if exhaustive {
        exposure_by_rank(canary, others, bits)
    } else {
        exposure_by_fit(canary, others, bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfmem_hash::SplitMix64;

    #[test]
    fn exact_rank_by_hand() {
        // |R| = 5: the canary (1.0) and four others; two are lower, so its
        // rank is 3 and its exposure log2 5 − log2 3.
        let bits = 5f64.log2();
        let e = exposure_by_rank(1.0, &[0.5, 2.0, 3.0, 0.8], bits);
        assert!((e - (bits - 3f64.log2())).abs() < 1e-12, "{e}");
        // The most likely secret has the largest exposure, the least 0.
        assert!((exposure_by_rank(0.1, &[0.5, 2.0, 3.0, 0.8], bits) - bits).abs() < 1e-12);
        assert!(exposure_by_rank(9.0, &[0.5, 2.0, 3.0, 0.8], bits).abs() < 1e-12);
        // A tie counts half: rank 1.5.
        let e = exposure_by_rank(0.5, &[0.5, 2.0, 3.0, 0.8], bits);
        assert!((e - (bits - 1.5f64.log2())).abs() < 1e-12);
        assert!(exposure_by_rank(1.0, &[], bits).is_nan());
    }

    /// A skew-normal draw (Azzalini's representation: `δ|u₀| + √(1−δ²) u₁`).
    fn draw(rng: &mut SplitMix64, d: &SkewNormal) -> f64 {
        let delta = d.alpha / (1.0 + d.alpha * d.alpha).sqrt();
        let (u0, u1) = (rng.normal(), rng.normal());
        d.xi + d.omega * (delta * u0.abs() + (1.0 - delta * delta).sqrt() * u1)
    }

    #[test]
    fn the_fit_recovers_a_skew_normal_and_its_cdf() {
        let truth = SkewNormal {
            xi: 40.0,
            omega: 5.0,
            alpha: 4.0,
        };
        let mut rng = SplitMix64::new(7);
        let x: Vec<f64> = (0..20_000).map(|_| draw(&mut rng, &truth)).collect();
        let f = SkewNormal::fit(&x).unwrap();
        assert!((f.xi - 40.0).abs() < 0.3, "{f:?}");
        assert!((f.omega - 5.0).abs() < 0.3, "{f:?}");
        // The distribution function against the sample's.
        for q in [42.0, 45.0, 50.0] {
            let emp = x.iter().filter(|&&v| v <= q).count() as f64 / x.len() as f64;
            let got = truth.ln_cdf(q).exp();
            assert!((got - emp).abs() < 0.01, "{q}: {got} vs {emp}");
        }
        // Far in the left tail the log stays finite and falls fast.
        assert!(truth.ln_cdf(10.0) < truth.ln_cdf(30.0) - 10.0);
        assert!(truth.ln_cdf(-1000.0).is_finite());
        assert!(SkewNormal::fit(&[1.0, 1.0, 1.0]).is_none());
    }

    /// The approximation against the exact rank on a space small enough to
    /// enumerate: 10⁵ secrets whose log-perplexities are skew-normal, a
    /// sample of 2,000 for the fit; at canaries of 1 to 14 bits of exact
    /// exposure the two agree within half a bit (the fit extrapolates
    /// beyond the sample's 11 bits of resolution).
    #[test]
    fn the_fitted_exposure_agrees_with_the_exact_rank() {
        let d = SkewNormal {
            xi: 60.0,
            omega: 6.0,
            alpha: 3.0,
        };
        let mut rng = SplitMix64::new(11);
        let mut all: Vec<f64> = (0..100_000).map(|_| draw(&mut rng, &d)).collect();
        all.sort_by(f64::total_cmp);
        let bits = (all.len() as f64).log2();
        let sample: Vec<f64> = (0..2000)
            .map(|_| all[rng.below(all.len() as u64) as usize])
            .collect();
        for rank in [50_000usize, 10_000, 1000, 100, 10] {
            let canary = all[rank - 1];
            let others: Vec<f64> = all
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != rank - 1)
                .map(|(_, &v)| v)
                .collect();
            let exact = exposure_by_rank(canary, &others, bits);
            assert!(
                (exact - (bits - (rank as f64).log2())).abs() < 1e-3,
                "{exact}"
            );
            let fit = exposure_by_fit(canary, &sample, bits);
            assert!(
                (fit - exact).abs() < 0.5,
                "rank {rank}: fit {fit} vs exact {exact}"
            );
        }
        // Below every candidate the fit stays finite and capped.
        assert!(exposure_by_fit(-100.0, &sample, bits) <= bits);
    }
}
