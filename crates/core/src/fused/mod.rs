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
//! Every kernel is row-parallel: its rows are split into as many blocks as
//! the current rayon pool has threads (a `cfmem run` job's own pool, the
//! pool candle's matrix products run on), run as tasks on that pool. Rows never depend on one another and
//! reductions over rows run in a fixed order, so results do not depend on
//! the thread count.
//!
//! Every kernel's loop runs inside pulp's runtime dispatch and must be
//! *inlined* there to be compiled for the wider instruction sets: the
//! closures given to [`for_rows`] and [`for_blocks`] carry
//! `#[inline(always)]`. Without it they stayed separate functions built for
//! baseline x86-64 (4-lane SSE; checked with `objdump`: no `zmm` register
//! in the dispatched code) while looking vectorised in the source. The
//! lanes do not change results: no reduction depends on the vector width.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor,
};

pub(crate) mod attention;
mod embed;
pub(crate) mod family;
mod frozen;
pub(crate) mod gelu;
pub(crate) mod loss;
pub(crate) mod norm;
mod residual;
pub(crate) mod simd;
#[cfg(test)]
mod testing;

pub(crate) use attention::attention;
pub(crate) use embed::embed;
pub(crate) use family::{rms_norm, rope, silu_mul, RopeTables};
pub(crate) use frozen::frozen_product;
pub(crate) use gelu::bias_gelu;
pub(crate) use loss::cross_entropy;
pub(crate) use norm::layer_norm;
pub(crate) use residual::residual_bias;
use simd::{col_sum, dot, exp, max, sum, sum_exp, tanh, LANES};

/// How a model's step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// The native CPU step (f32 parameters on the CPU): forward and
    /// backward written by hand over buffers it owns, products in the
    /// model's [`crate::Precision`]. Its graph (for autograd) is the fused one.
    Native,
    /// candle's graph with the fused CPU kernels (f32 on the CPU only).
    Fused,
    /// Composition of candle's primitive ops (any device and dtype).
    Composed,
}

impl Kernels {
    /// The fastest implementation available for `dtype` on `device`.
    pub fn auto(dtype: candle_core::DType, device: &candle_core::Device) -> Self {
        if device.is_cpu() && dtype == candle_core::DType::F32 {
            Self::Native
        } else {
            Self::Composed
        }
    }

    /// Whether candle's graph uses the fused kernels.
    pub fn fused(self) -> bool {
        matches!(self, Self::Native | Self::Fused)
    }
}

type CResult<T> = candle_core::Result<T>;

/// Rows smaller than this in total run on the calling thread alone.
const PAR_MIN_ELEMS: usize = 1 << 15;

/// Threads for `rows` rows of `elems` values in all: the current rayon
/// pool's (a `cfmem run` job's own pool), one for small work.
pub(crate) fn threads_for(elems: usize, rows: usize) -> usize {
    if elems < PAR_MIN_ELEMS {
        1
    } else {
        rayon::current_num_threads().clamp(1, rows.max(1))
    }
}

/// `f()` as one dispatched SIMD operation. [`pulp::WithSimd`] with
/// `#[inline(always)]`, and the kernel closures given `#[inline(always)]`,
/// put the kernel inside the dispatch, compiled once per instruction set
/// (16 lanes on AVX-512, 8 on AVX2). A closure passed to `dispatch`
/// directly goes through a `FnOnce::call_once` shim built for baseline
/// x86-64 (4-lane SSE).
struct Dispatched<F>(F);

impl<R, F: FnOnce() -> R> pulp::WithSimd for Dispatched<F> {
    type Output = R;
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> R {
        (self.0)()
    }
}

/// Run `f` under the widest SIMD the CPU has (give `f` `#[inline(always)]`,
/// and every function it calls in its loops).
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(Dispatched(f))
}

/// Split the whole `unit`-long units of `buf` over threads in contiguous
/// chunks, calling `f(first_unit, chunk)` for each under the widest SIMD
/// the CPU has (give `f` `#[inline(always)]`, see [`Dispatched`]).
///
/// The chunks run as tasks on the current rayon pool (the one candle's
/// matrix products use), not on threads of their own: a kernel that runs
/// matrix products inside its chunks (attention) then shares the pool with
/// them instead of adding threads beside it, and no thread is started per
/// call (a fresh thread also gets a fresh allocator heap, whose pages are
/// faulted in again each time).
fn for_blocks(
    buf: &mut [f32],
    unit: usize,
    f: impl Fn(usize, &mut [f32]) -> CResult<()> + Sync,
) -> CResult<()> {
    use rayon::prelude::*;
    let units = buf.len() / unit.max(1);
    let threads = threads_for(buf.len(), units);
    let run = |first: usize, chunk: &mut [f32]| {
        simd(
            #[inline(always)]
            || f(first, chunk),
        )
    };
    if threads <= 1 {
        return run(0, buf);
    }
    let per = units.div_ceil(threads);
    buf.par_chunks_mut(per * unit)
        .enumerate()
        .map(|(c, chunk)| {
            // A panicking chunk is an error of the op, as on one thread.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || run(c * per, chunk)))
                .unwrap_or_else(|_| Err(candle_core::Error::Msg("a kernel worker panicked".into())))
        })
        .reduce(|| Ok(()), CResult::and)
}

/// Call `f(row_index, row)` for every `row`-long chunk of `out` (the last
/// one shorter when `row` does not divide the length), spread over threads
/// in contiguous blocks ([`for_blocks`]; give `f` `#[inline(always)]`).
fn for_rows(out: &mut [f32], row: usize, f: impl Fn(usize, &mut [f32]) + Sync) -> CResult<()> {
    if row == 0 {
        return Ok(());
    }
    for_blocks(
        out,
        row,
        #[inline(always)]
        |first, block| {
            for (j, r) in block.chunks_mut(row).enumerate() {
                f(first + j, r);
            }
            Ok(())
        },
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::testing::rand_vec;
    use candle_core::{DType, Device};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

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
        // The kernels split their rows over the current rayon pool.
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(run)
        };
        assert_eq!(on(1), on(3));
    }
}
