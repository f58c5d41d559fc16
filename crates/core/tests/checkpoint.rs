//! Fine-tuning from a checkpoint: a saved model loads to the same logits;
//! every model of an ensemble starts from it; on that path every parameter
//! gets a gradient, moves, and agrees with finite differences; training is
//! deterministic; weights that do not fit are refused, listing what is
//! wrong.

use candle_core::{DType, Device, Tensor};
use cfmem_core::*;

fn cfg() -> ModelConfig {
    ModelConfig {
        vocab_size: 259,
        d_model: 8,
        n_layer: 2,
        n_head: 2,
        d_ff: 16,
        ctx: 6,
        tie_embeddings: false,
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

fn job(model: usize, copies: &[u32]) -> ModelJob {
    ModelJob {
        model,
        subset: Subset::from_copies(copies),
        init_seed: 100 + model as u64,
        data_seed: 3,
    }
}

fn train_cfg() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 2,
        ..Default::default()
    }
}

/// A "pretrained" model: one model trained on everything, saved.
fn pretrained(dir: &std::path::Path) -> (Gpt, std::path::PathBuf) {
    let (c, tc) = (cfg(), data(cfg().ctx));
    let t = Ensemble::new(&c, &train_cfg(), &tc, &[job(0, &[1, 1])])
        .train(None)
        .unwrap();
    let path = dir.join("base.safetensors");
    Checkpoint::save(&t.model, 0, &path).unwrap();
    (t.model, path)
}

#[test]
fn a_saved_model_loads_to_the_same_logits_in_every_ensemble_member() {
    let dir = tempfile::tempdir().unwrap();
    let (base, path) = pretrained(dir.path());
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(
        ck.fingerprint(),
        blake3::hash(&std::fs::read(&path).unwrap())
            .to_hex()
            .to_string()
    );
    assert_eq!(ck.names().len(), base.params().len());
    let loaded = Gpt::from_weights(&cfg(), &ck.weights(), 3, DType::F32, &Device::Cpu).unwrap();
    let tc = data(cfg().ctx);
    let one = tc.batch(&[tc.windows(0)], 1, &Device::Cpu).unwrap();
    let want: Vec<f32> = base
        .forward(&one.ids)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let three = tc
        .batch(
            &[tc.windows(0), tc.windows(0), tc.windows(0)],
            1,
            &Device::Cpu,
        )
        .unwrap();
    let got = loaded.forward(&three.ids).unwrap();
    for k in 0..3 {
        let g: Vec<f32> = got
            .get(k)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(g, want, "ensemble member {k}");
    }
    // Saving is deterministic: the same weights give the same file.
    let again = dir.path().join("again.safetensors");
    Checkpoint::save(&loaded, 2, &again).unwrap();
    assert_eq!(
        Checkpoint::load(&again).unwrap().fingerprint(),
        ck.fingerprint()
    );
}

#[test]
fn fine_tuning_moves_every_parameter_deterministically_and_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (base, path) = pretrained(dir.path());
    let ck = Checkpoint::load(&path).unwrap();
    let (c, tc) = (cfg(), data(cfg().ctx));
    let jobs = [job(0, &[1, 0]), job(1, &[0, 1])];
    let run = || {
        Ensemble::new(&c, &train_cfg(), &tc, &jobs)
            .init(&ck)
            .train(None)
            .unwrap()
    };
    let (a, b) = (run(), run());
    let w0 = base.model_weights(0).unwrap();
    for k in 0..2 {
        let (wa, wb) = (
            a.model.model_weights(k).unwrap(),
            b.model.model_weights(k).unwrap(),
        );
        assert_eq!(wa, wb, "fine-tuning must be deterministic (model {k})");
        for ((p, before), after) in a.model.params().iter().zip(&w0).zip(&wa) {
            let moved = before
                .iter()
                .zip(after)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(moved > 0.0, "{} of model {k} did not move", p.name);
            // Fine-tuned from the checkpoint, not from scratch: close to it.
            let scale = before.iter().map(|x| x.abs()).fold(0f32, f32::max).max(1.0);
            assert!(moved < 0.5 * scale, "{} of model {k} moved {moved}", p.name);
        }
    }
    // The two subsets give different models.
    assert_ne!(
        a.model.model_weights(0).unwrap(),
        a.model.model_weights(1).unwrap()
    );
}

