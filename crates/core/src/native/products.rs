//! The step's matrix products in its precision: `X·W`, `dY·Wᵀ` and
//! `Xᵀ·dY`, fp32 through the gemm crate, bf16 through `cfmem-kernels` with
//! the weights packed once per step.

use std::ops::Range;

use cfmem_kernels::{gemm_rows, matmul_f32, Engine, MatRef, PackedA, PackedB, Start, Triangle};

use super::layout::{Slot, Slots};
use super::Precision;
use crate::error::Result;

/// The left operand of a product: an fp32 view, or bf16 pairs packed
/// before (by the operand's producer).
#[derive(Clone)]
pub(crate) enum Left<'a> {
    View(MatRef<'a>),
    Packed(&'a PackedA),
    /// Rows of a matrix in the rows layout (one model's of several).
    Rows(&'a PackedA, Range<usize>),
}

/// The right operand of a product: an fp32 view, or bf16 panels packed
/// before (a weight's).
#[derive(Clone, Copy)]
pub(crate) enum Right<'a> {
    View(MatRef<'a>),
    Packed(&'a PackedB),
}

/// How products run: the precision, the engine for bf16 and the threads of
/// the current rayon pool they split over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Products {
    pub precision: Precision,
    engine: Engine,
    pub threads: usize,
}

/// Panels an activation or a gradient is packed into for a bf16 product,
/// reused from product to product.
#[derive(Debug)]
pub(crate) struct Packs {
    a: PackedA,
    b: PackedB,
}

impl Packs {
    pub fn new() -> Self {
        Self {
            a: PackedA::empty(),
            b: PackedB::empty(),
        }
    }
}

impl Products {
    pub fn new(precision: Precision, threads: usize) -> Self {
        Self {
            precision,
            engine: Engine::detect(),
            threads: threads.max(1),
        }
    }

    /// The same on one thread (for products inside a parallel loop).
    pub fn single(self) -> Self {
        Self { threads: 1, ..self }
    }

    /// `C = A·B`, or `C += A·B` with `acc`: `C` row-major with leading
    /// dimension `ldc`.
    ///
    /// # Errors
    /// Shapes that do not chain or a `C` too small (a bug of the caller:
    /// the step computes every shape), as [`crate::Error::Kernel`].
    pub fn mul(
        &self,
        a: MatRef<'_>,
        b: Right<'_>,
        c: &mut [f32],
        ldc: usize,
        acc: bool,
        packs: &mut Packs,
    ) -> Result<()> {
        let start = Start::accumulate(acc);
        self.mul_part(Left::View(a), b, c, ldc, start, packs, Triangle::Full)
    }

    /// [`Products::mul`] with either operand packed before, `C` starting
    /// from `start`, over the part of the product `part` names (bf16; fp32
    /// computes the whole product, which holds the same values where they
    /// are wanted). A bias start gives the bits of writing the bias into
    /// `C` and adding the product to it, in both precisions.
    #[allow(clippy::too_many_arguments)]
    pub fn mul_part(
        &self,
        a: Left<'_>,
        b: Right<'_>,
        c: &mut [f32],
        ldc: usize,
        start: Start<'_>,
        packs: &mut Packs,
        part: Triangle,
    ) -> Result<()> {
        match (self.precision, a, b) {
            (Precision::Fp32, Left::View(a), Right::View(b)) => {
                if let Start::Bias(v) = start {
                    // The bias written into C's rows first (shapes that do
                    // not fit are left to the product to report).
                    let n = b.cols();
                    if v.len() >= n && ldc >= n {
                        for row in c.chunks_mut(ldc).take(a.rows()).filter(|r| r.len() >= n) {
                            row[..n].copy_from_slice(&v[..n]);
                        }
                    }
                }
                let acc = start != Start::Zero;
                matmul_f32(a, b, c, ldc, acc, self.threads)?
            }
            // Packed operands exist in bf16 steps only.
            (Precision::Fp32, _, _) => {
                return Err(crate::Error::NativeLayout("packed operand in fp32".into()))
            }
            (Precision::Bf16, a, b) => {
                let (pa, rows) = match a {
                    Left::View(v) => {
                        packs.a.pack_into(v, self.threads);
                        (&packs.a, 0..v.rows())
                    }
                    Left::Packed(p) => (p, 0..p.rows()),
                    Left::Rows(p, r) => (p, r),
                };
                let pb = match b {
                    Right::View(v) => {
                        packs.b.pack_into(v, self.threads);
                        &packs.b
                    }
                    Right::Packed(p) => p,
                };
                gemm_rows(self.engine, pa, rows, pb, c, ldc, start, self.threads, part)?
            }
        }
        Ok(())
    }
}

/// A weight matrix as the forward pass multiplies by it: `rows × cols`
/// row-major at `slot`, or (`transposed`) the transpose of a `cols × rows`
/// row-major matrix (the tied head multiplies by `wteᵀ`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Matrix {
    pub slot: Slot,
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
}

impl Matrix {
    /// Model `m`'s matrix as the forward pass uses it.
    pub fn view<'a>(&self, theta: &'a [f32], m: usize) -> Result<MatRef<'a>> {
        let data = &theta[self.slot.model(m)];
        Ok(if self.transposed {
            MatRef::row_major(data, self.cols, self.rows)?.t()
        } else {
            MatRef::row_major(data, self.rows, self.cols)?
        })
    }
}

