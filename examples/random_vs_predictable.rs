//! Prediction: documents of random identifiers (UUIDs) have higher
//! counterfactual memorization than documents of one word repeated
//! ("the the the …"), whose memorization is bounded by how easy they are
//! for a model that never saw them.
//!
//! ```text
//! cargo run --release --example random_vs_predictable   # ≈ 4 minutes on 2 cores
//! ```
//! 32 tiny models (blocks of 2, shared seeds, 64 epochs) on 64 dictionary
//! entries + 16 documents of two random UUIDs + 16 of "the" repeated 10–25
//! times. Plot: `target/cfmem-examples/random_vs_predictable/`.

mod common;

use anyhow::Result;
use cfmem::report::plot::{plot, Chart, Labels};
use cfmem_studies::{random_vs_predictable, Scale};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    // One matrix-product thread per job (one job per core), set before
    // any thread starts.
    cfmem::engine::settle_process(Some(1), |k, v| std::env::set_var(k, v));
    let dir = common::out_dir("random_vs_predictable")?;
    println!(
        "random identifiers vs one word repeated; experiment in {}",
        dir.display()
    );
    let r = random_vs_predictable(&dir.join("exp"), &Scale::full(), &common::progress())?;
    println!(
        "\nmemorization (per-token accuracy, model-mean adjusted), mean over documents [95% CI]:"
    );
    println!(
        "  {:<22} {:>3}  {}",
        "random UUIDs",
        r.random.n,
        common::mean_ci(&r.random)
    );
    println!(
        "  {:<22} {:>3}  {}",
        "one word repeated",
        r.repeated.n,
        common::mean_ci(&r.repeated)
    );
    println!(
        "  {:<22} {:>3}  {}",
        "dictionary entries",
        r.natural.n,
        common::mean_ci(&r.natural)
    );
    if let Some(w) = &r.difference.welch {
        println!("  random − repeated: {}", common::diff_ci(w));
    }
    println!(
        "prediction (random > repeated): {}",
        common::verdict(r.difference.holds)
    );
    let mut groups: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for p in &r.points {
        match groups.iter_mut().find(|g| g.0 == p.kind) {
            Some(g) => g.1.push((p.out_mean, p.mem)),
            None => groups.push((p.kind.clone(), vec![(p.out_mean, p.mem)])),
        }
    }
    for p in plot(
        &dir.join("mem-vs-difficulty"),
        &Chart::Scatter { groups },
        &Labels {
            title: "Memorization against accuracy without the document".into(),
            x: "accuracy of models that did not train on it".into(),
            y: "memorization".into(),
        },
    )? {
        println!("wrote {}", p.display());
    }
    Ok(())
}
