//! Memorization by number of copies.

use std::path::Path;

use cfmem::analysis::{repetition as curve_of, DesignKind, MeanCi, Metric, RepetitionCurve};
use cfmem::engine::Corpus;
use cfmem::sched::{Observer, UnitSpec};

use crate::{experiment, Error, Result, Scale};

/// Memorization at one copy count.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// Copies per epoch.
    pub copies: u32,
    /// Mean over documents of `mem(copies)` against 0 copies, with its interval.
    pub mem: MeanCi,
}

/// Memorization by number of copies.
#[derive(Debug, Clone)]
pub struct RepetitionStudy {
    /// One per copy count above 0, ascending.
    pub levels: Vec<Level>,
    /// Per document `mem(4) − mem(1)`, averaged (paired over documents),
    /// with the design's error.
    pub four_vs_one: MeanCi,
    /// Per document `mem(2) − mem(1)`.
    pub two_vs_one: MeanCi,
    /// The whole curve (per document and averaged).
    pub curve: RepetitionCurve,
}

/// Prediction: a document included with more copies per epoch (1, 2, 4)
/// is memorized more.
///
/// # Errors
/// Training or I/O errors.
pub fn repetition(dir: &Path, scale: &Scale, observer: &dyn Observer) -> Result<RepetitionStudy> {
    let docs = cfmem::bundled::short_entries(scale.n_natural)?;
    let design = DesignKind::Repetition {
        copies: vec![0, 1, 2, 4],
        probs: vec![0.25; 4],
    };
    let exp = experiment(
        dir,
        Corpus::from_documents(docs)?,
        None,
        design,
        UnitSpec::Documents,
        scale,
        observer,
    )?;
    let curve = curve_of(&exp, Metric::Accuracy, 0.95)?;
    let paired = |hi, lo| {
        curve
            .paired(&exp, Metric::Accuracy, hi, lo)?
            .ok_or_else(|| Error::Missing(format!("the {hi}- or {lo}-copy level")))
    };
    Ok(RepetitionStudy {
        four_vs_one: paired(4, 1)?,
        two_vs_one: paired(2, 1)?,
        levels: curve
            .overall
            .iter()
            .map(|p| Level {
                copies: p.copies,
                mem: p.mem,
            })
            .collect(),
        curve,
    })
}
