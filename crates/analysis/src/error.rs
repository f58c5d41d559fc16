use thiserror::Error;

/// Errors of the analysis crate.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A design parameter outside its range.
    #[error("invalid design: {0}")]
    InvalidDesign(String),
    /// A probability outside the open interval (0, 1).
    #[error("invalid inclusion probability {0}: it must lie strictly between 0 and 1")]
    InvalidProbability(f64),
    /// A row whose length does not match the number of units or documents.
    #[error("model {model}: row has {got} entries, expected {expected}")]
    RowLength {
        /// The model index of the row.
        model: usize,
        /// Entries found.
        got: usize,
        /// Entries expected.
        expected: usize,
    },
    /// A unit/document index out of range.
    #[error("{0}")]
    Index(String),
    /// Imported results that cannot be read.
    #[error("import: {0}")]
    Import(String),
    /// A confidence level outside (0, 1).
    #[error("invalid confidence level {0}: it must lie strictly between 0 and 1")]
    InvalidLevel(f64),
    /// An analysis the source of rows cannot serve (e.g. influence on
    /// queries from rows without a query corpus).
    #[error("{0}")]
    Unsupported(String),
    /// The source of rows failed (e.g. an experiment directory could not be read).
    #[error(transparent)]
    Source(Box<dyn std::error::Error + Send + Sync>),
}

/// Result with the analysis [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
