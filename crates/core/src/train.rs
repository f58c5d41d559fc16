//! Training an ensemble: AdamW with warmup and cosine decay, each model on
//! its own subset, with its own batches, schedule and gradient clipping.
//!
//! Nothing couples the `K` models of an ensemble: the loss is the sum of
//! the per-model mean losses (so model `k`'s gradient is its own loss's),
//! clipping uses each model's own norm, and a model whose steps are done
//! gets learning rate 0. A model trained inside an ensemble therefore gives
//! the record it would give alone, up to float rounding.

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::{TokenizedCorpus, Window};
use crate::error::{Error, Result};
use crate::fused::Kernels;
use crate::model::{token_nll_with, Gpt, ModelConfig};

/// How to train.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `epochs` | 64 | passes over the model's own subset (copies repeat a unit within an epoch); long training raises memorization above training noise: on the quickstart corpus 16 models at 64 epochs give a more reliable ranking than 64 models at 16 (README, "Statistical efficiency") |
/// | `batch_size` | 16 | windows per step |
/// | `lr` | 3e-3 | peak learning rate |
/// | `warmup_frac` | 0.05 | fraction of steps with linear warm-up |
/// | `min_lr_frac` | 0.1 | final learning rate as a fraction of `lr` (cosine decay) |
/// | `weight_decay` | 0.01 | decoupled weight decay on matrices and embeddings |
/// | `beta1`, `beta2`, `eps` | 0.9, 0.99, 1e-8 | AdamW moments |
/// | `grad_clip` | 1.0 | clip each model's global gradient norm (0 = off) |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Epochs over the subset.
    pub epochs: usize,
    /// Windows per batch.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up fraction.
    pub warmup_frac: f64,
    /// Final/peak learning-rate ratio.
    pub min_lr_frac: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Adam β₁.
    pub beta1: f64,
    /// Adam β₂.
    pub beta2: f64,
    /// Adam ε.
    pub eps: f64,
    /// Per-model gradient-norm clip (0 disables).
    pub grad_clip: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 64,
            batch_size: 16,
            lr: 3e-3,
            warmup_frac: 0.05,
            min_lr_frac: 0.1,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            grad_clip: 1.0,
        }
    }
}

impl TrainConfig {
    /// Validate.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad field.
    pub fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_string()));
        if self.epochs == 0 {
            return bad("epochs must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr must be positive");
        }
        if !(0.0..1.0).contains(&self.warmup_frac) || !(0.0..=1.0).contains(&self.min_lr_frac) {
            return bad("warmup_frac must be in [0, 1) and min_lr_frac in [0, 1]");
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return bad("beta1 and beta2 must be in [0, 1)");
        }
        if self.weight_decay < 0.0 || self.grad_clip < 0.0 || self.eps <= 0.0 {
            return bad("weight_decay and grad_clip must be ≥ 0 and eps > 0");
        }
        Ok(())
    }

    /// Learning rate at `step` of a run of `total` steps.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        let warm = ((self.warmup_frac * total as f64).round() as usize).max(1);
        if step < warm {
            return self.lr * (step + 1) as f64 / warm as f64;
        }
        let span = (total - warm).max(1) as f64;
        let progress = ((step - warm) as f64 / span).min(1.0);
        let min = self.lr * self.min_lr_frac;
        min + (self.lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// A model's training subset: `(document, copies)` pairs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subset {
    /// Included documents with their copy counts (> 0).
    pub entries: Vec<(usize, u32)>,
}

impl Subset {
    /// From a per-document copies row (0 = excluded).
    pub fn from_copies(copies: &[u32]) -> Self {
        Self {
            entries: copies
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(d, &c)| (d, c))
                .collect(),
        }
    }
}

/// One model to train: its index (for messages), subset and seeds.
#[derive(Debug, Clone)]
pub struct ModelJob {
    /// Model index in the experiment.
    pub model: usize,
    /// Its training subset.
    pub subset: Subset,
    /// Seed of its initial weights.
    pub init_seed: u64,
    /// Seed of its batch order.
    pub data_seed: u64,
}

