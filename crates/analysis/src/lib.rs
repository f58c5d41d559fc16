//! Membership designs and counterfactual memorization estimators over plain data.
//!
//! `cfmem-analysis` never touches a model: it works on a [`Membership`] matrix
//! (model `i` × unit `j` → number of copies, 0 = excluded) and on per-model
//! score rows (one value per document), so results produced by any trainer
//! can be analysed.
//!
//! The main types:
//! - [`DesignConfig`] describes how units are assigned to models
//!   ([`DesignKind::Bernoulli`] or [`DesignKind::Blocks`]); [`DesignConfig::row`]
//!   is a pure function of `(seed, model, unit)`, so experiments can grow.
//! - [`MemAccumulator`] streams score rows and yields one [`Estimate`] per
//!   document: in/out means, the memorization gap, its Welch standard error
//!   and a Student-t confidence interval.
//!
//! ```
//! use cfmem_analysis::{DesignConfig, DesignKind, MemAccumulator, Metric};
//!
//! let design = DesignConfig { kind: DesignKind::Blocks { b: 2 }, seed: 7 };
//! let n_docs = 4;
//! let mut acc = MemAccumulator::new(n_docs, Metric::Accuracy);
//! for model in 0..8 {
//!     let copies = design.row(model, n_docs).unwrap();
//!     // A fake "model" that scores 0.9 on its own documents and 0.5 elsewhere.
//!     let scores: Vec<f64> = copies
//!         .iter()
//!         .enumerate()
//!         .map(|(j, &c)| if c > 0 { 0.9 } else { 0.5 } + 0.01 * (model + j) as f64)
//!         .collect();
//!     acc.add(&copies, &scores).unwrap();
//! }
//! let estimates = acc.finish();
//! assert!(estimates.iter().all(|e| e.mem.unwrap() > 0.3));
//! ```
#![deny(missing_docs)]

mod adjust;
mod convergence;
mod design;
mod error;
mod estimate;
mod hash;
mod import;
mod influence;
mod lira;
pub mod plot;
mod repetition;
mod units;

pub use adjust::{Adjuster, Adjustment};
pub use convergence::{pearson, ranks, spearman, spearman_brown, Convergence, ConvergencePoint};
pub use design::{CoverageProblem, DesignConfig, DesignKind, Membership};
pub use error::{Error, Result};
pub use estimate::{welch, Estimate, MemAccumulator, Metric, NoEstimate, RunningStats, Welch};
pub use hash::{hash_words, mix64, unit_f64, SplitMix64};
pub use import::ScoreTable;
pub use influence::{influence, Influence, InfluenceConfig, InfluenceEntry, ModelVisitor};
pub use lira::{
    roc, GaussianFit, LiraAccumulator, MembershipScore, Observation, RocSummary, Variance,
};
pub use repetition::{OverallPoint, RepetitionAccumulator, RepetitionCurve};
pub use units::{jaccard, Units};
