//! The decoder-only transformer, with a leading ensemble axis `K` on every
//! parameter: `K` models with different data train in one graph, their
//! matrix products batched; `K = 1` is an ordinary model.
//!
//! Every operation used here carries a backward pass in candle (layer norm,
//! softmax and log-softmax are composed from primitive ops, never the fused
//! `candle_nn` kernels, which have none).

use candle_core::{DType, Device, Tensor, Var, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fused::{self, Kernels};

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
    /// [`Error::Config`] naming the bad field.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.d_model == 0 || self.n_layer == 0 || self.n_head == 0 || self.d_ff == 0 {
            return bad("d_model, n_layer, n_head and d_ff must be positive".into());
        }
        if !self.d_model.is_multiple_of(self.n_head) {
            return bad(format!(
                "d_model {} is not a multiple of n_head {}",
                self.d_model, self.n_head
            ));
        }
        if self.ctx < 2 {
            return bad(format!("ctx {} must be at least 2", self.ctx));
        }
        if self.vocab_size < 2 {
            return bad(format!("vocab_size {} is too small", self.vocab_size));
        }
        if !(self.init_std > 0.0 && self.init_std.is_finite()) {
            return bad(format!("init_std {} must be positive", self.init_std));
        }
        Ok(())
    }

    /// Parameters of one model.
    pub fn n_params(&self) -> usize {
        let (d, f, v) = (self.d_model, self.d_ff, self.vocab_size);
        let block = 4 * d + d * 3 * d + 3 * d + d * d + d + d * f + f + f * d + d;
        v * d
            + self.ctx * d
            + self.n_layer * block
            + 2 * d
            + if self.tie_embeddings { 0 } else { d * v }
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
        let per_layer = 2.0 * (3.0 * d * d + d * d + 2.0 * d * f) + 2.0 * 2.0 * t * d;
        3.0 * (self.n_layer as f64 * per_layer + 2.0 * d * v)
    }
}

/// How a parameter is initialised.
#[derive(Debug, Clone, Copy)]
enum Init {
    Normal(f64),
    Ones,
    Zeros,
}

/// One parameter: a name, its variable (shape `[K, ...]`) and whether
/// weight decay applies.
#[derive(Debug, Clone)]
pub struct Param {
    /// Name, e.g. `h.0.attn.w_qkv`.
    pub name: String,
    /// The variable; axis 0 is the ensemble axis.
    pub var: Var,
    /// Weight decay applies (matrices and embeddings, not gains and biases).
    pub decay: bool,
}

/// An ensemble of `K` transformers sharing one graph.
#[derive(Debug)]
pub struct Gpt {
    cfg: ModelConfig,
    k: usize,
    params: Vec<Param>,
    mask: Tensor,
    kernels: Kernels,
}

/// Every parameter of a model of shape `cfg`, in order: name, shape
/// (without the ensemble axis), initialisation, weight decay.
fn param_specs(cfg: &ModelConfig) -> Vec<(String, Vec<usize>, Init, bool)> {
    let (d, f, v) = (cfg.d_model, cfg.d_ff, cfg.vocab_size);
    let std = cfg.init_std;
    let proj_std = std / (2.0 * cfg.n_layer as f64).sqrt();
    let mut specs: Vec<(String, Vec<usize>, Init, bool)> = vec![
        ("wte".into(), vec![v, d], Init::Normal(std), true),
        ("wpe".into(), vec![cfg.ctx, d], Init::Normal(std), true),
    ];
    for l in 0..cfg.n_layer {
        let p = |s: &str| format!("h.{l}.{s}");
        specs.extend([
            (p("ln1.g"), vec![1, d], Init::Ones, false),
            (p("ln1.b"), vec![1, d], Init::Zeros, false),
            (p("attn.w_qkv"), vec![d, 3 * d], Init::Normal(std), true),
            (p("attn.b_qkv"), vec![1, 3 * d], Init::Zeros, false),
            (p("attn.w_o"), vec![d, d], Init::Normal(proj_std), true),
            (p("attn.b_o"), vec![1, d], Init::Zeros, false),
            (p("ln2.g"), vec![1, d], Init::Ones, false),
            (p("ln2.b"), vec![1, d], Init::Zeros, false),
            (p("mlp.w_fc"), vec![d, f], Init::Normal(std), true),
            (p("mlp.b_fc"), vec![1, f], Init::Zeros, false),
            (p("mlp.w_proj"), vec![f, d], Init::Normal(proj_std), true),
            (p("mlp.b_proj"), vec![1, d], Init::Zeros, false),
        ]);
    }
    specs.push(("ln_f.g".into(), vec![1, d], Init::Ones, false));
    specs.push(("ln_f.b".into(), vec![1, d], Init::Zeros, false));
    if !cfg.tie_embeddings {
        specs.push(("w_head".into(), vec![d, v], Init::Normal(std), true));
    }
    specs
}

