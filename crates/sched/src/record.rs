//! Run records: one checksummed file per finished model, written atomically.
//!
//! File format (`runs/model-NNNNNN.rec`, little-endian, 18 bytes per
//! document plus 16 per query):
//! ```text
//! offset  bytes     field
//! 0       8         magic "CFMEMRC2" (record format 2)
//! 8       8         model index (u64)
//! 16      32        blake3 hash of the manifest it was trained under
//! 48      8         documents n (u64)
//! 56      8         queries q (u64; 0 without a query corpus)
//! 64      8         flags (u64): bit 0 set when the experiment has a query corpus
//! 72      8         training steps (u64)
//! 80      8         training tokens (u64)
//! 88      8         final training loss (f64; NaN when the subset was empty)
//! 96      2n        copies per document (u16)
//!         4n        predicted tokens per document (u32)
//!         4n        correct predictions per document (u32)
//!         8n        summed negative log-likelihood per document (f64, nats)
//!         16q       the same three columns for the queries
//! end−32  32        blake3 hash of every byte before it
//! ```
//! The record holds only deterministic results, so rerunning a model on the
//! same machine and thread count writes the same bytes. Wall time and
//! ensemble/threads go into a sidecar `model-NNNNNN.meta.json`.

use std::path::Path;

use cfmem_analysis::Metric;
use cfmem_core::{DocEval, TrainStats};
use serde::{Deserialize, Serialize};

use crate::error::{io, Error, RecordProblem, Result};

/// The results of one model.
#[derive(Debug, Clone, PartialEq)]
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
    pub docs: Evals,
    /// The same on the query corpus, when the experiment has one.
    pub queries: Option<Evals>,
}

