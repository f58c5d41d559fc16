//! Scale: what each stage costs as the corpus grows, and whether it grows
//! linearly.
//!
//! ```text
//! cargo bench --bench scale                                   # 1k, 10k, 100k documents; analysis at 1M (≈ 10 min on 2 cores)
//! CFMEM_SCALE_SIZES=1000,10000 CFMEM_SCALE_ANALYSIS=100000 cargo bench --bench scale   # smaller
//! ```
//! Each size runs in a child process (so its peak memory is its own) on a
//! synthetic corpus (`cfmem::synthetic::corpus`: pseudo-words, 100 bytes a
//! document on average) in an experiment directory, and prints one line:
//!
//! ```text
//! scale docs=N tokens=T load_tokenize_s=… train_tokens_per_s=… train_peak_fraction=… eval_tokens_per_s=…
//!       record_bytes=… bytes_per_doc=… report_models=8 report_s=… peak_mib=…
//! ```
//! - load + tokenize: read the JSONL, validate, create the experiment and
//!   build its `tokens.bin` (what every later run reads instead);
//! - training: one tiny model, one epoch over its half of the corpus, one
//!   thread (tokens/s, and the fraction of the 1-thread matrix-product peak
//!   measured at the start of the run);
//! - evaluation: that model on every document;
//! - records: 8 models' records stored, their size, and a report (the
//!   default, model-mean adjusted: two passes over the records);
//! - the analysis-only size: 16 synthetic records and their report, no
//!   training.
//!
//! The last lines fit `time ∝ documents^b` over the sizes for each stage.

mod common;

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};
use cfmem::analysis::{report, ReportConfig};
use cfmem::engine::{
    evaluate, Corpus, DocEval, Ensemble, LoadConfig, ModelConfig, ModelJob, Subset,
    TokenizedCorpus, TrainConfig,
};
use cfmem::hash::SplitMix64;
use cfmem::sched::{Experiment, OnChange, Record};
use common::{peak_gflops, peak_mib};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REPORT_MODELS: usize = 8;

