//! The blocks of the rotary families, GPT-NeoX (Pythia) and Llama-style,
//! composed from candle ops (every one with a backward pass), on every
//! device. Parameters keep cfmem's conventions: every tensor has the
//! ensemble axis first, linear maps are `x · W` with `W` `[in, out]`, and
//! the query, key and value projections are one `w_qkv` `[D, (H + 2·KV)·hd]`
//! with the heads contiguous in each part (the checkpoint readers turn
//! Hugging Face's layouts into these).
//!
//! ```text
//! Llama:            x += attn(rms1 x);  x += swiglu(rms2 x)
//! NeoX, parallel:   x += attn(ln1 x) + mlp(ln2 x)
//! NeoX, sequential: x += attn(ln1 x);  x += mlp(ln2 x)
//! attn: q, k rotated on their first `rot` dimensions (rotate-half
//!       convention), key/value heads shared by H / KV query heads
//! ```

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::layers::{proj_std, softmax_last, times, Dims, Norm};
use super::lora::Adapter;
use super::params::{Init, ParamBuilder};
use super::{Arch, ModelConfig};
use crate::error::Result;
use crate::fused::{self, RopeTables};

/// The rotary tables: `cos` and `sin` `[ctx, rot]` of angle
/// `t · base^(−2i / rot)`, each frequency twice (`[f, f]`), computed in
/// f32 as Hugging Face's rotary embeddings compute them.
#[derive(Debug)]
pub(crate) struct Rope {
    cos: Tensor,
    sin: Tensor,
    rot: usize,
    /// The same tables on the host, each frequency once, for the fused
    /// kernel.
    host: Arc<RopeTables>,
}

impl Rope {
    /// Tables for `cfg` (`None` without rotary positions).
    pub fn new(cfg: &ModelConfig, dtype: DType, device: &Device) -> Result<Option<Self>> {
        let hd = cfg.d_model / cfg.n_head;
        let rot = cfg.arch.rotary_dims(hd);
        if rot == 0 {
            return Ok(None);
        }
        let base = cfg.arch.rotary_base() as f32;
        let inv: Vec<f32> = (0..rot / 2)
            .map(|i| 1.0 / base.powf((2 * i) as f32 / rot as f32))
            .collect();
        let (mut cos, mut sin) = (Vec::with_capacity(cfg.ctx * rot), Vec::new());
        let mut host = RopeTables {
            cos: Vec::with_capacity(cfg.ctx * rot / 2),
            sin: Vec::with_capacity(cfg.ctx * rot / 2),
            half: rot / 2,
        };
        for t in 0..cfg.ctx {
            let angles: Vec<f32> = inv.iter().map(|f| t as f32 * f).collect();
            for _ in 0..2 {
                cos.extend(angles.iter().map(|a| a.cos()));
                sin.extend(angles.iter().map(|a| a.sin()));
            }
            host.cos.extend(angles.iter().map(|a| a.cos()));
            host.sin.extend(angles.iter().map(|a| a.sin()));
        }
        let table = |v: Vec<f32>| -> Result<Tensor> {
            Ok(Tensor::from_vec(v, (cfg.ctx, rot), device)?.to_dtype(dtype)?)
        };
        Ok(Some(Self {
            cos: table(cos)?,
            sin: table(sin)?,
            rot,
            host: Arc::new(host),
        }))
    }

    /// `x` `[N, heads, T, hd]` with its first `rot` dimensions rotated:
    /// `x·cos + rotate_half(x)·sin`, `rotate_half([a, b]) = [−b, a]`;
    /// through the fused kernel where `fused`.
    fn apply(&self, x: &Tensor, t: usize, fused: bool) -> Result<Tensor> {
        let (n, heads, _, hd) = x.dims4()?;
        if fused {
            let flat = x.reshape((n * heads, t, hd))?;
            return Ok(fused::rope(&flat, &self.host)?.reshape((n, heads, t, hd))?);
        }
        let (cos, sin) = (self.cos.narrow(0, 0, t)?, self.sin.narrow(0, 0, t)?);
        let r = x.narrow(3, 0, self.rot)?;
        let half = self.rot / 2;
        let (a, b) = (r.narrow(3, 0, half)?, r.narrow(3, half, half)?);
        let rotated = Tensor::cat(&[&b.neg()?, &a], 3)?;
        let r = (r.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?)?;
        if self.rot == hd {
            return Ok(r);
        }
        let pass = x.narrow(3, self.rot, hd - self.rot)?;
        Ok(Tensor::cat(&[&r, &pass], 3)?)
    }
}

