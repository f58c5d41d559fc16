//! Model weights on disk as safetensors (through candle-nn's `VarMap` and
//! `VarBuilder`): one model of an ensemble saved, and the weights every
//! model of a new ensemble starts from (fine-tuning a pretrained model).
//!
//! Two layouts are read:
//! - cfmem's own: tensors named as [`Gpt::params`] names them (`wte`,
//!   `wpe`, `h.N.attn.w_qkv`, …, `ln_f.g`), f32, without the ensemble axis;
//! - Hugging Face's GPT-2 (`GPT2LMHeadModel`'s `model.safetensors`, with or
//!   without the `transformer.` prefix): `wte.weight`, `wpe.weight`,
//!   `h.N.ln_1`, `h.N.attn.c_attn`, `h.N.attn.c_proj`, `h.N.ln_2`,
//!   `h.N.mlp.c_fc`, `h.N.mlp.c_proj`, `ln_f`. GPT-2's `Conv1D` stores
//!   weights as `[in, out]`, which is cfmem's orientation (`x · W`), and
//!   `c_attn` packs q | k | v with the heads contiguous in each, as
//!   `w_qkv` does; layer norm (ε = 1e-5), tanh-GELU, learned positions and
//!   tied embeddings are the same architecture. The number of heads is not
//!   in the weights: it comes from the `config.json` beside the file
//!   (`n_head`). cfmem frames documents with three ids after the
//!   tokenizer's vocabulary (BOS, EOS, PAD), so the token embedding gets
//!   that many zero rows; positions beyond the model's context are dropped;
//! - Hugging Face's GPT-NeoX and Llama-style models (`crate::hf`), from a
//!   model directory ([`Checkpoint::load`] of the directory: `config.json`,
//!   `model.safetensors` or its shards) or a file with its `config.json`
//!   beside it; the config gives the family and shape
//!   ([`Checkpoint::shape_model`]). A file in cfmem's layout with such a
//!   `config.json` beside it (what `cfmem pretrain` writes for those
//!   families) is read as it is, its family from the config.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use crate::error::{Error, Gpt2Problem, Result};
use crate::hf::{self, HfShape};
use crate::model::{Gpt, ModelConfig};

/// The shape of a GPT-2-layout checkpoint, from its weights and
/// `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gpt2Shape {
    /// Residual width (`n_embd`).
    pub d_model: usize,
    /// Blocks (`n_layer`).
    pub n_layer: usize,
    /// Heads (`n_head`, from `config.json`).
    pub n_head: usize,
    /// MLP width (`4 · n_embd` in GPT-2).
    pub d_ff: usize,
    /// Positions (`n_positions`).
    pub n_positions: usize,
    /// Token embedding rows (the tokenizer's vocabulary).
    pub vocab: usize,
}

/// Weights read from a safetensors file.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    tensors: HashMap<String, Tensor>,
    fingerprint: String,
    gpt2: Option<Gpt2Shape>,
    hf: Option<HfShape>,
}

impl Checkpoint {
    /// Read `path` (the whole file; its blake3 is the checkpoint's
    /// fingerprint).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file; [`Error::Checkpoint`] naming it when it is not
    /// safetensors.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (bytes, config) = Self::files(path)?;
        Self::from_bytes_with_config(&bytes, config.as_deref()).map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// The bytes [`Checkpoint::load`] reads at `path`: a safetensors file
    /// and the `config.json` beside it, or a Hugging Face model directory
    /// (its shards merged into one file, in a fixed order, so the same
    /// checkpoint always gives the same bytes and fingerprint).
    ///
    /// # Errors
    /// [`Error::Io`] naming a file; [`Error::Checkpoint`] naming the
    /// directory for an incomplete one.
    pub fn files(path: &Path) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
        if path.is_dir() {
            let (config, weights) = hf::read_dir(path).map_err(|e| Error::Checkpoint {
                path: path.to_path_buf(),
                source: Box::new(e),
            })?;
            return Ok((weights, Some(config)));
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok((bytes, Self::config_beside(path)))
    }

    /// The Hugging Face `config.json` that goes with the checkpoint at
    /// `path`: `STEM.config.json` beside it, else `config.json` (as a
    /// model repository keeps it).
    pub fn config_beside(path: &Path) -> Option<Vec<u8>> {
        let stem = path.file_stem()?.to_string_lossy().into_owned();
        std::fs::read(path.with_file_name(format!("{stem}.config.json")))
            .or_else(|_| std::fs::read(path.with_file_name("config.json")))
            .ok()
    }

