//! Memorization of fine-tuning data across model families and methods:
//! GPT-2, GPT-NeoX (Pythia's settings) and Llama-style bases, fine-tuned
//! in full and with LoRA.
//!
//! ```text
//! cargo run --release --example model_families          # ≈ 11 minutes on 2 cores
//! cargo run --release --example model_families -- 16 32  # 16 models, 32 epochs
//! ```
//! For each family a base with the tiny preset's widths (d 64, 2 blocks)
//! is pretrained on the Jargon File (one epoch); then two experiments
//! fine-tune it on the quickstart corpus (120 Devil's Dictionary entries,
//! 16 random canaries, 16 controls of a repeated word): every parameter,
//! or LoRA adapters of rank 8 (α 16) on every attention and MLP
//! projection, the base held once per ensemble. Same corpus, design, seeds and recipe throughout;
//! only the family and the method differ.

mod common;

use std::time::Instant;

use anyhow::Result;
use cfmem::analysis::MeanCi;
use cfmem::engine::Lora;
use cfmem_studies::{model_families, BaseScale, Scale};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    cfmem::engine::settle_process(None, |k, v| std::env::set_var(k, v));
    let start = Instant::now();
    let dir = common::out_dir("model_families")?;
    println!(
        "memorization across model families and fine-tuning methods; experiments in {}",
        dir.display()
    );
    let arg = |i: usize, default: usize| -> Result<usize> {
        match std::env::args().nth(i) {
            Some(v) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("argument {i} {v:?}: expected a number")),
            None => Ok(default),
        }
    };
    // The corpus is the quickstart's; the scale gives models and epochs.
    let scale = Scale {
        n_models: arg(1, 16)?,
        epochs: arg(2, 32)?,
        ..Scale::full()
    };
    let lora = Lora::parse("8:16")?;
    let corpus = cfmem::bundled::quickstart_corpus()?;
    let r = model_families(
        &dir.join("exp"),
        &corpus,
        &scale,
        &BaseScale::full(),
        &lora,
        &common::progress(),
    )?;
    println!("\nbase models (tiny widths, the Jargon File, one epoch):");
    for (family, b) in &r.bases {
        println!(
            "  {family:<9} {} steps, {} tokens, final loss {:.3}, {:.0} s",
            b.steps,
            b.tokens,
            b.final_loss.unwrap_or(f64::NAN),
            b.seconds
        );
    }
    println!(
        "\n{} models per experiment, {} epochs; per-token accuracy memorization (in-models − out-models, plain estimator), mean over documents [95% CI, the design's error]",
        scale.n_models, scale.epochs
    );
    println!(
        "{:<9} {:<10} {:>8} {:>22} {:>22} {:>22} {:>22} {:>10}",
        "family",
        "method",
        "trained",
        "mem (natural)",
        "mem (canaries)",
        "mem (controls)",
        "acc. out (natural)",
        "s / model"
    );
    for a in &r.arms {
        println!(
            "{:<9} {:<10} {:>8} {:>22} {:>22} {:>22} {:>22} {:>10}",
            a.family,
            a.method,
            a.trained_params,
            cell(&a.natural),
            cell(&a.canaries),
            a.controls.as_ref().map_or("-".into(), cell),
            cell(&a.natural_out),
            a.seconds_per_model
                .map_or("resumed".into(), |s| format!("{s:.1}"))
        );
    }
    println!(
        "\nLoRA − full, per document, model k of one experiment paired with model k of the other:"
    );
    for (family, natural, canaries) in &r.lora_minus_full {
        println!(
            "  {family:<9} natural {}   canaries {}",
            common::mean_ci(natural),
            common::mean_ci(canaries)
        );
    }
    println!(
        "\nwall time {:.0} s (three bases, six experiments, analyses)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn cell(m: &MeanCi) -> String {
    format!("{:.3} [{:.3}, {:.3}]", m.mean, m.ci_low, m.ci_high)
}
