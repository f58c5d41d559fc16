//! The command line: clap's view of the flags (one file per subcommand),
//! and their translation into library settings.

use std::path::PathBuf;

use cfmem_core::{Arch, Lora};
use clap::{Args, Parser, Subcommand};

mod canaries;
mod compare;
mod pretrain;
mod recipe;
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

/// LoRA's `RANK[:ALPHA]`.
pub fn parse_lora(s: &str) -> std::result::Result<Lora, String> {
    Lora::parse(s).map_err(|e| e.to_string())
}

/// A model family by name (`gpt2`, `gpt_neox`, `llama`).
pub fn parse_arch(s: &str) -> std::result::Result<Arch, String> {
    Arch::by_name(s)
        .ok_or_else(|| format!("unknown family {s:?} (expected gpt2, gpt_neox or llama)"))
}

/// The command-line reference page (`docs/src/reference/cli.md`),
/// generated from the flag definitions above so that it cannot drift.
#[cfg(test)]
mod reference {
    use super::Cli;

    const PAGE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/src/reference/cli.md"
    );

    fn generate() -> String {
        let body = clap_markdown::help_markdown_custom::<Cli>(
            &clap_markdown::MarkdownOptions::new()
                .title("Command-line reference".to_string())
                .show_footer(false)
                .show_table_of_contents(true),
        );
        format!(
            "<!-- Generated from crates/cli/src/flags/ by `CFMEM_BLESS=1 cargo test -p cfmem-cli --release cli_reference`; do not edit. -->\n\n{body}"
        )
    }

    #[test]
    fn cli_reference_is_current() {
        let page = generate();
        if std::env::var_os("CFMEM_BLESS").is_some() {
            std::fs::write(PAGE, &page).unwrap();
            return;
        }
        let on_disk = std::fs::read_to_string(PAGE).unwrap_or_default();
        assert!(
            on_disk == page,
            "docs/src/reference/cli.md is out of date with the flags: regenerate it with \
             `CFMEM_BLESS=1 cargo test -p cfmem-cli --release cli_reference`"
        );
        // Every flag of `cfmem run` is on the page (the hand-written table
        // this replaces had lost --device and --tf32).
        for flag in ["--device", "--tf32", "--corpus", "--extraction", "--shard"] {
            assert!(page.contains(flag), "{flag} missing from the reference");
        }
    }
}
