//! Matrix products with bf16 operands and fp32 accumulation, for cfmem's
//! bf16 training.
//!
//! `C = A·B` (or `C += A·B`) where `A` and `B` are fp32 matrices of any
//! strides (so transposed views cost nothing) rounded to bf16 as they are
//! packed, and `C` is fp32, row-major with a leading dimension. Every
//! product of two bf16 numbers is exact in fp32; the sums are fp32.
//!
//! ```
//! use cfmem_kernels::{matmul_bf16, MatRef};
//! let a = [1.0f32, 2.0, 3.0, 4.0]; // 2×2, row-major
//! let b = [0.5f32, 0.0, 0.0, 0.25];
//! let mut c = [0.0f32; 4];
//! matmul_bf16(MatRef::row_major(&a, 2, 2)?, MatRef::row_major(&b, 2, 2)?, &mut c, 2, false, 1)?;
//! assert_eq!(c, [0.5, 0.5, 1.5, 1.0]);
//! # Ok::<(), cfmem_kernels::Error>(())
//! ```
//!
//! # Engines
//!
//! | engine | instruction | where |
//! |---|---|---|
//! | [`Engine::Avx512Bf16`] | `vdpbf16ps` (16 lanes, 2 products each) | Intel Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and later |
//! | [`Engine::Portable`] | scalar fp32 | anywhere; the same sums in the same order |
//!
//! [`Engine::detect`] picks the fastest the CPU offers. Both engines add, for
//! each output and each pair of `k`, the odd product then the even one,
//! each addition rounded to fp32 (as `vdpbf16ps` is specified), so they
//! agree bit for bit on normal numbers (tested); `vdpbf16ps` flushes
//! subnormals to zero, the portable engine keeps them. Intel's AMX tile
//! units (`tdpbf16ps`) are the next engine; the blocking below (panels of
//! 16 rows would fit a tile) is laid out for it.
//!
//! # Layout
//!
//! `A` is packed into panels of [`MR`] rows, `B` into panels of [`NR`]
//! columns, each as `k` pairs: a `u32` holding the bf16 of element `2p` in
//! its low half and of `2p + 1` in its high half (the VNNI pairs the dot
//! product instructions take; odd `k` is padded with a zero). The product
//! runs over blocks of [`KC2`] pairs and [`NC`] columns, so that a block of
//! packed `B` stays in the core's L2 cache while every row panel of `A`
//! passes over it; row panels are split over threads.

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_arch = "x86_64")]
mod avx512;
mod pack;
mod portable;

pub use pack::{PackedA, PackedB};

use rayon::prelude::*;

/// Rows of a packed `A` panel, and of the output tile.
pub const MR: usize = 12;
/// Columns of a packed `B` panel, and of the output tile (two vectors of 16).
pub const NR: usize = 32;
/// Pairs of `k` in one block of the product.
pub const KC2: usize = 128;
/// Columns of `B` in one block of the product (a multiple of [`NR`]).
pub const NC: usize = 1024;

/// What a product was given that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A matrix view reaches past its slice.
    #[error(
        "{rows}×{cols} matrix with strides ({rs}, {cs}) reaches element {need} of a slice of {len}"
    )]
    OutOfBounds {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Row stride.
        rs: usize,
        /// Column stride.
        cs: usize,
        /// Elements the view needs.
        need: usize,
        /// Elements the slice has.
        len: usize,
    },
    /// `A`'s columns and `B`'s rows differ.
    #[error("inner dimensions differ: A is {m}×{k}, B is {kb}×{n}")]
    Inner {
        /// A's rows.
        m: usize,
        /// A's columns.
        k: usize,
        /// B's rows.
        kb: usize,
        /// B's columns.
        n: usize,
    },
    /// `C` is too small or its leading dimension shorter than a row.
    #[error("C of {m}×{n} with leading dimension {ldc} needs {need} elements, has {len}")]
    Output {
        /// Rows.
        m: usize,
        /// Columns.
        n: usize,
        /// Leading dimension.
        ldc: usize,
        /// Elements needed.
        need: usize,
        /// Elements given.
        len: usize,
    },
    /// A range of rows outside a packed matrix, or that its layout cannot
    /// give (a panels-layout matrix, or a range not starting on a panel).
    #[error("rows {}..{} of a packed matrix of {rows} rows in a layout that cannot give them", range.0, range.1)]
    Layout {
        /// The matrix's rows.
        rows: usize,
        /// The range asked for.
        range: (usize, usize),
    },
    /// The engine asked for is not on this CPU.
    #[error("the {0} engine is not available on this CPU")]
    Unavailable(&'static str),
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An fp32 matrix view: `rows × cols`, element `(i, j)` at
/// `data[i * rs + j * cs]`, checked to lie inside `data` when made.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// A view with the given strides.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] when an element lies outside `data`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Result<Self> {
        let bad = |need| Error::OutOfBounds {
            rows,
            cols,
            rs,
            cs,
            need,
            len: data.len(),
        };
        if rows > 0 && cols > 0 {
            let last = (rows - 1)
                .checked_mul(rs)
                .and_then(|x| (cols - 1).checked_mul(cs).and_then(|y| x.checked_add(y)))
                .ok_or_else(|| bad(usize::MAX))?;
            if last >= data.len() {
                return Err(bad(last + 1));
            }
        }
        Ok(Self {
            data,
            rows,
            cols,
            rs,
            cs,
        })
    }

    /// A contiguous row-major view.
    ///
    /// # Errors
    /// As [`MatRef::new`].
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transpose (the same elements, strides swapped).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Element `(i, j)`.
    #[inline]
    pub fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// Which instructions run the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// AVX512-BF16 `vdpbf16ps`.
    Avx512Bf16,
    /// Scalar fp32, the same sums in the same order.
    Portable,
}

