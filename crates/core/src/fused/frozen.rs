//! The product of activations with a frozen weight (LoRA's base):
//! `Y = X · W` whose backward pass gives `X` its gradient `dY · Wᵀ` and
//! computes nothing for `W`.
//!
//! candle's matrix product computes both operands' gradients in its
//! backward pass, a weight outside autograd included (candle 0.11;
//! huggingface/candle#3773), and keeps them until the pass ends: under LoRA
//! that is the base's whole weight gradient, every step, for nothing.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use cfmem_kernels::{matmul_f32, MatRef};

use super::{f32s, out, CResult};

/// `X` `[K, N, in]` (contiguous) times `W` `[1, in, out]` (any strides).
struct FrozenProduct;

impl CustomOp2 for FrozenProduct {
    fn name(&self) -> &'static str {
        "cfmem-frozen-product"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let name = self.name();
        let x = f32s(name, s1, l1)?;
        let (k, n, i) = super::dims3(name, l1)?;
        let (&[1, wi, o], &[_, rs, cs]) = (l2.dims(), l2.stride()) else {
            candle_core::bail!(
                "{name}: the weight must be [1, in, out], got {:?}",
                l2.dims()
            );
        };
        if wi != i {
            candle_core::bail!("{name}: [{k}, {n}, {i}] times [1, {wi}, {o}]");
        }
        let w = &s2.as_slice::<f32>()?[l2.start_offset()..];
        let err = |e: cfmem_kernels::Error| candle_core::Error::Msg(format!("{name}: {e}"));
        let a = MatRef::row_major(x, k * n, i).map_err(err)?;
        let b = MatRef::new(w, i, o, rs, cs).map_err(err)?;
        let mut y = vec![0f32; k * n * o];
        // As many threads as candle's own products split over.
        let threads = crate::process::matmul_threads();
        matmul_f32(a, b, &mut y, o, false, threads).map_err(err)?;
        out(y, (k, n, o))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let (k, n, o) = grad.dims3()?;
        let i = x.dim(2)?;
        let dx = grad
            .reshape((1, k * n, o))?
            .matmul(&w.transpose(1, 2)?)?
            .reshape((k, n, i))?;
        Ok((Some(dx), None))
    }
}

/// `x · w` for `x` `[K, N, in]` and a weight `w` `[1, in, out]` outside
/// autograd, f32 on the CPU: no gradient is computed for `w`.
pub(crate) fn frozen_product(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op2(w, FrozenProduct)
}
