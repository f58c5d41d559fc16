//! Where a model's parameters come from: each layer's constructor asks a
//! [`ParamBuilder`] for its tensors, in order, under their cfmem and
//! Hugging Face GPT-2 names, so that the layer structs alone define the
//! architecture, the parameter order and both checkpoint layouts.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, WeightProblem};

/// How a parameter is initialised.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Init {
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
    /// Its name in Hugging Face's GPT-2 layout without the `transformer.`
    /// prefix (e.g. `h.0.attn.c_attn.weight`); `None` where GPT-2 has none
    /// (an untied output projection).
    pub gpt2_name: Option<String>,
    /// The variable; axis 0 is the ensemble axis.
    pub var: Var,
    /// Weight decay applies (matrices and embeddings, not gains and biases).
    pub decay: bool,
}

/// A weight of a LoRA model's frozen base ([`super::Lora`]): one tensor
/// `[1, ...]` shared by every model of the ensemble, outside autograd.
#[derive(Debug, Clone)]
pub struct Frozen {
    /// Name, as [`Param::name`].
    pub name: String,
    /// GPT-2's name, as [`Param::gpt2_name`].
    pub gpt2_name: Option<String>,
    /// The weight, with an ensemble axis of one.
    pub tensor: Tensor,
}

/// What [`ParamBuilder::load`] found.
enum Loaded {
    Found(Tensor),
    Absent,
    Misshapen,
}

/// Where the tensors come from.
enum Source<'a> {
    /// Model `k` draws every parameter, in order, from its own stream
    /// (`rngs[k]`), so its initial weights do not depend on its ensemble.
    Random(Vec<ChaCha8Rng>),
    /// Every model starts from these weights (shaped without the ensemble
    /// axis); what is missing or misshapen is listed, not raised at once.
    Weights {
        vb: &'a VarBuilder<'a>,
        problems: Vec<WeightProblem>,
    },
    /// Names and shapes only (placeholder tensors).
    Names,
}

/// LoRA's settings while the layers are built: the base comes from the
/// weights, frozen and shared; each adapter from the weights where they
/// hold it (a saved adapter), else drawn from model `k`'s stream.
struct Adapting {
    lora: super::Lora,
    rngs: Vec<ChaCha8Rng>,
}

/// Hands out a model's parameters in order and keeps the list.
pub(crate) struct ParamBuilder<'a> {
    k: usize,
    dtype: DType,
    device: Device,
    source: Source<'a>,
    params: Vec<Param>,
    adapting: Option<Adapting>,
    frozen: Vec<Frozen>,
}

impl<'a> ParamBuilder<'a> {
    /// `seeds.len()` models, each initialised from its seed.
    pub fn random(seeds: &[u64], dtype: DType, device: &Device) -> Self {
        Self::with(seeds.len(), dtype, device, Source::Random(streams(seeds)))
    }

    /// `k` models starting from `vb`'s weights.
    pub fn weights(vb: &'a VarBuilder<'a>, k: usize, dtype: DType, device: &Device) -> Self {
        let source = Source::Weights {
            vb,
            problems: Vec::new(),
        };
        Self::with(k, dtype, device, source)
    }

    /// `seeds.len()` models adapting `vb`'s weights with `lora`: the base
    /// frozen and shared, the adapters from `vb` where it holds them, else
    /// drawn from each model's seed.
    pub fn lora(
        vb: &'a VarBuilder<'a>,
        lora: &super::Lora,
        seeds: &[u64],
        dtype: DType,
        device: &Device,
    ) -> Self {
        let mut p = Self::weights(vb, seeds.len(), dtype, device);
        p.adapting = Some(Adapting {
            lora: lora.clone(),
            rngs: streams(seeds),
        });
        p
    }

    /// Names only: the parameter list of a model shape, without weights.
    pub fn names() -> Self {
        Self::with(1, DType::F32, &Device::Cpu, Source::Names)
    }

    fn with(k: usize, dtype: DType, device: &Device, source: Source<'a>) -> Self {
        Self {
            k,
            dtype,
            device: device.clone(),
            source,
            params: Vec::new(),
            adapting: None,
            frozen: Vec::new(),
        }
    }

    /// The next parameter: `name` (cfmem's) and `gpt2` (GPT-2's, if any),
    /// shape without the ensemble axis. Under LoRA it is frozen: one
    /// shared tensor `[1, ...]`, kept apart from the trained parameters.
    pub fn param(
        &mut self,
        name: String,
        gpt2: Option<String>,
        shape: &[usize],
        init: Init,
        decay: bool,
    ) -> Result<Tensor> {
        if self.adapting.is_some() {
            let tensor = match self.load(&name, shape)? {
                Loaded::Found(w) => w.unsqueeze(0)?,
                Loaded::Absent | Loaded::Misshapen => self.placeholder()?,
            };
            self.frozen.push(Frozen {
                name,
                gpt2_name: gpt2,
                tensor: tensor.clone(),
            });
            return Ok(tensor);
        }
        let t = match self.source {
            Source::Random(_) => self.drawn(false, shape, init)?,
            Source::Weights { .. } => match self.load(&name, shape)? {
                Loaded::Found(w) => self.each(&w)?,
                Loaded::Absent | Loaded::Misshapen => self.placeholder()?,
            },
            Source::Names => self.placeholder()?,
        };
        self.push(name, gpt2, &t, decay)
    }