/// Per-layer parameter slots (indices into `params`).
const PER_LAYER: usize = 12;

impl Gpt {
    /// `K = seeds.len()` models, model `k` initialised from `seeds[k]` alone,
    /// so a model's initial weights do not depend on its ensemble.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad config or no seed; candle errors.
    pub fn new(cfg: &ModelConfig, seeds: &[u64], dtype: DType, device: &Device) -> Result<Self> {
        cfg.check()?;
        if seeds.is_empty() {
            return Err(Error::Config("an ensemble needs at least one model".into()));
        }
        let k = seeds.len();
        let specs = param_specs(cfg);
        // Each model draws all of its parameters, in order, from its own stream.
        let mut rngs: Vec<ChaCha8Rng> = seeds
            .iter()
            .map(|&s| ChaCha8Rng::seed_from_u64(s))
            .collect();
        let mut params = Vec::with_capacity(specs.len());
        for (name, shape, init, decay) in specs {
            let numel: usize = shape.iter().product();
            let mut data = Vec::with_capacity(k * numel);
            for rng in rngs.iter_mut() {
                match init {
                    Init::Ones => data.extend(std::iter::repeat_n(1f32, numel)),
                    Init::Zeros => data.extend(std::iter::repeat_n(0f32, numel)),
                    Init::Normal(s) => data.extend((0..numel).map(|_| (s * normal(rng)) as f32)),
                }
            }
            let mut full = vec![k];
            full.extend(shape);
            let t = Tensor::from_vec(data, full, device)?.to_dtype(dtype)?;
            params.push(Param {
                name,
                var: Var::from_tensor(&t)?,
                decay,
            });
        }
        Self::assemble(cfg, k, params, dtype, device)
    }

    fn assemble(
        cfg: &ModelConfig,
        k: usize,
        params: Vec<Param>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let t = cfg.ctx;
        let mask: Vec<f32> = (0..t * t)
            .map(|i| if i % t > i / t { -1e9 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), device)?.to_dtype(dtype)?;
        Ok(Self {
            cfg: cfg.clone(),
            k,
            params,
            mask,
            kernels: Kernels::auto(dtype, device),
        })
    }

