//! cfmem's logits against Hugging Face transformers' on tiny random
//! checkpoints of GPT-2, GPT-NeoX (Pythia) and a Llama-style model (one of
//! them sharded), read from the model directories `transformers` wrote
//! (`crates/core/tests/fixtures/hf/`, made by `scripts/check-hf.sh`, which
//! can also point this test at fresh ones through `CFMEM_HF_FIXTURES`).
//! Also: the same weights written back in Hugging Face's layout read the
//! same, and what cfmem cannot take is refused by name.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use cfmem_core::*;

fn fixtures() -> PathBuf {
    std::env::var_os("CFMEM_HF_FIXTURES").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf")),
        PathBuf::from,
    )
}

/// The model a checkpoint directory gives (`K` = 1) and its logits for
/// the fixture's input ids, with transformers' logits.
fn logits(name: &str) -> (Gpt, Vec<f32>, Vec<f32>, usize) {
    let dir = fixtures().join(name);
    let ck = Checkpoint::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
    // The checkpoints' own vocabulary (GPT-2's reader keeps the model's,
    // the other families' take at least the checkpoint's).
    let base = ModelConfig {
        vocab_size: 96,
        ..ModelConfig::tiny()
    };
    let cfg = ck.shape_model(&base);
    let model = Gpt::from_weights(
        &cfg,
        &ck.weights_for(&cfg).unwrap(),
        1,
        DType::F32,
        &Device::Cpu,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let expected =
        candle_core::safetensors::load(dir.join("expected.safetensors"), &Device::Cpu).unwrap();
    let ids = expected["input_ids"].to_dtype(DType::U32).unwrap();
    let (b, t) = ids.dims2().unwrap();
    let want = expected["logits"]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let v = want.len() / (b * t);
    let got = model
        .logits(&ids.unsqueeze(0).unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    (model, got, want, v)
}

/// `max |got − want| / max |want|` over the checkpoint's vocabulary (cfmem's
/// model may have more columns).
fn relative_error(got: &[f32], want: &[f32], v: usize) -> f32 {
    let cols = got.len() / (want.len() / v);
    let mut worst = 0f32;
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
    for (r, w) in want.chunks(v).enumerate() {
        for (j, &x) in w.iter().enumerate() {
            worst = worst.max((got[r * cols + j] - x).abs());
        }
    }
    worst / scale
}

#[test]
fn logits_match_transformers_for_every_family() {
    for (name, family) in [
        ("gpt2", "gpt2"),
        ("gpt_neox", "gpt_neox"),
        ("llama", "llama"),
        ("llama_sharded", "llama"),
    ] {
        let (model, got, want, v) = logits(name);
        assert_eq!(model.config().arch.name(), family, "{name}");
        let err = relative_error(&got, &want, v);
        eprintln!("{name}: largest difference {err:.2e} of the largest logit");
        assert!(err <= 1e-5, "{name}: logits differ by {err:e} relative");
    }
}

#[test]
fn weights_written_back_in_hugging_face_s_layout_read_the_same() {
    for name in ["gpt_neox", "llama"] {
        let (model, got, _, _) = logits(name);
        let dir = tempfile::tempdir().unwrap();
        Checkpoint::save_hf(&model, 0, dir.path()).unwrap();
        let ck = Checkpoint::load(dir.path()).unwrap();
        let cfg = ck.shape_model(model.config());
        assert_eq!(&cfg, model.config(), "{name}: the shape read back");
        let again = Gpt::from_weights(
            &cfg,
            &ck.weights_for(&cfg).unwrap(),
            1,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        for (a, b) in model
            .model_weights(0)
            .unwrap()
            .iter()
            .zip(again.model_weights(0).unwrap())
        {
            assert_eq!(a, &b, "{name}: a tensor changed on the way out and back");
        }
        let ids = Tensor::from_vec(vec![3u32, 1, 4, 1, 5], (1, 1, 5), &Device::Cpu).unwrap();
        let logits = |m: &Gpt| -> Vec<f32> {
            let l = m.logits(&ids).unwrap();
            l.flatten_all().unwrap().to_vec1().unwrap()
        };
        assert_eq!(logits(&model), logits(&again));
        assert!(!got.is_empty());
    }
}

#[test]
fn what_cfmem_cannot_take_is_refused_by_name() {
    let dir = fixtures().join("llama");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    let with = |key: &str, value: serde_json::Value| {
        let mut c = config.clone();
        c[key] = value;
        let bytes = serde_json::to_vec(&c).unwrap();
        Checkpoint::from_bytes_with_config(&weights, Some(&bytes))
            .unwrap_err()
            .to_string()
    };
    let e = with("model_type", "mamba".into());
    assert!(e.contains("mamba"), "{e}");
    let e = with("attention_bias", true.into());
    assert!(e.contains("attention_bias"), "{e}");
    let e = with("hidden_act", "gelu".into());
    assert!(e.contains("hidden_act"), "{e}");
    let e = with(
        "rope_parameters",
        serde_json::json!({"rope_type": "yarn", "rope_theta": 1e4}),
    );
    assert!(e.contains("rope_type") && e.contains("yarn"), "{e}");
    let e = with("num_hidden_layers", 3.into());
    let _ = e;
    // A layer the config promises and the weights lack is named.
    let mut c = config.clone();
    c["num_hidden_layers"] = 3.into();
    let e = Checkpoint::from_bytes_with_config(&weights, Some(&serde_json::to_vec(&c).unwrap()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.layers.2.self_attn.q_proj.weight"), "{e}");
    // A directory without weights.
    let empty = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("config.json"), empty.path().join("config.json")).unwrap();
    let e = Checkpoint::load(empty.path()).unwrap_err().to_string();
    assert!(e.contains("model.safetensors"), "{e}");
}