#[test]
fn gradients_from_a_checkpoint_are_nonzero_and_match_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = pretrained(dir.path());
    let ck = Checkpoint::load(&path).unwrap();
    let dev = Device::Cpu;
    let model = Gpt::from_weights(&cfg(), &ck.weights(), 2, DType::F64, &dev).unwrap();
    let tc = data(cfg().ctx);
    let batch = tc.batch(&[tc.windows(0), tc.windows(1)], 2, &dev).unwrap();
    let loss = |m: &Gpt| -> Tensor {
        let logits = m.forward(&batch.ids).unwrap();
        let nll = token_nll(&logits, &batch.targets).unwrap();
        (nll * batch.mask.to_dtype(DType::F64).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let grads = loss(&model).backward().unwrap();
    let h = 1e-5;
    for p in model.params() {
        let t = p.var.as_tensor();
        let g: Vec<f64> = grads
            .get(t)
            .unwrap_or_else(|| panic!("{} has no gradient", p.name))
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(g.iter().any(|x| *x != 0.0), "{}: zero gradient", p.name);
        let orig: Vec<f64> = t.flatten_all().unwrap().to_vec1().unwrap();
        let idx = (0..g.len())
            .max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()))
            .unwrap();
        let at = |delta: f64| {
            let mut v = orig.clone();
            v[idx] += delta;
            p.var
                .set(&Tensor::from_vec(v, t.shape(), &dev).unwrap())
                .unwrap();
            let l: f64 = loss(&model).to_scalar().unwrap();
            l
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        at(0.0);
        assert!(
            (fd - g[idx]).abs() < 1e-6 + 1e-4 * fd.abs().max(g[idx].abs()),
            "{}[{idx}]: autograd {} vs fd {fd}",
            p.name,
            g[idx]
        );
    }
}

#[test]
fn weights_that_do_not_fit_are_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = pretrained(dir.path());
    let ck = Checkpoint::load(&path).unwrap();
    let wider = ModelConfig { d_ff: 32, ..cfg() };
    let err = Gpt::from_weights(&wider, &ck.weights(), 1, DType::F32, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("h.0.mlp.w_fc") && err.contains("d_ff 32"),
        "{err}"
    );
    let deeper = ModelConfig {
        n_layer: 3,
        ..cfg()
    };
    let err = Gpt::from_weights(&deeper, &ck.weights(), 1, DType::F32, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("h.2.attn.w_qkv (shape [8, 24]) is missing"),
        "{err}"
    );
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"not safetensors").unwrap();
    let err = Checkpoint::load(&bad).unwrap_err().to_string();
    assert!(
        err.contains("bad.safetensors") && err.contains("safetensors"),
        "{err}"
    );
}

/// Hugging Face GPT-2 names for cfmem's, with the `transformer.` prefix.
fn gpt2_name(name: &str) -> String {
    let n = match name {
        "wte" => "wte.weight".to_string(),
        "wpe" => "wpe.weight".to_string(),
        "ln_f.g" => "ln_f.weight".to_string(),
        "ln_f.b" => "ln_f.bias".to_string(),
        _ => {
            let (layer, part) = name.strip_prefix("h.").unwrap().split_once('.').unwrap();
            let p = match part {
                "ln1.g" => "ln_1.weight",
                "ln1.b" => "ln_1.bias",
                "attn.w_qkv" => "attn.c_attn.weight",
                "attn.b_qkv" => "attn.c_attn.bias",
                "attn.w_o" => "attn.c_proj.weight",
                "attn.b_o" => "attn.c_proj.bias",
                "ln2.g" => "ln_2.weight",
                "ln2.b" => "ln_2.bias",
                "mlp.w_fc" => "mlp.c_fc.weight",
                "mlp.b_fc" => "mlp.c_fc.bias",
                "mlp.w_proj" => "mlp.c_proj.weight",
                "mlp.b_proj" => "mlp.c_proj.bias",
                other => panic!("{other}"),
            };
            format!("h.{layer}.{p}")
        }
    };
    format!("transformer.{n}")
}