    /// `k` models that all start from the weights in `weights` (e.g. a
    /// pretrained checkpoint's, [`crate::Checkpoint`]), each tensor named
    /// as in [`Gpt::params`] and shaped without the ensemble axis.
    ///
    /// # Errors
    /// [`Error::Config`] listing every tensor that is missing or has
    /// another shape; candle errors.
    pub fn from_weights(
        cfg: &ModelConfig,
        weights: &candle_nn::VarBuilder<'_>,
        k: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        cfg.check()?;
        if k == 0 {
            return Err(Error::Config("an ensemble needs at least one model".into()));
        }
        let specs = param_specs(cfg);
        let mut problems = Vec::new();
        for (name, shape, _, _) in &specs {
            if !weights.contains_tensor(name) {
                problems.push(format!("{name} (shape {shape:?}) is missing"));
            } else {
                let got = weights.get_unchecked(name)?;
                if got.dims() != shape.as_slice() {
                    problems.push(format!(
                        "{name} has shape {:?}, the model needs {shape:?}",
                        got.dims()
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::Config(format!(
                "the weights do not fit a model of d_model {}, {} layers, d_ff {}, context {}, vocabulary {}: {}",
                cfg.d_model,
                cfg.n_layer,
                cfg.d_ff,
                cfg.ctx,
                cfg.vocab_size,
                if problems.len() > 6 {
                    format!(
                        "{}; and {} more",
                        problems[..6].join("; "),
                        problems.len() - 6
                    )
                } else {
                    problems.join("; ")
                }
            )));
        }
        let mut params = Vec::with_capacity(specs.len());
        for (name, shape, _, decay) in specs {
            let w = weights
                .get(shape.as_slice(), &name)?
                .to_device(device)?
                .to_dtype(dtype)?;
            let mut full = vec![k];
            full.extend(&shape);
            let t = w.unsqueeze(0)?.broadcast_as(full)?.contiguous()?;
            // A copy, so that training never writes into the source.
            let t = t.copy()?;
            params.push(Param {
                name,
                var: Var::from_tensor(&t)?,
                decay,
            });
        }
        Self::assemble(cfg, k, params, dtype, device)
    }

    /// Use `kernels` for the element-wise blocks. [`Kernels::Fused`] is
    /// the default on the CPU in f32; asking for it elsewhere keeps the
    /// composition, since the fused kernels exist for that case only.
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        let device = self.mask.device().clone();
        self.kernels = match kernels {
            Kernels::Fused => Kernels::auto(self.mask.dtype(), &device),
            Kernels::Composed => Kernels::Composed,
        };
        self
    }

    /// The kernels in use.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Ensemble size `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// All parameters, in a fixed order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    fn p(&self, i: usize) -> &Tensor {
        self.params[i].var.as_tensor()
    }

    /// Logits `[K, B·T, V]` for token ids `[K, B, T]` (`T ≤ ctx`).
    ///
    /// # Errors
    /// Candle errors, e.g. for a bad shape.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (k, b, t) = ids.dims3()?;
        let cfg = &self.cfg;
        let (d, v, h) = (cfg.d_model, cfg.vocab_size, cfg.n_head);
        if k != self.k || t > cfg.ctx {
            return Err(Error::Config(format!(
                "input [{k}, {b}, {t}] does not fit an ensemble of {} with ctx {}",
                self.k, cfg.ctx
            )));
        }
        if self.kernels == Kernels::Fused {
            return self.forward_fused(ids, b, t);
        }
        let n = b * t;
        let dev = ids.device();
        // Token embedding: model k's rows live at k·V .. (k+1)·V of the flat table.
        let offsets: Vec<u32> = (0..k).map(|i| (i * v) as u32).collect();
        let offsets = Tensor::from_vec(offsets, (k, 1, 1), dev)?;
        let flat_ids = ids.broadcast_add(&offsets)?.flatten_all()?;
        let wte = self.p(0);
        let x = wte.reshape((k * v, d))?.index_select(&flat_ids, 0)?;
        let pos = self.p(1).narrow(1, 0, t)?;
        let mut x = x
            .reshape((k, b, t, d))?
            .broadcast_add(&pos.unsqueeze(1)?)?
            .reshape((k, n, d))?;
        let mask = self.mask.narrow(0, 0, t)?.narrow(1, 0, t)?;
        let hd = d / h;
        let scale = 1.0 / (hd as f64).sqrt();
        for l in 0..cfg.n_layer {
            let o = 2 + l * PER_LAYER;
            // Attention.
            let a = layer_norm(&x, self.p(o), self.p(o + 1))?;
            let qkv = a.matmul(self.p(o + 2))?.broadcast_add(self.p(o + 3))?; // [K, N, 3D]
            let qkv = qkv
                .reshape((k * b, t, 3, h, hd))?
                .permute((2, 0, 3, 1, 4))?; // [3, KB, H, T, hd]
            let q = qkv.get(0)?.contiguous()?.reshape((k * b * h, t, hd))?;
            let kk = qkv.get(1)?.contiguous()?.reshape((k * b * h, t, hd))?;
            let vv = qkv.get(2)?.contiguous()?.reshape((k * b * h, t, hd))?;
            let att = (q.matmul(&kk.t()?)? * scale)?.broadcast_add(&mask)?;
            let att = softmax_last(&att)?;
            let y = att.matmul(&vv)?; // [KBH, T, hd]
            let y = y
                .reshape((k * b, h, t, hd))?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((k, n, d))?;
            let y = y.matmul(self.p(o + 4))?.broadcast_add(self.p(o + 5))?;
            x = (x + y)?;
            // MLP.
            let a = layer_norm(&x, self.p(o + 6), self.p(o + 7))?;
            let y = a
                .matmul(self.p(o + 8))?
                .broadcast_add(self.p(o + 9))?
                .gelu()?;
            let y = y.matmul(self.p(o + 10))?.broadcast_add(self.p(o + 11))?;
            x = (x + y)?;
        }
        let o = 2 + cfg.n_layer * PER_LAYER;
        let x = layer_norm(&x, self.p(o), self.p(o + 1))?;
        let logits = if cfg.tie_embeddings {
            x.matmul(&wte.transpose(1, 2)?)?
        } else {
            x.matmul(self.p(o + 2))?
        };
        Ok(logits)
    }

