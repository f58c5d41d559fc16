//! Experiment directories and the executor that fills them.
//!
//! An [`Experiment`] is a directory with a [`Manifest`] (everything that
//! determines the results), the validated corpus, and one checksummed
//! [`Record`] per finished model. [`Experiment::builder`] creates or resumes
//! one; [`run`] trains its missing models in parallel (resuming is running
//! again; growing is asking for more models); [`Experiment::status`] says
//! where it stands. An experiment is a [`cfmem_analysis::Rows`] source, so
//! every analysis of `cfmem-analysis` reads it directly.
//!
//! ```no_run
//! use cfmem_analysis::{report, ReportConfig};
//! use cfmem_core::{Corpus, LoadConfig};
//! use cfmem_sched::{run, Experiment, OnChange, RunConfig, Silent};
//!
//! let corpus = Corpus::load("datasets/devil.jsonl", &LoadConfig::default())?;
//! let exp = Experiment::builder("experiments/devil").corpus(corpus).open(OnChange::Refuse)?;
//! let summary = run(&exp, &RunConfig { n_models: 8, ..RunConfig::default() }, &Silent)?;
//! let rep = report(&exp, &ReportConfig::default())?;
//! for d in rep.ranked().iter().take(5) {
//!     println!("{} {:?}", d.id, d.estimate.mem);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Where things live: `builder.rs` (create / resume / replace), `manifest.rs`,
//! `units.rs` (units of removal), `layout.rs` (every path of the directory),
//! `record.rs` (the record format), `experiment.rs` (reading records,
//! scanning), `claim.rs` (file locks between processes), `exec.rs` (the
//! executor), `grow.rs` (growing until reliable), `status.rs`, `shard.rs`,
//! `rows.rs` (the experiment as rows for the analyses), `progress.rs`.
#![deny(missing_docs)]

mod builder;
mod claim;
mod describe;
mod error;
mod exec;
mod experiment;
mod exposure;
mod extraction;
mod grow;
mod layout;
mod manifest;
mod per_token;
mod pretrain;
mod progress;
mod record;
mod rows;
mod shard;
mod status;
mod token_record;
mod tokens;
mod units;

pub use builder::{ExperimentBuilder, OnChange};
pub use error::{Difference, Error, Kept, ManifestProblem, RecordProblem, Result};
pub use exec::{run, FailedModel, Observer, RunConfig, RunSummary, Silent, GPU_ENSEMBLE};
pub use experiment::{CorruptRecord, Experiment, Scan};
pub use grow::{grow, Growth, Round};
pub use manifest::{CorpusInfo, InitInfo, Manifest, Seeding, FORMAT_VERSION, TRAINER_REVISION};
pub use pretrain::{pretrain, Pretrained};
pub use progress::{describe_problems, PrintProgress};
pub use record::{Evals, Record, RecordMeta, BYTES_PER_DOC};
pub use shard::Shard;
pub use status::{ShardStatus, Status};
pub use token_record::TOKEN_BYTES;
pub use units::{SpectrumSpec, UnitSpec};
