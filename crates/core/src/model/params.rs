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

/// Hands out a model's parameters in order and keeps the list.
pub(crate) struct ParamBuilder<'a> {
    k: usize,
    dtype: DType,
    device: Device,
    source: Source<'a>,
    params: Vec<Param>,
}

impl<'a> ParamBuilder<'a> {
    /// `seeds.len()` models, each initialised from its seed.
    pub fn random(seeds: &[u64], dtype: DType, device: &Device) -> Self {
        let rngs = seeds
            .iter()
            .map(|&s| ChaCha8Rng::seed_from_u64(s))
            .collect();
        Self::with(seeds.len(), dtype, device, Source::Random(rngs))
    }

    /// `k` models starting from `vb`'s weights.
    pub fn weights(vb: &'a VarBuilder<'a>, k: usize, dtype: DType, device: &Device) -> Self {
        let source = Source::Weights {
            vb,
            problems: Vec::new(),
        };
        Self::with(k, dtype, device, source)
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
        }
    }

    /// The next parameter: `name` (cfmem's) and `gpt2` (GPT-2's, if any),
    /// shape without the ensemble axis.
    pub fn param(
        &mut self,
        name: String,
        gpt2: Option<String>,
        shape: &[usize],
        init: Init,
        decay: bool,
    ) -> Result<Tensor> {
        let (k, dtype, device) = (self.k, self.dtype, self.device.clone());
        let mut full = vec![k];
        full.extend(shape);
        let t = match &mut self.source {
            Source::Random(rngs) => {
                let numel: usize = shape.iter().product();
                let mut data = Vec::with_capacity(k * numel);
                for rng in rngs.iter_mut() {
                    match init {
                        Init::Ones => data.extend(std::iter::repeat_n(1f32, numel)),
                        Init::Zeros => data.extend(std::iter::repeat_n(0f32, numel)),
                        Init::Normal(s) => {
                            data.extend((0..numel).map(|_| (s * normal(rng)) as f32))
                        }
                    }
                }
                Tensor::from_vec(data, full, &device)?.to_dtype(dtype)?
            }
            Source::Weights { vb, problems } => {
                if !vb.contains_tensor(&name) {
                    problems.push(WeightProblem::Missing {
                        name: name.clone(),
                        shape: shape.to_vec(),
                    });
                    Tensor::zeros(1, dtype, &device)?
                } else {
                    let got = vb.get_unchecked(&name)?;
                    if got.dims() != shape {
                        problems.push(WeightProblem::Shape {
                            name: name.clone(),
                            found: got.dims().to_vec(),
                            expected: shape.to_vec(),
                        });
                        Tensor::zeros(1, dtype, &device)?
                    } else {
                        let w = got.to_device(&device)?.to_dtype(dtype)?;
                        // A copy, so that training never writes into the source.
                        w.unsqueeze(0)?.broadcast_as(full)?.contiguous()?.copy()?
                    }
                }
            }
            Source::Names => Tensor::zeros(1, dtype, &device)?,
        };
        let var = Var::from_tensor(&t)?;
        self.params.push(Param {
            name,
            gpt2_name: gpt2,
            var,
            decay,
        });
        Ok(self
            .params
            .last()
            .map(|p| p.var.as_tensor().clone())
            .unwrap_or(t))
    }

    /// Ensemble size.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The parameters handed out, in order, and (for weights) the problems
    /// found.
    pub fn finish(self) -> (Vec<Param>, Vec<WeightProblem>) {
        let problems = match self.source {
            Source::Weights { problems, .. } => problems,
            _ => Vec::new(),
        };
        (self.params, problems)
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
