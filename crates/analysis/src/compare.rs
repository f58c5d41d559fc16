//! Replication: how well two independent experiments on the same corpus
//! agree. This is the direct check of the reliability an experiment
//! reports for itself (split-half Spearman–Brown): a replication with
//! another seed (another design, and with per-model seeding other
//! initialisations) is what that figure predicts.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::convergence::{convergence, ConvergenceConfig, ConvergencePoint};
use crate::correlation::{pearson_ci, spearman_ci, Correlation};
use crate::error::{Error, Result};
use crate::report::{report, ReportConfig};
use crate::rows::Rows;

/// Settings of [`compare`].
///
/// | field | default | meaning |
/// |---|---|---|
/// | `report` | [`ReportConfig::default`] | how each side's estimates are computed |
/// | `top_k` | 10, 50 | sizes of the top lists whose overlap is reported |
/// | `split_half` | true | also compute each side's own split-half reliability (its full-model point), for the side-by-side |
#[derive(Debug, Clone, PartialEq)]
pub struct CompareConfig {
    /// The estimates.
    pub report: ReportConfig,
    /// Top-list sizes.
    pub top_k: Vec<usize>,
    /// Each side's split-half reliability too.
    pub split_half: bool,
}

impl Default for CompareConfig {
    fn default() -> Self {
        Self {
            report: ReportConfig::default(),
            top_k: vec![10, 50],
            split_half: true,
        }
    }
}

/// The overlap of the two top-`k` lists.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TopOverlap {
    /// List size.
    pub k: usize,
    /// Documents in both top lists, as a fraction of `k`.
    pub overlap: f64,
    /// The expected fraction for unrelated rankings, `k / n`.
    pub chance: f64,
}

/// One document's estimates on both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparedDoc {
    /// Its id.
    pub id: String,
    /// Memorization in the first experiment.
    pub a: f64,
    /// Memorization in the second.
    pub b: f64,
}

/// The agreement of two experiments ([`compare`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Models of each side.
    pub n_models: [usize; 2],
    /// Documents with an estimate on both sides (matched by id).
    pub n_docs: usize,
    /// Documents of each side missing from the other.
    pub n_unmatched: [usize; 2],
    /// Spearman's ρ of the estimates, with Fisher's interval (variance
    /// factor 1.06, Fieller, Hartley & Pearson 1957).
    pub spearman: Option<Correlation>,
    /// Pearson's r, with Fisher's interval.
    pub pearson: Option<Correlation>,
    /// Overlap of the top lists.
    pub top_k: Vec<TopOverlap>,
    /// Each side's own split-half point with all its models (the
    /// Spearman–Brown reliability is what the replication's ρ should be).
    pub split_half: [Option<ConvergencePoint>; 2],
    /// Every matched document (the scatter plot).
    pub docs: Vec<ComparedDoc>,
}

/// Compare the estimates of two sources on the same documents (matched by
/// id): rank and linear correlation with intervals, top-list overlap, and
/// each side's split-half reliability.
///
/// ```
/// use cfmem_analysis::{compare, CompareConfig, DesignConfig, Synthetic};
///
/// let mem: Vec<f64> = (0..40).map(|d| 0.01 * d as f64).collect();
/// let a = Synthetic::new(DesignConfig::blocks(2, 1), 16, mem.clone()).seed(1);
/// let b = Synthetic::new(DesignConfig::blocks(2, 2), 16, mem).seed(2);
/// let c = compare(&a, &b, &CompareConfig::default())?;
/// assert_eq!(c.n_docs, 40);
/// assert!(c.spearman.unwrap().r > 0.8);
/// # Ok::<(), cfmem_analysis::Error>(())
/// ```
///
/// # Errors
/// Errors of the sources; [`Error::NoCommonDocument`] when they share no
/// document.
pub fn compare(a: &dyn Rows, b: &dyn Rows, cfg: &CompareConfig) -> Result<Comparison> {
    let (ra, rb) = (report(a, &cfg.report)?, report(b, &cfg.report)?);
    let index: HashMap<&str, usize> = rb
        .docs
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.as_str(), i))
        .collect();
    let mut matched = 0;
    let mut docs = Vec::new();
    for d in &ra.docs {
        let Some(&j) = index.get(d.id.as_str()) else {
            continue;
        };
        matched += 1;
        if let (Some(x), Some(y)) = (d.estimate.mem, rb.docs[j].estimate.mem) {
            docs.push(ComparedDoc {
                id: d.id.clone(),
                a: x,
                b: y,
            });
        }
    }
    if matched == 0 {
        return Err(Error::NoCommonDocument);
    }
    let (xa, xb): (Vec<f64>, Vec<f64>) = docs.iter().map(|d| (d.a, d.b)).unzip();
    let n = docs.len();
    let top = |v: &[f64], k: usize| -> Vec<usize> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[j].total_cmp(&v[i]));
        idx.truncate(k);
        idx.sort_unstable();
        idx
    };
    let top_k = cfg
        .top_k
        .iter()
        .filter(|&&k| k > 0 && k <= n)
        .map(|&k| {
            let (ta, tb) = (top(&xa, k), top(&xb, k));
            let both = ta.iter().filter(|i| tb.binary_search(i).is_ok()).count();
            TopOverlap {
                k,
                overlap: both as f64 / k as f64,
                chance: k as f64 / n as f64,
            }
        })
        .collect();
    let split = |src: &dyn Rows| -> Result<Option<ConvergencePoint>> {
        if !cfg.split_half {
            return Ok(None);
        }
        let c = ConvergenceConfig {
            report: cfg.report,
            checkpoints: Some(Vec::new()),
            ..ConvergenceConfig::default()
        };
        Ok(convergence(src, &c)?.pop())
    };
    let level = cfg.report.level;
    Ok(Comparison {
        n_models: [ra.n_models, rb.n_models],
        n_docs: n,
        n_unmatched: [ra.docs.len() - matched, rb.docs.len() - matched],
        spearman: spearman_ci(&xa, &xb, level),
        pearson: pearson_ci(&xa, &xb, level),
        top_k,
        split_half: [split(a)?, split(b)?],
        docs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DesignConfig, Synthetic};

    #[test]
    fn identical_sources_agree_perfectly_and_unrelated_ones_do_not() {
        let mem: Vec<f64> = (0..30).map(|d| 0.01 * d as f64).collect();
        let a = Synthetic::new(DesignConfig::blocks(2, 1), 8, mem.clone()).seed(1);
        let c = compare(&a, &a, &CompareConfig::default()).unwrap();
        assert_eq!((c.n_docs, c.n_unmatched), (30, [0, 0]));
        assert!((c.spearman.unwrap().r - 1.0).abs() < 1e-12);
        assert_eq!(
            c.top_k[0],
            TopOverlap {
                k: 10,
                overlap: 1.0,
                chance: 10.0 / 30.0
            }
        );
        assert_eq!(c.top_k.len(), 1, "k = 50 exceeds the 30 documents");
        assert!(c.split_half[0].is_some());
        // No memorization and pure noise: the replication agrees at chance
        // (over 30 seed pairs ρ averaged 0.004 with SD 0.08 ≈ 1/√200).
        let flat = |s| Synthetic::new(DesignConfig::blocks(2, s), 16, vec![0.0; 200]).seed(s);
        let c = compare(&flat(100), &flat(101), &CompareConfig::default()).unwrap();
        let s = c.spearman.unwrap();
        assert!(s.ci_low < 0.0 && s.ci_high > 0.0, "{s:?}");
    }
}
