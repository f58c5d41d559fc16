//! Hugging Face checkpoints of the rotary families: a model directory as
//! `transformers` writes it (`config.json`, `model.safetensors` or its
//! shards with `model.safetensors.index.json`, and `tokenizer.json`), its
//! `config.json` checked and turned into a [`ModelConfig`], its tensors
//! into cfmem's parameters, and back.
//!
//! | family (`model_type`) | tensors read | turned into |
//! |---|---|---|
//! | `llama` (`LlamaForCausalLM`) | `model.embed_tokens`, `model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj}`, `model.norm`, `lm_head` (untied) | `wte`, `h.N.ln1.g`, `h.N.attn.w_qkv` = `[q | k | v]ᵀ`, `h.N.attn.w_o`, `h.N.ln2.g`, `h.N.mlp.w_{gate,up,down}`, `ln_f.g`, `w_head` |
//! | `gpt_neox` (`GPTNeoXForCausalLM`) | `gpt_neox.embed_in`, `gpt_neox.layers.N.{input_layernorm, attention.{query_key_value, dense}, post_attention_layernorm, mlp.{dense_h_to_4h, dense_4h_to_h}}`, `gpt_neox.final_layer_norm`, `embed_out` | `wte`, `h.N.ln1.{g,b}`, `h.N.attn.{w,b}_qkv` (the per-head `[q k v]` rows regrouped as `q | k | v`), `h.N.attn.{w,b}_o`, `h.N.ln2.{g,b}`, `h.N.mlp.{w,b}_{fc,proj}`, `ln_f.{g,b}`, `w_head` |
//!
//! Linear weights are stored `[out, in]` by `transformers` and `[in, out]`
//! by cfmem (transposed on the way in and out). Settings cfmem does not
//! implement are refused by name: rotary scaling (`rope_type` other than
//! `default`), biases where the family has none (`attention_bias`,
//! `mlp_bias`), another activation, a head width other than
//! `hidden_size / num_attention_heads`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::error::{Error, HfProblem, Result};
use crate::model::{Arch, Gpt, LlamaConfig, ModelConfig, NeoXConfig};

/// The shape a Hugging Face `config.json` describes, for the families
/// read here.
#[derive(Debug, Clone, PartialEq)]
pub struct HfShape {
    /// The family and its settings.
    pub arch: Arch,
    /// `hidden_size`.
    pub d_model: usize,
    /// `num_hidden_layers`.
    pub n_layer: usize,
    /// `num_attention_heads`.
    pub n_head: usize,
    /// `intermediate_size`.
    pub d_ff: usize,
    /// `max_position_embeddings`.
    pub n_positions: usize,
    /// `vocab_size` (the embedding's rows).
    pub vocab: usize,
    /// `tie_word_embeddings`.
    pub tie: bool,
}

impl HfShape {
    /// `model` with this shape: the family, the widths, the tying, the
    /// context clamped to the positions, and a vocabulary of at least the
    /// embedding's rows (cfmem's three framing ids get zero rows where the
    /// checkpoint has none).
    pub fn model(&self, model: &ModelConfig) -> ModelConfig {
        ModelConfig {
            d_model: self.d_model,
            n_layer: self.n_layer,
            n_head: self.n_head,
            d_ff: self.d_ff,
            ctx: model.ctx.min(self.n_positions),
            vocab_size: model.vocab_size.max(self.vocab),
            tie_embeddings: self.tie,
            arch: self.arch.clone(),
            ..model.clone()
        }
    }
}

fn problem(p: HfProblem) -> Error {
    Error::Hf(p)
}

/// A number in the config, by its first present name.
fn number(cfg: &Value, names: &[&str]) -> Option<f64> {
    names
        .iter()
        .find_map(|n| cfg.get(*n).and_then(Value::as_f64))
}

/// A count in the config, required.
fn count(cfg: &Value, name: &'static str) -> Result<usize> {
    cfg.get(name)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .ok_or_else(|| problem(HfProblem::Missing(name)))
}

