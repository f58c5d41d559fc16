//! Empirical-Bayes shrinkage of the per-document estimates: a better
//! ranking and intervals that borrow strength across documents.
//!
//! With 8–16 models a document's estimate is noisy, and so is its standard
//! error (a block design with 8 models leaves it 3 degrees of freedom).
//! Shrinkage here is two steps, each a standard model:
//!
//! 1. **The errors are moderated** (Smyth 2004, limma): each document's
//!    squared error, as a multiple of `1/n_in + 1/n_out`, is a scaled χ²
//!    on its degrees of freedom around a prior value `s₀²` with `d₀`
//!    degrees of freedom fitted by moments over all documents; the
//!    moderated value is `(d₀ s₀² + d s²)/(d₀ + d)`. A document whose few
//!    models happened to agree no longer looks certain.
//! 2. **The estimates are shrunk** towards a prior fitted over all
//!    documents: `mem_d ~ N(θ_d, s̃_d²)` with `θ_d` drawn from Stephens'
//!    ash prior (Stephens 2017, "False discovery rates: a new deal"): a
//!    point mass at 0 (not memorized) and uniforms `U[0, a_k]` and
//!    `U[−a_k, 0]` on a grid of widths, which can take any shape with its
//!    mode at 0, whose weights are fitted by penalized maximum likelihood
//!    (EM, with ash's null-biased penalty: a Dirichlet weight of 10 on the
//!    point mass, so that what the data cannot tell from 0 is called 0).
//!    Memorization is mostly 0 with fewer and fewer documents further
//!    above it, which no normal prior describes: a normal prior shrank
//!    unmemorized documents towards the mean of all and called a third
//!    of them memorized in simulation.
//!
//! Each document gets its posterior mean, a posterior interval (quantiles
//! of its posterior mixture) and its local false sign rate `P(θ_d ≤ 0 |
//! data)` (Stephens 2017): the posterior probability that it is *not*
//! memorized, which includes the point mass at 0 (its local false
//! discovery rate, Efron 2001) and the mass below it. Discoveries at a false
//! discovery rate α are the documents with the smallest rates whose running
//! mean stays at most α (the s-values of Stephens 2017).
//!
//! Intervals are empirical-Bayes intervals: they cover at their level on
//! average over the documents (`tests/coverage_shrink.rs`), not for each
//! document whatever its θ; the prior's own uncertainty is not in them,
//! so they need many documents (hundreds, not tens).

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use statrs::function::gamma::{digamma, ln_gamma};

use crate::error::{Error, Result};
use crate::report::Report;

/// One document's shrunk estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shrunk {
    /// Posterior mean of its memorization.
    pub mean: f64,
    /// Posterior standard deviation.
    pub sd: f64,
    /// Lower end of the posterior interval at the report's level.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Local false sign rate: `P(θ ≤ 0 | data)`, the posterior probability
    /// that the document is not memorized.
    pub lfsr: f64,
    /// Its moderated standard error (step 1).
    pub se_moderated: f64,
}

/// The shrunk estimates of a report and the fitted prior.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shrinkage {
    /// One per document in corpus order (`None` without an estimate).
    pub docs: Vec<Option<Shrunk>>,
    /// The prior's weight on "not memorized" (the point mass at 0).
    pub null_weight: f64,
    /// The widths `a_k` of the prior's uniform components.
    pub widths: Vec<f64>,
    /// The weights of `U[0, a_k]`, one per width.
    pub weights_above: Vec<f64>,
    /// The weights of `U[−a_k, 0]`, one per width.
    pub weights_below: Vec<f64>,
    /// Prior degrees of freedom of the errors (`inf`: the errors were
    /// pooled into one).
    pub prior_df: f64,
    /// Level of the intervals.
    pub level: f64,
}

impl Shrinkage {
    /// The posterior means, in corpus order.
    pub fn means(&self) -> Vec<Option<f64>> {
        self.docs.iter().map(|s| s.map(|s| s.mean)).collect()
    }
}

/// A document as the model sees it.
struct Obs {
    index: usize,
    y: f64,
    /// Moderated squared error.
    v: f64,
    /// Its distribution.
    noise: Noise,
}

