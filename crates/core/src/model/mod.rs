//! The decoder-only transformer, with a leading ensemble axis `K` on every
//! parameter: `K` models with different data train in one graph, their
//! matrix products batched; `K = 1` is an ordinary model.
//!
//! The layers are structs (`layers.rs`: [`Embedding`](layers::Embedding),
//! `Block` = `LayerNorm` + `Attention` + `LayerNorm` + `Mlp`, `Head`), each
//! built from a `ParamBuilder` (`params.rs`) that names every tensor for
//! cfmem's and GPT-2's checkpoint layouts, and each with two forward
//! passes: composed from candle ops (every one with a backward; layer norm,
//! softmax and log-softmax are composed from primitive ops, never the fused
//! `candle_nn` kernels, which have none) and through the fused CPU kernels.

mod arch;
mod family;
mod layers;
mod lora;
mod params;

use candle_core::{DType, Device, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::data::HostBatch;
use crate::error::{Error, Result};
use crate::fused::{self, Kernels};
use crate::native::{Host, Precision, Workspace};
pub use arch::{Arch, LlamaConfig, NeoXConfig};
use family::{Rope, RopeBlock};
pub(crate) use layers::log_softmax_last;
use layers::{Block, Dims, Embedding, Head};
pub use lora::Lora;
use params::ParamBuilder;
pub use params::{Frozen, Param};

/// Shape of the transformer.
///
/// | field | `tiny` | `small` | meaning |
/// |---|---|---|---|
/// | `vocab_size` | 259 | 259 | token ids (the byte tokenizer's) |
/// | `d_model` | 64 | 128 | width of the residual stream |
/// | `n_layer` | 2 | 2 | transformer blocks |
/// | `n_head` | 4 | 4 | attention heads (`d_model % n_head == 0`) |
/// | `d_ff` | 256 | 512 | hidden width of the MLP |
/// | `ctx` | 64 | 128 | context length (tokens per window) |
/// | `tie_embeddings` | true | true | output projection = token embedding transposed |
/// | `init_std` | 0.02 | 0.02 | standard deviation of weight initialisation |
/// | `arch` | GPT-2 | GPT-2 | the family ([`Arch`]): GPT-2, GPT-NeoX or Llama-style |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Residual width.
    pub d_model: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Number of heads.
    pub n_head: usize,
    /// MLP hidden width.
    pub d_ff: usize,
    /// Context length.
    pub ctx: usize,
    /// Tie the output projection to the token embedding.
    pub tie_embeddings: bool,
    /// Initialisation standard deviation.
    pub init_std: f64,
    /// The family (left out of manifests when GPT-2, so manifests from
    /// before it hash as they did).
    #[serde(default, skip_serializing_if = "Arch::is_gpt2")]
    pub arch: Arch,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::tiny()
    }
}

impl ModelConfig {
    /// d 64, 2 layers, 4 heads, ctx 64: trains in seconds on a CPU core.
    pub fn tiny() -> Self {
        Self {
            vocab_size: 259,
            d_model: 64,
            n_layer: 2,
            n_head: 4,
            d_ff: 256,
            ctx: 64,
            tie_embeddings: true,
            init_std: 0.02,
            arch: Arch::Gpt2,
        }
    }

    /// d 128, 2 layers, 4 heads, ctx 128.
    pub fn small() -> Self {
        Self {
            d_model: 128,
            d_ff: 512,
            ctx: 128,
            ..Self::tiny()
        }
    }