/// The rotary settings: `rope_parameters` (transformers 5) or the older
/// top-level `rope_theta`/`rotary_emb_base`, `rope_scaling`,
/// `rotary_pct`; anything but the default rotary refused.
fn rotary(cfg: &Value, base_names: &[&str], pct_names: &[&str]) -> Result<(f64, f64)> {
    let params = cfg.get("rope_parameters").filter(|v| v.is_object());
    let kind = params
        .and_then(|p| p.get("rope_type"))
        .or_else(|| cfg.get("rope_scaling").and_then(|s| s.get("rope_type")))
        .and_then(Value::as_str)
        .unwrap_or("default");
    if kind != "default" || cfg.get("rope_scaling").is_some_and(|s| !s.is_null()) {
        return Err(problem(HfProblem::Unsupported {
            option: "rope_type",
            value: kind.to_string(),
        }));
    }
    let from = |names: &[&str], inner: &str| {
        params
            .and_then(|p| p.get(inner))
            .and_then(Value::as_f64)
            .or_else(|| number(cfg, names))
    };
    let base = from(base_names, "rope_theta").unwrap_or(10_000.0);
    let pct = from(pct_names, "partial_rotary_factor").unwrap_or(1.0);
    Ok((base, pct))
}

/// A boolean option that must be `want` (absent: `default`).
fn flag(cfg: &Value, option: &'static str, default: bool, want: bool) -> Result<bool> {
    let v = cfg.get(option).and_then(Value::as_bool).unwrap_or(default);
    if v != want {
        return Err(problem(HfProblem::Unsupported {
            option,
            value: v.to_string(),
        }));
    }
    Ok(v)
}

/// The family and shape of a `config.json` (`None` for GPT-2, which
/// [`crate::Checkpoint`] reads on its own).
///
/// # Errors
/// [`Error::Hf`] for an unknown `model_type`, a missing field or an
/// option cfmem does not implement, named.
pub fn shape(config: &[u8]) -> Result<Option<HfShape>> {
    let cfg: Value = serde_json::from_slice(config).map_err(|e| problem(HfProblem::Config(e)))?;
    // GPT-2's configs (and configs without a model type, such as the
    // `n_head`-only ones a GPT-2-layout file may carry) are read by the
    // GPT-2 reader, which needs only `n_head`.
    let kind = match cfg.get("model_type").and_then(Value::as_str) {
        None | Some("gpt2") => return Ok(None),
        Some(kind) => kind,
    };
    let (d, h) = (
        count(&cfg, "hidden_size")?,
        count(&cfg, "num_attention_heads")?,
    );
    let arch = match kind {
        "llama" => {
            let act = cfg
                .get("hidden_act")
                .and_then(Value::as_str)
                .unwrap_or("silu");
            if act != "silu" {
                return Err(problem(HfProblem::Unsupported {
                    option: "hidden_act",
                    value: act.to_string(),
                }));
            }
            flag(&cfg, "attention_bias", false, false)?;
            flag(&cfg, "mlp_bias", false, false)?;
            let (rope_theta, _) = rotary(&cfg, &["rope_theta"], &[])?;
            Arch::Llama(LlamaConfig {
                n_kv_head: cfg
                    .get("num_key_value_heads")
                    .and_then(Value::as_u64)
                    .map_or(h, |v| v as usize),
                rope_theta,
                norm_eps: number(&cfg, &["rms_norm_eps"]).unwrap_or(1e-6),
            })
        }
        "gpt_neox" => {
            let act = cfg
                .get("hidden_act")
                .and_then(Value::as_str)
                .unwrap_or("gelu");
            if act != "gelu" {
                return Err(problem(HfProblem::Unsupported {
                    option: "hidden_act",
                    value: act.to_string(),
                }));
            }
            flag(&cfg, "attention_bias", true, true)?;
            let (rotary_base, rotary_pct) =
                rotary(&cfg, &["rotary_emb_base", "rope_theta"], &["rotary_pct"])?;
            Arch::NeoX(NeoXConfig {
                rotary_pct,
                rotary_base,
                parallel_residual: cfg
                    .get("use_parallel_residual")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                norm_eps: number(&cfg, &["layer_norm_eps"]).unwrap_or(1e-5),
            })
        }
        other => return Err(problem(HfProblem::ModelType(other.to_string()))),
    };
    if let Some(hd) = cfg.get("head_dim").and_then(Value::as_u64) {
        if h == 0 || hd as usize * h != d {
            return Err(problem(HfProblem::Unsupported {
                option: "head_dim",
                value: hd.to_string(),
            }));
        }
    }
    let tie_default = matches!(arch, Arch::Llama(_));
    Ok(Some(HfShape {
        arch,
        d_model: d,
        n_layer: count(&cfg, "num_hidden_layers")?,
        n_head: h,
        d_ff: count(&cfg, "intermediate_size")?,
        n_positions: count(&cfg, "max_position_embeddings")?,
        vocab: count(&cfg, "vocab_size")?,
        tie: cfg
            .get("tie_word_embeddings")
            .and_then(Value::as_bool)
            .unwrap_or(tie_default),
    }))
}

