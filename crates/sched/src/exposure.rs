//! One model's scores of the exposure candidates (`runs/model-NNNNNN.xps`),
//! kept when the experiment ranks canaries (`cfmem run --canaries`), beside
//! its record and written before it. Framed like the per-token file
//! ([`crate::token_record`]): magic `CFMEMXP1`, model index, manifest hash,
//! candidates `n`, then each candidate text's negative log-likelihood
//! (nats, `f32` little-endian, in the order of
//! [`cfmem_core::ExposureConfig::secrets`]), then the blake3 of everything
//! before.

use std::collections::hash_map::{Entry, HashMap};

use cfmem_analysis::{exposure, CanaryExposure, ExposureReport, Report, RunningStats};

use crate::error::{Error, Kept, RecordProblem, Result};
use crate::experiment::Experiment;
use crate::layout::write_atomic;
use crate::token_record::{frame, unframe};

const MAGIC: &[u8; 8] = b"CFMEMXP1";

impl Experiment {
    /// Write model `i`'s candidate scores (atomically).
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn write_exposure(&self, i: usize, nll: &[f32]) -> Result<()> {
        let body: Vec<u8> = nll.iter().flat_map(|x| x.to_le_bytes()).collect();
        write_atomic(
            &self.layout().exposure(i),
            &frame(MAGIC, i, &self.manifest().hash(), nll.len(), &body)?,
        )
    }

    /// Model `i`'s negative log-likelihood (nats) of each exposure
    /// candidate's text.
    ///
    /// # Errors
    /// [`Error::NotKept`] when the experiment ranks no canaries;
    /// [`Error::CorruptRecord`] for a missing, damaged or foreign file.
    pub fn read_exposure(&self, i: usize) -> Result<Vec<f32>> {
        let Some(cfg) = &self.manifest().exposure else {
            return Err(self.not_kept(Kept::Exposure));
        };
        let path = self.layout().exposure(i);
        let bytes = std::fs::read(&path).map_err(|source| Error::MissingBeside {
            path: path.clone(),
            what: Kept::Exposure,
            source,
        })?;
        let (model, hash, n, body) =
            unframe(&path, &bytes, MAGIC, "exposure file", |n| n.checked_mul(4))?;
        self.check_beside(&path, i, model, &hash)?;
        let expected = cfg.n_candidates();
        if n != expected {
            return Err(Error::CorruptRecord {
                path,
                problem: RecordProblem::Documents(expected),
            });
        }
        Ok(body
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// The exposure of every canary of the corpus (each document whose
    /// text is the exposure prefix and a secret of its format), under every
    /// model with a record and candidate scores: mean exposure over the
    /// models that trained on it and over those that did not, beside its
    /// counterfactual memorization in `report`. Exact ranks when the
    /// candidates are every secret of the format (the canary's own taken
    /// out), the skew-normal approximation of Carlini et al. (2019) when
    /// they are a sample ([`cfmem_analysis::exposure`]). `None` when the
    /// experiment ranks no canaries. Models whose files cannot be read are
    /// left out, as [`crate::Experiment`]'s reports leave them out.
    ///
    /// # Errors
    /// I/O errors listing the runs.
    pub fn exposure(&self, report: &Report) -> Result<Option<ExposureReport>> {
        let Some(cfg) = self.manifest().exposure.clone() else {
            return Ok(None);
        };
        let (secrets, exhaustive) = cfg.secrets(self.manifest().seed);
        let bits = cfg.format.bits();
        // One entry per canary: the copies of a canary planted several
        // times are documents of one text in one group, ranked once (at
        // the first). Canaries that drew the same secret by chance but are
        // removed apart stay apart.
        let mut canaries: Vec<(usize, &str)> = Vec::new();
        let mut copies: Vec<usize> = Vec::new();
        let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
        for (d, doc) in self.documents().iter().enumerate() {
            let Some(s) = cfg.secret_of(&doc.text) else {
                continue;
            };
            match seen.entry((s, doc.group.as_deref().unwrap_or(&doc.id))) {
                Entry::Occupied(k) => copies[*k.get()] += 1,
                Entry::Vacant(v) => {
                    v.insert(canaries.len());
                    canaries.push((d, s));
                    copies.push(1);
                }
            }
        }
        let mut stats = vec![(RunningStats::default(), RunningStats::default()); canaries.len()];
        for i in self.record_indices()? {
            let (Ok(r), Ok(cand)) = (self.read(i), self.read_exposure(i)) else {
                continue;
            };
            for (k, &(d, secret)) in canaries.iter().enumerate() {
                let others: Vec<f64> = cand
                    .iter()
                    .zip(&secrets)
                    .filter(|(_, s)| s.as_str() != secret)
                    .map(|(&x, _)| f64::from(x))
                    .collect();
                let e = exposure(r.docs.get(d).sum_nll, &others, bits, exhaustive);
                if e.is_finite() {
                    let side = if r.copies[d] > 0 {
                        &mut stats[k].0
                    } else {
                        &mut stats[k].1
                    };
                    side.push(e);
                }
            }
        }
        let mean = |s: &RunningStats| (s.n > 0).then_some(s.mean);
        Ok(Some(ExposureReport {
            format: cfg.format.to_string(),
            bits,
            candidates: secrets.len(),
            exhaustive,
            canaries: canaries
                .iter()
                .zip(&stats)
                .zip(&copies)
                .map(|((&(d, _), (inn, out)), &copies)| CanaryExposure {
                    index: d,
                    id: self.documents()[d].id.clone(),
                    copies,
                    mem: report.docs.get(d).and_then(|x| x.estimate.mem),
                    exposure_in: mean(inn),
                    n_in: inn.n,
                    exposure_out: mean(out),
                    n_out: out.n,
                })
                .collect(),
        }))
    }
}
