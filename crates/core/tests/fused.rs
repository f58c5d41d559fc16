//! The fused CPU kernels (candle's graph under the native step, the
//! default in f32 on the CPU) against the
//! composition of candle's primitive ops, whose gradients
//! `tests/gradients.rs` checks against finite differences in f64: the same
//! logits, the same gradient for every parameter, the same loss curve.

use candle_core::{DType, Device};
use cfmem_core::*;

mod common;
use common::{max_abs, max_abs_diff};

fn cfg(tie: bool) -> ModelConfig {
    ModelConfig {
        vocab_size: 259,
        d_model: 16,
        n_layer: 2,
        n_head: 2,
        d_ff: 32,
        ctx: 12,
        tie_embeddings: tie,
        init_std: 0.2,
        arch: Arch::Gpt2,
    }
}

fn corpus(ctx: usize) -> TokenizedCorpus {
    let docs = (0..6)
        .map(|i| {
            Document::new(
                format!("d{i}"),
                format!("document {i}: the quick brown fox {i}"),
            )
        })
        .collect();
    TokenizedCorpus::new(&Corpus::from_documents(docs).unwrap(), &ByteTokenizer, ctx).unwrap()
}

#[test]
fn the_native_step_is_the_cpu_f32_default_and_its_graph_is_fused() {
    let m = Gpt::new(&cfg(true), &[1], DType::F32, &Device::Cpu).unwrap();
    assert_eq!(m.kernels(), Kernels::Native);
    assert!(m.kernels().fused());
    assert_eq!(m.with_kernels(Kernels::Fused).kernels(), Kernels::Fused);
    let m = Gpt::new(&cfg(true), &[1], DType::F64, &Device::Cpu).unwrap();
    assert_eq!(m.kernels(), Kernels::Composed);
    // Asking for fused kernels where none exist keeps the composition.
    assert_eq!(m.with_kernels(Kernels::Fused).kernels(), Kernels::Composed);
    let m = Gpt::new(&cfg(true), &[1], DType::F64, &Device::Cpu).unwrap();
    assert_eq!(m.with_kernels(Kernels::Native).kernels(), Kernels::Composed);
}

#[test]
fn fused_and_composed_models_agree_on_logits_and_every_gradient() {
    for tie in [true, false] {
        let c = cfg(tie);
        let tc = corpus(c.ctx);
        let dev = Device::Cpu;
        let fused = Gpt::new(&c, &[3, 4], DType::F32, &dev).unwrap();
        let composed = Gpt::new(&c, &[3, 4], DType::F32, &dev)
            .unwrap()
            .with_kernels(Kernels::Composed);
        let batch = tc.batch(&[tc.windows(0), tc.windows(1)], 2, &dev).unwrap();
        let run = |m: &Gpt| {
            let logits = m.forward(&batch.ids).unwrap();
            let nll = token_nll_with(&logits, &batch.targets, m.kernels()).unwrap();
            let loss = (nll * &batch.mask).unwrap().sum_all().unwrap();
            (logits, loss.backward().unwrap())
        };
        let (lf, gf) = run(&fused);
        let (lc, gc) = run(&composed);
        let d = max_abs_diff(&lf, &lc);
        assert!(d < 1e-4, "logits differ by {d} (tie={tie})");
        for (pf, pc) in fused.params().iter().zip(composed.params()) {
            let a = gf
                .get(pf.var.as_tensor())
                .unwrap_or_else(|| panic!("{}: no gradient from the fused kernels", pf.name));
            let b = gc.get(pc.var.as_tensor()).unwrap();
            let scale = max_abs(b);
            let d = max_abs_diff(a, b);
            assert!(
                d <= 1e-3 * scale.max(1e-2),
                "{}: gradients differ by {d} (scale {scale}, tie={tie})",
                pf.name
            );
        }
    }
}

#[test]
fn fused_training_follows_the_composed_loss_curve() {
    let c = cfg(true);
    let tc = corpus(c.ctx);
    let tcfg = TrainConfig {
        epochs: 4,
        batch_size: 4,
        ..Default::default()
    };
    let jobs: Vec<ModelJob> = (0..2)
        .map(|i| ModelJob {
            model: i,
            subset: Subset::from_copies(&[1, 1, 0, 1, 2, 1]),
            init_seed: 10 + i as u64,
            data_seed: 20 + i as u64,
        })
        .collect();
    let train = |k: Kernels| {
        let mut losses = Vec::new();
        let Trained { model: m, stats } = Ensemble::new(&c, &tcfg, &tc, &jobs)
            .kernels(k)
            .train(None)
            .unwrap();
        for s in &stats {
            losses.push(s.final_loss.unwrap());
        }
        (m, losses)
    };
    let (mf, lf) = train(Kernels::Fused);
    let (mc, lc) = train(Kernels::Composed);
    assert_eq!(mf.kernels(), Kernels::Fused);
    assert_eq!(mc.kernels(), Kernels::Composed);
    for (a, b) in lf.iter().zip(&lc) {
        assert!((a - b).abs() < 1e-3 * b.abs(), "final loss {a} vs {b}");
    }
    for k in 0..2 {
        let (wf, wc) = (mf.model_weights(k).unwrap(), mc.model_weights(k).unwrap());
        for ((p, a), b) in mf.params().iter().zip(&wf).zip(&wc) {
            // The key bias has an exactly zero gradient (softmax ignores a
            // shift shared by a query's scores); both paths compute float
            // noise around zero, which Adam's normalisation turns into
            // steps of size lr. Its query and value parts are compared.
            let d_model = c.d_model;
            let skip =
                |i: usize| p.name.ends_with("attn.b_qkv") && (d_model..2 * d_model).contains(&i);
            let d = a
                .iter()
                .zip(b)
                .enumerate()
                .filter(|(i, _)| !skip(*i))
                .fold(0f32, |m, (_, (x, y))| m.max((x - y).abs()));
            assert!(
                d < 1e-3,
                "model {k} {}: weights differ by {d} after training",
                p.name
            );
        }
    }
}
