//! What N models buy: the split-half Spearman of the memorization estimates
//! against the number of models, for each way of spending them, and how
//! well a replication with another seed agrees, for each seeding option.
//!
//! ```text
//! cargo run --release --example efficiency          # about 35 minutes on 2 cores
//! cargo run --release --example efficiency -- 32    # fewer models per option
//! ```
//!
//! On the quickstart corpus (152 documents, tiny preset) it trains, per
//! option, up to 64 models into `target/cfmem-examples/efficiency/<option>/`
//! (rerunning resumes), then computes the split-half Spearman (the mean
//! over random partitions of the models into two halves of whole blocks,
//! with a 95 % bootstrap interval over documents) at 8, 16, 24, 32, 48 and
//! 64 models, with and without the model-effect adjustment. It prints the
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
//!
//! Replication: at the default recipe (64 epochs, blocks of 2), for shared
//! and per-model seeds, a second experiment with another seed (`--seed 1`:
//! another design, and another initialisation and batch order) is trained,
//! and the two experiments' estimates are compared (`cfmem compare`) at 8,
//! 16 and 32 models, next to the reliability the first one predicts for
//! itself (split-half Spearman–Brown).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use cfmem::analysis::{compare, Adjustment, CompareConfig, DesignKind, FirstModels};
use cfmem::engine::{Corpus, TrainConfig};
use cfmem::report::plot::{plot, Chart, Labels, Series};
use cfmem::sched::{run, Experiment, OnChange, RunConfig, Seeding, Silent};
use cfmem_studies::{split_half, CurvePoint};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHECKPOINTS: [usize; 6] = [8, 16, 24, 32, 48, 64];

struct Setting {
    slug: &'static str,
    label: &'static str,
    seeding: Seeding,
    design: DesignKind,
    epochs: usize,
    /// Fraction of the model budget (64 epochs get half the models).
    share: f64,
}

const BLOCKS: DesignKind = DesignKind::Blocks { b: 2 };

fn settings() -> Vec<Setting> {
    let s = |slug, label, seeding, design, epochs, share| Setting {
        slug,
        label,
        seeding,
        design,
        epochs,
        share,
    };
    vec![
        s(
            "per-model-blocks-16",
            "per-model seeds, blocks(2), 16 epochs",
            Seeding::PerModel,
            BLOCKS,
            16,
            1.0,
        ),
        s(
            "shared-blocks-16",
            "shared seeds, blocks(2), 16 epochs",
            Seeding::Shared,
            BLOCKS,
            16,
            1.0,
        ),
        s(
            "shared-bernoulli-16",
            "shared seeds, bernoulli(0.5), 16 epochs",
            Seeding::Shared,
            DesignKind::Bernoulli { p: 0.5 },
            16,
            1.0,
        ),
        s(
            "shared-blocks-8",
            "shared seeds, blocks(2), 8 epochs",
            Seeding::Shared,
            BLOCKS,
            8,
            1.0,
        ),
        s(
            "shared-blocks-32",
            "shared seeds, blocks(2), 32 epochs",
            Seeding::Shared,
            BLOCKS,
            32,
            1.0,
        ),
        s(
            "per-model-blocks-32",
            "per-model seeds, blocks(2), 32 epochs",
            Seeding::PerModel,
            BLOCKS,
            32,
            1.0,
        ),
        s(
            "shared-blocks-64",
            "shared seeds, blocks(2), 64 epochs",
            Seeding::Shared,
            BLOCKS,
            64,
            0.5,
        ),
        s(
            "per-model-blocks-64",
            "per-model seeds, blocks(2), 64 epochs",
            Seeding::PerModel,
            BLOCKS,
            64,
            0.5,
        ),
    ]
}