fn sizes(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Write `corpus` as JSONL into `dir` and return the path.
fn write_jsonl(dir: &std::path::Path, corpus: &Corpus) -> Result<std::path::PathBuf> {
    let path = dir.join("corpus.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    for d in corpus.documents() {
        serde_json::to_writer(&mut f, d)?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    Ok(path)
}

/// Store `REPORT_MODELS` records with the design's memberships and
/// per-model perturbed scores around `evals`; returns the first record's
/// size in bytes.
fn store_records(exp: &Experiment, evals: &[DocEval], n: usize) -> Result<u64> {
    let m = exp.manifest();
    let design = m.design().checked()?;
    for i in 0..n {
        let copies = design.row(i, exp.corpus().len());
        let mut rng = SplitMix64::new(i as u64);
        let docs: Vec<DocEval> = evals
            .iter()
            .zip(&copies)
            .map(|(e, &c)| {
                let bump = u32::from(c > 0) * (e.n_tokens / 4) + rng.below(3) as u32;
                DocEval {
                    n_correct: (e.n_correct + bump).min(e.n_tokens),
                    ..*e
                }
            })
            .collect();
        let stats = cfmem::engine::TrainStats {
            steps: 1,
            tokens: 1,
            final_loss: Some(1.0),
        };
        exp.store(&Record::new(i, m.hash(), copies, stats, &docs))?;
    }
    Ok(std::fs::metadata(exp.record_path(0))?.len())
}

/// One size, in this process: train, evaluate, store, report.
fn child(n_docs: usize, peak1: f64) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let corpus = cfmem::synthetic::corpus(n_docs, 7)?;
    let path = write_jsonl(tmp.path(), &corpus)?;
    drop(corpus);
    let model = ModelConfig::tiny();
    let t = Instant::now();
    let corpus = Corpus::load(&path, &LoadConfig::default())?;
    let exp = Experiment::builder(tmp.path().join("exp"))
        .corpus(corpus)
        .open(OnChange::Refuse)?;
    let data = TokenizedCorpus::from_table(exp.token_table()?, model.ctx)?;
    let load_s = t.elapsed().as_secs_f64();
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let copies = exp.manifest().design().checked()?.row(0, n_docs);
    let job = ModelJob {
        model: 0,
        subset: Subset::from_copies(&copies),
        init_seed: 1,
        data_seed: 2,
    };
    let train = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    let t = Instant::now();
    let trained = Ensemble::new(&model, &train, &data, std::slice::from_ref(&job)).train(None)?;
    let train_s = t.elapsed().as_secs_f64();
    let train_tps = trained.stats[0].tokens as f64 / train_s;
    let t = Instant::now();
    let evals = evaluate(&trained.model, &data, 64, &cfmem::engine::Device::Cpu)?;
    let eval_s = t.elapsed().as_secs_f64();
    let tokens = data.total_targets();
    drop(trained);
    drop(data);
    let record_bytes = store_records(&exp, &evals[0], REPORT_MODELS)?;
    let t = Instant::now();
    let rep = report(&exp, &ReportConfig::default())?;
    let report_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(rep.n_models == REPORT_MODELS);
    println!(
        "scale docs={n_docs} tokens={tokens} load_tokenize_s={load_s:.4} train_tokens_per_s={train_tps:.0} train_peak_fraction={:.3} train_epoch_s={train_s:.1} eval_tokens_per_s={:.0} eval_s={eval_s:.1} record_bytes={record_bytes} bytes_per_doc={:.1} report_models={REPORT_MODELS} report_s={report_s:.4} peak_mib={:.0}",
        train_tps * model.train_flops_per_token() / (peak1 * 1e9),
        tokens as f64 / eval_s,
        record_bytes as f64 / n_docs as f64,
        peak_mib()
    );
    Ok(())
}

/// The analysis alone at `n_docs`: 16 synthetic records and their report.
fn analysis_child(n_docs: usize) -> Result<()> {
    const MODELS: usize = 16;
    let tmp = tempfile::tempdir()?;
    let exp = Experiment::builder(tmp.path().join("exp"))
        .corpus(cfmem::synthetic::corpus(n_docs, 7)?)
        .open(OnChange::Refuse)?;
    let evals: Vec<DocEval> = (0..n_docs)
        .map(|d| DocEval {
            n_tokens: 100,
            n_correct: 20 + (d % 50) as u32,
            sum_nll: 150.0,
        })
        .collect();
    let t = Instant::now();
    let record_bytes = store_records(&exp, &evals, MODELS)?;
    let store_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let rep = report(&exp, &ReportConfig::default())?;
    let report_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(rep.n_models == MODELS);
    println!(
        "analysis docs={n_docs} models={MODELS} record_bytes={record_bytes} bytes_per_doc={:.1} store_s={store_s:.1} report_s={report_s:.4} peak_mib={:.0}",
        record_bytes as f64 / n_docs as f64,
        peak_mib()
    );
    Ok(())
}

/// Least-squares slope of `ln y` on `ln x`.
fn exponent(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (lx, ly): (Vec<f64>, Vec<f64>) = points.iter().map(|(x, y)| (x.ln(), y.ln())).unzip();
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let sxy: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = lx.iter().map(|x| (x - mx).powi(2)).sum();
    sxy / sxx
}

fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))?
        .parse()
        .ok()
}

fn main() -> Result<()> {
    // candle's element-wise pool and the allocator, as `cfmem` sets them;
    // the matrix-product threads are set per measurement below.
    cfmem::engine::settle_process(None, |k, v| std::env::set_var(k, v));
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        let n: usize = args[at + 1].parse()?;
        let peak: f64 = args[at + 2].parse()?;
        return child(n, peak);
    }
    if let Some(at) = args.iter().position(|a| a == "--analysis") {
        return analysis_child(args[at + 1].parse()?);
    }
    let peak1 = peak_gflops(1)?;
    println!("peak threads=1 gflops={peak1:.1}");
    let exe = std::env::current_exe()?;
    let mut lines = Vec::new();
    for n in sizes("CFMEM_SCALE_SIZES", "1000,10000,100000") {
        let out = std::process::Command::new(&exe)
            .args(["--child", &n.to_string(), &peak1.to_string()])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(
            out.status.success(),
            "size {n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{text}");
        lines.push(text);
    }
    for n in sizes("CFMEM_SCALE_ANALYSIS", "1000000") {
        let out = std::process::Command::new(&exe)
            .args(["--analysis", &n.to_string()])
            .output()
            .context("analysis child")?;
        anyhow::ensure!(
            out.status.success(),
            "analysis {n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    if lines.len() >= 2 {
        for key in [
            "load_tokenize_s",
            "train_epoch_s",
            "eval_s",
            "report_s",
            "record_bytes",
            "peak_mib",
        ] {
            let pts: Vec<(f64, f64)> = lines
                .iter()
                .filter_map(|l| Some((field(l, "docs")?, field(l, key)?)))
                .filter(|(_, y)| *y > 0.0)
                .collect();
            println!(
                "fit {key} exponent={:.2} (time or size ∝ documents^b)",
                exponent(&pts)
            );
        }
    }
    Ok(())
}
