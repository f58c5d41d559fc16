//! Quickstart: measure counterfactual memorization on part of The Devil's
//! Dictionary with planted random canaries and low-information controls.
//!
//! ```text
//! cargo run --release --example quickstart            # 24 models, ≈ 2 min on 2 cores
//! cargo run --release --example quickstart -- 8       # fewer models, faster, noisier
//! ```
//! Results go to `target/cfmem-examples/quickstart/` (rerunning resumes);
//! `cfmem report target/cfmem-examples/quickstart` prints the same numbers.

use anyhow::{Context, Result};
use cfmem::analysis::{
    analyse, contrast, difference_weights, mean_weights, report, AnalysisConfig, MembershipConfig,
    Metric, ReportConfig, DEFAULT_FDR,
};
use cfmem::engine::kind_of;
use cfmem::report::HtmlPage;
use cfmem::sched::{run, Experiment, OnChange, PrintProgress, RunConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    // One matrix-product thread per job (one job per core), set before
    // any thread starts.
    cfmem::engine::settle_process(Some(1), |k, v| std::env::set_var(k, v));
    let n_models: usize = match std::env::args().nth(1) {
        Some(s) => s.parse().context("the argument is the number of models")?,
        None => 24,
    };
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/cfmem-examples/quickstart"
    );
    let corpus = cfmem::bundled::quickstart_corpus()?;
    println!(
        "corpus: {} documents (120 dictionary entries, 16 random canaries, 16 controls); experiment in {dir}",
        corpus.len()
    );
    // The default settings (tiny model, 64 epochs, complementary halves,
    // shared seeds), keeping per-token results for the HTML report. A
    // previous run of this example is resumed; one with other settings (or
    // of another trainer revision) is replaced.
    // Each model also ranks every random canary among 2,000 sampled
    // secrets of its format (32 hex digits after "The secret code is "),
    // for the canaries' exposure (Carlini et al. 2019).
    let exposure = cfmem::engine::ExposureConfig {
        prefix: cfmem::engine::CanaryConfig::default().prefix,
        format: cfmem::engine::CanaryFormat::default(),
        candidates: cfmem::engine::DEFAULT_CANDIDATES,
    };
    let exp = Experiment::builder(dir)
        .corpus(corpus)
        .per_token(true)
        .exposure(Some(exposure))
        .open(OnChange::Replace)?;
    let summary = run(
        &exp,
        &RunConfig {
            n_models,
            ..RunConfig::default()
        },
        &PrintProgress::every(1),
    )?;
    println!(
        "trained {} models in {:.0} s ({} already done)\n",
        summary.trained.len(),
        summary.seconds,
        summary.n_already_done
    );

    // The report's defaults: model-mean adjusted per-token accuracy, as `cfmem report`.
    let rep = report(&exp, &ReportConfig::default())?;
    let ranked = rep.ranked();
    println!(
        "Top 12 most memorized documents (per-token accuracy, {} adjustment, {} models, 95% CI):",
        rep.config.adjustment, rep.n_models
    );
    println!(
        "{:>4}  {:<22} {:>7} {:>7} {:>7}  {:<18}",
        "rank", "id", "in", "out", "mem", "95% CI"
    );
    let f = |x: Option<f64>| x.unwrap_or(f64::NAN);
    for (r, d) in ranked.iter().take(12).enumerate() {
        let e = &d.estimate;
        println!(
            "{:>4}  {:<22} {:>7.3} {:>7.3} {:>7.3}  [{:.3}, {:.3}]",
            r + 1,
            d.id.chars().take(22).collect::<String>(),
            f(e.in_mean),
            f(e.out_mean),
            f(e.mem),
            f(e.ci_low),
            f(e.ci_high)
        );
    }
    // Means over documents get the design's error (clustered by block, as
    // one document's), since every document is scored by the same models;
    // "memorized" counts are discoveries at a 5% false discovery rate.
    println!("\nBy kind of document (mean over these documents, 95% CI clustered by block):");
    println!(
        "{:<28} {:>3} {:>8} {:>8} {:>18} {:>10} {:>9}",
        "kind", "n", "median", "mean", "95% CI", "q <= 5%", "mean rank"
    );
    let q = rep.q_values();
    let mut by_kind = Vec::new();
    for (kind, label) in [
        ("random canaries", "random canaries (32 hex)"),
        ("controls", "controls (\"the the ...\")"),
        ("documents", "dictionary entries"),
    ] {
        let group: Vec<(usize, _)> = ranked
            .iter()
            .enumerate()
            .filter(|(_, d)| kind_of(&d.id) == kind)
            .collect();
        let mems: Vec<f64> = group.iter().filter_map(|(_, d)| d.estimate.mem).collect();
        let docs: Vec<usize> = group.iter().map(|(_, d)| d.index).collect();
        let m = contrast(&rep, &exp, &mean_weights(&rep, &docs))?;
        let (lo, hi) = m.map_or((f64::NAN, f64::NAN), |w| (w.ci_low, w.ci_high));
        let mean = mems.iter().sum::<f64>() / mems.len().max(1) as f64;
        let mut sorted = mems.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        let found = docs
            .iter()
            .filter(|&&d| q[d].is_some_and(|q| q <= DEFAULT_FDR))
            .count();
        let rank =
            group.iter().map(|(r, _)| (r + 1) as f64).sum::<f64>() / mems.len().max(1) as f64;
        println!(
            "{label:<28} {:>3} {median:>8.4} {mean:>8.4} {:>18} {:>6}/{:<3} {rank:>9.1}",
            mems.len(),
            format!("[{lo:.4}, {hi:.4}]"),
            found,
            mems.len()
        );
        by_kind.push(docs);
    }
    let difference =
        |a: &[usize], b: &[usize]| contrast(&rep, &exp, &difference_weights(&rep, a, b));
    if let Some(w) = difference(&by_kind[0], &by_kind[1])? {
        println!(
            "\nRandom canaries above controls: {} (difference of means {:.4} [{:.4}, {:.4}], 95%, clustered by block)",
            if w.ci_low > 0.0 { "yes" } else { "NO" },
            w.diff,
            w.ci_low,
            w.ci_high
        );
    }
    if let Some(w) = difference(&by_kind[0], &by_kind[2])? {
        println!(
            "Random canaries vs natural text: difference of means {:+.4} [{:.4}, {:.4}] (memorization peaks at intermediate difficulty, so natural text may come out higher)",
            w.diff, w.ci_low, w.ci_high
        );
    }
    // Everything in one page to open in a browser: settings, reliability,
    // charts, every document with its text and its models' scores.
    let mut all = analyse(
        &exp,
        &AnalysisConfig {
            convergence: true,
            membership: Some(MembershipConfig::default()),
            proxies: true,
            ..AnalysisConfig::default()
        },
    )?;
    all.exposure = exp.exposure(&all.report)?;
    if let Some(x) = &all.exposure {
        let side = |f: fn(&cfmem::analysis::CanaryExposure) -> Option<f64>| {
            let v: Vec<f64> = x.canaries.iter().filter_map(f).collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        println!(
            "\nExposure of the {} random canaries (of at most {:.0} bits; skew-normal fit to {} sampled secrets): {:.1} bits on average under the models that trained on each, {:.1} under those that did not",
            x.canaries.len(),
            x.bits,
            x.candidates,
            side(|c| c.exposure_in),
            side(|c| c.exposure_out)
        );
    }
    if let Some(a) = &all.audit {
        let show = |name: &str| {
            a.proxies
                .iter()
                .find(|p| p.name == name)
                .map_or(String::new(), |p| {
                    format!(
                        "{name} {:.2} (AUC {})",
                        p.spearman,
                        p.auc.map_or("n/a".into(), |x| format!("{x:.2}"))
                    )
                })
        };
        println!(
            "Cheap proxies against counterfactual memorization, Spearman over each model's documents: {}, {}, {}, {} (cfmem report {dir} --proxies for all)",
            show("loss"),
            show("min-20%++"),
            show("zlib"),
            show("lira-offline")
        );
    }
    let html = format!("{dir}/report.html");
    let texts = exp.corpus().documents().iter().map(|d| d.text.clone());
    let mut page = HtmlPage::new(
        format!("cfmem: {}", exp.dir().display()),
        exp.describe(),
        Some(texts.collect()),
    );
    page.token_segments = Some(exp.token_segments(Metric::Accuracy)?);
    let w = cfmem::report::html::write(&all, &exp, &page, html.as_ref())?;
    println!(
        "\nThe HTML report (open it in a browser, {:.1} MB): {html}",
        w.bytes as f64 / 1e6
    );
    println!("Every document, with the same numbers: cargo run --release -p cfmem-cli -- report {dir} --csv mem.csv");
    Ok(())
}
