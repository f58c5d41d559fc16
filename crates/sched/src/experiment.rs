//! An open experiment: its directory, manifest, corpus and records.

use std::path::{Path, PathBuf};

use cfmem_core::{Corpus, Document, LoadConfig};

use crate::builder::ExperimentBuilder;
use crate::error::{io, Difference, Error, Kept, RecordProblem, Result};
use crate::layout::{write_atomic, Layout};
use crate::manifest::Manifest;
use crate::record::{encode, read_record, Evals, Record, RecordMeta};

/// An open experiment: its directory, manifest and corpus. Created or
/// resumed with [`Experiment::builder`]; opened as it is with
/// [`Experiment::open`].
#[derive(Debug, Clone)]
pub struct Experiment {
    layout: Layout,
    manifest: Manifest,
    corpus: Corpus,
    queries: Option<Corpus>,
    units: cfmem_analysis::Units,
    spectrum: Option<cfmem_analysis::Spectrum>,
}

/// What the runs directory holds for models `0..n`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    /// Models with a valid record.
    pub done: Vec<usize>,
    /// Models without a record.
    pub missing: Vec<usize>,
    /// Models whose record failed verification, with the reason.
    pub corrupt: Vec<CorruptRecord>,
}

/// A record that failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptRecord {
    /// The model index.
    pub model: usize,
    /// What is wrong (naming the file).
    pub reason: String,
}

pub(crate) fn write_jsonl(path: &Path, corpus: &Corpus) -> Result<()> {
    let mut jsonl = Vec::new();
    for d in corpus.documents() {
        serde_json::to_writer(&mut jsonl, d).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        jsonl.push(b'\n');
    }
    write_atomic(path, &jsonl)
}

impl Experiment {
    /// A builder that creates the experiment in `dir`, or resumes the one
    /// there (see [`ExperimentBuilder`]).
    pub fn builder(dir: impl Into<PathBuf>) -> ExperimentBuilder {
        ExperimentBuilder::new(dir.into())
    }

