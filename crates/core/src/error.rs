use std::path::PathBuf;

use thiserror::Error;

/// Errors of the core crate. Messages name the file, line, document id or
/// model at fault.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSONL line that is not a JSON object.
    #[error("{}:{line}: malformed JSON: {message}", path.display())]
    Json {
        /// The corpus file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// A JSONL object without a required field, or with a field of the wrong type.
    #[error("{}:{line}: field {field:?} {problem}", path.display())]
    Field {
        /// The corpus file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field name.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Bytes that are not UTF-8.
    #[error("{}{}: invalid UTF-8", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line number, where known.
        line: Option<usize>,
    },
    /// A document whose text is empty or only whitespace.
    #[error(
        "{location}: document {id:?} is empty (skip empty documents with the skip-empty option)"
    )]
    EmptyDocument {
        /// File and line, or path, of the document.
        location: String,
        /// The document id.
        id: String,
    },
    /// Two documents with the same id.
    #[error("{second}: duplicate document id {id:?} (first seen at {first})")]
    DuplicateId {
        /// The id.
        id: String,
        /// Where it was first seen.
        first: String,
        /// Where it was seen again.
        second: String,
    },
    /// A corpus with no document.
    #[error("{0}: the corpus has no documents")]
    EmptyCorpus(String),
    /// A configuration value out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A tokenizer that cannot be trained, read or trusted.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A subset that names a document outside the corpus.
    #[error("model {model}: subset names document {doc}, but the corpus has {n_docs}")]
    SubsetIndex {
        /// The model index.
        model: usize,
        /// The bad document index.
        doc: usize,
        /// Documents in the corpus.
        n_docs: usize,
    },
    /// An error from candle while training or evaluating.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// A non-finite training loss.
    #[error(
        "model {model}: training diverged (loss {loss}) at step {step}; lower the learning rate"
    )]
    Diverged {
        /// The model index.
        model: usize,
        /// The step.
        step: usize,
        /// The loss seen.
        loss: f32,
    },
}

/// Result with the core [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
