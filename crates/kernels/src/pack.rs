//! Packing fp32 matrices into bf16 pair panels.

use rayon::prelude::*;

use crate::{bf16_bits, MatRef, MR, NR};

/// Two bf16 in one `u32`: `lo` (element `2p`) in the low half.
#[inline]
fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(bf16_bits(lo)) | (u32::from(bf16_bits(hi)) << 16)
}

/// The bf16 bits of `x` rounded to nearest, ties to even (a quiet NaN for
/// a NaN): [`crate::bf16_bits`] in a form the compiler vectorizes.
#[inline(always)]
fn bits(x: f32) -> u32 {
    let b = x.to_bits();
    if x.is_nan() {
        (b >> 16) | 0x40
    } else {
        (b + 0x7fff + ((b >> 16) & 1)) >> 16
    }
}

/// `out[i] = pair(lo[i], hi[i])`, with AVX512-BF16 where the CPU has it.
#[inline]
fn interleave(lo: &[f32], hi: &[f32], out: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if fast() {
        // SAFETY: `fast` checked the CPU's features.
        return unsafe { crate::avx512::interleave(lo, hi, out) };
    }
    interleave_scalar(lo, hi, out)
}

/// [`interleave`] of two runs, or with `hi` `None` (the pad of an odd
/// `k`) each element alone in its pair.
#[inline]
fn pair_runs(lo: &[f32], hi: Option<&[f32]>, out: &mut [u32]) {
    match hi {
        Some(hi) => interleave(lo, hi, out),
        None => {
            for (o, &l) in out.iter_mut().zip(lo) {
                *o = bits(l);
            }
        }
    }
}

/// Whether the AVX-512 conversions run here (the CPU's answer, cached).
#[cfg(target_arch = "x86_64")]
fn fast() -> bool {
    use std::sync::OnceLock;
    static FAST: OnceLock<bool> = OnceLock::new();
    *FAST.get_or_init(|| {
        crate::Engine::Avx512Bf16.available() && std::arch::is_x86_feature_detected!("avx512bw")
    })
}

/// [`interleave`] in scalar code.
#[inline]
pub(crate) fn interleave_scalar(lo: &[f32], hi: &[f32], out: &mut [u32]) {
    for ((o, &l), &h) in out.iter_mut().zip(lo).zip(hi) {
        *o = bits(l) | (bits(h) << 16);
    }
}

/// `out[q] = pair(x[2q], x[2q + 1])`, an odd last element paired with 0,
/// with AVX512-BF16 where the CPU has it.
#[inline]
pub(crate) fn pairs_of(x: &[f32], out: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if fast() {
        // SAFETY: `fast` checked the CPU's features.
        return unsafe { crate::avx512::pairs_of(x, out) };
    }
    pairs_of_scalar(x, out)
}

/// [`pairs_of`] in scalar code.
#[inline]
pub(crate) fn pairs_of_scalar(x: &[f32], out: &mut [u32]) {
    let (even, rest) = x.split_at(x.len() & !1);
    for (o, p) in out.iter_mut().zip(even.chunks_exact(2)) {
        *o = bits(p[0]) | (bits(p[1]) << 16);
    }
    if let Some(&last) = rest.first() {
        out[even.len() / 2] = bits(last);
    }
}

/// `A` (`m × k`) as bf16 pairs in one of two layouts:
/// - *rows*, from a view whose rows are contiguous: row `i`'s pairs at
///   `i · pairs ..` (a bf16 copy of the matrix; the pad of odd `k` zero);
/// - *panels* of [`MR`] rows, from other views: panel `p`, pair `q`, row
///   `r` at `(p · pairs + q) · MR + r`; rows past `m` and the pad are zero.
///
/// The product reads either (the tile broadcasts one pair per row and
/// step), so a row-major `A` is converted in one streaming pass and a
/// transposed one spread into panels.
#[derive(Debug, Clone)]
pub struct PackedA {
    rows: usize,
    depth: usize,
    pairs: usize,
    /// Rows layout (else panels).
    by_rows: bool,
    data: Vec<u32>,
}

/// Where a panel of [`PackedA`] is: its first row's pairs and its layout,
/// `row_step` apart in the rows layout (`panels`: pair `q` of row `r` at
/// `q · MR + r`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PanelA<'a> {
    pub data: &'a [u32],
    pub panels: bool,
    pub row_step: usize,
}

