//! Correlations between two vectors of estimates: Spearman, Pearson,
//! their intervals, the Spearman–Brown prophecy, and Spearman's rank
//! correlation of a bootstrap resample computed from the sort orders.

use statrs::distribution::{ContinuousCDF, Normal};

/// Spearman's rank correlation of `a` and `b` (average ranks for ties),
/// over the pairs where both are finite. `None` below three pairs or when a
/// side is constant.
///
/// # Formula
/// ```text
/// ρ = Pearson( rank(a), rank(b) )
/// ```
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    let (x, y) = finite_pairs(a, b);
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

/// A correlation with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Correlation {
    /// The correlation.
    pub r: f64,
    /// Lower end of the interval.
    pub ci_low: f64,
    /// Upper end of the interval.
    pub ci_high: f64,
    /// Pairs it is computed over.
    pub n: usize,
}

/// Fisher's z interval of a correlation `r` over `n` pairs, with the
/// variance factor `c` of `z = atanh(r)`: 1 for Pearson's r, `1 + ρ²/2`
/// for Spearman's ρ (Bonett & Wright 2000; [`spearman_ci`]).
///
/// # Formula
/// ```text
/// z = atanh(r),  se = √(c / (n − 3)),  interval = tanh(z ± z_{1−α/2} · se)
/// ```
pub fn fisher_interval(r: f64, n: usize, c: f64, level: f64) -> Option<Correlation> {
    if n < 4 || !r.is_finite() {
        return None;
    }
    let z = r.clamp(-0.999_999_9, 0.999_999_9).atanh();
    let q = Normal::standard().inverse_cdf(0.5 + level / 2.0);
    let se = (c / (n - 3) as f64).sqrt();
    Some(Correlation {
        r,
        ci_low: (z - q * se).tanh(),
        ci_high: (z + q * se).tanh(),
        n,
    })
}

/// Spearman's ρ of `a` and `b` with Fisher's interval and Bonett &
/// Wright's (2000) variance factor `c = 1 + ρ²/2`. The constant 1.06 of
/// Fieller et al. holds near ρ = 0 only: at ρ ≈ 0.95 its interval covers
/// ≈ 0.90 (`crates/analysis/tests/coverage_correlation.rs`).
pub fn spearman_ci(a: &[f64], b: &[f64], level: f64) -> Option<Correlation> {
    let n = finite_pairs(a, b).0.len();
    let rho = spearman(a, b)?;
    fisher_interval(rho, n, 1.0 + rho * rho / 2.0, level)
}

/// Pearson's r of `a` and `b` (finite pairs) with Fisher's interval.
pub fn pearson_ci(a: &[f64], b: &[f64], level: f64) -> Option<Correlation> {
    let (x, y) = finite_pairs(a, b);
    fisher_interval(pearson(&x, &y)?, x.len(), 1.0, level)
}

/// The pairs of `a` and `b` where both are finite.
fn finite_pairs(a: &[f64], b: &[f64]) -> (Vec<f64>, Vec<f64>) {
    a.iter()
        .zip(b)
        .filter(|(p, q)| p.is_finite() && q.is_finite())
        .map(|(p, q)| (*p, *q))
        .unzip()
}

/// Two vectors prepared for Spearman's ρ of weighted resamples: each
/// vector's sort order and tie groups, computed once.
#[derive(Debug, Clone)]
pub(crate) struct RankPair {
    orders: [Vec<usize>; 2],
    values: [Vec<f64>; 2],
}

impl RankPair {
    /// For the finite pairs of `a`, `b` (others get weight 0 always).
    pub(crate) fn new(a: &[f64], b: &[f64]) -> Self {
        let order = |v: &[f64]| {
            let mut o: Vec<usize> = (0..v.len())
                .filter(|&i| a[i].is_finite() && b[i].is_finite())
                .collect();
            o.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
            o
        };
        Self {
            orders: [order(a), order(b)],
            values: [a.to_vec(), b.to_vec()],
        }
    }

    /// Items with a finite value on both sides.
    pub(crate) fn len(&self) -> usize {
        self.orders[0].len()
    }

    /// Average ranks (ties and repeats share the mean of their positions)
    /// of side `s` in the sample where item `i` appears `w[i]` times.
    fn ranks(&self, s: usize, w: &[f64], out: &mut [f64]) {
        let (order, v) = (&self.orders[s], &self.values[s]);
        let mut below = 0.0;
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            let mut weight = 0.0;
            while j < order.len() && v[order[j]] == v[order[i]] {
                weight += w[order[j]];
                j += 1;
            }
            let r = below + (weight + 1.0) / 2.0;
            for &k in &order[i..j] {
                out[k] = r;
            }
            below += weight;
            i = j;
        }
    }

    /// Spearman's ρ of the resample with multiplicities `w` (`None` below
    /// three items or when a side is constant). `scratch` holds two
    /// vectors of the items' length.
    pub(crate) fn spearman(&self, w: &[f64], scratch: &mut [Vec<f64>; 2]) -> Option<f64> {
        let [ra, rb] = scratch;
        self.ranks(0, w, ra);
        self.ranks(1, w, rb);
        let (mut n, mut sa, mut sb) = (0.0, 0.0, 0.0);
        for &i in &self.orders[0] {
            n += w[i];
            sa += w[i] * ra[i];
            sb += w[i] * rb[i];
        }
        if n < 3.0 {
            return None;
        }
        let (ma, mb) = (sa / n, sb / n);
        let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
        for &i in &self.orders[0] {
            let (x, y) = (ra[i] - ma, rb[i] - mb);
            sab += w[i] * x * y;
            saa += w[i] * x * x;
            sbb += w[i] * y * y;
        }
        (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn weighted_resample_spearman_equals_spearman_of_the_resample() {
        let a = [0.3, 0.1, 0.1, 0.9, 0.5, f64::NAN, 0.7];
        let b = [0.2, 0.4, 0.1, 0.8, 0.8, 0.3, 0.6];
        let pair = RankPair::new(&a, &b);
        let mut scratch = [vec![0.0; 7], vec![0.0; 7]];
        // Every item once: plain Spearman over the finite pairs.
        let ones = [1.0; 7];
        assert!(
            (pair.spearman(&ones, &mut scratch).unwrap() - spearman(&a, &b).unwrap()).abs() < 1e-12
        );
        // A resample with repeats: the same as Spearman of the expanded sample.
        let w = [2.0, 0.0, 1.0, 1.0, 3.0, 1.0, 0.0];
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..7 {
            for _ in 0..w[i] as usize {
                x.push(a[i]);
                y.push(b[i]);
            }
        }
        let want = spearman(&x, &y).unwrap();
        assert!((pair.spearman(&w, &mut scratch).unwrap() - want).abs() < 1e-12);
    }

    #[test]
    fn fisher_intervals_by_hand() {
        // r = 0.5, n = 28: z = 0.549306, se = 1/5 = 0.2, z ± 1.959964·0.2.
        let c = fisher_interval(0.5, 28, 1.0, 0.95).unwrap();
        assert!((c.ci_low - (0.549_306_1f64 - 0.391_992_8).tanh()).abs() < 1e-6);
        assert!((c.ci_high - (0.549_306_1f64 + 0.391_992_8).tanh()).abs() < 1e-6);
        assert!(fisher_interval(0.5, 3, 1.0, 0.95).is_none());
        // Spearman's interval is wider by √1.06.
        let s = fisher_interval(0.5, 28, 1.06, 0.95).unwrap();
        assert!(s.ci_low < c.ci_low && s.ci_high > c.ci_high);
    }
}
