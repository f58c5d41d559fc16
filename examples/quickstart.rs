//! Quickstart: measure counterfactual memorization on part of The Devil's
//! Dictionary with planted random canaries and low-information controls.
//!
//! ```text
//! cargo run --release --example quickstart            # 24 models, ≈ 3.5 min on 2 cores
//! cargo run --release --example quickstart -- 8       # fewer models, faster, noisier
//! ```
//! Results go to `target/cfmem-examples/quickstart/` (rerunning resumes).

use std::time::Instant;

use anyhow::{Context, Result};
use cfmem::analysis::{DesignConfig, Metric};
use cfmem::engine::{LoadConfig, ModelConfig, TrainConfig, CONTROL_PREFIX, RANDOM_PREFIX};
use cfmem::sched::{report, run, DocEstimate, Manifest, Observer, RunConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Natural-text documents in the quickstart corpus.
const N_NATURAL: usize = 120;

struct Progress {
    total: usize,
    start: Instant,
}

impl Observer for Progress {
    fn start(&self, pending: usize, done: usize) {
        println!("{pending} models to train ({done} already done)");
    }
    fn model_done(&self, model: usize, seconds: f64, tokens: u64) {
        println!(
            "  model {model:>3}/{} trained: {seconds:5.1} s, {:>6.0} tokens/s, {:5.0} s elapsed",
            self.total,
            tokens as f64 / seconds.max(1e-9),
            self.start.elapsed().as_secs_f64()
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Random,
    Control,
    Natural,
}

fn kind(id: &str) -> Kind {
    if id.starts_with(RANDOM_PREFIX) {
        Kind::Random
    } else if id.starts_with(CONTROL_PREFIX) {
        Kind::Control
    } else {
        Kind::Natural
    }
}

fn main() -> Result<()> {
    let n_models: usize = match std::env::args().nth(1) {
        Some(s) => s.parse().context("the argument is the number of models")?,
        None => 24,
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let corpus = cfmem::bundled::quickstart_corpus()?;

    let model = ModelConfig::tiny();
    let train = TrainConfig::default();
    let design = DesignConfig::blocks(2, 0);
    let manifest = Manifest::new(
        &corpus,
        None,
        LoadConfig::default(),
        model,
        train,
        design,
        0,
    );
    let dir = format!("{root}/target/cfmem-examples/quickstart");
    println!(
        "corpus: {} documents ({N_NATURAL} dictionary entries, 16 random canaries, 16 controls); experiment in {dir}",
        corpus.len()
    );
    // Resume a previous run of this example; start afresh if its settings
    // (or the trainer revision) changed, or its manifest is unreadable.
    let exp = cfmem::studies::open_or_replace(std::path::Path::new(&dir), manifest, corpus, None)
        .map_err(|e| anyhow::anyhow!(e))?;
    let cfg = RunConfig {
        n_models,
        ..RunConfig::default()
    };
    let start = Instant::now();
    let summary = run(
        &exp,
        &cfg,
        &Progress {
            total: n_models,
            start,
        },
    )?;
    anyhow::ensure!(
        summary.failed.is_empty(),
        "models failed: {:?}",
        summary.failed
    );
    println!(
        "trained {} models in {:.0} s ({} already done)\n",
        summary.trained.len(),
        summary.seconds,
        summary.n_already_done
    );

    let rep = report(&exp, Metric::Accuracy)?;
    let ranked = rep.ranked();
    println!(
        "Top 12 most memorized documents (per-token accuracy, {} models, 95% CI):",
        rep.n_models
    );
    println!(
        "{:>4}  {:<22} {:>7} {:>7} {:>7}  {:<18}",
        "rank", "id", "in", "out", "mem", "95% CI"
    );
    for (r, d) in ranked.iter().take(12).enumerate() {
        let e = &d.estimate;
        println!(
            "{:>4}  {:<22} {:>7.3} {:>7.3} {:>7.3}  [{:.3}, {:.3}]",
            r + 1,
            d.id.chars().take(22).collect::<String>(),
            e.in_mean.unwrap_or(f64::NAN),
            e.out_mean.unwrap_or(f64::NAN),
            e.mem.unwrap_or(f64::NAN),
            e.ci_low.unwrap_or(f64::NAN),
            e.ci_high.unwrap_or(f64::NAN)
        );
    }
    println!("\nBy kind of document:");
    println!(
        "{:<28} {:>3} {:>8} {:>8} {:>8} {:>10} {:>9}",
        "kind", "n", "median", "mean", "± 95%", "CI > 0", "mean rank"
    );
    let mut means = Vec::new();
    for (k, label) in [
        (Kind::Random, "random canaries (32 hex)"),
        (Kind::Control, "controls (\"the the ...\")"),
        (Kind::Natural, "dictionary entries"),
    ] {
        let group: Vec<(usize, &&DocEstimate)> = ranked
            .iter()
            .enumerate()
            .filter(|(_, d)| kind(&d.id) == k)
            .collect();
        let mems: Vec<f64> = group.iter().filter_map(|(_, d)| d.estimate.mem).collect();
        let n = mems.len() as f64;
        let mean = mems.iter().sum::<f64>() / n;
        // SE of a mean of independent estimates: sqrt(Σ se²) / n.
        let se = group
            .iter()
            .filter_map(|(_, d)| d.estimate.se)
            .map(|s| s * s)
            .sum::<f64>()
            .sqrt()
            / n;
        let mut sorted = mems.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let pos = group
            .iter()
            .filter(|(_, d)| d.estimate.ci_low.is_some_and(|l| l > 0.0))
            .count();
        let rank = group.iter().map(|(r, _)| (*r + 1) as f64).sum::<f64>() / n;
        println!(
            "{label:<28} {:>3} {median:>8.4} {mean:>8.4} {:>8.4} {:>6}/{:<3} {rank:>9.1}",
            mems.len(),
            1.96 * se,
            pos,
            mems.len()
        );
        means.push((mean, se));
    }
    let (dm, dse) = (
        means[0].0 - means[1].0,
        (means[0].1.powi(2) + means[1].1.powi(2)).sqrt(),
    );
    let verdict = if dm - 1.96 * dse > 0.0 { "yes" } else { "NO" };
    println!(
        "\nRandom canaries above controls: {verdict} (difference of means {dm:.4} ± {:.4}, 95%)",
        1.96 * dse
    );
    let dn = means[0].0 - means[2].0;
    println!(
        "Random canaries vs natural text: difference of means {dn:+.4} ± {:.4} (memorization peaks at intermediate difficulty, so natural text may come out higher)",
        1.96 * (means[0].1.powi(2) + means[2].1.powi(2)).sqrt()
    );
    println!("\nFull table: cargo run --release -p cfmem-cli -- report {dir} --csv mem.csv");
    Ok(())
}