/// What training did for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainStats {
    /// Optimiser steps.
    pub steps: usize,
    /// Target tokens trained on (all epochs).
    pub tokens: u64,
    /// Mean training loss over the last epoch (nats/token).
    /// `None` when the model's subset was empty (it trained on nothing).
    pub final_loss: Option<f64>,
}

/// The per-model plan: batches of windows for every step.
struct Plan {
    batches: Vec<Vec<Window>>,
    last_epoch_start: usize,
}

/// SplitMix64's finaliser: a well-mixed 64-bit hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The batches of one model.
///
/// Each epoch orders the model's windows by a key hashed from
/// `(data_seed, epoch, document, window, copy)`. With per-model seeds this
/// is a uniform shuffle. With a seed shared by all models (common random
/// numbers) the windows two models share come in the same relative order,
/// so adding or removing a document moves only that document's windows:
/// the models differ in their subsets and in little else.
fn plan(corpus: &TokenizedCorpus, job: &ModelJob, cfg: &TrainConfig) -> Result<Plan> {
    let mut pool: Vec<(Window, u64)> = Vec::new();
    for &(d, c) in &job.subset.entries {
        if d >= corpus.n_docs() {
            return Err(Error::SubsetIndex {
                model: job.model,
                doc: d,
                n_docs: corpus.n_docs(),
            });
        }
        for copy in 0..u64::from(c) {
            pool.extend(corpus.windows(d).iter().map(|&w| (w, copy)));
        }
    }
    let mut batches = Vec::new();
    let mut last_epoch_start = 0;
    for epoch in 0..cfg.epochs {
        last_epoch_start = batches.len();
        let e = mix(job.data_seed ^ mix(epoch as u64));
        let mut order: Vec<(u64, Window)> = pool
            .iter()
            .map(|&(w, copy)| {
                let key = mix(e ^ mix(u64::from(w.doc) ^ mix(u64::from(w.start) ^ mix(copy))));
                (key, w)
            })
            .collect();
        order.sort_unstable_by_key(|&(key, w)| (key, w.doc, w.start));
        let order: Vec<Window> = order.into_iter().map(|(_, w)| w).collect();
        batches.extend(order.chunks(cfg.batch_size).map(<[Window]>::to_vec));
    }
    Ok(Plan {
        batches,
        last_epoch_start,
    })
}

/// Progress callback: `(step, total_steps)`.
pub type StepHook<'a> = &'a mut dyn FnMut(usize, usize);

/// Train `jobs.len()` models as one ensemble.
///
/// # Errors
/// Bad configs, subsets naming unknown documents, divergence (naming the
/// model), candle errors.
pub fn train_ensemble(
    model_cfg: &ModelConfig,
    cfg: &TrainConfig,
    corpus: &TokenizedCorpus,
    jobs: &[ModelJob],
    dtype: DType,
    device: &Device,
    hook: Option<StepHook<'_>>,
) -> Result<(Gpt, Vec<TrainStats>)> {
    let kernels = Kernels::auto(dtype, device);
    train_ensemble_with_kernels(model_cfg, cfg, corpus, jobs, dtype, device, kernels, hook)
}