    /// [`Gpt::forward`] through the fused CPU kernels: ten graph nodes per
    /// block instead of about forty, since candle's backward pass costs a
    /// zeroed buffer and an addition per node on top of the node's own work.
    fn forward_fused(&self, ids: &Tensor, b: usize, t: usize) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (d, h) = (cfg.d_model, cfg.n_head);
        let scale = 1.0 / ((d / h) as f32).sqrt();
        let wte = self.p(0);
        let mut x = fused::embed(wte, self.p(1), ids)?; // [K, B·T, D]
        for l in 0..cfg.n_layer {
            let o = 2 + l * PER_LAYER;
            let a = fused::layer_norm(&x, self.p(o), self.p(o + 1))?;
            let y = fused::attention(&a.matmul(self.p(o + 2))?, self.p(o + 3), t, h, scale)?;
            x = fused::residual_bias(&x, &y.matmul(self.p(o + 4))?, self.p(o + 5))?;
            let a = fused::layer_norm(&x, self.p(o + 6), self.p(o + 7))?;
            let y = fused::bias_gelu(&a.matmul(self.p(o + 8))?, self.p(o + 9))?;
            x = fused::residual_bias(&x, &y.matmul(self.p(o + 10))?, self.p(o + 11))?;
        }
        let o = 2 + cfg.n_layer * PER_LAYER;
        let x = fused::layer_norm(&x, self.p(o), self.p(o + 1))?;
        let _ = b;
        Ok(if cfg.tie_embeddings {
            x.matmul(&wte.transpose(1, 2)?)?
        } else {
            x.matmul(self.p(o + 2))?
        })
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

/// [`token_nll`] with the given kernels ([`Kernels::Fused`] needs f32 logits
/// on the CPU and falls back to the composition otherwise).
///
/// # Errors
/// Candle errors.
pub fn token_nll_with(logits: &Tensor, targets: &Tensor, kernels: Kernels) -> Result<Tensor> {
    if kernels == Kernels::Fused && Kernels::auto(logits.dtype(), logits.device()) == Kernels::Fused
    {
        return Ok(fused::cross_entropy(logits, targets)?);
    }
    let logp = log_softmax_last(logits)?;
    let picked = logp.gather(&targets.unsqueeze(D::Minus1)?, D::Minus1)?;
    Ok(picked.squeeze(D::Minus1)?.neg()?)
}

/// Layer normalisation over the last axis with gain and bias `[K, 1, D]`,
/// composed from primitive ops so that every input gets a gradient.
fn layer_norm(x: &Tensor, g: &Tensor, b: &Tensor) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
    Ok(xn.broadcast_mul(g)?.broadcast_add(b)?)
}

/// Softmax over the last axis. The maximum is detached: softmax is
/// shift-invariant, so this is exact and keeps the graph simple.
fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&m)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// Log-softmax over the last axis (max detached, as [`softmax_last`]).
fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?.detach();
    let z = x.broadcast_sub(&m)?;
    let lse = z.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(z.broadcast_sub(&lse)?)
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
