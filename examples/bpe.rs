//! The quickstart corpus under two tokenizers: bytes (the quickstart
//! itself) and a byte-level BPE of 512 symbols trained on the corpus. How
//! much does the memorization ranking depend on what a "token" is?
//!
//! ```text
//! cargo run --release --example bpe       # ≈ 5 minutes on 2 cores (2 × 24 models; resumes the quickstart's)
//! ```
//! Prints the Spearman correlation of the two rankings (with its interval)
//! and the canaries / controls / dictionary summary under each; the
//! metrics are per token of each tokenizer, so the levels differ and the
//! ranking is what compares.

use anyhow::Result;
use cfmem::analysis::{compare, report, CompareConfig, MeanCi, ReportConfig};
use cfmem::engine::{kind_of, TokenizerSpec};
use cfmem::sched::{run, Experiment, OnChange, PrintProgress, RunConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const N_MODELS: usize = 24;

fn main() -> Result<()> {
    // One matrix-product thread per job (one job per core), set before
    // any thread starts.
    cfmem::engine::settle_process(Some(1), |k, v| std::env::set_var(k, v));
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/target/cfmem-examples");
    let corpus = cfmem::bundled::quickstart_corpus()?;
    let mut exps = Vec::new();
    for (dir, spec) in [
        ("quickstart", TokenizerSpec::Bytes),
        ("bpe", TokenizerSpec::Bpe(512)),
    ] {
        let exp = Experiment::builder(format!("{root}/{dir}"))
            .corpus(corpus.clone())
            .tokenizer(spec)
            .per_token(true)
            .open(OnChange::Replace)?;
        let s = run(
            &exp,
            &RunConfig {
                n_models: N_MODELS,
                ..RunConfig::default()
            },
            &PrintProgress::every(8),
        )?;
        let table = exp.token_table()?;
        println!(
            "{}: {} tokens for {} documents ({} trained now, {:.0} s)",
            exp.manifest().tokenizer.name(),
            table.ids().len(),
            corpus.len(),
            s.trained.len(),
            s.seconds
        );
        exps.push(exp);
    }
    let c = compare(&exps[0], &exps[1], &CompareConfig::default())?;
    if let Some(s) = c.spearman {
        println!(
            "\nranking under bytes vs under bpe:512: Spearman {:.3} [{:.3}, {:.3}] over {} documents; top-10 overlap {:.1}",
            s.r,
            s.ci_low,
            s.ci_high,
            c.n_docs,
            c.top_k.first().map_or(f64::NAN, |t| t.overlap)
        );
    }
    println!("\nmemorization by kind (per-token accuracy of each tokenizer; mean over documents [95% CI]):");
    println!("{:<22} {:>26} {:>26}", "kind", "bytes", "bpe:512");
    let reps = [
        report(&exps[0], &ReportConfig::default())?,
        report(&exps[1], &ReportConfig::default())?,
    ];
    for (kind, label) in [
        ("random canaries", "random canaries"),
        ("controls", "controls"),
        ("documents", "dictionary entries"),
    ] {
        let cell = |i: usize| {
            let v: Vec<f64> = reps[i]
                .docs
                .iter()
                .filter(|d| kind_of(&d.id) == kind)
                .filter_map(|d| d.estimate.mem)
                .collect();
            let m = MeanCi::of(&v, 0.95);
            format!("{:.4} [{:.4}, {:.4}]", m.mean, m.ci_low, m.ci_high)
        };
        println!("{label:<22} {:>26} {:>26}", cell(0), cell(1));
    }
    Ok(())
}