/// [`train_ensemble`] with the element-wise kernels chosen by the caller
/// (the fused CPU kernels are the default; the composition is the
/// reference they are tested against).
///
/// # Errors
/// As [`train_ensemble`].
#[allow(clippy::too_many_arguments)]
pub fn train_ensemble_with_kernels(
    model_cfg: &ModelConfig,
    cfg: &TrainConfig,
    corpus: &TokenizedCorpus,
    jobs: &[ModelJob],
    dtype: DType,
    device: &Device,
    kernels: Kernels,
    mut hook: Option<StepHook<'_>>,
) -> Result<(Gpt, Vec<TrainStats>)> {
    cfg.check()?;
    if corpus.ctx() > model_cfg.ctx || corpus.vocab_size() > model_cfg.vocab_size {
        return Err(Error::Config(format!(
            "corpus windows (ctx {}, vocab {}) do not fit the model (ctx {}, vocab {})",
            corpus.ctx(),
            corpus.vocab_size(),
            model_cfg.ctx,
            model_cfg.vocab_size
        )));
    }
    let seeds: Vec<u64> = jobs.iter().map(|j| j.init_seed).collect();
    let model = Gpt::new(model_cfg, &seeds, dtype, device)?.with_kernels(kernels);
    let plans = jobs
        .iter()
        .map(|j| plan(corpus, j, cfg))
        .collect::<Result<Vec<_>>>()?;
    let k = jobs.len();
    let total: Vec<usize> = plans.iter().map(|p| p.batches.len()).collect();
    let max_steps = total.iter().copied().max().unwrap_or(0);
    let mut opt = AdamW::new(&model, cfg)?;
    let mut stats: Vec<TrainStats> = total
        .iter()
        .map(|&steps| TrainStats {
            steps,
            tokens: 0,
            final_loss: None,
        })
        .collect();
    let mut last_loss = vec![0f64; k];
    let mut last_tokens = vec![0f64; k];
    let empty: Vec<Window> = Vec::new();
    for step in 0..max_steps {
        let groups: Vec<&[Window]> = plans
            .iter()
            .map(|p| p.batches.get(step).unwrap_or(&empty).as_slice())
            .collect();
        let batch = corpus.batch(&groups, cfg.batch_size, device)?;
        let logits = model.forward(&batch.ids)?;
        let nll = token_nll_with(&logits, &batch.targets, model.kernels())?;
        let nll = nll.to_dtype(DType::F32)?;
        let per_model = (nll * &batch.mask)?
            .sum(1)?
            .div(&batch.counts.clamp(1f32, f32::MAX)?)?;
        let loss = per_model.to_dtype(dtype)?.sum_all()?;
        let grads = loss.backward()?;
        let losses: Vec<f32> = per_model.to_vec1()?;
        let lrs: Vec<f64> = (0..k)
            .map(|m| {
                if step < total[m] {
                    cfg.lr_at(step, total[m])
                } else {
                    0.0
                }
            })
            .collect();
        for m in 0..k {
            if step >= total[m] {
                continue;
            }
            if !losses[m].is_finite() {
                return Err(Error::Diverged {
                    model: jobs[m].model,
                    step,
                    loss: losses[m],
                });
            }
            let n = f64::from(batch.n_tokens[m]);
            stats[m].tokens += n as u64;
            if step >= plans[m].last_epoch_start {
                last_loss[m] += f64::from(losses[m]) * n;
                last_tokens[m] += n;
            }
        }
        opt.step(&model, &grads, &lrs)?;
        if let Some(h) = hook.as_mut() {
            h(step + 1, max_steps);
        }
    }
    for m in 0..k {
        if last_tokens[m] > 0.0 {
            stats[m].final_loss = Some(last_loss[m] / last_tokens[m]);
        }
    }
    Ok((model, stats))
}

/// AdamW with a learning rate per ensemble member and per-model clipping.
///
/// On the CPU in f32 the update runs as one fused loop over host slices
/// (moments kept on the host): a dozen tensor ops per parameter, each
/// allocating, become one pass. Elsewhere it runs as tensor ops on the
/// device. Both compute the same formula per element (tested).
struct AdamW {
    state: OptState,
    t: i32,
    cfg: TrainConfig,
}

/// Per-model factors that scale each model's gradient (squared norms `sq`)
/// to norm ≤ `clip` (0 = no clipping).
fn clip_factors(clip: f64, sq: &[f64]) -> Vec<f64> {
    sq.iter()
        .map(|&s| {
            let norm = s.sqrt();
            if clip > 0.0 && norm > clip {
                clip / (norm + 1e-6)
            } else {
                1.0
            }
        })
        .collect()
}

