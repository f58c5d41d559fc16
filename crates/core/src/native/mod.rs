//! The native CPU step: the transformer's forward and backward passes
//! written by hand over buffers the step owns.
//!
//! candle's autograd allocates a zeroed buffer for every result and every
//! gradient and accumulates gradients by adding fresh buffers; on a host
//! with little memory bandwidth that bookkeeping cost as much as a quarter
//! of a step. Here the parameters, gradients and AdamW moments are flat
//! host vectors (every parameter `[K, ...]` in [`Gpt::params`] order), and
//! every activation, gradient and packed operand lives in a
//! [`Workspace`] allocated once per ensemble shape and reused every step:
//! nothing is allocated or zeroed per operation, gradients accumulate in
//! place.
//!
//! The products run in the experiment's [`Precision`]: fp32 through the gemm
//! crate's kernels (those candle uses), or bf16 operands with fp32
//! accumulation through `cfmem-kernels` (AVX512-BF16, or its portable
//! engine, which gives the same bits). Layer norms, softmax, GELU, the loss
//! and AdamW stay fp32 in both.
//!
//! candle keeps the parameters between runs (the [`Gpt`] the trainer
//! returns), the device abstraction and the composed reference path the
//! tests compare this step against (`tests/native.rs`).
//!
//! ```text
//! layout.rs     where each parameter lives in the flat vectors (Slots, Host)
//! products.rs   X·W, dY·Wᵀ, Xᵀ·dY in fp32 or bf16 (weights packed once a step)
//! rows.rs       row kernels: embedding, layer norm, GELU, loss, column sums
//! attention.rs  causal attention per window, forward and backward
//! step.rs       the workspace: forward, loss, evaluation rows
//! backward.rs   the backward pass
//! ```

mod attention;
mod backward;
mod layout;
mod products;
mod rows;
mod step;

use serde::{Deserialize, Serialize};

pub(crate) use layout::Host;
pub(crate) use rows::argmax;
pub(crate) use step::{Evaluated, Workspace};

use crate::data::HostBatch;
use crate::error::{Error, Result};
use crate::fused::Kernels;
use crate::model::Gpt;

/// One batch through the native step: each model's mean token loss and
/// every parameter's gradient (of the sum over models of those losses).
#[derive(Debug, Clone, PartialEq)]
pub struct NativeGradients {
    /// Per model, the mean negative log-likelihood of its batch's targets.
    pub losses: Vec<f32>,
    /// Per parameter, in [`Gpt::params`] order, its gradient flat
    /// (`[K, ...]`, as the parameter).
    pub grads: Vec<Vec<f32>>,
}

/// The losses and gradients the native step computes for `batch` (e.g.
/// from [`crate::TokenizedCorpus::fill_batch`]) under `model`'s weights,
/// in the model's precision: what training uses at every step, exposed to
/// check it against candle's autograd and against finite differences.
///
/// # Errors
/// [`Error::Precision`]-like [`Error::NativeLayout`] for a model that does
/// not run the native step ([`Kernels::Native`]); the step's errors.
pub fn native_gradients(model: &Gpt, batch: &HostBatch) -> Result<NativeGradients> {
    if model.kernels() != Kernels::Native {
        return Err(Error::NativeLayout(format!(
            "the model runs {:?} kernels, not the native step",
            model.kernels()
        )));
    }
    let host = Host::of(model)?;
    let mut ws = Workspace::new(model.config(), &host, batch.batch, model.precision(), true);
    ws.load(&host.theta)?;
    ws.forward(&host.theta, batch)?;
    let losses = ws.loss(batch);
    ws.backward(&host.theta, batch)?;
    let g = ws.grads();
    Ok(NativeGradients {
        losses,
        grads: host
            .slots
            .params
            .iter()
            .map(|&(slot, _)| g[slot.all(host.k)].to_vec())
            .collect(),
    })
}

/// The arithmetic of the matrix products in training and evaluation.
///
/// | value | products | where |
/// |---|---|---|
/// | `fp32` | fp32 operands and sums | everywhere (the reference) |
/// | `bf16` | bf16 operands (rounded to nearest even), exact products, fp32 sums | the CPU: AVX512-BF16 where the CPU has it, else the portable engine (the same bits, slower) |
///
/// In both, the master weights, AdamW, layer norms, softmax, GELU and the
/// loss are fp32. The precision is part of an experiment's identity (its
/// manifest): records of the two are never mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// fp32 products.
    #[default]
    Fp32,
    /// bf16 operands with fp32 accumulation.
    Bf16,
}

impl Precision {
    /// Whether this is fp32 (the default, left out of manifests).
    pub fn is_fp32(&self) -> bool {
        *self == Precision::Fp32
    }

    /// Its name: `fp32` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }

    /// What runs this precision's products on this CPU: `fp32`, or `bf16`
    /// with the engine (`bf16/avx512-bf16`, `bf16/portable`).
    pub fn engine_name(self) -> String {
        match self {
            Precision::Fp32 => "fp32".into(),
            Precision::Bf16 => format!("bf16/{}", cfmem_kernels::Engine::detect()),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "fp32" | "f32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(crate::Error::Parse {
                what: "precision",
                input: other.to_string(),
                expected: "fp32 or bf16",
            }),
        }
    }
}
