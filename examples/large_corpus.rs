//! Reliability against compute on a corpus of realistic size: 10,000
//! WordNet glosses (`datasets/wordnet.jsonl`, ≈ 0.9 M byte tokens),
//! complementary halves, shared seeds: the tiny preset at 4, 8 and 16
//! epochs (16 models each) and 64 epochs, the default (8 models); the small
//! preset (d 128, ctx 128, ≈ 4× the compute per token) at 16 epochs (8
//! models).
//!
//! ```text
//! cargo run --release --example large_corpus          # about 3 hours on 2 cores
//! cargo run --release --example large_corpus -- 8     # 8 models per setting (4 for the 8-model ones)
//! ```
//! Experiments go to `target/cfmem-examples/large_corpus/` (rerunning
//! resumes). For each setting it prints the training tokens per model, the
//! model-seconds spent, the split-half Spearman of the (model-mean
//! adjusted) estimates with its 95 % bootstrap interval and the
//! Spearman–Brown reliability (what a replication would give: within 0.02
//! of measured replications on the quickstart corpus, README "Statistical
//! efficiency"), and the signal: the variance of the estimates over
//! documents minus their mean squared standard error.

use anyhow::{Context, Result};
use cfmem::analysis::{report, Adjustment, MeanCi, ReportConfig};
use cfmem::engine::{Corpus, ModelConfig, TrainConfig};
use cfmem::sched::{run, Experiment, OnChange, PrintProgress, RunConfig};
use cfmem_studies::split_half;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn train(corpus: &Corpus, preset: &str, epochs: usize, seed: u64, n: usize) -> Result<Experiment> {
    let dir = format!(
        "{}/target/cfmem-examples/large_corpus/{preset}-e{epochs}-seed{seed}",
        env!("CARGO_MANIFEST_DIR")
    );
    let model = ModelConfig::preset(preset).context("a preset name")?;
    let exp = Experiment::builder(dir)
        .corpus(corpus.clone())
        .model(model)
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
        "{preset} {epochs:>2} epochs, seed {seed}: {n} models ({} trained now in {:.0} s)",
        s.trained.len(),
        s.seconds
    );
    Ok(exp)
}

fn main() -> Result<()> {
    // One matrix-product thread per job (one job per core), set before
    // any thread starts.
    cfmem::engine::settle_process(Some(1), |k, v| std::env::set_var(k, v));
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
    println!("\npreset  epochs  models  tokens/model  model-s  mean mem  signal var  split-half Spearman [95% CI] at 8 and all models  reliability");
    for (preset, epochs, models) in [
        ("tiny", 4, n),
        ("tiny", 8, n),
        ("tiny", 16, n),
        ("tiny", 64, n / 2),
        ("small", 16, n / 2),
    ] {
        let exp = train(&corpus, preset, epochs, 0, models)?;
        let per_model = exp.read(0)?.train.tokens;
        let seconds: f64 = (0..models)
            .filter_map(|i| exp.read_meta(i))
            .map(|m| m.seconds)
            .sum();
        let pts = split_half(&exp, models, Adjustment::ModelMean, &[8])?;
        let rep = report(&exp, &ReportConfig::default())?;
        let mems: Vec<f64> = rep.docs.iter().filter_map(|d| d.estimate.mem).collect();
        let se2: Vec<f64> = rep
            .docs
            .iter()
            .filter_map(|d| d.estimate.se.map(|s| s * s))
            .collect();
        let m = MeanCi::of(&mems, 0.95);
        let var = mems.iter().map(|x| (x - m.mean).powi(2)).sum::<f64>() / mems.len() as f64;
        let noise = se2.iter().sum::<f64>() / se2.len().max(1) as f64;
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
            "{preset:>6}  {epochs:>6}  {models:>6}  {per_model:>12}  {seconds:>7.0}  {:>8.4}  {:>10.6}  {}  {}",
            m.mean,
            var - noise,
            cells.join("  "),
            f(pts.last().and_then(|p| p.reliability))
        );
    }
    Ok(())
}