impl PackedA {
    /// Round `a` to bf16 and pack it.
    pub fn pack(a: MatRef<'_>) -> Self {
        Self::pack_with(a, 1)
    }

    /// [`PackedA::pack`] over `threads` threads of the current rayon pool.
    pub fn pack_with(a: MatRef<'_>, threads: usize) -> Self {
        let mut p = Self::empty();
        p.pack_into(a, threads);
        p
    }

    /// Nothing packed yet: a buffer for [`PackedA::pack_into`].
    pub fn empty() -> Self {
        Self {
            rows: 0,
            depth: 0,
            pairs: 0,
            by_rows: false,
            data: Vec::new(),
        }
    }

    /// Make this an `m × k` matrix in the rows layout and give its pairs,
    /// `⌈k / 2⌉` per row, row after row, for the caller to write (with
    /// [`crate::to_pairs`]): a producer of `A`'s rows packs them as it
    /// makes them. The memory is reused, not cleared.
    pub fn rows_for(&mut self, m: usize, k: usize) -> &mut [u32] {
        let pairs = k.div_ceil(2);
        let len = m * pairs;
        if self.data.len() < len {
            self.data.resize(len, 0);
        }
        self.rows = m;
        self.depth = k;
        self.pairs = pairs;
        self.by_rows = true;
        &mut self.data[..len]
    }

    /// Pack `a` in place of what this held, reusing its memory (it grows
    /// to the largest matrix packed and is not cleared between uses), over
    /// `threads` threads of the current rayon pool.
    pub fn pack_into(&mut self, a: MatRef<'_>, threads: usize) {
        let (m, k) = (a.rows(), a.cols());
        let pairs = k.div_ceil(2);
        if a.cs == 1 && k > 0 {
            // Rows are contiguous: each row converted in one pass.
            let data = self.rows_for(m, k);
            let row =
                |(i, out): (usize, &mut [u32])| pairs_of(&a.data[i * a.rs..i * a.rs + k], out);
            if threads > 1 && m >= 2 * MR {
                data.par_chunks_mut(pairs).enumerate().for_each(row);
            } else {
                data.chunks_mut(pairs).enumerate().for_each(row);
            }
            return;
        }
        self.by_rows = false;
        let panels = m.div_ceil(MR);
        let len = panels * pairs * MR;
        if self.data.len() < len {
            self.data.resize(len, 0);
        }
        let data = &mut self.data[..len];
        // The rows of the last panel past `m` are read as zeros.
        if m % MR != 0 {
            data[(panels - 1) * pairs * MR..].fill(0);
        }
        let panel = |(p, out): (usize, &mut [u32])| {
            let rows = MR.min(m - p * MR);
            let at = |i: usize, j: usize| if j < k { a.at(i, j) } else { 0.0 };
            for r in 0..rows {
                let i = p * MR + r;
                for q in 0..pairs {
                    out[q * MR + r] = pair(at(i, 2 * q), at(i, 2 * q + 1));
                }
            }
        };
        if pairs > 0 && a.cs != 1 && a.rs == 1 {
            // Columns are contiguous (a transposed view): for a run of whole
            // panels, each pair of columns interleaved over the run's rows
            // at once, then cut into the panels' runs of MR. Runs of panels
            // split over threads (each owns its panels' part of `data`).
            let per = if threads > 1 {
                panels.div_ceil(threads)
            } else {
                panels
            };
            let run_of_panels = |(c, out): (usize, &mut [u32])| {
                let r0 = c * per * MR;
                let r1 = (r0 + per * MR).min(m);
                let mut run = vec![0u32; r1 - r0];
                for q in 0..pairs {
                    let col = |j: usize| &a.data[j * a.cs + r0..j * a.cs + r1];
                    pair_runs(
                        col(2 * q),
                        (2 * q + 1 < k).then(|| col(2 * q + 1)),
                        &mut run,
                    );
                    for (p, rows) in run.chunks(MR).enumerate() {
                        let at = (p * pairs + q) * MR;
                        out[at..at + rows.len()].copy_from_slice(rows);
                    }
                }
            };
            if per < panels {
                data.par_chunks_mut(per * pairs * MR)
                    .enumerate()
                    .for_each(run_of_panels);
            } else {
                run_of_panels((0, data));
            }
        } else if pairs > 0 {
            if threads > 1 && panels > 1 {
                data.par_chunks_mut(pairs * MR).enumerate().for_each(panel);
            } else {
                data.chunks_mut(pairs * MR).enumerate().for_each(panel);
            }
        }
        self.rows = m;
        self.depth = k;
        self.pairs = pairs;
    }

