//! Branch-free, vectorisable scalar maths and fixed-order reductions shared by the kernels.

/// `e^x` for f32, accurate to about 2 ulp, written without branches or libm
/// calls so that loops over it vectorise. Inputs are clamped to the range
/// where `e^x` is a normal float.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    // Selects rather than `clamp`, and the exponent taken from the rounded
    // value's bits rather than a float-to-int cast: both vectorise.
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let kf = x * LOG2E + ROUND;
    let n = kf - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Taylor series of e^r for |r| ≤ ln2/2, to r^7.
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // kf's low mantissa bits hold n (|n| ≤ 127): 2^n = bits (n + 127) << 23.
    let e = kf.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23;
    let scale = f32::from_bits(e);
    p * scale
}

/// `tanh` through [`exp`]: `1 − 2 / (e^{2u} + 1)`.
#[inline(always)]
pub(crate) fn tanh(u: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * u) + 1.0)
}

/// Lanes of the reductions below: eight partial results combined in a
/// fixed order, so a reduction vectorises and stays deterministic.
pub(crate) const LANES: usize = 8;

#[inline(always)]
pub(crate) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
pub(crate) fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut xc = x.chunks_exact(LANES);
    let mut yc = y.chunks_exact(LANES);
    for (a, b) in (&mut xc).zip(&mut yc) {
        for l in 0..LANES {
            acc[l] += a[l] * b[l];
        }
    }
    let tail: f32 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
pub(crate) fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    let m = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    acc.iter().fold(m, |a, &v| a.max(v))
}

/// `Σ e^(x − shift)`.
#[inline(always)]
pub(crate) fn sum_exp(x: &[f32], shift: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            acc[l] += exp(c[l] - shift);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&v| exp(v - shift)).sum();
    acc.iter().sum::<f32>() + tail
}

/// Sum `x` `[K, R, C]` over `R` into `[K, 1, C]` (rows in order).
pub(super) fn col_sum(x: &[f32], k: usize, r: usize, c: usize) -> Vec<f32> {
    let mut acc = vec![0f32; k * c];
    for m in 0..k {
        let dst = &mut acc[m * c..(m + 1) * c];
        for row in x[m * r * c..(m + 1) * r * c].chunks_exact(c) {
            for (d, s) in dst.iter_mut().zip(row) {
                *d += s;
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_float_range() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = f64::from(exp(x));
            let want = f64::from(x).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(f32::NAN).is_nan());
    }
}
