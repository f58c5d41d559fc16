//! Causal multi-head self-attention over packed query/key/value projections, and its backward.

use super::*;

// ---------------------------------------------------------------------------
// Causal multi-head self-attention over a packed, un-biased `qkv`.

/// Attention for `h` `[K, B·T, 3D]` (the query, key and value projections
/// side by side, before their bias `b` `[K, 1, 3D]`), giving the heads'
/// outputs side by side, `[K, B·T, D]`. The probabilities are recomputed in
/// the backward pass instead of kept.
/// Causal softmax of `scale · s` in place over rows of `t` (row `i % t`
/// sees columns `0..=i % t`; the rest become 0).
#[inline(always)]
pub(crate) fn causal_softmax(s: &mut [f32], t: usize, scale: f32) {
    for (i, row) in s.chunks_mut(t).enumerate() {
        let q = i % t;
        let (vis, hidden) = row.split_at_mut(q + 1);
        let mx = max(vis) * scale;
        for o in vis.iter_mut() {
            *o = exp(*o * scale - mx);
        }
        let inv = 1.0 / sum(vis);
        for o in vis.iter_mut() {
            *o *= inv;
        }
        hidden.fill(0.0);
    }
}

struct Attention {
    t: usize,
    heads: usize,
    scale: f32,
}

fn take_f32(s: CpuStorage) -> CResult<Vec<f32>> {
    match s {
        CpuStorage::F32(v) => Ok(v),
        other => candle_core::bail!("expected f32 storage, got {:?}", other.dtype()),
    }
}

/// A strided `[n, rows, cols]` view for a batched matrix product.
fn view(n: usize, rows: usize, cols: usize, strides: [usize; 3], offset: usize) -> Layout {
    Layout::new(Shape::from((n, rows, cols)), strides.to_vec(), offset)
}

impl Attention {
    /// `qkv = h + b` for the batch elements `first..first + n` (each `T`
    /// rows of `3D`), where model `m` owns elements `m·B .. (m+1)·B`.
    #[inline(always)]
    fn biased(
        &self,
        h: &[f32],
        b: &[f32],
        per_model: usize,
        first: usize,
        n: usize,
        d3: usize,
    ) -> Vec<f32> {
        let t = self.t;
        let mut qkv = vec![0f32; n * t * d3];
        for (j, row) in qkv.chunks_mut(d3).enumerate() {
            let r = first * t + j;
            let m = (first + j / t) / per_model;
            let hs = &h[r * d3..(r + 1) * d3];
            let bs = &b[m * d3..(m + 1) * d3];
            for ((o, a), b) in row.iter_mut().zip(hs).zip(bs) {
                *o = a + b;
            }
        }
        qkv
    }

    /// Causal softmax of `scale · s` in place, rows of `T`.
    #[inline(always)]
    fn softmax(&self, s: &mut [f32]) {
        causal_softmax(s, self.t, self.scale)
    }

    /// Probabilities `[n, T, T]` of head `hh` from the packed `qkv` storage.
    #[inline(always)]
    fn probs(&self, qkv: &CpuStorage, n: usize, d: usize, hh: usize) -> CResult<Vec<f32>> {
        let (t, hd) = (self.t, d / self.heads);
        let d3 = 3 * d;
        let q = view(n, t, hd, [t * d3, d3, 1], hh * hd);
        let kt = view(n, hd, t, [t * d3, 1, d3], d + hh * hd);
        let mut s = take_f32(qkv.matmul(qkv, (n, t, t, hd), &q, &kt)?)?;
        self.softmax(&mut s);
        Ok(s)
    }
}

impl CustomOp2 for Attention {
    fn name(&self) -> &'static str {
        "cfmem-attention"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (k, nrows, d3) = dims3(self.name(), l1)?;
        let h = f32s(self.name(), s1, l1)?;
        let b = f32s(self.name(), s2, l2)?;
        let (t, d) = (self.t, d3 / 3);
        if d3 % 3 != 0 || d % self.heads != 0 || nrows % t != 0 || b.len() != k * d3 {
            candle_core::bail!("{}: bad shape {k}×{nrows}×{d3}", self.name());
        }
        let hd = d / self.heads;
        let per_model = nrows / t;
        let mut y = vec![0f32; k * nrows * d];
        for_blocks(
            &mut y,
            t * d,
            #[inline(always)]
            |first, chunk| {
                let n = chunk.len() / (t * d);
                let qkv = CpuStorage::F32(self.biased(h, b, per_model, first, n, d3));
                for hh in 0..self.heads {
                    let p = CpuStorage::F32(self.probs(&qkv, n, d, hh)?);
                    let pl = view(n, t, t, [t * t, t, 1], 0);
                    let vl = view(n, t, hd, [t * d3, d3, 1], 2 * d + hh * hd);
                    let yh = take_f32(p.matmul(&qkv, (n, t, hd, t), &pl, &vl)?)?;
                    for (dst, src) in chunk.chunks_mut(d).zip(yh.chunks(hd)) {
                        dst[hh * hd..(hh + 1) * hd].copy_from_slice(src);
                    }
                }
                Ok(())
            },
        )?;
        out(y, (k, nrows, d))
    }
    fn bwd(
        &self,
        h: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let dh = h.apply_op3_no_bwd(
            b,
            &dy.contiguous()?,
            &AttentionBwd {
                t: self.t,
                heads: self.heads,
                scale: self.scale,
            },
        )?;
        let db = dh.apply_op1_no_bwd(&ColSum)?;
        Ok((Some(dh), Some(db)))
    }
}

struct AttentionBwd {
    t: usize,
    heads: usize,
    scale: f32,
}

