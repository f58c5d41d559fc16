//! Layer norm over the last axis with gain and bias, and its backward.

use super::*;

// ---------------------------------------------------------------------------
// Layer norm over the last axis with gain and bias [K, 1, C].

pub(crate) const LN_EPS: f32 = 1e-5;

/// Mean and reciprocal standard deviation of a row (f32 accumulation, in
/// order, so every pass computes the same values).
#[inline(always)]
pub(crate) fn moments(row: &[f32]) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let mut acc = [0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            acc[l] += (c[l] - mean) * (c[l] - mean);
        }
    }
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum();
    let var = (acc.iter().sum::<f32>() + tail) / n;
    (mean, 1.0 / (var + LN_EPS).sqrt())
}

struct LayerNorm;

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "cfmem-layer-norm"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (k, r, c) = dims3(self.name(), l1)?;
        let x = f32s(self.name(), s1, l1)?;
        let g = f32s(self.name(), s2, l2)?;
        let b = f32s(self.name(), s3, l3)?;
        if g.len() != k * c || b.len() != k * c {
            candle_core::bail!("{}: gain/bias sizes do not match {k}×{c}", self.name());
        }
        let mut y = vec![0f32; x.len()];
        for_rows(
            &mut y,
            c,
            #[inline(always)]
            |i, row| {
                let m = i / r;
                let xs = &x[i * c..(i + 1) * c];
                let (mean, rstd) = moments(xs);
                let gs = &g[m * c..(m + 1) * c];
                let bs = &b[m * c..(m + 1) * c];
                for (((o, v), g), b) in row.iter_mut().zip(xs).zip(gs).zip(bs) {
                    *o = (v - mean) * rstd * g + b;
                }
            },
        )?;
        out(y, l1.shape().clone())
    }
    fn bwd(
        &self,
        x: &Tensor,
        g: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = x.apply_op3_no_bwd(g, &dy, &LayerNormBwdX)?;
        let dgb = x.apply_op2_no_bwd(&dy, &LayerNormBwdGain)?; // [K, 2, C]
        let dg = dgb.narrow(1, 0, 1)?;
        let db = dgb.narrow(1, 1, 1)?;
        Ok((Some(dx), Some(dg), Some(db)))
    }
}

/// One row of the input's gradient, `dx = rstd · (ĝ − mean(ĝ) − x̂ ·
/// mean(ĝ · x̂))` with `ĝ = dy · g` and `x̂ = (x − mean) · rstd`, written
/// to `out` or (`add`) added to it; `n` is the row's length as a float.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn backward_row(
    xs: &[f32],
    gs: &[f32],
    ds: &[f32],
    mean: f32,
    rstd: f32,
    n: f32,
    out: &mut [f32],
    add: bool,
) {
    let c = xs.len();
    let mut a1 = [0f32; LANES];
    let mut a2 = [0f32; LANES];
    let mut s1 = 0f32;
    let mut s2 = 0f32;
    let mut j = 0;
    while j + LANES <= c {
        for l in 0..LANES {
            let gh = ds[j + l] * gs[j + l];
            a1[l] += gh;
            a2[l] += gh * (xs[j + l] - mean) * rstd;
        }
        j += LANES;
    }
    for jj in j..c {
        let gh = ds[jj] * gs[jj];
        s1 += gh;
        s2 += gh * (xs[jj] - mean) * rstd;
    }
    let s1 = a1.iter().sum::<f32>() + s1;
    let s2 = a2.iter().sum::<f32>() + s2;
    let (m1, m2) = (s1 / n, s2 / n);
    if add {
        for (((o, v), g), d) in out.iter_mut().zip(xs).zip(gs).zip(ds) {
            let xh = (v - mean) * rstd;
            *o += rstd * (d * g - m1 - xh * m2);
        }
    } else {
        for (((o, v), g), d) in out.iter_mut().zip(xs).zip(gs).zip(ds) {
            let xh = (v - mean) * rstd;
            *o = rstd * (d * g - m1 - xh * m2);
        }
    }
}

struct LayerNormBwdX;

impl CustomOp3 for LayerNormBwdX {
    fn name(&self) -> &'static str {
        "cfmem-layer-norm-bwd-x"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (_, r, c) = dims3(self.name(), l1)?;
        let x = f32s(self.name(), s1, l1)?;
        let g = f32s(self.name(), s2, l2)?;
        let dy = f32s(self.name(), s3, l3)?;
        let n = c as f32;
        let mut dx = vec![0f32; x.len()];
        for_rows(
            &mut dx,
            c,
            #[inline(always)]
            |i, row| {
                let m = i / r;
                let xs = &x[i * c..(i + 1) * c];
                let gs = &g[m * c..(m + 1) * c];
                let ds = &dy[i * c..(i + 1) * c];
                let (mean, rstd) = moments(xs);
                backward_row(xs, gs, ds, mean, rstd, n, row, false);
            },
        )?;
        out(dx, l1.shape().clone())
    }
}

/// `[K, 2, C]`: row 0 the gain's gradient `Σ dy · x̂`, row 1 the bias's `Σ dy`.
struct LayerNormBwdGain;

impl CustomOp2 for LayerNormBwdGain {
    fn name(&self) -> &'static str {
        "cfmem-layer-norm-bwd-gain"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (k, r, c) = dims3(self.name(), l1)?;
        let x = f32s(self.name(), s1, l1)?;
        let dy = f32s(self.name(), s2, l2)?;
        let mut acc = vec![0f32; k * 2 * c];
        for m in 0..k {
            let (dg, db) = acc[m * 2 * c..(m + 1) * 2 * c].split_at_mut(c);
            for i in m * r..(m + 1) * r {
                let xs = &x[i * c..(i + 1) * c];
                let ds = &dy[i * c..(i + 1) * c];
                let (mean, rstd) = moments(xs);
                for (((g, b), v), d) in dg.iter_mut().zip(db.iter_mut()).zip(xs).zip(ds) {
                    *g += d * (v - mean) * rstd;
                    *b += d;
                }
            }
        }
        out(acc, (k, 2, c))
    }
}

/// Layer norm of `x` `[K, R, C]` over `C` with gain and bias `[K, 1, C]`.
pub(crate) fn layer_norm(x: &Tensor, g: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?
        .apply_op3(&g.contiguous()?, &b.contiguous()?, LayerNorm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::testing::{check, rand_vec};
    use candle_core::D;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ln_composed(x: &Tensor, g: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let xn = xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
        xn.broadcast_mul(g)?.broadcast_add(b)
    }

    #[test]
    fn layer_norm_matches_composition() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (k, r, c) = (2, 5, 12);
        let inputs = vec![
            (rand_vec(&mut rng, k * r * c, 2.0), vec![k, r, c], true),
            (rand_vec(&mut rng, k * c, 1.0), vec![k, 1, c], true),
            (rand_vec(&mut rng, k * c, 1.0), vec![k, 1, c], true),
        ];
        check(
            &inputs,
            &|t| layer_norm(&t[0], &t[1], &t[2]),
            &|t| ln_composed(&t[0], &t[1], &t[2]),
            1e-4,
        );
    }
}