/// The Dirichlet weight of the point mass at 0 (ash's `nullweight`).
const NULL_WEIGHT: f64 = 10.0;

/// The shrunk estimates of `report`'s documents.
///
/// # Errors
/// [`Error::NotShrinkable`] for a 0/1 metric (its intervals are exact, not
/// normal) and with fewer than three documents with an error.
pub fn shrink(report: &Report) -> Result<Shrinkage> {
    if report.config.metric.is_binary() {
        return Err(Error::NotShrinkable {
            why: "a 0/1 metric's estimates are not normal",
        });
    }
    let obs = moderated(report)?;
    let widths = widths(&obs);
    let comps = Components::new(&widths);
    let tails: Vec<Tails> = obs.iter().map(|o| Tails::new(o, &comps.points)).collect();
    let lik: Vec<Vec<f64>> = obs
        .iter()
        .zip(&tails)
        .map(|(o, t)| likelihoods(o, &comps, t))
        .collect();
    let prior = fit_prior(&lik);
    let level = report.config.level;
    let mut docs = vec![None; report.docs.len()];
    for ((o, t), l) in obs.iter().zip(&tails).zip(&lik) {
        docs[o.index] = Some(posterior(o, &comps, t, l, &prior, level));
    }
    let k = widths.len();
    Ok(Shrinkage {
        docs,
        null_weight: prior[0],
        weights_above: prior[1..=k].to_vec(),
        weights_below: prior[k + 1..].to_vec(),
        widths,
        prior_df: moderation_of(report).0,
        level,
    })
}

/// The widths of the uniform components, as ash chooses them: from a tenth
/// of the smallest error to twice the largest `√(y² − s̃²)`, by factors
/// of `√2`.
fn widths(obs: &[Obs]) -> Vec<f64> {
    let min_se = obs.iter().map(|o| o.v.sqrt()).fold(f64::INFINITY, f64::min);
    let smallest = (min_se / 10.0).max(1e-12);
    let excess = obs
        .iter()
        .map(|o| o.y * o.y - o.v)
        .fold(f64::NEG_INFINITY, f64::max);
    let largest = if excess > 0.0 {
        2.0 * excess.sqrt()
    } else {
        8.0 * smallest
    };
    let mut w = vec![largest];
    while let Some(&last) = w.last() {
        let next = last / std::f64::consts::SQRT_2;
        if next < smallest || w.len() > 200 {
            break;
        }
        w.push(next);
    }
    w.reverse();
    w
}

/// The documents with an error: `(index, mem, unit variance, df, 1/n_in + 1/n_out)`.
fn with_errors(report: &Report) -> Vec<(usize, f64, f64, f64, f64)> {
    report
        .docs
        .iter()
        .filter_map(|d| {
            let e = &d.estimate;
            let scale = 1.0 / e.n_in as f64 + 1.0 / e.n_out as f64;
            let (mem, se, df) = (e.mem?, e.se?, e.df?);
            (mem.is_finite() && se.is_finite() && df > 0.0 && scale.is_finite())
                .then(|| (d.index, mem, se * se / scale, df.min(1e6), scale))
        })
        .collect()
}

/// The prior `(d₀, s₀²)` of `report`'s unit variances.
fn moderation_of(report: &Report) -> (f64, f64) {
    let vars: Vec<(f64, f64)> = with_errors(report)
        .iter()
        .filter(|r| r.2 > 0.0)
        .map(|r| (r.2, r.3))
        .collect();
    moderation_prior(&vars)
}

/// The documents with their moderated errors (step 1).
fn moderated(report: &Report) -> Result<Vec<Obs>> {
    let raw = with_errors(report);
    if raw.len() < 3 {
        return Err(Error::NotShrinkable {
            why: "fewer than three documents have an error",
        });
    }
    let (d0, s0) = moderation_of(report);
    Ok(raw
        .iter()
        .map(|&(index, y, u, df, scale)| {
            let unit = if d0.is_infinite() {
                s0
            } else {
                (d0 * s0 + df * u) / (d0 + df)
            };
            Obs {
                index,
                y,
                v: (unit * scale).max(f64::MIN_POSITIVE),
                noise: Noise::new(d0 + df),
            }
        })
        .collect())
}

