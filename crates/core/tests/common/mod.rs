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

/// For every trained parameter of `model` (an f64 ensemble of two): each
/// model's part of its gradient in `grads` is non-zero, and at each
/// model's largest entry it agrees with central finite differences (step
/// `h`) of [`batch_loss`]. `name` labels the failures.
pub fn check_gradients(
    name: &str,
    model: &cfmem_core::Gpt,
    batch: &cfmem_core::Batch,
    grads: &candle_core::backprop::GradStore,
    h: f64,
) {
    let values = |t: &Tensor| -> Vec<f64> { t.flatten_all().unwrap().to_vec1().unwrap() };
    for p in model.params() {
        let t = p.var.as_tensor();
        let g = values(
            grads
                .get(t)
                .unwrap_or_else(|| panic!("{name}: {} has no gradient", p.name)),
        );
        let half = g.len() / 2;
        for m in 0..2 {
            assert!(
                g[m * half..(m + 1) * half].iter().any(|&x| x != 0.0),
                "{name}: {} of model {m} has a zero gradient",
                p.name
            );
        }
        let orig = values(t);
        let argmax = |r: std::ops::Range<usize>| {
            r.max_by(|&a, &b| g[a].abs().partial_cmp(&g[b].abs()).unwrap())
                .unwrap()
        };
        for idx in [argmax(0..half), argmax(half..g.len())] {
            let at = |delta: f64| -> f64 {
                let mut v = orig.clone();
                v[idx] += delta;
                p.var
                    .set(&Tensor::from_vec(v, t.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                batch_loss(model, batch).to_scalar().unwrap()
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            at(0.0);
            let tol = 1e-6 + 1e-4 * fd.abs().max(g[idx].abs());
            assert!(
                (fd - g[idx]).abs() < tol,
                "{name}: {}[{idx}]: autograd {} vs finite differences {fd}",
                p.name,
                g[idx]
            );
        }
    }
}
