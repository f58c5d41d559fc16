//! The AVX512-BF16 engine: a 12 × 32 tile of fp32 accumulators (24
//! vectors), each step one pair of `k` (two vectors of packed `B` and, per
//! row, one broadcast pair of `A` into two `vdpbf16ps`).

use std::arch::x86_64::*;

use crate::{MR, NR};

/// The mask of the first `n` (≤ 16) lanes.
#[inline(always)]
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// One tile, as [`crate::tile`] describes it: `PANEL`, `A`'s rows side by
/// side (row `r`'s pair `q` at `a + q · MR + r`), else rows `step` apart
/// (at `a + r · step + q`).
///
/// # Safety
/// The CPU has AVX-512F and AVX512-BF16; `b` holds `kc · NR` readable
/// `u32`; `a` holds `kc · MR` (`PANEL`) or, for every `r < rows`, `kc`
/// from `a + r · step`; for `r < rows` and `j < cols ≤ 32`,
/// `c + r · ldc + j` is a valid, writable `f32` (1 ≤ rows ≤ MR); `init`
/// is null or holds `cols` readable `f32` (the start of every row when
/// not `load`).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bf16")]
pub(crate) unsafe fn tile<const PANEL: bool>(
    kc: usize,
    a: *const u32,
    step: usize,
    b: *const u32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    load: bool,
    init: *const f32,
) {
    let m0 = lanes(cols);
    let m1 = lanes(cols.saturating_sub(16));
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    if !load && !init.is_null() {
        // SAFETY: init holds cols values; the masks keep to them.
        let start = unsafe {
            [
                _mm512_maskz_loadu_ps(m0, init),
                if cols > 16 {
                    _mm512_maskz_loadu_ps(m1, init.add(16))
                } else {
                    _mm512_setzero_ps()
                },
            ]
        };
        acc = [start; MR];
    }
    if load {
        for (r, acc) in acc.iter_mut().enumerate().take(rows) {
            // SAFETY: row r < rows of c; the masks keep to its first cols
            // elements (masked-off lanes are not touched); the second half
            // is formed only when it has lanes (cols > 16).
            unsafe {
                let row = c.add(r * ldc);
                acc[0] = _mm512_maskz_loadu_ps(m0, row);
                if cols > 16 {
                    acc[1] = _mm512_maskz_loadu_ps(m1, row.add(16));
                }
            }
        }
    }
    // Each row's first pair; rows past `rows` read row 0 again (their
    // sums are never stored).
    let rows_at: [*const u32; MR] = std::array::from_fn(|r| {
        let r = if r < rows { r } else { 0 };
        // SAFETY: r < rows, inside A by the caller's bound.
        unsafe {
            if PANEL {
                a.add(r)
            } else {
                a.add(r * step)
            }
        }
    });
    for q in 0..kc {
        // SAFETY: q < kc, so the 32 u32 at b + q·NR and each row's pair at
        // rows_at[r] + q·MR (PANEL) or + q are inside A and B (the caller's
        // bound). The casts between 512-bit integer and bf16-pair vectors
        // reinterpret the same bits.
        unsafe {
            let bq = b.add(q * NR);
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bq.cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bq.add(16).cast()));
            let off = if PANEL { q * MR } else { q };
            for (r, acc) in acc.iter_mut().enumerate() {
                let pair = *rows_at[r].add(off);
                let ar: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair as i32));
                acc[0] = _mm512_dpbf16_ps(acc[0], ar, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], ar, b1);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate().take(rows) {
        // SAFETY: as for the loads.
        unsafe {
            let row = c.add(r * ldc);
            _mm512_mask_storeu_ps(row, m0, acc[0]);
            if cols > 16 {
                _mm512_mask_storeu_ps(row.add(16), m1, acc[1]);
            }
        }
    }
}

/// `out[q] = pair(x[2q], x[2q + 1])` for `q < out.len()` (`x` holds
/// `2 · out.len()` floats or one fewer), rounded by `vcvtne2ps2bf16`.
///
/// # Safety
/// The CPU has AVX-512F and AVX512-BF16.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(crate) unsafe fn pairs_of(x: &[f32], out: &mut [u32]) {
    let n = (x.len() / 32).min(out.len() / 16);
    for c in 0..n {
        // SAFETY: chunk c covers x[32c..32c + 32] and out[16c..16c + 16],
        // inside both slices (n bounds c); the instruction puts the bf16
        // of the second operand's 16 floats in the low half, so the lane
        // q holds x[32c + 2q] low and x[32c + 2q + 1] high.
        unsafe {
            let lo = _mm512_loadu_ps(x.as_ptr().add(32 * c));
            let hi = _mm512_loadu_ps(x.as_ptr().add(32 * c + 16));
            let v = _mm512_cvtne2ps_pbh(hi, lo);
            _mm512_storeu_si512(
                out.as_mut_ptr().add(16 * c).cast(),
                std::mem::transmute::<__m512bh, __m512i>(v),
            );
        }
    }
    crate::pack::pairs_of_scalar(&x[(32 * n).min(x.len())..], &mut out[16 * n..]);
}

/// `out[i] = pair(lo[i], hi[i])`, rounded by `vcvtne2ps2bf16`.
///
/// # Safety
/// The CPU has AVX-512F, AVX-512BW and AVX512-BF16.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(crate) unsafe fn interleave(lo: &[f32], hi: &[f32], out: &mut [u32]) {
    let len = out.len().min(lo.len()).min(hi.len());
    let n = len / 16;
    // Word i of the result: lane i/2 of lo (even i) or of hi (odd i); in
    // the converted vector lo's words are 0..16 and hi's 16..32.
    let idx: [i16; 32] = std::array::from_fn(|i| (i / 2 + 16 * (i % 2)) as i16);
    // SAFETY: idx is 32 i16 = 64 bytes, one vector.
    let idx = unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) };
    for c in 0..n {
        // SAFETY: chunk c covers lo/hi[16c..16c + 16] and out[16c..16c + 16],
        // inside the slices (16 · n ≤ len).
        unsafe {
            let l = _mm512_loadu_ps(lo.as_ptr().add(16 * c));
            let h = _mm512_loadu_ps(hi.as_ptr().add(16 * c));
            let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(h, l));
            let v = _mm512_permutexvar_epi16(idx, v);
            _mm512_storeu_si512(out.as_mut_ptr().add(16 * c).cast(), v);
        }
    }
    crate::pack::interleave_scalar(&lo[16 * n..len], &hi[16 * n..len], &mut out[16 * n..len]);
}