    /// `m`.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// `k`.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// `⌈k / 2⌉`.
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// Whether this is in the rows layout.
    pub fn is_rows(&self) -> bool {
        self.by_rows
    }

    /// Pairs `q0..q0 + n` of panel `p`.
    #[cfg(test)]
    pub(crate) fn panel(&self, p: usize, q0: usize, n: usize) -> PanelA<'_> {
        self.panel_at(p * MR, MR.min(self.rows - p * MR), q0, n)
    }

    /// Pairs `q0..q0 + n` of the `rows` rows from `r0` (`r0` a multiple of
    /// [`MR`] in the panels layout).
    pub(crate) fn panel_at(&self, r0: usize, rows: usize, q0: usize, n: usize) -> PanelA<'_> {
        if self.by_rows {
            let start = r0 * self.pairs + q0;
            PanelA {
                data: &self.data[start..start + (rows - 1) * self.pairs + n],
                panels: false,
                row_step: self.pairs,
            }
        } else {
            let start = ((r0 / MR) * self.pairs + q0) * MR;
            PanelA {
                data: &self.data[start..start + n * MR],
                panels: true,
                row_step: 1,
            }
        }
    }

    /// The transpose of rows `rows` of `src` (a matrix in the rows layout,
    /// e.g. written by a producer with [`crate::to_pairs`]) in the panels
    /// layout, in place of what this held: `src`'s columns become rows, its
    /// rows the pairs of `k`. No value is rounded again: the halves of
    /// `src`'s pairs are regrouped, two rows at a time, over `threads`
    /// threads of the current rayon pool.
    ///
    /// # Errors
    /// [`crate::Error::Layout`] when `src` is in the panels layout or the
    /// range reaches past its rows.
    pub fn transpose_of(
        &mut self,
        src: &PackedA,
        rows: std::ops::Range<usize>,
        threads: usize,
    ) -> crate::Result<()> {
        if !src.by_rows || rows.end > src.rows || rows.start > rows.end {
            return Err(crate::Error::Layout {
                rows: src.rows,
                range: (rows.start, rows.end),
            });
        }
        // The transpose is depth × len: its rows are src's columns.
        let (m, k) = (src.depth, rows.len());
        let (sp, pairs) = (src.pairs, k.div_ceil(2));
        let panels = m.div_ceil(MR);
        let len = panels * pairs * MR;
        if self.data.len() < len {
            self.data.resize(len, 0);
        }
        let data = &mut self.data[..len];
        if m % MR != 0 && pairs > 0 {
            data[(panels - 1) * pairs * MR..].fill(0);
        }
        let per = if threads > 1 {
            panels.div_ceil(threads)
        } else {
            panels
        };
        let row = |i: usize| &src.data[(rows.start + i) * sp..(rows.start + i + 1) * sp];
        let run_of_panels = |(c, out): (usize, &mut [u32])| {
            // Columns c·per·MR .. of src, i.e. its pairs from c·per·MR / 2.
            let f0 = c * per * MR;
            let f1 = (f0 + per * MR).min(m);
            let mut run = vec![0u32; f1 - f0 + 1];
            for q in 0..pairs {
                let lo = row(2 * q);
                let zeros = vec![0u32; if 2 * q + 1 < k { 0 } else { sp }];
                let hi = if 2 * q + 1 < k {
                    row(2 * q + 1)
                } else {
                    &zeros[..]
                };
                regroup(
                    &lo[f0 / 2..f1.div_ceil(2)],
                    &hi[f0 / 2..f1.div_ceil(2)],
                    &mut run,
                );
                for (p, rs) in run[..f1 - f0].chunks(MR).enumerate() {
                    let at = (p * pairs + q) * MR;
                    out[at..at + rs.len()].copy_from_slice(rs);
                }
            }
        };
        if per < panels {
            data.par_chunks_mut(per * pairs * MR)
                .enumerate()
                .for_each(run_of_panels);
        } else if pairs > 0 {
            run_of_panels((0, data));
        }
        self.rows = m;
        self.depth = k;
        self.pairs = pairs;
        self.by_rows = false;
        Ok(())
    }
}

