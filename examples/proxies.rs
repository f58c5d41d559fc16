//! Which cheap memorization proxy tracks counterfactual memorization, and
//! at what number of counterfactual models does the counterfactual
//! estimate beat the best of them? On three corpora: the quickstart's
//! (dictionary entries, random canaries, controls), WordNet glosses
//! (`datasets/wordnet.jsonl`) and Jargon File entries
//! (`datasets/jargon.jsonl`), 150 short documents each, default settings.
//! Each experiment's last half of models gives the truth; each model of the
//! first half is a target that scores the documents it trained on
//! (`cfmem_studies::proxy_study`).
//!
//! ```text
//! cargo run --release --example proxies          # 32 models per corpus: ≈ 15 min on 2 cores
//! cargo run --release --example proxies -- 16    # fewer models (8 targets, 8 for the truth)
//! ```

mod common;

use anyhow::{Context, Result};
use cfmem::engine::{Corpus, Document, LoadConfig};
use cfmem_studies::{proxy_study, ProxyRow, ProxyStudy, Scale};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Documents per natural corpus, and their longest (characters).
const N_DOCS: usize = 150;
const MAX_CHARS: usize = 160;

fn main() -> Result<()> {
    cfmem::engine::settle_process(Some(1), |k, v| std::env::set_var(k, v));
    let n_models: usize = match std::env::args().nth(1) {
        Some(s) => s.parse().context("the argument is the number of models")?,
        None => 32,
    };
    let dir = common::out_dir("proxies")?;
    let scale = Scale {
        n_models,
        epochs: cfmem::engine::TrainConfig::default().epochs,
        ..Scale::full()
    };
    let corpora = [
        ("quickstart", cfmem::bundled::quickstart_corpus()?),
        ("wordnet", evenly(cfmem::bundled::WORDNET_PATH)?),
        ("jargon", evenly(cfmem::bundled::JARGON_PATH)?),
    ];
    let mut studies = Vec::new();
    for (name, corpus) in corpora {
        println!(
            "{name}: {} documents, {n_models} models in {}",
            corpus.len(),
            dir.join(name).display()
        );
        let s = proxy_study(&dir.join(name), corpus, &scale, &common::progress())?;
        print(name, &s);
        studies.push((name, s));
    }
    println!("\nSummary (mean Spearman with the truth over each target's documents):");
    println!("corpus      best proxy                 best single-model proxy    counterfactual beats them at");
    for (name, s) in &studies {
        let (Some(best), Some(single)) = (s.best_proxy(), s.best_single_model()) else {
            continue;
        };
        let at = |r: &ProxyRow| {
            s.beats(r)
                .map_or("more models than the targets".into(), |n| {
                    format!("{n} models")
                })
        };
        println!(
            "{name:<11} {:<26} {:<26} {} / {}",
            format!("{} {:.3}", best.name, best.audit.spearman),
            format!("{} {:.3}", single.name, single.audit.spearman),
            at(best),
            at(single),
        );
    }
    Ok(())
}

/// `N_DOCS` documents of at most `MAX_CHARS` characters, evenly spaced
/// through the file.
fn evenly(path: &str) -> Result<Corpus> {
    let all = Corpus::load(path, &LoadConfig::default())?;
    let short: Vec<&Document> = all
        .documents()
        .iter()
        .filter(|d| d.text.chars().count() <= MAX_CHARS)
        .collect();
    let step = (short.len() / N_DOCS).max(1);
    let docs: Vec<Document> = short
        .iter()
        .step_by(step)
        .take(N_DOCS)
        .map(|&d| d.clone())
        .collect();
    Ok(Corpus::from_documents(docs)?)
}

fn print(name: &str, s: &ProxyStudy) {
    println!(
        "\n{name}: {} documents, {} targets, truth from the other {} models ({} memorized at a 5% FDR)",
        s.n_docs, s.targets, s.truth_models, s.n_memorized
    );
    println!(
        "{:<28} {:>7}  {:>8} {:<18} {:>6}  {:>6}  {:>5}",
        "score", "models", "Spearman", "[95% CI]", "sd", "P@10%", "AUC"
    );
    for r in s.proxies.iter().chain(&s.counterfactual) {
        let a = &r.audit;
        let ci = a
            .spearman_ci
            .map_or("n/a".into(), |[lo, hi]| format!("[{lo:.3}, {hi:.3}]"));
        let needs = r.models_needed;
        println!(
            "{:<28} {:>7}  {:>8.3} {:<18} {:>6.3}  {:>6}  {:>5}",
            r.name,
            needs,
            a.spearman,
            ci,
            a.spearman_sd,
            a.precision
                .last()
                .map_or("n/a".into(), |p| format!("{p:.2}")),
            a.auc.map_or("n/a".into(), |x| format!("{x:.3}")),
        );
    }
}