#[test]
fn a_gpt2_layout_checkpoint_gives_the_logits_of_the_same_weights_in_cfmem_layout() {
    let dir = tempfile::tempdir().unwrap();
    let tied = ModelConfig {
        tie_embeddings: true,
        ..cfg()
    };
    let base = Gpt::new(&tied, &[11], DType::F32, &Device::Cpu).unwrap();
    // cfmem's layout, with the three framing ids' embeddings zeroed (a
    // GPT-2 checkpoint has none: they start at zero).
    let mut own = std::collections::HashMap::new();
    let mut hf = std::collections::HashMap::new();
    for p in base.params() {
        let t = p.var.as_tensor().get(0).unwrap();
        let t = if p.name == "wte" {
            let real = t.narrow(0, 0, 256).unwrap();
            let zeros = Tensor::zeros((3, 8), DType::F32, &Device::Cpu).unwrap();
            hf.insert(gpt2_name("wte"), real.clone());
            Tensor::cat(&[&real, &zeros], 0).unwrap()
        } else if p.name == "wpe" {
            // GPT-2 has more positions than the model's context.
            let extra = Tensor::ones((4, 8), DType::F32, &Device::Cpu).unwrap();
            hf.insert(gpt2_name("wpe"), Tensor::cat(&[&t, &extra], 0).unwrap());
            t
        } else {
            // Gains and biases are 1-D in GPT-2.
            let h = if t.dims()[0] == 1 {
                t.squeeze(0).unwrap()
            } else {
                t.clone()
            };
            hf.insert(gpt2_name(&p.name), h);
            t
        };
        own.insert(p.name.clone(), t);
    }
    // What GPT2LMHeadModel's file also holds: the tied head and mask buffers.
    hf.insert(
        "lm_head.weight".into(),
        hf["transformer.wte.weight"].clone(),
    );
    hf.insert(
        "transformer.h.0.attn.bias".into(),
        Tensor::ones((1, 1, 10, 10), DType::F32, &Device::Cpu).unwrap(),
    );
    let (own_path, hf_path) = (
        dir.path().join("own.safetensors"),
        dir.path().join("model.safetensors"),
    );
    candle_core::safetensors::save(&own, &own_path).unwrap();
    candle_core::safetensors::save(&hf, &hf_path).unwrap();
    // Without its config.json the number of heads is unknown: refused.
    let err = Checkpoint::load(&hf_path).unwrap_err().to_string();
    assert!(
        err.contains("config.json") && err.contains("n_head"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"n_head": 2, "n_embd": 8, "n_layer": 2, "n_positions": 10, "activation_function": "gelu_new"}"#,
    )
    .unwrap();
    let ck = Checkpoint::load(&hf_path).unwrap();
    let shape = ck.gpt2_shape().unwrap();
    assert_eq!(
        (
            shape.d_model,
            shape.n_layer,
            shape.n_head,
            shape.d_ff,
            shape.n_positions,
            shape.vocab
        ),
        (8, 2, 2, 16, 10, 256)
    );
    // The model takes the checkpoint's shape; the context stays the asked one.
    let shaped = ck.shape_model(&ModelConfig {
        d_model: 64,
        n_head: 4,
        ..tied.clone()
    });
    assert_eq!((shaped.d_model, shaped.n_head, shaped.ctx), (8, 2, 6));
    let from_hf = Gpt::from_weights(
        &shaped,
        &ck.weights_for(&shaped).unwrap(),
        1,
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let own_ck = Checkpoint::load(&own_path).unwrap();
    assert!(own_ck.gpt2_shape().is_none());
    let from_own =
        Gpt::from_weights(&tied, &own_ck.weights(), 1, DType::F32, &Device::Cpu).unwrap();
    let tc = data(tied.ctx);
    let batch = tc.batch(&[tc.windows(0)], 1, &Device::Cpu).unwrap();
    let a: Vec<f32> = from_hf
        .forward(&batch.ids)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let b: Vec<f32> = from_own
        .forward(&batch.ids)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(a, b);
    // Another activation is refused.
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"n_head": 2, "activation_function": "relu"}"#,
    )
    .unwrap();
    let err = Checkpoint::load(&hf_path).unwrap_err().to_string();
    assert!(err.contains("relu"), "{err}");
}

#[test]
fn a_model_saved_in_gpt2_layout_loads_back_to_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let tied = ModelConfig {
        tie_embeddings: true,
        ..cfg()
    };
    let m = Gpt::new(&tied, &[4, 5], DType::F32, &Device::Cpu).unwrap();
    let path = dir.path().join("model.safetensors");
    Checkpoint::save_gpt2(&m, 1, &path).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["n_head"], 2);
    assert_eq!(config["vocab_size"], 259);
    let ck = Checkpoint::load(&path).unwrap();
    assert!(ck.names().contains(&"h.1.attn.w_qkv"));
    let shaped = ck.shape_model(&tied);
    assert_eq!(shaped, tied);
    let back = Gpt::from_weights(
        &shaped,
        &ck.weights_for(&shaped).unwrap(),
        1,
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let tc = data(tied.ctx);
    let two = tc
        .batch(&[tc.windows(0), tc.windows(0)], 1, &Device::Cpu)
        .unwrap();
    let one = tc.batch(&[tc.windows(0)], 1, &Device::Cpu).unwrap();
    let want: Vec<f32> = m
        .forward(&two.ids)
        .unwrap()
        .get(1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let got: Vec<f32> = back
        .forward(&one.ids)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(got, want);
    // Untied embeddings have no GPT-2 layout.
    let untied = Gpt::new(&cfg(), &[1], DType::F32, &Device::Cpu).unwrap();
    assert!(Checkpoint::save_gpt2(&untied, 0, dir.path().join("x.safetensors")).is_err());
}
