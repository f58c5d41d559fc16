//! Bias + GELU (tanh form) and its backward.

use super::*;

const GELU_C: f32 = 0.797_884_6; // sqrt(2 / pi)
const GELU_A: f32 = 0.044_715;

/// `gelu(x) = x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`.
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    let t = tanh(GELU_C * (x + GELU_A * x * x * x));
    0.5 * x * (1.0 + t)
}

/// `gelu'(x)`.
#[inline(always)]
pub(crate) fn gelu_grad(x: f32) -> f32 {
    let t = tanh(GELU_C * (x + GELU_A * x * x * x));
    let du = GELU_C * (1.0 + 3.0 * GELU_A * x * x);
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
}

// ---------------------------------------------------------------------------
// Bias + GELU (tanh form): gelu(h + b).

struct BiasGelu;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "cfmem-bias-gelu"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (k, r, c) = dims3(self.name(), l1)?;
        let h = f32s(self.name(), s1, l1)?;
        let b = f32s(self.name(), s2, l2)?;
        if b.len() != k * c {
            candle_core::bail!(
                "{}: bias has {} values, not {}",
                self.name(),
                b.len(),
                k * c
            );
        }
        let mut y = vec![0f32; h.len()];
        for_rows(
            &mut y,
            c,
            #[inline(always)]
            |i, row| {
                let m = i / r;
                let hs = &h[i * c..(i + 1) * c];
                let bs = &b[m * c..(m + 1) * c];
                for ((o, a), b) in row.iter_mut().zip(hs).zip(bs) {
                    *o = gelu(a + b);
                }
            },
        )?;
        out(y, l1.shape().clone())
    }
    fn bwd(
        &self,
        h: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let dh = h.apply_op3_no_bwd(b, &dy.contiguous()?, &BiasGeluBwd)?;
        let db = dh.apply_op1_no_bwd(&ColSum)?;
        Ok((Some(dh), Some(db)))
    }
}

struct BiasGeluBwd;

impl CustomOp3 for BiasGeluBwd {
    fn name(&self) -> &'static str {
        "cfmem-bias-gelu-bwd"
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
        let h = f32s(self.name(), s1, l1)?;
        let b = f32s(self.name(), s2, l2)?;
        let dy = f32s(self.name(), s3, l3)?;
        let mut dh = vec![0f32; h.len()];
        for_rows(
            &mut dh,
            c,
            #[inline(always)]
            |i, row| {
                let m = i / r;
                let hs = &h[i * c..(i + 1) * c];
                let bs = &b[m * c..(m + 1) * c];
                let gs = &dy[i * c..(i + 1) * c];
                for (((o, a), b), g) in row.iter_mut().zip(hs).zip(bs).zip(gs) {
                    *o = g * gelu_grad(a + b);
                }
            },
        )?;
        out(dh, l1.shape().clone())
    }
}

/// `gelu(h + b)` (tanh approximation) for `h` `[K, R, C]`, `b` `[K, 1, C]`.
pub(crate) fn bias_gelu(h: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    h.contiguous()?.apply_op2(&b.contiguous()?, BiasGelu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::testing::{check, rand_vec};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn bias_gelu_matches_composition() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (k, r, c) = (2, 7, 9);
        let inputs = vec![
            (rand_vec(&mut rng, k * r * c, 4.0), vec![k, r, c], true),
            (rand_vec(&mut rng, k * c, 1.0), vec![k, 1, c], true),
        ];
        check(
            &inputs,
            &|t| bias_gelu(&t[0], &t[1]),
            &|t| t[0].broadcast_add(&t[1])?.gelu(),
            1e-4,
        );
    }
}
