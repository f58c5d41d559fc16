use std::path::PathBuf;

use thiserror::Error;

/// Errors of the output crate: each names the file that could not be
/// written and keeps the underlying error as its source.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be created or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The CSV table could not be written.
    #[error("{}: {source}", path.display())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The underlying error.
        source: ::csv::Error,
    },
    /// A JSON document could not be serialised.
    #[error("{}: {source}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// The Parquet table could not be built or written.
    #[error("{}: {source}", path.display())]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// The underlying error.
        source: ::parquet::errors::ParquetError,
    },
    /// The Parquet table's columns could not be assembled.
    #[error("{}: {source}", path.display())]
    Arrow {
        /// The Parquet file.
        path: PathBuf,
        /// The underlying error.
        source: arrow_schema::ArrowError,
    },
    /// A chart could not be drawn.
    #[error("chart {target}: {source}")]
    Plot {
        /// The file drawn to, or the chart's title for an inline SVG.
        target: String,
        /// What the drawing backend said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The rows behind the HTML report's drawn scores could not be read.
    #[error(transparent)]
    Analysis(#[from] cfmem_analysis::Error),
}

/// Result with the output [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
