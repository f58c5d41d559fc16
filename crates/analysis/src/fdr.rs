//! Many documents, one threshold: one-sided p-values for "memorized"
//! (`mem > 0`) and Benjamini–Hochberg q-values over the documents with
//! an estimate, so that a count of memorized documents is a count of
//! discoveries at a stated false discovery rate, not of thousands of
//! uncorrected tests.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::estimate::Estimate;

/// The false discovery rate counts are made at unless asked otherwise.
pub const DEFAULT_FDR: f64 = 0.05;

/// The one-sided p-value of `mem ≤ 0` against `mem > 0`: `1 − F(mem / se)`
/// with `F` Student t on the estimate's degrees of freedom (the normal for
/// infinite ones, as for a 0/1 metric, whose `se` is its interval's
/// half-width over `z`). `None` without an error. An error of exactly 0
/// (every model on each side scored the same, under a continuous metric)
/// gives 0 for a positive gap and 1 otherwise.
pub fn p_value(e: &Estimate) -> Option<f64> {
    let (mem, se, df) = (e.mem?, e.se?, e.df?);
    if !(mem.is_finite() && se.is_finite()) {
        return None;
    }
    if se == 0.0 {
        return Some(if mem > 0.0 { 0.0 } else { 1.0 });
    }
    let t = mem / se;
    let upper = if df.is_finite() {
        1.0 - StudentsT::new(0.0, 1.0, df).ok()?.cdf(t)
    } else {
        1.0 - Normal::standard().cdf(t)
    };
    Some(upper.clamp(0.0, 1.0))
}

/// Benjamini–Hochberg q-values of the p-values present (`None` stays
/// `None` and does not count among the tests).
///
/// # Formula
/// ```text
/// p₍₁₎ ≤ … ≤ p₍ₘ₎:  q₍ᵢ₎ = min_{j ≥ i} min(1, m · p₍ⱼ₎ / j)
/// ```
/// Rejecting every `q ≤ α` keeps the expected false discovery proportion
/// at or below `α · m₀ / m` for independent or positively dependent tests
/// (Benjamini & Hochberg 1995; Benjamini & Yekutieli 2001).
pub fn q_values(p: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut order: Vec<(usize, f64)> = p
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let m = order.len() as f64;
    let mut q = vec![None; p.len()];
    let mut running = 1.0f64;
    for (rank, &(i, pi)) in order.iter().enumerate().rev() {
        running = running.min(pi * m / (rank + 1) as f64).min(1.0);
        q[i] = Some(running);
    }
    q
}

/// The q-values at most `fdr`: the discoveries at that false discovery rate.
pub fn discoveries(q: &[Option<f64>], fdr: f64) -> usize {
    q.iter().filter(|q| q.is_some_and(|q| q <= fdr)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_by_hand() {
        // p = 0.01, 0.04, 0.03, 0.2 (m = 4): sorted 0.01, 0.03, 0.04, 0.2;
        // m·p/rank = 0.04, 0.06, 0.0533, 0.2; running minimum from the top:
        // 0.04, 0.0533, 0.0533, 0.2.
        let q = q_values(&[Some(0.01), Some(0.04), None, Some(0.03), Some(0.2)]);
        let expected = [
            Some(0.04),
            Some(0.16 / 3.0),
            None,
            Some(0.16 / 3.0),
            Some(0.2),
        ];
        for (a, b) in q.iter().zip(expected) {
            match (a, b) {
                (Some(a), Some(b)) => assert!((a - b).abs() < 1e-12, "{q:?}"),
                (None, None) => {}
                _ => panic!("{q:?}"),
            }
        }
    }

    #[test]
    fn p_values_by_hand() {
        let e = |mem: f64, se: f64, df: f64| Estimate {
            n_in: 4,
            n_out: 4,
            in_mean: Some(mem),
            out_mean: Some(0.0),
            mem: Some(mem),
            se: Some(se),
            df: Some(df),
            ci_low: None,
            ci_high: None,
            reason: None,
        };
        // t = 2 on 3 df: one-sided p = 0.0697 (tables); z = 1.96: 0.025.
        assert!((p_value(&e(0.2, 0.1, 3.0)).unwrap() - 0.069_662).abs() < 1e-5);
        assert!((p_value(&e(0.196, 0.1, f64::INFINITY)).unwrap() - 0.025).abs() < 1e-4);
        assert_eq!(p_value(&e(0.1, 0.0, 3.0)), Some(0.0));
        assert_eq!(p_value(&e(0.0, 0.0, 3.0)), Some(1.0));
        assert!(p_value(&Estimate {
            se: None,
            ..e(0.1, 0.1, 3.0)
        })
        .is_none());
    }
}
