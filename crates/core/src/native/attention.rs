//! Causal multi-head attention over packed `q | k | v` rows, one window
//! (`T` rows of one model) per task, forward and backward; the
//! probabilities are kept (fp32) for the backward pass.
//!
//! In bf16 the products skip what causality makes zero or unwanted
//! ([`Triangle`]): the scores and their gradient only on and below the
//! diagonal, the products by `P` and `dS` (and their transposes) only over
//! their non-zero half, so attention costs about half the full products.
//! The probabilities and `dS` are rounded into bf16 pairs by the row pass
//! that makes them, so no separate packing pass reads them again.

use cfmem_kernels::{to_pairs, MatRef, PackedA, Start, Triangle};
use rayon::prelude::*;

use super::products::{Left, Packs, Products, Right};
use super::Precision;
use crate::error::Result;
use crate::fused::attention::causal_softmax;
use crate::fused::simd;
use crate::fused::simd::dot;

/// A window's shape: `t` rows, width `d`, `h` heads, the scores' scale.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub t: usize,
    pub d: usize,
    pub h: usize,
    pub scale: f32,
}

impl Shape {
    fn hd(&self) -> usize {
        self.d / self.h
    }

    /// Head `hh`'s query (`part` 0), key (1) or value (2) rows of one
    /// window's `qkv` (`t × 3d`), `t × hd` at row stride `3d`.
    fn part<'a>(&self, qkv: &'a [f32], part: usize, hh: usize) -> Result<MatRef<'a>> {
        let d3 = 3 * self.d;
        Ok(MatRef::new(
            &qkv[part * self.d + hh * self.hd()..],
            self.t,
            self.hd(),
            d3,
            1,
        )?)
    }
}

/// One task's scratch: panels for the operands packed on the way, `P` or
/// `dS` as bf16 pairs, and `dP`.
struct Scratch {
    packs: Packs,
    pairs: PackedA,
    dp: Vec<f32>,
}

impl Scratch {
    fn new() -> Self {
        Self {
            packs: Packs::new(),
            pairs: PackedA::empty(),
            dp: Vec::new(),
        }
    }
}

/// Run `f(window, scratch, a_chunk, b_chunk)` for every window, in
/// parallel when there are threads, each task with its own scratch.
fn windows<F>(
    threads: usize,
    a: &mut [f32],
    wa: usize,
    b: &mut [f32],
    wb: usize,
    f: F,
) -> Result<()>
where
    F: Fn(usize, &mut Scratch, &mut [f32], &mut [f32]) -> Result<()> + Sync,
{
    if threads <= 1 {
        let mut scratch = Scratch::new();
        for (w, (x, y)) in a.chunks_mut(wa).zip(b.chunks_mut(wb)).enumerate() {
            f(w, &mut scratch, x, y)?;
        }
        return Ok(());
    }
    a.par_chunks_mut(wa)
        .zip(b.par_chunks_mut(wb))
        .enumerate()
        .try_for_each_init(Scratch::new, |scratch, (w, (x, y))| f(w, scratch, x, y))
}

/// `m` (`t × t`, row-major) as the left operand: its bf16 pairs, written
/// into `pairs` row by row, or the fp32 view.
fn square<'a>(p: &Products, m: &'a [f32], t: usize, pairs: &'a mut PackedA) -> Result<Left<'a>> {
    Ok(match p.precision {
        Precision::Bf16 => {
            let rows = pairs.rows_for(t, t);
            simd(
                #[inline(always)]
                || {
                    for (row, out) in m.chunks(t).zip(rows.chunks_mut(t.div_ceil(2))) {
                        to_pairs(row, out);
                    }
                },
            );
            Left::Packed(pairs)
        }
        Precision::Fp32 => Left::View(MatRef::row_major(m, t, t)?),
    })
}