impl CustomOp3 for AttentionBwd {
    fn name(&self) -> &'static str {
        "cfmem-attention-bwd"
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
        let (k, nrows, d3) = dims3(self.name(), l1)?;
        let h = f32s(self.name(), s1, l1)?;
        let b = f32s(self.name(), s2, l2)?;
        let dy_all = f32s(self.name(), s3, l3)?;
        let fwd = Attention {
            t: self.t,
            heads: self.heads,
            scale: self.scale,
        };
        let (t, d) = (self.t, d3 / 3);
        let hd = d / self.heads;
        let per_model = nrows / t;
        let mut dh = vec![0f32; k * nrows * d3];
        for_blocks(
            &mut dh,
            t * d3,
            #[inline(always)]
            |first, chunk| {
                let n = chunk.len() / (t * d3);
                let qkv = CpuStorage::F32(fwd.biased(h, b, per_model, first, n, d3));
                let dy = CpuStorage::F32(dy_all[first * t * d..(first + n) * t * d].to_vec());
                for hh in 0..self.heads {
                    let p = fwd.probs(&qkv, n, d, hh)?;
                    // dP = dY_h · V_hᵀ
                    let dyl = view(n, t, hd, [t * d, d, 1], hh * hd);
                    let vt = view(n, hd, t, [t * d3, 1, d3], 2 * d + hh * hd);
                    let mut ds = take_f32(dy.matmul(&qkv, (n, t, t, hd), &dyl, &vt)?)?;
                    // dS = scale · P ∘ (dP − rowsum(dP ∘ P))
                    for (drow, prow) in ds.chunks_mut(t).zip(p.chunks(t)) {
                        let dp = dot(drow, prow);
                        for (o, p) in drow.iter_mut().zip(prow) {
                            *o = self.scale * p * (*o - dp);
                        }
                    }
                    let ds = CpuStorage::F32(ds);
                    let p = CpuStorage::F32(p);
                    let sl = view(n, t, t, [t * t, t, 1], 0);
                    let slt = view(n, t, t, [t * t, 1, t], 0);
                    // dQ = dS · K_h, dK = dSᵀ · Q_h, dV = Pᵀ · dY_h
                    let kl = view(n, t, hd, [t * d3, d3, 1], d + hh * hd);
                    let ql = view(n, t, hd, [t * d3, d3, 1], hh * hd);
                    let dq = take_f32(ds.matmul(&qkv, (n, t, hd, t), &sl, &kl)?)?;
                    let dk = take_f32(ds.matmul(&qkv, (n, t, hd, t), &slt, &ql)?)?;
                    let dv = take_f32(p.matmul(&dy, (n, t, hd, t), &slt, &dyl)?)?;
                    for (j, dst) in chunk.chunks_mut(d3).enumerate() {
                        let src = j * hd..(j + 1) * hd;
                        dst[hh * hd..(hh + 1) * hd].copy_from_slice(&dq[src.clone()]);
                        dst[d + hh * hd..d + (hh + 1) * hd].copy_from_slice(&dk[src.clone()]);
                        dst[2 * d + hh * hd..2 * d + (hh + 1) * hd].copy_from_slice(&dv[src]);
                    }
                }
                Ok(())
            },
        )?;
        out(dh, (k, nrows, d3))
    }
}

/// Causal multi-head attention of `h + b` (`h` `[K, B·T, 3D]` packed
/// query/key/value projections, `b` `[K, 1, 3D]`), heads side by side in the
/// output `[K, B·T, D]`.
pub(crate) fn attention(
    h: &Tensor,
    b: &Tensor,
    t: usize,
    heads: usize,
    scale: f32,
) -> candle_core::Result<Tensor> {
    h.contiguous()?
        .apply_op2(&b.contiguous()?, Attention { t, heads, scale })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::testing::{check, rand_vec};
    use candle_core::{Device, D};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn attention_matches_composition() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (k, b, t, h, hd) = (2, 3, 5, 2, 3);
        let d = h * hd;
        let scale = 1.0 / (hd as f32).sqrt();
        let inputs = vec![
            (
                rand_vec(&mut rng, k * b * t * 3 * d, 1.5),
                vec![k, b * t, 3 * d],
                true,
            ),
            (rand_vec(&mut rng, k * 3 * d, 0.5), vec![k, 1, 3 * d], true),
        ];
        let composed = move |ts: &[Tensor]| -> candle_core::Result<Tensor> {
            let qkv = ts[0]
                .broadcast_add(&ts[1])?
                .reshape((k * b, t, 3, h, hd))?
                .permute((2, 0, 3, 1, 4))?;
            let q = qkv.get(0)?.contiguous()?.reshape((k * b * h, t, hd))?;
            let kk = qkv.get(1)?.contiguous()?.reshape((k * b * h, t, hd))?;
            let vv = qkv.get(2)?.contiguous()?.reshape((k * b * h, t, hd))?;
            let mask: Vec<f32> = (0..t * t)
                .map(|i| if i % t > i / t { -1e9 } else { 0.0 })
                .collect();
            let mask = Tensor::from_vec(mask, (t, t), &Device::Cpu)?;
            let att = (q.matmul(&kk.t()?)? * f64::from(scale))?.broadcast_add(&mask)?;
            let m = att.max_keepdim(D::Minus1)?.detach();
            let e = att.broadcast_sub(&m)?.exp()?;
            let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
            p.matmul(&vv)?
                .reshape((k * b, h, t, hd))?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((k, b * t, d))
        };
        check(
            &inputs,
            &move |ts| attention(&ts[0], &ts[1], t, h, scale),
            &composed,
            1e-4,
        );
    }
}