    /// [`Checkpoint::from_bytes`], with the bytes of a Hugging Face
    /// `config.json` for a GPT-2-layout file (its `n_head`).
    ///
    /// # Errors
    /// [`Error::NotSafetensors`] when the bytes are not safetensors, [`Error::Gpt2`] when a GPT-2
    /// layout lacks `n_head` or has an architecture cfmem does not share.
    pub fn from_bytes_with_config(bytes: &[u8], config: Option<&[u8]>) -> Result<Self> {
        let mut c = Self::from_bytes(bytes)?;
        if c.tensors.contains_key("wte.weight") || c.tensors.contains_key("transformer.wte.weight")
        {
            c.convert_gpt2(config)?;
            return Ok(c);
        }
        if let Some(shape) = config.map(hf::shape).transpose()?.flatten() {
            // Hugging Face's names are converted; cfmem's are kept.
            if !c.tensors.contains_key("wte") {
                c.tensors = hf::convert(&c.tensors, &shape)?;
            }
            c.hf = Some(shape);
        }
        Ok(c)
    }

    /// Rename and reshape GPT-2's tensors into cfmem's.
    fn convert_gpt2(&mut self, config: Option<&[u8]>) -> Result<()> {
        let cfg: serde_json::Value = match config {
            Some(b) => {
                serde_json::from_slice(b).map_err(|e| Error::Gpt2(Gpt2Problem::Config(e)))?
            }
            None => return Err(Error::Gpt2(Gpt2Problem::NoConfig)),
        };
        let get = |k: &str| {
            cfg.get(k)
                .and_then(serde_json::Value::as_u64)
                .map(|v| v as usize)
        };
        if let Some(a) = cfg.get("activation_function").and_then(|v| v.as_str()) {
            if !matches!(a, "gelu_new" | "gelu_pytorch_tanh") {
                return Err(Error::Gpt2(Gpt2Problem::Activation(a.to_string())));
            }
        }
        let n_head = get("n_head").ok_or(Error::Gpt2(Gpt2Problem::NoHeads))?;
        // GPT-2's names, generated from the layers for this many blocks.
        let stripped: HashMap<String, Tensor> = std::mem::take(&mut self.tensors)
            .into_iter()
            .map(|(name, t)| {
                let name = name.strip_prefix("transformer.").unwrap_or(&name);
                (name.to_string(), t)
            })
            .collect();
        let n_layer = (0..)
            .take_while(|l| stripped.contains_key(&format!("h.{l}.attn.c_attn.weight")))
            .count();
        let shape = ModelConfig {
            n_layer: n_layer.max(1),
            tie_embeddings: true,
            ..ModelConfig::tiny()
        };
        let mut out = HashMap::new();
        // GPT-2's attention-mask buffers and `lm_head.weight` (the tied
        // token embedding) have no cfmem name and are left out.
        for (ours, theirs) in Gpt::param_names(&shape) {
            let Some(t) = theirs.and_then(|n| stripped.get(&n)) else {
                continue;
            };
            // 1-D gains and biases become [1, n] rows.
            let t = if t.rank() == 1 {
                t.unsqueeze(0)?
            } else {
                t.clone()
            };
            out.insert(ours, t.to_dtype(DType::F32)?);
        }
        let dims = |n: &str| out.get(n).map(|t: &Tensor| t.dims().to_vec());
        let (Some(wte), Some(wpe)) = (dims("wte"), dims("wpe")) else {
            return Err(Error::Gpt2(Gpt2Problem::NoEmbeddings));
        };
        let d_ff = dims("h.0.mlp.w_fc").map_or(4 * wte[1], |d| d[1]);
        self.tensors = out;
        self.gpt2 = Some(Gpt2Shape {
            d_model: wte[1],
            n_layer,
            n_head,
            d_ff,
            n_positions: wpe[0],
            vocab: wte[0],
        });
        Ok(())
    }

    /// The shape of a GPT-2-layout checkpoint (`None` for cfmem's layout).
    pub fn gpt2_shape(&self) -> Option<Gpt2Shape> {
        self.gpt2
    }

    /// The family and shape of a GPT-NeoX or Llama-style checkpoint (from
    /// its `config.json`).
    pub fn hf_shape(&self) -> Option<&HfShape> {
        self.hf.as_ref()
    }