/// Two rows of bf16 pairs (`lo`, `hi`: element `2j` in the low half of
/// `x[j]`, `2j + 1` in the high half) regrouped by element: `out[e]` holds
/// element `e` of `lo` in its low half and of `hi` in its high half.
#[inline]
fn regroup(lo: &[u32], hi: &[u32], out: &mut [u32]) {
    for ((o, &a), &b) in out.chunks_exact_mut(2).zip(lo).zip(hi) {
        o[0] = (a & 0xffff) | (b << 16);
        o[1] = (a >> 16) | (b & 0xffff_0000);
    }
}

/// `B` (`k × n`) in panels of [`NR`] columns: panel `j`, pair `q`, column
/// `c` at `(j · pairs + q) · NR + c`; columns past `n` and the pad of odd
/// `k` are zero.
#[derive(Debug, Clone)]
pub struct PackedB {
    cols: usize,
    depth: usize,
    pairs: usize,
    data: Vec<u32>,
}

impl PackedB {
    /// Round `b` to bf16 and pack it.
    pub fn pack(b: MatRef<'_>) -> Self {
        Self::pack_with(b, 1)
    }

    /// [`PackedB::pack`] over `threads` threads of the current rayon pool.
    pub fn pack_with(b: MatRef<'_>, threads: usize) -> Self {
        let mut p = Self::empty();
        p.pack_into(b, threads);
        p
    }

    /// Nothing packed yet: a buffer for [`PackedB::pack_into`].
    pub fn empty() -> Self {
        Self {
            cols: 0,
            depth: 0,
            pairs: 0,
            data: Vec::new(),
        }
    }

    /// Pack `b` in place of what this held, reusing its memory, over
    /// `threads` threads of the current rayon pool (column panels split
    /// over them).
    pub fn pack_into(&mut self, b: MatRef<'_>, threads: usize) {
        let (k, n) = (b.rows(), b.cols());
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(NR);
        let len = panels * pairs * NR;
        if self.data.len() < len {
            self.data.resize(len, 0);
        }
        let data = &mut self.data[..len];
        // The columns of the last panel past `n` are read as zeros.
        if n % NR != 0 {
            data[(panels - 1) * pairs * NR..].fill(0);
        }
        let panel = |(j, out): (usize, &mut [u32])| {
            let j0 = j * NR;
            let cols = NR.min(n - j0);
            if b.cs == 1 {
                // Rows are contiguous: two rows make a run of pairs.
                let row = |i: usize| &b.data[i * b.rs + j0..i * b.rs + j0 + cols];
                for q in 0..pairs {
                    let hi = (2 * q + 1 < k).then(|| row(2 * q + 1));
                    pair_runs(row(2 * q), hi, &mut out[q * NR..q * NR + cols]);
                }
            } else if b.rs == 1 {
                // Columns are contiguous: each column's pairs, spread by NR.
                let mut col = vec![0u32; pairs];
                for c in 0..cols {
                    let j = j0 + c;
                    pairs_of(&b.data[j * b.cs..j * b.cs + k], &mut col);
                    for (q, &x) in col.iter().enumerate() {
                        out[q * NR + c] = x;
                    }
                }
            } else {
                let at = |i: usize, j: usize| if i < k { b.at(i, j) } else { 0.0 };
                for q in 0..pairs {
                    for c in 0..cols {
                        out[q * NR + c] = pair(at(2 * q, j0 + c), at(2 * q + 1, j0 + c));
                    }
                }
            }
        };
        if pairs > 0 {
            if threads > 1 && panels > 1 {
                data.par_chunks_mut(pairs * NR).enumerate().for_each(panel);
            } else {
                data.chunks_mut(pairs * NR).enumerate().for_each(panel);
            }
        }
        self.cols = n;
        self.depth = k;
        self.pairs = pairs;
    }