/// The prior's components over a sorted set of points `−a_K … −a_1, 0,
/// a_1 … a_K`: the point mass at 0 first, then the uniforms `[0, a_k]`,
/// then `[−a_k, 0]`, each as a pair of indices into `points`.
struct Components {
    points: Vec<f64>,
    zero: usize,
    pairs: Vec<(usize, usize)>,
}

impl Components {
    fn new(widths: &[f64]) -> Self {
        let k = widths.len();
        let mut points: Vec<f64> = widths.iter().rev().map(|a| -a).collect();
        points.push(0.0);
        points.extend_from_slice(widths);
        let pairs = std::iter::once((k, k))
            .chain((0..k).map(|i| (k, k + 1 + i)))
            .chain((0..k).map(|i| (k - 1 - i, k)))
            .collect();
        Self {
            points,
            zero: k,
            pairs,
        }
    }
}

/// The standardized distribution of an estimate around its θ: Student t
/// on the moderated degrees of freedom `d₀ + d` (limma's moderated t;
/// the normal when they are infinite).
#[derive(Debug, Clone, Copy)]
struct Noise {
    nu: f64,
    t: Option<StudentsT>,
    /// The density's constant.
    c: f64,
}

impl Noise {
    fn new(nu: f64) -> Self {
        let t = (nu < 1e6)
            .then(|| StudentsT::new(0.0, 1.0, nu).ok())
            .flatten();
        let c = if t.is_some() {
            (ln_gamma((nu + 1.0) / 2.0) - ln_gamma(nu / 2.0)).exp()
                / (nu * std::f64::consts::PI).sqrt()
        } else {
            1.0 / (2.0 * std::f64::consts::PI).sqrt()
        };
        Self { nu, t, c }
    }

    fn cdf(&self, x: f64) -> f64 {
        match &self.t {
            Some(t) => t.cdf(x),
            None => Normal::standard().cdf(x),
        }
    }

    fn inverse_cdf(&self, p: f64) -> f64 {
        match &self.t {
            Some(t) => t.inverse_cdf(p),
            None => Normal::standard().inverse_cdf(p),
        }
    }

    fn pdf(&self, x: f64) -> f64 {
        if !x.is_finite() {
            return 0.0;
        }
        match self.t {
            Some(_) => self.c * (1.0 + x * x / self.nu).powf(-(self.nu + 1.0) / 2.0),
            None => self.c * (-0.5 * x * x).exp(),
        }
    }

    /// `F(b) − F(a)` for `a ≤ b`, from the tail nearer to them.
    #[cfg(test)]
    fn mass(&self, a: f64, b: f64) -> f64 {
        if a > 0.0 {
            self.cdf(-a) - self.cdf(-b)
        } else {
            self.cdf(b) - self.cdf(a)
        }
    }

    /// `∫ₐᵇ x f(x) dx` and `∫ₐᵇ x² f(x) dx`, given `z = F(b) − F(a)`. For
    /// the normal `φ(a) − φ(b)` and `z + aφ(a) − bφ(b)`; for t on `ν`
    /// degrees of freedom, from `(x(ν+x²)f)′ = (ν + (2−ν)x²) f` and
    /// `((ν+x²)f)′ = −(ν−1) x f`: `((ν+a²) f(a) − (ν+b²) f(b)) / (ν−1)` and
    /// `(ν z − b(ν+b²) f(b) + a(ν+a²) f(a)) / (ν−2)` (`ν` taken at least 3,
    /// so that both exist).
    fn moments(&self, a: f64, b: f64, z: f64) -> (f64, f64) {
        // g(x)·f(x) → 0 at ±∞ for the g used here.
        let at = |x: f64, g: f64| if x.is_finite() { g * self.pdf(x) } else { 0.0 };
        if self.t.is_none() {
            return (at(a, 1.0) - at(b, 1.0), z + at(a, a) - at(b, b));
        }
        let nu = self.nu.max(3.0);
        (
            (at(a, nu + a * a) - at(b, nu + b * b)) / (nu - 1.0),
            (nu * z - at(b, b * (nu + b * b)) + at(a, a * (nu + a * a))) / (nu - 2.0),
        )
    }
}

