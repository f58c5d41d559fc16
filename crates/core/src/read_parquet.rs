//! Corpora stored as Parquet (as Hugging Face datasets store them): one
//! row per document, the text in a string column, read a batch at a time.

use std::path::Path;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::corpus::{Document, LoadConfig, Located};
use crate::error::{Error, FieldProblem, Location, Result};

/// Whether `path` names a Parquet file.
pub(crate) fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// The value of row `i` of a string or integer column as text (`None` for
/// null), or why it cannot be one.
fn cell(col: &ArrayRef, i: usize) -> std::result::Result<Option<String>, FieldProblem> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type, UInt32Type, UInt64Type};
    if col.is_null(i) {
        return Ok(None);
    }
    Ok(Some(match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => col.as_string::<i64>().value(i).to_string(),
        DataType::Utf8View => col.as_string_view().value(i).to_string(),
        DataType::Int64 => col.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Int32 => col.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::UInt64 => col.as_primitive::<UInt64Type>().value(i).to_string(),
        DataType::UInt32 => col.as_primitive::<UInt32Type>().value(i).to_string(),
        _ => return Err(FieldProblem::NotAStringOrIntegerColumn),
    }))
}

/// Read every row of `path`: text from `cfg.text_field` (a string column,
/// required), id from `cfg.id_field` (string or integer; the file's row
/// number when the column is absent), group from `cfg.group_field` (optional).
///
/// # Errors
/// [`Error::Io`] and [`Error::Field`] naming the file and the row (as its
/// "line"; 1-based).
pub(crate) fn load(path: &Path, cfg: &LoadConfig) -> Result<Vec<Located>> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let pq = |e: parquet::errors::ParquetError| Error::Parquet {
        path: path.to_path_buf(),
        source: Box::new(e),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq)?
        .with_batch_size(8192)
        .build()
        .map_err(pq)?;
    let mut docs = Vec::new();
    let mut row = 0usize;
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| Error::Parquet {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        let field_err = |field: &str, line: usize, problem| Error::Field {
            path: path.to_path_buf(),
            line,
            field: field.to_string(),
            problem,
        };
        let text = batch
            .column_by_name(&cfg.text_field)
            .ok_or_else(|| field_err(&cfg.text_field, row + 1, FieldProblem::NoColumn))?;
        if !matches!(
            text.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return Err(field_err(
                &cfg.text_field,
                row + 1,
                FieldProblem::NotAStringColumn,
            ));
        }
        let ids = batch.column_by_name(&cfg.id_field);
        let groups = batch.column_by_name(&cfg.group_field);
        for i in 0..batch.num_rows() {
            row += 1;
            let text = match cell(text, i) {
                Ok(Some(t)) => t,
                Ok(None) => return Err(field_err(&cfg.text_field, row, FieldProblem::Null)),
                Err(p) => return Err(field_err(&cfg.text_field, row, p)),
            };
            let id = match ids.map(|c| cell(c, i)) {
                None | Some(Ok(None)) => row.to_string(),
                Some(Ok(Some(id))) => id,
                Some(Err(p)) => return Err(field_err(&cfg.id_field, row, p)),
            };
            let group = match groups.map(|c| cell(c, i)) {
                None | Some(Ok(None)) => None,
                Some(Ok(Some(g))) => Some(g),
                Some(Err(p)) => return Err(field_err(&cfg.group_field, row, p)),
            };
            docs.push(Located {
                doc: Document { id, text, group },
                location: Location::Row(path.to_path_buf(), row),
            });
        }
    }
    Ok(docs)
}
