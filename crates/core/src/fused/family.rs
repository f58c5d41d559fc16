//! The rotary families' row kernels, each with its backward: RMSNorm
//! (Llama), SwiGLU's `silu(a) · b` (Llama) and rotary position embedding
//! (both families). Each replaces a composition of five to ten candle ops,
//! each a pass over memory and a fresh buffer, by one pass.

use std::sync::Arc;

use super::*;

// ---------------------------------------------------------------------------
// RMSNorm: y = x · g / √(mean(x²) + ε), g [K, 1, C] or [1, 1, C] (shared).

/// `1 / √(mean(x²) + ε)` of a row.
#[inline(always)]
fn inv_rms(row: &[f32], eps: f32) -> f32 {
    1.0 / (dot(row, row) / row.len() as f32 + eps).sqrt()
}

/// Model `m`'s gain row of `g` (`kg` rows of `c`: one per model, or one
/// shared).
#[inline(always)]
fn gain(g: &[f32], kg: usize, m: usize, c: usize) -> &[f32] {
    let m = if kg == 1 { 0 } else { m };
    &g[m * c..(m + 1) * c]
}

/// The number of gain rows, checked against `k`.
fn gain_rows(op: &str, g: &[f32], k: usize, c: usize) -> CResult<usize> {
    match g.len() / c.max(1) {
        kg if kg * c == g.len() && (kg == 1 || kg == k) => Ok(kg),
        _ => candle_core::bail!("{op}: a gain of {} values for {k} models of {c}", g.len()),
    }
}

struct RmsNorm {
    eps: f32,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "cfmem-rms-norm"
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
        let g = f32s(self.name(), s2, l2)?;
        let kg = gain_rows(self.name(), g, k, c)?;
        let eps = self.eps;
        let mut y = vec![0f32; x.len()];
        for_rows(
            &mut y,
            c,
            #[inline(always)]
            |i, row| {
                let xs = &x[i * c..(i + 1) * c];
                let s = inv_rms(xs, eps);
                for ((o, a), w) in row.iter_mut().zip(xs).zip(gain(g, kg, i / r, c)) {
                    *o = a * s * w;
                }
            },
        )?;
        out(y, l1.shape().clone())
    }
    fn bwd(
        &self,
        x: &Tensor,
        g: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = x.apply_op3_no_bwd(g, &dy, &RmsNormBwd { eps: self.eps })?;
        // A frozen gain (LoRA's shared base) needs no gradient.
        let dg = if g.track_op() {
            let xn = x.apply_op1_no_bwd(&RmsScaled { eps: self.eps })?;
            let per_model = (xn * dy)?.apply_op1_no_bwd(&ColSum)?;
            Some(if g.dim(0)? == 1 {
                per_model.sum_keepdim(0)?
            } else {
                per_model
            })
        } else {
            None
        };
        Ok((Some(dx), dg))
    }
}

/// `dx = s · h − x · s³ · (x · h) / C` with `h = g ∘ dy`, `s` the row's
/// inverse RMS.
struct RmsNormBwd {
    eps: f32,
}

impl CustomOp3 for RmsNormBwd {
    fn name(&self) -> &'static str {
        "cfmem-rms-norm-bwd"
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
        let dy = f32s(self.name(), s3, l3)?;
        let kg = gain_rows(self.name(), g, k, c)?;
        let eps = self.eps;
        let mut dx = vec![0f32; x.len()];
        for_rows(
            &mut dx,
            c,
            #[inline(always)]
            |i, row| {
                let xs = &x[i * c..(i + 1) * c];
                let ds = &dy[i * c..(i + 1) * c];
                let w = gain(g, kg, i / r, c);
                let s = inv_rms(xs, eps);
                // h = g ∘ dy, kept in the output row.
                for ((o, d), w) in row.iter_mut().zip(ds).zip(w) {
                    *o = d * w;
                }
                let proj = dot(xs, row) * s * s * s / c as f32;
                for (o, a) in row.iter_mut().zip(xs) {
                    *o = s * *o - a * proj;
                }
            },
        )?;
        out(dx, l1.shape().clone())
    }
}

/// `x / √(mean(x²) + ε)`, row by row.
struct RmsScaled {
    eps: f32,
}

impl CustomOp1 for RmsScaled {
    fn name(&self) -> &'static str {
        "cfmem-rms-scaled"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let (_, _, c) = dims3(self.name(), l)?;
        let x = f32s(self.name(), s, l)?;
        let eps = self.eps;
        let mut y = vec![0f32; x.len()];
        for_rows(
            &mut y,
            c,
            #[inline(always)]
            |i, row| {
                let xs = &x[i * c..(i + 1) * c];
                let s = inv_rms(xs, eps);
                for (o, a) in row.iter_mut().zip(xs) {
                    *o = a * s;
                }
            },
        )?;
        out(y, l.shape().clone())
    }
}

