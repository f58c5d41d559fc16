//! Memorization of fine-tuning data, and extraction beside per-token
//! memorization.
//!
//! ```text
//! cargo run --release --example finetune   # ≈ 7 minutes on 2 cores
//! cargo run --release --example finetune -- 32   # 32 epochs instead of 64
//! ```
//! A tiny base model is pretrained on the Jargon File (one epoch); then two
//! experiments train 32 tiny models each (blocks of 2, 64 epochs: the
//! default recipe) on 96
//! Devil's Dictionary entries and 16 random canaries ("The secret code is"
//! and two UUIDs): one from random weights, one from the base model. Same
//! corpus, design, seeds and recipe; only the initial weights differ. Every
//! model continues every document's first 32 bytes greedily and is scored
//! on the next 32 (extraction). Plots: `target/cfmem-examples/finetune/`.

mod common;

use std::time::Instant;

use anyhow::Result;
use cfmem::analysis::MeanCi;
use cfmem::report::plot::{plot, Chart, Labels};
use cfmem_studies::{finetune, Arm, BaseScale, KindSummary, Scale};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    // The base model trains on every core; the experiments' jobs then
    // split theirs (candle's default matrix-product threads).
    cfmem::engine::settle_process(None, |k, v| std::env::set_var(k, v));
    let start = Instant::now();
    let dir = common::out_dir("finetune")?;
    println!(
        "memorization of fine-tuning data; experiments in {}",
        dir.display()
    );
    let epochs = match std::env::args().nth(1) {
        Some(e) => e
            .parse()
            .map_err(|_| anyhow::anyhow!("epochs {e:?}: expected a number"))?,
        None => 64,
    };
    let scale = Scale {
        n_models: 32,
        epochs,
        n_natural: 96,
        n_planted: 16,
    };
    let r = finetune(
        &dir.join("exp"),
        &scale,
        &BaseScale::full(),
        &common::progress(),
    )?;
    let b = &r.base;
    println!(
        "\nbase model: {} steps, {} tokens, final loss {:.3}, {:.0} s",
        b.steps,
        b.tokens,
        b.final_loss.unwrap_or(f64::NAN),
        b.seconds
    );
    println!("\nmeans over documents [95% CI, the design's error; extraction rates Clopper-Pearson on their effective size]; mem = in-models − out-models, plain estimator");
    println!(
        "{:<13} {:<9} {:>28} {:>28} {:>28} {:>28} {:>28}",
        "init",
        "kind",
        "mem (per-token accuracy)",
        "accuracy out",
        "mem (extraction)",
        "extractable | in",
        "mem (matched tokens)"
    );
    for arm in [&r.scratch, &r.pretrained] {
        for (kind, k) in [("natural", &arm.natural), ("canaries", &arm.canaries)] {
            row(arm.name, kind, k);
        }
    }
    println!("\npretrained − scratch, per-token accuracy memorization, mean over documents, model k of one arm paired with model k of the other:");
    println!("  natural text  {}", common::mean_ci(&r.natural_gain));
    println!("  canaries      {}", common::mean_ci(&r.canary_gain));
    println!("\nper-token memorization against extraction (documents scored; present = a discovery at a 5% false discovery rate, Benjamini-Hochberg):");
    for arm in [&r.scratch, &r.pretrained] {
        let a = arm.agreement;
        println!(
            "  {:<13} both {:>3}   memorized, not more extractable {:>3}   more extractable, not memorized {:>3}   neither {:>3}   too short {}",
            arm.name, a.both, a.first_only, a.second_only, a.neither, arm.n_too_short
        );
    }
    for arm in [&r.scratch, &r.pretrained] {
        scatter(&dir, arm)?;
    }
    println!(
        "\nwall time {:.0} s (base model, two experiments, analyses)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn cell(m: &MeanCi) -> String {
    format!("{:.3} [{:.3}, {:.3}]", m.mean, m.ci_low, m.ci_high)
}

fn row(init: &str, kind: &str, k: &KindSummary) {
    println!(
        "{:<13} {:<9} {:>28} {:>28} {:>28} {:>28} {:>28}",
        init,
        kind,
        cell(&k.accuracy),
        cell(&k.accuracy_out),
        cell(&k.extraction),
        cell(&k.extractable_in),
        cell(&k.extraction_length)
    );
}

fn scatter(dir: &std::path::Path, arm: &Arm) -> Result<()> {
    let group = |canary: bool| -> Vec<(f64, f64)> {
        arm.points
            .iter()
            .filter(|p| p.0 == canary)
            .map(|p| (p.1, p.2))
            .collect()
    };
    let groups = vec![
        ("Devil's Dictionary entries".to_string(), group(false)),
        ("random canaries".to_string(), group(true)),
    ];
    let stem = dir.join(format!("extraction-vs-mem-{}", arm.name.replace(' ', "-")));
    for p in plot(
        &stem,
        &Chart::Scatter { groups },
        &Labels {
            title: format!("Extraction against per-token memorization ({})", arm.name),
            x: "memorization (per-token accuracy)".into(),
            y: "counterfactual extraction (32 → 32)".into(),
        },
    )? {
        println!("wrote {}", p.display());
    }
    Ok(())
}
