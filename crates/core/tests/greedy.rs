//! Greedy continuation against a model worked out by hand: with every
//! block's weights zero, the residual stream is the token's embedding; with
//! one-hot embeddings, the final layer norm is largest at the token itself,
//! so a permutation as the output head makes the model write the
//! permutation's image of the last token, step after step.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use cfmem_core::*;

fn cfg() -> ModelConfig {
    ModelConfig {
        vocab_size: 4,
        d_model: 4,
        n_layer: 1,
        n_head: 1,
        d_ff: 4,
        ctx: 8,
        tie_embeddings: false,
        init_std: 0.02,
        arch: Arch::Gpt2,
    }
}

/// `P[i][(i + shift) % 4] = 1`.
fn shift(s: usize) -> Tensor {
    let mut m = vec![0f32; 16];
    for i in 0..4 {
        m[i * 4 + (i + s) % 4] = 1.0;
    }
    Tensor::from_vec(m, (4, 4), &Device::Cpu).unwrap()
}

#[test]
fn greedy_writes_what_the_hand_worked_model_predicts() {
    let z = |r: usize, c: usize| Tensor::zeros((r, c), DType::F32, &Device::Cpu).unwrap();
    let o = |c: usize| Tensor::ones((1, c), DType::F32, &Device::Cpu).unwrap();
    let mut w: HashMap<String, Tensor> = HashMap::new();
    w.insert(
        "wte".into(),
        Tensor::eye(4, DType::F32, &Device::Cpu).unwrap(),
    );
    w.insert("wpe".into(), z(8, 4));
    for (n, t) in [
        ("ln1.g", o(4)),
        ("ln1.b", z(1, 4)),
        ("attn.w_qkv", z(4, 12)),
        ("attn.b_qkv", z(1, 12)),
        ("attn.w_o", z(4, 4)),
        ("attn.b_o", z(1, 4)),
        ("ln2.g", o(4)),
        ("ln2.b", z(1, 4)),
        ("mlp.w_fc", z(4, 4)),
        ("mlp.b_fc", z(1, 4)),
        ("mlp.w_proj", z(4, 4)),
        ("mlp.b_proj", z(1, 4)),
    ] {
        w.insert(format!("h.0.{n}"), t);
    }
    w.insert("ln_f.g".into(), o(4));
    w.insert("ln_f.b".into(), z(1, 4));
    w.insert("w_head".into(), shift(1));
    let vb = candle_nn::VarBuilder::from_tensors(w, DType::F32, &Device::Cpu);
    let model = Gpt::from_weights(&cfg(), &vb, 2, DType::F32, &Device::Cpu).unwrap();
    // Model 1 of the ensemble writes the image under a shift of 2.
    let head = model.params().iter().find(|p| p.name == "w_head").unwrap();
    head.var
        .set(&Tensor::stack(&[shift(1), shift(2)], 0).unwrap())
        .unwrap();
    let out = greedy(&model, &[vec![0], vec![3]], 5, &Device::Cpu).unwrap();
    assert_eq!(out[0], vec![vec![1, 2, 3, 0, 1], vec![0, 1, 2, 3, 0]]);
    assert_eq!(out[1], vec![vec![2, 0, 2, 0, 2], vec![1, 3, 1, 3, 1]]);
    // Longer prompts: only the last token matters to this model.
    let out = greedy(&model, &[vec![2, 2, 1]], 2, &Device::Cpu).unwrap();
    assert_eq!(out[0][0], vec![2, 3]);
    // Prompt + steps beyond the context, and ragged prompts, are refused.
    assert!(greedy(&model, &[vec![0; 6]], 4, &Device::Cpu).is_err());
    assert!(greedy(&model, &[vec![0], vec![0, 1]], 1, &Device::Cpu).is_err());
    assert_eq!(
        greedy(&model, &[vec![0; 6]], 3, &Device::Cpu).unwrap()[0][0].len(),
        3
    );
}
