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

use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// Predicted tokens per document.
    pub n_tokens: Vec<u32>,
    /// Correct argmax predictions per document.
    pub n_correct: Vec<u32>,
    /// Summed negative log-likelihood per document (nats).
    pub sum_nll: Vec<f64>,
    /// The same on the query corpus, when the experiment has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queries: Option<QueryEvals>,
}

/// Evaluations on the query corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryEvals {
    /// Predicted tokens per query.
    pub n_tokens: Vec<u32>,
    /// Correct argmax predictions per query.
    pub n_correct: Vec<u32>,
    /// Summed negative log-likelihood per query (nats).
    pub sum_nll: Vec<f64>,
}

impl QueryEvals {
    /// From per-query evaluations.
    pub fn new(evals: &[DocEval]) -> Self {
        Self {
            n_tokens: evals.iter().map(|e| e.n_tokens).collect(),
            n_correct: evals.iter().map(|e| e.n_correct).collect(),
            sum_nll: evals.iter().map(|e| e.sum_nll).collect(),
        }
    }
}

fn scores(
    metric: cfmem_analysis::Metric,
    n_tokens: &[u32],
    n_correct: &[u32],
    sum_nll: &[f64],
) -> Vec<f64> {
    use cfmem_analysis::Metric;
    (0..n_tokens.len())
        .map(|d| {
            let n = f64::from(n_tokens[d].max(1));
            match metric {
                Metric::Loss => sum_nll[d] / n,
                Metric::LogProb => -sum_nll[d],
                _ => f64::from(n_correct[d]) / n,
            }
        })
        .collect()
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
            n_tokens: evals.iter().map(|e| e.n_tokens).collect(),
            n_correct: evals.iter().map(|e| e.n_correct).collect(),
            sum_nll: evals.iter().map(|e| e.sum_nll).collect(),
            queries: None,
        }
    }

    /// Per-document accuracy.
    pub fn accuracy(&self) -> Vec<f64> {
        self.n_correct
            .iter()
            .zip(&self.n_tokens)
            .map(|(&c, &n)| f64::from(c) / f64::from(n.max(1)))
            .collect()
    }

    /// Per-document scores under `metric`.
    pub fn scores(&self, metric: cfmem_analysis::Metric) -> Vec<f64> {
        scores(metric, &self.n_tokens, &self.n_correct, &self.sum_nll)
    }

    /// Per-query scores under `metric` (empty without queries).
    pub fn query_scores(&self, metric: cfmem_analysis::Metric) -> Vec<f64> {
        match &self.queries {
            Some(q) => scores(metric, &q.n_tokens, &q.n_correct, &q.sum_nll),
            None => Vec::new(),
        }
    }

    /// Per-document mean loss (nats/token).
    pub fn loss(&self) -> Vec<f64> {
        self.sum_nll
            .iter()
            .zip(&self.n_tokens)
            .map(|(&s, &n)| s / f64::from(n.max(1)))
            .collect()
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

/// The record path of model `i` in `runs_dir`.
pub fn record_path(runs_dir: &Path, i: usize) -> PathBuf {
    runs_dir.join(format!("model-{i:06}.rec"))
}

/// The sidecar path of model `i`.
pub fn meta_path(runs_dir: &Path, i: usize) -> PathBuf {
    runs_dir.join(format!("model-{i:06}.meta.json"))
}

const MAGIC: &str = "cfmem-record 1 ";

/// Serialise with its checksum header.
pub fn encode(record: &Record) -> Vec<u8> {
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
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Record> {
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
pub fn read_record(path: &Path) -> Result<Record> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    decode(path, &bytes)
}

/// Write `bytes` to `path` atomically: a temp file in the same directory,
/// fsync, rename, fsync of the directory.
///
/// # Errors
/// I/O errors naming the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    // Fault injection for the kill tests: widen the window between the
    // temp file and the rename, so a test can kill a process mid-write.
    if let Some(ms) = std::env::var("CFMEM_FAULT_WRITE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Directory fsync makes the rename durable; not supported everywhere.
        let _ = d.sync_all();
    }
    Ok(())
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
            n_tokens: vec![4, 5],
            n_correct: vec![1, 2],
            sum_nll: vec![0.1 + 0.2, 7.0],
            queries: None,
        }
    }

    #[test]
    fn roundtrip_and_corruption_detected() {
        let p = Path::new("model-000003.rec");
        let bytes = encode(&sample());
        assert_eq!(decode(p, &bytes).unwrap(), sample());
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
    fn atomic_write_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.rec");
        write_atomic(&p, b"hello").unwrap();
        write_atomic(&p, b"world").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"world");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
