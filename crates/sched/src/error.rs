use std::path::PathBuf;

use thiserror::Error;

/// Errors of the scheduler.
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
    #[error("{}: unreadable manifest: {message}", path.display())]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The experiment directory holds a different experiment.
    #[error("{}: the existing experiment differs from this one:\n{}", dir.display(), diffs.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n"))]
    ManifestMismatch {
        /// The experiment directory.
        dir: PathBuf,
        /// One line per differing field.
        diffs: Vec<String>,
    },
    /// A record that fails its checksum or cannot be parsed.
    #[error("{}: corrupt record: {message}", path.display())]
    CorruptRecord {
        /// The record file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A directory with no manifest.
    #[error("{}: not a cfmem experiment (no manifest.json)", .0.display())]
    NotAnExperiment(PathBuf),
    /// A new experiment was asked for without a corpus.
    #[error("{}: no experiment here yet, and no corpus was given to create one", .0.display())]
    NoCorpus(PathBuf),
    /// Some models of a run failed; the records of the others are written.
    #[error("{}", models_failed(.0))]
    ModelsFailed(Box<crate::RunSummary>),
    /// Training or evaluating a model failed.
    #[error("model {model}: {source}")]
    Model {
        /// The model index.
        model: usize,
        /// The underlying error.
        source: cfmem_core::Error,
    },
    /// A core error outside any model (corpus, config).
    #[error(transparent)]
    Core(#[from] cfmem_core::Error),
    /// An analysis error.
    #[error(transparent)]
    Analysis(#[from] cfmem_analysis::Error),
    /// A run setting out of range.
    #[error("invalid run setting: {0}")]
    Config(String),
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