impl Engine {
    /// The fastest engine this CPU offers.
    pub fn detect() -> Self {
        if Engine::Avx512Bf16.available() {
            Engine::Avx512Bf16
        } else {
            Engine::Portable
        }
    }

    /// Whether this CPU (and OS) can run it.
    pub fn available(self) -> bool {
        match self {
            Engine::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Engine::Avx512Bf16 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bf16")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Engine::Avx512Bf16 => false,
        }
    }

    /// Its name: `avx512-bf16` or `portable`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Avx512Bf16 => "avx512-bf16",
            Engine::Portable => "portable",
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `x` rounded to the nearest bf16 (ties to even), as bits.
#[inline]
pub fn bf16_bits(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

/// `x` rounded to the nearest bf16 (ties to even), as an f32.
#[inline]
pub fn round_bf16(x: f32) -> f32 {
    f32::from_bits(u32::from(bf16_bits(x)) << 16)
}

/// Which part of a product over square causal matrices (attention's) is
/// computed: products are skipped where an operand is known to be zero or
/// where the result is not wanted, and the entries computed equal the full
/// product's bit for bit (the skipped products are of zeros, and the sums
/// keep their order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Triangle {
    /// Every entry of `C`, every pair of `k`.
    #[default]
    Full,
    /// Only `C`'s entries on and below the diagonal (`j ≤ i`) are wanted:
    /// tiles wholly above it are skipped and left as they were.
    LowerC,
    /// `A` is zero above the diagonal (`A[i, k] = 0` for `k > i`): each
    /// row panel runs over the pairs up to its last row.
    LowerA,
    /// `A` is zero below the diagonal (`A[i, k] = 0` for `k < i`): each
    /// row panel runs over the pairs from its first row.
    UpperA,
}

/// What `C` holds before a product is added to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start<'a> {
    /// Nothing: `C = A·B`.
    Zero,
    /// What is there: `C += A·B`.
    Acc,
    /// A bias row of `n` values, the same for every row: `C = bias + A·B`
    /// (the bias loaded into the accumulators, so no pass writes it first).
    Bias(&'a [f32]),
}

impl Start<'_> {
    /// [`Start::Acc`] when `accumulate`, else [`Start::Zero`].
    pub fn accumulate(accumulate: bool) -> Self {
        if accumulate {
            Start::Acc
        } else {
            Start::Zero
        }
    }
}

/// `C = A·B`, or `C += A·B` with `accumulate`, on packed operands: `C`
/// row-major `m × n` with leading dimension `ldc`, over `threads` threads
/// of the current rayon pool (1: this thread only).
///
/// # Errors
/// [`Error::Inner`] when the shapes do not chain, [`Error::Output`] when
/// `c` is too small, [`Error::Unavailable`] for an engine the CPU lacks.
pub fn gemm(
    engine: Engine,
    a: &PackedA,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    threads: usize,
) -> Result<()> {
    gemm_part(engine, a, b, c, ldc, accumulate, threads, Triangle::Full)
}

/// [`gemm`] over the part of the product `part` names.
///
/// # Errors
/// As [`gemm`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_part(
    engine: Engine,
    a: &PackedA,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    threads: usize,
    part: Triangle,
) -> Result<()> {
    let start = Start::accumulate(accumulate);
    gemm_rows(engine, a, 0..a.rows(), b, c, ldc, start, threads, part)
}