/// One document's noise distribution at every point of the components:
/// `lower[i] = F((p_i − y)/s)` and `upper[i] = 1 − lower[i]`, each from
/// its own tail so that masses far out keep their precision.
struct Tails {
    lower: Vec<f64>,
    upper: Vec<f64>,
}

impl Tails {
    fn new(o: &Obs, points: &[f64]) -> Self {
        let s = o.v.sqrt();
        let (lower, upper) = points
            .iter()
            .map(|p| {
                let x = (p - o.y) / s;
                (o.noise.cdf(x), o.noise.cdf(-x))
            })
            .unzip();
        Self { lower, upper }
    }

    /// The noise's mass between points `i ≤ j`.
    fn mass(&self, i: usize, j: usize) -> f64 {
        if self.lower[i] > 0.5 {
            (self.upper[i] - self.upper[j]).max(0.0)
        } else {
            (self.lower[j] - self.lower[i]).max(0.0)
        }
    }
}

/// A document's likelihood under each component.
fn likelihoods(o: &Obs, comps: &Components, tails: &Tails) -> Vec<f64> {
    let s = o.v.sqrt();
    comps
        .pairs
        .iter()
        .map(|&(i, j)| {
            if i == j {
                o.noise.pdf((o.y - comps.points[i]) / s) / s
            } else {
                tails.mass(i, j) / (comps.points[j] - comps.points[i])
            }
        })
        .collect()
}

/// The prior's weights by EM (Dempster, Laird & Rubin 1977) from uniform,
/// with the null-biased Dirichlet penalty (`NULL_WEIGHT − 1` pseudo-counts
/// on the point mass), until the objective gains less than 1e-7 per
/// document.
fn fit_prior(lik: &[Vec<f64>]) -> Vec<f64> {
    let k = lik.first().map_or(1, Vec::len);
    let mut w = vec![1.0 / k as f64; k];
    let mut last = f64::NEG_INFINITY;
    for _ in 0..5000 {
        let mut next = vec![0.0; k];
        next[0] = NULL_WEIGHT - 1.0;
        let mut objective = (NULL_WEIGHT - 1.0) * w[0].max(f64::MIN_POSITIVE).ln();
        for l in lik {
            let total: f64 = l.iter().zip(&w).map(|(l, w)| l * w).sum();
            if total <= 0.0 {
                continue;
            }
            objective += total.ln();
            for ((n, l), w) in next.iter_mut().zip(l).zip(&w) {
                *n += l * w / total;
            }
        }
        let sum: f64 = next.iter().sum();
        w = next.into_iter().map(|n| n / sum).collect();
        if objective - last < 1e-7 * lik.len() as f64 {
            break;
        }
        last = objective;
    }
    w
}

/// The trigamma function ψ′(x), by the recurrence ψ′(x) = ψ′(x + 1) + 1/x²
/// up to x ≥ 10 and the asymptotic series there (Abramowitz & Stegun 6.4.12).
fn trigamma(mut x: f64) -> f64 {
    let mut acc = 0.0;
    while x < 10.0 {
        acc += 1.0 / (x * x);
        x += 1.0;
    }
    let x2 = 1.0 / (x * x);
    acc + 1.0 / x
        + x2 / 2.0
        + (1.0 / x) * x2 * (1.0 / 6.0 - x2 * (1.0 / 30.0 - x2 * (1.0 / 42.0 - x2 / 30.0)))
}

/// `y` with `trigamma(y) = x`, by Newton's method on `1/trigamma` (Smyth
/// 2004, appendix).
fn trigamma_inverse(x: f64) -> f64 {
    if x > 1e7 {
        return 1.0 / x.sqrt();
    }
    if x < 1e-6 {
        return 1.0 / x;
    }
    let mut y = 0.5 + 1.0 / x;
    for _ in 0..50 {
        let t = trigamma(y);
        // d/dy trigamma (the tetragamma) by a central difference.
        let h = 1e-5 * y;
        let d = (trigamma(y + h) - trigamma(y - h)) / (2.0 * h);
        let step = t * (1.0 - t / x) / d;
        y += step;
        if (-step / y).abs() < 1e-10 {
            break;
        }
    }
    y
}