enum OptState {
    Host { m: Vec<Vec<f32>>, v: Vec<Vec<f32>> },
    Device { m: Vec<Tensor>, v: Vec<Tensor> },
}

impl AdamW {
    fn new(model: &Gpt, cfg: &TrainConfig) -> Result<Self> {
        let p0 = model.params()[0].var.as_tensor();
        let host = p0.device().is_cpu() && p0.dtype() == DType::F32;
        Self::with_path(model, cfg, host)
    }

    fn with_path(model: &Gpt, cfg: &TrainConfig, host: bool) -> Result<Self> {
        let state = if host {
            let zeros = |p: &crate::model::Param| vec![0f32; p.var.as_tensor().elem_count()];
            OptState::Host {
                m: model.params().iter().map(zeros).collect(),
                v: model.params().iter().map(zeros).collect(),
            }
        } else {
            let zeros = |p: &crate::model::Param| p.var.as_tensor().zeros_like();
            OptState::Device {
                m: model
                    .params()
                    .iter()
                    .map(zeros)
                    .collect::<candle_core::Result<_>>()?,
                v: model
                    .params()
                    .iter()
                    .map(zeros)
                    .collect::<candle_core::Result<_>>()?,
            }
        };
        Ok(Self {
            state,
            t: 0,
            cfg: cfg.clone(),
        })
    }

