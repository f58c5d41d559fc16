//! `cfmem report`: the analyses of an experiment (or of imported
//! matrices), printed, and written as CSV, Parquet, JSON, plots and HTML.

use anyhow::{bail, Result};
use cfmem_analysis::{
    analyse, report, Agreement, Analyses, Imported, Metric, ReportConfig, Rows, ScoreTable,
    DEFAULT_FDR,
};
use cfmem_report::{charts, html, json, parquet, text, HtmlPage};
use cfmem_sched::Experiment;

use crate::flags::ReportArgs;

pub fn cmd_report(a: &ReportArgs) -> Result<()> {
    // The experiment, when the source is one: it also gives the canaries'
    // exposure.
    let mut experiment: Option<Experiment> = None;
    let (src, page): (Box<dyn Rows>, HtmlPage) = match (
        &a.dir,
        &a.import_membership,
        &a.import_scores,
    ) {
        (Some(dir), None, None) => {
            let exp = Experiment::open(dir)?;
            println!(
                "tokenizer {}: metrics are per token of this tokenizer",
                exp.manifest().tokenizer.name()
            );
            let texts = exp.corpus().documents().iter().map(|d| d.text.clone());
            let mut page = HtmlPage::new(
                format!("cfmem: {}", dir.display()),
                exp.describe(),
                Some(texts.collect()),
            );
            if a.html.is_some() && exp.manifest().per_token {
                page.token_segments = Some(exp.token_segments(a.metric)?);
            }
            experiment = Some(exp.clone());
            (Box::new(exp), page)
        }
        (None, Some(m), Some(s)) => {
            let table = ScoreTable::load(m, s, a.import_ids.as_deref())?;
            let blocks = a.import_blocks.unwrap_or_else(|| {
                    let b = table.membership.detect_blocks();
                    if b > 1 {
                        eprintln!(
                            "{}: blocks of {b} consecutive models hold every document once; errors clustered by block (--import-blocks 1 treats the models as independent)",
                            m.display()
                        );
                    }
                    b
                });
            (
                Box::new(Imported {
                    table,
                    metric: a.metric,
                    blocks,
                }),
                HtmlPage::new(
                    format!("cfmem: {}", s.display()),
                    vec![
                        ("membership matrix".into(), m.display().to_string()),
                        ("score matrix".into(), s.display().to_string()),
                    ],
                    None,
                ),
            )
        }
        _ => bail!(
            "give an experiment directory, or --import-membership and --import-scores (not both)"
        ),
    };
    if a.dir.is_none() && (a.influence || a.groups || a.repetition || a.spectrum) {
        bail!("--influence, --groups, --repetition and --spectrum need an experiment directory (imported tables carry no corpus or design)");
    }
    let mut out = analyse(src.as_ref(), &a.analyses())?;
    if let Some(exp) = &experiment {
        // The canaries' exposure, when the experiment ranks them.
        out.exposure = exp.exposure(&out.report)?;
    }
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
    let beside = beside.as_ref().map(|(accuracy, agreement)| text::Beside {
        accuracy,
        agreement,
    });
    print!("{}", text::analyses(&out, a.top, beside));
    if let Some(path) = &a.csv {
        cfmem_report::csv::write(&out, path)?;
        println!("wrote {}", path.display());
        if let Some(audit) = &out.audit {
            let beside = path.with_extension("proxies.csv");
            cfmem_report::csv::write_proxies(audit, &beside)?;
            println!("wrote {}", beside.display());
        }
        if let Some(r) = &out.spectrum {
            let beside = path.with_extension("spectrum.csv");
            cfmem_report::spectrum::write_csv(r, &beside)?;
            println!("wrote {}", beside.display());
        }
    }
    if let Some(path) = &a.parquet {
        parquet::write(&out, path)?;
        println!("wrote {}", path.display());
    }
    if let Some(dir) = &a.plots {
        let files = charts::write_all(&charts::standard(&out), dir)?;
        println!(
            "wrote {} plots (PNG and SVG) to {}",
            files.len() / 2,
            dir.display()
        );
    }
    if let Some(path) = &a.json {
        json::write(&out, path)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &a.html {
        let w = html::write(&out, src.as_ref(), &page, path)?;
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

/// Counterfactual memorization under per-token accuracy, per document, to
/// print beside the extraction estimates, and how the two agree.
fn accuracy_beside(src: &dyn Rows, out: &Analyses) -> Result<(Vec<Option<f64>>, Agreement)> {
    // The extraction report is never adjusted (0/1 scores); accuracy gets
    // the default adjustment.
    let cfg = ReportConfig {
        metric: Metric::Accuracy,
        adjustment: ReportConfig::default().adjustment,
        ..out.report.config
    };
    let acc = report(src, &cfg)?;
    let agreement = Agreement::of(&out.report, &acc, DEFAULT_FDR);
    Ok((acc.docs.iter().map(|d| d.estimate.mem).collect(), agreement))
}