/// RMSNorm of `x` `[K, R, C]` with gain `g` `[K, 1, C]` or `[1, 1, C]`.
pub(crate) fn rms_norm(x: &Tensor, g: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    x.contiguous()?
        .apply_op2(&g.contiguous()?, RmsNorm { eps: eps as f32 })
}

// ---------------------------------------------------------------------------
// SwiGLU's gate: y = silu(a) · b.

#[inline(always)]
fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + exp(-a))
}

/// The element-wise kernels of `silu(a) · b` and its backward.
#[derive(Clone, Copy)]
enum SiluMulPass {
    /// `silu(a) · b`.
    Forward,
    /// `∂/∂a = dy · b · σ(a) · (1 + a · (1 − σ(a)))`.
    GradA,
    /// `∂/∂b = dy · silu(a)`.
    GradB,
}

struct SiluMul(SiluMulPass);

impl SiluMul {
    /// The pass over `a`, `b` (or `dy` for [`SiluMulPass::GradB`]) and `dy`.
    fn run(&self, a: &[f32], b: &[f32], dy: &[f32], c: usize) -> CResult<Vec<f32>> {
        let pass = self.0;
        let mut y = vec![0f32; a.len()];
        for_rows(
            &mut y,
            c,
            #[inline(always)]
            |i, row| {
                let span = i * c..i * c + row.len();
                let (xa, xb) = (&a[span.clone()], &b[span.clone()]);
                let d = if dy.is_empty() { xb } else { &dy[span] };
                for (((o, &p), &q), &g) in row.iter_mut().zip(xa).zip(xb).zip(d) {
                    let s = sigmoid(p);
                    *o = match pass {
                        SiluMulPass::Forward => p * s * q,
                        SiluMulPass::GradA => g * q * s * (1.0 + p * (1.0 - s)),
                        SiluMulPass::GradB => q * p * s,
                    };
                }
            },
        )?;
        Ok(y)
    }
}

impl CustomOp2 for SiluMul {
    fn name(&self) -> &'static str {
        "cfmem-silu-mul"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (_, _, c) = dims3(CustomOp2::name(self), l1)?;
        let (a, b) = (
            f32s(CustomOp2::name(self), s1, l1)?,
            f32s(CustomOp2::name(self), s2, l2)?,
        );
        if a.len() != b.len() {
            candle_core::bail!(
                "{}: {} against {} values",
                CustomOp2::name(self),
                a.len(),
                b.len()
            );
        }
        // For GradB the second operand is dy.
        out(self.run(a, b, &[], c)?, l1.shape().clone())
    }
    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let da = a.apply_op3_no_bwd(b, &dy, &SiluMul(SiluMulPass::GradA))?;
        let db = a.apply_op2_no_bwd(&dy, &SiluMul(SiluMulPass::GradB))?;
        Ok((Some(da), Some(db)))
    }
}

impl CustomOp3 for SiluMul {
    fn name(&self) -> &'static str {
        "cfmem-silu-mul-bwd"
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
        let (_, _, c) = dims3(CustomOp3::name(self), l1)?;
        let a = f32s(CustomOp3::name(self), s1, l1)?;
        let b = f32s(CustomOp3::name(self), s2, l2)?;
        let dy = f32s(CustomOp3::name(self), s3, l3)?;
        out(self.run(a, b, dy, c)?, l1.shape().clone())
    }
}

/// `silu(a) · b` for `a`, `b` `[K, R, C]`.
pub(crate) fn silu_mul(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    a.contiguous()?
        .apply_op2(&b.contiguous()?, SiluMul(SiluMulPass::Forward))
}

// ---------------------------------------------------------------------------
// Rotary position embedding on the first `rot` dimensions of each head:
// [a, b] ↦ [a·cos − b·sin, b·cos + a·sin] (Hugging Face's rotate-half
// convention), the rest passed through.

/// The rotary tables on the host: `cos` and `sin` `[ctx, rot / 2]`.
#[derive(Debug)]
pub(crate) struct RopeTables {
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
    pub half: usize,
}