    /// A preset by name (`tiny`, `small`).
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "tiny" => Some(Self::tiny()),
            "small" => Some(Self::small()),
            _ => None,
        }
    }

    /// Validate the shape.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] naming the bad field.
    pub fn check(&self) -> Result<()> {
        let bad = |setting, value: &dyn std::fmt::Display, expected| {
            Err(Error::InvalidSetting {
                setting,
                value: value.to_string(),
                expected,
            })
        };
        for (setting, v) in [
            ("d_model", self.d_model),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("d_ff", self.d_ff),
        ] {
            if v == 0 {
                return bad(setting, &v, "must be positive");
            }
        }
        if !self.d_model.is_multiple_of(self.n_head) {
            return bad("d_model", &self.d_model, "must be a multiple of n_head");
        }
        if self.ctx < 2 {
            return bad("ctx", &self.ctx, "must be at least 2");
        }
        if self.vocab_size < 2 {
            return bad("vocab_size", &self.vocab_size, "must be at least 2");
        }
        if !(self.init_std > 0.0 && self.init_std.is_finite()) {
            return bad("init_std", &self.init_std, "must be positive");
        }
        self.check_arch()
    }

    /// The family's own settings.
    fn check_arch(&self) -> Result<()> {
        let bad = |setting, value: &dyn std::fmt::Display, expected| {
            Err(Error::InvalidSetting {
                setting,
                value: value.to_string(),
                expected,
            })
        };
        let hd = self.d_model / self.n_head;
        let rot = self.arch.rotary_dims(hd);
        if !self.arch.is_gpt2() && (rot == 0 || !rot.is_multiple_of(2)) {
            return bad(
                "rotary dimensions",
                &rot,
                "must be even and positive (head width × rotary_pct)",
            );
        }
        let base = self.arch.rotary_base();
        if !(self.arch.is_gpt2() || base > 1.0 && base.is_finite()) {
            return bad("rotary base", &base, "must be above 1");
        }
        let eps = self.arch.norm_eps();
        if !(eps > 0.0 && eps.is_finite()) {
            return bad("norm_eps", &eps, "must be positive");
        }
        match &self.arch {
            Arch::NeoX(n) if !(n.rotary_pct > 0.0 && n.rotary_pct <= 1.0) => {
                bad("rotary_pct", &n.rotary_pct, "must be in (0, 1]")
            }
            Arch::Llama(l) if l.n_kv_head == 0 || !self.n_head.is_multiple_of(l.n_kv_head) => {
                bad("n_kv_head", &l.n_kv_head, "must divide n_head")
            }
            _ => Ok(()),
        }
    }

    /// Parameters of one model.
    pub fn n_params(&self) -> usize {
        let (d, f, v) = (self.d_model, self.d_ff, self.vocab_size);
        let kv = self.arch.n_kv_head(self.n_head) * (d / self.n_head);
        let head = if self.tie_embeddings { 0 } else { d * v };
        let block = match self.arch {
            Arch::Gpt2 | Arch::NeoX(_) => {
                4 * d + d * 3 * d + 3 * d + d * d + d + d * f + f + f * d + d
            }
            Arch::Llama(_) => 2 * d + d * (d + 2 * kv) + d * d + 3 * d * f,
        };
        let positions = if self.arch.is_gpt2() { self.ctx * d } else { 0 };
        let final_norm = if self.arch.biases() { 2 * d } else { d };
        v * d + positions + self.n_layer * block + final_norm + head
    }

    /// Matrix-product FLOPs of one training step per token (forward +
    /// backward ≈ 3 × forward), attention included.
    pub fn train_flops_per_token(&self) -> f64 {
        let (d, f, v, t) = (
            self.d_model as f64,
            self.d_ff as f64,
            self.vocab_size as f64,
            self.ctx as f64,
        );
        let kv = (self.arch.n_kv_head(self.n_head) * (self.d_model / self.n_head)) as f64;
        let mlp = match self.arch {
            Arch::Llama(_) => 3.0 * d * f,
            _ => 2.0 * d * f,
        };
        let per_layer = 2.0 * (d * (d + 2.0 * kv) + d * d + mlp) + 2.0 * 2.0 * t * d;
        3.0 * (self.n_layer as f64 * per_layer + 2.0 * d * v)
    }
}

/// An ensemble of `K` transformers sharing one graph.
#[derive(Debug)]
pub struct Gpt {
    cfg: ModelConfig,
    k: usize,
    embed: Embedding,
    blocks: Blocks,
    head: Head,
    /// The rotary tables of the rotary families.
    rope: Option<Rope>,
    /// Every trained parameter, in the order the layers were built (under
    /// LoRA, the adapters).
    params: Vec<Param>,
    /// Under LoRA, the base's weights, frozen and shared by the ensemble.
    frozen: Vec<Frozen>,
    lora: Option<Lora>,
    mask: Tensor,
    kernels: Kernels,
    precision: Precision,
}

impl Gpt {
    /// `K = seeds.len()` models, model `k` initialised from `seeds[k]` alone,
    /// so a model's initial weights do not depend on its ensemble.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a bad config, [`Error::EmptyEnsemble`]
    /// for no seed; candle errors.
    pub fn new(cfg: &ModelConfig, seeds: &[u64], dtype: DType, device: &Device) -> Result<Self> {
        cfg.check()?;
        if seeds.is_empty() {
            return Err(Error::EmptyEnsemble);
        }
        Self::build(
            cfg,
            ParamBuilder::random(seeds, dtype, device),
            None,
            (dtype, device),
        )
    }