/// One model's evaluations: sums over each document's predicted tokens.
#[derive(Debug, Clone, PartialEq, Default)]
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

    /// Per-document scores under `metric` (`NaN` for the extraction
    /// metrics, whose scores are kept beside the record).
    pub fn scores(&self, metric: Metric) -> Vec<f64> {
        (0..self.n_tokens.len())
            .map(|d| {
                let e = self.get(d);
                match metric {
                    Metric::Accuracy => e.accuracy(),
                    Metric::Loss => e.loss(),
                    Metric::LogProb => e.log_prob(),
                    // Kept beside the record (`Experiment::read_extraction`).
                    Metric::Extraction | Metric::ExtractionLength => f64::NAN,
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
    /// What ran its matrix products: `fp32`, `bf16/avx512-bf16` or
    /// `bf16/portable` (the same results, emulated); absent in sidecars
    /// written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

const MAGIC: &[u8; 8] = b"CFMEMRC2";
const HEADER: usize = 96;
const CHECKSUM: usize = 32;
/// Bytes per document and per query in a record.
pub const BYTES_PER_DOC: usize = 18;
const BYTES_PER_QUERY: usize = 16;

/// The raw 32 bytes of a blake3 hex digest.
///
/// # Errors
/// [`Error::InvalidManifestHash`] for anything but 64 hexadecimal digits.
pub(crate) fn hash_bytes(hex: &str) -> Result<[u8; 32]> {
    let bad = || Error::InvalidManifestHash(hex.to_string());
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serialise with its checksum (copies above 65,535 are refused by the
/// design check before any record is made; here they saturate).
///
/// # Errors
/// [`Error::InvalidManifestHash`] for a record whose manifest hash is not
/// a blake3 digest.
pub(crate) fn encode(record: &Record) -> Result<Vec<u8>> {
    let n = record.copies.len();
    let q = record.queries.as_ref().map_or(0, |e| e.n_tokens.len());
    let mut out = Vec::with_capacity(HEADER + BYTES_PER_DOC * n + BYTES_PER_QUERY * q + CHECKSUM);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(record.model as u64).to_le_bytes());
    out.extend_from_slice(&hash_bytes(&record.manifest)?);
    out.extend_from_slice(&(n as u64).to_le_bytes());
    out.extend_from_slice(&(q as u64).to_le_bytes());
    out.extend_from_slice(&u64::from(record.queries.is_some()).to_le_bytes());
    out.extend_from_slice(&(record.train.steps as u64).to_le_bytes());
    out.extend_from_slice(&record.train.tokens.to_le_bytes());
    out.extend_from_slice(&record.train.final_loss.unwrap_or(f64::NAN).to_le_bytes());
    for &c in &record.copies {
        out.extend_from_slice(&(c.min(u32::from(u16::MAX)) as u16).to_le_bytes());
    }
    let mut evals = |e: &Evals| {
        e.n_tokens
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        e.n_correct
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        e.sum_nll
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
    };
    evals(&record.docs);
    if let Some(e) = &record.queries {
        evals(e);
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    Ok(out)
}

/// A cursor over a record's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        s
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap_or_default())
    }
    fn f64(&mut self) -> f64 {
        f64::from_bits(self.u64())
    }
    fn column<T, const W: usize>(&mut self, n: usize, f: fn([u8; W]) -> T) -> Vec<T> {
        self.take(n * W)
            .chunks_exact(W)
            .map(|c| f(c.try_into().unwrap_or([0; W])))
            .collect()
    }
    fn evals(&mut self, n: usize) -> Evals {
        Evals {
            n_tokens: self.column(n, u32::from_le_bytes),
            n_correct: self.column(n, u32::from_le_bytes),
            sum_nll: self.column(n, f64::from_le_bytes),
        }
    }
}

/// Parse and verify a record file's bytes.
///
/// # Errors
/// [`Error::CorruptRecord`] when the magic, the size or the checksum is wrong.
pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Record> {
    let bad = |problem| Error::CorruptRecord {
        path: path.to_path_buf(),
        problem,
    };
    if bytes.len() < HEADER + CHECKSUM {
        return Err(bad(RecordProblem::Truncated));
    }
    if &bytes[..8] != MAGIC {
        return Err(bad(RecordProblem::NotThisFormat("record (format 2)")));
    }
    let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
    if blake3::hash(body).as_bytes() != sum {
        return Err(bad(RecordProblem::Checksum));
    }
    let mut r = Reader { bytes: body, at: 8 };
    let model = r.u64() as usize;
    let manifest = hex(r.take(32));
    let (n, q, flags) = (r.u64() as usize, r.u64() as usize, r.u64());
    let want = n
        .checked_mul(BYTES_PER_DOC)
        .and_then(|x| x.checked_add(HEADER))
        .and_then(|x| x.checked_add(q.checked_mul(BYTES_PER_QUERY)?));
    if want != Some(body.len()) {
        return Err(bad(RecordProblem::Size {
            bytes: body.len(),
            items: n + q,
            expected: want,
        }));
    }
    let train = TrainStats {
        steps: r.u64() as usize,
        tokens: r.u64(),
        final_loss: Some(r.f64()).filter(|x| !x.is_nan()),
    };
    let copies = r.column(n, |b: [u8; 2]| u32::from(u16::from_le_bytes(b)));
    let docs = r.evals(n);
    let queries = (flags & 1 == 1).then(|| r.evals(q));
    Ok(Record {
        model,
        manifest,
        copies,
        train,
        docs,
        queries,
    })
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
        let mut r = sample();
        r.manifest = blake3::hash(b"manifest").to_hex().to_string();
        let bytes = encode(&r).unwrap();
        assert_eq!(bytes.len(), 96 + 2 * BYTES_PER_DOC + 32);
        assert_eq!(decode(p, &bytes).unwrap(), r);
        // With queries, and an empty subset (no final loss).
        r.queries = Some(Evals {
            n_tokens: vec![3],
            n_correct: vec![1],
            sum_nll: vec![2.5],
        });
        r.train.final_loss = None;
        assert_eq!(decode(p, &encode(&r).unwrap()).unwrap(), r);
        // Truncation anywhere is detected.
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(p, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        // A flipped bit anywhere fails the checksum.
        for at in [9, 100, bytes.len() - 40, bytes.len() - 1] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1;
            let err = decode(p, &flipped).unwrap_err().to_string();
            assert!(
                err.contains("model-000003.rec") && err.contains("checksum"),
                "{err}"
            );
        }
        // Another format is named as such.
        let err = decode(p, b"cfmem-record 1 abc\n{}\n..........................................................................................................").unwrap_err();
        assert!(err.to_string().contains("record (format 2)"), "{err}");
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
