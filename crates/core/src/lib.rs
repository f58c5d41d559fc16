//! Corpora, tokenizers, the ensemble transformer, training and evaluation.
//!
//! `cfmem-core` knows nothing of experiments: it loads a [`Corpus`], turns it
//! into a [`TokenizedCorpus`] of context-sized windows, trains an
//! [`Ensemble`] of [`Gpt`] models (each on its own [`Subset`]), and
//! evaluates every model on every document with [`evaluate`].
//!
//! Where things live: `corpus.rs` (loading and validation; Parquet corpora
//! in `read_parquet.rs`), `tokenizer.rs`,
//! `data.rs` (windows and batches), `model/` (the ensemble transformer:
//! `layers.rs` holds one struct per layer, `params.rs` names and initialises
//! the parameters),
//! `fused/` (the fused CPU kernels, one file per op family), `native/` (the
//! native CPU step: forward and backward over buffers it owns, fp32 or bf16
//! products), `optim.rs`
//! (AdamW), `train.rs` (the training loop), `eval.rs`, `canary.rs` (planted
//! documents), `device.rs`, `process.rs` (the process-wide settings a
//! program makes once at start-up: [`settle_process`]).
//!
//! ```
//! use cfmem_core::*;
//! use candle_core::{DType, Device};
//!
//! let corpus = Corpus::from_documents(vec![
//!     Document::new("a", "the cat sat on the mat"),
//!     Document::new("b", "a dog ran in the fog"),
//! ])?;
//! let model_cfg = ModelConfig { d_model: 16, d_ff: 32, n_head: 2, ctx: 16, ..ModelConfig::tiny() };
//! let train_cfg = TrainConfig { epochs: 2, batch_size: 2, ..Default::default() };
//! let data = TokenizedCorpus::new(&corpus, &ByteTokenizer, model_cfg.ctx)?;
//! let job = ModelJob { model: 0, subset: Subset::from_copies(&[1, 0]), init_seed: 1, data_seed: 2 };
//! let trained = Ensemble::new(&model_cfg, &train_cfg, &data, &[job]).train(None)?;
//! let evals = evaluate(&trained.model, &data, 8, &Device::Cpu)?;
//! assert_eq!(evals[0].len(), 2);
//! assert!(trained.stats[0].steps > 0);
//! # Ok::<(), cfmem_core::Error>(())
//! ```
#![deny(missing_docs)]

mod canary;
mod checkpoint;

mod corpus;
mod data;
mod device;
mod error;
mod eval;
mod extract;
mod fused;
mod hf;
mod model;
mod native;
mod optim;
mod process;
mod read_parquet;
mod tokenizer;
mod train;

pub use canary::{
    canaries, kind_of, Alphabet, CanaryConfig, CanaryFormat, ExposureConfig, CONTROL_PREFIX,
    DEFAULT_CANDIDATES, RANDOM_PREFIX,
};
pub use checkpoint::{Checkpoint, Gpt2Shape};
pub use corpus::{Corpus, Document, LoadConfig};
pub use data::{Batch, HostBatch, TokenIds, TokenTable, TokenizedCorpus, Window};
pub use device::{select_device, set_tf32, DeviceChoice};
pub use error::{Error, FieldProblem, Gpt2Problem, HfProblem, Location, Result, WeightProblem};
pub use eval::{evaluate, evaluate_tokens, greedy, next_token_moments, DocEval, TokenScores};
pub use extract::{extraction, ExtractionConfig, TOO_SHORT};
pub use fused::Kernels;
pub use hf::HfShape;
pub use model::{
    token_nll, token_nll_with, Arch, Frozen, Gpt, LlamaConfig, Lora, ModelConfig, NeoXConfig, Param,
};
pub use native::{native_gradients, NativeGradients, Precision};
pub use process::{matmul_threads, settle_process};
pub use tokenizer::{
    ByteTokenizer, HfTokenizer, ResolvedTokenizer, Tokenizer, TokenizerConfig, TokenizerSpec,
};
pub use train::{Ensemble, ModelJob, StepHook, Subset, TrainConfig, TrainStats, Trained};

/// Re-exported so users need not depend on candle directly for the basics.
pub use candle_core::{DType, Device, Tensor};
