//! The model families: how a block is built around the same residual
//! stream, token embedding and output head.
//!
//! | family | positions | norm | attention | MLP | biases | residual |
//! |---|---|---|---|---|---|---|
//! | GPT-2 (the default) | learned (`wpe`) | LayerNorm | multi-head | tanh-GELU | yes | sequential |
//! | GPT-NeoX (Pythia) | rotary on the first `rotary_pct` of each head | LayerNorm | multi-head | erf-GELU | yes | parallel (`x + attn(ln1 x) + mlp(ln2 x)`) or sequential |
//! | Llama-style (SmolLM, TinyLlama, OLMo) | rotary on the whole head | RMSNorm | grouped-query (`n_kv_head` key/value heads) | SwiGLU (`d_ff` is the gate's width) | none | sequential |

use serde::{Deserialize, Serialize};

/// A model's family and the settings only it has.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum Arch {
    /// GPT-2: learned positions, LayerNorm (ε = 1e-5), tanh-GELU, biases.
    #[default]
    Gpt2,
    /// GPT-NeoX as the Pythia suite uses it.
    #[serde(rename = "gpt_neox")]
    NeoX(NeoXConfig),
    /// Llama-style decoders.
    Llama(LlamaConfig),
}

/// GPT-NeoX's settings (Hugging Face `GPTNeoXConfig` names in brackets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeoXConfig {
    /// Fraction of each head's dimensions that rotate (`rotary_pct`; 0.25
    /// in Pythia).
    pub rotary_pct: f64,
    /// Base of the rotary frequencies (`rotary_emb_base`).
    pub rotary_base: f64,
    /// `x + attn(ln1 x) + mlp(ln2 x)` instead of two residual steps
    /// (`use_parallel_residual`).
    pub parallel_residual: bool,
    /// Layer norm ε (`layer_norm_eps`).
    pub norm_eps: f64,
}

impl Default for NeoXConfig {
    /// Pythia's.
    fn default() -> Self {
        Self {
            rotary_pct: 0.25,
            rotary_base: 10_000.0,
            parallel_residual: true,
            norm_eps: 1e-5,
        }
    }
}

/// Llama-style settings (Hugging Face `LlamaConfig` names in brackets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Key/value heads (`num_key_value_heads`), a divisor of `n_head`.
    pub n_kv_head: usize,
    /// Base of the rotary frequencies (`rope_theta`).
    pub rope_theta: f64,
    /// RMSNorm ε (`rms_norm_eps`).
    pub norm_eps: f64,
}

impl Default for LlamaConfig {
    fn default() -> Self {
        Self {
            n_kv_head: 2,
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
        }
    }
}

impl Arch {
    /// Whether this is GPT-2 (the default, left out of manifests).
    pub fn is_gpt2(&self) -> bool {
        *self == Arch::Gpt2
    }

    /// Its name: `gpt2`, `gpt_neox` or `llama` (Hugging Face's
    /// `model_type`).
    pub fn name(&self) -> &'static str {
        match self {
            Arch::Gpt2 => "gpt2",
            Arch::NeoX(_) => "gpt_neox",
            Arch::Llama(_) => "llama",
        }
    }

    /// The family by name, with its default settings (`gpt2`,
    /// `gpt_neox`/`neox`/`pythia`, `llama`).
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "gpt2" => Some(Arch::Gpt2),
            "gpt_neox" | "neox" | "pythia" => Some(Arch::NeoX(NeoXConfig::default())),
            "llama" => Some(Arch::Llama(LlamaConfig::default())),
            _ => None,
        }
    }

    /// Key/value heads for `n_head` query heads.
    pub fn n_kv_head(&self, n_head: usize) -> usize {
        match self {
            Arch::Llama(l) => l.n_kv_head,
            _ => n_head,
        }
    }

    /// Rotating dimensions of a head of `head_dim` (0 without rotary
    /// positions): Hugging Face's `int(head_dim · rotary_pct)`.
    pub fn rotary_dims(&self, head_dim: usize) -> usize {
        match self {
            Arch::Gpt2 => 0,
            Arch::NeoX(n) => (head_dim as f64 * n.rotary_pct) as usize,
            Arch::Llama(_) => head_dim,
        }
    }

    /// Base of the rotary frequencies.
    pub fn rotary_base(&self) -> f64 {
        match self {
            Arch::Gpt2 => 0.0,
            Arch::NeoX(n) => n.rotary_base,
            Arch::Llama(l) => l.rope_theta,
        }
    }

    /// The norms' ε.
    pub fn norm_eps(&self) -> f64 {
        match self {
            Arch::Gpt2 => 1e-5,
            Arch::NeoX(n) => n.norm_eps,
            Arch::Llama(l) => l.norm_eps,
        }
    }

    /// Whether linear layers and norms have biases.
    pub fn biases(&self) -> bool {
        !matches!(self, Arch::Llama(_))
    }
}
