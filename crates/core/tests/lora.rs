//! LoRA on every family: the adapters are the only trained parameters and
//! every one gets a gradient that central finite differences agree with (in
//! f64, and f32's agrees with f64's); the base is held once, gets no
//! gradient (f32 on the CPU) and does not change in training; every adapter moves; a fresh model is its base; a trained
//! model saved whole (updates merged) or as adapters gives back its logits;
//! training repeats bit for bit; bad settings are refused.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use cfmem_core::*;

mod common;
use common::{batch_loss, check_gradients, max_abs_diff};

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
        ("gpt2", base.clone()),
        (
            "neox, untied",
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
            "llama, grouped keys",
            ModelConfig {
                arch: Arch::Llama(LlamaConfig {
                    n_kv_head: 2,
                    ..LlamaConfig::default()
                }),
                ..base
            },
        ),
    ]
}

fn data(ctx: usize) -> TokenizedCorpus {
    let corpus = Corpus::from_documents(vec![
        Document::new("a", "hello world, again"),
        Document::new("b", "the quick brown fox"),
    ])
    .unwrap();
    TokenizedCorpus::new(&corpus, &ByteTokenizer, ctx).unwrap()
}

/// A random base of shape `cfg`, saved to `dir` and read back.
fn base(cfg: &ModelConfig, dir: &Path) -> Checkpoint {
    let m = Gpt::new(cfg, &[11], DType::F32, &Device::Cpu).unwrap();
    let path = dir.join("base.safetensors");
    Checkpoint::save(&m, 0, &path).unwrap();
    Checkpoint::load(&path).unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Give every `B` values away from zero (each model its own), so that
/// every `A` gets a gradient too.
fn wake(model: &Gpt) {
    for p in model.params().iter().filter(|p| p.name.contains("lora_b")) {
        let t = p.var.as_tensor();
        let v: Vec<f64> = (0..t.elem_count())
            .map(|i| 0.5 * (i as f64 * 1.7 + 0.3).sin())
            .collect();
        let v = Tensor::from_vec(v, t.shape(), &Device::Cpu).unwrap();
        p.var.set(&v.to_dtype(t.dtype()).unwrap()).unwrap();
    }
}

#[test]
fn only_the_adapters_train_and_their_gradients_agree_with_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    let h = 1e-5;
    for (name, cfg) in shapes() {
        let ck = base(&cfg, dir.path());
        let lora = Lora::parse("3:6").unwrap();
        let weights = ck.weights_for(&cfg).unwrap();
        let model =
            Gpt::from_weights_lora(&cfg, &weights, &lora, &[5, 6], DType::F64, &Device::Cpu)
                .unwrap();
        // The trained parameters are the adapters, 2 per projection, each
        // with the ensemble axis; the base is one copy for both models.
        let projections = match cfg.arch {
            Arch::Llama(_) => 5,
            _ => 4,
        };
        assert_eq!(
            model.params().len(),
            cfg.n_layer * projections * 2,
            "{name}"
        );
        let adapters: usize = model.params().iter().map(|p| p.var.elem_count()).sum();
        assert_eq!(adapters, 2 * lora.n_params(&cfg), "{name}");
        assert!(model.params().iter().all(|p| p.name.contains(".lora_")));
        assert!(model.params().iter().all(|p| p.var.dims()[0] == 2));
        assert!(model.frozen().iter().all(|f| f.tensor.dims()[0] == 1));
        let base_numel: usize = model.frozen().iter().map(|f| f.tensor.elem_count()).sum();
        assert_eq!(base_numel, cfg.n_params(), "{name}");
        wake(&model);
        let tc = data(cfg.ctx);
        let batch = tc
            .batch(&[tc.windows(0), tc.windows(1)], 2, &Device::Cpu)
            .unwrap();
        let grads = batch_loss(&model, &batch).backward().unwrap();
        // In f32 on the CPU the base's products compute no weight gradient
        // (candle's own product would), and the adapters' gradients are
        // the f64 ones.
        let model32 =
            Gpt::from_weights_lora(&cfg, &weights, &lora, &[5, 6], DType::F32, &Device::Cpu)
                .unwrap();
        wake(&model32);
        let grads32 = batch_loss(&model32, &batch).backward().unwrap();
        for f in model32.frozen() {
            assert!(
                grads32.get(&f.tensor).is_none(),
                "{name}: the frozen {} got a gradient",
                f.name
            );
        }
        for (p, q) in model.params().iter().zip(model32.params()) {
            let g64 = values(grads.get(p.var.as_tensor()).unwrap());
            let g32 = values(grads32.get(q.var.as_tensor()).unwrap());
            let scale = g64.iter().fold(0f64, |m, x| m.max(x.abs()));
            let err = g64
                .iter()
                .zip(&g32)
                .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                err <= 1e-4 * scale,
                "{name}: {}: f32 off by {err} of {scale}",
                p.name
            );
        }
        check_gradients(name, &model, &batch, &grads, h);
    }
}