/// Train (or resume) `n` models of `s` with `seed` under `out`.
fn train(
    out: &std::path::Path,
    corpus: &Corpus,
    s: &Setting,
    seed: u64,
    n: usize,
) -> Result<Experiment> {
    let slug = if seed == 0 {
        s.slug.to_string()
    } else {
        format!("{}-seed{seed}", s.slug)
    };
    let exp = Experiment::builder(out.join(slug))
        .corpus(corpus.clone())
        .train(TrainConfig {
            epochs: s.epochs,
            ..TrainConfig::default()
        })
        .design(s.design.clone())
        .seeding(s.seeding)
        .seed(seed)
        .open(OnChange::Replace)?;
    let t = Instant::now();
    let r = run(
        &exp,
        &RunConfig {
            n_models: n,
            ..RunConfig::default()
        },
        &Silent,
    )?;
    println!(
        "{:<42} seed {seed}: {n} models ({} trained now in {:.0} s)",
        s.label,
        r.trained.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(exp)
}

fn fmt(x: Option<f64>) -> String {
    x.map_or("  n/a".into(), |v| format!("{v:5.3}"))
}

fn with_ci(p: &CurvePoint) -> String {
    format!(
        "{} [{}, {}]",
        fmt(p.spearman),
        fmt(p.ci_low),
        fmt(p.ci_high)
    )
}

fn main() -> Result<()> {
    // One matrix-product thread per job (one job per core), set before
    // any thread starts.
    cfmem::engine::settle_process(Some(1), |k, v| std::env::set_var(k, v));
    let budget: usize = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .context("the argument is the number of models per option")?,
        None => 64,
    };
    let out = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/cfmem-examples/efficiency"
    ));
    std::fs::create_dir_all(&out)?;
    let corpus = cfmem::bundled::quickstart_corpus()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "efficiency on the quickstart corpus ({} documents, tiny preset), up to {budget} models per option, {cores} cores; experiments in {}",
        corpus.len(),
        out.display()
    );
    let mut results: Vec<(String, Adjustment, Vec<CurvePoint>)> = Vec::new();
    let mut replication = Vec::new();
    for s in settings() {
        let n = ((budget as f64 * s.share).round() as usize).max(4);
        let exp = train(&out, &corpus, &s, 0, n)?;
        for adj in [Adjustment::None, Adjustment::ModelMean] {
            results.push((
                s.label.to_string(),
                adj,
                split_half(&exp, n, adj, &CHECKPOINTS)?,
            ));
        }
        if s.epochs == 64 {
            let again = train(&out, &corpus, &s, 1, n)?;
            replication.push((s.label, exp, again, n));
        }
    }

    println!("\nSplit-half Spearman of the per-document estimates (per-token accuracy), mean over random partitions of the models [95% bootstrap interval over documents].");
    println!("Two options differ at a model count only where their intervals do not overlap.\n");
    print!("{:<42} {:<10}", "option", "adjust");
    for c in CHECKPOINTS {
        print!(" {:>21}", format!("{c} models"));
    }
    println!();
    for (label, adj, pts) in &results {
        print!("{label:<42} {:<10}", adj.to_string());
        for c in CHECKPOINTS {
            match pts.iter().find(|p| p.models == c) {
                Some(p) => print!(" {:>21}", with_ci(p)),
                None => print!(" {:>21}", "—"),
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
    for (label, _, pts) in results.iter().filter(|r| r.1 == Adjustment::None) {
        print!("{label:<42}");
        for c in CHECKPOINTS {
            match pts.iter().find(|p| p.models == c) {
                Some(p) => print!(" {:>10.0}", p.model_seconds / cores as f64),
                None => print!(" {:>10}", "—"),
            }
        }
        println!();
    }
    println!("\nFirst checkpoint whose interval lies above 0.9 (split-half Spearman):");
    for (label, adj, pts) in &results {
        let hit = pts.iter().find(|p| p.ci_low.is_some_and(|r| r >= 0.9));
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

    println!("\nReplication (model-mean adjusted, per-token accuracy): Spearman between two experiments with seeds 0 and 1 [95% Fisher interval],");
    println!("next to the Spearman–Brown reliability seed 0's experiment predicts for itself [95% bootstrap interval].");
    for (label, a, b, n) in &replication {
        for m in [8, 16, 32].into_iter().filter(|&m| m <= *n) {
            let c = compare(
                &FirstModels {
                    src: a,
                    n_models: m,
                },
                &FirstModels {
                    src: b,
                    n_models: m,
                },
                &CompareConfig::default(),
            )?;
            let rep = c.spearman.map_or("n/a".into(), |s| {
                format!("{:.3} [{:.3}, {:.3}]", s.r, s.ci_low, s.ci_high)
            });
            let pred = c.split_half[0].as_ref().map_or("n/a".into(), |p| {
                format!(
                    "{} [{}, {}]",
                    fmt(p.reliability),
                    fmt(p.reliability_ci_low),
                    fmt(p.reliability_ci_high)
                )
            });
            println!("  {label:<42} {m:>3} models: replication {rep}; predicted {pred}");
        }
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
