//! Experiment directories and the executor that fills them.
//!
//! An [`Experiment`] is a directory with a [`Manifest`] (everything that
//! determines the results), the validated corpus, and one checksummed
//! [`Record`] per finished model. [`run`] trains the missing models in
//! parallel (resuming is running again); [`report()`] streams the records
//! into per-document memorization estimates.
//!
//! ```no_run
//! use cfmem_sched::*;
//! use cfmem_core::{Corpus, LoadConfig, ModelConfig, TrainConfig};
//! use cfmem_analysis::{DesignConfig, Metric};
//!
//! let corpus = Corpus::load("datasets/devil.jsonl", &LoadConfig::default())?;
//! let manifest = Manifest::new(&corpus, None, LoadConfig::default(), ModelConfig::tiny(),
//!     TrainConfig::default(), DesignConfig::blocks(2, 0), 0);
//! let exp = Experiment::create("experiments/devil", manifest, corpus, false)?;
//! let summary = run(&exp, &RunConfig { n_models: 8, ..Default::default() }, &Silent)?;
//! let rep = report(&exp, Metric::Accuracy)?;
//! for d in rep.ranked().iter().take(5) {
//!     println!("{} {:?}", d.id, d.estimate.mem);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod error;
mod exec;
mod experiment;
mod grow;
mod manifest;
mod record;
mod report;
mod shard;

pub use error::{Error, Result};
pub use exec::{is_claimed, lock_path, run, Observer, RunConfig, RunSummary, Silent};
pub use experiment::{Experiment, Scan};
pub use grow::{grow, Growth, Round};
pub use manifest::{CorpusInfo, Manifest, Seeding, UnitSpec, FORMAT_VERSION, TRAINER_REVISION};
pub use record::{
    decode, encode, meta_path, read_record, record_path, write_atomic, Record, RecordMeta,
};
pub use report::{
    convergence, convergence_adjusted, convergence_at, groups, influence, membership, repetition,
    report, report_adjusted, DocEstimate, DocMembership, GroupEstimate, Imported, MembershipReport,
    Report, RowVisitor, Rows, Value,
};
pub use shard::Shard;