    /// The layers, built in order from `p`, and the causal mask.
    fn build(
        cfg: &ModelConfig,
        mut p: ParamBuilder,
        lora: Option<&Lora>,
        (dtype, device): (DType, &Device),
    ) -> Result<Self> {
        let k = p.k();
        let (embed, blocks, head) = Self::layers(cfg, &mut p)?;
        let (params, frozen, problems) = p.finish();
        if !problems.is_empty() {
            return Err(Error::WeightsMismatch {
                model: Box::new(cfg.clone()),
                problems,
            });
        }
        let t = cfg.ctx;
        let mask: Vec<f32> = (0..t * t)
            .map(|i| if i % t > i / t { -1e9 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), device)?.to_dtype(dtype)?;
        let kernels = Self::kernels_for(cfg, lora.is_some(), Kernels::auto(dtype, device));
        Ok(Self {
            cfg: cfg.clone(),
            k,
            embed,
            blocks,
            head,
            rope: Rope::new(cfg, dtype, device)?,
            params,
            frozen,
            lora: lora.cloned(),
            mask,
            kernels,
            precision: Precision::Fp32,
        })
    }

    /// The architecture: the order of these calls is the order of the
    /// parameters (and of each model's random draws).
    fn layers(cfg: &ModelConfig, p: &mut ParamBuilder) -> Result<(Embedding, Blocks, Head)> {
        let embed = Embedding::new(cfg, p)?;
        let blocks = match cfg.arch {
            Arch::Gpt2 => Blocks::Gpt2(
                (0..cfg.n_layer)
                    .map(|l| Block::new(cfg, p, l))
                    .collect::<Result<_>>()?,
            ),
            _ => Blocks::Rope(
                (0..cfg.n_layer)
                    .map(|l| RopeBlock::new(cfg, p, l))
                    .collect::<Result<_>>()?,
            ),
        };
        Ok((embed, blocks, Head::new(cfg, p)?))
    }

    /// Every parameter's cfmem name and GPT-2 name (`None` where GPT-2 has
    /// none), in order, for a model of shape `cfg`: the checkpoint layouts,
    /// generated from the layers.
    pub fn param_names(cfg: &ModelConfig) -> Vec<(String, Option<String>)> {
        let mut p = ParamBuilder::names();
        // Names only: no weights are made, so this cannot fail.
        let _ = Self::layers(cfg, &mut p);
        p.finish()
            .0
            .into_iter()
            .map(|q| (q.name, q.gpt2_name))
            .collect()
    }

    /// `k` models that all start from the weights in `weights` (e.g. a
    /// pretrained checkpoint's, [`crate::Checkpoint`]), each tensor named
    /// as in [`Gpt::params`] and shaped without the ensemble axis.
    ///
    /// # Errors
    /// [`Error::WeightsMismatch`] listing every tensor that is missing or
    /// has another shape; candle errors.
    pub fn from_weights(
        cfg: &ModelConfig,
        weights: &candle_nn::VarBuilder<'_>,
        k: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        cfg.check()?;
        if k == 0 {
            return Err(Error::EmptyEnsemble);
        }
        Self::build(
            cfg,
            ParamBuilder::weights(weights, k, dtype, device),
            None,
            (dtype, device),
        )
    }