/// A linear map `x · W (+ b)` of a rotary family.
#[derive(Debug)]
struct Dense {
    w: Tensor,
    b: Option<Tensor>,
    lora: Option<Adapter>,
}

impl Dense {
    /// `prefix.w_NAME` `[n_in, n_out]` and, when the family has biases,
    /// `prefix.b_NAME`.
    fn new(
        cfg: &ModelConfig,
        p: &mut ParamBuilder,
        (prefix, name): (&str, &str),
        (n_in, n_out): (usize, usize),
        std: f64,
    ) -> Result<Self> {
        let w = p.param(
            format!("{prefix}.w_{name}"),
            None,
            &[n_in, n_out],
            Init::Normal(std),
            true,
        )?;
        let b = if cfg.arch.biases() {
            Some(p.param(
                format!("{prefix}.b_{name}"),
                None,
                &[1, n_out],
                Init::Zeros,
                false,
            )?)
        } else {
            None
        };
        let lora = p.adapter(prefix, name, (n_in, n_out))?;
        Ok(Self { w, b, lora })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = times(x, &self.w)?;
        let y = match &self.b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        match &self.lora {
            Some(a) => Ok((y + a.forward(x)?)?),
            None => Ok(y),
        }
    }
}

/// Causal attention with rotary positions and `n_kv` key/value heads.
#[derive(Debug)]
struct RopeAttention {
    qkv: Dense,
    out: Dense,
    n_head: usize,
    n_kv: usize,
}

impl RopeAttention {
    fn new(cfg: &ModelConfig, p: &mut ParamBuilder, layer: usize) -> Result<Self> {
        let (d, h) = (cfg.d_model, cfg.n_head);
        let (hd, n_kv) = (d / h, cfg.arch.n_kv_head(h));
        let prefix = format!("h.{layer}.attn");
        Ok(Self {
            qkv: Dense::new(
                cfg,
                p,
                (&prefix, "qkv"),
                (d, (h + 2 * n_kv) * hd),
                cfg.init_std,
            )?,
            out: Dense::new(cfg, p, (&prefix, "o"), (h * hd, d), proj_std(cfg))?,
            n_head: h,
            n_kv,
        })
    }

    /// `[K, B·T, D]` from the normed stream `a` `[K, B·T, D]`.
    fn forward(
        &self,
        a: &Tensor,
        rope: &Rope,
        mask: &Tensor,
        (s, fused): (Dims, bool),
    ) -> Result<Tensor> {
        let (h, kv) = (self.n_head, self.n_kv);
        let hd = a.dim(2)? / h;
        let heads = self
            .qkv
            .forward(a)? // [K, N, (H + 2KV)·hd]
            .reshape((s.k * s.b, s.t, h + 2 * kv, hd))?
            .transpose(1, 2)?; // [KB, H + 2KV, T, hd]
        let part = |from: usize, n: usize| -> Result<Tensor> {
            Ok(heads.narrow(1, from, n)?.contiguous()?)
        };
        let q = rope.apply(&part(0, h)?, s.t, fused)?;
        let k = rope.apply(&part(h, kv)?, s.t, fused)?;
        let v = part(h + kv, kv)?;
        // Each key/value head serves H / KV consecutive query heads.
        let (k, v) = if kv < h {
            let repeat = |x: &Tensor| -> Result<Tensor> {
                Ok(x.unsqueeze(2)?
                    .broadcast_as((s.k * s.b, kv, h / kv, s.t, hd))?
                    .reshape((s.k * s.b, h, s.t, hd))?)
            };
            (repeat(&k)?, repeat(&v)?)
        } else {
            (k, v)
        };
        let scale = 1.0 / (hd as f64).sqrt();
        let mask = mask.narrow(0, 0, s.t)?.narrow(1, 0, s.t)?;
        let att = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&mask)?;
        let y = softmax_last(&att)?
            .matmul(&v)? // [KB, H, T, hd]
            .transpose(1, 2)?
            .contiguous()?
            .reshape((s.k, s.b * s.t, h * hd))?;
        self.out.forward(&y)
    }
}