/// The files of a model directory: its `config.json` and its weights as
/// one safetensors file (the shards of `model.safetensors.index.json`
/// merged, in the index's order, so that the same checkpoint always gives
/// the same bytes).
///
/// # Errors
/// [`Error::Io`] naming a file that cannot be read; [`Error::Hf`] without
/// weights or with an unreadable index; [`Error::NotSafetensors`].
pub fn read_dir(dir: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let read = |name: &str| -> Result<Vec<u8>> {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|source| Error::Io { path: p, source })
    };
    let config = read("config.json")?;
    if dir.join("model.safetensors").exists() {
        return Ok((config, read("model.safetensors")?));
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        return Err(problem(HfProblem::NoWeights));
    }
    let index: Value = serde_json::from_slice(&read("model.safetensors.index.json")?)
        .map_err(|e| problem(HfProblem::Config(e)))?;
    let map = index
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or(problem(HfProblem::Missing("weight_map")))?;
    let mut files: Vec<&str> = map.values().filter_map(Value::as_str).collect();
    files.sort_unstable();
    files.dedup();
    let mut all = HashMap::new();
    for f in files {
        let t = candle_core::safetensors::load_buffer(&read(f)?, &Device::Cpu)
            .map_err(Error::NotSafetensors)?;
        all.extend(t);
    }
    let bytes = safetensors_bytes(&all)?;
    Ok((config, bytes))
}

/// `tensors` as the bytes of one safetensors file.
fn safetensors_bytes(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort_unstable();
    let views: Vec<(&String, &Tensor)> = names.into_iter().map(|n| (n, &tensors[n])).collect();
    safetensors::tensor::serialize(views, None)
        .map_err(|e| Error::Candle(candle_core::Error::Msg(format!("safetensors: {e}"))))
}

