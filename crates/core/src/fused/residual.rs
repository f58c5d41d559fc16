//! Residual + bias and its backward.

use super::*;

// ---------------------------------------------------------------------------
// Residual + bias: x + y + b.

struct ResidualBias;

impl CustomOp3 for ResidualBias {
    fn name(&self) -> &'static str {
        "cfmem-residual-bias"
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
        let y = f32s(self.name(), s2, l2)?;
        let b = f32s(self.name(), s3, l3)?;
        if y.len() != x.len() || b.len() != k * c {
            candle_core::bail!("{}: shapes do not match {k}×{r}×{c}", self.name());
        }
        let mut z = vec![0f32; x.len()];
        for_rows(
            &mut z,
            c,
            #[inline(always)]
            |i, row| {
                let m = i / r;
                let xs = &x[i * c..(i + 1) * c];
                let ys = &y[i * c..(i + 1) * c];
                let bs = &b[m * c..(m + 1) * c];
                for (((o, a), y), b) in row.iter_mut().zip(xs).zip(ys).zip(bs) {
                    *o = a + (y + b);
                }
            },
        )?;
        out(z, l1.shape().clone())
    }
    fn bwd(
        &self,
        _x: &Tensor,
        _y: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        dz: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dz = dz.contiguous()?;
        let db = dz.apply_op1_no_bwd(&ColSum)?;
        Ok((Some(dz.clone()), Some(dz), Some(db)))
    }
}

/// `x + (y + b)` for `x`, `y` `[K, R, C]` and `b` `[K, 1, C]`: a residual
/// connection around a biased projection.
pub(crate) fn residual_bias(x: &Tensor, y: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?
        .apply_op3(&y.contiguous()?, &b.contiguous()?, ResidualBias)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::testing::{check, rand_vec};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn residual_bias_matches_composition() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (k, r, c) = (3, 4, 5);
        let inputs = vec![
            (rand_vec(&mut rng, k * r * c, 1.0), vec![k, r, c], true),
            (rand_vec(&mut rng, k * r * c, 1.0), vec![k, r, c], true),
            (rand_vec(&mut rng, k * c, 1.0), vec![k, 1, c], true),
        ];
        check(
            &inputs,
            &|t| residual_bias(&t[0], &t[1], &t[2]),
            &|t| t[0].add(&t[1].broadcast_add(&t[2])?),
            1e-5,
        );
    }
}
