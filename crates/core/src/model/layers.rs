//! The transformer's layers, candle-nn style: a struct per layer, built by
//! `new(cfg, params, prefix)` and used through `forward` (composed from
//! candle ops, every one with a backward pass) or `forward_fused` (the
//! fused CPU kernels of `fused/`, each with a hand-written backward). Every
//! tensor carries the ensemble axis `K` first.
//!
//! ```text
//! Embedding (wte, wpe) → Block × n_layer → Head (ln_f, tied wte or w_head)
//! Block: x + Attention(LayerNorm(x)), then x + Mlp(LayerNorm(x))
//! ```

use candle_core::{DType, Tensor, D};

use super::lora::Adapter;
use super::params::{Init, ParamBuilder};
use super::{Arch, ModelConfig};
use crate::error::Result;
use crate::fused;

/// The batch layout a forward pass runs on: `K` models, `b` windows of
/// `t` tokens each (`n = b · t` rows per model).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub k: usize,
    pub b: usize,
    pub t: usize,
}

/// Token and (GPT-2) position embeddings.
#[derive(Debug)]
pub(crate) struct Embedding {
    /// `[K, V, D]`; also the tied output projection.
    pub wte: Tensor,
    /// `[K, ctx, D]`; `None` for the rotary families.
    wpe: Option<Tensor>,
}

impl Embedding {
    pub fn new(cfg: &ModelConfig, p: &mut ParamBuilder) -> Result<Self> {
        let (d, std) = (cfg.d_model, cfg.init_std);
        let wte = p.param(
            "wte".into(),
            Some("wte.weight".into()),
            &[cfg.vocab_size, d],
            Init::Normal(std),
            true,
        )?;
        let wpe = if cfg.arch.is_gpt2() {
            Some(p.param(
                "wpe".into(),
                Some("wpe.weight".into()),
                &[cfg.ctx, d],
                Init::Normal(std),
                true,
            )?)
        } else {
            None
        };
        Ok(Self { wte, wpe })
    }

    /// `[K, B·T, D]` for token ids `[K, B, T]`.
    pub fn forward(&self, ids: &Tensor, s: Dims) -> Result<Tensor> {
        let (v, d) = (self.wte.dim(1)?, self.wte.dim(2)?);
        // Model k's rows live at k·V .. (k+1)·V of the flat table (a
        // shared table, LoRA's frozen base, has one model's rows).
        let tables = self.wte.dim(0)?;
        let offsets: Vec<u32> = (0..s.k)
            .map(|i| if tables == 1 { 0 } else { (i * v) as u32 })
            .collect();
        let offsets = Tensor::from_vec(offsets, (s.k, 1, 1), ids.device())?;
        let flat_ids = ids.broadcast_add(&offsets)?.flatten_all()?;
        let x = self
            .wte
            .reshape((tables * v, d))?
            .index_select(&flat_ids, 0)?;
        let Some(wpe) = &self.wpe else {
            return Ok(x.reshape((s.k, s.b * s.t, d))?);
        };
        let pos = wpe.narrow(1, 0, s.t)?;
        Ok(x.reshape((s.k, s.b, s.t, d))?
            .broadcast_add(&pos.unsqueeze(1)?)?
            .reshape((s.k, s.b * s.t, d))?)
    }

    /// Through the fused embedding kernel (GPT-2 only: the caller checks).
    pub fn forward_fused(&self, ids: &Tensor) -> Result<Tensor> {
        let wpe = self.wpe.as_ref().ok_or_else(|| {
            crate::Error::NativeLayout("the fused embedding needs positions".into())
        })?;
        Ok(fused::embed(&self.wte, wpe, ids)?)
    }
}

/// Layer normalisation over the last axis (ε = 1e-5 in GPT-2, the
/// family's otherwise) with gain and bias.
#[derive(Debug)]
pub(crate) struct LayerNorm {
    g: Tensor,
    b: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// `prefix.g` and `prefix.b` (GPT-2: `gpt2.weight`, `gpt2.bias`).
    pub fn new(cfg: &ModelConfig, p: &mut ParamBuilder, prefix: &str, gpt2: &str) -> Result<Self> {
        let d = cfg.d_model;
        let gpt2 = cfg.arch.is_gpt2().then_some(gpt2);
        Ok(Self {
            eps: cfg.arch.norm_eps(),
            g: p.param(
                format!("{prefix}.g"),
                gpt2.map(|n| format!("{n}.weight")),
                &[1, d],
                Init::Ones,
                false,
            )?,
            b: p.param(
                format!("{prefix}.b"),
                gpt2.map(|n| format!("{n}.bias")),
                &[1, d],
                Init::Zeros,
                false,
            )?,
        })
    }