    /// Open the experiment in `dir` as it is, checking its corpus against
    /// the manifest.
    ///
    /// ```no_run
    /// let exp = cfmem_sched::Experiment::open("experiments/devil")?;
    /// println!("{} documents, {} records", exp.corpus().len(), exp.record_indices()?.len());
    /// # Ok::<(), cfmem_sched::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotAnExperiment`], [`Error::BadManifest`], corpus errors, and
    /// [`Error::ManifestMismatch`] when `corpus.jsonl` no longer matches.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let layout = Layout::new(dir.as_ref());
        let manifest = Manifest::read(&layout)?;
        let cfg = LoadConfig::default();
        let mismatch = |what: &str| Error::ManifestMismatch {
            dir: layout.dir().to_path_buf(),
            diffs: vec![Difference {
                field: format!("{what}.fingerprint"),
                existing: "the manifest's".into(),
                requested: format!("that of {what}.jsonl"),
            }],
        };
        let corpus = Corpus::load(layout.corpus(), &cfg)?;
        if corpus.fingerprint() != manifest.corpus.fingerprint {
            return Err(mismatch("corpus"));
        }
        let queries = match &manifest.queries {
            None => None,
            Some(info) => {
                let q = Corpus::load(layout.queries(), &cfg)?;
                if q.fingerprint() != info.fingerprint {
                    return Err(mismatch("queries"));
                }
                Some(q)
            }
        };
        Self::assemble(layout, manifest, corpus, queries)
    }

    pub(crate) fn assemble(
        layout: Layout,
        manifest: Manifest,
        corpus: Corpus,
        queries: Option<Corpus>,
    ) -> Result<Self> {
        Ok(Self {
            units: manifest.units.build(&corpus)?,
            spectrum: manifest
                .spectrum
                .as_ref()
                .map(|s| s.load_or_build(&corpus, &layout.spectrum()))
                .transpose()?,
            layout,
            manifest,
            corpus,
            queries,
        })
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The units of removal.
    pub fn units(&self) -> &cfmem_analysis::Units {
        &self.units
    }

    /// The nested units of a spectrum design, when the experiment has one.
    pub fn spectrum(&self) -> Option<&cfmem_analysis::Spectrum> {
        self.spectrum.as_ref()
    }

    /// Model `i`'s copies of every document: its design row over the
    /// units, expanded to their documents, or its spectrum row.
    ///
    /// # Errors
    /// [`Error::Analysis`] for a design whose settings are out of range.
    pub fn membership_row(&self, i: usize) -> Result<Vec<u32>> {
        let design = self.manifest.design().checked()?;
        Ok(match &self.spectrum {
            Some(s) => s.row(&design, i),
            None => self.units.expand(&design.row(i, self.units.n_units())),
        })
    }

    /// The units (documents, with a spectrum) that models `0..n_models`
    /// leave without a model on one side, a row at a time.
    ///
    /// # Errors
    /// As [`Experiment::membership_row`].
    pub fn coverage_problems(
        &self,
        n_models: usize,
    ) -> Result<Vec<cfmem_analysis::CoverageProblem>> {
        let design = self.manifest.design().checked()?;
        Ok(match &self.spectrum {
            Some(s) => s.coverage_problems(&design, n_models),
            None => design.coverage_problems(n_models, self.units.n_units()),
        })
    }

    /// The query corpus, if the experiment has one.
    pub fn queries(&self) -> Option<&Corpus> {
        self.queries.as_ref()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.layout.dir()
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

    /// The corpus's token table under the manifest's tokenizer: read from
    /// `DIR/tokens.bin`, or tokenized once and kept there.
    ///
    /// # Errors
    /// I/O errors writing the file.
    pub fn token_table(&self) -> Result<cfmem_core::TokenTable> {
        let tok = self.tokenizer()?;
        crate::tokens::load_or_build(
            &self.layout.tokens(),
            &self.corpus,
            &self.manifest.tokenizer,
            tok.as_ref(),
        )
    }

    /// The manifest's tokenizer, built (a Hugging Face one from
    /// `DIR/tokenizer.json`, checked against its fingerprint).
    ///
    /// # Errors
    /// I/O errors; [`Error::Core`] when `tokenizer.json` does not match the
    /// manifest.
    pub fn tokenizer(&self) -> Result<Box<dyn cfmem_core::Tokenizer>> {
        let json = match &self.manifest.tokenizer {
            cfmem_core::TokenizerConfig::Byte => None,
            _ => {
                let p = self.layout.tokenizer();
                Some(std::fs::read(&p).map_err(io(&p))?)
            }
        };
        Ok(self.manifest.tokenizer.build(json.as_deref())?)
    }

    /// The same for the query corpus, when there is one.
    ///
    /// # Errors
    /// I/O errors writing the file.
    pub fn query_token_table(&self) -> Result<Option<cfmem_core::TokenTable>> {
        self.queries
            .as_ref()
            .map(|q| {
                let tok = self.tokenizer()?;
                crate::tokens::load_or_build(
                    &self.layout.query_tokens(),
                    q,
                    &self.manifest.tokenizer,
                    tok.as_ref(),
                )
            })
            .transpose()
    }

    /// The file of model `i`'s record (it may not exist).
    pub fn record_path(&self, i: usize) -> PathBuf {
        self.layout.record(i)
    }

    /// Indices of all models with a record file (valid or not), sorted.
    ///
    /// # Errors
    /// I/O errors listing the runs directory.
    pub fn record_indices(&self) -> Result<Vec<usize>> {
        self.layout.record_indices()
    }

    /// One past the highest model index with a record file (0 when none):
    /// the size of the experiment as trained so far.
    ///
    /// # Errors
    /// I/O errors listing the runs directory.
    pub fn n_recorded(&self) -> Result<usize> {
        Ok(self.record_indices()?.last().map_or(0, |&i| i + 1))
    }

    /// Read and verify model `i`'s record: the checksum, the model index,
    /// the manifest hash and the number of documents (and queries).
    ///
    /// # Errors
    /// [`Error::CorruptRecord`] and I/O errors.
    pub fn read(&self, i: usize) -> Result<Record> {
        let path = self.layout.record(i);
        let r = read_record(&path)?;
        if r.model != i {
            return Err(Error::CorruptRecord {
                path,
                problem: RecordProblem::OtherModel {
                    found: r.model,
                    expected: i,
                },
            });
        }
        self.fits(&path, &r)?;
        Ok(r)
    }

    /// Store a record made elsewhere (e.g. results imported from another
    /// trainer, or synthetic ones for a benchmark), after checking that it
    /// fits this experiment: the manifest hash and the numbers of documents
    /// and queries. A record already there is replaced.
    ///
    /// # Errors
    /// [`Error::CorruptRecord`] naming what does not fit; I/O errors.
    pub fn store(&self, record: &Record) -> Result<()> {
        self.fits(&self.layout.record(record.model), record)?;
        self.write(record, &RecordMeta::default())
    }

    /// [`Error::NotKept`] for `what`, naming the directory.
    pub(crate) fn not_kept(&self, what: Kept) -> Error {
        Error::NotKept {
            dir: self.dir().to_path_buf(),
            what,
        }
    }

    /// Whether a file beside a record (at `path`, holding `model`'s results
    /// under manifest `hash`) is model `i`'s, of this experiment.
    pub(crate) fn check_beside(
        &self,
        path: &Path,
        i: usize,
        model: usize,
        hash: &str,
    ) -> Result<()> {
        let bad = |problem| {
            Err(Error::CorruptRecord {
                path: path.to_path_buf(),
                problem,
            })
        };
        if model != i {
            return bad(RecordProblem::OtherModel {
                found: model,
                expected: i,
            });
        }
        if !self.manifest.ties(hash) {
            return bad(RecordProblem::OtherManifest);
        }
        Ok(())
    }

    /// Whether `r` (at `path`) belongs to this experiment: its manifest
    /// hash, and its numbers of documents and queries.
    fn fits(&self, path: &Path, r: &Record) -> Result<()> {
        let bad = |problem| {
            Err(Error::CorruptRecord {
                path: path.to_path_buf(),
                problem,
            })
        };
        if !self.manifest.ties(&r.manifest) {
            return bad(RecordProblem::OtherManifest);
        }
        let n = self.corpus.len();
        if r.copies.len() != n || r.docs.len() != Some(n) {
            return bad(RecordProblem::Documents(n));
        }
        let nq = self.queries.as_ref().map(Corpus::len);
        if r.queries.as_ref().map(Evals::len) != nq.map(Some) {
            return bad(RecordProblem::Queries(nq.unwrap_or(0)));
        }
        Ok(())
    }

    /// Write model `i`'s record and sidecar (sidecar first, both atomic).
    pub(crate) fn write(&self, record: &Record, meta: &RecordMeta) -> Result<()> {
        let i = record.model;
        write_atomic(
            &self.layout.meta(i),
            &serde_json::to_vec_pretty(meta).unwrap_or_default(),
        )?;
        write_atomic(&self.layout.record(i), &encode(record)?)
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
                Err(e) => scan.corrupt.push(CorruptRecord {
                    model: i,
                    reason: e.to_string(),
                }),
            }
        }
        Ok(scan)
    }

    /// Move model `i`'s record aside into `runs/corrupt/` so it is retrained.
    pub(crate) fn quarantine(&self, i: usize) -> Result<PathBuf> {
        let dir = self.layout.corrupt();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let src = self.layout.record(i);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dst = self.layout.quarantined(i, stamp);
        std::fs::rename(&src, &dst).map_err(io(&src))?;
        Ok(dst)
    }

    /// Model `i`'s sidecar (wall time, ensemble, threads, shard), if readable.
    pub fn read_meta(&self, i: usize) -> Option<RecordMeta> {
        let bytes = std::fs::read(self.layout.meta(i)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The number of models the experiment was last asked to have, so that
    /// a plain resume knows when it is done.
    pub fn target_models(&self) -> Option<usize> {
        let bytes = std::fs::read(self.layout.target()).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        v.get("n_models")?.as_u64().map(|n| n as usize)
    }

    /// Record the number of models the experiment should have.
    ///
    /// # Errors
    /// I/O errors.
    pub fn set_target_models(&self, n_models: usize) -> Result<()> {
        let body = format!("{{\"n_models\": {n_models}}}\n");
        write_atomic(&self.layout.target(), body.as_bytes())
    }

    /// Append a line to the experiment's log (best effort).
    pub fn log(&self, line: &str) {
        self.layout.append_log(line);
    }
}