/// `tensors` (Hugging Face's names) in cfmem's names and orientation for
/// a model of `shape`.
///
/// # Errors
/// [`Error::Hf`] listing every tensor that is missing; candle errors.
pub fn convert(
    tensors: &HashMap<String, Tensor>,
    shape: &HfShape,
) -> Result<HashMap<String, Tensor>> {
    let mut missing = Vec::new();
    let mut get = |name: String| -> Option<Tensor> {
        let t = tensors.get(&name).cloned();
        if t.is_none() {
            missing.push(name);
        }
        t
    };
    let mut out: HashMap<String, Tensor> = HashMap::new();
    // [out, in] → [in, out]; 1-D gains and biases → [1, n]; f32.
    let lin = |t: Tensor| -> Result<Tensor> { Ok(t.to_dtype(DType::F32)?.t()?.contiguous()?) };
    let row = |t: Tensor| -> Result<Tensor> { Ok(t.to_dtype(DType::F32)?.unsqueeze(0)?) };
    let (h, d) = (shape.n_head, shape.d_model);
    let hd = d / h.max(1);
    match &shape.arch {
        Arch::Llama(_) => {
            let p = |l: usize, s: &str| format!("model.layers.{l}.{s}.weight");
            if let Some(t) = get("model.embed_tokens.weight".into()) {
                out.insert("wte".into(), t.to_dtype(DType::F32)?);
            }
            for l in 0..shape.n_layer {
                let (q, k, v) = (
                    get(p(l, "self_attn.q_proj")),
                    get(p(l, "self_attn.k_proj")),
                    get(p(l, "self_attn.v_proj")),
                );
                if let (Some(q), Some(k), Some(v)) = (q, k, v) {
                    out.insert(
                        format!("h.{l}.attn.w_qkv"),
                        lin(Tensor::cat(&[&q, &k, &v], 0)?)?,
                    );
                }
                for (theirs, ours, f) in [
                    (
                        "input_layernorm",
                        "ln1.g",
                        row as fn(Tensor) -> Result<Tensor>,
                    ),
                    ("self_attn.o_proj", "attn.w_o", lin),
                    ("post_attention_layernorm", "ln2.g", row),
                    ("mlp.gate_proj", "mlp.w_gate", lin),
                    ("mlp.up_proj", "mlp.w_up", lin),
                    ("mlp.down_proj", "mlp.w_down", lin),
                ] {
                    if let Some(t) = get(p(l, theirs)) {
                        out.insert(format!("h.{l}.{ours}"), f(t)?);
                    }
                }
            }
            if let Some(t) = get("model.norm.weight".into()) {
                out.insert("ln_f.g".into(), row(t)?);
            }
            if !shape.tie {
                if let Some(t) = get("lm_head.weight".into()) {
                    out.insert("w_head".into(), lin(t)?);
                }
            }
        }
        Arch::NeoX(_) => {
            let p = |l: usize, s: &str| format!("gpt_neox.layers.{l}.{s}");
            if let Some(t) = get("gpt_neox.embed_in.weight".into()) {
                out.insert("wte".into(), t.to_dtype(DType::F32)?);
            }
            for l in 0..shape.n_layer {
                // Rows h·3·hd + part·hd + j (each head's q, k, v side by
                // side) regrouped as q | k | v with the heads contiguous.
                if let Some(w) = get(p(l, "attention.query_key_value.weight")) {
                    let w = w.to_dtype(DType::F32)?.reshape((h, 3, hd, d))?;
                    let parts = (0..3)
                        .map(|i| Ok(w.narrow(1, i, 1)?.reshape((h * hd, d))?))
                        .collect::<Result<Vec<_>>>()?;
                    out.insert(format!("h.{l}.attn.w_qkv"), lin(Tensor::cat(&parts, 0)?)?);
                }
                if let Some(b) = get(p(l, "attention.query_key_value.bias")) {
                    let b = b.to_dtype(DType::F32)?.reshape((h, 3, hd))?;
                    let parts = (0..3)
                        .map(|i| Ok(b.narrow(1, i, 1)?.reshape(h * hd)?))
                        .collect::<Result<Vec<_>>>()?;
                    out.insert(format!("h.{l}.attn.b_qkv"), row(Tensor::cat(&parts, 0)?)?);
                }
                for (theirs, ours, f) in [
                    (
                        "input_layernorm.weight",
                        "ln1.g",
                        row as fn(Tensor) -> Result<Tensor>,
                    ),
                    ("input_layernorm.bias", "ln1.b", row),
                    ("attention.dense.weight", "attn.w_o", lin),
                    ("attention.dense.bias", "attn.b_o", row),
                    ("post_attention_layernorm.weight", "ln2.g", row),
                    ("post_attention_layernorm.bias", "ln2.b", row),
                    ("mlp.dense_h_to_4h.weight", "mlp.w_fc", lin),
                    ("mlp.dense_h_to_4h.bias", "mlp.b_fc", row),
                    ("mlp.dense_4h_to_h.weight", "mlp.w_proj", lin),
                    ("mlp.dense_4h_to_h.bias", "mlp.b_proj", row),
                ] {
                    if let Some(t) = get(p(l, theirs)) {
                        out.insert(format!("h.{l}.{ours}"), f(t)?);
                    }
                }
            }
            for (theirs, ours) in [
                ("gpt_neox.final_layer_norm.weight", "ln_f.g"),
                ("gpt_neox.final_layer_norm.bias", "ln_f.b"),
            ] {
                if let Some(t) = get(theirs.into()) {
                    out.insert(ours.into(), row(t)?);
                }
            }
            if !shape.tie {
                if let Some(t) = get("embed_out.weight".into()) {
                    out.insert("w_head".into(), lin(t)?);
                }
            }
        }
        Arch::Gpt2 => {}
    }
    if !missing.is_empty() {
        return Err(problem(HfProblem::Tensors(missing)));
    }
    Ok(out)
}