    /// Composed from primitive ops so that every input gets a gradient.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let xn = xc.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        Ok(xn.broadcast_mul(&self.g)?.broadcast_add(&self.b)?)
    }

    pub fn forward_fused(&self, x: &Tensor) -> Result<Tensor> {
        Ok(fused::layer_norm(x, &self.g, &self.b)?)
    }
}

/// A linear map `x · W + b` with `W` `[in, out]` (GPT-2's `Conv1D`
/// orientation).
#[derive(Debug)]
pub(crate) struct Linear {
    pub w: Tensor,
    pub b: Tensor,
    /// LoRA's adapter, where it adapts this projection.
    pub lora: Option<Adapter>,
}

impl Linear {
    /// `prefix.w_NAME`, `prefix.b_NAME` (GPT-2: `gpt2.weight`, `gpt2.bias`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        p: &mut ParamBuilder,
        prefix: &str,
        name: &str,
        gpt2: &str,
        (n_in, n_out): (usize, usize),
        std: f64,
    ) -> Result<Self> {
        Ok(Self {
            w: p.param(
                format!("{prefix}.w_{name}"),
                Some(format!("{gpt2}.weight")),
                &[n_in, n_out],
                Init::Normal(std),
                true,
            )?,
            b: p.param(
                format!("{prefix}.b_{name}"),
                Some(format!("{gpt2}.bias")),
                &[1, n_out],
                Init::Zeros,
                false,
            )?,
            lora: p.adapter(prefix, name, (n_in, n_out))?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = times(x, &self.w)?.broadcast_add(&self.b)?;
        match &self.lora {
            Some(a) => Ok((y + a.forward(x)?)?),
            None => Ok(y),
        }
    }
}

/// Causal multi-head self-attention: one packed `q | k | v` projection
/// (the heads contiguous in each, as GPT-2's `c_attn`) and an output
/// projection.
#[derive(Debug)]
pub(crate) struct Attention {
    qkv: Linear,
    out: Linear,
    n_head: usize,
}

impl Attention {
    pub fn new(cfg: &ModelConfig, p: &mut ParamBuilder, layer: usize) -> Result<Self> {
        let (d, std) = (cfg.d_model, cfg.init_std);
        let (prefix, gpt2) = (format!("h.{layer}.attn"), format!("h.{layer}.attn"));
        Ok(Self {
            qkv: Linear::new(
                p,
                &prefix,
                "qkv",
                &format!("{gpt2}.c_attn"),
                (d, 3 * d),
                std,
            )?,
            out: Linear::new(
                p,
                &prefix,
                "o",
                &format!("{gpt2}.c_proj"),
                (d, d),
                proj_std(cfg),
            )?,
            n_head: cfg.n_head,
        })
    }

    /// `x + attention(a)`; `mask` `[ctx, ctx]` holds −1e9 above the diagonal.
    pub fn residual(&self, x: &Tensor, a: &Tensor, mask: &Tensor, s: Dims) -> Result<Tensor> {
        let (k, b, t, h) = (s.k, s.b, s.t, self.n_head);
        let d = a.dim(2)?;
        let hd = d / h;
        let scale = 1.0 / (hd as f64).sqrt();
        let qkv = self
            .qkv
            .forward(a)? // [K, N, 3D]
            .reshape((k * b, t, 3, h, hd))?
            .permute((2, 0, 3, 1, 4))?; // [3, KB, H, T, hd]
        let head = |i: usize| -> Result<Tensor> {
            Ok(qkv.get(i)?.contiguous()?.reshape((k * b * h, t, hd))?)
        };
        let (q, kk, vv) = (head(0)?, head(1)?, head(2)?);
        let mask = mask.narrow(0, 0, t)?.narrow(1, 0, t)?;
        let att = (q.matmul(&kk.t()?)? * scale)?.broadcast_add(&mask)?;
        let y = softmax_last(&att)?.matmul(&vv)?; // [KBH, T, hd]
        let y = y
            .reshape((k * b, h, t, hd))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((k, b * t, d))?;
        Ok((x + self.out.forward(&y)?)?)
    }

    pub fn residual_fused(&self, x: &Tensor, a: &Tensor, t: usize) -> Result<Tensor> {
        let d = a.dim(2)?;
        let scale = 1.0 / ((d / self.n_head) as f32).sqrt();
        let y = fused::attention(&a.matmul(&self.qkv.w)?, &self.qkv.b, t, self.n_head, scale)?;
        Ok(fused::residual_bias(
            x,
            &y.matmul(&self.out.w)?,
            &self.out.b,
        )?)
    }
}

/// The MLP: `d_ff` hidden units, tanh-GELU.
#[derive(Debug)]
pub(crate) struct Mlp {
    fc: Linear,
    proj: Linear,
}

impl Mlp {
    pub fn new(cfg: &ModelConfig, p: &mut ParamBuilder, layer: usize) -> Result<Self> {
        let (d, f) = (cfg.d_model, cfg.d_ff);
        let (prefix, gpt2) = (format!("h.{layer}.mlp"), format!("h.{layer}.mlp"));
        Ok(Self {
            fc: Linear::new(
                p,
                &prefix,
                "fc",
                &format!("{gpt2}.c_fc"),
                (d, f),
                cfg.init_std,
            )?,
            proj: Linear::new(
                p,
                &prefix,
                "proj",
                &format!("{gpt2}.c_proj"),
                (f, d),
                proj_std(cfg),
            )?,
        })
    }

    /// `x + mlp(a)`.
    pub fn residual(&self, x: &Tensor, a: &Tensor) -> Result<Tensor> {
        let y = self.fc.forward(a)?.gelu()?;
        Ok((x + self.proj.forward(&y)?)?)
    }

    pub fn residual_fused(&self, x: &Tensor, a: &Tensor) -> Result<Tensor> {
        let y = fused::bias_gelu(&a.matmul(&self.fc.w)?, &self.fc.b)?;
        Ok(fused::residual_bias(
            x,
            &y.matmul(&self.proj.w)?,
            &self.proj.b,
        )?)
    }
}

/// One pre-norm transformer block.
#[derive(Debug)]
pub(crate) struct Block {
    ln1: LayerNorm,
    attn: Attention,
    ln2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    pub fn new(cfg: &ModelConfig, p: &mut ParamBuilder, layer: usize) -> Result<Self> {
        let h = |s: &str| format!("h.{layer}.{s}");
        Ok(Self {
            ln1: LayerNorm::new(cfg, p, &h("ln1"), &h("ln_1"))?,
            attn: Attention::new(cfg, p, layer)?,
            ln2: LayerNorm::new(cfg, p, &h("ln2"), &h("ln_2"))?,
            mlp: Mlp::new(cfg, p, layer)?,
        })
    }

    /// The block's LoRA adapters, by the name of the weight each adapts.
    pub fn adapters(&self) -> Vec<(&'static str, &Option<Adapter>)> {
        vec![
            ("attn.w_qkv", &self.attn.qkv.lora),
            ("attn.w_o", &self.attn.out.lora),
            ("mlp.w_fc", &self.mlp.fc.lora),
            ("mlp.w_proj", &self.mlp.proj.lora),
        ]
    }

    pub fn forward(&self, x: &Tensor, mask: &Tensor, s: Dims) -> Result<Tensor> {
        let x = self.attn.residual(x, &self.ln1.forward(x)?, mask, s)?;
        self.mlp.residual(&x, &self.ln2.forward(&x)?)
    }

    pub fn forward_fused(&self, x: &Tensor, t: usize) -> Result<Tensor> {
        let x = self
            .attn
            .residual_fused(x, &self.ln1.forward_fused(x)?, t)?;
        self.mlp.residual_fused(&x, &self.ln2.forward_fused(&x)?)
    }
}

/// The final layer norm and the output projection: the token embedding
/// transposed when tied, else its own `w_head` `[D, V]`.
#[derive(Debug)]
pub(crate) struct Head {
    ln_f: Norm,
    w_head: Option<Tensor>,
}

impl Head {
    pub fn new(cfg: &ModelConfig, p: &mut ParamBuilder) -> Result<Self> {
        let ln_f = Norm::new(cfg, p, "ln_f", "ln_f")?;
        let w_head = if cfg.tie_embeddings {
            None
        } else {
            Some(p.param(
                "w_head".into(),
                None,
                &[cfg.d_model, cfg.vocab_size],
                Init::Normal(cfg.init_std),
                true,
            )?)
        };
        Ok(Self { ln_f, w_head })
    }

    /// Logits `[K, N, V]` from the residual stream `x` (after `ln_f`).
    fn project(&self, x: &Tensor, embed: &Embedding) -> Result<Tensor> {
        match &self.w_head {
            Some(w) => times(x, w),
            None => times(x, &embed.wte.transpose(1, 2)?),
        }
    }

    /// Logits from the stream after the final norm, through
    /// [`Norm::forward_with`].
    pub fn forward_with(&self, x: &Tensor, embed: &Embedding, fused: bool) -> Result<Tensor> {
        self.project(&self.ln_f.forward_with(x, fused)?, embed)
    }
}

/// The norm a family uses: LayerNorm with a bias, or RMSNorm (Llama).
#[derive(Debug)]
pub(crate) enum Norm {
    Layer(LayerNorm),
    Rms(RmsNorm),
}

impl Norm {
    /// `prefix.g` (and `prefix.b` for LayerNorm; GPT-2 names `gpt2.*`).
    pub fn new(cfg: &ModelConfig, p: &mut ParamBuilder, prefix: &str, gpt2: &str) -> Result<Self> {
        Ok(match cfg.arch {
            Arch::Llama(_) => Norm::Rms(RmsNorm::new(cfg, p, prefix)?),
            _ => Norm::Layer(LayerNorm::new(cfg, p, prefix, gpt2)?),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Norm::Layer(n) => n.forward(x),
            Norm::Rms(n) => n.forward(x),
        }
    }

    /// Through a fused kernel where `fused` (f32 on the CPU) and it has
    /// one for this norm: RMSNorm always; LayerNorm with GPT-2's ε and a
    /// trained gain per model (not LoRA's frozen, shared one, whose
    /// gradient the kernel would compute for nothing). Else composed.
    pub fn forward_with(&self, x: &Tensor, fused: bool) -> Result<Tensor> {
        match self {
            Norm::Rms(n) if fused => Ok(fused::rms_norm(x, &n.g, n.eps)?),
            Norm::Layer(n) if fused && n.eps as f32 == fused::norm::LN_EPS && n.g.track_op() => {
                n.forward_fused(x)
            }
            _ => self.forward(x),
        }
    }
}

/// Root-mean-square normalisation with a gain (no centring, no bias):
/// `x / √(mean(x²) + ε) · g`.
#[derive(Debug)]
pub(crate) struct RmsNorm {
    g: Tensor,
    eps: f64,
}

impl RmsNorm {
    /// `prefix.g`.
    pub fn new(cfg: &ModelConfig, p: &mut ParamBuilder, prefix: &str) -> Result<Self> {
        Ok(Self {
            g: p.param(
                format!("{prefix}.g"),
                None,
                &[1, cfg.d_model],
                Init::Ones,
                false,
            )?,
            eps: cfg.arch.norm_eps(),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
        let xn = x.broadcast_div(&(ms + self.eps)?.sqrt()?)?;
        Ok(xn.broadcast_mul(&self.g)?)
    }
}

/// `x · w` for `x` `[K, N, in]` and `w` `[K, in, out]`, or `w`
/// `[1, in, out]` shared by the `K` models (LoRA's frozen base): then one
/// product over all `K · N` rows, and (f32 on the CPU) one whose backward
/// pass computes no gradient for the weight ([`fused::frozen_product`]).
pub(crate) fn times(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (k, n, i) = x.dims3()?;
    let shared = w.dim(0)? == 1;
    if shared
        && !w.track_op()
        && x.device().is_cpu()
        && (x.dtype(), w.dtype()) == (DType::F32, DType::F32)
    {
        return Ok(fused::frozen_product(x, w)?);
    }
    if shared && k > 1 {
        let out = w.dim(2)?;
        return Ok(x.reshape((1, k * n, i))?.matmul(w)?.reshape((k, n, out))?);
    }
    Ok(x.matmul(w)?)
}

/// Output projections (attention's and the MLP's) start smaller, by
/// `1/√(2 · n_layer)` (GPT-2's scaled initialisation of residual paths).
pub(crate) fn proj_std(cfg: &ModelConfig) -> f64 {
    cfg.init_std / (2.0 * cfg.n_layer as f64).sqrt()
}

/// Softmax over the last axis. The maximum is detached: softmax is
/// shift-invariant, so this is exact and keeps the graph simple.
pub(crate) fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&m)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// Log-softmax over the last axis (max detached, as [`softmax_last`]).
pub(crate) fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?.detach();
    let z = x.broadcast_sub(&m)?;
    let lse = z.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(z.broadcast_sub(&lse)?)
}
