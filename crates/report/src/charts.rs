//! The charts each analysis is drawn as, and writing them as PNG and SVG.

use std::path::{Path, PathBuf};

use cfmem_analysis::{
    Analyses, Comparison, ConvergencePoint, MembershipReport, Metric, RepetitionCurve,
};

use crate::error::{io, Result};
use crate::plot::{plot, Chart, Labels, Series};

/// A chart with the file stem it is written under.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedChart {
    /// File stem (`mem_histogram`, …).
    pub name: &'static str,
    /// What to draw.
    pub chart: Chart,
    /// Its title and axis labels.
    pub labels: Labels,
}

/// The standard charts: `mem_histogram`, `mem_vs_in_mean` (grouped by
/// kind of document), and `convergence`, `roc`, `mem_vs_copies`,
/// `proxies`, `spectrum` and `spectrum_documents` for the analyses
/// computed.
pub fn standard(a: &Analyses) -> Vec<NamedChart> {
    let mut charts = vec![histogram(a), mem_vs_in_mean(a)];
    if let Some(points) = &a.convergence {
        charts.push(convergence(points));
    }
    if let Some(m) = &a.membership {
        charts.push(roc(m));
    }
    if let Some(curve) = &a.repetition {
        charts.push(repetition(curve, a.report.metric()));
    }
    if let Some(audit) = a.audit.as_ref().filter(|x| !x.proxies.is_empty()) {
        charts.push(proxies(audit, a.report.metric()));
    }
    if let Some(r) = &a.spectrum {
        charts.extend(crate::spectrum::charts(r));
    }
    charts
}

/// `proxies`: one panel per proxy, the proxy against counterfactual
/// memorization over one target model's documents
/// ([`cfmem_analysis::ProxyAudit::points`]), the mean Spearman over all
/// targets in the panel's title.
pub fn proxies(audit: &cfmem_analysis::Audit, metric: Metric) -> NamedChart {
    let panels = audit
        .proxies
        .iter()
        .map(|p| {
            (
                labels(
                    format!("{}: Spearman {:.2}", p.name, p.spearman),
                    &format!("mem ({}, target left out)", metric.name()),
                    &p.name,
                ),
                Chart::Scatter {
                    groups: vec![("one model's documents".into(), p.points.clone())],
                },
            )
        })
        .collect();
    NamedChart {
        name: "proxies",
        chart: Chart::Panels { panels, columns: 4 },
        labels: labels(
            "Memorization proxies against counterfactual memorization".into(),
            "mem",
            "proxy",
        ),
    }
}

fn labels(title: String, x: &str, y: &str) -> Labels {
    Labels {
        title,
        x: x.into(),
        y: y.into(),
    }
}

/// `mem_histogram`: the documents' estimates.
fn histogram(a: &Analyses) -> NamedChart {
    NamedChart {
        name: "mem_histogram",
        chart: Chart::Histogram {
            values: a
                .report
                .ranked()
                .iter()
                .filter_map(|d| d.estimate.mem)
                .collect(),
            bins: 30,
        },
        labels: labels(
            format!(
                "Counterfactual memorization ({}, {} models)",
                a.report.metric().name(),
                a.report.n_models
            ),
            "mem",
            "documents",
        ),
    }
}

/// `mem_vs_in_mean`: each document's estimate against its in-models'
/// mean, one group per kind of document.
fn mem_vs_in_mean(a: &Analyses) -> NamedChart {
    let mut kinds: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for d in &a.report.ranked() {
        let kind = a
            .kinds
            .as_ref()
            .and_then(|k| k.get(d.index))
            .map_or("documents", String::as_str);
        let p = (
            d.estimate.in_mean.unwrap_or(f64::NAN),
            d.estimate.mem.unwrap_or(f64::NAN),
        );
        match kinds.iter_mut().find(|k| k.0 == kind) {
            Some(k) => k.1.push(p),
            None => kinds.push((kind.to_string(), vec![p])),
        }
    }
    NamedChart {
        name: "mem_vs_in_mean",
        chart: Chart::Scatter { groups: kinds },
        labels: labels(
            "Memorization vs performance when included".into(),
            &format!("in_mean ({})", a.report.metric().name()),
            "mem",
        ),
    }
}