/// The MLP of a rotary family.
#[derive(Debug)]
enum FamilyMlp {
    /// NeoX: `fc`, erf-GELU, `proj`, with biases.
    Gelu { fc: Dense, proj: Dense },
    /// Llama: `down(silu(x · W_gate) ∘ (x · W_up))`.
    SwiGlu { gate: Dense, up: Dense, down: Dense },
}

impl FamilyMlp {
    fn new(cfg: &ModelConfig, p: &mut ParamBuilder, layer: usize) -> Result<Self> {
        let (d, f) = (cfg.d_model, cfg.d_ff);
        let prefix = format!("h.{layer}.mlp");
        Ok(match cfg.arch {
            Arch::Llama(_) => FamilyMlp::SwiGlu {
                gate: Dense::new(cfg, p, (&prefix, "gate"), (d, f), cfg.init_std)?,
                up: Dense::new(cfg, p, (&prefix, "up"), (d, f), cfg.init_std)?,
                down: Dense::new(cfg, p, (&prefix, "down"), (f, d), proj_std(cfg))?,
            },
            _ => FamilyMlp::Gelu {
                fc: Dense::new(cfg, p, (&prefix, "fc"), (d, f), cfg.init_std)?,
                proj: Dense::new(cfg, p, (&prefix, "proj"), (f, d), proj_std(cfg))?,
            },
        })
    }

    fn forward(&self, a: &Tensor, fused: bool) -> Result<Tensor> {
        match self {
            FamilyMlp::Gelu { fc, proj } => proj.forward(&fc.forward(a)?.gelu_erf()?),
            FamilyMlp::SwiGlu { gate, up, down } if fused => {
                down.forward(&fused::silu_mul(&gate.forward(a)?, &up.forward(a)?)?)
            }
            FamilyMlp::SwiGlu { gate, up, down } => {
                down.forward(&(gate.forward(a)?.silu()? * up.forward(a)?)?)
            }
        }
    }
}

/// One block of a rotary family.
#[derive(Debug)]
pub(crate) struct RopeBlock {
    ln1: Norm,
    attn: RopeAttention,
    ln2: Norm,
    mlp: FamilyMlp,
    parallel: bool,
}

impl RopeBlock {
    pub fn new(cfg: &ModelConfig, p: &mut ParamBuilder, layer: usize) -> Result<Self> {
        let h = |s: &str| format!("h.{layer}.{s}");
        Ok(Self {
            ln1: Norm::new(cfg, p, &h("ln1"), &h("ln_1"))?,
            attn: RopeAttention::new(cfg, p, layer)?,
            ln2: Norm::new(cfg, p, &h("ln2"), &h("ln_2"))?,
            mlp: FamilyMlp::new(cfg, p, layer)?,
            parallel: matches!(&cfg.arch, Arch::NeoX(n) if n.parallel_residual),
        })
    }

    /// The block's LoRA adapters, by the name of the weight each adapts.
    pub fn adapters(&self) -> Vec<(&'static str, &Option<Adapter>)> {
        let mut out = vec![
            ("attn.w_qkv", &self.attn.qkv.lora),
            ("attn.w_o", &self.attn.out.lora),
        ];
        match &self.mlp {
            FamilyMlp::Gelu { fc, proj } => {
                out.extend([("mlp.w_fc", &fc.lora), ("mlp.w_proj", &proj.lora)]);
            }
            FamilyMlp::SwiGlu { gate, up, down } => out.extend([
                ("mlp.w_gate", &gate.lora),
                ("mlp.w_up", &up.lora),
                ("mlp.w_down", &down.lora),
            ]),
        }
        out
    }

    /// The block; `fused`: through the fused kernels (f32 on the CPU:
    /// the caller checks) where the family has them — RMSNorm, LayerNorm
    /// with a gain per model, rotary positions and SwiGLU's gate.
    pub fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        mask: &Tensor,
        (s, fused): (Dims, bool),
    ) -> Result<Tensor> {
        let a = self.ln1.forward_with(x, fused)?;
        let attn = self.attn.forward(&a, rope, mask, (s, fused))?;
        if self.parallel {
            let mlp = self.mlp.forward(&self.ln2.forward_with(x, fused)?, fused)?;
            return Ok(((x + attn)? + mlp)?);
        }
        let x = (x + attn)?;
        let mlp = self
            .mlp
            .forward(&self.ln2.forward_with(&x, fused)?, fused)?;
        Ok((&x + mlp)?)
    }
}
