//! Every parameter gets a gradient, moves after a step, and autograd agrees
//! with central finite differences (in f64) on a tiny model.

use candle_core::{DType, Device, Tensor};
use cfmem_core::*;

mod common;
use common::batch_loss;

fn tiny_cfg(tie: bool) -> ModelConfig {
    ModelConfig {
        vocab_size: 259,
        d_model: 8,
        n_layer: 2,
        n_head: 2,
        d_ff: 16,
        ctx: 6,
        tie_embeddings: tie,
        init_std: 0.3,
        arch: Arch::Gpt2,
    }
}

fn data(ctx: usize) -> TokenizedCorpus {
    let corpus = Corpus::from_documents(vec![
        Document::new("a", "hello wor"),
        Document::new("b", "abc"),
    ])
    .unwrap();
    TokenizedCorpus::new(&corpus, &ByteTokenizer, ctx).unwrap()
}

#[test]
fn every_parameter_gets_a_nonzero_gradient() {
    for tie in [true, false] {
        let cfg = tiny_cfg(tie);
        let tc = data(cfg.ctx);
        let model = Gpt::new(&cfg, &[1, 2], DType::F32, &Device::Cpu).unwrap();
        let w0 = tc.windows(0);
        let w1 = tc.windows(1);
        let batch = tc.batch(&[w0, w1], 2, &Device::Cpu).unwrap();
        let grads = batch_loss(&model, &batch).backward().unwrap();
        for p in model.params() {
            let g = grads
                .get(p.var.as_tensor())
                .unwrap_or_else(|| panic!("{} has no gradient (tie={tie})", p.name));
            // Each ensemble member's slice must be non-zero on its own.
            for k in 0..2 {
                let norm: f32 = g
                    .get(k)
                    .unwrap()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar()
                    .unwrap();
                assert!(
                    norm > 0.0,
                    "{} model {k}: zero gradient (tie={tie})",
                    p.name
                );
            }
        }
    }
}

#[test]
fn every_parameter_moves_after_one_training_step() {
    let cfg = tiny_cfg(false);
    let tc = data(cfg.ctx);
    let before = Gpt::new(&cfg, &[5], DType::F32, &Device::Cpu).unwrap();
    let tcfg = TrainConfig {
        epochs: 1,
        batch_size: 8,
        ..Default::default()
    };
    let job = ModelJob {
        model: 0,
        subset: Subset::from_copies(&[1, 1]),
        init_seed: 5,
        data_seed: 3,
    };
    let Trained {
        model: after,
        stats,
    } = Ensemble::new(&cfg, &tcfg, &tc, &[job]).train(None).unwrap();
    assert_eq!(stats[0].steps, 1);
    let (w0, w1) = (
        before.model_weights(0).unwrap(),
        after.model_weights(0).unwrap(),
    );
    for ((p, a), b) in after.params().iter().zip(&w0).zip(&w1) {
        let moved = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(moved > 0.0, "{} did not move", p.name);
    }
}

#[test]
fn autograd_matches_finite_differences() {
    let cfg = tiny_cfg(false);
    let tc = data(cfg.ctx);
    let dev = Device::Cpu;
    let model = Gpt::new(&cfg, &[7, 8], DType::F64, &dev).unwrap();
    let batch = tc.batch(&[tc.windows(0), tc.windows(1)], 2, &dev).unwrap();
    let grads = batch_loss(&model, &batch).backward().unwrap();
    let h = 1e-5;
    let mut checked = 0;
    for p in model.params() {
        let t = p.var.as_tensor();
        let g: Vec<f64> = grads
            .get(t)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let orig: Vec<f64> = t.flatten_all().unwrap().to_vec1().unwrap();
        // Three entries per parameter: the largest-gradient one of each model, and a middle one.
        let half = orig.len() / 2;
        let argmax = |r: std::ops::Range<usize>| {
            r.max_by(|&a, &b| g[a].abs().partial_cmp(&g[b].abs()).unwrap())
                .unwrap()
        };
        for idx in [argmax(0..half), argmax(half..orig.len()), half / 2] {
            let eval_at = |delta: f64| {
                let mut v = orig.clone();
                v[idx] += delta;
                p.var
                    .set(&Tensor::from_vec(v, t.shape(), &dev).unwrap())
                    .unwrap();
                let l: f64 = batch_loss(&model, &batch).to_scalar().unwrap();
                l
            };
            let fd = (eval_at(h) - eval_at(-h)) / (2.0 * h);
            eval_at(0.0);
            let tol = 1e-6 + 1e-4 * fd.abs().max(g[idx].abs());
            assert!(
                (fd - g[idx]).abs() < tol,
                "{}[{idx}]: autograd {} vs fd {fd}",
                p.name,
                g[idx]
            );
            checked += 1;
        }
    }
    assert!(checked >= 3 * model.params().len());
}
