//! Training an ensemble: AdamW with warmup and cosine decay, each model on
//! its own subset, with its own batches, schedule and gradient clipping.
//!
//! Nothing couples the `K` models of an ensemble: the loss is the sum of
//! the per-model mean losses (so model `k`'s gradient is its own loss's),
//! clipping uses each model's own norm, and a model whose steps are done
//! gets learning rate 0. A model trained inside an ensemble therefore gives
//! the record it would give alone, up to float rounding.

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::data::{Batch, HostBatch, TokenizedCorpus, Window};
use crate::error::{Error, Result};
use crate::fused::Kernels;
use crate::model::{token_nll_with, Gpt, Lora, ModelConfig};
use crate::native::{Host, Precision, Workspace};
use crate::optim::{AdamW, FlatAdamW};
use cfmem_hash::splitmix as mix;

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
/// | `precision` | fp32 | the matrix products' arithmetic ([`Precision`]): fp32, or bf16 operands with fp32 sums on the CPU |
/// | `lora` | none: every parameter trains | train low-rank adapters of a pretrained base instead ([`Lora`]; needs a checkpoint to start from) |
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
    /// The matrix products' arithmetic (left out of a manifest when fp32,
    /// so manifests from before it hash as they did).
    #[serde(default, skip_serializing_if = "Precision::is_fp32")]
    pub precision: Precision,
    /// Train LoRA adapters of the base instead of every parameter (left
    /// out of a manifest when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<Lora>,
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
            precision: Precision::Fp32,
            lora: None,
        }
    }
}

