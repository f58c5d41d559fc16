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
use cfmem::analysis::plot::{plot, Chart, Labels, Series};
use cfmem::studies::{repetition, Scale};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let dir = common::out_dir("repetition")?;
    println!(
        "memorization by copies per epoch; experiment in {}",
        dir.display()
    );
    let r = repetition(&dir.join("exp"), &Scale::full(), &common::Progress::new())
        .map_err(|e| anyhow::anyhow!(e))?;
    println!("\ncopies  mem (per-token accuracy vs 0 copies), mean over documents [95% CI]");
    for (c, m, ci) in &r.levels {
        println!("  {c:>4}  {}", common::ci(*m, *ci));
    }
    println!(
        "paired over documents: mem(2) − mem(1) = {}",
        common::ci(r.two_vs_one.mean, r.two_vs_one.ci)
    );
    println!(
        "paired over documents: mem(4) − mem(1) = {}",
        common::ci(r.four_vs_one.mean, r.four_vs_one.ci)
    );
    println!(
        "prediction (4 copies > 1 copy): {}",
        common::verdict(r.four_vs_one.ci.0 > 0.0)
    );
    println!(
        "prediction (2 copies > 1 copy): {}",
        common::verdict(r.two_vs_one.ci.0 > 0.0)
    );
    let series = vec![Series {
        label: "mean over documents (95% CI)".into(),
        points: r
            .levels
            .iter()
            .map(|(c, m, ci)| (f64::from(*c), *m, Some((ci.1 - ci.0) / 2.0)))
            .collect(),
    }];
    for p in plot(
        &dir.join("mem-vs-copies"),
        &Chart::Lines {
            series,
            log: false,
            diagonal: false,
        },
        &Labels {
            title: "Memorization against copies per epoch".into(),
            x: "copies per epoch".into(),
            y: "memorization (vs 0 copies)".into(),
        },
    )? {
        println!("wrote {}", p.display());
    }
    Ok(())
}