/// The weight matrices of a model, in the order [`Weights::index`] names
/// them: per layer `qkv`, `o`, `fc`, `proj`, then the head.
pub(crate) fn matrices(slots: &Slots, d: usize, f: usize, v: usize) -> Vec<Matrix> {
    let mut out = Vec::with_capacity(4 * slots.layers.len() + 1);
    for l in &slots.layers {
        for (slot, rows, cols) in [
            (l.w_qkv, d, 3 * d),
            (l.w_o, d, d),
            (l.w_fc, d, f),
            (l.w_proj, f, d),
        ] {
            out.push(Matrix {
                slot,
                rows,
                cols,
                transposed: false,
            });
        }
    }
    out.push(match slots.w_head {
        Some(slot) => Matrix {
            slot,
            rows: d,
            cols: v,
            transposed: false,
        },
        None => Matrix {
            slot: slots.wte,
            rows: d,
            cols: v,
            transposed: true,
        },
    });
    out
}

/// Which of a layer's matrices.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Which {
    Qkv = 0,
    O = 1,
    Fc = 2,
    Proj = 3,
}

/// The weight matrices and, in bf16, their panels: each matrix `W` packed
/// as the right operand of `X·W` and of `dY·Wᵀ`, per model, repacked when
/// the weights change ([`Weights::load`]).
#[derive(Debug)]
pub(crate) struct Weights {
    pub matrices: Vec<Matrix>,
    /// `[matrix][model]`: (`W`, `Wᵀ`).
    packed: Vec<Vec<(PackedB, PackedB)>>,
    n_layer: usize,
}

impl Weights {
    pub fn new(slots: &Slots, k: usize, d: usize, f: usize, v: usize) -> Self {
        let matrices = matrices(slots, d, f, v);
        Self {
            packed: matrices
                .iter()
                .map(|_| {
                    (0..k)
                        .map(|_| (PackedB::empty(), PackedB::empty()))
                        .collect()
                })
                .collect(),
            matrices,
            n_layer: slots.layers.len(),
        }
    }

    /// Index of layer `l`'s matrix `which`.
    pub fn index(&self, l: usize, which: Which) -> usize {
        4 * l + which as usize
    }

    /// Index of the head's matrix.
    pub fn head(&self) -> usize {
        4 * self.n_layer
    }

    /// Pack every matrix of `theta` for bf16 products (nothing in fp32).
    ///
    /// # Errors
    /// As [`Matrix::view`].
    pub fn load(&mut self, theta: &[f32], p: &Products) -> Result<()> {
        if p.precision != Precision::Bf16 {
            return Ok(());
        }
        for (mat, per_model) in self.matrices.iter().zip(&mut self.packed) {
            for (m, (w, wt)) in per_model.iter_mut().enumerate() {
                let view = mat.view(theta, m)?;
                w.pack_into(view, p.threads);
                wt.pack_into(view.t(), p.threads);
            }
        }
        Ok(())
    }

    /// Model `m`'s matrix `i` as the right operand of the forward product
    /// (`W`) or, with `transposed`, of the backward one (`Wᵀ`).
    pub fn right<'a>(
        &'a self,
        theta: &'a [f32],
        p: &Products,
        i: usize,
        m: usize,
        transposed: bool,
    ) -> Result<Right<'a>> {
        Ok(match p.precision {
            Precision::Bf16 => {
                let (w, wt) = &self.packed[i][m];
                Right::Packed(if transposed { wt } else { w })
            }
            Precision::Fp32 => {
                let v = self.matrices[i].view(theta, m)?;
                Right::View(if transposed { v.t() } else { v })
            }
        })
    }
}
