//! Prediction: a document included with more copies per epoch (1, 2, 4)
//! is memorized more.
//!
//! ```text
//! cargo run --release --example repetition   # ≈ 8 minutes on 2 cores
//! ```
//! 32 tiny models (64 epochs) on 64 dictionary entries, each entry given
//! 0, 1, 2 or 4 copies per model with probability 1/4 each; memorization at
//! k copies is the gap against 0 copies. Plot:
//! `target/cfmem-examples/repetition/`.

mod common;

use anyhow::Result;
use cfmem::analysis::Metric;
use cfmem::report::plot::plot;
use cfmem_studies::{repetition, Scale};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    // One matrix-product thread per job (one job per core), set before
    // any thread starts.
    cfmem::engine::settle_process(Some(1), |k, v| std::env::set_var(k, v));
    let dir = common::out_dir("repetition")?;
    println!(
        "memorization by copies per epoch; experiment in {}",
        dir.display()
    );
    let r = repetition(&dir.join("exp"), &Scale::full(), &common::progress())?;
    println!("\ncopies  mem (per-token accuracy vs 0 copies), mean over documents [95% CI]");
    for l in &r.levels {
        println!("  {:>4}  {}", l.copies, common::mean_ci(&l.mem));
    }
    println!(
        "paired over documents: mem(2) − mem(1) = {}",
        common::mean_ci(&r.two_vs_one)
    );
    println!(
        "paired over documents: mem(4) − mem(1) = {}",
        common::mean_ci(&r.four_vs_one)
    );
    println!(
        "prediction (4 copies > 1 copy): {}",
        common::verdict(r.four_vs_one.above_zero())
    );
    println!(
        "prediction (2 copies > 1 copy): {}",
        common::verdict(r.two_vs_one.above_zero())
    );
    let c = cfmem::report::charts::repetition(&r.curve, Metric::Accuracy);
    for p in plot(&dir.join("mem-vs-copies"), &c.chart, &c.labels)? {
        println!("wrote {}", p.display());
    }
    Ok(())
}