/// `convergence`: split-half Spearman and its Spearman–Brown reliability
/// against the number of models, the bootstrap interval as an error bar
/// (half its width).
fn convergence(points: &[ConvergencePoint]) -> NamedChart {
    type Pick = fn(&ConvergencePoint) -> Option<(f64, Option<f64>, Option<f64>)>;
    let pts = |f: Pick| -> Vec<(f64, f64, Option<f64>)> {
        points
            .iter()
            .filter_map(|p| {
                let (y, lo, hi) = f(p)?;
                let half = lo.zip(hi).map(|(l, h)| (h - l) / 2.0);
                Some((p.n_models as f64, y, half))
            })
            .collect()
    };
    NamedChart {
        name: "convergence",
        chart: Chart::Lines {
            series: vec![
                Series {
                    label: "split-half Spearman (95% CI)".into(),
                    points: pts(|p| Some((p.spearman?, p.ci_low, p.ci_high))),
                },
                Series {
                    label: "Spearman-Brown reliability (95% CI)".into(),
                    points: pts(|p| {
                        Some((p.reliability?, p.reliability_ci_low, p.reliability_ci_high))
                    }),
                },
            ],
            log: false,
            diagonal: false,
        },
        labels: labels(
            "Convergence of the estimates".into(),
            "models",
            "rank correlation",
        ),
    }
}

/// `roc`: the membership attack's ROC curves, online and offline.
fn roc(m: &MembershipReport) -> NamedChart {
    let series = [("online", &m.online), ("offline", &m.offline)]
        .into_iter()
        .filter_map(|(name, r)| {
            let r = r.as_ref()?;
            Some(Series {
                label: format!("{name} (AUC {:.3})", r.auc),
                points: r.curve.iter().map(|&(f, t)| (f, t, None)).collect(),
            })
        })
        .collect();
    NamedChart {
        name: "roc",
        chart: Chart::Lines {
            series,
            log: true,
            diagonal: true,
        },
        labels: labels(
            "Membership inference ROC (LiRA, leave-one-model-out)".into(),
            "false positive rate",
            "true positive rate",
        ),
    }
}

/// The `mem_vs_copies` chart: the mean over documents at each copy
/// count, with its interval (0 at 0 copies).
pub fn repetition(curve: &RepetitionCurve, metric: Metric) -> NamedChart {
    let mut points = vec![(0.0, 0.0, None)];
    points.extend(curve.overall.iter().map(|p| {
        let half = (p.mem.ci_high - p.mem.ci_low) / 2.0;
        (f64::from(p.copies), p.mem.mean, Some(half))
    }));
    NamedChart {
        name: "mem_vs_copies",
        chart: Chart::Lines {
            series: vec![Series {
                label: format!("mean over documents ({:.0}% CI)", 100.0 * curve.level),
                points,
            }],
            log: false,
            diagonal: false,
        },
        labels: Labels {
            title: "Memorization by copies per epoch".into(),
            x: "copies per epoch".into(),
            y: format!("mem ({metric}, vs 0 copies)"),
        },
    }
}

/// The `replication` chart: one experiment's estimates against the other's.
pub fn replication(c: &Comparison) -> NamedChart {
    let rho = c
        .spearman
        .map_or(String::new(), |s| format!(" (Spearman {:.3})", s.r));
    NamedChart {
        name: "replication",
        chart: Chart::Scatter {
            groups: vec![(
                "documents".into(),
                c.docs.iter().map(|d| (d.a, d.b)).collect(),
            )],
        },
        labels: Labels {
            title: format!("Two experiments on the same corpus{rho}"),
            x: "mem, first experiment".into(),
            y: "mem, second experiment".into(),
        },
    }
}

/// Draw `charts` into `dir` (created) as PNG and SVG, each under its
/// name; returns the files written.
///
/// # Errors
/// [`crate::Error::Io`] for the directory; [`crate::Error::Plot`].
pub fn write_all(charts: &[NamedChart], dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for c in charts {
        written.extend(plot(&dir.join(c.name), &c.chart, &c.labels)?);
    }
    Ok(written)
}
