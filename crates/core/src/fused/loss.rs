//! Cross-entropy (per-token negative log-likelihood) and its backward.

use super::*;

// ---------------------------------------------------------------------------
// Cross-entropy: per-token −log softmax(logits)[target].

struct CrossEntropy;

/// Log-sum-exp of a row (max-shifted).
/// The row's maximum and `ln Σ e^(x − max)`.
#[inline(always)]
pub(crate) fn logsumexp(row: &[f32]) -> (f32, f32) {
    let mx = max(row);
    (mx, sum_exp(row, mx).ln())
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cfmem-cross-entropy"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (k, n, v) = dims3(self.name(), l1)?;
        let z = f32s(self.name(), s1, l1)?;
        let tg = u32s(self.name(), s2, l2)?;
        if tg.len() != k * n {
            candle_core::bail!("{}: {} targets for {} rows", self.name(), tg.len(), k * n);
        }
        if let Some(&bad) = tg.iter().find(|&&t| t as usize >= v) {
            candle_core::bail!("{}: target {bad} outside vocabulary {v}", self.name());
        }
        let mut nll = vec![0f32; k * n];
        // One value per row: parallelise over blocks of 64 rows (the last
        // block may be shorter).
        let block = 64;
        for_rows(
            &mut nll,
            block,
            #[inline(always)]
            |bi, outs| {
                for (j, o) in outs.iter_mut().enumerate() {
                    let i = bi * block + j;
                    let row = &z[i * v..(i + 1) * v];
                    let (mx, lse) = logsumexp(row);
                    *o = mx + lse - row[tg[i] as usize];
                }
            },
        )?;
        out(nll, (k, n))
    }
    fn bwd(
        &self,
        z: &Tensor,
        tg: &Tensor,
        _res: &Tensor,
        dnll: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let dz = z.apply_op3_no_bwd(tg, &dnll.contiguous()?, &CrossEntropyBwd)?;
        Ok((Some(dz), None))
    }
}

struct CrossEntropyBwd;

impl CustomOp3 for CrossEntropyBwd {
    fn name(&self) -> &'static str {
        "cfmem-cross-entropy-bwd"
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
        let (_, _, v) = dims3(self.name(), l1)?;
        let z = f32s(self.name(), s1, l1)?;
        let tg = u32s(self.name(), s2, l2)?;
        let g = f32s(self.name(), s3, l3)?;
        let mut dz = vec![0f32; z.len()];
        for_rows(
            &mut dz,
            v,
            #[inline(always)]
            |i, row| {
                let zs = &z[i * v..(i + 1) * v];
                let gi = g[i];
                if gi == 0.0 {
                    return; // masked token: no gradient
                }
                let (mx, lse) = logsumexp(zs);
                let shift = mx + lse;
                for (o, &a) in row.iter_mut().zip(zs) {
                    *o = gi * exp(a - shift);
                }
                row[tg[i] as usize] -= gi;
            },
        )?;
        out(dz, l1.shape().clone())
    }
}

/// Per-token negative log-likelihood `[K, N]` of `targets` `[K, N]` (u32)
/// under `logits` `[K, N, V]` (f32).
pub(crate) fn cross_entropy(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    logits
        .contiguous()?
        .apply_op2(&targets.contiguous()?, CrossEntropy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::testing::{check, rand_vec};
    use candle_core::D;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn cross_entropy_matches_composition() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let (k, n, v) = (2, 6, 13);
        let tg: Vec<f32> = (0..k * n).map(|_| rng.gen_range(0..v) as f32).collect();
        let inputs = vec![
            (rand_vec(&mut rng, k * n * v, 3.0), vec![k, n, v], true),
            (tg, vec![k, n], false),
        ];
        let composed = |ts: &[Tensor]| -> candle_core::Result<Tensor> {
            let m = ts[0].max_keepdim(D::Minus1)?.detach();
            let z = ts[0].broadcast_sub(&m)?;
            let lse = z.exp()?.sum_keepdim(D::Minus1)?.log()?;
            let logp = z.broadcast_sub(&lse)?;
            logp.gather(&ts[1].unsqueeze(D::Minus1)?, D::Minus1)?
                .squeeze(D::Minus1)?
                .neg()
        };
        check(
            &inputs,
            &|ts| cross_entropy(&ts[0], &ts[1]),
            &composed,
            1e-5,
        );
    }
}
