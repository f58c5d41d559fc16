//! Loading and validating corpora: JSONL, plain text, or a directory of `.txt` files.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldProblem, Location, Result};

/// One document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Unique id.
    pub id: String,
    /// The text.
    pub text: String,
    /// Optional group label (used by group-level designs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Document {
    /// A document without a group.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            group: None,
        }
    }
}

/// How to read a corpus.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `id_field` | `"id"` | JSONL field holding the id (string or number); missing → the line number |
/// | `text_field` | `"text"` | JSONL field holding the text (required, string) |
/// | `group_field` | `"group"` | JSONL field holding the optional group |
/// | `skip_empty` | `false` | skip empty documents (counted) instead of failing |
/// | `per_line` | `false` | plain text: one document per line instead of per blank-line-separated paragraph |
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadConfig {
    /// JSONL id field.
    pub id_field: String,
    /// JSONL text field.
    pub text_field: String,
    /// JSONL group field.
    pub group_field: String,
    /// Skip empty documents instead of failing.
    pub skip_empty: bool,
    /// Plain text: one document per line.
    pub per_line: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            id_field: "id".into(),
            text_field: "text".into(),
            group_field: "group".into(),
            skip_empty: false,
            per_line: false,
        }
    }
}

/// A validated corpus: non-empty, unique ids, no empty document.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    documents: Vec<Document>,
    n_skipped_empty: usize,
}

/// A document with the place it came from, before validation.
pub(crate) struct Located {
    pub(crate) doc: Document,
    pub(crate) location: Location,
}

impl Corpus {
    /// Validate a list of documents.
    ///
    /// # Errors
    /// [`Error::EmptyDocument`], [`Error::DuplicateId`], [`Error::EmptyCorpus`].
    pub fn from_documents(documents: Vec<Document>) -> Result<Self> {
        let located = documents
            .into_iter()
            .enumerate()
            .map(|(i, doc)| Located {
                location: Location::InMemory(i),
                doc,
            })
            .collect();
        Self::validate(located, false, None)
    }

    fn validate(docs: Vec<Located>, skip_empty: bool, source: Option<&Path>) -> Result<Self> {
        let mut seen: HashMap<String, Location> = HashMap::new();
        let mut out = Vec::with_capacity(docs.len());
        let mut n_skipped_empty = 0;
        for Located { doc, location } in docs {
            if doc.text.trim().is_empty() {
                if skip_empty {
                    n_skipped_empty += 1;
                    continue;
                }
                return Err(Error::EmptyDocument {
                    location,
                    id: doc.id,
                });
            }
            if let Some(first) = seen.get(&doc.id) {
                return Err(Error::DuplicateId {
                    id: doc.id,
                    first: first.clone(),
                    second: location,
                });
            }
            seen.insert(doc.id.clone(), location);
            out.push(doc);
        }
        if out.is_empty() {
            return Err(Error::EmptyCorpus(source.map(Path::to_path_buf)));
        }
        Ok(Self {
            documents: out,
            n_skipped_empty,
        })
    }

    /// Load a corpus: a `.parquet` file, or a directory holding `.parquet`
    /// files (read in name order, as Hugging Face datasets store their
    /// shards), with the text in column `text_field`; a directory of `.txt`
    /// files (id = relative path); a `.jsonl`/`.json`/`.ndjson` file (read a
    /// line at a time); or any other file as plain text. JSONL and text
    /// files may be compressed, `.gz` (gzip) or `.zst` (zstandard), and are
    /// then decompressed as they are read (`corpus.jsonl.zst`), never to disk.
    ///
    /// # Errors
    /// I/O, JSON, UTF-8 and validation errors, each naming the file and line.
    pub fn load(path: impl AsRef<Path>, cfg: &LoadConfig) -> Result<Self> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let docs = if meta.is_dir() {
            let parquet = parquet_files(path)?;
            if parquet.is_empty() {
                load_dir(path)?
            } else {
                let mut docs = Vec::new();
                for file in &parquet {
                    docs.extend(crate::read_parquet::load(file, cfg)?);
                }
                docs
            }
        } else if crate::read_parquet::is_parquet(path) {
            crate::read_parquet::load(path, cfg)?
        } else {
            let (format, compression) = Format::of(path);
            let reader = open(path, compression)?;
            match format {
                Format::Jsonl => parse_jsonl(path, reader, cfg)?,
                Format::Text => {
                    let mut bytes = Vec::new();
                    let mut reader = reader;
                    reader.read_to_end(&mut bytes).map_err(|source| Error::Io {
                        path: path.to_path_buf(),
                        source,
                    })?;
                    parse_text(path, &bytes, cfg.per_line)?
                }
            }
        };
        Self::validate(docs, cfg.skip_empty, Some(path))
    }

    /// The documents.
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Always false: a corpus has at least one document.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// Empty documents skipped while loading (with `skip_empty`).
    pub fn n_skipped_empty(&self) -> usize {
        self.n_skipped_empty
    }

    /// Append documents (e.g. planted canaries), validating the result.
    ///
    /// # Errors
    /// As [`Corpus::from_documents`].
    pub fn extend(self, more: Vec<Document>) -> Result<Self> {
        let skipped = self.n_skipped_empty;
        let mut docs = self.documents;
        docs.extend(more);
        let mut c = Self::from_documents(docs)?;
        c.n_skipped_empty = skipped;
        Ok(c)
    }

    /// blake3 over ids, texts and groups (length-prefixed), as hex: identifies
    /// the corpus in an experiment's manifest.
    pub fn fingerprint(&self) -> String {
        let mut h = blake3::Hasher::new();
        for d in &self.documents {
            for field in [Some(&d.id), Some(&d.text), d.group.as_ref()] {
                match field {
                    Some(s) => {
                        h.update(&[1]);
                        h.update(&(s.len() as u64).to_le_bytes());
                        h.update(s.as_bytes());
                    }
                    None => {
                        h.update(&[0]);
                    }
                }
            }
        }
        h.finalize().to_hex().to_string()
    }
}

