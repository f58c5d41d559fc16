//! The model and training flags of `cfmem run`: a preset and family, the
//! recipe, the products' precision and LoRA, each applied to the stored
//! experiment's settings when given.

use anyhow::{Context, Result};
use cfmem_core::{Arch, Lora, ModelConfig, Precision};
use cfmem_sched::{ExperimentBuilder, Manifest};
use clap::Args;

/// The model and training flags.
#[derive(Debug, Args)]
pub struct RecipeArgs {
    /// Model preset: tiny or small [default: tiny].
    #[arg(long)]
    preset: Option<String>,
    /// Model family, with the preset's widths: gpt2, gpt_neox (Pythia's settings: rotary on a quarter of each head, parallel residual) or llama (RMSNorm, SwiGLU, rotary, 2 key/value heads) [default: gpt2]. bf16 products and the native CPU step are GPT-2's; the other families train through candle's graph.
    #[arg(long, value_parser = super::parse_arch)]
    arch: Option<Arch>,
    /// Epochs over each model's subset [default: 64].
    #[arg(long)]
    epochs: Option<usize>,
    /// Windows per training batch [default: 16].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate [default: 3e-3].
    #[arg(long)]
    lr: Option<f64>,
    /// The matrix products' arithmetic: fp32, or bf16 (bf16 operands, exact products, fp32 sums; master weights, AdamW, norms, softmax and loss stay fp32), on the CPU's AVX512-BF16 units, or emulated bit for bit where the CPU has none (several times slower) [default: fp32]. Part of the experiment's settings.
    #[arg(long)]
    precision: Option<Precision>,
    /// Fine-tune LoRA adapters of the --init checkpoint instead of every parameter: rank RANK, the update scaled by ALPHA / RANK [default ALPHA: 2 × RANK]. The base's weights are frozen and held once for all the models of an ensemble; each model trains its own adapters (B starts at zero, A from the model's seed), and --save-models keeps the adapters only. Part of the experiment's settings.
    #[arg(long, value_name = "RANK[:ALPHA]", value_parser = super::parse_lora)]
    lora: Option<Lora>,
    /// The projections LoRA adapts, comma-separated: qkv and o (attention), fc and proj (the GPT-2 and GPT-NeoX MLP), gate, up and down (the Llama MLP), or the groups attn and mlp [default: every attention and MLP projection].
    #[arg(long, value_name = "LIST", value_delimiter = ',', requires = "lora")]
    lora_targets: Option<Vec<String>>,
}

impl RecipeArgs {
    /// `b` with the model and training settings these flags change: each
    /// applied to `stored`'s (the existing experiment's), else to the
    /// defaults.
    ///
    /// # Errors
    /// An unknown preset.
    pub fn apply(
        &self,
        mut b: ExperimentBuilder,
        stored: Option<&Manifest>,
    ) -> Result<ExperimentBuilder> {
        if self.preset.is_some() || self.arch.is_some() {
            let mut model = match &self.preset {
                Some(p) => ModelConfig::preset(p)
                    .with_context(|| format!("unknown preset {p:?} (expected tiny or small)"))?,
                None => stored.map(|m| m.model.clone()).unwrap_or_default(),
            };
            if let Some(a) = &self.arch {
                model.arch = a.clone();
            }
            b = b.model(model);
        }
        if self.epochs.is_some()
            || self.batch_size.is_some()
            || self.lr.is_some()
            || self.precision.is_some()
            || self.lora.is_some()
        {
            let mut t = stored.map(|m| m.train.clone()).unwrap_or_default();
            t.epochs = self.epochs.unwrap_or(t.epochs);
            t.batch_size = self.batch_size.unwrap_or(t.batch_size);
            t.lr = self.lr.unwrap_or(t.lr);
            t.precision = self.precision.unwrap_or(t.precision);
            if let Some(mut lora) = self.lora.clone() {
                lora.targets = self.lora_targets.clone().unwrap_or_default();
                t.lora = Some(lora);
            }
            b = b.train(t);
        }
        Ok(b)
    }
}
