//! The spectrum ([`cfmem_analysis::spectrum()`]) as text, CSV, charts and
//! an HTML section.

use std::fmt::Write as _;
use std::path::Path;

use cfmem_analysis::{DocSpectrum, LevelSummary, SpectrumReport};

use crate::charts::NamedChart;
use crate::error::{Error, Result};
use crate::plot::{Chart, Labels, Series};
use crate::text::short;

fn fmt(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map_or_else(|| "-".into(), |v| format!("{v:.4}"))
}

/// Effect per 1,000 removed tokens, as printed.
fn per_k(x: f64) -> String {
    if x.is_finite() {
        format!("{:.4}", 1000.0 * x)
    } else {
        "-".into()
    }
}

/// The documents whose spectrum is drawn one by one: per kind, the
/// document with the largest estimate at any level; then the largest
/// overall, up to `n`.
pub fn chosen(r: &SpectrumReport, n: usize) -> Vec<&DocSpectrum> {
    let top = |d: &DocSpectrum| {
        d.levels
            .iter()
            .filter_map(|l| l.estimate.mem)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let mut order: Vec<&DocSpectrum> = r.docs.iter().collect();
    order.sort_by(|a, b| top(b).total_cmp(&top(a)));
    let mut out: Vec<&DocSpectrum> = Vec::new();
    for k in r.kinds.iter().skip(1) {
        if let Some(d) = order
            .iter()
            .find(|d| d.kind.as_deref() == Some(k.kind.as_str()))
        {
            out.push(d);
        }
    }
    for d in order {
        if out.len() >= n {
            break;
        }
        if !out.iter().any(|x| x.id == d.id) {
            out.push(d);
        }
    }
    out.truncate(n);
    out
}

/// The terminal section: each level's mean over the documents (all, then
/// per kind) with its interval and removed mass, and the `top` documents
/// with the largest estimate at any level.
pub fn text(w: &mut String, r: &SpectrumReport, top: usize) {
    let _ = writeln!(
        w,
        "\nSpectrum over {} models, levels {}: mem at level L = E[{m} | document in] − E[{m} | its level-L unit out, the next larger unit not all out]; every model leaves out the same number of documents. Means over documents, {:.0}% intervals (jackknife over models); removed = the unit's documents/tokens the in-models hold.",
        r.n_models,
        r.levels.join(" < "),
        100.0 * r.level,
        m = r.metric.name(),
    );
    let _ = writeln!(
        w,
        "  {:<20} {:<22} {:>5}  {:>8} {:>19}  {:>28}  {:>8} {:>9}  {:>9}  {:>26}",
        "documents",
        "level",
        "n",
        "mem",
        "interval",
        "adds to the level below",
        "rem.docs",
        "rem.tok",
        "per 1k tok",
        "10% / 50% / 90% of docs"
    );
    for k in &r.kinds {
        for (i, l) in k.levels.iter().enumerate() {
            let name = if i == 0 { k.kind.as_str() } else { "" };
            let _ = writeln!(
                w,
                "  {:<20} {:<22} {:>5}  {:>8} [{:>8}, {:>8}]  {:>28}  {:>8.1} {:>9.0}  {:>9}  {:>8} {:>8} {:>8}",
                short(name, 20),
                short(&l.level, 22),
                l.mean.n,
                fmt(Some(l.mean.mean)),
                fmt(Some(l.mean.ci_low)),
                fmt(Some(l.mean.ci_high)),
                step(l),
                l.removed_docs,
                l.removed_tokens,
                per_k(l.per_token.mean),
                fmt(Some(l.quantiles[0])),
                fmt(Some(l.quantiles[1])),
                fmt(Some(l.quantiles[2])),
            );
        }
    }
    let _ = writeln!(w, "  Documents with the largest estimate at any level:");
    for d in chosen(r, top) {
        let levels: Vec<String> = d
            .levels
            .iter()
            .zip(&r.levels)
            .map(|(l, name)| {
                let e = &l.estimate;
                format!(
                    "{} {} [{}, {}] ({:.1} docs)",
                    short(name, 14),
                    fmt(e.mem),
                    fmt(e.ci_low),
                    fmt(e.ci_high),
                    l.removed_docs
                )
            })
            .collect();
        let _ = writeln!(w, "  {:<28} {}", short(&d.id, 28), levels.join(" | "));
    }
}

/// What a level adds to the one below, `mean [low, high]` (blank at the
/// document level).
fn step(l: &LevelSummary) -> String {
    l.step.map_or(String::new(), |m| {
        format!(
            "{} [{}, {}]",
            fmt(Some(m.mean)),
            fmt(Some(m.ci_low)),
            fmt(Some(m.ci_high))
        )
    })
}

/// Every document at every level as CSV: `id,kind,level,unit,unit_docs,
/// unit_tokens,same_as_below,removed_docs,removed_tokens,n_in,n_out,
/// in_mean,out_mean,mem,se,ci_low,ci_high,per_token,step_mem,step_ci_low,
/// step_ci_high` (`step`: what the level adds to the one below, empty at
/// the document level).
///
/// # Errors
/// [`Error::Csv`] naming the file.
pub fn write_csv(r: &SpectrumReport, path: &Path) -> Result<()> {
    let err = |source: ::csv::Error| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut w = ::csv::Writer::from_path(path).map_err(err)?;
    w.write_record([
        "id",
        "kind",
        "level",
        "unit",
        "unit_docs",
        "unit_tokens",
        "same_as_below",
        "removed_docs",
        "removed_tokens",
        "n_in",
        "n_out",
        "in_mean",
        "out_mean",
        "mem",
        "se",
        "ci_low",
        "ci_high",
        "per_token",
        "step_mem",
        "step_ci_low",
        "step_ci_high",
    ])
    .map_err(err)?;
    let o = |x: Option<f64>| x.map_or(String::new(), |v| v.to_string());
    for d in &r.docs {
        for (l, name) in d.levels.iter().zip(&r.levels) {
            let e = &l.estimate;
            w.write_record([
                d.id.clone(),
                d.kind.clone().unwrap_or_default(),
                name.clone(),
                l.unit.clone(),
                l.unit_docs.to_string(),
                l.unit_tokens.to_string(),
                l.same_as_below.to_string(),
                l.removed_docs.to_string(),
                l.removed_tokens.to_string(),
                e.n_in.to_string(),
                e.n_out.to_string(),
                o(e.in_mean),
                o(e.out_mean),
                o(e.mem),
                o(e.se),
                o(e.ci_low),
                o(e.ci_high),
                o(l.per_token),
                o(l.step.as_ref().and_then(|s| s.mem)),
                o(l.step.as_ref().and_then(|s| s.ci_low)),
                o(l.step.as_ref().and_then(|s| s.ci_high)),
            ])
            .map_err(err)?;
        }
    }
    w.flush().map_err(|e| Error::Csv {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// A level's point: `(log10 removed tokens, mean, half interval)`.
fn point(l: &LevelSummary) -> (f64, f64, Option<f64>) {
    let half = (l.mean.ci_high - l.mean.ci_low) / 2.0;
    (
        l.removed_tokens.max(1.0).log10(),
        l.mean.mean,
        half.is_finite().then_some(half),
    )
}

/// `spectrum`: memorization against the mass removed, one line per kind
/// of document (every document when there are no kinds), one point per
/// level; and `spectrum_documents`: the same for a few chosen documents
/// ([`chosen`]), a panel each.
pub fn charts(r: &SpectrumReport) -> Vec<NamedChart> {
    let kinds: Vec<_> = if r.kinds.len() > 1 {
        r.kinds[1..].iter().collect()
    } else {
        r.kinds.iter().collect()
    };
    let series = kinds
        .iter()
        .map(|k| Series {
            label: format!("{} ({} docs)", k.kind, k.n_docs),
            points: k.levels.iter().map(point).collect(),
        })
        .collect();
    let x = "tokens removed with the unit (log10)";
    let y = format!("mem ({})", r.metric.name());
    let mut out = vec![NamedChart {
        name: "spectrum",
        chart: Chart::Lines {
            series,
            log: false,
            diagonal: false,
        },
        labels: Labels {
            title: format!(
                "Memorization by level of removal ({})",
                r.levels.join(" < ")
            ),
            x: x.into(),
            y: y.clone(),
        },
    }];
    let panels: Vec<(Labels, Chart)> = chosen(r, 6)
        .into_iter()
        .map(|d| {
            let points = d
                .levels
                .iter()
                .filter_map(|l| {
                    let e = &l.estimate;
                    let half = (e.ci_high? - e.ci_low?) / 2.0;
                    Some((l.removed_tokens.max(1.0).log10(), e.mem?, Some(half)))
                })
                .collect();
            (
                Labels {
                    title: short(&d.id, 40),
                    x: x.into(),
                    y: y.clone(),
                },
                Chart::Lines {
                    series: vec![Series {
                        label: d.kind.clone().unwrap_or_else(|| "document".into()),
                        points,
                    }],
                    log: false,
                    diagonal: false,
                },
            )
        })
        .collect();
    if !panels.is_empty() {
        out.push(NamedChart {
            name: "spectrum_documents",
            chart: Chart::Panels { panels, columns: 3 },
            labels: Labels {
                title: "Chosen documents by level of removal".into(),
                x: x.into(),
                y,
            },
        });
    }
    out
}

/// The HTML section's table (the charts are added by the page).
pub(crate) fn html_table(r: &SpectrumReport, h: &mut String, esc: &dyn Fn(&str) -> String) {
    let _ = write!(
        h,
        "<p>Levels {}; {} models, each leaving out the same number of documents. \
         mem at a level = the document's mean score with it in, minus with its whole unit \
         at that level out (the next larger unit not all out); removed = the unit's \
         documents and tokens that the in-models hold. {:.0}% intervals, jackknife over models.</p>\
         <table><tr><th>documents</th><th>level</th><th>n</th><th>mem</th><th>interval</th>\
         <th>adds to the level below</th><th>removed docs</th><th>removed tokens</th>\
         <th>per 1k tokens</th></tr>",
        esc(&r.levels.join(" < ")),
        r.n_models,
        100.0 * r.level
    );
    for k in &r.kinds {
        for (i, l) in k.levels.iter().enumerate() {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>[{}, {}]</td><td>{}</td>\
                 <td>{:.1}</td><td>{:.0}</td><td>{}</td></tr>",
                if i == 0 { esc(&k.kind) } else { String::new() },
                esc(&l.level),
                l.mean.n,
                fmt(Some(l.mean.mean)),
                fmt(Some(l.mean.ci_low)),
                fmt(Some(l.mean.ci_high)),
                step(l),
                l.removed_docs,
                l.removed_tokens,
                per_k(l.per_token.mean)
            );
        }
    }
    h.push_str("</table>");
}