/// What a corpus file holds, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jsonl,
    Text,
}

/// How a corpus file is compressed, by its last extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Format {
    fn of(path: &Path) -> (Self, Compression) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let (stem, compression) = if let Some(s) = name.strip_suffix(".gz") {
            (s.to_string(), Compression::Gzip)
        } else if let Some(s) = name.strip_suffix(".zst") {
            (s.to_string(), Compression::Zstd)
        } else {
            (name, Compression::None)
        };
        let jsonl = [".jsonl", ".json", ".ndjson"]
            .iter()
            .any(|e| stem.ends_with(e));
        (if jsonl { Self::Jsonl } else { Self::Text }, compression)
    }
}

/// A buffered reader over the file, decompressing as it reads.
fn open(path: &Path, compression: Compression) -> Result<Box<dyn BufRead>> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = BufReader::new(file);
    Ok(match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(file))),
        Compression::Zstd => Box::new(BufReader::new(
            zstd::stream::read::Decoder::with_buffer(file).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?,
        )),
    })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// 1-based line of byte offset `pos`.
fn line_of(bytes: &[u8], pos: usize) -> usize {
    bytes[..pos].iter().filter(|&&b| b == b'\n').count() + 1
}

fn utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
        path: path.to_path_buf(),
        line: Some(line_of(bytes, e.valid_up_to())),
    })
}

fn parse_jsonl(
    path: &Path,
    mut reader: Box<dyn BufRead>,
    cfg: &LoadConfig,
) -> Result<Vec<Located>> {
    let mut docs = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        line_no += 1;
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(e.kind(), format!("line {line_no}: {e}")),
        })?;
        if n == 0 {
            break;
        }
        let line = std::str::from_utf8(&buf).map_err(|_| Error::InvalidUtf8 {
            path: path.to_path_buf(),
            line: Some(line_no),
        })?;
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let field_err = |field: &str, problem| Error::Field {
            path: path.to_path_buf(),
            line: line_no,
            field: field.to_string(),
            problem,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|source| Error::Json {
                path: path.to_path_buf(),
                line: line_no,
                source,
            })?;
        let obj = value.as_object().ok_or_else(|| Error::NotAnObject {
            path: path.to_path_buf(),
            line: line_no,
        })?;
        let text = match obj.get(&cfg.text_field) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err(field_err(&cfg.text_field, FieldProblem::NotAString)),
            None => return Err(field_err(&cfg.text_field, FieldProblem::Missing)),
        };
        let id = match obj.get(&cfg.id_field) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(_) => return Err(field_err(&cfg.id_field, FieldProblem::NotAStringOrNumber)),
            None => line_no.to_string(),
        };
        let group = match obj.get(&cfg.group_field) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(serde_json::Value::Null) | None => None,
            Some(_) => {
                return Err(field_err(
                    &cfg.group_field,
                    FieldProblem::NotAStringOrNumber,
                ))
            }
        };
        docs.push(Located {
            doc: Document { id, text, group },
            location: Location::Line(path.to_path_buf(), line_no),
        });
    }
    Ok(docs)
}

fn parse_text(path: &Path, bytes: &[u8], per_line: bool) -> Result<Vec<Located>> {
    let text = utf8(path, bytes)?;
    let mut docs = Vec::new();
    let push = |docs: &mut Vec<Located>, start: usize, body: String| {
        docs.push(Located {
            doc: Document::new(format!("line-{start}"), body),
            location: Location::Line(path.to_path_buf(), start),
        });
    };
    if per_line {
        for (i, line) in text.lines().enumerate() {
            push(&mut docs, i + 1, line.to_string());
        }
        return Ok(docs);
    }
    let mut current: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                push(&mut docs, start, current.join("\n"));
                current.clear();
            }
        } else {
            if current.is_empty() {
                start = i + 1;
            }
            current.push(line);
        }
    }
    if !current.is_empty() {
        push(&mut docs, start, current.join("\n"));
    }
    Ok(docs)
}

fn load_dir(root: &Path) -> Result<Vec<Located>> {
    let mut files = Vec::new();
    walk(root, &mut files)?;
    files.sort();
    let mut docs = Vec::with_capacity(files.len());
    for file in files {
        let bytes = read(&file)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| Error::InvalidUtf8 {
            path: file.clone(),
            line: Some(line_of(&bytes, e.valid_up_to())),
        })?;
        let rel = file.strip_prefix(root).unwrap_or(&file);
        let id = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        docs.push(Located {
            doc: Document::new(id, text.to_string()),
            location: Location::File(file.clone()),
        });
    }
    Ok(docs)
}

/// The `.parquet` files directly in `dir`, sorted.
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_file() && crate::read_parquet::is_parquet(&path) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().and_then(|e| e.to_str()) == Some("txt") {
            out.push(path);
        }
    }
    Ok(())
}
