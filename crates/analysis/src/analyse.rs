//! Everything a report computes, in one value: [`analyse`] runs the
//! analyses asked for. Their outputs (CSV, JSON, Parquet, charts, HTML,
//! terminal tables) live in `cfmem-report`.

use crate::convergence::{convergence, ConvergenceConfig, ConvergencePoint};
use crate::error::{Error, Result};
use crate::influence::{influence, InfluenceConfig, InfluenceReport};
use crate::membership::{membership, MembershipConfig, MembershipReport};
use crate::proxies::{audit, proxies, Audit};
use crate::repetition::{repetition, RepetitionCurve};
use crate::report::{report, Report, ReportConfig};
use crate::rows::Rows;
use crate::shrink::{shrink, Shrinkage};
use crate::spectrum::{spectrum, SpectrumReport};
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
/// | `shrink` | off | empirical-Bayes shrunk estimates beside the raw ones ([`crate::shrink`]) |
/// | `proxies` | off | single-model memorization proxies audited against the estimates ([`crate::audit`]) |
/// | `spectrum` | off | memorization at every level of a spectrum design ([`crate::spectrum()`]) |
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
    /// Shrinkage.
    pub shrink: bool,
    /// The proxy audit.
    pub proxies: bool,
    /// The spectrum.
    pub spectrum: bool,
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
    /// The shrunk estimates, when asked.
    pub shrinkage: Option<Shrinkage>,
    /// The proxy audit, when asked.
    pub audit: Option<Audit>,
    /// The spectrum, when asked.
    pub spectrum: Option<SpectrumReport>,
    /// The canaries' exposure, when the source ranks them (an experiment
    /// with `--canaries`; set by the caller, e.g.
    /// `cfmem_sched::Experiment::exposure`).
    pub exposure: Option<crate::ExposureReport>,
    /// A kind per document (for the scatter chart), from the source.
    pub kinds: Option<Vec<String>>,
    /// Each document's unit of removal when some units have several
    /// documents (`None` for a document that is its own unit).
    pub doc_groups: Option<Vec<Option<String>>>,
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
    // The pooled AUC's and TPRs' intervals at the report's level.
    let membership = cfg
        .membership
        .map(|m| {
            membership(
                src,
                &MembershipConfig {
                    level: cfg.report.level,
                    ..m
                },
            )
        })
        .transpose()?;
    let influence = match &cfg.influence {
        Some(i) => Some(influence(
            src,
            &InfluenceConfig {
                metric,
                level: cfg.report.level,
                ..i.clone()
            },
        )?),
        None => None,
    };
    let groups = cfg.groups.then(|| groups(src, metric)).transpose()?;
    let repetition = cfg
        .repetition
        .then(|| repetition(src, metric, cfg.report.level))
        .transpose()?;
    let shrinkage = cfg.shrink.then(|| shrink(&report)).transpose()?;
    let audit = if cfg.proxies {
        let tables = proxies(src, src.texts().as_deref())?;
        Some(audit(&report, src, &tables, crate::DEFAULT_FDR, 0xa0d17)?)
    } else {
        None
    };
    let spectrum = if cfg.spectrum {
        let s = src.spectrum().ok_or(Error::NoSpectrum)?;
        let tokens = src.doc_tokens()?.unwrap_or_else(|| vec![1; s.n_docs()]);
        let kinds = src.kinds();
        Some(spectrum(
            src,
            s,
            &tokens,
            kinds.as_deref(),
            metric,
            cfg.report.level,
        )?)
    } else {
        None
    };
    Ok(Analyses {
        spectrum,
        shrinkage,
        audit,
        exposure: None,
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
