//! A cluster of near-duplicates against unique documents of the same kind.

use std::path::Path;

use cfmem::analysis::{
    groups, report, DesignKind, Difference, Estimate, MeanCi, Metric, ReportConfig, Uncertain,
};
use cfmem::engine::{Corpus, Document};
use cfmem::sched::{Observer, UnitSpec};

use crate::text::{secret, Hex};
use crate::{experiment, indices, Error, Result, Scale, LEVEL};

/// A cluster of near-duplicates against unique documents of the same kind.
#[derive(Debug, Clone)]
pub struct NearDuplicates {
    /// Individual memorization of the cluster's members (documents as units).
    pub members: MeanCi,
    /// Individual memorization of unique documents of the same kind.
    pub unique: MeanCi,
    /// The cluster removed as one unit (group design): its members' mean score.
    pub cluster: Estimate,
    /// unique − members (documents as units).
    pub unique_vs_member: Difference,
    /// cluster (as a unit) − members (individually), the two estimates'
    /// errors combined (Welch–Satterthwaite).
    pub cluster_vs_member: Difference,
}

/// Prediction: a document with many near-duplicates has low individual
/// counterfactual memorization (the others stand in for it), while
/// removing the whole cluster shows high memorization for the group:
/// memorized, but not localized in one document.
///
/// # Errors
/// Training or I/O errors.
pub fn near_duplicates(
    dir: &Path,
    scale: &Scale,
    observer: &dyn Observer,
) -> Result<NearDuplicates> {
    let mut docs = cfmem::bundled::short_entries(scale.n_natural)?;
    let mut hex = Hex::new(0xd0b1e);
    let base = secret(&hex.digits(32));
    for i in 0..scale.n_planted {
        let mut d = Document::new(format!("dup-{i:02}"), hex.edit(&base));
        d.group = Some("cluster".into());
        docs.push(d);
        docs.push(Document::new(
            format!("unique-{i:02}"),
            secret(&hex.digits(32)),
        ));
    }
    let corpus = Corpus::from_documents(docs)?;
    let single = experiment(
        &dir.join("documents"),
        corpus.clone(),
        None,
        DesignKind::Blocks { b: 2 },
        UnitSpec::Documents,
        scale,
        observer,
    )?;
    let rep = report(&single, &ReportConfig::default())?;
    let (member_docs, unique_docs) = (indices(&rep, "dup-"), indices(&rep, "unique-"));
    let grouped = experiment(
        &dir.join("groups"),
        corpus,
        None,
        DesignKind::Blocks { b: 2 },
        UnitSpec::GroupField,
        scale,
        observer,
    )?;
    let cluster = groups(&grouped, Metric::Accuracy)?
        .into_iter()
        .find(|g| g.members.len() > 1)
        .ok_or_else(|| Error::Missing("the cluster in the group design".into()))?
        .estimate;
    // Means over documents with the design's error (the same models score
    // them all); the cluster's estimate comes from other models.
    let members = MeanCi::over(&rep, &single, &member_docs)?;
    let cluster_vs_member = match Uncertain::of_estimate(&cluster) {
        Some(c) => Difference::between(c, members.uncertain(), LEVEL),
        None => Difference {
            welch: None,
            holds: false,
        },
    };
    Ok(NearDuplicates {
        unique_vs_member: Difference::over(&rep, &single, &unique_docs, &member_docs)?,
        unique: MeanCi::over(&rep, &single, &unique_docs)?,
        members,
        cluster,
        cluster_vs_member,
    })
}
