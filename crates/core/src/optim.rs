//! AdamW with a learning rate per ensemble member and per-model gradient
//! clipping, as candle-nn keeps its optimizers in their own module.

use candle_core::{DType, Tensor};

use crate::error::Result;
use crate::model::Gpt;
use crate::native::Host;
use crate::train::TrainConfig;

/// AdamW with a learning rate per ensemble member and per-model clipping.
///
/// On the CPU in f32 the update runs as one fused loop over host slices
/// (moments kept on the host): a dozen tensor ops per parameter, each
/// allocating, become one pass. Elsewhere it runs as tensor ops on the
/// device. Both compute the same formula per element (tested).
pub(crate) struct AdamW {
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
    pub(crate) fn new(model: &Gpt, cfg: &TrainConfig) -> Result<Self> {
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

    pub(crate) fn step(
        &mut self,
        model: &Gpt,
        grads: &candle_core::backprop::GradStore,
        lrs: &[f64],
    ) -> Result<()> {
        self.t += 1;
        let step = Step {
            cfg: &self.cfg,
            bc1: 1.0 - self.cfg.beta1.powi(self.t),
            bc2: 1.0 - self.cfg.beta2.powi(self.t),
            lrs,
        };
        match &mut self.state {
            OptState::Host { m, v } => step.host(model, grads, m, v),
            OptState::Device { m, v } => step.device(model, grads, m, v),
        }
    }
}

/// AdamW over the native step's flat parameters ([`Host`]): the same
/// update as [`AdamW`]'s host path, element for element, moments kept
/// beside the parameters in the same layout.
pub(crate) struct FlatAdamW {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
    cfg: TrainConfig,
}

impl FlatAdamW {
    pub(crate) fn new(host: &Host, cfg: &TrainConfig) -> Self {
        Self {
            m: vec![0.0; host.theta.len()],
            v: vec![0.0; host.theta.len()],
            t: 0,
            cfg: cfg.clone(),
        }
    }

    /// One update of `host` from `grads` (laid out as the parameters),
    /// model `m` at learning rate `lrs[m]` (0: left as it is).
    pub(crate) fn step(&mut self, host: &mut Host, grads: &[f32], lrs: &[f64]) {
        self.t += 1;
        let step = Step {
            cfg: &self.cfg,
            bc1: 1.0 - self.cfg.beta1.powi(self.t),
            bc2: 1.0 - self.cfg.beta2.powi(self.t),
            lrs,
        };
        let k = host.k;
        let mut sq = vec![0f64; k];
        for &(slot, _) in &host.slots.params {
            for (m, s) in sq.iter_mut().enumerate() {
                *s += grads[slot.model(m)]
                    .iter()
                    .map(|&x| f64::from(x) * f64::from(x))
                    .sum::<f64>();
            }
        }
        let factor = clip_factors(self.cfg.grad_clip, &sq);
        let wd = self.cfg.weight_decay as f32;
        for &(slot, decay) in &host.slots.params {
            for m in 0..k {
                let lr = lrs[m] as f32;
                if lr == 0.0 {
                    continue;
                }
                let r = slot.model(m);
                step.host_slice(
                    lr,
                    if decay { wd } else { 0.0 },
                    factor[m] as f32,
                    &mut host.theta[r.clone()],
                    &grads[r.clone()],
                    &mut self.m[r.clone()],
                    &mut self.v[r],
                );
            }
        }
    }
}

/// One update: the settings, the bias corrections of step `t`
/// (`1 − β^t`) and each model's learning rate.
struct Step<'a> {
    cfg: &'a TrainConfig,
    bc1: f64,
    bc2: f64,
    lrs: &'a [f64],
}

