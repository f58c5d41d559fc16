//! Everything a report computes, in one value, and its outputs: the CSV
//! table, the JSON document and the standard charts.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::convergence::{convergence, ConvergenceConfig, ConvergencePoint};
use crate::error::{Error, Result};
use crate::estimate::Metric;
use crate::influence::{influence, InfluenceConfig, InfluenceReport};
use crate::membership::{membership, MembershipConfig, MembershipReport};
use crate::plot::{plot, Chart, Labels, Series};
use crate::repetition::{repetition, RepetitionCurve};
use crate::report::{report, Report, ReportConfig};
use crate::rows::Rows;
use crate::units::{groups, GroupEstimate};

/// Which analyses to run besides the per-document estimates.
///
/// | field | default | analysis |
/// |---|---|---|
/// | `report` | [`ReportConfig::default`] | the per-document estimates (always) |
/// | `convergence` | off | split-half agreement as models are added |
/// | `membership` | off | LiRA-style membership scores |
/// | `influence` | off | top-k counterfactual influence (its `metric` is set from `report`) |
/// | `groups` | off | memorization per unit of removal |
/// | `repetition` | off | memorization against copies per epoch |
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnalysisConfig {
    /// The estimates.
    pub report: ReportConfig,
    /// Split-half convergence.
    pub convergence: bool,
    /// Membership inference.
    pub membership: Option<MembershipConfig>,
    /// Influence.
    pub influence: Option<InfluenceConfig>,
    /// Groups.
    pub groups: bool,
    /// Repetition.
    pub repetition: bool,
}

/// The results of [`analyse`].
#[derive(Debug, Clone, PartialEq)]
pub struct Analyses {
    /// The per-document estimates.
    pub report: Report,
    /// Convergence, when asked.
    pub convergence: Option<Vec<ConvergencePoint>>,
    /// Membership scores, when asked.
    pub membership: Option<MembershipReport>,
    /// Influence, when asked.
    pub influence: Option<InfluenceReport>,
    /// Units of removal, when asked.
    pub groups: Option<Vec<GroupEstimate>>,
    /// The repetition curve, when asked.
    pub repetition: Option<RepetitionCurve>,
    /// A kind per document (for the scatter chart), from the source.
    pub kinds: Option<Vec<String>>,
    /// Each document's unit of removal when some units have several
    /// documents (`None` for a document that is its own unit).
    pub doc_groups: Option<Vec<Option<String>>>,
}

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

/// Run the estimates and every analysis `cfg` asks for over `src`.
///
/// # Errors
/// Errors of the source and of each analysis.
pub fn analyse(src: &dyn Rows, cfg: &AnalysisConfig) -> Result<Analyses> {
    let metric = cfg.report.metric;
    let report = report(src, &cfg.report)?;
    let convergence = if cfg.convergence {
        Some(convergence(
            src,
            &ConvergenceConfig {
                report: cfg.report,
                ..ConvergenceConfig::default()
            },
        )?)
    } else {
        None
    };
    let membership = cfg.membership.map(|m| membership(src, &m)).transpose()?;
    let influence = match &cfg.influence {
        Some(i) => Some(influence(
            src,
            &InfluenceConfig {
                metric,
                ..i.clone()
            },
        )?),
        None => None,
    };
    let groups = cfg.groups.then(|| groups(src, metric)).transpose()?;
    let repetition = cfg
        .repetition
        .then(|| repetition(src, metric))
        .transpose()?;
    Ok(Analyses {
        report,
        convergence,
        membership,
        influence,
        groups,
        repetition,
        kinds: src.kinds(),
        doc_groups: src.units().and_then(|u| {
            let mut size = vec![0usize; u.n_units()];
            for d in 0..u.n_docs() {
                size[u.unit_of(d)] += 1;
            }
            let g: Vec<Option<String>> = (0..u.n_docs())
                .map(|d| {
                    let unit = u.unit_of(d);
                    (size[unit] > 1).then(|| u.names()[unit].clone())
                })
                .collect();
            g.iter().any(Option::is_some).then_some(g)
        }),
    })
}

