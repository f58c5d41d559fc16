//! `cfmem report`: the analyses of an experiment (or of imported
//! matrices), printed, and written as CSV, Parquet, JSON, plots and HTML.

use anyhow::{bail, Result};
use cfmem_analysis::{
    analyse, report, Agreement, Analyses, HtmlPage, Imported, Metric, ReportConfig, Rows,
    ScoreTable,
};
use cfmem_sched::Experiment;

use crate::flags::ReportArgs;

fn fmt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

fn short(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

pub fn cmd_report(a: &ReportArgs) -> Result<()> {
    let (src, page): (Box<dyn Rows>, HtmlPage) =
        match (&a.dir, &a.import_membership, &a.import_scores) {
            (Some(dir), None, None) => {
                let exp = Experiment::open(dir)?;
                println!(
                    "tokenizer {}: metrics are per token of this tokenizer",
                    exp.manifest().tokenizer.name()
                );
                let mut page = exp.html_page();
                if a.html.is_some() && exp.manifest().per_token {
                    page.token_segments = Some(exp.token_segments(a.metric)?);
                }
                (Box::new(exp), page)
            }
            (None, Some(m), Some(s)) => (
                Box::new(Imported {
                    table: ScoreTable::load(m, s, a.import_ids.as_deref())?,
                    metric: a.metric,
                }),
                HtmlPage {
                    title: format!("cfmem: {}", s.display()),
                    settings: vec![
                        ("membership matrix".into(), m.display().to_string()),
                        ("score matrix".into(), s.display().to_string()),
                    ],
                    ..HtmlPage::default()
                },
            ),
            _ => bail!(
            "give an experiment directory, or --import-membership and --import-scores (not both)"
        ),
        };
    if a.dir.is_none() && (a.influence || a.groups || a.repetition) {
        bail!("--influence, --groups and --repetition need an experiment directory (imported tables carry no corpus or design)");
    }
    let out = analyse(src.as_ref(), &a.analyses())?;
    for s in &out.report.skipped {
        eprintln!("warning: skipping model {}: {}", s.model, s.reason);
    }
    if out.report.n_models == 0 {
        let d = a
            .dir
            .as_ref()
            .map_or(".".into(), |d| d.display().to_string());
        bail!("{d}: no finished models yet; run `cfmem run {d}` first");
    }
    let beside = if a.metric.is_extraction() && a.dir.is_some() {
        Some(accuracy_beside(src.as_ref(), &out)?)
    } else {
        None
    };
    print_estimates(&out, a.top, beside.as_ref().map(|b| &b.0[..]));
    if let Some((_, line)) = &beside {
        println!("{line}");
    }
    print_convergence(&out);
    print_membership(&out, a.top);
    print_influence(&out, a.top);
    print_groups(&out, a.top);
    print_repetition(&out);
    if let Some(path) = &a.csv {
        out.write_csv(path)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &a.parquet {
        out.write_parquet(path)?;
        println!("wrote {}", path.display());
    }
    if let Some(dir) = &a.plots {
        let files = out.write_plots(dir)?;
        println!(
            "wrote {} plots (PNG and SVG) to {}",
            files.len() / 2,
            dir.display()
        );
    }
    if let Some(path) = &a.json {
        out.write_json(path)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &a.html {
        let w = out.write_html(src.as_ref(), &page, path)?;
        println!(
            "wrote {} ({:.1} MB; {} documents, scores of {} models drawn per document)",
            path.display(),
            w.bytes as f64 / 1e6,
            w.documents,
            w.models_drawn
        );
    }
    Ok(())
}

fn print_estimates(out: &Analyses, top: usize, accuracy: Option<&[Option<f64>]>) {
    let rep = &out.report;
    let c = &rep.config;
    println!(
        "{} documents, {} models, metric {}, adjustment {}; mem = {} ({:.0}% CI, Student t; {} error)",
        rep.docs.len(),
        rep.n_models,
        c.metric,
        c.adjustment,
        if c.metric == Metric::Loss {
            "out_mean - in_mean"
        } else {
            "in_mean - out_mean"
        },
        100.0 * c.level,
        if out.report.block_size > 1 {
            "block-clustered"
        } else {
            "Welch"
        }
    );
    let missing = rep.n_missing();
    if missing > 0 {
        println!("{missing} documents have no estimate (a side with no model); train more models");
    }
    let short_docs = rep.n_not_scored();
    if short_docs > 0 {
        println!("{short_docs} documents are too short for the extraction test (they need the prompt's and the continuation's tokens) and have no estimate");
    }
    let beside = |i: usize| accuracy.map(|a| fmt(a[i])).unwrap_or_default();
    let head = if accuracy.is_some() { "mem(acc)" } else { "" };
    println!(
        "{:>4}  {:<32} {:>4} {:>5} {:>8} {:>8} {:>8}  {:<20} {head}",
        "rank", "id", "n_in", "n_out", "in", "out", "mem", "CI"
    );
    for (r, d) in rep.ranked().iter().take(top).enumerate() {
        let e = &d.estimate;
        println!(
            "{:>4}  {:<32} {:>4} {:>5} {:>8} {:>8} {:>8}  {:<20} {}",
            r + 1,
            short(&d.id, 32),
            e.n_in,
            e.n_out,
            fmt(e.in_mean),
            fmt(e.out_mean),
            fmt(e.mem),
            format!("[{}, {}]", fmt(e.ci_low), fmt(e.ci_high)),
            beside(d.index)
        );
    }
}

/// Counterfactual memorization under per-token accuracy, per document, to
/// print beside the extraction estimates; and how the two disagree.
fn accuracy_beside(src: &dyn Rows, out: &Analyses) -> Result<(Vec<Option<f64>>, String)> {
    let cfg = ReportConfig {
        metric: Metric::Accuracy,
        ..out.report.config
    };
    let acc = report(src, &cfg)?;
    let Agreement {
        both,
        first_only: extractable_only,
        second_only: memorized_only,
        ..
    } = Agreement::of(&out.report, &acc);
    let line = format!(
        "mem(acc): counterfactual memorization of per-token accuracy. Of the documents scored, with 95% intervals above 0: both {both}; memorized but not more extractable {memorized_only}; more extractable but not memorized {extractable_only}"
    );
    Ok((acc.docs.iter().map(|d| d.estimate.mem).collect(), line))
}

fn print_convergence(out: &Analyses) {
    let Some(points) = &out.convergence else {
        return;
    };
    println!("\nSplit-half convergence (Spearman between the estimates of two disjoint halves of the models,");
    println!("mean over random partitions ± its spread, 95% bootstrap interval over documents):");
    println!(
        "{:>8} {:>9} {:>8} {:>20} {:>12} {:>20} {:>6} {:>6}",
        "models", "spearman", "± sd", "interval", "reliability", "interval", "parts", "docs"
    );
    let iv = |lo: Option<f64>, hi: Option<f64>| format!("[{}, {}]", fmt(lo), fmt(hi));
    for p in points {
        println!(
            "{:>8} {:>9} {:>8} {:>20} {:>12} {:>20} {:>6} {:>6}",
            p.n_models,
            fmt(p.spearman),
            fmt(p.spearman_sd),
            iv(p.ci_low, p.ci_high),
            fmt(p.reliability),
            iv(p.reliability_ci_low, p.reliability_ci_high),
            p.n_partitions,
            p.n_docs
        );
    }
    println!("reliability = Spearman–Brown 2r/(1+r): the expected agreement of the full estimate with a replication (check it with `cfmem compare`)");
}

fn print_membership(out: &Analyses, top: usize) {
    let Some(m) = &out.membership else {
        return;
    };
    println!(
        "\nMembership inference (LiRA, {:?} observation, {} variance{}, each model left out of its fits):",
        m.observation,
        m.variance,
        if m.variance_auto {
            " (chosen by the number of models; --variance to choose)"
        } else {
            ""
        }
    );
    for (name, r) in [("online", &m.online), ("offline", &m.offline)] {
        match r {
            Some(r) => {
                let tpr: Vec<String> = r
                    .tpr_at_fpr
                    .iter()
                    .map(|t| format!("{}% {:.4}", 100.0 * t.fpr, t.tpr))
                    .collect();
                println!(
                    "  {name:<8} AUC {:.4}  TPR at FPR {}  ({} members, {} non-members)",
                    r.auc,
                    tpr.join(", "),
                    r.n_pos,
                    r.n_neg
                );
            }
            None => println!(
                "  {name:<8} not enough models (each side needs 2 besides the scored model)"
            ),
        }
    }
    println!("  most exposed documents (per-document AUC over the models):");
    for d in m.most_exposed().iter().take(top.min(10)) {
        let f = &d.fit;
        println!(
            "    {:<32} AUC {:.3}  in {:.2}±{:.2}  out {:.2}±{:.2}",
            short(&d.id, 32),
            d.auc.unwrap_or(f64::NAN),
            f.mu_in,
            f.sigma_in,
            f.mu_out,
            f.sigma_out
        );
    }
}

fn print_influence(out: &Analyses, top: usize) {
    let Some(inf) = &out.influence else {
        return;
    };
    let k = inf.influence.top_units.first().map_or(0, Vec::len);
    println!(
        "\nCounterfactual influence ({}, on the {:?} documents): top {k} training documents for the queries with the strongest single influence:",
        inf.metric, inf.on
    );
    for q in inf.strongest_queries().into_iter().take(top.min(10)) {
        let list: Vec<String> = inf.influence.top_units[q]
            .iter()
            .map(|e| format!("{} {:+.3}±{:.3}", inf.unit_ids[e.unit], e.infl, e.se))
            .collect();
        println!(
            "  {:<28} ← {}",
            short(&inf.query_ids[q], 28),
            list.join(", ")
        );
    }
}

fn print_groups(out: &Analyses, top: usize) {
    let Some(g) = &out.groups else {
        return;
    };
    let mut multi: Vec<_> = g.iter().filter(|x| x.members.len() > 1).collect();
    multi.sort_by(|x, y| {
        y.estimate
            .mem
            .partial_cmp(&x.estimate.mem)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    println!(
        "\nUnits of removal: {} units ({} with several documents); mem of a unit = its members' mean score, unit in vs out:",
        g.len(),
        multi.len()
    );
    for x in multi.iter().take(top) {
        let e = &x.estimate;
        println!(
            "  {:<32} {:>3} docs  mem {:>8}  [{}, {}]  n_in {} n_out {}",
            short(&x.name, 32),
            x.members.len(),
            fmt(e.mem),
            fmt(e.ci_low),
            fmt(e.ci_high),
            e.n_in,
            e.n_out
        );
    }
}

fn print_repetition(out: &Analyses) {
    let Some(curve) = &out.repetition else {
        return;
    };
    println!("\nMemorization by copies per epoch (mean over documents of E[M|k] - E[M|0], Student t over documents):");
    for p in &curve.overall {
        println!(
            "  {:>3} copies: mem {:.4} [{:.4}, {:.4}] (95%, {} documents)",
            p.copies, p.mem.mean, p.mem.ci_low, p.mem.ci_high, p.mem.n
        );
    }
}
