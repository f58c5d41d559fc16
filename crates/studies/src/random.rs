//! Random identifiers against one word repeated.

use std::path::Path;

use cfmem::analysis::{report, DesignKind, Difference, MeanCi, ReportConfig};
use cfmem::engine::{Corpus, Document};
use cfmem::sched::{Observer, UnitSpec};

use crate::text::Hex;
use crate::{estimates, experiment, indices, Result, Scale};

/// One document's place in the scatter plot.
#[derive(Debug, Clone, PartialEq)]
pub struct KindPoint {
    /// Its kind (random UUIDs, one word repeated, dictionary entries).
    pub kind: String,
    /// Mean per-token accuracy of the models that did not train on it.
    pub out_mean: f64,
    /// Its memorization.
    pub mem: f64,
}

/// Random identifiers against one word repeated.
#[derive(Debug, Clone)]
pub struct RandomVsPredictable {
    /// Documents of random UUIDs.
    pub random: MeanCi,
    /// Documents of "the the the …".
    pub repeated: MeanCi,
    /// Dictionary entries, for reference.
    pub natural: MeanCi,
    /// random − repeated.
    pub difference: Difference,
    /// Every document, for a scatter plot.
    pub points: Vec<KindPoint>,
}

/// Prediction: documents of random identifiers are memorized more than
/// documents of one repeated word, whose memorization is bounded by how
/// easy they are for a model that never saw them.
///
/// # Errors
/// Training or I/O errors.
pub fn random_vs_predictable(
    dir: &Path,
    scale: &Scale,
    observer: &dyn Observer,
) -> Result<RandomVsPredictable> {
    let mut docs = cfmem::bundled::short_entries(scale.n_natural)?;
    let mut hex = Hex::new(0x5eed);
    for i in 0..scale.n_planted {
        docs.push(Document::new(
            format!("uuid-{i:02}"),
            format!("{} {}", hex.uuid(), hex.uuid()),
        ));
        docs.push(Document::new(
            format!("repeated-{i:02}"),
            vec!["the"; 10 + i].join(" "),
        ));
    }
    let exp = experiment(
        dir,
        Corpus::from_documents(docs)?,
        None,
        DesignKind::Blocks { b: 2 },
        UnitSpec::Documents,
        scale,
        observer,
    )?;
    let rep = report(&exp, &ReportConfig::default())?;
    let est = estimates(&exp)?;
    let (random, repeated) = (indices(&rep, "uuid-"), indices(&rep, "repeated-"));
    let kind = |id: &str| {
        if id.starts_with("uuid-") {
            "random UUIDs"
        } else if id.starts_with("repeated-") {
            "one word repeated"
        } else {
            "dictionary entries"
        }
    };
    let natural: Vec<usize> = rep
        .docs
        .iter()
        .filter(|d| kind(&d.id) == "dictionary entries")
        .map(|d| d.index)
        .collect();
    let points = est
        .iter()
        .filter_map(|(id, e)| {
            Some(KindPoint {
                kind: kind(id).to_string(),
                out_mean: e.out_mean?,
                mem: e.mem?,
            })
        })
        .collect();
    Ok(RandomVsPredictable {
        random: MeanCi::over(&rep, &exp, &random)?,
        repeated: MeanCi::over(&rep, &exp, &repeated)?,
        natural: MeanCi::over(&rep, &exp, &natural)?,
        difference: Difference::over(&rep, &exp, &random, &repeated)?,
        points,
    })
}