#[derive(Serialize)]
struct Json<'a> {
    metric: &'static str,
    adjustment: String,
    level: f64,
    n_models: usize,
    /// "block-clustered" or "welch".
    standard_error: &'static str,
    documents: &'a [crate::report::DocEstimate],
    #[serde(skip_serializing_if = "Option::is_none")]
    convergence: Option<&'a Vec<ConvergencePoint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    membership: Option<&'a MembershipReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    influence: Option<&'a InfluenceReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<&'a Vec<GroupEstimate>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repetition: Option<&'a RepetitionCurve>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Output(format!("{}: {e}", path.display()))
}

impl Analyses {
    /// Everything as one JSON document: `metric`, `adjustment`, `level`,
    /// `n_models`, `documents` (the CSV columns), and `convergence`,
    /// `membership`, `influence`, `groups`, `repetition` when computed.
    pub fn to_json(&self) -> serde_json::Value {
        let c = &self.report.config;
        serde_json::to_value(Json {
            metric: c.metric.name(),
            adjustment: c.adjustment.to_string(),
            level: c.level,
            n_models: self.report.n_models,
            standard_error: if self.report.block_size > 1 {
                "block-clustered"
            } else {
                "welch"
            },
            documents: &self.report.docs,
            convergence: self.convergence.as_ref(),
            membership: self.membership.as_ref(),
            influence: self.influence.as_ref(),
            groups: self.groups.as_ref(),
            repetition: self.repetition.as_ref(),
        })
        .unwrap_or_default()
    }

    /// Write [`Analyses::to_json`] to `path`.
    ///
    /// # Errors
    /// [`Error::Output`] naming the file.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.to_json())
            .map_err(|e| Error::Output(format!("{}: {e}", path.display())))?;
        std::fs::write(path, bytes).map_err(io(path))
    }

    /// Write every document's estimate as CSV:
    /// `id,index,n_in,n_out,in_mean,out_mean,mem,se,ci_low,ci_high,reason`
    /// (empty estimate columns and a `reason` where a side has no model).
    ///
    /// # Errors
    /// [`Error::Output`] naming the file.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let err = |e: csv::Error| Error::Output(format!("{}: {e}", path.display()));
        let mut w = csv::Writer::from_path(path).map_err(err)?;
        w.write_record([
            "id", "index", "n_in", "n_out", "in_mean", "out_mean", "mem", "se", "ci_low",
            "ci_high", "reason",
        ])
        .map_err(err)?;
        let o = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
        for d in &self.report.docs {
            let e = &d.estimate;
            w.write_record([
                d.id.clone(),
                d.index.to_string(),
                e.n_in.to_string(),
                e.n_out.to_string(),
                o(e.in_mean),
                o(e.out_mean),
                o(e.mem),
                o(e.se),
                o(e.ci_low),
                o(e.ci_high),
                e.reason.map(|r| r.to_string()).unwrap_or_default(),
            ])
            .map_err(err)?;
        }
        w.flush().map_err(io(path))
    }

    /// The standard charts: `mem_histogram`, `mem_vs_in_mean` (grouped by
    /// kind of document), and `convergence`, `roc`, `mem_vs_copies` for the
    /// analyses computed.
    pub fn charts(&self) -> Vec<NamedChart> {
        let metric = self.report.metric().name();
        let lab = |t: String, x: &str, y: &str| Labels {
            title: t,
            x: x.into(),
            y: y.into(),
        };
        let ranked = self.report.ranked();
        let mut charts = vec![NamedChart {
            name: "mem_histogram",
            chart: Chart::Histogram {
                values: ranked.iter().filter_map(|d| d.estimate.mem).collect(),
                bins: 30,
            },
            labels: lab(
                format!(
                    "Counterfactual memorization ({metric}, {} models)",
                    self.report.n_models
                ),
                "mem",
                "documents",
            ),
        }];
        let mut kinds: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for d in &ranked {
            let kind = self
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
        charts.push(NamedChart {
            name: "mem_vs_in_mean",
            chart: Chart::Scatter { groups: kinds },
            labels: lab(
                "Memorization vs performance when included".into(),
                &format!("in_mean ({metric})"),
                "mem",
            ),
        });
        if let Some(points) = &self.convergence {
            // The bootstrap interval as an error bar (half its width).
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
            charts.push(NamedChart {
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
                labels: lab(
                    "Convergence of the estimates".into(),
                    "models",
                    "rank correlation",
                ),
            });
        }
        if let Some(m) = &self.membership {
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
            charts.push(NamedChart {
                name: "roc",
                chart: Chart::Lines {
                    series,
                    log: true,
                    diagonal: true,
                },
                labels: lab(
                    "Membership inference ROC (LiRA, leave-one-model-out)".into(),
                    "false positive rate",
                    "true positive rate",
                ),
            });
        }
        if let Some(curve) = &self.repetition {
            charts.push(curve.chart(self.report.metric()));
        }
        charts
    }

    /// Draw [`Analyses::charts`] into `dir` (created) as PNG and SVG;
    /// returns the files written.
    ///
    /// # Errors
    /// [`Error::Output`] for the directory; [`Error::Plot`].
    pub fn write_plots(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut written = Vec::new();
        for c in self.charts() {
            written.extend(plot(&dir.join(c.name), &c.chart, &c.labels)?);
        }
        Ok(written)
    }
}

