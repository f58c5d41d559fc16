//! Shared by the kernels' tests: each fused op against the composition of
//! candle's primitive ops (values and gradients) and against central finite
//! differences of its own forward pass.

use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub(crate) type Op = dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>;

pub(crate) fn rand_vec(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| scale * (rng.gen::<f32>() * 2.0 - 1.0))
        .collect()
}

/// `inputs`: (values, shape, differentiable). Non-differentiable inputs
/// (ids, targets) are passed as u32 values.
pub(crate) fn check(inputs: &[(Vec<f32>, Vec<usize>, bool)], fused: &Op, composed: &Op, tol: f32) {
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let make = |vals: &[(Vec<f32>, Vec<usize>, bool)]| -> (Vec<Tensor>, Vec<Option<Var>>) {
        let mut ts = Vec::new();
        let mut vars = Vec::new();
        for (v, shape, diff) in vals {
            if *diff {
                let var = Var::from_vec(v.clone(), shape.as_slice(), &dev).unwrap();
                ts.push(var.as_tensor().clone());
                vars.push(Some(var));
            } else {
                let ids: Vec<u32> = v.iter().map(|&x| x as u32).collect();
                ts.push(Tensor::from_vec(ids, shape.as_slice(), &dev).unwrap());
                vars.push(None);
            }
        }
        (ts, vars)
    };
    let (ts, vars) = make(inputs);
    let yf = fused(&ts).unwrap();
    let yc = composed(&ts).unwrap();
    assert_eq!(yf.dims(), yc.dims());
    let w = Tensor::from_vec(rand_vec(&mut rng, yf.elem_count(), 1.0), yf.shape(), &dev).unwrap();
    let diff = (&yf - &yc).unwrap().abs().unwrap().max_all().unwrap();
    let diff: f32 = diff.to_scalar().unwrap();
    assert!(diff < tol, "forward differs from the composition by {diff}");
    let loss = |y: &Tensor| (y * &w).unwrap().sum_all().unwrap();
    let gf = loss(&yf).backward().unwrap();
    let gc = loss(&yc).backward().unwrap();
    for (i, var) in vars.iter().enumerate() {
        let Some(var) = var else { continue };
        let a = gf.get(var.as_tensor()).expect("fused op gave no gradient");
        let b = gc
            .get(var.as_tensor())
            .expect("composition gave no gradient");
        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        let worst = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            worst <= tol * scale.max(1.0),
            "input {i}: gradient differs from the composition by {worst} (scale {scale})"
        );
        assert!(a.iter().any(|&v| v != 0.0), "input {i}: zero gradient");
        // Central differences of the fused forward at a few positions.
        let n = inputs[i].0.len();
        for pos in [0, n / 3, n / 2, n - 1] {
            let eps = 1e-2f32;
            let eval = |delta: f32| -> f64 {
                let mut shifted = inputs.to_vec();
                shifted[i].0[pos] += delta;
                let (ts, _) = make(&shifted);
                let y = fused(&ts).unwrap();
                let l: f32 = loss(&y).to_scalar().unwrap();
                f64::from(l)
            };
            let fd = (eval(eps) - eval(-eps)) / (2.0 * f64::from(eps));
            let an = f64::from(a[pos]);
            assert!(
                (fd - an).abs() <= 2e-2 * an.abs().max(fd.abs()).max(0.5),
                "input {i} at {pos}: finite difference {fd} vs analytic {an}"
            );
        }
    }
}
