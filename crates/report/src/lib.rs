//! The outputs of cfmem's analyses: every file format and the terminal
//! tables, one module per format.
//!
//! `cfmem-analysis` computes ([`cfmem_analysis::analyse`] gives one
//! [`Analyses`] value); this crate writes it. Each format is one module
//! with a `write` function:
//!
//! | module | writes |
//! |---|---|
//! | [`csv`] | the per-document table |
//! | [`json`] | everything in one JSON document (and any serialisable result) |
//! | [`parquet`] | the per-document table for pandas, pyarrow and polars |
//! | [`charts`] | the standard charts of each analysis ([`charts::standard`]), drawn by [`plot`] as PNG and SVG |
//! | [`html`] | one self-contained HTML report |
//! | [`text`] | the terminal tables of `cfmem report` and `cfmem compare` |
//!
//! A new output format is a new module here; the CLI only chooses which to
//! write.
//!
//! ```
//! use cfmem_analysis::{analyse, AnalysisConfig, DesignConfig, Synthetic};
//!
//! let rows = Synthetic::new(DesignConfig::blocks(2, 7), 8, vec![0.3, 0.0, 0.1]);
//! let out = analyse(&rows, &AnalysisConfig::default())?;
//! let dir = tempfile::tempdir()?;
//! cfmem_report::csv::write(&out, &dir.path().join("mem.csv"))?;
//! assert_eq!(cfmem_report::json::to_value(&out)["documents"].as_array().unwrap().len(), 3);
//! print!("{}", cfmem_report::text::analyses(&out, 10, None));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod charts;
pub mod csv;
mod error;
pub mod html;
pub mod json;
pub mod parquet;
pub mod plot;
pub mod spectrum;
pub mod text;

pub use cfmem_analysis::Analyses;
pub use charts::NamedChart;
pub use error::{Error, Result};
pub use html::{HtmlPage, HtmlWritten};
