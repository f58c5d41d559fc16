//! `cfmem compare`: the agreement of two experiments on the same corpus,
//! next to what each one's split-half reliability predicts.

use anyhow::Result;
use cfmem_analysis::{compare, Correlation};
use cfmem_sched::Experiment;

use crate::flags::CompareArgs;

pub fn cmd_compare(a: &CompareArgs) -> Result<()> {
    let (ea, eb) = (Experiment::open(&a.a)?, Experiment::open(&a.b)?);
    let cfg = a.config();
    let c = compare(&ea, &eb, &cfg)?;
    println!(
        "{} and {}: {} documents with an estimate in both ({} and {} models; {} and {} documents unmatched); {} {}",
        a.a.display(),
        a.b.display(),
        c.n_docs,
        c.n_models[0],
        c.n_models[1],
        c.n_unmatched[0],
        c.n_unmatched[1],
        cfg.report.metric,
        cfg.report.adjustment
    );
    let show = |name: &str, r: Option<Correlation>| match r {
        Some(r) => println!(
            "  {name:<10} {:.4} [{:.4}, {:.4}] (95%, Fisher z)",
            r.r, r.ci_low, r.ci_high
        ),
        None => println!("  {name:<10} n/a (fewer than 4 documents, or a constant side)"),
    };
    show("Spearman", c.spearman);
    show("Pearson", c.pearson);
    for t in &c.top_k {
        println!(
            "  top {:<6} overlap {:.2} (chance {:.2})",
            t.k, t.overlap, t.chance
        );
    }
    println!("What each experiment predicts for a replication (split-half Spearman–Brown reliability, all its models):");
    for (dir, p) in [(&a.a, &c.split_half[0]), (&a.b, &c.split_half[1])] {
        match p.as_ref().and_then(|p| Some((p.reliability?, p))) {
            Some((r, p)) => println!(
                "  {:<40} {r:.4} [{:.4}, {:.4}]",
                dir.display().to_string(),
                p.reliability_ci_low.unwrap_or(f64::NAN),
                p.reliability_ci_high.unwrap_or(f64::NAN)
            ),
            None => println!("  {:<40} n/a", dir.display().to_string()),
        }
    }
    if let Some(dir) = &a.plots {
        let files = c.write_plots(dir)?;
        println!("wrote {} files to {}", files.len(), dir.display());
    }
    if let Some(path) = &a.json {
        c.write_json(path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
