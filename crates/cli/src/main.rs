//! The `cfmem` command-line tool: `main` parses the flags and dispatches;
//! each subcommand's module turns its flags into library calls.

mod compare;
mod flags;
mod pretrain;
mod progress;
mod report;
mod run;
mod status;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::flags::{Cli, Command};

/// Training allocates and frees many short-lived tensors; mimalloc keeps the
/// memory instead of returning it to the OS on every free (≈ 1.4× faster
/// training than glibc malloc on the tiny preset).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Before any thread starts: candle's matrix-product threads (`--threads`
    // for the jobs of `cfmem run`; the cores for `cfmem pretrain`'s one
    // model), its element-wise pool, and the allocator.
    let matmul_threads = match &cli.command {
        Command::Run(a) => Some(a.threads()),
        _ => None,
    };
    cfmem_core::settle_process(matmul_threads, |k, v| std::env::set_var(k, v));
    let result = match &cli.command {
        Command::Run(a) => run::cmd_run(a),
        Command::Report(a) => report::cmd_report(a),
        Command::Status(a) => status::cmd_status(a),
        Command::Compare(a) => compare::cmd_compare(a),
        Command::Pretrain(a) => pretrain::cmd_pretrain(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}{}", hint(&e));
            ExitCode::from(2)
        }
    }
}

/// What the user can do about a library error, in terms of flags (library
/// messages name no flag).
fn hint(e: &anyhow::Error) -> &'static str {
    use cfmem_sched::{Error, Kept};
    // A scheduler error, directly or as the source of rows of an analysis.
    let sched =
        e.downcast_ref::<Error>()
            .or_else(|| match e.downcast_ref::<cfmem_analysis::Error>() {
                Some(cfmem_analysis::Error::Source(inner)) => inner.downcast_ref::<Error>(),
                _ => None,
            });
    match sched {
        Some(Error::ManifestMismatch { .. }) => {
            "\n(use a new directory, or pass --fresh to discard the existing experiment)"
        }
        Some(Error::BadManifest { .. }) => "\n(pass --fresh to replace it with a new experiment)",
        Some(Error::NoCorpus(_)) => " (give --corpus PATH)",
        Some(Error::ShardVariable { .. }) => {
            "\n(give the shard with --shard I/N, or the count with --shards N)"
        }
        Some(Error::NotKept {
            what: Kept::PerToken,
            ..
        }) => "\n(per-token results are kept by `cfmem run --per-token`, in a new experiment)",
        Some(Error::NotKept {
            what: Kept::Extraction,
            ..
        }) => "\n(the extraction test is taken by `cfmem run --extraction`, in a new experiment)",
        _ => "",
    }
}