    /// For a GPT-2-layout checkpoint: `model` with the checkpoint's shape
    /// (width, blocks, heads, MLP width, tied embeddings) and its context
    /// clamped to the checkpoint's positions; cfmem's layout leaves `model`
    /// as it is.
    pub fn shape_model(&self, model: &ModelConfig) -> ModelConfig {
        if let Some(h) = &self.hf {
            return h.model(model);
        }
        match self.gpt2 {
            Some(g) => ModelConfig {
                d_model: g.d_model,
                n_layer: g.n_layer,
                n_head: g.n_head,
                d_ff: g.d_ff,
                ctx: model.ctx.min(g.n_positions),
                tie_embeddings: true,
                ..model.clone()
            },
            None => model.clone(),
        }
    }

    /// Weights from the bytes of a safetensors file.
    ///
    /// # Errors
    /// [`Error::NotSafetensors`] when they are not safetensors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(Error::NotSafetensors)?;
        Ok(Self {
            tensors,
            fingerprint: blake3::hash(bytes).to_hex().to_string(),
            gpt2: None,
            hf: None,
        })
    }

    /// blake3 of the file.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    }

    /// The weights as a `VarBuilder` (f32, CPU), for [`Gpt::from_weights`]
    /// with a model of shape `model`. A GPT-2-layout checkpoint's token
    /// embedding gets zero rows up to the model's vocabulary (cfmem's
    /// framing ids), and its positions are cut to the model's context.
    ///
    /// # Errors
    /// Candle errors.
    pub fn weights_for(&self, model: &ModelConfig) -> Result<VarBuilder<'static>> {
        let mut t = self.tensors.clone();
        if self.hf.is_some() {
            // The framing ids' rows (and the head's columns) as zeros.
            if let Some(wte) = t.get("wte").cloned() {
                let (v, d) = wte.dims2()?;
                if v < model.vocab_size {
                    let pad = Tensor::zeros((model.vocab_size - v, d), DType::F32, &Device::Cpu)?;
                    t.insert("wte".into(), Tensor::cat(&[&wte, &pad], 0)?);
                }
            }
            if let Some(w) = t.get("w_head").cloned() {
                let (d, v) = w.dims2()?;
                if v < model.vocab_size {
                    let pad = Tensor::zeros((d, model.vocab_size - v), DType::F32, &Device::Cpu)?;
                    t.insert("w_head".into(), Tensor::cat(&[&w, &pad], 1)?);
                }
            }
        }
        if self.gpt2.is_some() {
            if let Some(wte) = t.get("wte").cloned() {
                let (v, d) = wte.dims2()?;
                if v < model.vocab_size {
                    let pad = Tensor::zeros((model.vocab_size - v, d), DType::F32, &Device::Cpu)?;
                    t.insert("wte".into(), Tensor::cat(&[&wte, &pad], 0)?);
                }
            }
            if let Some(wpe) = t.get("wpe").cloned() {
                if wpe.dims()[0] > model.ctx {
                    t.insert("wpe".into(), wpe.narrow(0, 0, model.ctx)?);
                }
            }
        }
        Ok(VarBuilder::from_tensors(t, DType::F32, &Device::Cpu))
    }

    /// These weights (a LoRA model's base) with `adapters`' tensors (a
    /// LoRA model's saved adapters, [`Checkpoint::save`]) added: what
    /// [`Gpt::from_weights_lora`] reads to give a saved LoRA model back.
    ///
    /// # Errors
    /// [`Error::Lora`] when `adapters` holds a tensor that is not an
    /// adapter.
    pub fn with_adapters(&self, adapters: &Checkpoint) -> Result<Checkpoint> {
        let mut out = self.clone();
        for (name, t) in &adapters.tensors {
            if !name.contains(".lora_") {
                return Err(Error::Lora(
                    "the adapters' file holds weights that are not adapters",
                ));
            }
            out.tensors.insert(name.clone(), t.clone());
        }
        out.fingerprint = format!("{}+{}", self.fingerprint, adapters.fingerprint);
        Ok(out)
    }

    /// The weights as they are, as a `VarBuilder` (f32, CPU).
    pub fn weights(&self) -> VarBuilder<'static> {
        VarBuilder::from_tensors(self.tensors.clone(), DType::F32, &Device::Cpu)
    }

    /// Save model `k` of `model` to `path` (f32; written to a temporary
    /// file and renamed, so that a reader never sees half a file). A LoRA
    /// model's file holds its adapters only (`h.N.attn.lora_a_qkv`, …):
    /// [`Gpt::from_weights_lora`] on the base's weights and these (e.g.
    /// [`Checkpoint::with_adapters`]) gives the model back, and
    /// [`Checkpoint::save_hf`] writes it whole, the updates merged.
    ///
    /// # Errors
    /// [`Error::NoSuchMember`] for `k` out of range; I/O and candle errors.
    pub fn save(model: &Gpt, k: usize, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if k >= model.k() {
            return Err(Error::NoSuchMember { k, n: model.k() });
        }
        let map = VarMap::new();
        {
            let mut data = map
                .data()
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for p in model.params() {
                data.insert(p.name.clone(), Var::from_tensor(&member(p, k)?)?);
            }
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        map.save(&tmp)?;
        std::fs::rename(&tmp, path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Model `k`'s slice of parameter `p`: f32, on the CPU (what a file holds).
fn member(p: &crate::Param, k: usize) -> Result<Tensor> {
    Ok(p.var
        .as_tensor()
        .get(k)?
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?)
}

impl Checkpoint {
    /// The Hugging Face `config.json` of a model of shape `model` in its
    /// family (`None` for GPT-2): written beside a checkpoint in cfmem's
    /// layout (`STEM.config.json`), it makes [`Checkpoint::load`] give the
    /// model its family back.
    pub fn hf_config(model: &ModelConfig) -> Option<serde_json::Value> {
        hf::config(model)
    }

    /// Save model `k` of `model` in its family's Hugging Face layout, in the
    /// directory `dir` (`model.safetensors` and `config.json`, as
    /// `transformers` reads them): GPT-2 as [`Checkpoint::save_gpt2`],
    /// GPT-NeoX and Llama-style models with their own names. A LoRA
    /// model is written whole, its updates merged into the base's weights
    /// ([`Gpt::member_weights`]).
    ///
    /// # Errors
    /// [`Error::NoSuchMember`] for `k` out of range; as
    /// [`Checkpoint::save_gpt2`]; I/O and candle errors.
    pub fn save_hf(model: &Gpt, k: usize, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        if k >= model.k() {
            return Err(Error::NoSuchMember { k, n: model.k() });
        }
        if model.config().arch.is_gpt2() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            return Self::save_gpt2(model, k, dir.join("model.safetensors"));
        }
        hf::save(model, k, dir)
    }

    /// Save model `k` of `model` in Hugging Face's GPT-2 layout
    /// (`transformer.`-prefixed names, 1-D gains and biases, the tied
    /// `lm_head.weight`), with its `config.json` beside it, as
    /// `GPT2LMHeadModel` reads them: `path` should be
    /// `DIR/model.safetensors`. The token embedding keeps all of cfmem's
    /// rows (the tokenizer's and the three framing ids).
    ///
    /// # Errors
    /// [`Error::Gpt2`] for untied embeddings (GPT-2 ties them), [`Error::NoSuchMember`] for `k` out
    /// of range; I/O and candle errors.
    pub fn save_gpt2(model: &Gpt, k: usize, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let cfg = model.config();
        if !cfg.tie_embeddings {
            return Err(Error::Gpt2(Gpt2Problem::Untied));
        }
        if k >= model.k() {
            return Err(Error::NoSuchMember { k, n: model.k() });
        }
        let mut out = HashMap::new();
        for (ours, gpt2, t) in model.member_weights(k)? {
            let name = gpt2.ok_or_else(|| Error::Gpt2(Gpt2Problem::NoName(ours.clone())))?;
            // Gains and biases are [1, n] rows in cfmem, 1-D in GPT-2.
            let t = if t.dims()[0] == 1 && ours != "wpe" {
                t.squeeze(0)?
            } else {
                t
            };
            if ours == "wte" {
                out.insert("lm_head.weight".to_string(), t.clone());
            }
            out.insert(format!("transformer.{name}"), t);
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        candle_core::safetensors::save(&out, &tmp)?;
        std::fs::rename(&tmp, path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config = serde_json::json!({
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "vocab_size": cfg.vocab_size,
            "n_positions": cfg.ctx,
            "n_embd": cfg.d_model,
            "n_layer": cfg.n_layer,
            "n_head": cfg.n_head,
            "n_inner": cfg.d_ff,
            "activation_function": "gelu_new",
            "layer_norm_epsilon": 1e-5,
            "tie_word_embeddings": true,
            "bos_token_id": cfg.vocab_size.saturating_sub(3),
            "eos_token_id": cfg.vocab_size.saturating_sub(2),
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "attn_pdrop": 0.0
        });
        let c = path.with_file_name("config.json");
        std::fs::write(&c, serde_json::to_vec_pretty(&config).unwrap_or_default())
            .map_err(|source| Error::Io { path: c, source })
    }
}