impl TrainConfig {
    /// Validate.
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
        let unit = |x: f64| (0.0..1.0).contains(&x);
        if self.epochs == 0 {
            return bad("epochs", &self.epochs, "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", &self.batch_size, "must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", &self.lr, "must be positive");
        }
        if !unit(self.warmup_frac) {
            return bad("warmup_frac", &self.warmup_frac, "must be in [0, 1)");
        }
        if !(0.0..=1.0).contains(&self.min_lr_frac) {
            return bad("min_lr_frac", &self.min_lr_frac, "must be in [0, 1]");
        }
        for (setting, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !unit(b) {
                return bad(setting, &b, "must be in [0, 1)");
            }
        }
        for (setting, v) in [
            ("weight_decay", self.weight_decay),
            ("grad_clip", self.grad_clip),
        ] {
            if v < 0.0 {
                return bad(setting, &v, "must be ≥ 0");
            }
        }
        if self.eps <= 0.0 {
            return bad("eps", &self.eps, "must be positive");
        }
        Ok(())
    }

    /// [`TrainConfig::check`], and that a model of shape `model` can run
    /// this recipe: bf16 products are the native CPU step's, which is
    /// GPT-2's full training; LoRA's targets must be the family's.
    ///
    /// # Errors
    /// As [`TrainConfig::check`]; [`Error::Precision`] for bf16 with
    /// another family; [`Error::Lora`] for bf16 with LoRA; as
    /// [`Lora::check`].
    pub fn check_for(&self, model: &ModelConfig) -> Result<()> {
        self.check()?;
        if let Some(lora) = &self.lora {
            lora.check(model)?;
            if self.precision == Precision::Bf16 {
                return Err(Error::Lora(
                    "bf16 products are the native step's, which trains every parameter; \
                     LoRA runs with fp32 products",
                ));
            }
        }
        if self.precision == Precision::Bf16 && !model.arch.is_gpt2() {
            return Err(Error::Precision {
                precision: self.precision,
                family: model.arch.name(),
                dtype: DType::F32,
                device: "the CPU".into(),
            });
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

/// `K` models trained together as one ensemble graph (batched matrix
/// products over the leading ensemble axis), each on its own subset with
/// its own seeds. Built from the shared settings, then [`Ensemble::train`].
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `dtype` | f32 | parameter and activation type |
/// | `device` | CPU | where to train |
/// | `kernels` | [`Kernels::auto`] | the native CPU step, candle's graph with the fused CPU kernels, or the composition of candle ops |
///
/// ```
/// use cfmem_core::*;
///
/// let corpus = Corpus::from_documents(vec![Document::new("a", "abc abc"), Document::new("b", "xyz")])?;
/// let model = ModelConfig { d_model: 16, d_ff: 32, n_head: 2, ctx: 16, ..ModelConfig::tiny() };
/// let train = TrainConfig { epochs: 2, batch_size: 2, ..Default::default() };
/// let data = TokenizedCorpus::new(&corpus, &ByteTokenizer, model.ctx)?;
/// let jobs = [ModelJob { model: 0, subset: Subset::from_copies(&[1, 0]), init_seed: 1, data_seed: 2 }];
/// let trained = Ensemble::new(&model, &train, &data, &jobs).train(None)?;
/// assert_eq!(trained.stats[0].final_loss.is_some(), true);
/// # Ok::<(), cfmem_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Ensemble<'a> {
    model: &'a ModelConfig,
    train: &'a TrainConfig,
    corpus: &'a TokenizedCorpus,
    jobs: &'a [ModelJob],
    dtype: DType,
    device: Device,
    kernels: Option<Kernels>,
    init: Option<&'a Checkpoint>,
}

/// A trained ensemble and what training did for each of its models.
#[derive(Debug)]
pub struct Trained {
    /// The ensemble (`K` = the number of jobs).
    pub model: Gpt,
    /// One per job, in order.
    pub stats: Vec<TrainStats>,
}

impl<'a> Ensemble<'a> {
    /// `jobs.len()` models of shape `model`, trained with `train` on `corpus`.
    pub fn new(
        model: &'a ModelConfig,
        train: &'a TrainConfig,
        corpus: &'a TokenizedCorpus,
        jobs: &'a [ModelJob],
    ) -> Self {
        Self {
            model,
            train,
            corpus,
            jobs,
            dtype: DType::F32,
            device: Device::Cpu,
            kernels: None,
            init: None,
        }
    }

    /// Start every model from `checkpoint`'s weights (fine-tuning) instead
    /// of from its own random initialisation (the jobs' `init_seed` then
    /// draws only LoRA's adapters, where the recipe has them).
    pub fn init(mut self, checkpoint: &'a Checkpoint) -> Self {
        self.init = Some(checkpoint);
        self
    }

    /// Parameter type.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// Device.
    pub fn device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }

    /// How the step runs ([`Kernels::Native`] is the default on the CPU in
    /// f32; candle's graph, fused or composed, is the reference it is
    /// tested against).
    pub fn kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = Some(kernels);
        self
    }

    /// Train every model; `hook` sees each step.
    ///
    /// # Errors
    /// Bad configs, subsets naming unknown documents, divergence (naming
    /// the model), candle errors.
    pub fn train(&self, hook: Option<StepHook<'_>>) -> Result<Trained> {
        let model = self.build()?;
        let plans = self
            .jobs
            .iter()
            .map(|j| plan(self.corpus, j, self.train))
            .collect::<Result<Vec<_>>>()?;
        let stats = if model.kernels() == Kernels::Native {
            self.train_native(&model, &plans, hook)?
        } else {
            self.train_graph(&model, &plans, hook)?
        };
        Ok(Trained { model, stats })
    }

    /// Each model's batch of `step` (empty once its plan is done).
    fn groups(plans: &[Plan], step: usize) -> Vec<&[Window]> {
        plans
            .iter()
            .map(|p| p.batches.get(step).map_or(&[][..], Vec::as_slice))
            .collect()
    }

    /// Training through candle's graph and autograd (any device and type).
    fn train_graph(
        &self,
        model: &Gpt,
        plans: &[Plan],
        mut hook: Option<StepHook<'_>>,
    ) -> Result<Vec<TrainStats>> {
        let (cfg, corpus, jobs) = (self.train, self.corpus, self.jobs);
        let mut tally = Tally::new(plans);
        let max_steps = tally.steps.iter().copied().max().unwrap_or(0);
        let mut opt = AdamW::new(model, cfg)?;
        for step in 0..max_steps {
            let batch = corpus.batch(&Self::groups(plans, step), cfg.batch_size, &self.device)?;
            let (grads, losses) = self.loss_and_grads(model, &batch)?;
            tally.add(step, &losses, &batch.n_tokens, jobs, plans)?;
            opt.step(model, &grads, &tally.lrs(step, cfg))?;
            if let Some(h) = hook.as_mut() {
                h(step + 1, max_steps);
            }
        }
        Ok(tally.finish())
    }

    /// Training through the native CPU step: the parameters copied to the
    /// host once, every step in the workspace's buffers, the result
    /// written back into `model`.
    fn train_native(
        &self,
        model: &Gpt,
        plans: &[Plan],
        mut hook: Option<StepHook<'_>>,
    ) -> Result<Vec<TrainStats>> {
        let (cfg, corpus, jobs) = (self.train, self.corpus, self.jobs);
        let mut tally = Tally::new(plans);
        let max_steps = tally.steps.iter().copied().max().unwrap_or(0);
        let mut host = Host::of(model)?;
        let mut ws = Workspace::new(self.model, &host, cfg.batch_size, cfg.precision, true);
        let mut opt = FlatAdamW::new(&host, cfg);
        let mut batch = HostBatch::default();
        for step in 0..max_steps {
            corpus.fill_batch(&Self::groups(plans, step), cfg.batch_size, &mut batch);
            ws.load(&host.theta)?;
            ws.forward(&host.theta, &batch)?;
            let losses = ws.loss(&batch);
            tally.add(step, &losses, &batch.counts, jobs, plans)?;
            ws.backward(&host.theta, &batch)?;
            opt.step(&mut host, ws.grads(), &tally.lrs(step, cfg));
            if let Some(h) = hook.as_mut() {
                h(step + 1, max_steps);
            }
        }
        host.write_back(model)?;
        Ok(tally.finish())
    }

    /// The ensemble before training: checked settings, one model per job,
    /// from the checkpoint or from each job's seed.
    fn build(&self) -> Result<Gpt> {
        let (model_cfg, corpus, jobs) = (self.model, self.corpus, self.jobs);
        let (dtype, device) = (self.dtype, &self.device);
        let kernels = self.kernels.unwrap_or_else(|| Kernels::auto(dtype, device));
        self.train.check_for(model_cfg)?;
        if corpus.ctx() > model_cfg.ctx || corpus.vocab_size() > model_cfg.vocab_size {
            return Err(Error::CorpusModel {
                corpus_ctx: corpus.ctx(),
                corpus_vocab: corpus.vocab_size(),
                model_ctx: model_cfg.ctx,
                model_vocab: model_cfg.vocab_size,
            });
        }
        let model = match (self.init, &self.train.lora) {
            (Some(c), Some(lora)) => {
                let seeds: Vec<u64> = jobs.iter().map(|j| j.init_seed).collect();
                let weights = c.weights_for(model_cfg)?;
                Gpt::from_weights_lora(model_cfg, &weights, lora, &seeds, dtype, device)?
            }
            (None, Some(_)) => {
                return Err(Error::Lora(
                    "adapters need a base to adapt: start from a checkpoint \
                     (Ensemble::init; cfmem run --init)",
                ))
            }
            (Some(c), None) => Gpt::from_weights(
                model_cfg,
                &c.weights_for(model_cfg)?,
                jobs.len(),
                dtype,
                device,
            )?,
            (None, None) => {
                let seeds: Vec<u64> = jobs.iter().map(|j| j.init_seed).collect();
                Gpt::new(model_cfg, &seeds, dtype, device)?
            }
        };
        model
            .with_kernels(kernels)
            .with_precision(self.train.precision)
    }

    /// One step's gradients (of the sum over models of each model's mean
    /// token loss) and each model's mean token loss.
    fn loss_and_grads(
        &self,
        model: &Gpt,
        batch: &Batch,
    ) -> Result<(candle_core::backprop::GradStore, Vec<f32>)> {
        let logits = model.forward(&batch.ids)?;
        let nll = token_nll_with(&logits, &batch.targets, model.kernels())?;
        let nll = nll.to_dtype(DType::F32)?;
        let per_model = (nll * &batch.mask)?
            .sum(1)?
            .div(&batch.counts.clamp(1f32, f32::MAX)?)?;
        let loss = per_model.to_dtype(self.dtype)?.sum_all()?;
        let grads = loss.backward()?;
        Ok((grads, per_model.to_vec1()?))
    }
}

