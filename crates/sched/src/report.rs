//! Estimates from an experiment directory, streaming its records.

use cfmem_analysis::{Estimate, MemAccumulator, Metric};

use crate::error::Result;
use crate::experiment::Experiment;

/// The estimate of one document.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DocEstimate {
    /// Index in the corpus.
    pub index: usize,
    /// Document id.
    pub id: String,
    /// The estimate.
    #[serde(flatten)]
    pub estimate: Estimate,
}

/// Estimates for every document, and which records were used.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The metric.
    pub metric: Metric,
    /// One per document, in corpus order.
    pub docs: Vec<DocEstimate>,
    /// Models whose records were used.
    pub n_models: usize,
    /// Records skipped because they failed verification, with the reason.
    pub skipped: Vec<(usize, String)>,
}

impl Report {
    /// Documents with an estimate, most memorized first.
    pub fn ranked(&self) -> Vec<&DocEstimate> {
        let mut v: Vec<&DocEstimate> = self
            .docs
            .iter()
            .filter(|d| d.estimate.mem.is_some())
            .collect();
        v.sort_by(|a, b| {
            b.estimate
                .mem
                .partial_cmp(&a.estimate.mem)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        v
    }
}

/// Stream every valid record of `exp` into per-document estimates
/// (memory O(documents)). Invalid records are skipped and listed.
///
/// # Errors
/// I/O errors listing the runs directory.
pub fn report(exp: &Experiment, metric: Metric) -> Result<Report> {
    let n = exp.corpus().len();
    let mut acc = MemAccumulator::new(n, metric);
    let mut skipped = Vec::new();
    for i in exp.record_indices()? {
        match exp.read(i) {
            Ok(r) => {
                let scores = match metric {
                    Metric::Loss => r.loss(),
                    _ => r.accuracy(),
                };
                acc.add(&r.copies, &scores)?;
            }
            Err(e) => skipped.push((i, e.to_string())),
        }
    }
    let docs = acc
        .finish()
        .into_iter()
        .zip(exp.documents())
        .enumerate()
        .map(|(index, (estimate, d))| DocEstimate {
            index,
            id: d.id.clone(),
            estimate,
        })
        .collect();
    Ok(Report {
        metric,
        docs,
        n_models: acc.n_models(),
        skipped,
    })
}
