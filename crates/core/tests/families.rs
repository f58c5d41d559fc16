//! The rotary families (GPT-NeoX, Llama-style) through candle's composed
//! graph: every parameter gets a gradient that agrees with central finite
//! differences in f64, every parameter moves in training, the parameter
//! counts and names hold, and bad settings are refused.

use candle_core::{DType, Device, Tensor};
use cfmem_core::*;

mod common;
use common::batch_loss;

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
        for p in model.params() {
            let t = p.var.as_tensor();
            let g: Vec<f64> = grads
                .get(t)
                .unwrap_or_else(|| panic!("{name}: {} has no gradient", p.name))
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let half = g.len() / 2;
            for m in 0..2 {
                assert!(
                    g[m * half..(m + 1) * half].iter().any(|&x| x != 0.0),
                    "{name}: {} of model {m} has a zero gradient",
                    p.name
                );
            }
            let orig: Vec<f64> = t.flatten_all().unwrap().to_vec1().unwrap();
            let argmax = |r: std::ops::Range<usize>| {
                r.max_by(|&a, &b| g[a].abs().partial_cmp(&g[b].abs()).unwrap())
                    .unwrap()
            };
            for idx in [argmax(0..half), argmax(half..g.len())] {
                let at = |delta: f64| -> f64 {
                    let mut v = orig.clone();
                    v[idx] += delta;
                    p.var
                        .set(&Tensor::from_vec(v, t.shape(), &dev).unwrap())
                        .unwrap();
                    batch_loss(&model, &batch).to_scalar().unwrap()
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
