//! A base model to fine-tune from: one model trained on a whole corpus and
//! saved as safetensors (`cfmem pretrain`), so that memorization of
//! fine-tuning data can be measured with nothing downloaded.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cfmem_core::{
    Checkpoint, Corpus, Ensemble, ModelConfig, ModelJob, Subset, TokenizedCorpus, TokenizerSpec,
    TrainConfig,
};

use crate::error::{io, Result};
use crate::manifest::{seeds, Seeding};

/// What [`pretrain`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Pretrained {
    /// Training tokens.
    pub tokens: u64,
    /// Optimizer steps.
    pub steps: usize,
    /// Mean loss of the last step (nats per token).
    pub final_loss: Option<f64>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// blake3 of the file written.
    pub fingerprint: String,
    /// The tokenizer's `tokenizer.json`, written beside the model
    /// (`OUT_STEM.tokenizer.json`) unless the tokenizer is bytes: give it to
    /// the experiments that fine-tune from the model (`--tokenizer`).
    pub tokenizer: Option<PathBuf>,
}

/// Train one model of shape `model` (its vocabulary set to the
/// tokenizer's) on every document of `corpus`, tokenized by `tokenizer`
/// (bytes, a BPE trained on this corpus, or a `tokenizer.json`), with
/// `train`, its initialisation and batch order from `seed`, and save it to
/// `out` (safetensors, [`Checkpoint::save`]), with the tokenizer beside it
/// ([`Pretrained::tokenizer`]) and, for the GPT-NeoX and Llama-style
/// families, its `config.json` (`OUT_STEM.config.json`). Experiments use it with
/// [`crate::ExperimentBuilder::init`], the same model shape and the same
/// tokenizer.
///
/// # Errors
/// Bad configurations, tokenizer, training and I/O errors.
pub fn pretrain(
    corpus: &Corpus,
    model: &ModelConfig,
    train: &TrainConfig,
    tokenizer: &TokenizerSpec,
    seed: u64,
    out: &Path,
) -> Result<Pretrained> {
    let start = Instant::now();
    let resolved = tokenizer.resolve(corpus)?;
    let tok = resolved.config.build(resolved.json.as_deref())?;
    let model = ModelConfig {
        vocab_size: resolved.config.vocab_size(),
        ..model.clone()
    };
    let data = TokenizedCorpus::new(corpus, tok.as_ref(), model.ctx)?;
    // The seeds an experiment with this seed gives its model 0 (per-model).
    let m = seeds(seed, Seeding::PerModel, 0);
    let job = ModelJob {
        model: 0,
        subset: Subset::from_copies(&vec![1; corpus.len()]),
        init_seed: m.0,
        data_seed: m.1,
    };
    let t = Ensemble::new(&model, train, &data, &[job]).train(None)?;
    Checkpoint::save(&t.model, 0, out)?;
    let stem = out
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    // The family travels beside the weights (GPT-2's shape is the model's).
    if let Some(config) = Checkpoint::hf_config(&model) {
        let path = out.with_file_name(format!("{stem}.config.json"));
        let bytes = serde_json::to_vec_pretty(&config).unwrap_or_default();
        std::fs::write(&path, bytes).map_err(io(&path))?;
    }
    let tokenizer = match &resolved.json {
        Some(json) => {
            let path = out.with_file_name(format!("{stem}.tokenizer.json"));
            std::fs::write(&path, json).map_err(io(&path))?;
            Some(path)
        }
        None => None,
    };
    let fingerprint = Checkpoint::load(out)?.fingerprint().to_string();
    let s = &t.stats[0];
    Ok(Pretrained {
        tokens: s.tokens,
        steps: s.steps,
        final_loss: s.final_loss,
        seconds: start.elapsed().as_secs_f64(),
        fingerprint,
        tokenizer,
    })
}
