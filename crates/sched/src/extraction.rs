//! One model's extraction results (`runs/model-NNNNNN.ext`), kept when the
//! experiment asks for them (`cfmem run --extraction`), beside its record
//! and written before it. Framed like the per-token file
//! ([`crate::token_record`]): magic `CFMEMEX1`, model index, manifest hash,
//! documents `n`, then one byte per document, the matched length
//! (0 to the continuation's length, [`cfmem_core::TOO_SHORT`] when the
//! document is too short), then the blake3 of everything before.

use cfmem_analysis::Metric;
use cfmem_core::TOO_SHORT;

use crate::error::{Error, Kept, RecordProblem, Result};
use crate::experiment::Experiment;
use crate::layout::write_atomic;
use crate::token_record::{frame, unframe};

const MAGIC: &[u8; 8] = b"CFMEMEX1";

impl Experiment {
    /// Write model `i`'s matched lengths (atomically).
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn write_extraction(&self, i: usize, matched: &[u8]) -> Result<()> {
        write_atomic(
            &self.layout().extraction(i),
            &frame(MAGIC, i, &self.manifest().hash(), matched.len(), matched)?,
        )
    }

    /// Model `i`'s matched length per document: how many tokens of the
    /// continuation its greedy decoding wrote correctly before the first
    /// mistake, [`TOO_SHORT`] for a document too short.
    ///
    /// # Errors
    /// [`Error::NotKept`] when the experiment takes no extraction test;
    /// [`Error::CorruptRecord`] for a missing, damaged or foreign file.
    pub fn read_extraction(&self, i: usize) -> Result<Vec<u8>> {
        if self.manifest().extraction.is_none() {
            return Err(self.not_kept(Kept::Extraction));
        }
        let path = self.layout().extraction(i);
        let bytes = std::fs::read(&path).map_err(|source| Error::MissingBeside {
            path: path.clone(),
            what: Kept::Extraction,
            source,
        })?;
        let (model, hash, n, body) = unframe(&path, &bytes, MAGIC, "extraction file", Some)?;
        self.check_beside(&path, i, model, &hash)?;
        if n != self.documents().len() {
            return Err(Error::CorruptRecord {
                path,
                problem: RecordProblem::Documents(self.documents().len()),
            });
        }
        Ok(body.to_vec())
    }

    /// Model `i`'s per-document scores under an extraction metric
    /// ([`Metric::Extraction`]: 1 for the whole continuation, else 0;
    /// [`Metric::ExtractionLength`]: the matched length), `NaN` for a
    /// document too short.
    ///
    /// # Errors
    /// Those of [`Experiment::read_extraction`];
    /// [`Error::NotExtractionMetric`] for a metric that is not one.
    pub fn extraction_scores(&self, i: usize, metric: Metric) -> Result<Vec<f64>> {
        let exact = match metric {
            Metric::Extraction => true,
            Metric::ExtractionLength => false,
            Metric::Accuracy | Metric::Loss | Metric::LogProb => {
                return Err(Error::NotExtractionMetric(metric))
            }
        };
        let suffix = self.manifest().extraction.map_or(0, |e| e.suffix as u8);
        let score = |m: u8| {
            if exact {
                f64::from(u8::from(m == suffix))
            } else {
                f64::from(m)
            }
        };
        Ok(self
            .read_extraction(i)?
            .into_iter()
            .map(|m| if m == TOO_SHORT { f64::NAN } else { score(m) })
            .collect())
    }
}
