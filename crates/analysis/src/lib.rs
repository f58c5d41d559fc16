//! Membership designs and counterfactual memorization estimators over plain data.
//!
//! `cfmem-analysis` never touches a model (it does not depend on candle): it
//! works on a [`Membership`] matrix (model `i` × unit `j` → number of copies,
//! 0 = excluded) and on per-model score rows, so results produced by any
//! trainer can be analysed. Every analysis reads a [`Rows`] source: an
//! experiment directory (`cfmem-sched` implements [`Rows`] for it),
//! matrices imported from another trainer ([`Imported`], from CSV or
//! `.npy`), or synthetic rows with known effects ([`Synthetic`]).
//!
//! The main pieces:
//! - [`DesignConfig`] says how units are assigned to models; [`DesignConfig::row`]
//!   is a pure function of `(seed, model, unit)`, so experiments can grow.
//! - [`report()`] turns rows into one [`Estimate`] per document (in/out
//!   means, the memorization gap, its standard error and interval) under a
//!   [`ReportConfig`]; [`MemAccumulator`] is the streaming core.
//! - [`convergence()`], [`membership()`], [`influence()`], [`groups()`] and
//!   [`repetition()`] are the further analyses; [`compare()`] measures how
//!   well two independent experiments agree (replication); [`analyse`] runs those asked
//!   for into one [`Analyses`]. Their outputs (CSV, JSON, Parquet, charts,
//!   HTML, terminal tables) are `cfmem-report`'s: this crate computes and
//!   draws nothing.
//!
//! ```
//! use cfmem_analysis::{analyse, AnalysisConfig, DesignConfig, Synthetic};
//!
//! // 16 models on complementary halves of 30 documents, a third of them memorized.
//! let mem: Vec<f64> = (0..30).map(|d| if d % 3 == 0 { 0.4 } else { 0.0 }).collect();
//! let rows = Synthetic::new(DesignConfig::blocks(2, 7), 16, mem).noise(0.05).model_sd(0.1);
//! let out = analyse(&rows, &AnalysisConfig { convergence: true, ..Default::default() })?;
//! let top = out.report.ranked();
//! assert!(top[..10].iter().all(|d| d.index % 3 == 0));
//! # Ok::<(), cfmem_analysis::Error>(())
//! ```
#![deny(missing_docs)]

mod accumulator;
mod adjust;
mod analyse;
mod binary;
mod compare;
mod contrast;
mod convergence;
mod correlation;
mod design;
mod error;
mod estimate;
mod exposure;
mod fdr;
mod import;
mod influence;
mod lira;
mod membership;
mod proxies;
mod repetition;
mod report;
mod rows;
mod shrink;
mod spectrum;
mod summary;
mod synthetic;
mod tokens;
mod topics;
mod units;

pub use accumulator::MemAccumulator;
pub use adjust::{Adjuster, Adjustment};
pub use analyse::{analyse, Analyses, AnalysisConfig};
pub use compare::{compare, CompareConfig, ComparedDoc, Comparison, TopOverlap};
pub use contrast::{contrast, difference_weights, mean_weights, paired_contrast, side_contrast};
pub use convergence::{convergence, ConvergenceConfig, ConvergencePoint};
pub use correlation::{
    fisher_interval, pearson, pearson_ci, ranks, spearman, spearman_brown, spearman_ci, Correlation,
};
pub use design::{CoverageProblem, Design, DesignConfig, DesignKind, Membership, MAX_COPIES};
pub use error::{DesignProblem, Error, ImportProblem, NpyProblem, Result};
pub use estimate::{welch, Estimate, Metric, NoEstimate, RunningStats, Welch};
pub use exposure::{
    exposure, exposure_by_fit, exposure_by_rank, CanaryExposure, ExposureReport, SkewNormal,
};
pub use fdr::{discoveries, p_value, q_values, DEFAULT_FDR};
pub use import::ScoreTable;
pub use influence::{
    influence, influence_stream, HeldOut, Influence, InfluenceConfig, InfluenceEntry, InfluenceOn,
    InfluenceReport, ModelVisitor, CONFIRM_MIN_CLUSTERS,
};
pub use lira::{
    roc, roc_clustered, GaussianFit, LiraAccumulator, MembershipScore, Observation, RocSummary,
    TprAtFpr, Variance, BOOTSTRAP_REPLICATES, FPRS, TPR_CI_MIN_FALSE_POSITIVES,
};
pub use membership::{
    membership, DocMembership, MembershipConfig, MembershipReport, PER_EXAMPLE_MIN_MODELS,
};
pub use proxies::{
    audit, audit_against, min_k_pp, min_k_prob, min_k_table, proxies, zlib_ratio, zlib_size, Audit,
    ProxyAudit, ProxyTable, TokenView, CHART_POINTS, MIN_K, RMIA_GAMMA, TOP_FRACTIONS,
};
pub use repetition::{repetition, OverallPoint, RepetitionAccumulator, RepetitionCurve};
pub use report::{report, Agreement, DocEstimate, Report, ReportConfig, StandardError};
pub use rows::{
    count_rows, FirstModels, Imported, ModelRange, Row, RowVisitor, Rows, SkippedRow, Value,
};
pub use shrink::{shrink, Shrinkage, Shrunk};
pub use spectrum::{
    spectrum, DocSpectrum, KindSpectrum, LevelEstimate, LevelSummary, Spectrum, SpectrumReport,
    MAX_LEVELS,
};
pub use summary::{Difference, MeanCi, Uncertain};
pub use synthetic::Synthetic;
pub use tokens::{text_segments, text_segments_se, TokenMem, TokenMemAccumulator};
pub use units::{groups, jaccard, GroupEstimate, Units};
