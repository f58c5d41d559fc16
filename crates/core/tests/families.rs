//! The rotary families (GPT-NeoX, Llama-style) through candle's graph:
//! every parameter gets a gradient that agrees with central finite
//! differences in f64 (and the fused graph's in f32 the composed one's),
//! every parameter moves in training, a repeat gives the same weights, the
//! parameter counts and names hold, and bad settings are refused.

use candle_core::{DType, Device, Tensor};
use cfmem_core::*;

mod common;
use common::{batch_loss, check_gradients};

fn shapes() -> Vec<(&'static str, ModelConfig)> {
    let base = ModelConfig {
        vocab_size: 259,
        d_model: 16,
        n_layer: 2,
        n_head: 4,
        d_ff: 24,
        ctx: 7,
        tie_embeddings: true,
        init_std: 0.3,
        arch: Arch::Gpt2,
    };
    vec![
        (
            "neox parallel, untied",
            ModelConfig {
                tie_embeddings: false,
                arch: Arch::NeoX(NeoXConfig {
                    rotary_pct: 0.5,
                    ..NeoXConfig::default()
                }),
                ..base.clone()
            },
        ),
        (
            "neox sequential",
            ModelConfig {
                arch: Arch::NeoX(NeoXConfig {
                    rotary_pct: 1.0,
                    parallel_residual: false,
                    rotary_base: 100.0,
                    norm_eps: 1e-6,
                }),
                ..base.clone()
            },
        ),
        (
            "llama, grouped keys, tied",
            ModelConfig {
                arch: Arch::Llama(LlamaConfig {
                    n_kv_head: 2,
                    ..LlamaConfig::default()
                }),
                ..base.clone()
            },
        ),
        (
            "llama, one key head, untied",
            ModelConfig {
                tie_embeddings: false,
                arch: Arch::Llama(LlamaConfig {
                    n_kv_head: 1,
                    rope_theta: 500.0,
                    norm_eps: 1e-6,
                }),
                ..base
            },
        ),
    ]
}

fn data(ctx: usize) -> TokenizedCorpus {
    let corpus = Corpus::from_documents(vec![
        Document::new("a", "hello world, again"),
        Document::new("b", "abc"),
    ])
    .unwrap();
    TokenizedCorpus::new(&corpus, &ByteTokenizer, ctx).unwrap()
}

#[test]
fn every_parameter_gets_a_gradient_that_finite_differences_agree_with() {
    for (name, cfg) in shapes() {
        let tc = data(cfg.ctx);
        let dev = Device::Cpu;
        let model = Gpt::new(&cfg, &[7, 8], DType::F64, &dev).unwrap();
        assert_eq!(model.kernels(), Kernels::Composed, "{name}");
        let total: usize = model.params().iter().map(|p| p.var.elem_count()).sum();
        assert_eq!(total, 2 * cfg.n_params(), "{name}: parameter count");
        let batch = tc.batch(&[tc.windows(0), tc.windows(1)], 2, &dev).unwrap();
        let grads = batch_loss(&model, &batch).backward().unwrap();
        let h = 1e-5;
        check_gradients(name, &model, &batch, &grads, h);
    }
}

#[test]
fn every_parameter_moves_in_training_and_the_loss_falls() {
    for (name, cfg) in shapes() {
        let tc = data(cfg.ctx);
        let before = Gpt::new(&cfg, &[3], DType::F32, &Device::Cpu).unwrap();
        let job = [ModelJob {
            model: 0,
            subset: Subset::from_copies(&[1, 1]),
            init_seed: 3,
            data_seed: 4,
        }];
        let short = TrainConfig {
            epochs: 1,
            batch_size: 4,
            ..Default::default()
        };
        let long = TrainConfig {
            epochs: 30,
            ..short.clone()
        };
        let one = Ensemble::new(&cfg, &short, &tc, &job).train(None).unwrap();
        for ((p, a), b) in one
            .model
            .params()
            .iter()
            .zip(before.model_weights(0).unwrap())
            .zip(one.model.model_weights(0).unwrap())
        {
            assert!(a != b, "{name}: {} did not move", p.name);
        }
        // The same job again gives the same weights, bit for bit.
        let again = Ensemble::new(&cfg, &short, &tc, &job).train(None).unwrap();
        assert_eq!(
            one.model.model_weights(0).unwrap(),
            again.model.model_weights(0).unwrap(),
            "{name}: a repeat differs"
        );
        let trained = Ensemble::new(&cfg, &long, &tc, &job).train(None).unwrap();
        let (l0, l1) = (
            one.stats[0].final_loss.unwrap(),
            trained.stats[0].final_loss.unwrap(),
        );
        assert!(l1 < 0.67 * l0, "{name}: loss {l0} → {l1}");
        // bf16 runs on the native step, which is GPT-2's.
        let bf16 = TrainConfig {
            precision: Precision::Bf16,
            ..short.clone()
        };
        assert!(matches!(
            Ensemble::new(&cfg, &bf16, &tc, &job).train(None),
            Err(Error::Precision { .. })
        ));
    }
}

