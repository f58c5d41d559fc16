//! Prediction: a document with many near-duplicates in the corpus has low
//! individual counterfactual memorization (its duplicates stand in for it),
//! while removing the whole cluster shows high memorization for the group:
//! something is memorized but not localized in one document. A unique
//! document of the same kind is the comparison.
//!
//! ```text
//! cargo run --release --example near_duplicates   # ≈ 6 minutes on 2 cores
//! ```
//! 64 dictionary entries, a cluster of 16 near-duplicates (one secret code,
//! each copy with one hex digit changed, labelled by the corpus's `group`
//! field) and 16 unique secret codes; two experiments of 32 tiny models
//! (64 epochs): documents as units, and the group as one unit. Plot:
//! `target/cfmem-examples/near_duplicates/`.

mod common;

use anyhow::Result;
use cfmem::report::plot::{plot, Chart, Labels, Series};
use cfmem_studies::{near_duplicates, Scale};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    // One matrix-product thread per job (one job per core), set before
    // any thread starts.
    cfmem::engine::settle_process(Some(1), |k, v| std::env::set_var(k, v));
    let dir = common::out_dir("near_duplicates")?;
    println!(
        "near-duplicate cluster vs unique documents; experiments in {}",
        dir.display()
    );
    let r = near_duplicates(&dir, &Scale::full(), &common::progress())?;
    let c = &r.cluster;
    println!("\nmemorization (per-token accuracy), mean [95% CI]:");
    println!(
        "  cluster members, each removed alone   {:>3} docs  {}",
        r.members.n,
        common::mean_ci(&r.members)
    );
    println!(
        "  unique documents of the same kind      {:>3} docs  {}",
        r.unique.n,
        common::mean_ci(&r.unique)
    );
    println!(
        "  the cluster removed as one unit        {:>3} docs  {}",
        r.members.n,
        common::ci(
            c.mem.unwrap_or(f64::NAN),
            (c.ci_low.unwrap_or(f64::NAN), c.ci_high.unwrap_or(f64::NAN))
        )
    );
    if let Some(w) = &r.unique_vs_member.welch {
        println!("  unique − member: {}", common::diff_ci(w));
    }
    if let Some(w) = &r.cluster_vs_member.welch {
        println!(
            "  cluster (as a unit) − member (alone): {}",
            common::diff_ci(w)
        );
    }
    println!(
        "prediction (a member alone is memorized less than a unique document): {}",
        common::verdict(r.unique_vs_member.holds)
    );
    println!(
        "prediction (the cluster as a unit is memorized more than a member alone): {}",
        common::verdict(r.cluster_vs_member.holds)
    );
    let bar = |label: &str, x: f64, m: f64, half: f64| Series {
        label: label.into(),
        points: vec![(x, m, Some(half))],
    };
    let series = vec![
        bar(
            "member, removed alone",
            3.0,
            r.members.mean,
            (r.members.ci_high - r.members.ci_low) / 2.0,
        ),
        bar(
            "unique document",
            2.0,
            r.unique.mean,
            (r.unique.ci_high - r.unique.ci_low) / 2.0,
        ),
        bar(
            "cluster, removed as a unit",
            1.0,
            c.mem.unwrap_or(f64::NAN),
            (c.ci_high.unwrap_or(0.0) - c.ci_low.unwrap_or(0.0)) / 2.0,
        ),
    ];
    for p in plot(
        &dir.join("memorization-by-unit"),
        &Chart::Lines {
            series,
            log: false,
            diagonal: false,
        },
        &Labels {
            title: "Near-duplicates: memorized, but not in one document".into(),
            x: "1 whole cluster · 2 unique document · 3 one member alone".into(),
            y: "memorization (95% CI)".into(),
        },
    )? {
        println!("wrote {}", p.display());
    }
    Ok(())
}
