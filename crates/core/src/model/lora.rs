//! Low-rank adaptation (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large
//! Language Models"): a frozen base weight `W` `[in, out]` plus a trained
//! product `A · B` of rank `r`, scaled by `α / r`:
//!
//! ```text
//! y = x · W (+ b)  +  (α / r) · (x · A) · B        A: [in, r], B: [r, out]
//! ```
//!
//! `B` starts at zero, so every model starts as the base; `A` starts
//! normal with standard deviation `1/√in` from the model's own seed. The
//! base (every weight, gain and bias) is one tensor shared by the `K`
//! models of an ensemble and gets no gradient; only the adapters carry the
//! ensemble axis and train.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::params::{Frozen, ParamBuilder};
use super::{Arch, Gpt, ModelConfig};
use crate::error::{Error, Result};

/// Which projections get adapters, and their rank and scale.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `rank` | 8 | `r`, the adapters' inner width |
/// | `alpha` | 16 | `α`: the update is scaled by `α / r` |
/// | `targets` | all | projection names (`qkv`, `o`, `fc`, `proj`, `gate`, `up`, `down`) or the groups `attn` and `mlp`; empty = every attention and MLP projection |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lora {
    /// Rank `r`.
    pub rank: usize,
    /// Scale numerator `α`.
    pub alpha: f64,
    /// The projections adapted (empty: all of attention's and the MLP's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
}

impl Default for Lora {
    fn default() -> Self {
        Self {
            rank: 8,
            alpha: 16.0,
            targets: Vec::new(),
        }
    }
}

/// Attention's projections, in every family.
const ATTN: [&str; 2] = ["qkv", "o"];

impl Lora {
    /// Rank `rank`, `α = 2 · rank`, every projection.
    pub fn rank(rank: usize) -> Self {
        Self {
            rank,
            alpha: 2.0 * rank as f64,
            targets: Vec::new(),
        }
    }

    /// Parse `RANK` or `RANK:ALPHA` (e.g. `8`, `8:16`); `α` defaults to
    /// `2 · RANK`.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for anything else.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = || Error::InvalidSetting {
            setting: "lora",
            value: spec.to_string(),
            expected: "RANK or RANK:ALPHA, e.g. 8 or 8:16",
        };
        let (rank, alpha) = match spec.split_once(':') {
            Some((r, a)) => (r, Some(a)),
            None => (spec, None),
        };
        let rank: usize = rank.trim().parse().map_err(|_| bad())?;
        let mut lora = Self::rank(rank);
        if let Some(a) = alpha {
            lora.alpha = a.trim().parse().map_err(|_| bad())?;
        }
        Ok(lora)
    }

    /// `α / r`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    /// The MLP's projection names in `arch`.
    fn mlp(arch: &Arch) -> &'static [&'static str] {
        match arch {
            Arch::Llama(_) => &["gate", "up", "down"],
            _ => &["fc", "proj"],
        }
    }

    /// Whether projection `name` (of attention or the MLP) gets an adapter.
    pub fn applies(&self, name: &str) -> bool {
        self.targets.is_empty()
            || self.targets.iter().any(|t| {
                t == name
                    || (t == "attn" && ATTN.contains(&name))
                    || (t == "mlp" && !ATTN.contains(&name))
            })
    }

    /// Parameters one model of shape `model` trains: `r · (in + out)` per
    /// adapted projection.
    pub fn n_params(&self, model: &ModelConfig) -> usize {
        let (d, f, h) = (model.d_model, model.d_ff, model.n_head);
        let kv = model.arch.n_kv_head(h) * (d / h);
        let mlp_in = match model.arch {
            Arch::Llama(_) => vec![("gate", d, f), ("up", d, f), ("down", f, d)],
            _ => vec![("fc", d, f), ("proj", f, d)],
        };
        let per_block: usize = [("qkv", d, d + 2 * kv), ("o", d, d)]
            .into_iter()
            .chain(mlp_in)
            .filter(|(name, ..)| self.applies(name))
            .map(|(_, i, o)| self.rank * (i + o))
            .sum();
        model.n_layer * per_block
    }

    /// Validate for a model of shape `model`.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a zero rank, a non-positive `α`, or a
    /// target the family does not have (the message lists those it has).
    pub fn check(&self, model: &ModelConfig) -> Result<()> {
        if self.rank == 0 {
            return Err(Error::InvalidSetting {
                setting: "lora.rank",
                value: "0".into(),
                expected: "must be at least 1",
            });
        }
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            return Err(Error::InvalidSetting {
                setting: "lora.alpha",
                value: self.alpha.to_string(),
                expected: "must be positive",
            });
        }
        let mlp = Self::mlp(&model.arch);
        for t in &self.targets {
            let known = t == "attn"
                || t == "mlp"
                || ATTN.contains(&t.as_str())
                || mlp.contains(&t.as_str());
            if !known {
                return Err(Error::LoraTarget {
                    target: t.clone(),
                    family: model.arch.name(),
                    known: ATTN
                        .iter()
                        .chain(mlp)
                        .chain(&["attn", "mlp"])
                        .map(|s| s.to_string())
                        .collect(),
                });
            }
        }
        Ok(())
    }
}

