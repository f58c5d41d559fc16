//! The experiment directory.
//!
//! ```text
//! DIR/manifest.json          configs, design, seed, corpus fingerprint
//! DIR/corpus.jsonl           the validated corpus (the experiment is self-contained)
//! DIR/queries.jsonl          the query corpus, when the experiment has one
//! DIR/target.json            the number of models last asked for (a plain resume trains up to it)
//! DIR/runs/model-NNNNNN.rec  one checksummed record per finished model
//! DIR/runs/model-NNNNNN.meta.json  wall time, ensemble size, threads
//! DIR/runs/corrupt/          records that failed verification, moved aside
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use cfmem_core::{Corpus, Document, LoadConfig};

use crate::error::{io, Error, Result};
use crate::manifest::Manifest;
use crate::record::{read_record, record_path, Record};

/// An open experiment: its directory, manifest and corpus.
#[derive(Debug, Clone)]
pub struct Experiment {
    dir: PathBuf,
    manifest: Manifest,
    corpus: Corpus,
    queries: Option<Corpus>,
    units: cfmem_analysis::Units,
}

fn write_jsonl(path: &Path, corpus: &Corpus) -> Result<()> {
    let mut jsonl = Vec::new();
    for d in corpus.documents() {
        serde_json::to_writer(&mut jsonl, d).map_err(|e| Error::Config(e.to_string()))?;
        jsonl.push(b'\n');
    }
    crate::record::write_atomic(path, &jsonl)
}

/// What the runs directory holds for models `0..n`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    /// Models with a valid record.
    pub done: Vec<usize>,
    /// Models without a record.
    pub missing: Vec<usize>,
    /// Models whose record failed verification, with the reason.
    pub corrupt: Vec<(usize, String)>,
}

impl Experiment {
    /// Create the experiment in `dir`, or open it if `dir` already holds the
    /// same experiment.
    ///
    /// # Errors
    /// [`Error::ManifestMismatch`] listing each differing field when `dir`
    /// holds another experiment (unless `fresh`, which discards it); I/O errors.
    pub fn create(
        dir: impl AsRef<Path>,
        manifest: Manifest,
        corpus: Corpus,
        fresh: bool,
    ) -> Result<Self> {
        Self::create_with_queries(dir, manifest, corpus, None, fresh)
    }

