//! A base model to fine-tune from: one model trained on a whole corpus and
//! saved as safetensors (`cfmem pretrain`), so that memorization of
//! fine-tuning data can be measured with nothing downloaded.

use std::path::Path;
use std::time::Instant;

use cfmem_core::{
    ByteTokenizer, Checkpoint, Corpus, Ensemble, ModelConfig, ModelJob, Subset, TokenizedCorpus,
    Tokenizer, TrainConfig,
};

use crate::error::Result;
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
}

/// Train one model of shape `model` (its vocabulary set to the byte
/// tokenizer's) on every document of `corpus` with `train`, its
/// initialisation and batch order from `seed`, and save it to `out`
/// (safetensors, [`Checkpoint::save`]). Experiments use it with
/// [`crate::ExperimentBuilder::init`] and the same model shape.
///
/// # Errors
/// Bad configurations, training and I/O errors.
pub fn pretrain(
    corpus: &Corpus,
    model: &ModelConfig,
    train: &TrainConfig,
    seed: u64,
    out: &Path,
) -> Result<Pretrained> {
    let start = Instant::now();
    let model = ModelConfig {
        vocab_size: ByteTokenizer.vocab_size(),
        ..model.clone()
    };
    let data = TokenizedCorpus::new(corpus, &ByteTokenizer, model.ctx)?;
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
    let fingerprint = Checkpoint::load(out)?.fingerprint().to_string();
    let s = &t.stats[0];
    Ok(Pretrained {
        tokens: s.tokens,
        steps: s.steps,
        final_loss: s.final_loss,
        seconds: start.elapsed().as_secs_f64(),
        fingerprint,
    })
}