/// The `config.json` of a model of shape `cfg` in its family's Hugging
/// Face layout (`None` for GPT-2, whose config
/// [`crate::Checkpoint::save_gpt2`] writes): what `transformers` reads, and
/// what `cfmem pretrain` writes beside a checkpoint in cfmem's layout so
/// that the family travels with it.
pub fn config(cfg: &ModelConfig) -> Option<Value> {
    let (h, d) = (cfg.n_head, cfg.d_model);
    let common = serde_json::json!({
        "hidden_size": d,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": h,
        "intermediate_size": cfg.d_ff,
        "max_position_embeddings": cfg.ctx,
        "vocab_size": cfg.vocab_size,
        "tie_word_embeddings": cfg.tie_embeddings,
        "bos_token_id": cfg.vocab_size.saturating_sub(3),
        "eos_token_id": cfg.vocab_size.saturating_sub(2),
    });
    let own = match &cfg.arch {
        Arch::Gpt2 => return None,
        Arch::Llama(l) => serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "num_key_value_heads": l.n_kv_head,
            "rms_norm_eps": l.norm_eps,
            "rope_parameters": {"rope_theta": l.rope_theta, "rope_type": "default"},
            "rope_theta": l.rope_theta,
            "hidden_act": "silu",
            "attention_bias": false,
            "mlp_bias": false,
        }),
        Arch::NeoX(n) => serde_json::json!({
            "architectures": ["GPTNeoXForCausalLM"],
            "model_type": "gpt_neox",
            "layer_norm_eps": n.norm_eps,
            "rope_parameters": {
                "rope_theta": n.rotary_base,
                "partial_rotary_factor": n.rotary_pct,
                "rope_type": "default"
            },
            "rotary_pct": n.rotary_pct,
            "rotary_emb_base": n.rotary_base,
            "use_parallel_residual": n.parallel_residual,
            "hidden_act": "gelu",
            "attention_bias": true,
            "hidden_dropout": 0.0,
            "attention_dropout": 0.0,
        }),
    };
    let mut out = common;
    if let (Some(o), Some(extra)) = (out.as_object_mut(), own.as_object()) {
        o.extend(extra.clone());
    }
    Some(out)
}

