//! Helpers shared by the core crate's integration tests.
#![allow(dead_code)] // each test file uses a part of these

use candle_core::{Device, Tensor};

/// Largest absolute value of a tensor, on any device.
pub fn max_abs(t: &Tensor) -> f32 {
    t.to_device(&Device::Cpu)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Largest absolute difference between two tensors of one shape, on any
/// devices.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_device(&Device::Cpu).unwrap();
    let b = b.to_device(&Device::Cpu).unwrap();
    max_abs(&(a - b).unwrap())
}

/// The summed per-model mean token loss of `model` on one batch, in the
/// model's own type (what training minimises).
pub fn batch_loss(model: &cfmem_core::Gpt, batch: &cfmem_core::Batch) -> Tensor {
    let dtype = model.params()[0].var.dtype();
    let logits = model.forward(&batch.ids).unwrap();
    let nll = cfmem_core::token_nll(&logits, &batch.targets).unwrap();
    let mask = batch.mask.to_dtype(dtype).unwrap();
    let counts = batch.counts.to_dtype(dtype).unwrap();
    (nll * mask)
        .unwrap()
        .sum(1)
        .unwrap()
        .div(&counts)
        .unwrap()
        .sum_all()
        .unwrap()
}
