//! What the compute buys: the split-half Spearman of the memorization
//! estimates on the bundled (quickstart) corpus against the number of
//! models, the model count at which it crosses 0.9, and the wall time to
//! get there, with the default settings (shared seeds, blocks of 2,
//! model-mean adjustment, 64 epochs).
//!
//! ```text
//! cargo run --release --example convergence   # ≈ 8 minutes on 2 cores
//! ```
//! 48 models (64 epochs, the default), with the curve at 8, 16, 24, 32 and
//! 48 models (`cfmem run --until-reliability 0.9` instead stops at the
//! first 8-model step that reaches 0.9). Plot:
//! `target/cfmem-examples/convergence/`.

mod common;

use anyhow::Result;
use cfmem::report::plot::{plot, Chart, Labels, Series};
use cfmem_studies::{convergence, Scale};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    // One matrix-product thread per job (one job per core), set before
    // any thread starts.
    cfmem::engine::settle_process(Some(1), |k, v| std::env::set_var(k, v));
    let dir = common::out_dir("convergence")?;
    let corpus = cfmem::bundled::quickstart_corpus()?;
    println!(
        "convergence on the quickstart corpus ({} documents); experiment in {}",
        corpus.len(),
        dir.display()
    );
    let scale = Scale {
        n_models: 48,
        epochs: cfmem::engine::TrainConfig::default().epochs,
        ..Scale::full()
    };
    let r = convergence(&dir.join("exp"), corpus, &scale, &common::progress())?;
    println!(
        "\nmodels  split-half Spearman [95% CI]  reliability (Spearman–Brown)  wall s on {} cores",
        r.cores
    );
    let f = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    for p in &r.curve {
        println!(
            "{:>6}  {:>28}  {:>28}  {:>17.0}",
            p.models,
            format!("{} [{}, {}]", f(p.spearman), f(p.ci_low), f(p.ci_high)),
            f(p.reliability),
            p.model_seconds / r.cores as f64
        );
    }
    match r.crossing {
        Some(c) => println!(
            "split-half Spearman ≥ 0.9 at {} models: ≈ {:.0} s of training on {} cores",
            c.models, c.wall_seconds, r.cores
        ),
        None => println!(
            "split-half Spearman stayed below 0.9 within {} models",
            scale.n_models
        ),
    }
    let series = vec![Series {
        label: "split-half Spearman (95% CI, half-width)".into(),
        points: r
            .curve
            .iter()
            .filter_map(|p| {
                let half = p.ci_low.zip(p.ci_high).map(|(l, h)| (h - l) / 2.0);
                Some((p.models as f64, p.spearman?, half))
            })
            .collect(),
    }];
    for p in plot(
        &dir.join("split-half-vs-models"),
        &Chart::Lines {
            series,
            log: false,
            diagonal: false,
        },
        &Labels {
            title: "Split-half Spearman of memorization estimates".into(),
            x: "models".into(),
            y: "split-half Spearman".into(),
        },
    )? {
        println!("wrote {}", p.display());
    }
    Ok(())
}