#[test]
fn a_fresh_model_is_its_base_and_training_moves_every_adapter_and_no_base_weight() {
    let dir = tempfile::tempdir().unwrap();
    for (name, cfg) in shapes() {
        let ck = base(&cfg, dir.path());
        let tc = data(cfg.ctx);
        let jobs: Vec<ModelJob> = (0..2)
            .map(|m| ModelJob {
                model: m,
                subset: Subset::from_copies(&[1, m as u32]),
                init_seed: 30 + m as u64,
                data_seed: 40 + m as u64,
            })
            .collect();
        let train = |epochs| TrainConfig {
            epochs,
            batch_size: 2,
            lr: 1e-2,
            lora: Some(Lora::rank(2)),
            ..Default::default()
        };
        let full = Gpt::from_weights(
            &cfg,
            &ck.weights_for(&cfg).unwrap(),
            1,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let fresh = Gpt::from_weights_lora(
            &cfg,
            &ck.weights_for(&cfg).unwrap(),
            &Lora::rank(2),
            &[30, 31],
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let ids = tc.batch(&[tc.windows(0)], 1, &Device::Cpu).unwrap().ids;
        let ids2 = Tensor::cat(&[&ids, &ids], 0).unwrap();
        let base_logits = full.forward(&ids).unwrap();
        let lora_logits = fresh.forward(&ids2).unwrap();
        for m in 0..2 {
            let d = max_abs_diff(&lora_logits.get(m).unwrap(), &base_logits.get(0).unwrap());
            assert!(
                d < 1e-5,
                "{name}: a fresh model {m} differs from its base by {d}"
            );
        }
        let short = train(3);
        let one = Ensemble::new(&cfg, &short, &tc, &jobs)
            .init(&ck)
            .train(None)
            .unwrap();
        for p in one.model.params() {
            let fresh_p = fresh.params().iter().find(|q| q.name == p.name).unwrap();
            for m in 0..2 {
                let moved = max_abs_diff(
                    &p.var.as_tensor().get(m).unwrap(),
                    &fresh_p.var.as_tensor().get(m).unwrap(),
                );
                assert!(moved > 0.0, "{name}: {} of model {m} did not move", p.name);
            }
        }
        for (f, g) in one.model.frozen().iter().zip(fresh.frozen()) {
            assert_eq!(
                values(&f.tensor),
                values(&g.tensor),
                "{name}: the base's {} changed",
                f.name
            );
        }
        // The same jobs again give the same adapters, bit for bit.
        let again = Ensemble::new(&cfg, &short, &tc, &jobs)
            .init(&ck)
            .train(None)
            .unwrap();
        for (p, q) in one.model.params().iter().zip(again.model.params()) {
            assert_eq!(
                values(p.var.as_tensor()),
                values(q.var.as_tensor()),
                "{name}"
            );
        }
        // Longer training lowers the loss.
        let long = Ensemble::new(&cfg, &train(30), &tc, &jobs[..1])
            .init(&ck)
            .train(None)
            .unwrap();
        let (l0, l1) = (
            one.stats[0].final_loss.unwrap(),
            long.stats[0].final_loss.unwrap(),
        );
        assert!(l1 < 0.8 * l0, "{name}: loss {l0} → {l1}");
    }
}

#[test]
fn a_trained_model_saved_whole_or_as_adapters_gives_its_logits_back() {
    let dir = tempfile::tempdir().unwrap();
    for (name, cfg) in shapes() {
        let ck = base(&cfg, dir.path());
        let tc = data(cfg.ctx);
        let lora = Lora {
            targets: vec![
                "attn".into(),
                match cfg.arch {
                    Arch::Llama(_) => "down".into(),
                    _ => "fc".into(),
                },
            ],
            ..Lora::parse("2:3").unwrap()
        };
        let model = Gpt::from_weights_lora(
            &cfg,
            &ck.weights_for(&cfg).unwrap(),
            &lora,
            &[1, 2],
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        // attention's two projections and one MLP projection per block
        assert_eq!(model.params().len(), cfg.n_layer * 3 * 2, "{name}");
        let adapters: usize = model.params().iter().map(|p| p.var.elem_count()).sum();
        assert_eq!(adapters, 2 * lora.n_params(&cfg), "{name}");
        wake(&model);
        let ids = tc.batch(&[tc.windows(1)], 1, &Device::Cpu).unwrap().ids;
        let ids2 = Tensor::cat(&[&ids, &ids], 0).unwrap();
        let want = model.forward(&ids2).unwrap().get(1).unwrap();
        // Whole, in Hugging Face's layout, the updates merged.
        let whole = dir.path().join(format!("whole-{}", cfg.arch.name()));
        Checkpoint::save_hf(&model, 1, &whole).unwrap();
        let path = if cfg.arch.is_gpt2() {
            whole.join("model.safetensors")
        } else {
            whole.clone()
        };
        let merged = Checkpoint::load(&path).unwrap();
        let shaped = merged.shape_model(&cfg);
        let back = Gpt::from_weights(
            &shaped,
            &merged.weights_for(&shaped).unwrap(),
            1,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let got = back.forward(&ids).unwrap().get(0).unwrap();
        let d = max_abs_diff(&got, &want);
        assert!(d < 1e-4, "{name}: merged logits differ by {d}");
        // Adapters only, read back on top of the base.
        let file = dir.path().join("adapters.safetensors");
        Checkpoint::save(&model, 1, &file).unwrap();
        let adapters = Checkpoint::load(&file).unwrap();
        let err = Gpt::from_weights(&cfg, &adapters.weights(), 1, DType::F32, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("wte"),
            "{name}: the adapters' file holds more: {err}"
        );
        let both = ck.with_adapters(&adapters).unwrap();
        let again = Gpt::from_weights_lora(
            &cfg,
            &both.weights_for(&cfg).unwrap(),
            &lora,
            &[99],
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let got = again.forward(&ids).unwrap().get(0).unwrap();
        let d = max_abs_diff(&got, &want);
        assert!(d < 1e-5, "{name}: reloaded adapters' logits differ by {d}");
        assert!(ck.with_adapters(&ck).is_err());
    }
}

#[test]
fn lora_settings_that_cannot_run_are_refused() {
    let cfg = shapes()[2].1.clone();
    let dir = tempfile::tempdir().unwrap();
    let ck = base(&cfg, dir.path());
    let tc = data(cfg.ctx);
    let job = [ModelJob {
        model: 0,
        subset: Subset::from_copies(&[1, 1]),
        init_seed: 1,
        data_seed: 2,
    }];
    let with = |lora: Lora, precision| TrainConfig {
        epochs: 1,
        lora: Some(lora),
        precision,
        ..Default::default()
    };
    // No base to adapt.
    let t = with(Lora::rank(2), Precision::Fp32);
    let e = Ensemble::new(&cfg, &t, &tc, &job).train(None).unwrap_err();
    assert!(matches!(e, Error::Lora(_)), "{e}");
    // bf16 products are the native step's, which trains every parameter.
    let gpt2 = shapes()[0].1.clone();
    let t = with(Lora::rank(2), Precision::Bf16);
    assert!(matches!(t.check_for(&gpt2), Err(Error::Lora(_))));
    // A target the family does not have, named with those it has.
    let fc = Lora {
        targets: vec!["fc".into()],
        ..Lora::rank(2)
    };
    let e = with(fc.clone(), Precision::Fp32)
        .check_for(&cfg)
        .unwrap_err();
    assert!(matches!(e, Error::LoraTarget { .. }), "{e}");
    assert!(e.to_string().contains("gate"), "{e}");
    assert!(with(fc, Precision::Fp32).check_for(&gpt2).is_ok());
    let e = Ensemble::new(
        &cfg,
        &with(
            Lora {
                rank: 0,
                ..Lora::rank(2)
            },
            Precision::Fp32,
        ),
        &tc,
        &job,
    )
    .init(&ck)
    .train(None)
    .unwrap_err();
    assert!(e.to_string().contains("lora.rank"), "{e}");
    for bad in ["", "x", "4:", "4:y", "-1"] {
        assert!(Lora::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(Lora::parse("4").unwrap().alpha, 8.0);
    assert_eq!(Lora::parse("4:4").unwrap().scale(), 1.0);
}
