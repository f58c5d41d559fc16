//! Everything as one JSON document.

use std::path::Path;

use cfmem_analysis::{
    discoveries, Analyses, ConvergencePoint, DocEstimate, GroupEstimate, InfluenceReport,
    MembershipReport, RepetitionCurve, Shrinkage, DEFAULT_FDR,
};
use serde::Serialize;

use crate::error::{io, Error, Result};

#[derive(Serialize)]
struct Json<'a> {
    metric: &'static str,
    adjustment: String,
    level: f64,
    n_models: usize,
    /// "block-clustered", "welch", or the 0/1 metrics' interval.
    standard_error: String,
    documents: &'a [DocEstimate],
    /// Per document, its Benjamini–Hochberg q-value of `mem > 0`.
    q_values: Vec<Option<f64>>,
    /// The false discovery rate `discoveries` counts at.
    fdr: f64,
    /// Documents with a q-value at most `fdr`.
    discoveries: usize,
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
    /// The shrunk estimates (`docs` in corpus order) and the fitted prior.
    #[serde(skip_serializing_if = "Option::is_none")]
    shrinkage: Option<&'a Shrinkage>,
    /// The proxy audit.
    #[serde(skip_serializing_if = "Option::is_none")]
    proxies: Option<&'a cfmem_analysis::Audit>,
    /// The canaries' exposure.
    #[serde(skip_serializing_if = "Option::is_none")]
    exposure: Option<&'a cfmem_analysis::ExposureReport>,
    /// The spectrum.
    #[serde(skip_serializing_if = "Option::is_none")]
    spectrum: Option<&'a cfmem_analysis::SpectrumReport>,
}

/// Everything as one JSON document (`cfmem report --json`): `metric`,
/// `adjustment`, `level`, `n_models`, `standard_error`, `documents` (the
/// CSV columns but the q-value), `q_values`, `fdr`, `discoveries`, and `convergence`, `membership`, `influence`, `groups`,
/// `repetition`, `shrinkage`, `proxies`, `exposure`, `spectrum` when computed.
pub fn to_value(a: &Analyses) -> serde_json::Value {
    let c = &a.report.config;
    let q = a.report.q_values();
    serde_json::to_value(Json {
        metric: c.metric.name(),
        adjustment: c.adjustment.to_string(),
        level: c.level,
        n_models: a.report.n_models,
        standard_error: a.report.standard_error().label().to_lowercase(),
        documents: &a.report.docs,
        discoveries: discoveries(&q, DEFAULT_FDR),
        q_values: q,
        fdr: DEFAULT_FDR,
        convergence: a.convergence.as_ref(),
        membership: a.membership.as_ref(),
        influence: a.influence.as_ref(),
        groups: a.groups.as_ref(),
        repetition: a.repetition.as_ref(),
        shrinkage: a.shrinkage.as_ref(),
        proxies: a.audit.as_ref(),
        spectrum: a.spectrum.as_ref(),
        exposure: a.exposure.as_ref(),
    })
    .unwrap_or_default()
}

/// Write [`to_value`] of `a` to `path`.
///
/// # Errors
/// [`Error::Json`] or [`Error::Io`] naming the file.
pub fn write(a: &Analyses, path: &Path) -> Result<()> {
    write_value(&to_value(a), path)
}

/// Write any serialisable result (e.g. a [`cfmem_analysis::Comparison`])
/// as pretty-printed JSON.
///
/// # Errors
/// [`Error::Json`] or [`Error::Io`] naming the file.
pub fn write_value(value: &impl Serialize, path: &Path) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(path, bytes).map_err(io(path))
}
