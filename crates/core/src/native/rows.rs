//! Row kernels of the native step: each a pass over contiguous rows, split
//! over the current rayon pool in blocks of rows (or, for sums over rows,
//! of columns), under the widest SIMD the CPU has. No result depends on
//! the split: every row, and every column's sum over rows, is computed in
//! one fixed order.

use rayon::prelude::*;

use cfmem_kernels::to_pairs;

use crate::fused::gelu::{gelu, gelu_grad};
use crate::fused::loss::logsumexp;
use crate::fused::norm::{backward_row, moments};
use crate::fused::simd::{exp, LANES};
use crate::fused::{simd, threads_for};

/// `f(first_row, rows)` over the `w`-wide rows of `a`, in blocks over
/// `threads` threads (give `f` `#[inline(always)]`).
#[inline(always)]
pub(super) fn rows1<T: Send, F>(threads: usize, a: &mut [T], w: usize, f: F)
where
    F: Fn(usize, &mut [T]) + Sync,
{
    if w == 0 || a.is_empty() {
        return;
    }
    let rows = a.len() / w;
    let threads = threads.min(threads_for(a.len(), rows));
    if threads <= 1 {
        return simd(
            #[inline(always)]
            || f(0, a),
        );
    }
    let per = rows.div_ceil(threads);
    a.par_chunks_mut(per * w).enumerate().for_each(|(c, x)| {
        simd(
            #[inline(always)]
            || f(c * per, x),
        )
    });
}

/// [`rows1`] over two buffers with the same rows, `wa` and `wb` wide.
#[inline(always)]
pub(super) fn rows2<A: Send, B: Send, F>(
    threads: usize,
    a: &mut [A],
    wa: usize,
    b: &mut [B],
    wb: usize,
    f: F,
) where
    F: Fn(usize, &mut [A], &mut [B]) + Sync,
{
    if wa == 0 || wb == 0 || a.is_empty() {
        return;
    }
    let rows = a.len() / wa;
    let threads = threads.min(threads_for(a.len(), rows));
    if threads <= 1 {
        return simd(
            #[inline(always)]
            || f(0, a, b),
        );
    }
    let per = rows.div_ceil(threads);
    a.par_chunks_mut(per * wa)
        .zip(b.par_chunks_mut(per * wb))
        .enumerate()
        .for_each(|(c, (x, y))| {
            simd(
                #[inline(always)]
                || f(c * per, x, y),
            )
        });
}

/// Columns per task of a sum over rows (a multiple of the vector width).
const COLS: usize = 64;

/// `f(first_col, cols)` over column blocks of one model's `c`-wide row
/// (the destination of a sum over rows), in parallel where it pays.
#[inline(always)]
fn columns<F>(threads: usize, rows: usize, dst: &mut [f32], f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let c = dst.len();
    if threads <= 1 || c <= COLS || rows * c < (1 << 15) {
        return simd(
            #[inline(always)]
            || f(0, dst),
        );
    }
    let per = c.div_ceil(threads).next_multiple_of(LANES).max(COLS);
    dst.par_chunks_mut(per).enumerate().for_each(|(i, d)| {
        simd(
            #[inline(always)]
            || f(i * per, d),
        )
    });
}

/// `dst[m] += Σ_rows src[m]` for each of the `k` models' `n` rows of `c`
/// values (the gradient of a bias).
pub(super) fn col_sums(threads: usize, src: &[f32], k: usize, n: usize, dst: &mut [f32]) {
    let c = dst.len() / k.max(1);
    for (m, d) in dst.chunks_mut(c).enumerate() {
        let rows = &src[m * n * c..(m + 1) * n * c];
        columns(
            threads,
            n,
            d,
            #[inline(always)]
            |j0, d| {
                for row in rows.chunks_exact(c) {
                    for (o, x) in d.iter_mut().zip(&row[j0..]) {
                        *o += x;
                    }
                }
            },
        );
    }
}

/// Token plus position embeddings: row `i` of `x` (model `i / n`, position
/// `i % t`) is `wte[tok] + wpe[pos]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn embed(
    threads: usize,
    wte: &[f32],
    wpe: &[f32],
    ids: &[u32],
    x: &mut [f32],
    (n, t, d): (usize, usize, usize),
    (v, ctx): (usize, usize),
) {
    rows1(
        threads,
        x,
        d,
        #[inline(always)]
        |first, block| {
            for (j, row) in block.chunks_mut(d).enumerate() {
                let i = first + j;
                let (m, pos, tok) = (i / n, i % t, ids[i] as usize);
                let e = &wte[(m * v + tok) * d..][..d];
                let p = &wpe[(m * ctx + pos) * d..][..d];
                for ((o, e), p) in row.iter_mut().zip(e).zip(p) {
                    *o = e + p;
                }
            }
        },
    );
}