#[test]
fn settings_a_family_cannot_take_are_refused() {
    let llama = |n_kv_head| ModelConfig {
        arch: Arch::Llama(LlamaConfig {
            n_kv_head,
            ..LlamaConfig::default()
        }),
        ..ModelConfig::tiny()
    };
    assert!(llama(2).check().is_ok());
    for bad in [0, 3] {
        let e = llama(bad).check().unwrap_err().to_string();
        assert!(e.contains("n_kv_head"), "{e}");
    }
    // A rotary part of an odd width cannot rotate in halves.
    let neox = ModelConfig {
        d_model: 24,
        n_head: 4,
        arch: Arch::NeoX(NeoXConfig {
            rotary_pct: 0.5,
            ..NeoXConfig::default()
        }),
        ..ModelConfig::tiny()
    };
    let e = neox.check().unwrap_err().to_string();
    assert!(e.contains("rotary"), "{e}");
    // The family is part of the config's JSON only when it is not GPT-2.
    let json = serde_json::to_value(ModelConfig::tiny()).unwrap();
    assert!(json.get("arch").is_none());
    let json = serde_json::to_value(llama(2)).unwrap();
    assert_eq!(json["arch"]["family"], "llama");
    let back: ModelConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, llama(2));
}

/// The training loss with `model`'s own kernels (the fused cross-entropy
/// where it runs them).
fn kernel_loss(model: &Gpt, batch: &Batch) -> Tensor {
    let logits = model.forward(&batch.ids).unwrap();
    let nll = token_nll_with(&logits, &batch.targets, model.kernels()).unwrap();
    (nll * &batch.mask)
        .unwrap()
        .sum(1)
        .unwrap()
        .div(&batch.counts)
        .unwrap()
        .sum_all()
        .unwrap()
}

#[test]
fn the_fused_graph_gives_the_composed_graph_s_loss_and_gradients() {
    for (name, cfg) in shapes() {
        let tc = data(cfg.ctx);
        let dev = Device::Cpu;
        let fused = Gpt::new(&cfg, &[7, 8], DType::F32, &dev).unwrap();
        assert_eq!(fused.kernels(), Kernels::Fused, "{name}");
        let composed = Gpt::new(&cfg, &[7, 8], DType::F32, &dev)
            .unwrap()
            .with_kernels(Kernels::Composed);
        assert_eq!(composed.kernels(), Kernels::Composed, "{name}");
        let batch = tc.batch(&[tc.windows(0), tc.windows(1)], 2, &dev).unwrap();
        let (lf, lc) = (kernel_loss(&fused, &batch), kernel_loss(&composed, &batch));
        let (a, b): (f32, f32) = (lf.to_scalar().unwrap(), lc.to_scalar().unwrap());
        assert!((a - b).abs() <= 1e-5 * b.abs(), "{name}: loss {a} vs {b}");
        let (gf, gc) = (lf.backward().unwrap(), lc.backward().unwrap());
        for (p, q) in fused.params().iter().zip(composed.params()) {
            let x = gf.get(p.var.as_tensor()).unwrap();
            let y = gc.get(q.var.as_tensor()).unwrap();
            let scale = common::max_abs(y);
            let diff = common::max_abs_diff(x, y);
            assert!(
                diff <= 1e-4 * scale,
                "{name}: {}: fused and composed gradients differ by {diff} of {scale}",
                p.name
            );
        }
    }
}
