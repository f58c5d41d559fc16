//! `cfmem pretrain` flags.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cfmem_core::{Arch, ModelConfig, Precision, TokenizerSpec, TrainConfig};
use clap::Args;

use super::run::LoadArgs;

#[derive(Args, Debug)]
pub struct PretrainArgs {
    /// Corpus to train on (as for `cfmem run --corpus`).
    #[arg(long)]
    pub corpus: PathBuf,
    /// Where to write the model (safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Model preset: tiny or small; fine-tune with the same one.
    #[arg(long, default_value = "tiny")]
    preset: String,
    /// Model family, with the preset's widths: gpt2, gpt_neox or llama (as for `cfmem run --arch`); a family other than GPT-2 is written beside the model (OUT_STEM.config.json), so that `cfmem run --init` takes it.
    #[arg(long, default_value = "gpt2", value_parser = super::parse_arch)]
    arch: Arch,
    /// Epochs over the corpus.
    #[arg(long, default_value_t = 16)]
    epochs: usize,
    /// Windows per training batch.
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = TrainConfig::default().lr)]
    lr: f64,
    /// The matrix products' arithmetic, as for `cfmem run --precision`.
    #[arg(long, default_value = "fp32")]
    precision: Precision,
    /// Tokenizer, as for `cfmem run --tokenizer`: bytes, bpe:VOCAB (trained on this corpus) or the path of a Hugging Face tokenizer.json. Other than bytes, it is written beside the model (OUT_STEM.tokenizer.json) for the experiments that fine-tune from it.
    #[arg(long, default_value = "bytes")]
    pub tokenizer: TokenizerSpec,
    /// Seed of the initialisation and batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub load: LoadArgs,
}

impl PretrainArgs {
    /// The model shape.
    pub fn model(&self) -> Result<ModelConfig> {
        let model = ModelConfig::preset(&self.preset).with_context(|| {
            format!("unknown preset {:?} (expected tiny or small)", self.preset)
        })?;
        Ok(ModelConfig {
            arch: self.arch.clone(),
            ..model
        })
    }

    /// The recipe.
    pub fn train(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            precision: self.precision,
            ..TrainConfig::default()
        }
    }
}