/// The prior `(d₀, s₀²)` of the unit variances `(s², d)`, by moments of
/// `log s²` (Smyth 2004, §6.2). `d₀ = ∞` (every variance replaced by
/// `s₀²`) when the log-variances vary no more than their sampling alone
/// makes them.
fn moderation_prior(vars: &[(f64, f64)]) -> (f64, f64) {
    if vars.is_empty() {
        return (f64::INFINITY, f64::MIN_POSITIVE);
    }
    let n = vars.len() as f64;
    let e: Vec<f64> = vars
        .iter()
        .map(|&(s2, d)| s2.ln() - digamma(d / 2.0) + (d / 2.0).ln())
        .collect();
    let mean = e.iter().sum::<f64>() / n;
    let pooled = || {
        let (num, den) = vars
            .iter()
            .fold((0.0, 0.0), |(a, b), &(s2, d)| (a + d * s2, b + d));
        num / den
    };
    if vars.len() < 2 {
        return (f64::INFINITY, pooled());
    }
    let spread = e.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        - vars.iter().map(|&(_, d)| trigamma(d / 2.0)).sum::<f64>() / n;
    if spread <= 0.0 {
        return (f64::INFINITY, pooled());
    }
    let d0 = 2.0 * trigamma_inverse(spread);
    let s0 = (mean + digamma(d0 / 2.0) - (d0 / 2.0).ln()).exp();
    (d0, s0)
}

