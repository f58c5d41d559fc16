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
    /// A plot that could not be drawn or written.
    #[error("plot {0}")]
    Plot(String),
}

/// Result with the analysis [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