    /// As [`Experiment::create`], with a query corpus that every model also
    /// evaluates (the manifest must describe it, see [`Manifest::with_queries`]).
    ///
    /// # Errors
    /// As [`Experiment::create`]; [`Error::Config`] when the manifest and
    /// the query corpus disagree.
    pub fn create_with_queries(
        dir: impl AsRef<Path>,
        manifest: Manifest,
        corpus: Corpus,
        queries: Option<Corpus>,
        fresh: bool,
    ) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let given = queries.as_ref().map(Corpus::fingerprint);
        if manifest.queries.as_ref().map(|q| &q.fingerprint) != given.as_ref() {
            return Err(Error::Config(
                "the manifest's query corpus does not match the one given".into(),
            ));
        }
        if fresh && dir.join("manifest.json").exists() {
            for sub in [
                "manifest.json",
                "corpus.jsonl",
                "queries.jsonl",
                "target.json",
                "log.txt",
            ] {
                let p = dir.join(sub);
                if p.exists() {
                    std::fs::remove_file(&p).map_err(io(&p))?;
                }
            }
            let runs = dir.join("runs");
            if runs.exists() {
                std::fs::remove_dir_all(&runs).map_err(io(&runs))?;
            }
        }
        if dir.join("manifest.json").exists() {
            let existing = Manifest::read(&dir)?;
            let diffs = existing.diff(&manifest);
            if !diffs.is_empty() {
                return Err(Error::ManifestMismatch { dir, diffs });
            }
            let exp = Self::open(&dir)?;
            return Ok(exp);
        }
        std::fs::create_dir_all(dir.join("runs")).map_err(io(&dir))?;
        write_jsonl(&dir.join("corpus.jsonl"), &corpus)?;
        if let Some(q) = &queries {
            write_jsonl(&dir.join("queries.jsonl"), q)?;
        }
        let units = manifest.units.build(&corpus)?;
        // The manifest last: once it exists, the corpus files are complete.
        let m = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Config(e.to_string()))?;
        crate::record::write_atomic(&dir.join("manifest.json"), &m)?;
        Ok(Self {
            dir,
            units,
            manifest,
            corpus,
            queries,
        })
    }

    /// Open an existing experiment, checking its corpus against the manifest.
    ///
    /// # Errors
    /// [`Error::NotAnExperiment`], [`Error::BadManifest`], corpus errors, and
    /// [`Error::ManifestMismatch`] when `corpus.jsonl` no longer matches.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let manifest = Manifest::read(&dir)?;
        let cfg = LoadConfig::default();
        let corpus = Corpus::load(dir.join("corpus.jsonl"), &cfg)?;
        if corpus.fingerprint() != manifest.corpus.fingerprint {
            return Err(Error::ManifestMismatch {
                dir,
                diffs: vec![format!(
                    "corpus.fingerprint: manifest {}, corpus.jsonl {}",
                    manifest.corpus.fingerprint,
                    corpus.fingerprint()
                )],
            });
        }
        let queries = match &manifest.queries {
            None => None,
            Some(info) => {
                let q = Corpus::load(dir.join("queries.jsonl"), &cfg)?;
                if q.fingerprint() != info.fingerprint {
                    return Err(Error::ManifestMismatch {
                        dir,
                        diffs: vec![
                            "queries.fingerprint: queries.jsonl does not match the manifest".into(),
                        ],
                    });
                }
                Some(q)
            }
        };
        Ok(Self {
            dir,
            units: manifest.units.build(&corpus)?,
            manifest,
            corpus,
            queries,
        })
    }

    /// The units of removal.
    pub fn units(&self) -> &cfmem_analysis::Units {
        &self.units
    }

    /// The query corpus, if the experiment has one.
    pub fn queries(&self) -> Option<&Corpus> {
        self.queries.as_ref()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The corpus.
    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }

    /// The documents.
    pub fn documents(&self) -> &[Document] {
        self.corpus.documents()
    }

    /// `DIR/runs`.
    pub fn runs_dir(&self) -> PathBuf {
        self.dir.join("runs")
    }

    /// Indices of all models with a record file (valid or not), sorted.
    pub fn record_indices(&self) -> Result<Vec<usize>> {
        let runs = self.runs_dir();
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&runs) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(&runs)(e)),
        };
        for entry in rd {
            let name = entry.map_err(io(&runs))?.file_name();
            let name = name.to_string_lossy();
            if let Some(i) = name
                .strip_prefix("model-")
                .and_then(|s| s.strip_suffix(".rec"))
                .and_then(|s| s.parse::<usize>().ok())
            {
                out.push(i);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Read and verify model `i`'s record: the checksum, the model index,
    /// the manifest hash and the number of documents.
    ///
    /// # Errors
    /// [`Error::CorruptRecord`] and I/O errors.
    pub fn read(&self, i: usize) -> Result<Record> {
        let path = record_path(&self.runs_dir(), i);
        let r = read_record(&path)?;
        let bad = |m: String| Error::CorruptRecord {
            path: path.clone(),
            message: m,
        };
        if r.model != i {
            return Err(bad(format!("holds model {} instead of {i}", r.model)));
        }
        if r.manifest != self.manifest.hash() {
            return Err(bad("was written under another manifest".into()));
        }
        let n = self.corpus.len();
        if r.copies.len() != n
            || r.n_tokens.len() != n
            || r.n_correct.len() != n
            || r.sum_nll.len() != n
        {
            return Err(bad(format!("does not have {n} documents")));
        }
        Ok(r)
    }

    /// Which of models `0..n_models` are done, missing or corrupt.
    ///
    /// # Errors
    /// I/O errors listing the runs directory.
    pub fn scan(&self, n_models: usize) -> Result<Scan> {
        let mut scan = Scan::default();
        let present: std::collections::HashSet<usize> =
            self.record_indices()?.into_iter().collect();
        for i in 0..n_models {
            if !present.contains(&i) {
                scan.missing.push(i);
                continue;
            }
            match self.read(i) {
                Ok(_) => scan.done.push(i),
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    scan.missing.push(i)
                }
                Err(e) => scan.corrupt.push((i, e.to_string())),
            }
        }
        Ok(scan)
    }

    /// Move model `i`'s record aside into `runs/corrupt/` so it is retrained.
    ///
    /// # Errors
    /// I/O errors.
    pub fn quarantine(&self, i: usize) -> Result<PathBuf> {
        let dir = self.runs_dir().join("corrupt");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let src = record_path(&self.runs_dir(), i);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dst = dir.join(format!("model-{i:06}.rec.{stamp}"));
        std::fs::rename(&src, &dst).map_err(io(&src))?;
        Ok(dst)
    }

    /// Model `i`'s sidecar (wall time, ensemble, threads, shard), if readable.
    pub fn read_meta(&self, i: usize) -> Option<crate::record::RecordMeta> {
        let bytes = std::fs::read(crate::record::meta_path(&self.runs_dir(), i)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The number of models the experiment was last asked to have
    /// (`DIR/target.json`), so that a plain resume knows when it is done.
    pub fn target_models(&self) -> Option<usize> {
        let bytes = std::fs::read(self.dir.join("target.json")).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        v.get("n_models")?.as_u64().map(|n| n as usize)
    }

    /// Record the number of models the experiment should have.
    ///
    /// # Errors
    /// I/O errors.
    pub fn set_target_models(&self, n_models: usize) -> Result<()> {
        let body = format!("{{\"n_models\": {n_models}}}\n");
        crate::record::write_atomic(&self.dir.join("target.json"), body.as_bytes())
    }

    /// Append a line to `DIR/log.txt` (best effort).
    pub fn log(&self, line: &str) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("log.txt"))
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
