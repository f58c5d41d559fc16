//! What N models buy: the split-half Spearman of the memorization estimates
//! against the number of models, for each way of spending them.
//!
//! ```text
//! cargo run --release --example efficiency          # about 25 minutes on 2 cores
//! cargo run --release --example efficiency -- 32    # fewer models per option
//! ```
//!
//! On the quickstart corpus (152 documents, tiny preset) it trains, per
//! option, up to 64 models into `target/cfmem-examples/efficiency/<option>/`
//! (rerunning resumes), then computes the split-half Spearman (two disjoint
//! halves of the models, whole blocks per half) at 8, 16, 24, 32, 48 and 64
//! models, with and without the model-effect adjustment. It prints the
//! table and writes `efficiency-models.{png,svg}` and
//! `efficiency-compute.{png,svg}` next to the experiments.
//!
//! Options:
//! - seeding: each model its own initialisation and batch order (per-model)
//!   or one shared by all (common random numbers);
//! - design: complementary halves (`blocks(2)`) or independent coin flips
//!   (`bernoulli(0.5)`);
//! - training length: 8, 16, 32 or 64 epochs (64 at half the models);
//! - adjustment: the plain estimator, or each model's scores minus its mean
//!   residual over its out-of-subset documents (`model-mean`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use cfmem::analysis::plot::{plot, Chart, Labels, Series};
use cfmem::analysis::{Adjustment, DesignKind};
use cfmem::engine::TrainConfig;
use cfmem::sched::{run, Experiment, OnChange, RunConfig, Seeding, Silent};
use cfmem_studies::{split_half, CurvePoint};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHECKPOINTS: [usize; 6] = [8, 16, 24, 32, 48, 64];

struct Option_ {
    slug: &'static str,
    label: &'static str,
    seeding: Seeding,
    design: DesignKind,
    epochs: usize,
    /// Fraction of the model budget (32 epochs get half the models).
    share: f64,
}

fn options() -> Vec<Option_> {
    vec![
        Option_ {
            slug: "per-model-blocks-16",
            label: "per-model seeds, blocks(2), 16 epochs",
            seeding: Seeding::PerModel,
            design: DesignKind::Blocks { b: 2 },
            epochs: 16,
            share: 1.0,
        },
        Option_ {
            slug: "shared-blocks-16",
            label: "shared seeds, blocks(2), 16 epochs",
            seeding: Seeding::Shared,
            design: DesignKind::Blocks { b: 2 },
            epochs: 16,
            share: 1.0,
        },
        Option_ {
            slug: "shared-bernoulli-16",
            label: "shared seeds, bernoulli(0.5), 16 epochs",
            seeding: Seeding::Shared,
            design: DesignKind::Bernoulli { p: 0.5 },
            epochs: 16,
            share: 1.0,
        },
        Option_ {
            slug: "shared-blocks-8",
            label: "shared seeds, blocks(2), 8 epochs",
            seeding: Seeding::Shared,
            design: DesignKind::Blocks { b: 2 },
            epochs: 8,
            share: 1.0,
        },
        Option_ {
            slug: "shared-blocks-32",
            label: "shared seeds, blocks(2), 32 epochs",
            seeding: Seeding::Shared,
            design: DesignKind::Blocks { b: 2 },
            epochs: 32,
            share: 1.0,
        },
        Option_ {
            slug: "per-model-blocks-32",
            label: "per-model seeds, blocks(2), 32 epochs",
            seeding: Seeding::PerModel,
            design: DesignKind::Blocks { b: 2 },
            epochs: 32,
            share: 1.0,
        },
        Option_ {
            slug: "shared-blocks-64",
            label: "shared seeds, blocks(2), 64 epochs",
            seeding: Seeding::Shared,
            design: DesignKind::Blocks { b: 2 },
            epochs: 64,
            share: 0.5,
        },
    ]
}

fn fmt(x: Option<f64>) -> String {
    x.map_or("  n/a".into(), |v| format!("{v:5.3}"))
}

