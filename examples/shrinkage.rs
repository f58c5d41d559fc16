//! Does empirical-Bayes shrinkage rank documents better than the raw
//! estimates? The estimates of an experiment's first 8 and 16 models, raw
//! and shrunk (`cfmem report --shrink`), against the raw estimates of its
//! other models (an independent experiment of 32: other subsets, other
//! seeds), by Spearman over the documents, with the gain's paired
//! bootstrap interval.
//!
//! ```text
//! cargo run --release --example shrinkage            # quickstart corpus, 48 models: ≈ 5 min on 2 cores
//! cargo run --release --example shrinkage -- DIR...  # experiments of 24 models or more, as they are
//! ```

mod common;

use anyhow::{Context, Result};
use cfmem::sched::Experiment;
use cfmem_studies::{shrinkage, shrinkage_of, Scale, ShrinkageStudy};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    cfmem::engine::settle_process(Some(1), |k, v| std::env::set_var(k, v));
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        let dir = common::out_dir("shrinkage")?;
        let corpus = cfmem::bundled::quickstart_corpus()?;
        println!(
            "shrinkage on the quickstart corpus ({} documents), 48 models in {}",
            corpus.len(),
            dir.display()
        );
        let scale = Scale {
            n_models: 48,
            epochs: cfmem::engine::TrainConfig::default().epochs,
            ..Scale::full()
        };
        let s = shrinkage(&dir.join("exp"), corpus, &scale, &common::progress())?;
        print(&dir.join("exp").display().to_string(), &s);
    }
    for d in &dirs {
        let exp = Experiment::open(d).with_context(|| format!("opening {d}"))?;
        let n = exp.n_recorded()?;
        let s = shrinkage_of(&exp, n, &[8, 16])?;
        print(d, &s);
    }
    Ok(())
}

fn print(name: &str, s: &ShrinkageStudy) {
    println!(
        "\n{name}: {} documents; reference: the other {} models (raw)",
        s.n_docs, s.reference_models
    );
    println!("models  raw Spearman [95% CI]   shrunk Spearman [95% CI]  shrunk − raw [95% CI]");
    let c = |x: &Option<cfmem::analysis::Correlation>| {
        x.map_or("n/a".into(), |c| {
            format!("{:.3} [{:.3}, {:.3}]", c.r, c.ci_low, c.ci_high)
        })
    };
    for p in &s.points {
        let g = p.gain.map_or("n/a".into(), |(d, lo, hi)| {
            format!("{d:+.3} [{lo:+.3}, {hi:+.3}]")
        });
        println!(
            "{:>6}  {:<24}  {:<24}  {g}",
            p.models,
            c(&p.raw),
            c(&p.shrunk)
        );
    }
}
