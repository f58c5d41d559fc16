//! Reliability against compute on a corpus of realistic size: 10,000
//! WordNet glosses (`datasets/wordnet.jsonl`, ≈ 0.9 M byte tokens), the tiny
//! preset, complementary halves, shared seeds, at 4, 8 and 16 epochs; and a
//! replication with another seed at 8 epochs.
//!
//! ```text
//! cargo run --release --example large_corpus          # 16 models per setting, about 1 hour on 2 cores
//! cargo run --release --example large_corpus -- 8     # 8 models per setting
//! ```
//! Experiments go to `target/cfmem-examples/large_corpus/` (rerunning
//! resumes). For each setting it prints the training tokens per model, the
//! model-seconds spent, and the split-half Spearman of the (model-mean
//! adjusted) estimates at 8 and 16 models with its 95 % bootstrap interval;
//! then the replication's Spearman against the predicted reliability.

use anyhow::{Context, Result};
use cfmem::analysis::{compare, Adjustment, CompareConfig, FirstModels};
use cfmem::engine::{Corpus, TrainConfig};
use cfmem::sched::{run, Experiment, OnChange, PrintProgress, RunConfig};
use cfmem_studies::split_half;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn train(corpus: &Corpus, epochs: usize, seed: u64, n: usize) -> Result<Experiment> {
    let dir = format!(
        "{}/target/cfmem-examples/large_corpus/tiny-e{epochs}-seed{seed}",
        env!("CARGO_MANIFEST_DIR")
    );
    let exp = Experiment::builder(dir)
        .corpus(corpus.clone())
        .train(TrainConfig {
            epochs,
            ..TrainConfig::default()
        })
        .seed(seed)
        .open(OnChange::Replace)?;
    let s = run(
        &exp,
        &RunConfig {
            n_models: n,
            ..RunConfig::default()
        },
        &PrintProgress::every(4),
    )?;
    println!(
        "{epochs:>2} epochs, seed {seed}: {n} models ({} trained now in {:.0} s)",
        s.trained.len(),
        s.seconds
    );
    Ok(exp)
}

fn main() -> Result<()> {
    let n: usize = match std::env::args().nth(1) {
        Some(s) => s.parse().context("the argument is the number of models")?,
        None => 16,
    };
    let corpus = cfmem::bundled::wordnet()?;
    let tokens: usize = corpus.documents().iter().map(|d| d.text.len() + 1).sum();
    println!(
        "{} WordNet glosses, {tokens} byte tokens (predicted, with EOS); {n} models per setting",
        corpus.len()
    );
    let f = |x: Option<f64>| x.map_or("  n/a".into(), |v| format!("{v:.3}"));
    let mut rows = Vec::new();
    for epochs in [4, 8, 16] {
        let exp = train(&corpus, epochs, 0, n)?;
        let per_model = exp.read(0)?.train.tokens;
        let seconds: f64 = (0..n)
            .filter_map(|i| exp.read_meta(i))
            .map(|m| m.seconds)
            .sum();
        let pts = split_half(&exp, n, Adjustment::ModelMean, &[8, 16])?;
        rows.push((epochs, per_model, seconds, pts));
    }
    println!("\nepochs  tokens/model  model-s ({n} models)  split-half Spearman [95% CI] at 8 and {n} models  reliability at {n}");
    for (epochs, per_model, seconds, pts) in &rows {
        let cells: Vec<String> = pts
            .iter()
            .map(|p| {
                format!(
                    "{:>2}: {} [{}, {}]",
                    p.models,
                    f(p.spearman),
                    f(p.ci_low),
                    f(p.ci_high)
                )
            })
            .collect();
        println!(
            "{epochs:>6}  {per_model:>12}  {seconds:>19.0}  {}  {}",
            cells.join("  "),
            f(pts.last().and_then(|p| p.reliability))
        );
    }
    let a = train(&corpus, 8, 0, n)?;
    let b = train(&corpus, 8, 1, n)?;
    println!("\nReplication at 8 epochs (seed 0 vs seed 1, Spearman [95% Fisher]; predicted: seed 0's split-half Spearman–Brown):");
    for m in [8, n].into_iter().filter(|&m| m <= n) {
        let c = compare(
            &FirstModels {
                src: &a,
                n_models: m,
            },
            &FirstModels {
                src: &b,
                n_models: m,
            },
            &CompareConfig::default(),
        )?;
        let s = c.spearman.context("no replication correlation")?;
        let p = c.split_half[0].as_ref();
        println!(
            "  {m:>3} models: replication {:.3} [{:.3}, {:.3}]; predicted {} [{}, {}]",
            s.r,
            s.ci_low,
            s.ci_high,
            f(p.and_then(|p| p.reliability)),
            f(p.and_then(|p| p.reliability_ci_low)),
            f(p.and_then(|p| p.reliability_ci_high))
        );
    }
    Ok(())
}