/// One projection's adapter pair: `A` `[K, in, r]`, `B` `[K, r, out]`.
#[derive(Debug)]
pub(crate) struct Adapter {
    pub a: Tensor,
    pub b: Tensor,
    pub scale: f64,
}

impl Adapter {
    /// `(α / r) · (x · A) · B` for `x` `[K, N, in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok((x.matmul(&self.a)?.matmul(&self.b)? * self.scale)?)
    }

    /// Model `k`'s update `(α / r) · A_k · B_k` `[in, out]`.
    pub fn delta(&self, k: usize) -> Result<Tensor> {
        Ok((self.a.get(k)?.matmul(&self.b.get(k)?)? * self.scale)?)
    }
}

/// A model's LoRA side: built over a base, its frozen weights, and its
/// full weights with the updates merged.
impl Gpt {
    /// `seeds.len()` models that adapt the base in `weights` with `lora`
    /// ([`Lora`]): the base's weights are frozen and held once for the
    /// whole ensemble; only the adapters train, one pair per adapted
    /// projection and model. Adapters found in `weights` (as
    /// [`crate::Checkpoint::save`] writes them for a LoRA model) are
    /// loaded; the others start from model `k`'s seed (`A` normal, `B`
    /// zero, so that every model starts as the base).
    ///
    /// # Errors
    /// As [`Gpt::from_weights`]; [`Error::InvalidSetting`] and
    /// [`Error::LoraTarget`] for bad LoRA settings.
    pub fn from_weights_lora(
        cfg: &ModelConfig,
        weights: &candle_nn::VarBuilder<'_>,
        lora: &Lora,
        seeds: &[u64],
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        cfg.check()?;
        lora.check(cfg)?;
        if seeds.is_empty() {
            return Err(Error::EmptyEnsemble);
        }
        Self::build(
            cfg,
            ParamBuilder::lora(weights, lora, seeds, dtype, device),
            Some(lora),
            (dtype, device),
        )
    }

    /// Under LoRA, the frozen base's weights (each `[1, ...]`, shared by
    /// the ensemble); empty otherwise.
    pub fn frozen(&self) -> &[Frozen] {
        &self.frozen
    }

    /// The LoRA settings, for a model that adapts a base.
    pub fn lora(&self) -> Option<&Lora> {
        self.lora.as_ref()
    }

    /// Model `k`'s full weights, in the order of [`Gpt::param_names`]:
    /// its parameters, or under LoRA the base's weights with the model's
    /// updates `(α / r) · A · B` added (f32, on the CPU; names and GPT-2
    /// names as [`Param`]'s).
    ///
    /// # Errors
    /// [`Error::NoSuchMember`] for `k` out of range; candle errors.
    pub fn member_weights(&self, k: usize) -> Result<Vec<(String, Option<String>, Tensor)>> {
        if k >= self.k {
            return Err(Error::NoSuchMember { k, n: self.k });
        }
        let host =
            |t: Tensor| -> Result<Tensor> { Ok(t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?) };
        if self.lora.is_none() {
            return self
                .params
                .iter()
                .map(|p| {
                    let t = host(p.var.as_tensor().get(k)?)?;
                    Ok((p.name.clone(), p.gpt2_name.clone(), t))
                })
                .collect();
        }
        let deltas = self.adapter_deltas(k)?;
        self.frozen
            .iter()
            .map(|f| {
                let mut t = host(f.tensor.get(0)?)?;
                if let Some(d) = deltas.get(f.name.as_str()) {
                    t = (t + host(d.clone())?)?;
                }
                Ok((f.name.clone(), f.gpt2_name.clone(), t))
            })
            .collect()
    }

    /// Model `k`'s LoRA updates, by the name of the weight each adapts.
    fn adapter_deltas(&self, k: usize) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (l, block) in self.blocks.adapters().into_iter().enumerate() {
            for (name, adapter) in block {
                if let Some(a) = adapter {
                    out.insert(format!("h.{l}.{name}"), a.delta(k)?);
                }
            }
        }
        Ok(out)
    }
}
