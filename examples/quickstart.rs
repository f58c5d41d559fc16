//! Quickstart: measure counterfactual memorization on part of The Devil's
//! Dictionary with planted random canaries and low-information controls.
//!
//! ```text
//! cargo run --release --example quickstart            # 24 models, ≈ 3.5 min on 2 cores
//! cargo run --release --example quickstart -- 8       # fewer models, faster, noisier
//! ```
//! Results go to `target/cfmem-examples/quickstart/` (rerunning resumes);
//! `cfmem report target/cfmem-examples/quickstart` prints the same numbers.

use anyhow::{Context, Result};
use cfmem::analysis::{
    analyse, report, AnalysisConfig, Difference, MeanCi, MembershipConfig, Metric, ReportConfig,
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
    let exp = Experiment::builder(dir)
        .corpus(corpus)
        .per_token(true)
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
    println!("\nBy kind of document (mean over documents, Student t 95% CI):");
    println!(
        "{:<28} {:>3} {:>8} {:>8} {:>18} {:>10} {:>9}",
        "kind", "n", "median", "mean", "95% CI", "CI > 0", "mean rank"
    );
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
        let m = MeanCi::of(&mems, 0.95);
        let mut sorted = mems.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        let positive = group
            .iter()
            .filter(|(_, d)| d.estimate.ci_low.is_some_and(|l| l > 0.0))
            .count();
        let rank = group.iter().map(|(r, _)| (r + 1) as f64).sum::<f64>() / m.n.max(1) as f64;
        println!(
            "{label:<28} {:>3} {median:>8.4} {:>8.4} {:>18} {:>6}/{:<3} {rank:>9.1}",
            m.n,
            m.mean,
            format!("[{:.4}, {:.4}]", m.ci_low, m.ci_high),
            positive,
            m.n
        );
        by_kind.push(mems);
    }
    let above = Difference::of(&by_kind[0], &by_kind[1], 0.95);
    if let Some(w) = above.welch {
        println!(
            "\nRandom canaries above controls: {} (difference of means {:.4} [{:.4}, {:.4}], Welch 95%)",
            if above.holds { "yes" } else { "NO" },
            w.diff,
            w.ci_low,
            w.ci_high
        );
    }
    if let Some(w) = Difference::of(&by_kind[0], &by_kind[2], 0.95).welch {
        println!(
            "Random canaries vs natural text: difference of means {:+.4} [{:.4}, {:.4}] (memorization peaks at intermediate difficulty, so natural text may come out higher)",
            w.diff, w.ci_low, w.ci_high
        );
    }
    // Everything in one page to open in a browser: settings, reliability,
    // charts, every document with its text and its models' scores.
    let all = analyse(
        &exp,
        &AnalysisConfig {
            convergence: true,
            membership: Some(MembershipConfig::default()),
            ..AnalysisConfig::default()
        },
    )?;
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