struct Rope {
    tables: Arc<RopeTables>,
    /// The inverse rotation (the backward pass: the transpose).
    inverse: bool,
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "cfmem-rope"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let (_, t, hd) = dims3(self.name(), l)?;
        let x = f32s(self.name(), s, l)?;
        let tb = &self.tables;
        let half = tb.half;
        if 2 * half > hd || tb.cos.len() < t * half {
            candle_core::bail!(
                "{}: tables of {} positions × {half} for {t} positions of {hd}",
                self.name(),
                tb.cos.len() / half.max(1)
            );
        }
        let sign = if self.inverse { -1.0 } else { 1.0 };
        let mut y = x.to_vec();
        for_rows(
            &mut y,
            hd,
            #[inline(always)]
            |i, row| {
                let p = i % t;
                let (cos, sin) = (
                    &tb.cos[p * half..(p + 1) * half],
                    &tb.sin[p * half..(p + 1) * half],
                );
                let (a, rest) = row.split_at_mut(half);
                let b = &mut rest[..half];
                for j in 0..half {
                    let (x1, x2, s) = (a[j], b[j], sign * sin[j]);
                    a[j] = x1 * cos[j] - x2 * s;
                    b[j] = x2 * cos[j] + x1 * s;
                }
            },
        )?;
        out(y, l.shape().clone())
    }
    fn bwd(&self, _x: &Tensor, _res: &Tensor, dy: &Tensor) -> CResult<Option<Tensor>> {
        let back = Rope {
            tables: Arc::clone(&self.tables),
            inverse: !self.inverse,
        };
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(&back)?))
    }
}

/// `x` `[N, T, hd]` rotated on its first `2 · tables.half` dimensions.
pub(crate) fn rope(x: &Tensor, tables: &Arc<RopeTables>) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Rope {
        tables: Arc::clone(tables),
        inverse: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::testing::{check, rand_vec};
    use candle_core::D;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn composed_rms(x: &Tensor, g: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
        let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
        x.broadcast_div(&(ms + eps)?.sqrt()?)?.broadcast_mul(g)
    }

    #[test]
    fn rms_norm_matches_composition_with_own_and_shared_gains() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (k, r, c) = (2, 5, 19);
        for kg in [k, 1] {
            let inputs = vec![
                (rand_vec(&mut rng, k * r * c, 2.0), vec![k, r, c], true),
                (rand_vec(&mut rng, kg * c, 1.5), vec![kg, 1, c], true),
            ];
            check(
                &inputs,
                &|t| rms_norm(&t[0], &t[1], 1e-6),
                &|t| composed_rms(&t[0], &t[1], 1e-6),
                1e-4,
            );
        }
    }

    #[test]
    fn silu_mul_matches_composition() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (k, r, c) = (2, 3, 37);
        let inputs = vec![
            (rand_vec(&mut rng, k * r * c, 5.0), vec![k, r, c], true),
            (rand_vec(&mut rng, k * r * c, 2.0), vec![k, r, c], true),
        ];
        check(
            &inputs,
            &|t| silu_mul(&t[0], &t[1]),
            &|t| t[0].silu()? * &t[1],
            1e-4,
        );
    }

    #[test]
    fn rope_matches_composition_on_part_and_whole_heads() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (n, t, hd) = (3, 6, 8);
        for half in [1, 2, 4] {
            let rot = 2 * half;
            let angle = |p: usize, j: usize| p as f32 * 10f32.powf(-(j as f32) / half as f32);
            let table = |f: fn(f32) -> f32| -> Vec<f32> {
                (0..t)
                    .flat_map(|p| (0..half).map(move |j| f(angle(p, j))))
                    .collect()
            };
            let tables = Arc::new(RopeTables {
                cos: table(f32::cos),
                sin: table(f32::sin),
                half,
            });
            // The composition as the model writes it, tables [t, rot]
            // with each frequency twice.
            let full = |v: &[f32]| -> Tensor {
                let rows: Vec<f32> = v
                    .chunks(half)
                    .flat_map(|r| r.iter().chain(r.iter()).copied().collect::<Vec<_>>())
                    .collect();
                Tensor::from_vec(rows, (t, rot), &candle_core::Device::Cpu).unwrap()
            };
            let (cos, sin) = (full(&tables.cos), full(&tables.sin));
            let composed = move |x: &Tensor| -> candle_core::Result<Tensor> {
                let r = x.narrow(2, 0, rot)?;
                let (a, b) = (r.narrow(2, 0, half)?, r.narrow(2, half, half)?);
                let turned = Tensor::cat(&[&b.neg()?, &a], 2)?;
                let r = (r.broadcast_mul(&cos)? + turned.broadcast_mul(&sin)?)?;
                if rot == hd {
                    return Ok(r);
                }
                Tensor::cat(&[&r, &x.narrow(2, rot, hd - rot)?], 2)
            };
            let inputs = vec![(rand_vec(&mut rng, n * t * hd, 2.0), vec![n, t, hd], true)];
            let tb = Arc::clone(&tables);
            check(
                &inputs,
                &move |x| rope(&x[0], &tb),
                &move |x| composed(&x[0]),
                1e-5,
            );
        }
    }
}
