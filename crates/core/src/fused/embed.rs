//! Token + position embedding and its backward (scatter-add in order).

use super::*;

// ---------------------------------------------------------------------------
// Token + position embedding.

struct Embed {
    b: usize,
    t: usize,
}

impl CustomOp3 for Embed {
    fn name(&self) -> &'static str {
        "cfmem-embed"
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
        let (k, v, d) = dims3(self.name(), l1)?;
        let (_, ctx, _) = dims3(self.name(), l2)?;
        let wte = f32s(self.name(), s1, l1)?;
        let wpe = f32s(self.name(), s2, l2)?;
        let ids = u32s(self.name(), s3, l3)?;
        let (b, t) = (self.b, self.t);
        if ids.len() != k * b * t || t > ctx {
            candle_core::bail!("{}: {} ids for {k}×{b}×{t}", self.name(), ids.len());
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= v) {
            candle_core::bail!("{}: token id {bad} outside vocabulary {v}", self.name());
        }
        let mut x = vec![0f32; k * b * t * d];
        for_rows(
            &mut x,
            d,
            #[inline(always)]
            |i, row| {
                let m = i / (b * t);
                let pos = i % t;
                let tok = ids[i] as usize;
                let e = &wte[(m * v + tok) * d..(m * v + tok + 1) * d];
                let p = &wpe[(m * ctx + pos) * d..(m * ctx + pos + 1) * d];
                for ((o, e), p) in row.iter_mut().zip(e).zip(p) {
                    *o = e + p;
                }
            },
        )?;
        out(x, (k, b * t, d))
    }
    fn bwd(
        &self,
        wte: &Tensor,
        wpe: &Tensor,
        ids: &Tensor,
        _res: &Tensor,
        dx: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = dx.contiguous()?;
        let (_, v, _) = wte.dims3()?;
        let (_, ctx, _) = wpe.dims3()?;
        let dwte = dx.apply_op2_no_bwd(ids, &EmbedBwdTokens { v })?;
        let dwpe = dx.apply_op1_no_bwd(&EmbedBwdPositions {
            b: self.b,
            t: self.t,
            ctx,
        })?;
        Ok((Some(dwte), Some(dwpe), None))
    }
}

/// Scatter-add of `dx` `[K, N, D]` into `[K, V, D]` by token id, in order.
struct EmbedBwdTokens {
    v: usize,
}

impl CustomOp2 for EmbedBwdTokens {
    fn name(&self) -> &'static str {
        "cfmem-embed-bwd-tokens"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (k, n, d) = dims3(self.name(), l1)?;
        let dx = f32s(self.name(), s1, l1)?;
        let ids = u32s(self.name(), s2, l2)?;
        let v = self.v;
        let mut g = vec![0f32; k * v * d];
        for (i, &tok) in ids.iter().enumerate() {
            let m = i / n;
            let dst = &mut g[(m * v + tok as usize) * d..(m * v + tok as usize + 1) * d];
            for (o, s) in dst.iter_mut().zip(&dx[i * d..(i + 1) * d]) {
                *o += s;
            }
        }
        out(g, (k, v, d))
    }
}

/// Sum of `dx` `[K, B·T, D]` over the batch into `[K, ctx, D]`.
struct EmbedBwdPositions {
    b: usize,
    t: usize,
    ctx: usize,
}

impl CustomOp1 for EmbedBwdPositions {
    fn name(&self) -> &'static str {
        "cfmem-embed-bwd-positions"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let (k, _, d) = dims3(self.name(), l)?;
        let dx = f32s(self.name(), s, l)?;
        let (b, t, ctx) = (self.b, self.t, self.ctx);
        let mut g = vec![0f32; k * ctx * d];
        for m in 0..k {
            let sums = col_sum(&dx[m * b * t * d..(m + 1) * b * t * d], 1, b, t * d);
            g[m * ctx * d..m * ctx * d + t * d].copy_from_slice(&sums);
        }
        out(g, (k, ctx, d))
    }
}

/// Token plus position embeddings `[K, B·T, D]` for ids `[K, B, T]`.
pub(crate) fn embed(wte: &Tensor, wpe: &Tensor, ids: &Tensor) -> candle_core::Result<Tensor> {
    let (_, b, t) = ids.dims3()?;
    wte.contiguous()?
        .apply_op3(&wpe.contiguous()?, &ids.contiguous()?, Embed { b, t })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::testing::{check, rand_vec};
    use candle_core::Device;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn embed_matches_composition() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (k, v, d, ctx, b, t) = (2, 11, 6, 5, 3, 4);
        let ids: Vec<f32> = (0..k * b * t).map(|_| rng.gen_range(0..v) as f32).collect();
        let inputs = vec![
            (rand_vec(&mut rng, k * v * d, 1.0), vec![k, v, d], true),
            (rand_vec(&mut rng, k * ctx * d, 1.0), vec![k, ctx, d], true),
            (ids, vec![k, b, t], false),
        ];
        let composed = move |ts: &[Tensor]| -> candle_core::Result<Tensor> {
            let offsets: Vec<u32> = (0..k).map(|i| (i * v) as u32).collect();
            let offsets = Tensor::from_vec(offsets, (k, 1, 1), &Device::Cpu)?;
            let flat = ts[2].broadcast_add(&offsets)?.flatten_all()?;
            let x = ts[0].reshape((k * v, d))?.index_select(&flat, 0)?;
            let pos = ts[1].narrow(1, 0, t)?.unsqueeze(1)?;
            x.reshape((k, b, t, d))?
                .broadcast_add(&pos)?
                .reshape((k, b * t, d))
        };
        check(
            &inputs,
            &|ts| embed(&ts[0], &ts[1], &ts[2]),
            &composed,
            1e-5,
        );
    }
}
