//! Fused CPU kernels with hand-written backward passes.
//!
//! candle composes layer norm, GELU, softmax and cross-entropy from many
//! element-wise ops, each allocating a fresh buffer and most running a
//! scalar `expf`/`tanhf`/`powf` per element; their backward passes add
//! broadcast reductions over strided views. On a CPU that costs ten times
//! the matrix products. Each op here does its work in one or two passes
//! over contiguous rows, and its backward is another such op.
//!
//! The ops are f32 and CPU only. [`Kernels::Composed`] keeps the primitive
//! composition (every device, every dtype); the model picks
//! [`Kernels::Fused`] on the CPU in f32. Both compute the same functions:
//! the tests compare values and gradients against the composition and
//! against finite differences.
//!
//! Every kernel is row-parallel over `RAYON_NUM_THREADS` threads (the same
//! setting candle's matrix products obey); rows never depend on one another
//! and reductions over rows run in a fixed order, so results do not depend
//! on the thread count.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor,
};

/// Which implementation of the model's element-wise blocks runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// Fused CPU kernels (f32 on the CPU only).
    Fused,
    /// Composition of candle's primitive ops (any device and dtype).
    Composed,
}

impl Kernels {
    /// The fastest implementation available for `dtype` on `device`.
    pub fn auto(dtype: candle_core::DType, device: &candle_core::Device) -> Self {
        if device.is_cpu() && dtype == candle_core::DType::F32 {
            Self::Fused
        } else {
            Self::Composed
        }
    }
}

type CResult<T> = candle_core::Result<T>;

/// Rows smaller than this in total run on the calling thread alone.
const PAR_MIN_ELEMS: usize = 1 << 15;

fn threads_for(elems: usize, rows: usize) -> usize {
    if elems < PAR_MIN_ELEMS {
        1
    } else {
        candle_core::utils::get_num_threads().clamp(1, rows.max(1))
    }
}

/// Call `f(row_index, row)` for every `row`-long chunk of `out` (the last
/// one shorter when `row` does not divide the length), spread over threads
/// in contiguous blocks.
fn for_rows(out: &mut [f32], row: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if row == 0 {
        return;
    }
    let rows = out.len() / row;
    let threads = threads_for(out.len(), rows);
    let arch = pulp::Arch::new();
    if threads <= 1 {
        arch.dispatch(|| {
            for (i, r) in out.chunks_mut(row).enumerate() {
                f(i, r);
            }
        });
        return;
    }
    let per = rows.div_ceil(threads);
    std::thread::scope(|s| {
        let f = &f;
        let mut chunks = out.chunks_mut(per * row).enumerate();
        let first = chunks.next();
        for (c, chunk) in chunks {
            s.spawn(move || {
                arch.dispatch(|| {
                    for (j, r) in chunk.chunks_mut(row).enumerate() {
                        f(c * per + j, r);
                    }
                })
            });
        }
        if let Some((_, chunk)) = first {
            arch.dispatch(|| {
                for (j, r) in chunk.chunks_mut(row).enumerate() {
                    f(j, r);
                }
            });
        }
    });
}

/// The contiguous f32 data behind `storage`/`layout`.
fn f32s<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> CResult<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

fn u32s<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> CResult<&'a [u32]> {
    let data = storage.as_slice::<u32>()?;
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

/// `(K, R, C)` of a rank-3 layout.
fn dims3(op: &str, layout: &Layout) -> CResult<(usize, usize, usize)> {
    match layout.dims() {
        &[k, r, c] => Ok((k, r, c)),
        d => candle_core::bail!("{op}: expected a rank-3 input, got {d:?}"),
    }
}

fn out(data: Vec<f32>, shape: impl Into<Shape>) -> CResult<(CpuStorage, Shape)> {
    Ok((CpuStorage::F32(data), shape.into()))
}

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
fn tanh(u: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * u) + 1.0)
}

const GELU_C: f32 = 0.797_884_6; // sqrt(2 / pi)
const GELU_A: f32 = 0.044_715;