    /// The adapter of projection `prefix.w_NAME` `[n_in, n_out]` when LoRA
    /// adapts it: `prefix.lora_a_NAME` `[n_in, r]` and `prefix.lora_b_NAME`
    /// `[r, n_out]`, trained, one per model.
    pub fn adapter(
        &mut self,
        prefix: &str,
        name: &str,
        (n_in, n_out): (usize, usize),
    ) -> Result<Option<super::lora::Adapter>> {
        let Some(ad) = &self.adapting else {
            return Ok(None);
        };
        if !ad.lora.applies(name) {
            return Ok(None);
        }
        let (r, scale) = (ad.lora.rank, ad.lora.scale());
        let a_std = 1.0 / (n_in as f64).sqrt();
        let a = self.trained(
            format!("{prefix}.lora_a_{name}"),
            &[n_in, r],
            Init::Normal(a_std),
        )?;
        let b = self.trained(format!("{prefix}.lora_b_{name}"), &[r, n_out], Init::Zeros)?;
        Ok(Some(super::lora::Adapter { a, b, scale }))
    }

    /// A trained adapter tensor: from the weights when they hold it, else
    /// drawn from each model's stream.
    fn trained(&mut self, name: String, shape: &[usize], init: Init) -> Result<Tensor> {
        let t = match self.load(&name, shape)? {
            Loaded::Found(w) => self.each(&w)?,
            Loaded::Absent => self.drawn(true, shape, init)?,
            Loaded::Misshapen => self.placeholder()?,
        };
        self.push(name, None, &t, true)
    }

    /// `name` from the weights (`[shape]`, on the device, in the type).
    /// A missing base tensor and a misshapen tensor are listed as problems;
    /// a missing adapter is not (it is drawn).
    fn load(&mut self, name: &str, shape: &[usize]) -> Result<Loaded> {
        let adapter = name.contains(".lora_");
        let (dtype, device) = (self.dtype, self.device.clone());
        let Source::Weights { vb, problems } = &mut self.source else {
            return Ok(Loaded::Absent);
        };
        if !vb.contains_tensor(name) {
            if !adapter {
                problems.push(WeightProblem::Missing {
                    name: name.to_string(),
                    shape: shape.to_vec(),
                });
            }
            return Ok(Loaded::Absent);
        }
        let got = vb.get_unchecked(name)?;
        if got.dims() != shape {
            problems.push(WeightProblem::Shape {
                name: name.to_string(),
                found: got.dims().to_vec(),
                expected: shape.to_vec(),
            });
            return Ok(Loaded::Misshapen);
        }
        Ok(Loaded::Found(got.to_device(&device)?.to_dtype(dtype)?))
    }

    /// A stand-in for a tensor that could not be loaded (the build fails
    /// with the problems listed once every layer is built).
    fn placeholder(&self) -> Result<Tensor> {
        Ok(Tensor::zeros(1, self.dtype, &self.device)?)
    }

    /// `w` for each of the `K` models: a copy, so that training never
    /// writes into the source.
    fn each(&self, w: &Tensor) -> Result<Tensor> {
        let mut full = vec![self.k];
        full.extend(w.dims());
        Ok(w.unsqueeze(0)?.broadcast_as(full)?.contiguous()?.copy()?)
    }

    /// `[K, shape]` drawn per model from its own stream: LoRA's for an
    /// adapter, else the random source's.
    fn drawn(&mut self, adapter: bool, shape: &[usize], init: Init) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        let rngs = match (&mut self.source, &mut self.adapting) {
            (_, Some(ad)) if adapter => &mut ad.rngs,
            (Source::Random(rngs), _) if !adapter => rngs,
            _ => return self.placeholder(),
        };
        let mut data = Vec::with_capacity(rngs.len() * numel);
        for rng in rngs.iter_mut() {
            match init {
                Init::Ones => data.extend(std::iter::repeat_n(1f32, numel)),
                Init::Zeros => data.extend(std::iter::repeat_n(0f32, numel)),
                Init::Normal(s) => data.extend((0..numel).map(|_| (s * normal(rng)) as f32)),
            }
        }
        let mut full = vec![rngs.len()];
        full.extend(shape);
        Ok(Tensor::from_vec(data, full, &self.device)?.to_dtype(self.dtype)?)
    }

    /// Keep `t` as a trained parameter and hand out its tensor.
    fn push(
        &mut self,
        name: String,
        gpt2: Option<String>,
        t: &Tensor,
        decay: bool,
    ) -> Result<Tensor> {
        let var = Var::from_tensor(t)?;
        let out = var.as_tensor().clone();
        self.params.push(Param {
            name,
            gpt2_name: gpt2,
            var,
            decay,
        });
        Ok(out)
    }

    /// Ensemble size.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The parameters handed out, in order, the frozen base's weights
    /// (under LoRA) and, for weights, the problems found.
    pub fn finish(self) -> (Vec<Param>, Vec<Frozen>, Vec<WeightProblem>) {
        let problems = match self.source {
            Source::Weights { problems, .. } => problems,
            _ => Vec::new(),
        };
        (self.params, self.frozen, problems)
    }
}

/// One stream per model.
fn streams(seeds: &[u64]) -> Vec<ChaCha8Rng> {
    seeds
        .iter()
        .map(|&s| ChaCha8Rng::seed_from_u64(s))
        .collect()
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
