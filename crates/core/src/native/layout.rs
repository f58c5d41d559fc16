//! Where each parameter lives in the native step's flat vectors: every
//! parameter of a [`Gpt`] in its order, each `[K, ...]`, back to back.

use std::ops::Range;

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};
use crate::model::Gpt;

/// One parameter's place: `K` models' copies of `per` values from `at`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub at: usize,
    pub per: usize,
}

impl Slot {
    /// Model `m`'s values.
    #[inline]
    pub fn model(self, m: usize) -> Range<usize> {
        self.at + m * self.per..self.at + (m + 1) * self.per
    }

    /// Every model's values.
    #[inline]
    pub fn all(self, k: usize) -> Range<usize> {
        self.at..self.at + k * self.per
    }
}

/// One block's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerSlots {
    pub ln1_g: Slot,
    pub ln1_b: Slot,
    pub w_qkv: Slot,
    pub b_qkv: Slot,
    pub w_o: Slot,
    pub b_o: Slot,
    pub ln2_g: Slot,
    pub ln2_b: Slot,
    pub w_fc: Slot,
    pub b_fc: Slot,
    pub w_proj: Slot,
    pub b_proj: Slot,
}

/// Every parameter's place, found by its name in the model's parameter
/// list, so the native step reads the layers the model's structs define.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    pub wte: Slot,
    pub wpe: Slot,
    pub layers: Vec<LayerSlots>,
    pub lnf_g: Slot,
    pub lnf_b: Slot,
    /// The untied output projection `[D, V]`; `None` when tied to `wte`.
    pub w_head: Option<Slot>,
    /// Every parameter in order, with whether weight decay applies.
    pub params: Vec<(Slot, bool)>,
    /// Values in all.
    pub total: usize,
}

impl Slots {
    fn of(model: &Gpt) -> Result<Self> {
        let k = model.k();
        let mut at = 0;
        let mut named = Vec::with_capacity(model.params().len());
        for p in model.params() {
            let per = p.var.elem_count() / k;
            named.push((p.name.as_str(), Slot { at, per }, p.decay));
            at += per * k;
        }
        let find = |name: &str| -> Result<Slot> {
            named
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|&(_, s, _)| s)
                .ok_or_else(|| Error::NativeLayout(name.to_string()))
        };
        let layers = (0..model.config().n_layer)
            .map(|l| {
                let f = |s: &str| find(&format!("h.{l}.{s}"));
                Ok(LayerSlots {
                    ln1_g: f("ln1.g")?,
                    ln1_b: f("ln1.b")?,
                    w_qkv: f("attn.w_qkv")?,
                    b_qkv: f("attn.b_qkv")?,
                    w_o: f("attn.w_o")?,
                    b_o: f("attn.b_o")?,
                    ln2_g: f("ln2.g")?,
                    ln2_b: f("ln2.b")?,
                    w_fc: f("mlp.w_fc")?,
                    b_fc: f("mlp.b_fc")?,
                    w_proj: f("mlp.w_proj")?,
                    b_proj: f("mlp.b_proj")?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            wte: find("wte")?,
            wpe: find("wpe")?,
            layers,
            lnf_g: find("ln_f.g")?,
            lnf_b: find("ln_f.b")?,
            w_head: (!model.config().tie_embeddings)
                .then(|| find("w_head"))
                .transpose()?,
            params: named.iter().map(|&(_, s, d)| (s, d)).collect(),
            total: at,
        })
    }
}

/// An ensemble's parameters on the host, flat, with their places.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub slots: Slots,
    /// The values (fp32 master weights).
    pub theta: Vec<f32>,
    /// Models.
    pub k: usize,
}

impl Host {
    /// A copy of `model`'s parameters.
    ///
    /// # Errors
    /// [`Error::NativeLayout`] for a model whose parameters the step does
    /// not know; candle errors.
    pub fn of(model: &Gpt) -> Result<Self> {
        let slots = Slots::of(model)?;
        let mut theta = Vec::with_capacity(slots.total);
        for p in model.params() {
            let t = p.var.as_tensor();
            theta.extend(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?);
        }
        Ok(Self {
            slots,
            theta,
            k: model.k(),
        })
    }

    /// Write the values back into `model`'s parameters.
    ///
    /// # Errors
    /// Candle errors.
    pub fn write_back(&self, model: &Gpt) -> Result<()> {
        for (p, &(slot, _)) in model.params().iter().zip(&self.slots.params) {
            let t = p.var.as_tensor();
            let v = Tensor::from_slice(&self.theta[slot.all(self.k)], t.shape(), t.device())?
                .to_dtype(t.dtype())?;
            p.var.set(&v)?;
        }
        Ok(())
    }
}