/// Model `k` of `model` (a rotary family) in Hugging Face's layout, in
/// `dir` as `transformers` reads it: `model.safetensors` and
/// `config.json` (the embedding keeps all of cfmem's rows, the tokenizer's
/// and the three framing ids).
///
/// # Errors
/// [`Error::Hf`] for a GPT-2 model (see [`crate::Checkpoint::save_gpt2`]);
/// I/O and candle errors.
pub fn save(model: &Gpt, k: usize, dir: &Path) -> Result<()> {
    let cfg = model.config();
    let Some(config) = config(cfg) else {
        return Err(problem(HfProblem::ModelType(
            "gpt2 (saved by Checkpoint::save_gpt2)".into(),
        )));
    };
    let weights: HashMap<String, Tensor> = model
        .member_weights(k)?
        .into_iter()
        .map(|(name, _, t)| (name, t))
        .collect();
    let w = |n: &str| -> Result<Tensor> {
        weights
            .get(n)
            .cloned()
            .ok_or_else(|| problem(HfProblem::Tensors(vec![n.to_string()])))
    };
    let lin = |n: &str| -> Result<Tensor> { Ok(w(n)?.t()?.contiguous()?) };
    let flat = |n: &str| -> Result<Tensor> { Ok(w(n)?.squeeze(0)?) };
    let (h, d) = (cfg.n_head, cfg.d_model);
    let hd = d / h;
    let kv = cfg.arch.n_kv_head(h);
    let mut out = HashMap::new();
    if let Arch::Llama(_) = cfg.arch {
        out.insert("model.embed_tokens.weight".to_string(), w("wte")?);
        for i in 0..cfg.n_layer {
            let p = |s: &str| format!("model.layers.{i}.{s}.weight");
            let qkv = lin(&format!("h.{i}.attn.w_qkv"))?; // [(H + 2KV)·hd, D]
            let rows = |from: usize, n: usize| -> Result<Tensor> {
                Ok(qkv.narrow(0, from * hd, n * hd)?.contiguous()?)
            };
            out.insert(p("self_attn.q_proj"), rows(0, h)?);
            out.insert(p("self_attn.k_proj"), rows(h, kv)?);
            out.insert(p("self_attn.v_proj"), rows(h + kv, kv)?);
            for (ours, theirs, f) in [
                (
                    "ln1.g",
                    "input_layernorm",
                    &flat as &dyn Fn(&str) -> Result<Tensor>,
                ),
                ("attn.w_o", "self_attn.o_proj", &lin),
                ("ln2.g", "post_attention_layernorm", &flat),
                ("mlp.w_gate", "mlp.gate_proj", &lin),
                ("mlp.w_up", "mlp.up_proj", &lin),
                ("mlp.w_down", "mlp.down_proj", &lin),
            ] {
                out.insert(p(theirs), f(&format!("h.{i}.{ours}"))?);
            }
        }
        out.insert("model.norm.weight".to_string(), flat("ln_f.g")?);
        if !cfg.tie_embeddings {
            out.insert("lm_head.weight".to_string(), lin("w_head")?);
        }
    } else {
        out.insert("gpt_neox.embed_in.weight".to_string(), w("wte")?);
        for i in 0..cfg.n_layer {
            let p = |s: &str| format!("gpt_neox.layers.{i}.{s}");
            // q | k | v back to each head's q, k, v side by side.
            let qkv = lin(&format!("h.{i}.attn.w_qkv"))?.reshape((3, h, hd, d))?;
            let qkv = qkv.transpose(0, 1)?.contiguous()?.reshape((3 * d, d))?;
            out.insert(p("attention.query_key_value.weight"), qkv);
            let b = flat(&format!("h.{i}.attn.b_qkv"))?.reshape((3, h, hd))?;
            let b = b.transpose(0, 1)?.contiguous()?.reshape(3 * d)?;
            out.insert(p("attention.query_key_value.bias"), b);
            for (ours, theirs, f) in [
                (
                    "ln1.g",
                    "input_layernorm.weight",
                    &flat as &dyn Fn(&str) -> Result<Tensor>,
                ),
                ("ln1.b", "input_layernorm.bias", &flat),
                ("attn.w_o", "attention.dense.weight", &lin),
                ("attn.b_o", "attention.dense.bias", &flat),
                ("ln2.g", "post_attention_layernorm.weight", &flat),
                ("ln2.b", "post_attention_layernorm.bias", &flat),
                ("mlp.w_fc", "mlp.dense_h_to_4h.weight", &lin),
                ("mlp.b_fc", "mlp.dense_h_to_4h.bias", &flat),
                ("mlp.w_proj", "mlp.dense_4h_to_h.weight", &lin),
                ("mlp.b_proj", "mlp.dense_4h_to_h.bias", &flat),
            ] {
                out.insert(p(theirs), f(&format!("h.{i}.{ours}"))?);
            }
        }
        out.insert(
            "gpt_neox.final_layer_norm.weight".to_string(),
            flat("ln_f.g")?,
        );
        out.insert(
            "gpt_neox.final_layer_norm.bias".to_string(),
            flat("ln_f.b")?,
        );
        let head = if cfg.tie_embeddings {
            w("wte")?
        } else {
            lin("w_head")?
        };
        out.insert("embed_out.weight".to_string(), head);
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join("model.safetensors");
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, safetensors_bytes(&out)?).map_err(|source| Error::Io {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &path).map_err(|source| Error::Io { path, source })?;
    let c = dir.join("config.json");
    std::fs::write(&c, serde_json::to_vec_pretty(&config).unwrap_or_default())
        .map_err(|source| Error::Io { path: c, source })
}