fn main() -> Result<()> {
    let budget: usize = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .context("the argument is the number of models per option")?,
        None => 64,
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let out = PathBuf::from(format!("{root}/target/cfmem-examples/efficiency"));
    std::fs::create_dir_all(&out)?;
    let corpus = cfmem::bundled::quickstart_corpus()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "efficiency on the quickstart corpus ({} documents, tiny preset), up to {budget} models per option, {cores} cores; experiments in {}",
        corpus.len(),
        out.display()
    );
    let mut results: Vec<(String, Adjustment, Vec<CurvePoint>)> = Vec::new();
    for o in options() {
        let n = ((budget as f64 * o.share).round() as usize).max(4);
        let train = TrainConfig {
            epochs: o.epochs,
            ..TrainConfig::default()
        };
        let exp = Experiment::builder(out.join(o.slug))
            .corpus(corpus.clone())
            .train(train)
            .design(o.design.clone())
            .seeding(o.seeding)
            .open(OnChange::Replace)?;
        let t = Instant::now();
        let s = run(
            &exp,
            &RunConfig {
                n_models: n,
                ..RunConfig::default()
            },
            &Silent,
        )?;
        println!(
            "{:<42} {n} models ({} trained now in {:.0} s)",
            o.label,
            s.trained.len(),
            t.elapsed().as_secs_f64()
        );
        for adj in [Adjustment::None, Adjustment::ModelMean] {
            results.push((
                o.label.to_string(),
                adj,
                split_half(&exp, n, adj, &CHECKPOINTS)?,
            ));
        }
    }

    println!("\nSplit-half Spearman of the per-document estimates (per-token accuracy); in brackets the Spearman–Brown reliability of all the models together.");
    println!("Wall time ≈ training seconds summed over the models / {cores} cores.\n");
    print!("{:<42} {:<10}", "option", "adjust");
    for c in CHECKPOINTS {
        print!(" {:>14}", format!("{c} models"));
    }
    println!();
    for (label, adj, pts) in &results {
        print!("{label:<42} {:<10}", adj.to_string());
        for c in CHECKPOINTS {
            match pts.iter().find(|p| p.models == c) {
                Some(p) => print!(" {:>6} [{}]", fmt(p.spearman), fmt(p.reliability)),
                None => print!(" {:>14}", "—"),
            }
        }
        println!();
    }
    println!("\nWall time to each checkpoint (s, on {cores} cores):");
    print!("{:<42}", "option");
    for c in CHECKPOINTS {
        print!(" {:>10}", format!("{c} models"));
    }
    println!();
    for (label, adj, pts) in results.iter().filter(|r| r.1 == Adjustment::None) {
        let _ = adj;
        print!("{label:<42}");
        for c in CHECKPOINTS {
            match pts.iter().find(|p| p.models == c) {
                Some(p) => print!(" {:>10.0}", p.model_seconds / cores as f64),
                None => print!(" {:>10}", "—"),
            }
        }
        println!();
    }
    // Models needed for 0.9 (first checkpoint at or above it).
    println!("\nFirst checkpoint with split-half Spearman ≥ 0.9:");
    for (label, adj, pts) in &results {
        let hit = pts.iter().find(|p| p.spearman.is_some_and(|r| r >= 0.9));
        println!(
            "  {label:<42} {:<10} {}",
            adj.to_string(),
            hit.map_or("not within the budget".to_string(), |p| format!(
                "{} models, ≈ {:.0} s",
                p.models,
                p.model_seconds / cores as f64
            ))
        );
    }

    let series = |by_time: bool| -> Vec<Series> {
        results
            .iter()
            .filter(|(label, adj, _)| {
                *adj == Adjustment::ModelMean || label.starts_with("per-model")
            })
            .map(|(label, adj, pts)| Series {
                label: format!("{label} ({adj})"),
                points: pts
                    .iter()
                    .filter_map(|p| {
                        let x = if by_time {
                            p.model_seconds / cores as f64
                        } else {
                            p.models as f64
                        };
                        Some((x, p.spearman?, None))
                    })
                    .collect(),
            })
            .collect()
    };
    let mut written = Vec::new();
    for (stem, by_time, x) in [
        ("efficiency-models", false, "models"),
        ("efficiency-compute", true, "wall seconds on this machine"),
    ] {
        written.extend(plot(
            &out.join(stem),
            &Chart::Lines {
                series: series(by_time),
                log: false,
                diagonal: false,
            },
            &Labels {
                title: "Split-half Spearman of memorization estimates".into(),
                x: x.into(),
                y: "split-half Spearman".into(),
            },
        )?);
    }
    for p in &written {
        println!("wrote {}", p.display());
    }
    Ok(())
}
