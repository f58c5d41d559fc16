//! The per-document table as Parquet, for pandas, pyarrow and polars.

use std::path::Path;
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::file::properties::WriterProperties;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};

use cfmem_analysis::{Analyses, DocEstimate, Estimate};

use crate::error::{io, Error, Result};

/// Write every document's estimate as a Parquet file (zstd-compressed),
/// one row per document in corpus order, with the columns
///
/// | column | type | |
/// |---|---|---|
/// | `id` | string | document id |
/// | `index` | uint64 | position in the corpus |
/// | `n_in`, `n_out` | uint64 | models with the document in / out |
/// | `in_mean`, `out_mean`, `mem`, `se`, `ci_low`, `ci_high` | float64, null without an estimate | as in the CSV |
/// | `q_value` | float64, null without an error | the Benjamini–Hochberg q-value of `mem > 0` |
/// | `reason` | string, null with an estimate | why there is no estimate |
/// | `group` | string, null when the document is its own unit | its unit of removal |
/// | `kind` | string, null when the source has no kinds | `random canaries`, `controls` or `documents` for an experiment |
/// | `shrunk_mean`, `shrunk_low`, `shrunk_high`, `lfsr` | float64, only with shrinkage | the shrunk estimate, its posterior interval and its local false sign rate |
///
/// The file-level metadata holds `cfmem.metric`, `cfmem.adjustment`,
/// `cfmem.level` and `cfmem.n_models`.
///
/// # Errors
/// [`Error::Io`], [`Error::Arrow`] or [`Error::Parquet`] naming the file.
pub fn write(a: &Analyses, path: &Path) -> Result<()> {
    let parquet = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let docs = &a.report.docs;
    let f = |g: fn(&Estimate) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from(
            docs.iter().map(|d| g(&d.estimate)).collect::<Vec<_>>(),
        ))
    };
    let u = |g: fn(&DocEstimate) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from(docs.iter().map(g).collect::<Vec<_>>()))
    };
    let kinds: ArrayRef = Arc::new(StringArray::from(
        (0..docs.len())
            .map(|i| a.kinds.as_ref().and_then(|k| k.get(i)).map(String::as_str))
            .collect::<Vec<_>>(),
    ));
    let groups: ArrayRef = Arc::new(StringArray::from(
        (0..docs.len())
            .map(|i| {
                a.doc_groups
                    .as_ref()
                    .and_then(|g| g.get(i))
                    .and_then(Option::as_deref)
            })
            .collect::<Vec<_>>(),
    ));
    let q: ArrayRef = Arc::new(Float64Array::from(a.report.q_values()));
    let reasons: Vec<Option<String>> = docs
        .iter()
        .map(|d| d.estimate.reason.map(|r| r.to_string()))
        .collect();
    let mut columns = vec![
        (
            "id",
            Arc::new(StringArray::from(
                docs.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        ("index", u(|d| d.index as u64)),
        ("n_in", u(|d| d.estimate.n_in as u64)),
        ("n_out", u(|d| d.estimate.n_out as u64)),
        ("in_mean", f(|e| e.in_mean)),
        ("out_mean", f(|e| e.out_mean)),
        ("mem", f(|e| e.mem)),
        ("se", f(|e| e.se)),
        ("ci_low", f(|e| e.ci_low)),
        ("ci_high", f(|e| e.ci_high)),
        ("q_value", q),
        ("reason", Arc::new(StringArray::from(reasons)) as ArrayRef),
        ("group", groups),
        ("kind", kinds),
    ];
    if let Some(sh) = &a.shrinkage {
        let col = |g: fn(&cfmem_analysis::Shrunk) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from(
                docs.iter()
                    .map(|d| sh.docs.get(d.index).copied().flatten().as_ref().map(g))
                    .collect::<Vec<_>>(),
            ))
        };
        columns.extend([
            ("shrunk_mean", col(|x| x.mean)),
            ("shrunk_low", col(|x| x.ci_low)),
            ("shrunk_high", col(|x| x.ci_high)),
            ("lfsr", col(|x| x.lfsr)),
        ]);
    }
    let batch = RecordBatch::try_from_iter(columns).map_err(|source| Error::Arrow {
        path: path.to_path_buf(),
        source,
    })?;
    let c = &a.report.config;
    let meta = [
        ("cfmem.metric", c.metric.name().to_string()),
        ("cfmem.adjustment", c.adjustment.to_string()),
        ("cfmem.level", c.level.to_string()),
        ("cfmem.n_models", a.report.n_models.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| ::parquet::file::metadata::KeyValue::new(k.to_string(), v))
    .collect();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_key_value_metadata(Some(meta))
        .build();
    let file = std::fs::File::create(path).map_err(io(path))?;
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(parquet)?;
    w.write(&batch).map_err(parquet)?;
    w.close().map_err(parquet)?;
    Ok(())
}