/// `y` (`t × d` per window, heads side by side) and the probabilities
/// `att` (`h × t × t` per window) from `qkv` (`t × 3d` per window).
pub(super) fn forward(
    p: &Products,
    s: Shape,
    qkv: &[f32],
    y: &mut [f32],
    att: &mut [f32],
) -> Result<()> {
    let (t, d, h) = (s.t, s.d, s.h);
    let one = p.single();
    windows(p.threads, y, t * d, att, h * t * t, |w, sc, yw, aw| {
        let qkv = &qkv[w * t * 3 * d..][..t * 3 * d];
        for hh in 0..h {
            let scores = &mut aw[hh * t * t..][..t * t];
            let (q, k, v) = (
                s.part(qkv, 0, hh)?,
                s.part(qkv, 1, hh)?,
                s.part(qkv, 2, hh)?,
            );
            let packs = &mut sc.packs;
            one.mul_part(
                Left::View(q),
                Right::View(k.t()),
                scores,
                t,
                Start::Zero,
                packs,
                Triangle::LowerC,
            )?;
            simd(
                #[inline(always)]
                || causal_softmax(scores, t, s.scale),
            );
            let pm = square(&one, scores, t, &mut sc.pairs)?;
            one.mul_part(
                pm,
                Right::View(v),
                &mut yw[hh * s.hd()..],
                d,
                Start::Zero,
                packs,
                Triangle::LowerA,
            )?;
        }
        Ok(())
    })
}

/// `dqkv` (`t × 3d` per window) from the output's gradient `dy`; `att`
/// (the probabilities) is overwritten.
pub(super) fn backward(
    p: &Products,
    s: Shape,
    qkv: &[f32],
    dy: &[f32],
    att: &mut [f32],
    dqkv: &mut [f32],
) -> Result<()> {
    let (t, d, h, hd) = (s.t, s.d, s.h, s.hd());
    let one = p.single();
    windows(
        p.threads,
        dqkv,
        t * 3 * d,
        att,
        h * t * t,
        |w, sc, dw, aw| {
            let qkv = &qkv[w * t * 3 * d..][..t * 3 * d];
            let dy = &dy[w * t * d..][..t * d];
            sc.dp.resize(t * t, 0.0);
            for hh in 0..h {
                let pm = &mut aw[hh * t * t..][..t * t];
                let dyh = MatRef::new(&dy[hh * hd..], t, hd, d, 1)?;
                let (q, k, v) = (
                    s.part(qkv, 0, hh)?,
                    s.part(qkv, 1, hh)?,
                    s.part(qkv, 2, hh)?,
                );
                let packs = &mut sc.packs;
                // dV = Pᵀ · dY_h (Pᵀ is upper triangular).
                let pt = MatRef::row_major(pm, t, t)?.t();
                let dv = &mut dw[2 * d + hh * hd..];
                one.mul_part(
                    Left::View(pt),
                    Right::View(dyh),
                    dv,
                    3 * d,
                    Start::Zero,
                    packs,
                    Triangle::UpperA,
                )?;
                // dP = dY_h · V_hᵀ, wanted on and below the diagonal.
                let dp = &mut sc.dp;
                one.mul_part(
                    Left::View(dyh),
                    Right::View(v.t()),
                    dp,
                    t,
                    Start::Zero,
                    packs,
                    Triangle::LowerC,
                )?;
                // dS = scale · P ∘ (dP − rowsum(dP ∘ P)) on and below the
                // diagonal (0 above), in P's place.
                simd(
                    #[inline(always)]
                    || {
                        for (i, (prow, drow)) in pm.chunks_mut(t).zip(dp.chunks(t)).enumerate() {
                            let (vis, hidden) = prow.split_at_mut(i + 1);
                            let c = dot(&drow[..=i], vis);
                            for (o, g) in vis.iter_mut().zip(drow) {
                                *o = s.scale * *o * (g - c);
                            }
                            hidden.fill(0.0);
                        }
                    },
                );
                // dQ = dS · K_h (dS lower triangular), dK = dSᵀ · Q_h (upper).
                let ds = square(&one, pm, t, &mut sc.pairs)?;
                one.mul_part(
                    ds,
                    Right::View(k),
                    &mut dw[hh * hd..],
                    3 * d,
                    Start::Zero,
                    packs,
                    Triangle::LowerA,
                )?;
                let dst = MatRef::row_major(pm, t, t)?.t();
                one.mul_part(
                    Left::View(dst),
                    Right::View(q),
                    &mut dw[d + hh * hd..],
                    3 * d,
                    Start::Zero,
                    packs,
                    Triangle::UpperA,
                )?;
            }
            Ok(())
        },
    )
}