    /// `n`.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `k`.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// `⌈k / 2⌉`.
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// Pairs `q0..q0 + n` of panel `j`.
    pub(crate) fn panel(&self, j: usize, q0: usize, n: usize) -> &[u32] {
        let start = (j * self.pairs + q0) * NR;
        &self.data[start..start + n * NR]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vectorizable_rounding_is_the_half_crate_s() {
        // Ties, carries into the exponent, the largest finite values, the
        // infinities, subnormals and signed zeros, then random patterns.
        let mut xs: Vec<u32> = vec![
            0x3f80_8000,
            0x3f81_8000,
            0x3f80_7fff,
            0x3f80_8001,
            0x3fff_ffff,
            0x7f7f_ffff,
            0x7f7f_7fff,
            0x7f80_0000,
            0xff80_0000,
            0x0000_0001,
            0x0000_8000,
            0x8000_0000,
            0,
        ];
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            xs.push(s as u32);
        }
        for b in xs {
            let x = f32::from_bits(b);
            let ours = bits(x);
            if x.is_nan() {
                assert!(f32::from_bits(ours << 16).is_nan(), "{b:#x}");
            } else {
                assert_eq!(ours, u32::from(bf16_bits(x)), "{b:#x}");
            }
        }
    }

    #[test]
    fn the_vector_conversions_are_the_scalar_ones() {
        // Lengths around the vector widths, odd ones with a lone last
        // element; normal numbers (the instruction flushes subnormals).
        let x: Vec<f32> = (0..301).map(|i| (i as f32 * 0.731).sin() * 1e3).collect();
        let y: Vec<f32> = x.iter().map(|v| v * -0.37 + 1.0).collect();
        for len in [0usize, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 301] {
            let pairs = len.div_ceil(2);
            let (mut a, mut b) = (vec![0u32; pairs], vec![0u32; pairs]);
            pairs_of(&x[..len], &mut a);
            pairs_of_scalar(&x[..len], &mut b);
            assert_eq!(a, b, "pairs of {len}");
            let (mut a, mut b) = (vec![0u32; len], vec![0u32; len]);
            interleave(&x[..len], &y[..len], &mut a);
            interleave_scalar(&x[..len], &y[..len], &mut b);
            assert_eq!(a, b, "interleave {len}");
        }
        #[cfg(target_arch = "x86_64")]
        if !fast() {
            eprintln!("no AVX512-BF16 here: the scalar conversions only");
        }
    }

    #[test]
    fn every_layout_packs_the_same() {
        // Row-major, column-major and doubly strided views of one matrix,
        // odd in both dimensions, pack to the same panels.
        let (m, k) = (29, 13);
        let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let xt: Vec<f32> = (0..m * k).map(|i| x[(i % m) * k + i / m]).collect();
        let mut wide = vec![0.0f32; 2 * m * 2 * k];
        for i in 0..m {
            for j in 0..k {
                wide[2 * i * 2 * k + 2 * j] = x[i * k + j];
            }
        }
        let rm = MatRef::row_major(&x, m, k).unwrap();
        let cm = MatRef::new(&xt, m, k, 1, m).unwrap();
        let st = MatRef::new(&wide, m, k, 4 * k, 2).unwrap();
        // Every pair of every row, read through the panels it packs to.
        let pairs = |p: &PackedA| -> Vec<u32> {
            let mut out = Vec::new();
            for i in 0..m {
                let panel = p.panel(i / MR, 0, p.pairs());
                for q in 0..p.pairs() {
                    let r = i % MR;
                    out.push(if panel.panels {
                        panel.data[q * MR + r]
                    } else {
                        panel.data[r * panel.row_step + q]
                    });
                }
            }
            out
        };
        let want = pairs(&PackedA::pack(st));
        assert_eq!(pairs(&PackedA::pack(rm)), want);
        assert_eq!(pairs(&PackedA::pack(cm)), want);
        assert_eq!(pairs(&PackedA::pack_with(rm, 2)), want);
        assert!(PackedA::pack(rm).by_rows && !PackedA::pack(cm).by_rows);
        // Rows written by hand with `to_pairs` are the rows layout's.
        let mut hand = PackedA::empty();
        for (i, row) in hand.rows_for(m, k).chunks_mut(k.div_ceil(2)).enumerate() {
            crate::to_pairs(&x[i * k..(i + 1) * k], row);
        }
        assert_eq!(pairs(&hand), want);
        // As B: the same matrix, k × n now.
        let want = PackedB::pack(st.t()).data;
        assert_eq!(PackedB::pack(rm.t()).data, want);
        assert_eq!(PackedB::pack(cm.t()).data, want);
        let b = PackedB::pack(MatRef::row_major(&xt, k, m).unwrap());
        assert_eq!(b.data, want);
    }
}