    fn step(
        &mut self,
        model: &Gpt,
        grads: &candle_core::backprop::GradStore,
        lrs: &[f64],
    ) -> Result<()> {
        self.t += 1;
        let k = model.k();
        let params = model.params();
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let bc1 = 1.0 - b1.powi(self.t);
        let bc2 = 1.0 - b2.powi(self.t);
        match &mut self.state {
            OptState::Host { m, v } => {
                let mut gs: Vec<Vec<f32>> = Vec::with_capacity(params.len());
                let mut sq = vec![0f64; k];
                for p in params {
                    let t = p.var.as_tensor();
                    let g: Vec<f32> = match grads.get(t) {
                        Some(g) => g.flatten_all()?.to_vec1()?,
                        None => vec![0f32; t.elem_count()],
                    };
                    let per = g.len() / k;
                    for (kk, s) in sq.iter_mut().enumerate() {
                        *s += g[kk * per..(kk + 1) * per]
                            .iter()
                            .map(|&x| f64::from(x) * f64::from(x))
                            .sum::<f64>();
                    }
                    gs.push(g);
                }
                let factor = clip_factors(self.cfg.grad_clip, &sq);
                let (b1f, b2f) = (b1 as f32, b2 as f32);
                let (ibc1, ibc2) = ((1.0 / bc1) as f32, (1.0 / bc2) as f32);
                let eps = self.cfg.eps as f32;
                for (i, p) in params.iter().enumerate() {
                    let t = p.var.as_tensor();
                    let mut theta: Vec<f32> = t.flatten_all()?.to_vec1()?;
                    let per = theta.len() / k;
                    let wd = if p.decay {
                        self.cfg.weight_decay as f32
                    } else {
                        0.0
                    };
                    for kk in 0..k {
                        let lr = lrs[kk] as f32;
                        if lr == 0.0 {
                            continue;
                        }
                        let f = factor[kk] as f32;
                        let r = kk * per..(kk + 1) * per;
                        let (th, g, mm, vv) = (
                            &mut theta[r.clone()],
                            &gs[i][r.clone()],
                            &mut m[i][r.clone()],
                            &mut v[i][r],
                        );
                        for j in 0..per {
                            let gj = g[j] * f;
                            mm[j] = b1f * mm[j] + (1.0 - b1f) * gj;
                            vv[j] = b2f * vv[j] + (1.0 - b2f) * gj * gj;
                            let upd = (mm[j] * ibc1) / ((vv[j] * ibc2).sqrt() + eps) + wd * th[j];
                            th[j] -= lr * upd;
                        }
                    }
                    p.var
                        .set(&Tensor::from_vec(theta, t.shape(), t.device())?)?;
                }
            }
            OptState::Device { m: ms, v: vs } => {
                let mut gs = Vec::with_capacity(params.len());
                for p in params {
                    gs.push(match grads.get(p.var.as_tensor()) {
                        Some(g) => g.clone(),
                        None => p.var.as_tensor().zeros_like()?,
                    });
                }
                let dev = params[0].var.device();
                let dtype = params[0].var.dtype();
                let mut sq = vec![0f64; k];
                for g in &gs {
                    let per: Vec<f32> = g
                        .to_dtype(DType::F32)?
                        .sqr()?
                        .flatten_from(1)?
                        .sum(1)?
                        .to_vec1()?;
                    for (s, x) in sq.iter_mut().zip(per) {
                        *s += f64::from(x);
                    }
                }
                let factor = clip_factors(self.cfg.grad_clip, &sq);
                for (i, p) in params.iter().enumerate() {
                    let theta = p.var.as_tensor();
                    let mut shape = vec![k];
                    shape.extend(std::iter::repeat_n(1, theta.rank() - 1));
                    let col = |v: Vec<f64>| -> Result<Tensor> {
                        Ok(Tensor::from_vec(v, shape.as_slice(), dev)?.to_dtype(dtype)?)
                    };
                    let g = gs[i].broadcast_mul(&col(factor.clone())?)?;
                    let m = ((&ms[i] * b1)? + (&g * (1.0 - b1))?)?;
                    let v = ((&vs[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
                    let mut upd = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + self.cfg.eps)?)?;
                    if p.decay && self.cfg.weight_decay > 0.0 {
                        upd = (upd + (theta * self.cfg.weight_decay)?)?;
                    }
                    let new = (theta - upd.broadcast_mul(&col(lrs.to_vec())?)?)?;
                    p.var.set(&new)?;
                    ms[i] = m;
                    vs[i] = v;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_min() {
        let cfg = TrainConfig {
            lr: 1.0,
            warmup_frac: 0.1,
            min_lr_frac: 0.1,
            ..Default::default()
        };
        // 100 steps: warm-up of 10 steps reaching 1.0 at step 9.
        assert!((cfg.lr_at(0, 100) - 0.1).abs() < 1e-12);
        assert!((cfg.lr_at(9, 100) - 1.0).abs() < 1e-12);
        assert!((cfg.lr_at(10, 100) - 1.0).abs() < 1e-12);
        // Halfway through the decay: 0.1 + 0.9 * 0.5 = 0.55.
        assert!((cfg.lr_at(55, 100) - 0.55).abs() < 1e-12);
        assert!((cfg.lr_at(100, 100) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn fused_host_adamw_matches_tensor_adamw() {
        use crate::corpus::{Corpus, Document};
        use crate::data::TokenizedCorpus;
        use crate::model::token_nll;
        use crate::tokenizer::ByteTokenizer;
        let cfg = ModelConfig {
            d_model: 8,
            d_ff: 16,
            n_head: 2,
            ctx: 8,
            tie_embeddings: false,
            ..ModelConfig::tiny()
        };
        // Clipping active (tiny clip) and weight decay on, two models with different lrs.
        let tcfg = TrainConfig {
            grad_clip: 0.05,
            weight_decay: 0.1,
            ..Default::default()
        };
        let corpus = Corpus::from_documents(vec![
            Document::new("a", "hello there"),
            Document::new("b", "abc"),
        ])
        .unwrap();
        let data = TokenizedCorpus::new(&corpus, &ByteTokenizer, 8).unwrap();
        let dev = Device::Cpu;
        let a = Gpt::new(&cfg, &[1, 2], DType::F32, &dev).unwrap();
        let b = Gpt::new(&cfg, &[1, 2], DType::F32, &dev).unwrap();
        let mut host = AdamW::with_path(&a, &tcfg, true).unwrap();
        let mut tensor = AdamW::with_path(&b, &tcfg, false).unwrap();
        let batch = data
            .batch(&[data.windows(0), data.windows(1)], 2, &dev)
            .unwrap();
        for step in 0..5 {
            let lrs = [1e-2, if step < 3 { 3e-3 } else { 0.0 }];
            for (model, opt) in [(&a, &mut host), (&b, &mut tensor)] {
                let logits = model.forward(&batch.ids).unwrap();
                let nll = token_nll(&logits, &batch.targets).unwrap();
                let loss = (nll * &batch.mask).unwrap().sum_all().unwrap();
                let grads = loss.backward().unwrap();
                opt.step(model, &grads, &lrs).unwrap();
            }
        }
        for k in 0..2 {
            let (wa, wb) = (a.model_weights(k).unwrap(), b.model_weights(k).unwrap());
            for (p, (x, y)) in a.params().iter().zip(wa.iter().zip(&wb)) {
                let diff = x
                    .iter()
                    .zip(y)
                    .map(|(u, w)| (u - w).abs())
                    .fold(0f32, f32::max);
                assert!(diff < 1e-5, "model {k} {}: {diff}", p.name);
            }
        }
    }

    #[test]
    fn a_shared_order_seed_keeps_shared_windows_in_the_same_order() {
        let docs = (0..12)
            .map(|i| {
                crate::Document::new(format!("d{i}"), format!("document number {i}, some text"))
            })
            .collect();
        let corpus = crate::Corpus::from_documents(docs).unwrap();
        let tc = TokenizedCorpus::new(&corpus, &crate::ByteTokenizer, 8).unwrap();
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 5,
            ..Default::default()
        };
        let job = |copies: &[u32], seed: u64| ModelJob {
            model: 0,
            subset: Subset::from_copies(copies),
            init_seed: 0,
            data_seed: seed,
        };
        let a: Vec<u32> = (0..12).map(|d| u32::from(d % 2 == 0 || d < 4)).collect();
        let b: Vec<u32> = (0..12).map(|d| u32::from(d % 3 != 0)).collect();
        // Windows of documents in both subsets, per epoch, in training order.
        let shared_order = |copies: &[u32], seed: u64| -> Vec<Vec<(u32, u32)>> {
            let p = plan(&tc, &job(copies, seed), &cfg).unwrap();
            let per_epoch = p.batches.len() / cfg.epochs;
            let flat: Vec<Window> = p.batches.iter().flatten().copied().collect();
            let n = flat.len() / cfg.epochs;
            assert!(per_epoch > 0);
            flat.chunks(n)
                .map(|e| {
                    e.iter()
                        .filter(|w| a[w.doc as usize] > 0 && b[w.doc as usize] > 0)
                        .map(|w| (w.doc, w.start))
                        .collect()
                })
                .collect()
        };
        assert_eq!(shared_order(&a, 7), shared_order(&b, 7));
        // Epochs differ from one another, and another seed gives another order.
        let o = shared_order(&a, 7);
        assert_ne!(o[0], o[1]);
        assert_ne!(shared_order(&a, 8), o);
        // Every window of the subset appears once per epoch.
        let p = plan(&tc, &job(&a, 7), &cfg).unwrap();
        let total: usize = (0..12)
            .filter(|&d| a[d] > 0)
            .map(|d| tc.windows(d).len())
            .sum();
        assert_eq!(p.batches.iter().map(Vec::len).sum::<usize>(), 3 * total);
    }

    #[test]
    fn bad_configs_are_rejected() {
        for cfg in [
            TrainConfig {
                epochs: 0,
                ..Default::default()
            },
            TrainConfig {
                lr: -1.0,
                ..Default::default()
            },
            TrainConfig {
                beta2: 1.0,
                ..Default::default()
            },
        ] {
            assert!(cfg.check().is_err(), "{cfg:?}");
        }
    }
}