impl RepetitionCurve {
    /// The `mem_vs_copies` chart: the mean over documents at each copy
    /// count, with its interval (0 at 0 copies).
    pub fn chart(&self, metric: Metric) -> NamedChart {
        let mut points = vec![(0.0, 0.0, None)];
        points.extend(self.overall.iter().map(|p| {
            let half = (p.mem.ci_high - p.mem.ci_low) / 2.0;
            (f64::from(p.copies), p.mem.mean, Some(half))
        }));
        NamedChart {
            name: "mem_vs_copies",
            chart: Chart::Lines {
                series: vec![Series {
                    label: "mean over documents (95% CI)".into(),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DesignConfig, Synthetic};

    #[test]
    fn outputs_round_trip() {
        let rows = Synthetic::new(DesignConfig::blocks(2, 3), 8, vec![0.2, 0.0, 0.1]).seed(4);
        let a = analyse(
            &rows,
            &AnalysisConfig {
                convergence: true,
                membership: Some(MembershipConfig::default()),
                influence: Some(InfluenceConfig::default()),
                groups: true,
                repetition: true,
                ..AnalysisConfig::default()
            },
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let csv_path = dir.path().join("mem.csv");
        a.write_csv(&csv_path).unwrap();
        let mut r = csv::Reader::from_path(&csv_path).unwrap();
        let rows_read: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(rows_read.len(), 3);
        let mem: f64 = rows_read[0][6].parse().unwrap();
        assert_eq!(Some(mem), a.report.docs[0].estimate.mem);
        let json = a.to_json();
        assert_eq!(json["metric"], "accuracy");
        assert_eq!(json["adjustment"], "model-mean");
        assert_eq!(json["documents"].as_array().unwrap().len(), 3);
        assert_eq!(json["convergence"][0]["n_models"], 8);
        assert!(json["influence"]["top_units_per_query"].is_array());
        assert_eq!(json["repetition"]["copies"][0], 1);
        let names: Vec<&str> = a.charts().iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            vec![
                "mem_histogram",
                "mem_vs_in_mean",
                "convergence",
                "roc",
                "mem_vs_copies"
            ]
        );
        let written = a.write_plots(&dir.path().join("plots")).unwrap();
        assert_eq!(written.len(), 10);
    }
}
