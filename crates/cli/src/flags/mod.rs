//! The command line: clap's view of the flags (one file per subcommand),
//! and their translation into library settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod compare;
mod pretrain;
mod report;
mod run;

pub use compare::CompareArgs;
pub use pretrain::PretrainArgs;
pub use report::ReportArgs;
pub use run::RunArgs;

/// Measure counterfactual memorization: train many small language models on
/// random subsets of a corpus and estimate, per document, the gap between
/// models that saw it and models that did not.
#[derive(Parser, Debug)]
#[command(name = "cfmem", version, about, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train the missing models of an experiment (creates it if needed; resumes and grows it otherwise).
    Run(Box<RunArgs>),
    /// Print and export per-document memorization estimates.
    Report(Box<ReportArgs>),
    /// Show how many models are done, missing or corrupt.
    Status(StatusArgs),
    /// How well two independent experiments on the same corpus agree (replication).
    Compare(CompareArgs),
    /// Train one model on a whole corpus and save it, to fine-tune from (`cfmem run --init`).
    Pretrain(Box<PretrainArgs>),
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Experiment directory.
    pub dir: PathBuf,
    /// Show progress per shard for this many shards [default: as recorded by sharded runs].
    #[arg(long)]
    pub shards: Option<usize>,
}
