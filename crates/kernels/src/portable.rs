//! The scalar engine: `vdpbf16ps`'s sums, in its order, in plain fp32.

use crate::pack::PanelA;
use crate::{MR, NR};

#[inline]
fn halves(x: u32) -> (f32, f32) {
    (f32::from_bits(x << 16), f32::from_bits(x & 0xffff_0000))
}

/// One tile, as [`crate::tile`] describes it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tile(
    kc: usize,
    a: PanelA<'_>,
    b: &[u32],
    c: &mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
    load: bool,
    init: Option<&[f32]>,
) {
    let mut acc = [[0f32; NR]; MR];
    if let (false, Some(v)) = (load, init) {
        for acc in acc.iter_mut() {
            acc[..cols].copy_from_slice(&v[..cols]);
        }
    }
    if load {
        for r in 0..rows {
            acc[r][..cols].copy_from_slice(&c[r * ldc..r * ldc + cols]);
        }
    }
    for q in 0..kc {
        let bq = &b[q * NR..(q + 1) * NR];
        for (r, acc) in acc.iter_mut().enumerate().take(rows) {
            let at = if a.panels {
                q * MR + r
            } else {
                r * a.row_step + q
            };
            let (a0, a1) = halves(a.data[at]);
            for (acc, &bj) in acc.iter_mut().zip(bq) {
                let (b0, b1) = halves(bj);
                // Each product of two bf16 is exact in f32; the odd pair
                // is added first, then the even one, each sum rounded.
                *acc += a1 * b1;
                *acc += a0 * b0;
            }
        }
    }
    for r in 0..rows {
        c[r * ldc..r * ldc + cols].copy_from_slice(&acc[r][..cols]);
    }
}