impl Step<'_> {
    /// The update as one fused loop over host slices, moments on the host.
    fn host(
        &self,
        model: &Gpt,
        grads: &candle_core::backprop::GradStore,
        m: &mut [Vec<f32>],
        v: &mut [Vec<f32>],
    ) -> Result<()> {
        let k = model.k();
        let params = model.params();
        let (gs, sq) = host_gradients(model, grads)?;
        let factor = clip_factors(self.cfg.grad_clip, &sq);
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
                let lr = self.lrs[kk] as f32;
                if lr == 0.0 {
                    continue;
                }
                let r = kk * per..(kk + 1) * per;
                self.host_slice(
                    lr,
                    wd,
                    factor[kk] as f32,
                    &mut theta[r.clone()],
                    &gs[i][r.clone()],
                    &mut m[i][r.clone()],
                    &mut v[i][r],
                );
            }
            p.var
                .set(&Tensor::from_vec(theta, t.shape(), t.device())?)?;
        }
        Ok(())
    }

    /// One model's slice of one parameter: the AdamW formula per element,
    /// its gradient scaled by the model's clipping factor `f`.
    #[allow(clippy::too_many_arguments)]
    fn host_slice(
        &self,
        lr: f32,
        wd: f32,
        f: f32,
        th: &mut [f32],
        g: &[f32],
        mm: &mut [f32],
        vv: &mut [f32],
    ) {
        let (b1f, b2f) = (self.cfg.beta1 as f32, self.cfg.beta2 as f32);
        let (ibc1, ibc2) = ((1.0 / self.bc1) as f32, (1.0 / self.bc2) as f32);
        let eps = self.cfg.eps as f32;
        for j in 0..th.len() {
            let gj = g[j] * f;
            mm[j] = b1f * mm[j] + (1.0 - b1f) * gj;
            vv[j] = b2f * vv[j] + (1.0 - b2f) * gj * gj;
            let upd = (mm[j] * ibc1) / ((vv[j] * ibc2).sqrt() + eps) + wd * th[j];
            th[j] -= lr * upd;
        }
    }

    /// The update as tensor ops where the parameters are.
    fn device(
        &self,
        model: &Gpt,
        grads: &candle_core::backprop::GradStore,
        ms: &mut [Tensor],
        vs: &mut [Tensor],
    ) -> Result<()> {
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let k = model.k();
        let params = model.params();
        let mut gs = Vec::with_capacity(params.len());
        for p in params {
            gs.push(match grads.get(p.var.as_tensor()) {
                Some(g) => g.clone(),
                None => p.var.as_tensor().zeros_like()?,
            });
        }
        let dev = params[0].var.device();
        let dtype = params[0].var.dtype();
        let factor = self.device_clip_factors(&gs, k, dev)?.to_dtype(dtype)?;
        for (i, p) in params.iter().enumerate() {
            let theta = p.var.as_tensor();
            let mut shape = vec![k];
            shape.extend(std::iter::repeat_n(1, theta.rank() - 1));
            let col = |v: Vec<f64>| -> Result<Tensor> {
                Ok(Tensor::from_vec(v, shape.as_slice(), dev)?.to_dtype(dtype)?)
            };
            let g = gs[i].broadcast_mul(&factor.reshape(shape.as_slice())?)?;
            let m = ((&ms[i] * b1)? + (&g * (1.0 - b1))?)?;
            let v = ((&vs[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let mut upd = ((&m / self.bc1)? / ((&v / self.bc2)?.sqrt()? + self.cfg.eps)?)?;
            if p.decay && self.cfg.weight_decay > 0.0 {
                upd = (upd + (theta * self.cfg.weight_decay)?)?;
            }
            let new = (theta - upd.broadcast_mul(&col(self.lrs.to_vec())?)?)?;
            p.var.set(&new)?;
            ms[i] = m;
            vs[i] = v;
        }
        Ok(())
    }

    /// Per-model clipping factors computed where the gradients are (no
    /// copy to the host: on a GPU a copy waits for every queued kernel), as
    /// [`clip_factors`] does on the host.
    fn device_clip_factors(
        &self,
        gs: &[Tensor],
        k: usize,
        dev: &candle_core::Device,
    ) -> Result<Tensor> {
        let mut sq = Tensor::zeros(k, DType::F32, dev)?;
        for g in gs {
            sq = (sq + g.to_dtype(DType::F32)?.sqr()?.flatten_from(1)?.sum(1)?)?;
        }
        Ok(if self.cfg.grad_clip > 0.0 {
            let norm = sq.sqrt()?;
            let scaled = (norm.affine(1.0, 1e-6)?.recip()? * self.cfg.grad_clip)?;
            norm.gt(self.cfg.grad_clip)?
                .where_cond(&scaled, &Tensor::ones(k, DType::F32, dev)?)?
        } else {
            Tensor::ones(k, DType::F32, dev)?
        })
    }
}

/// Every parameter's gradient on the host (zeros where it has none), and
/// each model's squared gradient norm.
fn host_gradients(
    model: &Gpt,
    grads: &candle_core::backprop::GradStore,
) -> Result<(Vec<Vec<f32>>, Vec<f64>)> {
    let k = model.k();
    let params = model.params();
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
    Ok((gs, sq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;
    use candle_core::Device;

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
}