    /// Use `kernels`. [`Kernels::Native`] is the default on the CPU in f32,
    /// and [`Kernels::Fused`] can be asked for there too; asking for either
    /// elsewhere keeps the composition, since they exist for that case only.
    /// The native step and the fused blocks are GPT-2's full training: the
    /// other families and LoRA take [`Kernels::Fused`] for either, candle's
    /// graph with the fused kernels they can use (the loss's
    /// cross-entropy).
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        let device = self.mask.device().clone();
        let cpu_f32 = Kernels::auto(self.mask.dtype(), &device) == Kernels::Native;
        let asked = if cpu_f32 { kernels } else { Kernels::Composed };
        self.kernels = Self::kernels_for(&self.cfg, self.lora.is_some(), asked);
        self
    }

    /// `asked` where a model of shape `cfg` (with LoRA or not) has it, else
    /// the nearest it has.
    fn kernels_for(cfg: &ModelConfig, lora: bool, asked: Kernels) -> Kernels {
        match asked {
            Kernels::Native | Kernels::Fused if !cfg.arch.is_gpt2() || lora => Kernels::Fused,
            k => k,
        }
    }

    /// Whether the blocks run through the fused kernels: GPT-2's full
    /// training only.
    fn fused_blocks(&self) -> bool {
        self.kernels.fused() && matches!(self.blocks, Blocks::Gpt2(_)) && self.lora.is_none()
    }

    /// The kernels in use.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Run the matrix products of [`Gpt::logits`] and of native training in
    /// `precision`.
    ///
    /// # Errors
    /// [`Error::Precision`] for bf16 on a model that does not run the
    /// native step (another device or type, or other kernels asked for).
    pub fn with_precision(mut self, precision: Precision) -> Result<Self> {
        if precision == Precision::Bf16 && self.kernels != Kernels::Native {
            return Err(Error::Precision {
                precision,
                family: self.cfg.arch.name(),
                dtype: self.mask.dtype(),
                device: format!("{:?}", self.mask.device()),
            });
        }
        self.precision = precision;
        Ok(self)
    }

    /// The precision of the products.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Ensemble size `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// All trained parameters, in a fixed order (under LoRA, the
    /// adapters).
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Logits `[K, B·T, V]` for token ids `[K, B, T]` (`T ≤ ctx`).
    ///
    /// # Errors
    /// Candle errors, e.g. for a bad shape.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (k, b, t) = ids.dims3()?;
        let cfg = &self.cfg;
        if k != self.k || t > cfg.ctx {
            return Err(Error::InputShape {
                shape: [k, b, t],
                k: self.k,
                ctx: cfg.ctx,
            });
        }
        if self.fused_blocks() {
            return self.forward_fused(ids, t);
        }
        let s = Dims { k, b, t };
        // The fused kernels a family or LoRA can use (the fused blocks
        // returned above).
        let fused = self.kernels.fused();
        let mut x = self.embed.forward(ids, s)?;
        match (&self.blocks, &self.rope) {
            (Blocks::Gpt2(blocks), _) => {
                for block in blocks {
                    x = block.forward(&x, &self.mask, s)?;
                }
            }
            (Blocks::Rope(blocks), Some(rope)) => {
                for block in blocks {
                    x = block.forward(&x, rope, &self.mask, (s, fused))?;
                }
            }
            (Blocks::Rope(_), None) => {
                return Err(Error::NativeLayout(
                    "a rotary family without its tables".into(),
                ))
            }
        }
        self.head.forward_with(&x, &self.embed, fused)
    }

    /// Logits `[K, B·T, V]` for token ids `[K, B, T]` without a graph (for
    /// evaluation and decoding): through the native step, in the model's
    /// precision, where it runs; else [`Gpt::forward`].
    ///
    /// # Errors
    /// As [`Gpt::forward`]; [`Error::TokenOutOfVocabulary`].
    pub fn logits(&self, ids: &Tensor) -> Result<Tensor> {
        if self.kernels != Kernels::Native {
            return self.forward(ids);
        }
        let (k, b, t) = ids.dims3()?;
        if k != self.k || t > self.cfg.ctx {
            return Err(Error::InputShape {
                shape: [k, b, t],
                k: self.k,
                ctx: self.cfg.ctx,
            });
        }
        let batch = HostBatch {
            ids: ids.flatten_all()?.to_vec1()?,
            targets: vec![0; k * b * t],
            mask: vec![0.0; k * b * t],
            counts: vec![0.0; k],
            k,
            batch: b,
            t,
        };
        let host = Host::of(self)?;
        let mut ws = Workspace::new(&self.cfg, &host, b, self.precision, false);
        ws.load(&host.theta)?;
        ws.forward(&host.theta, &batch)?;
        Ok(Tensor::from_slice(
            ws.logits(k * b * t),
            (k, b * t, self.cfg.vocab_size),
            ids.device(),
        )?)
    }

    /// [`Gpt::forward`] through the fused CPU kernels: ten graph nodes per
    /// block instead of about forty, since candle's backward pass costs a
    /// zeroed buffer and an addition per node on top of the node's own work.
    fn forward_fused(&self, ids: &Tensor, t: usize) -> Result<Tensor> {
        let Blocks::Gpt2(blocks) = &self.blocks else {
            return Err(Error::NativeLayout("fused kernels are GPT-2's".into()));
        };
        let mut x = self.embed.forward_fused(ids)?; // [K, B·T, D]
        for block in blocks {
            x = block.forward_fused(&x, t)?;
        }
        self.head.forward_with(&x, &self.embed, true)
    }

    /// Copy model `k`'s weights out, as `f32` vectors in parameter order.
    ///
    /// # Errors
    /// Candle errors.
    pub fn model_weights(&self, k: usize) -> Result<Vec<Vec<f32>>> {
        self.params
            .iter()
            .map(|p| {
                Ok(p.var
                    .as_tensor()
                    .get(k)?
                    .flatten_all()?
                    .to_dtype(DType::F32)?
                    .to_vec1::<f32>()?)
            })
            .collect()
    }
}

