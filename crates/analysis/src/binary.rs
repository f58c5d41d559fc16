//! Intervals for a difference of two proportions: what a 0/1 metric
//! (extraction) gets instead of Student t, whose interval collapses to a
//! point when every model on each side scores the same.
//!
//! The method of variance estimates recovery (MOVER; Zou & Donner 2008;
//! Newcombe 1998 for its Wilson form) on each side's Clopper–Pearson
//! interval. Wilson's bounds (Newcombe's hybrid interval) were measured and
//! rejected: at P = 0.98 and 4–8 models a side, Wilson's upper bound for
//! 7 of 8 is 0.978, and the difference covered 0.84–0.87
//! (`crates/analysis/tests/coverage_binary.rs`). With blocks, the two
//! sides' means may be correlated; a negative correlation widens the
//! interval (its estimate from the block sums is used), a positive one is
//! not allowed to narrow it: estimated from 4–16 blocks it is too noisy
//! (with it, 32 models at 0.02 vs 0.98 covered 0.91).

use statrs::distribution::{Beta, ContinuousCDF};

use crate::estimate::{RunningStats, Welch};

/// Clopper–Pearson's exact interval for a proportion `p` of `n` trials at
/// `level` (`x = p·n` successes).
///
/// # Formula
/// ```text
/// lower = Beta(x, n − x + 1) quantile α/2      (0 when x = 0)
/// upper = Beta(x + 1, n − x) quantile 1 − α/2  (1 when x = n)
/// ```
pub(crate) fn clopper_pearson(p: f64, n: f64, level: f64) -> (f64, f64) {
    let x = (p * n).round();
    let a = (1.0 - level) / 2.0;
    let lo = if x <= 0.0 {
        0.0
    } else {
        Beta::new(x, n - x + 1.0).map_or(0.0, |b| b.inverse_cdf(a))
    };
    let hi = if x >= n {
        1.0
    } else {
        Beta::new(x + 1.0, n - x).map_or(1.0, |b| b.inverse_cdf(1.0 - a))
    };
    (lo, hi)
}

/// The MOVER interval of `p_in − p_out` for 0/1 scores on Clopper–Pearson
/// bounds, with `r` the estimated correlation of the two sides' means (0
/// for independent models; only its negative part is used). `None` below
/// two models on a side. Never of zero width: its standard error is the
/// interval's half-width over `z` (infinite degrees of freedom).
///
/// # Formula
/// ```text
/// (l₁, u₁), (l₂, u₂) = Clopper–Pearson intervals of p₁ = p_in, p₂ = p_out
/// ρ = min(r, 0)
/// L = p₁ − p₂ − √((p₁ − l₁)² + (u₂ − p₂)² − 2ρ (p₁ − l₁)(u₂ − p₂))
/// U = p₁ − p₂ + √((u₁ − p₁)² + (p₂ − l₂)² − 2ρ (u₁ − p₁)(p₂ − l₂))
/// ```
pub(crate) fn mover(inn: &RunningStats, out: &RunningStats, r: f64, level: f64) -> Option<Welch> {
    if inn.n < 2 || out.n < 2 {
        return None;
    }
    let (p1, p2) = (inn.mean.clamp(0.0, 1.0), out.mean.clamp(0.0, 1.0));
    let (l1, u1) = clopper_pearson(p1, inn.n as f64, level);
    let (l2, u2) = clopper_pearson(p2, out.n as f64, level);
    Some(mover_of((p1, l1, u1), (p2, l2, u2), r, level))
}

/// The MOVER interval of `a − b` from each one's estimate and interval
/// `(estimate, low, high)`, with `r` the correlation of the two estimates
/// (only its negative part is used, as in [`mover`]); its standard error
/// is the half-width over `z` (Zou & Donner 2008).
pub(crate) fn mover_of(a: (f64, f64, f64), b: (f64, f64, f64), r: f64, level: f64) -> Welch {
    let r = if r.is_finite() { r.min(0.0) } else { 0.0 };
    mover_correlated(a, b, r, level)
}

/// The MOVER interval of `a − b` with the full correlation `r` of the two
/// estimates (Zou & Donner 2008, eq. 6; Newcombe 1998's method 10 for
/// paired proportions is its instance): for two means over documents that
/// the same models score, whose common part cancels in the difference.
pub(crate) fn mover_correlated(
    a: (f64, f64, f64),
    b: (f64, f64, f64),
    r: f64,
    level: f64,
) -> Welch {
    let r = if r.is_finite() {
        r.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let ((p1, l1, u1), (p2, l2, u2)) = (a, b);
    let diff = p1 - p2;
    let (a, b) = (p1 - l1, u2 - p2);
    let (c, d) = (u1 - p1, p2 - l2);
    let low = diff - (a * a + b * b - 2.0 * r * a * b).max(0.0).sqrt();
    let high = diff + (c * c + d * d - 2.0 * r * c * d).max(0.0).sqrt();
    let z = statrs::distribution::Normal::standard().inverse_cdf(0.5 + level / 2.0);
    Welch {
        diff,
        se: (high - low) / (2.0 * z),
        df: f64::INFINITY,
        ci_low: low,
        ci_high: high,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(successes: usize, n: usize) -> RunningStats {
        let mut s = RunningStats::default();
        for i in 0..n {
            s.push(if i < successes { 1.0 } else { 0.0 });
        }
        s
    }

    #[test]
    fn clopper_pearson_by_hand() {
        // x = 0 or n: the bound is (α/2)^(1/n) in closed form; 5/10 is
        // (0.1871, 0.8129) in the tables (e.g. Brown, Cai & DasGupta 2001).
        let (l, u) = clopper_pearson(0.0, 10.0, 0.95);
        assert!(
            l == 0.0 && (u - (1.0 - 0.025f64.powf(0.1))).abs() < 1e-9,
            "{u}"
        );
        let (l, u) = clopper_pearson(1.0, 10.0, 0.95);
        assert!((l - 0.025f64.powf(0.1)).abs() < 1e-9 && u == 1.0, "{l}");
        let (l, u) = clopper_pearson(0.5, 10.0, 0.95);
        assert!(
            (l - 0.1871).abs() < 1e-4 && (u - 0.8129).abs() < 1e-4,
            "{l} {u}"
        );
    }

    #[test]
    fn mover_by_hand_and_never_a_point() {
        // 10/10 − 0/10: L = 1 − √((1 − l₁)² + u₂²) with l₁ = 0.025^0.1,
        // u₂ = 1 − l₁; U = 1.
        let w = mover(&side(10, 10), &side(0, 10), 0.0, 0.95).unwrap();
        let l1 = 0.025f64.powf(0.1);
        let expected = 1.0 - ((1.0 - l1).powi(2) * 2.0).sqrt();
        assert!(
            (w.ci_low - expected).abs() < 1e-9 && w.ci_high == 1.0,
            "{w:?}"
        );
        assert!(w.se > 0.0 && w.df.is_infinite());
        // Both sides never extract: an interval around 0, not [0, 0].
        let w = mover(&side(0, 8), &side(0, 8), 0.0, 0.95).unwrap();
        assert!(w.ci_low < 0.0 && w.ci_high > 0.0 && w.diff == 0.0, "{w:?}");
        assert!(mover(&side(1, 1), &side(0, 8), 0.0, 0.95).is_none());
        // A negative correlation widens it; a positive one does not narrow it.
        let width = |r| {
            let w = mover(&side(5, 10), &side(3, 10), r, 0.95).unwrap();
            w.ci_high - w.ci_low
        };
        assert!(width(-0.5) > width(0.0));
        assert_eq!(width(0.5), width(0.0));
    }
}