/// One document's posterior: per component, its posterior weight on the
/// noise around the estimate truncated to the component's range.
///
/// # Formula
/// ```text
/// w₀ ∝ π₀ f(y/s̃)/s̃,   w_k ∝ π_k (F((b_k − y)/s̃) − F((a_k − y)/s̃)) / (b_k − a_k)
/// θ | k, y ~ y + s̃·T truncated to [a_k, b_k]      (T of distribution F)
/// ```
fn posterior(
    o: &Obs,
    comps: &Components,
    tails: &Tails,
    lik: &[f64],
    prior: &[f64],
    level: f64,
) -> Shrunk {
    let s = o.v.sqrt();
    let alpha = 1.0 - level;
    let mut w: Vec<f64> = lik.iter().zip(prior).map(|(l, p)| l * p).collect();
    let total: f64 = w.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        // Beyond every component: the estimate alone.
        let q = o.noise.inverse_cdf(1.0 - alpha / 2.0);
        return Shrunk {
            mean: o.y,
            sd: s,
            ci_low: o.y - q * s,
            ci_high: o.y + q * s,
            lfsr: o.noise.cdf(-o.y / s),
            se_moderated: s,
        };
    }
    w.iter_mut().for_each(|x| *x /= total);
    let point = w[0];
    // Uniform parts: (i, j, weight / mass).
    let mut parts: Vec<(usize, usize, f64)> = Vec::new();
    let (mut mean, mut second) = (0.0, 0.0);
    for (&(i, j), &wk) in comps.pairs.iter().zip(&w).skip(1) {
        let z = tails.mass(i, j);
        if wk < 1e-14 || z <= 0.0 {
            continue;
        }
        let (a, b) = ((comps.points[i] - o.y) / s, (comps.points[j] - o.y) / s);
        let (m1, m2) = o.noise.moments(a, b, z);
        let m = (o.y + s * m1 / z).clamp(comps.points[i], comps.points[j]);
        let sec = o.y * o.y + 2.0 * o.y * s * m1 / z + s * s * m2 / z;
        mean += wk * m;
        second += wk * sec.max(m * m);
        parts.push((i, j, wk / z));
    }
    let n = comps.points.len();
    // The posterior distribution function at each point (with the point
    // mass at 0 from 0 on).
    let at: Vec<f64> = (0..n)
        .map(|m| {
            let uniform: f64 = parts
                .iter()
                .filter(|p| p.0 < m)
                .map(|&(i, j, d)| d * tails.mass(i, j.min(m)))
                .sum();
            uniform + if m >= comps.zero { point } else { 0.0 }
        })
        .collect();
    let quantile = |q: f64| -> f64 {
        for m in 0..n {
            let before = at[m] - if m == comps.zero { point } else { 0.0 };
            if q <= before && m > 0 {
                // Inside (points[m − 1], points[m]): invert the noise's F.
                let density: f64 = parts
                    .iter()
                    .filter(|p| p.0 < m && p.1 >= m)
                    .map(|p| p.2)
                    .sum();
                let need = (q - at[m - 1]) / density.max(f64::MIN_POSITIVE);
                let x = if tails.lower[m - 1] <= 0.5 {
                    o.noise.inverse_cdf((tails.lower[m - 1] + need).min(1.0))
                } else {
                    -o.noise.inverse_cdf((tails.upper[m - 1] - need).max(0.0))
                };
                return (o.y + s * x).clamp(comps.points[m - 1], comps.points[m]);
            }
            if q <= at[m] {
                return comps.points[m];
            }
        }
        comps.points[n - 1]
    };
    Shrunk {
        mean,
        sd: (second - mean * mean).max(0.0).sqrt(),
        ci_low: quantile(alpha / 2.0),
        ci_high: quantile(1.0 - alpha / 2.0),
        lfsr: at[comps.zero].clamp(0.0, 1.0),
        se_moderated: s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigamma_and_its_inverse() {
        // ψ′(1) = π²/6, ψ′(1/2) = π²/2, ψ′(x) ~ 1/x for large x.
        let pi2 = std::f64::consts::PI.powi(2);
        assert!((trigamma(1.0) - pi2 / 6.0).abs() < 1e-10);
        assert!((trigamma(0.5) - pi2 / 2.0).abs() < 1e-10);
        assert!((trigamma(1e4) - 1e-4).abs() < 1e-8);
        for y in [0.3, 1.0, 2.5, 40.0] {
            assert!((trigamma_inverse(trigamma(y)) - y).abs() < 1e-6 * y, "{y}");
        }
    }

    #[test]
    fn moderation_recovers_the_prior_of_scaled_chi_squares() {
        // Variances s₀² · χ²_{d₀}/d₀ then s² | σ² ~ σ² χ²_d / d (d = 4):
        // the moments should find d₀ ≈ 10 and s₀² ≈ 2 from 20,000 draws.
        use cfmem_hash::SplitMix64;
        let mut rng = SplitMix64::new(7);
        let chi2 = |rng: &mut SplitMix64, k: usize| -> f64 {
            (0..k).map(|_| rng.normal().powi(2)).sum::<f64>()
        };
        let vars: Vec<(f64, f64)> = (0..20_000)
            .map(|_| {
                let sigma2 = 2.0 * 10.0 / chi2(&mut rng, 10);
                (sigma2 * chi2(&mut rng, 4) / 4.0, 4.0)
            })
            .collect();
        let (d0, s0) = moderation_prior(&vars);
        assert!((d0 - 10.0).abs() < 2.0, "d0 {d0}");
        assert!((s0 - 2.0).abs() < 0.15, "s0² {s0}");
        // Equal variances: pooled.
        let (d0, s0) = moderation_prior(&[(1.0, 1e6), (1.0, 1e6), (1.0, 1e6)]);
        assert!(d0.is_infinite() && (s0 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn posterior_of_the_null_and_one_uniform_by_hand() {
        // Prior: ½ at 0, ½ U[0, 1]; y = 0.4, s̃ = 0.1.
        // w₀ ∝ ½ φ(0.4; 0, 0.01) = ½ e^{−8} / √(0.02π),
        // w₁ ∝ ½ (Φ(6) − Φ(−4)); θ | 1 is N(0.4, 0.01) on [0, 1], of mean
        // 0.4 + 0.1 (φ(−4) − φ(6)) / (Φ(6) − Φ(−4)).
        let o = Obs {
            index: 0,
            y: 0.4,
            v: 0.01,
            noise: Noise::new(f64::INFINITY),
        };
        let pi = std::f64::consts::PI;
        let z = Normal::standard();
        let phi = |x: f64| (-0.5 * x * x).exp() / (2.0 * pi).sqrt();
        let mass = z.cdf(6.0) - z.cdf(-4.0);
        let (a, b) = ((-8.0f64).exp() / (0.02 * pi).sqrt(), mass);
        let (w0, w1) = (a / (a + b), b / (a + b));
        let comps = Components::new(&[1.0]);
        let tails = Tails::new(&o, &comps.points);
        let lik = likelihoods(&o, &comps, &tails);
        let s = posterior(&o, &comps, &tails, &lik, &[0.5, 0.5, 0.0], 0.95);
        let m1 = 0.4 + 0.1 * (phi(-4.0) - phi(6.0)) / mass;
        assert!((s.mean - w1 * m1).abs() < 1e-12, "{}", s.mean);
        assert!((s.lfsr - w0).abs() < 1e-12, "{} {w0}", s.lfsr);
        // Below 0 there is no mass, so the lower end is N(0.4, 0.01)'s
        // quantile at (0.025 − w₀)/w₁ (up to its Φ(−4) below 0), the upper
        // one at 1 − 0.025/w₁.
        let low = 0.4 + 0.1 * z.inverse_cdf((0.025 - w0) / w1);
        let high = 0.4 + 0.1 * z.inverse_cdf(1.0 - 0.025 / w1);
        assert!((s.ci_low - low).abs() < 1e-4, "{} {low}", s.ci_low);
        assert!((s.ci_high - high).abs() < 1e-4, "{} {high}", s.ci_high);
    }

    #[test]
    fn em_finds_the_share_of_nulls() {
        // 3,000 estimates: 60 % of θ exactly 0 and 40 % uniform on
        // [0, 0.5], noise 0.05: the fitted prior puts ≈ 0.6 at 0, ≈ 0.4
        // above it and nearly nothing below.
        use cfmem_hash::SplitMix64;
        let mut rng = SplitMix64::new(11);
        let obs: Vec<Obs> = (0..3000)
            .map(|i| {
                let theta = if i % 5 < 3 {
                    0.0
                } else {
                    0.5 * (i % 101) as f64 / 100.0
                };
                Obs {
                    index: i,
                    y: theta + 0.05 * rng.normal(),
                    v: 0.0025,
                    noise: Noise::new(f64::INFINITY),
                }
            })
            .collect();
        let widths = widths(&obs);
        let k = widths.len();
        let comps = Components::new(&widths);
        let lik: Vec<Vec<f64>> = obs
            .iter()
            .map(|o| likelihoods(o, &comps, &Tails::new(o, &comps.points)))
            .collect();
        let w = fit_prior(&lik);
        let above: f64 = w[1..=k].iter().sum();
        assert!((w[0] - 0.6).abs() < 0.05, "null weight {}", w[0]);
        assert!((above - 0.4).abs() < 0.05, "above {above}");
    }

    #[test]
    fn truncated_moments_match_quadrature() {
        // ∫ x f and ∫ x² f over [a, b] against Simpson's rule on the
        // density itself, for the normal and t on 5 degrees of freedom.
        for nu in [f64::INFINITY, 5.0] {
            let n = Noise::new(nu);
            for (a, b) in [(-1.0, 2.0), (0.5, 3.0), (-40.0, 0.0)] {
                let k = 20_000;
                let h = (b - a) / k as f64;
                let simpson = |g: &dyn Fn(f64) -> f64| -> f64 {
                    (0..=k)
                        .map(|i| {
                            let x = a + h * i as f64;
                            let c = if i == 0 || i == k {
                                1.0
                            } else if i % 2 == 1 {
                                4.0
                            } else {
                                2.0
                            };
                            c * g(x) * n.pdf(x)
                        })
                        .sum::<f64>()
                        * h
                        / 3.0
                };
                let (m1, m2) = n.moments(a, b, n.mass(a, b));
                assert!((m1 - simpson(&|x| x)).abs() < 1e-6, "{nu} {a} {b}: {m1}");
                assert!(
                    (m2 - simpson(&|x| x * x)).abs() < 1e-5,
                    "{nu} {a} {b}: {m2}"
                );
                assert!((n.mass(a, b) - simpson(&|_| 1.0)).abs() < 1e-6);
            }
        }
    }
}
