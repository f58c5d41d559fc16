//! Run records: one checksummed file per finished model, written atomically.
//!
//! File format (`runs/model-NNNNNN.rec`):
//! ```text
//! cfmem-record 1 <blake3 hex of the payload>\n
//! <payload: one JSON object>\n
//! ```
//! The payload holds only deterministic results, so rerunning a model on the
//! same machine and thread count writes the same bytes. Wall time and
//! ensemble/threads go into a sidecar `model-NNNNNN.meta.json`.

use std::path::Path;

use cfmem_analysis::Metric;
use cfmem_core::{DocEval, TrainStats};
use serde::{Deserialize, Serialize};

use crate::error::{io, Error, Result};

/// The results of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Model index.
    pub model: usize,
    /// Hash of the manifest it was trained under.
    pub manifest: String,
    /// Copies of each document in its subset.
    pub copies: Vec<u32>,
    /// Training summary.
    pub train: TrainStats,
    /// Evaluations on the training corpus, one per document.
    #[serde(flatten)]
    pub docs: Evals,
    /// The same on the query corpus, when the experiment has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queries: Option<Evals>,
}

/// One model's evaluations: sums over each document's predicted tokens.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Evals {
    /// Predicted tokens per document.
    pub n_tokens: Vec<u32>,
    /// Correct argmax predictions per document.
    pub n_correct: Vec<u32>,
    /// Summed negative log-likelihood per document (nats).
    pub sum_nll: Vec<f64>,
}

impl Evals {
    /// From per-document evaluations.
    pub fn new(evals: &[DocEval]) -> Self {
        Self {
            n_tokens: evals.iter().map(|e| e.n_tokens).collect(),
            n_correct: evals.iter().map(|e| e.n_correct).collect(),
            sum_nll: evals.iter().map(|e| e.sum_nll).collect(),
        }
    }

    /// Number of documents (`None` when the columns disagree).
    pub fn len(&self) -> Option<usize> {
        let n = self.n_tokens.len();
        (self.n_correct.len() == n && self.sum_nll.len() == n).then_some(n)
    }

    /// Whether there are no documents.
    pub fn is_empty(&self) -> bool {
        self.n_tokens.is_empty()
    }

    /// Document `d`'s evaluation.
    pub fn get(&self, d: usize) -> DocEval {
        DocEval {
            n_tokens: self.n_tokens[d],
            n_correct: self.n_correct[d],
            sum_nll: self.sum_nll[d],
        }
    }

    /// Per-document scores under `metric`.
    pub fn scores(&self, metric: Metric) -> Vec<f64> {
        (0..self.n_tokens.len())
            .map(|d| {
                let e = self.get(d);
                match metric {
                    Metric::Accuracy => e.accuracy(),
                    Metric::Loss => e.loss(),
                    Metric::LogProb => e.log_prob(),
                }
            })
            .collect()
    }
}

impl Record {
    /// Assemble from per-document evaluations.
    pub fn new(
        model: usize,
        manifest: String,
        copies: Vec<u32>,
        train: TrainStats,
        evals: &[DocEval],
    ) -> Self {
        Self {
            model,
            manifest,
            copies,
            train,
            docs: Evals::new(evals),
            queries: None,
        }
    }

    /// Per-document scores under `metric`.
    pub fn scores(&self, metric: Metric) -> Vec<f64> {
        self.docs.scores(metric)
    }

    /// Per-query scores under `metric` (empty without queries).
    pub fn query_scores(&self, metric: Metric) -> Vec<f64> {
        self.queries
            .as_ref()
            .map(|q| q.scores(metric))
            .unwrap_or_default()
    }
}

/// Informational sidecar of a record (not checksummed, not deterministic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RecordMeta {
    /// Wall seconds spent on the ensemble that trained this model, divided by its size.
    pub seconds: f64,
    /// Ensemble size it was trained in.
    pub ensemble: usize,
    /// Threads per worker.
    pub threads: usize,
    /// Shard label (`i/n`) of the process that trained it, if sharded.
    pub shard: Option<String>,
}

const MAGIC: &str = "cfmem-record 1 ";

/// Serialise with its checksum header.
pub(crate) fn encode(record: &Record) -> Vec<u8> {
    let payload = serde_json::to_vec(record).unwrap_or_default();
    let sum = blake3::hash(&payload).to_hex();
    let mut out = Vec::with_capacity(payload.len() + 100);
    out.extend_from_slice(MAGIC.as_bytes());
    out.extend_from_slice(sum.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&payload);
    out.push(b'\n');
    out
}

/// Parse and verify a record file's bytes.
///
/// # Errors
/// [`Error::CorruptRecord`] when the header, checksum or payload is wrong.
pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Record> {
    let bad = |m: &str| Error::CorruptRecord {
        path: path.to_path_buf(),
        message: m.to_string(),
    };
    let nl = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no header line (truncated?)"))?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| bad("header is not UTF-8"))?;
    let sum = header
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("missing 'cfmem-record 1' header"))?;
    let rest = &bytes[nl + 1..];
    let payload = rest
        .strip_suffix(b"\n")
        .ok_or_else(|| bad("payload is not terminated (truncated?)"))?;
    if blake3::hash(payload).to_hex().as_str() != sum {
        return Err(bad("checksum mismatch"));
    }
    serde_json::from_slice(payload).map_err(|e| bad(&format!("payload: {e}")))
}

/// Read and verify a record file.
///
/// # Errors
/// I/O errors and [`Error::CorruptRecord`].
pub(crate) fn read_record(path: &Path) -> Result<Record> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    decode(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            model: 3,
            manifest: "abc".into(),
            copies: vec![1, 0],
            train: TrainStats {
                steps: 2,
                tokens: 10,
                final_loss: Some(1.5),
            },
            docs: Evals {
                n_tokens: vec![4, 5],
                n_correct: vec![1, 2],
                sum_nll: vec![0.1 + 0.2, 7.0],
            },
            queries: None,
        }
    }

    #[test]
    fn roundtrip_and_corruption_detected() {
        let p = Path::new("model-000003.rec");
        let bytes = encode(&sample());
        assert_eq!(decode(p, &bytes).unwrap(), sample());
        // The payload keeps the columns at the top level.
        let payload: serde_json::Value =
            serde_json::from_slice(&bytes[bytes.iter().position(|&b| b == b'\n').unwrap()..])
                .unwrap();
        assert_eq!(payload["n_tokens"][1], 5);
        // Truncation anywhere is detected.
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(p, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        // A flipped digit in the payload fails the checksum.
        let mut flipped = bytes.clone();
        let at = flipped.len() - 5;
        flipped[at] = if flipped[at] == b'1' { b'2' } else { b'1' };
        let err = decode(p, &flipped).unwrap_err().to_string();
        assert!(
            err.contains("model-000003.rec") && err.contains("checksum"),
            "{err}"
        );
    }

    #[test]
    fn scores_by_metric() {
        let r = sample();
        assert_eq!(r.scores(Metric::Accuracy), vec![0.25, 0.4]);
        assert_eq!(r.scores(Metric::Loss), vec![(0.1 + 0.2) / 4.0, 7.0 / 5.0]);
        assert_eq!(r.scores(Metric::LogProb), vec![-(0.1 + 0.2), -7.0]);
        assert!(r.query_scores(Metric::Loss).is_empty());
    }
}