/// A model's blocks: GPT-2's, or a rotary family's.
#[derive(Debug)]
enum Blocks {
    Gpt2(Vec<Block>),
    Rope(Vec<RopeBlock>),
}

impl Blocks {
    /// Each block's LoRA adapters, by the name of the weight each adapts.
    fn adapters(&self) -> Vec<Vec<(&'static str, &Option<lora::Adapter>)>> {
        match self {
            Blocks::Gpt2(blocks) => blocks.iter().map(Block::adapters).collect(),
            Blocks::Rope(blocks) => blocks.iter().map(RopeBlock::adapters).collect(),
        }
    }
}

/// Per-token negative log-likelihood `[K, N]` of `targets` `[K, N]` (u32)
/// under `logits` `[K, N, V]`.
///
/// # Errors
/// Candle errors.
pub fn token_nll(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    token_nll_with(
        logits,
        targets,
        Kernels::auto(logits.dtype(), logits.device()),
    )
}

/// [`token_nll`] with the given kernels (the fused cross-entropy, of
/// [`Kernels::Native`] and [`Kernels::Fused`], needs f32 logits on the CPU
/// and falls back to the composition otherwise).
///
/// # Errors
/// Candle errors.
pub fn token_nll_with(logits: &Tensor, targets: &Tensor, kernels: Kernels) -> Result<Tensor> {
    if kernels.fused() && Kernels::auto(logits.dtype(), logits.device()) == Kernels::Native {
        return Ok(fused::cross_entropy(logits, targets)?);
    }
    let logp = log_softmax_last(logits)?;
    let picked = logp.gather(&targets.unsqueeze(D::Minus1)?, D::Minus1)?;
    Ok(picked.squeeze(D::Minus1)?.neg()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layers_name_every_parameter_in_both_layouts_in_order() {
        let cfg = ModelConfig {
            n_layer: 1,
            ..ModelConfig::tiny()
        };
        let names = Gpt::param_names(&cfg);
        // Hugging Face's GPT2LMHeadModel state dict for one block
        // (modeling_gpt2.py: wte, wpe, h.N.{ln_1, attn.c_attn, attn.c_proj,
        // ln_2, mlp.c_fc, mlp.c_proj}, ln_f), written out by hand.
        let expected = [
            ("wte", "wte.weight"),
            ("wpe", "wpe.weight"),
            ("h.0.ln1.g", "h.0.ln_1.weight"),
            ("h.0.ln1.b", "h.0.ln_1.bias"),
            ("h.0.attn.w_qkv", "h.0.attn.c_attn.weight"),
            ("h.0.attn.b_qkv", "h.0.attn.c_attn.bias"),
            ("h.0.attn.w_o", "h.0.attn.c_proj.weight"),
            ("h.0.attn.b_o", "h.0.attn.c_proj.bias"),
            ("h.0.ln2.g", "h.0.ln_2.weight"),
            ("h.0.ln2.b", "h.0.ln_2.bias"),
            ("h.0.mlp.w_fc", "h.0.mlp.c_fc.weight"),
            ("h.0.mlp.b_fc", "h.0.mlp.c_fc.bias"),
            ("h.0.mlp.w_proj", "h.0.mlp.c_proj.weight"),
            ("h.0.mlp.b_proj", "h.0.mlp.c_proj.bias"),
            ("ln_f.g", "ln_f.weight"),
            ("ln_f.b", "ln_f.bias"),
        ];
        let got: Vec<(&str, Option<&str>)> = names
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_deref()))
            .collect();
        let want: Vec<(&str, Option<&str>)> = expected.iter().map(|&(a, b)| (a, Some(b))).collect();
        assert_eq!(got, want);
        // A built model holds the same parameters in the same order, each
        // of the size `n_params` counts.
        let m = Gpt::new(&cfg, &[1], DType::F32, &Device::Cpu).unwrap();
        let built: Vec<&str> = m.params().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(built, want.iter().map(|w| w.0).collect::<Vec<_>>());
        let total: usize = m.params().iter().map(|p| p.var.elem_count()).sum();
        assert_eq!(total, cfg.n_params());
        // An untied head adds w_head, which GPT-2 has no name for.
        let untied = ModelConfig {
            tie_embeddings: false,
            ..cfg
        };
        assert_eq!(
            Gpt::param_names(&untied).last(),
            Some(&("w_head".to_string(), None))
        );
    }
}
