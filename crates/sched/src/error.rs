use std::path::PathBuf;

use thiserror::Error;

/// Errors of the scheduler. Each names the directory, file, model or
/// setting at fault and keeps the underlying error as its source.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// File-system trouble, with the path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A manifest that cannot be read.
    #[error("{}: unreadable manifest: {problem}", path.display())]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        problem: ManifestProblem,
    },
    /// The experiment directory holds a different experiment.
    #[error("{}: the existing experiment differs from this one:\n{}", dir.display(), diffs.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n"))]
    ManifestMismatch {
        /// The experiment directory.
        dir: PathBuf,
        /// One per differing field.
        diffs: Vec<Difference>,
    },
    /// A record (or a file beside it) that fails its checks.
    #[error("{}: corrupt record: {problem}", path.display())]
    CorruptRecord {
        /// The record file.
        path: PathBuf,
        /// What is wrong.
        problem: RecordProblem,
    },
    /// A file beside a record that is not there (per-token or extraction
    /// results).
    #[error("{}: no {what} ({source})", path.display())]
    MissingBeside {
        /// The file.
        path: PathBuf,
        /// What it holds.
        what: Kept,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A directory with no manifest.
    #[error("{}: not a cfmem experiment (no manifest.json)", .0.display())]
    NotAnExperiment(PathBuf),
    /// A new experiment was asked for without a corpus.
    #[error("{}: no experiment here yet, and no corpus was given to create one", .0.display())]
    NoCorpus(PathBuf),
    /// Results the experiment does not keep (a new experiment that keeps
    /// them is needed).
    #[error("{}: the experiment keeps no {what}; create a new experiment that keeps them", dir.display())]
    NotKept {
        /// The experiment directory.
        dir: PathBuf,
        /// What was asked for.
        what: Kept,
    },
    /// Some models of a run failed; the records of the others are written.
    #[error("{}", models_failed(.0))]
    ModelsFailed(Box<crate::RunSummary>),
    /// Training or evaluating a model failed.
    #[error("model {model}: {source}")]
    Model {
        /// The model index.
        model: usize,
        /// The underlying error (boxed: it is the largest).
        source: Box<cfmem_core::Error>,
    },
    /// A checkpoint to start from that cannot be used.
    #[error("{}: {source}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// The underlying error (boxed: it is the largest).
        source: Box<cfmem_core::Error>,
    },
    /// The kept checkpoint is not the one the manifest names.
    #[error("{}: fingerprint {found}, the manifest {expected}", path.display())]
    CheckpointChanged {
        /// The checkpoint file.
        path: PathBuf,
        /// Its blake3.
        found: String,
        /// The manifest's.
        expected: String,
    },
    /// A core error outside any model (corpus, config).
    #[error(transparent)]
    Core(Box<cfmem_core::Error>),
    /// An analysis error.
    #[error(transparent)]
    Analysis(#[from] cfmem_analysis::Error),
    /// A setting out of its range.
    #[error("invalid {setting} {value}: {expected}")]
    InvalidSetting {
        /// The setting.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A value that does not parse (units, shards, seeding).
    #[error("{what} {input:?}: expected {expected}")]
    Parse {
        /// What was being read.
        what: &'static str,
        /// The text given.
        input: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A cluster engine's variable that cannot give a shard.
    #[error("{variable}={value:?}: {problem}")]
    ShardVariable {
        /// The environment variable.
        variable: &'static str,
        /// Its value (empty when it is the missing partner of another).
        value: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A metric that is not an extraction metric, asked of extraction results.
    #[error("{0} is not an extraction metric")]
    NotExtractionMetric(cfmem_analysis::Metric),
    /// A `regex:` unit specification that is not a regular expression.
    #[error("units regex:{pattern}: not a regular expression: {source}")]
    UnitRegex {
        /// The pattern.
        pattern: String,
        /// The parser's error.
        source: regex::Error,
    },
    /// A JSON file that could not be written.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// A job's thread pool could not be started.
    #[error("thread pool: {0}")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
    /// A manifest hash that is not 64 hexadecimal digits (records and the
    /// files beside them store it as its 32 bytes).
    #[error("manifest hash {0:?} is not 64 hexadecimal digits")]
    InvalidManifestHash(String),
}

/// What is wrong with a manifest.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ManifestProblem {
    /// Not JSON, or not a manifest.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// No `format_version` field.
    #[error("no format_version")]
    NoVersion,
    /// A format this version of cfmem does not read.
    #[error("format version {found}, but this cfmem reads version {supported} only: the experiment was made by another version of cfmem; recreate it to train or report with this one")]
    Version {
        /// The file's.
        found: u64,
        /// This cfmem's.
        supported: u64,
    },
}

/// What is wrong with a record or a file beside it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordProblem {
    /// Shorter than its header.
    #[error("shorter than a record header (truncated?)")]
    Truncated,
    /// Not a file of this kind and format.
    #[error("not a cfmem {0} (the experiment may come from another version of cfmem; truncated?)")]
    NotThisFormat(&'static str),
    /// The checksum does not match the contents.
    #[error("checksum mismatch")]
    Checksum,
    /// A size that does not fit its counts.
    #[error("{bytes} bytes for {items} items, expected {}", expected.map_or("more than fits in memory".into(), |e| e.to_string()))]
    Size {
        /// Bytes found.
        bytes: usize,
        /// Items it claims.
        items: usize,
        /// Bytes those items take (`None` on overflow).
        expected: Option<usize>,
    },
    /// The file of another model.
    #[error("holds model {found} instead of {expected}")]
    OtherModel {
        /// The model it holds.
        found: usize,
        /// The model asked for.
        expected: usize,
    },
    /// Written under another manifest.
    #[error("was written under another manifest")]
    OtherManifest,
    /// Not the experiment's number of documents.
    #[error("does not have the experiment's {0} documents")]
    Documents(usize),
    /// Not the experiment's queries.
    #[error("does not have the experiment's {0} queries")]
    Queries(usize),
}

/// Results kept beside the records only when the experiment asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kept {
    /// Per-token correctness and loss.
    PerToken,
    /// Extraction-test results.
    Extraction,
    /// Candidate scores for canary exposure.
    Exposure,
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PerToken => "per-token results",
            Self::Extraction => "extraction results",
            Self::Exposure => "exposure candidates' scores",
        })
    }
}

/// One setting in which an existing experiment differs from the one asked
/// for: the flattened manifest field and both values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The field, e.g. `train.epochs`.
    pub field: String,
    /// The existing experiment's value.
    pub existing: String,
    /// The value asked for.
    pub requested: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: existing {}, requested {}",
            self.field, self.existing, self.requested
        )
    }
}

/// Result with the scheduler [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

fn models_failed(s: &crate::RunSummary) -> String {
    let first = s
        .failed
        .first()
        .map(|f| format!(" (model {}: {})", f.model, f.error))
        .unwrap_or_default();
    format!(
        "{} models failed{first}; the records of the {} others trained are written",
        s.failed.len(),
        s.trained.len()
    )
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

impl From<cfmem_core::Error> for Error {
    fn from(e: cfmem_core::Error) -> Self {
        Self::Core(Box::new(e))
    }
}