/// Lanes of the reductions below: eight partial results combined in a
/// fixed order, so a reduction vectorises and stays deterministic.
const LANES: usize = 8;

#[inline(always)]
fn sum(x: &[f32]) -> f32 {
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
fn dot(x: &[f32], y: &[f32]) -> f32 {
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
fn max(x: &[f32]) -> f32 {
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
fn sum_exp(x: &[f32], shift: f32) -> f32 {
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
fn col_sum(x: &[f32], k: usize, r: usize, c: usize) -> Vec<f32> {
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

// ---------------------------------------------------------------------------
// Column sum (the gradient of a broadcast bias).

struct ColSum;

impl CustomOp1 for ColSum {
    fn name(&self) -> &'static str {
        "cfmem-col-sum"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let (k, r, c) = dims3(self.name(), l)?;
        out(col_sum(f32s(self.name(), s, l)?, k, r, c), (k, 1, c))
    }
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
        for_rows(&mut y, c, |i, row| {
            let m = i / r;
            let hs = &h[i * c..(i + 1) * c];
            let bs = &b[m * c..(m + 1) * c];
            for ((o, a), b) in row.iter_mut().zip(hs).zip(bs) {
                let x = a + b;
                let t = tanh(GELU_C * (x + GELU_A * x * x * x));
                *o = 0.5 * x * (1.0 + t);
            }
        });
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
        for_rows(&mut dh, c, |i, row| {
            let m = i / r;
            let hs = &h[i * c..(i + 1) * c];
            let bs = &b[m * c..(m + 1) * c];
            let gs = &dy[i * c..(i + 1) * c];
            for (((o, a), b), g) in row.iter_mut().zip(hs).zip(bs).zip(gs) {
                let x = a + b;
                let t = tanh(GELU_C * (x + GELU_A * x * x * x));
                let du = GELU_C * (1.0 + 3.0 * GELU_A * x * x);
                *o = g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du);
            }
        });
        out(dh, l1.shape().clone())
    }
}

/// `gelu(h + b)` (tanh approximation) for `h` `[K, R, C]`, `b` `[K, 1, C]`.
pub(crate) fn bias_gelu(h: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    h.contiguous()?.apply_op2(&b.contiguous()?, BiasGelu)
}

// ---------------------------------------------------------------------------
// Layer norm over the last axis with gain and bias [K, 1, C].

const LN_EPS: f32 = 1e-5;

/// Mean and reciprocal standard deviation of a row (f32 accumulation, in
/// order, so every pass computes the same values).
#[inline(always)]
fn moments(row: &[f32]) -> (f32, f32) {
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
        for_rows(&mut y, c, |i, row| {
            let m = i / r;
            let xs = &x[i * c..(i + 1) * c];
            let (mean, rstd) = moments(xs);
            let gs = &g[m * c..(m + 1) * c];
            let bs = &b[m * c..(m + 1) * c];
            for (((o, v), g), b) in row.iter_mut().zip(xs).zip(gs).zip(bs) {
                *o = (v - mean) * rstd * g + b;
            }
        });
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
        for_rows(&mut dx, c, |i, row| {
            let m = i / r;
            let xs = &x[i * c..(i + 1) * c];
            let gs = &g[m * c..(m + 1) * c];
            let ds = &dy[i * c..(i + 1) * c];
            let (mean, rstd) = moments(xs);
            // dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂)), ĝ = dy · g.
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
            for (((o, v), g), d) in row.iter_mut().zip(xs).zip(gs).zip(ds) {
                let xh = (v - mean) * rstd;
                *o = rstd * (d * g - m1 - xh * m2);
            }
        });
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

// ---------------------------------------------------------------------------
// Cross-entropy: per-token −log softmax(logits)[target].

struct CrossEntropy;

/// Log-sum-exp of a row (max-shifted).
#[inline(always)]
fn logsumexp(row: &[f32]) -> (f32, f32) {
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
        for_rows(&mut nll, block, |bi, outs| {
            for (j, o) in outs.iter_mut().enumerate() {
                let i = bi * block + j;
                let row = &z[i * v..(i + 1) * v];
                let (mx, lse) = logsumexp(row);
                *o = mx + lse - row[tg[i] as usize];
            }
        });
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
        for_rows(&mut dz, v, |i, row| {
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
        });
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
        for_rows(&mut z, c, |i, row| {
            let m = i / r;
            let xs = &x[i * c..(i + 1) * c];
            let ys = &y[i * c..(i + 1) * c];
            let bs = &b[m * c..(m + 1) * c];
            for (((o, a), y), b) in row.iter_mut().zip(xs).zip(ys).zip(bs) {
                *o = a + (y + b);
            }
        });
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
        for_rows(&mut x, d, |i, row| {
            let m = i / (b * t);
            let pos = i % t;
            let tok = ids[i] as usize;
            let e = &wte[(m * v + tok) * d..(m * v + tok + 1) * d];
            let p = &wpe[(m * ctx + pos) * d..(m * ctx + pos + 1) * d];
            for ((o, e), p) in row.iter_mut().zip(e).zip(p) {
                *o = e + p;
            }
        });
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

// ---------------------------------------------------------------------------
// Causal multi-head self-attention over a packed, un-biased `qkv`.

/// Attention for `h` `[K, B·T, 3D]` (the query, key and value projections
/// side by side, before their bias `b` `[K, 1, 3D]`), giving the heads'
/// outputs side by side, `[K, B·T, D]`. The probabilities are recomputed in
/// the backward pass instead of kept.
struct Attention {
    t: usize,
    heads: usize,
    scale: f32,
}

/// Split the whole `unit`-long units of `buf` over threads in contiguous
/// chunks, calling `f(first_unit, chunk)` for each.
fn for_units(
    buf: &mut [f32],
    unit: usize,
    f: impl Fn(usize, &mut [f32]) -> CResult<()> + Sync,
) -> CResult<()> {
    let units = buf.len() / unit.max(1);
    let threads = threads_for(buf.len(), units);
    let arch = pulp::Arch::new();
    if threads <= 1 {
        return arch.dispatch(|| f(0, buf));
    }
    let per = units.div_ceil(threads);
    std::thread::scope(|s| {
        let f = &f;
        let mut chunks = buf.chunks_mut(per * unit).enumerate();
        let first = chunks.next();
        let handles: Vec<_> = chunks
            .map(|(c, chunk)| s.spawn(move || arch.dispatch(|| f(c * per, chunk))))
            .collect();
        let mut result = match first {
            Some((_, chunk)) => arch.dispatch(|| f(0, chunk)),
            None => Ok(()),
        };
        for h in handles {
            let r = h
                .join()
                .map_err(|_| candle_core::Error::Msg("a kernel worker panicked".into()))?;
            result = result.and(r);
        }
        result
    })
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
        let (t, scale) = (self.t, self.scale);
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
        for_units(&mut y, t * d, |first, chunk| {
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
        })?;
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
        for_units(&mut dh, t * d3, |first, chunk| {
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
        })?;
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
    //! Each fused op against the composition of candle's primitive ops
    //! (values and gradients) and against central finite differences of
    //! its own forward pass.
    use super::*;
    use candle_core::{DType, Device, Var, D};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    type Op = dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>;

    fn rand_vec(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| scale * (rng.gen::<f32>() * 2.0 - 1.0))
            .collect()
    }

    /// `inputs`: (values, shape, differentiable). Non-differentiable inputs
    /// (ids, targets) are passed as u32 values.
    fn check(inputs: &[(Vec<f32>, Vec<usize>, bool)], fused: &Op, composed: &Op, tol: f32) {
        let dev = Device::Cpu;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let make = |vals: &[(Vec<f32>, Vec<usize>, bool)]| -> (Vec<Tensor>, Vec<Option<Var>>) {
            let mut ts = Vec::new();
            let mut vars = Vec::new();
            for (v, shape, diff) in vals {
                if *diff {
                    let var = Var::from_vec(v.clone(), shape.as_slice(), &dev).unwrap();
                    ts.push(var.as_tensor().clone());
                    vars.push(Some(var));
                } else {
                    let ids: Vec<u32> = v.iter().map(|&x| x as u32).collect();
                    ts.push(Tensor::from_vec(ids, shape.as_slice(), &dev).unwrap());
                    vars.push(None);
                }
            }
            (ts, vars)
        };
        let (ts, vars) = make(inputs);
        let yf = fused(&ts).unwrap();
        let yc = composed(&ts).unwrap();
        assert_eq!(yf.dims(), yc.dims());
        let w =
            Tensor::from_vec(rand_vec(&mut rng, yf.elem_count(), 1.0), yf.shape(), &dev).unwrap();
        let diff = (&yf - &yc).unwrap().abs().unwrap().max_all().unwrap();
        let diff: f32 = diff.to_scalar().unwrap();
        assert!(diff < tol, "forward differs from the composition by {diff}");
        let loss = |y: &Tensor| (y * &w).unwrap().sum_all().unwrap();
        let gf = loss(&yf).backward().unwrap();
        let gc = loss(&yc).backward().unwrap();
        for (i, var) in vars.iter().enumerate() {
            let Some(var) = var else { continue };
            let a = gf.get(var.as_tensor()).expect("fused op gave no gradient");
            let b = gc
                .get(var.as_tensor())
                .expect("composition gave no gradient");
            let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
            let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
            let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
            let worst = a
                .iter()
                .zip(&b)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                worst <= tol * scale.max(1.0),
                "input {i}: gradient differs from the composition by {worst} (scale {scale})"
            );
            assert!(a.iter().any(|&v| v != 0.0), "input {i}: zero gradient");
            // Central differences of the fused forward at a few positions.
            let n = inputs[i].0.len();
            for pos in [0, n / 3, n / 2, n - 1] {
                let eps = 1e-2f32;
                let eval = |delta: f32| -> f64 {
                    let mut shifted = inputs.to_vec();
                    shifted[i].0[pos] += delta;
                    let (ts, _) = make(&shifted);
                    let y = fused(&ts).unwrap();
                    let l: f32 = loss(&y).to_scalar().unwrap();
                    f64::from(l)
                };
                let fd = (eval(eps) - eval(-eps)) / (2.0 * f64::from(eps));
                let an = f64::from(a[pos]);
                assert!(
                    (fd - an).abs() <= 2e-2 * an.abs().max(fd.abs()).max(0.5),
                    "input {i} at {pos}: finite difference {fd} vs analytic {an}"
                );
            }
        }
    }

    fn ln_composed(x: &Tensor, g: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let xn = xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
        xn.broadcast_mul(g)?.broadcast_add(b)
    }

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

    #[test]
    fn kernels_do_not_depend_on_the_thread_count() {
        // Large enough to split over threads.
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let (k, r, c) = (1, 512, 128);
        let x =
            Tensor::from_vec(rand_vec(&mut rng, k * r * c, 1.0), (k, r, c), &Device::Cpu).unwrap();
        let g = Tensor::ones((k, 1, c), DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros((k, 1, c), DType::F32, &Device::Cpu).unwrap();
        let run = || -> Vec<f32> {
            let y = layer_norm(&x, &g, &b).unwrap();
            let a = attention(
                &Tensor::cat(&[&y, &y, &y], 2).unwrap(),
                &Tensor::zeros((k, 1, 3 * c), DType::F32, &Device::Cpu).unwrap(),
                128,
                4,
                0.2,
            )
            .unwrap();
            a.flatten_all().unwrap().to_vec1().unwrap()
        };
        let before = std::env::var("RAYON_NUM_THREADS").ok();
        std::env::set_var("RAYON_NUM_THREADS", "1");
        let one = run();
        std::env::set_var("RAYON_NUM_THREADS", "3");
        let three = run();
        match before {
            Some(v) => std::env::set_var("RAYON_NUM_THREADS", v),
            None => std::env::remove_var("RAYON_NUM_THREADS"),
        }
        assert_eq!(one, three);
    }
}