/// [`gemm_part`] for rows `rows` of `A` only (`C` has `rows.len()` rows):
/// one model's rows of a matrix that holds several models'; `C` starts
/// from `start`.
///
/// # Errors
/// As [`gemm`]; [`Error::Layout`] for a range outside `A`, or one that does
/// not start on a panel of a panels-layout `A`; [`Error::Output`] for a
/// bias shorter than a row of `C`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_rows(
    engine: Engine,
    a: &PackedA,
    rows: std::ops::Range<usize>,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    start: Start<'_>,
    threads: usize,
    part: Triangle,
) -> Result<()> {
    let accumulate = start == Start::Acc;
    let bias = match start {
        Start::Bias(v) if v.len() < b.cols() => {
            return Err(Error::Output {
                m: 1,
                n: b.cols(),
                ldc: b.cols(),
                need: b.cols(),
                len: v.len(),
            })
        }
        Start::Bias(v) => Some(v),
        _ => None,
    };
    if rows.end > a.rows()
        || rows.start > rows.end
        || (!a.is_rows() && !rows.start.is_multiple_of(MR))
    {
        return Err(Error::Layout {
            rows: a.rows(),
            range: (rows.start, rows.end),
        });
    }
    let (row0, m, n) = (rows.start, rows.len(), b.cols());
    if a.depth() != b.depth() {
        return Err(Error::Inner {
            m,
            k: a.depth(),
            kb: b.depth(),
            n,
        });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let need = (m - 1) * ldc + n;
    if ldc < n || c.len() < need {
        return Err(Error::Output {
            m,
            n,
            ldc,
            need,
            len: c.len(),
        });
    }
    if !engine.available() {
        return Err(Error::Unavailable(engine.name()));
    }
    let k2 = a.pairs();
    let c = &mut c[..need];
    let panels = m.div_ceil(MR);
    for nc0 in (0..n).step_by(NC) {
        let nc1 = (nc0 + NC).min(n);
        for kc0 in (0..k2.max(1)).step_by(KC2) {
            let panel = |(p, rows_c): (usize, &mut [f32])| {
                let r0 = p * MR;
                let rows = MR.min(m - r0);
                // The pairs this panel multiplies, and this block's share.
                let (qa, qb) = match part {
                    Triangle::LowerA => (0, k2.min((r0 + rows).div_ceil(2))),
                    Triangle::UpperA => ((r0 / 2).min(k2), k2),
                    _ => (0, k2),
                };
                let (lo, hi) = (kc0.max(qa), (kc0 + KC2).min(qb));
                let ap = |lo: usize, n: usize| a.panel_at(row0 + r0, rows, lo, n);
                for j in nc0 / NR..nc1.div_ceil(NR) {
                    let col0 = j * NR;
                    let cols = NR.min(n - col0);
                    if part == Triangle::LowerC && col0 > r0 + rows - 1 {
                        continue;
                    }
                    if lo >= hi {
                        // No pair: C = 0 or the bias once (the first block),
                        // or as it is.
                        if !accumulate && kc0 == 0 {
                            for r in 0..rows {
                                let out = &mut rows_c[r * ldc + col0..r * ldc + col0 + cols];
                                match bias {
                                    Some(v) => out.copy_from_slice(&v[col0..col0 + cols]),
                                    None => out.fill(0.0),
                                }
                            }
                        }
                        continue;
                    }
                    let load = accumulate || lo > qa;
                    let init = if load {
                        None
                    } else {
                        bias.map(|v| &v[col0..col0 + cols])
                    };
                    tile(
                        engine,
                        hi - lo,
                        ap(lo, hi - lo),
                        b.panel(j, lo, hi - lo),
                        &mut rows_c[col0..],
                        ldc,
                        rows,
                        cols,
                        load,
                        init,
                    );
                }
            };
            if threads > 1 && panels > 1 {
                c.par_chunks_mut(MR * ldc)
                    .take(panels)
                    .enumerate()
                    .for_each(panel);
            } else {
                c.chunks_mut(MR * ldc)
                    .take(panels)
                    .enumerate()
                    .for_each(panel);
            }
        }
    }
    Ok(())
}

/// `C = A·B` (or `C += A·B`) in fp32 from fp32 views of any strides, `C`
/// row-major `m × n` with leading dimension `ldc`, by the gemm crate's
/// kernels (AVX-512 where the CPU has it: the products candle runs), over
/// `threads` threads of the current rayon pool.
///
/// The split over threads is by blocks of `C`; every element's sum runs
/// over `k` in the same order whatever the thread count.
///
/// # Errors
/// [`Error::Inner`] when the shapes do not chain, [`Error::Output`] when
/// `c` is too small.
pub fn matmul_f32(
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    threads: usize,
) -> Result<()> {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    if k != b.rows() {
        return Err(Error::Inner {
            m,
            k,
            kb: b.rows(),
            n,
        });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let need = (m - 1) * ldc + n;
    if ldc < n || c.len() < need {
        return Err(Error::Output {
            m,
            n,
            ldc,
            need,
            len: c.len(),
        });
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                c[i * ldc..i * ldc + n].fill(0.0);
            }
        }
        return Ok(());
    }
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // Strides as the gemm crate takes them (elements, signed); views and
    // slices are far below isize::MAX elements.
    let s = |x: usize| x as isize;
    // SAFETY: `a` and `b` were checked when made to reach only elements of
    // their slices ((rows − 1)·rs + (cols − 1)·cs < len); `c` holds the
    // m × n block at row stride ldc ≥ n (checked above: (m − 1)·ldc + n ≤
    // len) and is borrowed mutably, so no operand aliases it. With
    // `read_dst` the result is 1·C + 1·A·B, else A·B.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            s(ldc),
            accumulate,
            a.data.as_ptr(),
            s(a.cs),
            s(a.rs),
            b.data.as_ptr(),
            s(b.cs),
            s(b.rs),
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

/// `C = A·B` (or `+=`) from fp32 views, packing both: [`gemm`] with
/// [`Engine::detect`].
///
/// # Errors
/// As [`gemm`].
pub fn matmul_bf16(
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    threads: usize,
) -> Result<()> {
    if a.cols() != b.rows() {
        return Err(Error::Inner {
            m: a.rows(),
            k: a.cols(),
            kb: b.rows(),
            n: b.cols(),
        });
    }
    gemm(
        Engine::detect(),
        &PackedA::pack_with(a, threads),
        &PackedB::pack(b),
        c,
        ldc,
        accumulate,
        threads,
    )
}

/// One output tile: `rows × cols` of `c` (row `r` at `c[r * ldc..]`) from
/// `kc` pairs of a packed `A` panel and a packed `B` panel.
#[allow(clippy::too_many_arguments)]
#[inline]
fn tile(
    engine: Engine,
    kc: usize,
    a: pack::PanelA<'_>,
    b: &[u32],
    c: &mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
    load: bool,
    init: Option<&[f32]>,
) {
    assert!((1..=MR).contains(&rows) && (1..=NR).contains(&cols));
    assert!(b.len() >= kc * NR);
    assert!(c.len() >= (rows - 1) * ldc + cols);
    assert!(init.is_none_or(|v| v.len() >= cols));
    if kc == 0 {
        return;
    }
    if a.panels {
        // MR rows side by side, pair after pair.
        assert!(a.data.len() >= kc * MR);
    } else {
        // `rows` rows of at least kc pairs each.
        assert!(a.row_step >= kc && a.data.len() >= (rows - 1) * a.row_step + kc);
    }
    match engine {
        #[cfg(target_arch = "x86_64")]
        Engine::Avx512Bf16 => {
            // SAFETY: `gemm` checked that the CPU has AVX-512F and
            // AVX512-BF16; the asserts above bound every read of `a` (kc
            // pairs of a whole panel, or of each of `rows` rows) and of `b`
            // (kc pairs of a whole panel), every element of `c` the tile
            // loads or stores (rows `< rows`, columns `< cols`, masked) and
            // of `init` (`cols` values).
            let init = init.map_or(std::ptr::null(), <[f32]>::as_ptr);
            unsafe {
                if a.panels {
                    avx512::tile::<true>(
                        kc,
                        a.data.as_ptr(),
                        MR,
                        b.as_ptr(),
                        c.as_mut_ptr(),
                        ldc,
                        rows,
                        cols,
                        load,
                        init,
                    )
                } else {
                    avx512::tile::<false>(
                        kc,
                        a.data.as_ptr(),
                        a.row_step,
                        b.as_ptr(),
                        c.as_mut_ptr(),
                        ldc,
                        rows,
                        cols,
                        load,
                        init,
                    )
                }
            }
        }
        _ => portable::tile(kc, a, b, c, ldc, rows, cols, load, init),
    }
}

/// `out[q] = (bf16(x[2q]), bf16(x[2q + 1]))` as one `u32` each (the low
/// half the even element; an odd last element paired with 0), rounded to
/// nearest even: a row of a [`PackedA`] in the rows layout
/// ([`PackedA::rows_for`]). `out` holds `⌈x.len() / 2⌉` values.
///
/// # Panics
/// When `out` is shorter than `⌈x.len() / 2⌉`.
#[inline]
pub fn to_pairs(x: &[f32], out: &mut [u32]) {
    assert!(out.len() >= x.len().div_ceil(2));
    pack::pairs_of(x, out)
}