/// What training did for each model so far: its steps, the tokens seen and
/// the token-weighted loss of its last epoch.
struct Tally {
    /// Steps of each model's plan.
    steps: Vec<usize>,
    tokens: Vec<u64>,
    last_loss: Vec<f64>,
    last_tokens: Vec<f64>,
}

impl Tally {
    fn new(plans: &[Plan]) -> Self {
        let k = plans.len();
        Self {
            steps: plans.iter().map(|p| p.batches.len()).collect(),
            tokens: vec![0; k],
            last_loss: vec![0f64; k],
            last_tokens: vec![0f64; k],
        }
    }

    /// Each model's learning rate at `step` (0 once its plan is done).
    fn lrs(&self, step: usize, cfg: &TrainConfig) -> Vec<f64> {
        self.steps
            .iter()
            .map(|&total| {
                if step < total {
                    cfg.lr_at(step, total)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Count one step's losses and tokens for the models still training.
    ///
    /// # Errors
    /// [`Error::Diverged`] for a loss that is not finite.
    fn add(
        &mut self,
        step: usize,
        losses: &[f32],
        n_tokens: &[f32],
        jobs: &[ModelJob],
        plans: &[Plan],
    ) -> Result<()> {
        for m in 0..self.steps.len() {
            if step >= self.steps[m] {
                continue;
            }
            if !losses[m].is_finite() {
                return Err(Error::Diverged {
                    model: jobs[m].model,
                    step,
                    loss: losses[m],
                });
            }
            let n = f64::from(n_tokens[m]);
            self.tokens[m] += n as u64;
            if step >= plans[m].last_epoch_start {
                self.last_loss[m] += f64::from(losses[m]) * n;
                self.last_tokens[m] += n;
            }
        }
        Ok(())
    }

    fn finish(self) -> Vec<TrainStats> {
        (0..self.steps.len())
            .map(|m| TrainStats {
                steps: self.steps[m],
                tokens: self.tokens[m],
                final_loss: (self.last_tokens[m] > 0.0)
                    .then(|| self.last_loss[m] / self.last_tokens[m]),
            })
            .collect()
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