/// The embeddings' gradients: `dwte[tok] += dx[i]`, `dwpe[pos] += dx[i]`,
/// rows in order (tokens repeat, so one thread per model).
pub(super) fn embed_backward(
    dx: &[f32],
    ids: &[u32],
    dwte: &mut [f32],
    dwpe: &mut [f32],
    (n, t, d): (usize, usize, usize),
    (v, ctx): (usize, usize),
) {
    simd(
        #[inline(always)]
        || {
            for (i, row) in dx.chunks_exact(d).enumerate() {
                let (m, pos, tok) = (i / n, i % t, ids[i] as usize);
                let e = &mut dwte[(m * v + tok) * d..][..d];
                for (o, g) in e.iter_mut().zip(row) {
                    *o += g;
                }
                let p = &mut dwpe[(m * ctx + pos) * d..][..d];
                for (o, g) in p.iter_mut().zip(row) {
                    *o += g;
                }
            }
        },
    );
}

/// Where a row kernel writes its rows: fp32, or (for a bf16 product that
/// reads them next) bf16 pairs in the rows layout of
/// [`cfmem_kernels::PackedA`], `⌈c / 2⌉` per row, rounded as the product's
/// own packing would round them.
pub(super) enum Out<'a> {
    F32(&'a mut [f32]),
    Pairs(&'a mut [u32]),
}

/// Layer norm of one row into `out`; its mean and reciprocal deviation.
#[inline(always)]
fn norm_row(xs: &[f32], gs: &[f32], bs: &[f32], out: &mut [f32]) -> (f32, f32) {
    let (mean, rstd) = moments(xs);
    for (((o, v), g), b) in out.iter_mut().zip(xs).zip(gs).zip(bs) {
        *o = (v - mean) * rstd * g + b;
    }
    (mean, rstd)
}

/// Layer norm of the `c`-wide rows of `x` with model `i / n`'s gain `g`
/// and bias `b` into `y`, each row's mean and reciprocal deviation into
/// `stats` (two per row).
#[allow(clippy::too_many_arguments)]
pub(super) fn layer_norm(
    threads: usize,
    x: &[f32],
    g: &[f32],
    b: &[f32],
    y: Out<'_>,
    stats: &mut [f32],
    (n, c): (usize, usize),
) {
    let params = |i: usize| {
        let m = i / n;
        (&x[i * c..][..c], &g[m * c..][..c], &b[m * c..][..c])
    };
    match y {
        Out::F32(y) => rows2(
            threads,
            y,
            c,
            stats,
            2,
            #[inline(always)]
            |first, ys, st| {
                for (j, (row, s)) in ys.chunks_mut(c).zip(st.chunks_mut(2)).enumerate() {
                    let (xs, gs, bs) = params(first + j);
                    (s[0], s[1]) = norm_row(xs, gs, bs, row);
                }
            },
        ),
        Out::Pairs(y) => rows2(
            threads,
            y,
            c.div_ceil(2),
            stats,
            2,
            #[inline(always)]
            |first, ys, st| {
                let mut row = vec![0f32; c];
                for (j, (out, s)) in ys
                    .chunks_mut(c.div_ceil(2))
                    .zip(st.chunks_mut(2))
                    .enumerate()
                {
                    let (xs, gs, bs) = params(first + j);
                    (s[0], s[1]) = norm_row(xs, gs, bs, &mut row);
                    to_pairs(&row, out);
                }
            },
        ),
    }
}

/// Layer norm's backward: `dx += ∂/∂x` from the output's gradient `dy`
/// (rows of `c`, `n` per model), and the gain's and bias's gradients added
/// to `dg` and `db` (`K · c` each).
#[allow(clippy::too_many_arguments)]
pub(super) fn layer_norm_backward(
    threads: usize,
    x: &[f32],
    g: &[f32],
    stats: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    (dg, db): (&mut [f32], &mut [f32]),
    (n, c): (usize, usize),
) {
    let cf = c as f32;
    rows1(
        threads,
        dx,
        c,
        #[inline(always)]
        |first, block| {
            for (j, row) in block.chunks_mut(c).enumerate() {
                let i = first + j;
                let m = i / n;
                let (mean, rstd) = (stats[2 * i], stats[2 * i + 1]);
                let (xs, gs, ds) = (&x[i * c..][..c], &g[m * c..][..c], &dy[i * c..][..c]);
                backward_row(xs, gs, ds, mean, rstd, cf, row, true);
            }
        },
    );
    for (m, (dgm, dbm)) in dg.chunks_mut(c).zip(db.chunks_mut(c)).enumerate() {
        let rows = m * n..(m + 1) * n;
        columns(
            threads,
            n,
            dgm,
            #[inline(always)]
            |j0, d| {
                for i in rows.clone() {
                    let (mean, rstd) = (stats[2 * i], stats[2 * i + 1]);
                    let ds = &dy[i * c + j0..][..d.len()];
                    let xs = &x[i * c + j0..][..d.len()];
                    for ((o, g), v) in d.iter_mut().zip(ds).zip(xs) {
                        *o += g * (v - mean) * rstd;
                    }
                }
            },
        );
        col_sums(threads, &dy[rows.start * c..rows.end * c], 1, n, dbm);
    }
}

/// `out[i] = src[i] + bias[i / n]` over rows of `c`: a residual and the
/// bias of the product that adds to it next.
pub(super) fn residual_bias(
    threads: usize,
    out: &mut [f32],
    src: &[f32],
    bias: &[f32],
    (n, c): (usize, usize),
) {
    rows1(
        threads,
        out,
        c,
        #[inline(always)]
        |first, block| {
            for (j, row) in block.chunks_mut(c).enumerate() {
                let i = first + j;
                let bs = &bias[(i / n) * c..][..c];
                for ((o, a), b) in row.iter_mut().zip(&src[i * c..][..c]).zip(bs) {
                    *o = a + b;
                }
            }
        },
    );
}

/// `g = gelu(h)`, element by element, in rows of `c`.
pub(super) fn gelu_rows(threads: usize, h: &[f32], g: Out<'_>, c: usize) {
    match g {
        Out::F32(g) => rows1(
            threads,
            g,
            c,
            #[inline(always)]
            |first, block| {
                for (o, x) in block.iter_mut().zip(&h[first * c..]) {
                    *o = gelu(*x);
                }
            },
        ),
        Out::Pairs(g) => rows1(
            threads,
            g,
            c.div_ceil(2),
            #[inline(always)]
            |first, block| {
                let mut row = vec![0f32; c];
                for (j, out) in block.chunks_mut(c.div_ceil(2)).enumerate() {
                    for (o, x) in row.iter_mut().zip(&h[(first + j) * c..][..c]) {
                        *o = gelu(*x);
                    }
                    to_pairs(&row, out);
                }
            },
        ),
    }
}

/// `dg ← dg · gelu'(h)` in place (the gradient before the GELU).
pub(super) fn gelu_backward(threads: usize, h: &[f32], dg: &mut [f32], c: usize) {
    rows1(
        threads,
        dg,
        c,
        #[inline(always)]
        |first, block| {
            for (o, x) in block.iter_mut().zip(&h[first * c..]) {
                *o *= gelu_grad(*x);
            }
        },
    );
}

/// The loss and its gradient in place: each `v`-wide row of `z` (logits)
/// whose `mask` is set gets its negative log-likelihood of `targets[i]` in
/// `nll[i]` and becomes `w · (softmax(z) − onehot)` with `w = 1 / count`
/// of its model (the gradient of the sum over models of each model's mean
/// token loss); masked rows become 0.
#[allow(clippy::too_many_arguments)]
pub(super) fn loss_backward(
    threads: usize,
    z: &mut [f32],
    nll: &mut [f32],
    targets: &[u32],
    mask: &[f32],
    counts: &[f32],
    (n, v): (usize, usize),
) {
    rows2(
        threads,
        z,
        v,
        nll,
        1,
        #[inline(always)]
        |first, zs, ls| {
            for (j, (row, l)) in zs.chunks_mut(v).zip(ls.iter_mut()).enumerate() {
                let i = first + j;
                if mask[i] == 0.0 {
                    row.fill(0.0);
                    *l = 0.0;
                    continue;
                }
                let w = 1.0 / counts[i / n].max(1.0);
                let (mx, lse) = logsumexp(row);
                let shift = mx + lse;
                let t = targets[i] as usize;
                *l = shift - row[t];
                for o in row.iter_mut() {
                    *o = exp(*o - shift) * w;
                }
                row[t] -= w;
            }
        },
    );
}

/// The index of a row's first maximum (an argmax that scans in order):
/// what evaluation counts as the prediction and decoding writes next.
#[inline(always)]
pub(crate) fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (k, &x)| {
            if x > bv {
                (k, x)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// What evaluation keeps of each row of logits: the target's negative
/// log-likelihood, whether the argmax is the target, and the mean and
/// deviation of `log p` under the row's distribution (with `moments`).
#[allow(clippy::too_many_arguments)]
pub(super) fn eval_rows(
    threads: usize,
    z: &[f32],
    targets: &[u32],
    out: &mut [f32],
    v: usize,
    with_moments: bool,
) {
    // Four values per row: nll, correct (0/1), μ, σ.
    rows1(
        threads,
        out,
        4,
        #[inline(always)]
        |first, block| {
            for (j, o) in block.chunks_mut(4).enumerate() {
                let i = first + j;
                let row = &z[i * v..][..v];
                let (mx, lse) = logsumexp(row);
                let shift = mx + lse;
                let t = targets[i] as usize;
                o[0] = shift - row[t];
                let best = argmax(row);
                o[1] = f32::from(u8::from(best == t));
                if with_moments {
                    let (mut mu, mut m2) = (0f32, 0f32);
                    for &x in row {
                        let lp = x - shift;
                        let p = exp(lp);
                        mu += p * lp;
                        m2 += p * lp * lp;
                    }
                    o[2] = mu;
                    o[3] = (m2 - mu * mu).max(0.0).sqrt();
                }
            }
        },
    );
}
