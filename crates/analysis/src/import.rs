//! Results produced elsewhere: a membership matrix and a score matrix
//! (models × documents), as CSV or NumPy `.npy`.

use std::path::Path;

use crate::design::Membership;
use crate::error::{Error, ImportProblem, NpyProblem, Result};

/// Scores of `n_models` models on `n_docs` documents, with their membership.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTable {
    /// Document ids (from a CSV header or an ids file; else `0..n`).
    pub ids: Vec<String>,
    /// Copies of each document in each model (0 = excluded).
    pub membership: Membership,
    /// Row-major scores, `n_models × n_docs`.
    pub scores: Vec<f64>,
}

impl ScoreTable {
    /// Load a membership matrix and a score matrix (`.csv` or `.npy`, rows =
    /// models, columns = documents) and optional ids (one per line).
    /// A CSV may start with a header row of document ids.
    ///
    /// # Errors
    /// [`Error::Import`] naming the file, and the line or what is wrong:
    /// unparsable numbers, ragged rows, shapes that disagree, negative or
    /// fractional copies.
    pub fn load(membership: &Path, scores: &Path, ids: Option<&Path>) -> Result<Self> {
        let (m_header, m_rows, m_cols, m_data) = read_matrix(membership)?;
        let (s_header, s_rows, s_cols, s_data) = read_matrix(scores)?;
        if (m_rows, m_cols) != (s_rows, s_cols) {
            return Err(Error::ImportShapes {
                membership: membership.to_path_buf(),
                m_shape: (m_rows, m_cols),
                scores: scores.to_path_buf(),
                s_shape: (s_rows, s_cols),
            });
        }
        let mut copies = Vec::with_capacity(m_data.len());
        for (k, &x) in m_data.iter().enumerate() {
            if !(x >= 0.0 && x.fract() == 0.0 && x <= f64::from(u32::MAX)) {
                return Err(import(
                    membership,
                    None,
                    ImportProblem::Copies {
                        model: k / m_cols,
                        document: k % m_cols,
                        value: x,
                    },
                ));
            }
            copies.push(x as u32);
        }
        let ids = match ids {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| import(p, None, e.into()))?;
                let v: Vec<String> = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.trim().to_string())
                    .collect();
                if v.len() != m_cols {
                    return Err(import(
                        p,
                        None,
                        ImportProblem::Ids {
                            found: v.len(),
                            expected: m_cols,
                        },
                    ));
                }
                v
            }
            None => m_header
                .or(s_header)
                .unwrap_or_else(|| (0..m_cols).map(|d| d.to_string()).collect()),
        };
        Ok(Self {
            ids,
            membership: Membership::from_rows(m_rows, m_cols, copies)?,
            scores: s_data,
        })
    }

    /// A table from its parts: `scores` row-major, models × documents, the
    /// shape of `membership`, and one id per document.
    ///
    /// # Errors
    /// [`Error::TableShape`] when the shapes disagree.
    pub fn new(ids: Vec<String>, membership: Membership, scores: Vec<f64>) -> Result<Self> {
        let (m, n) = (membership.n_models(), membership.n_units());
        if scores.len() != m * n || ids.len() != n {
            return Err(Error::TableShape {
                n_scores: scores.len(),
                n_ids: ids.len(),
                n_models: m,
                n_docs: n,
            });
        }
        Ok(Self {
            ids,
            membership,
            scores,
        })
    }

    /// Number of models.
    pub fn n_models(&self) -> usize {
        self.membership.n_models()
    }

    /// Model `i`'s scores.
    pub fn row(&self, i: usize) -> &[f64] {
        let n = self.membership.n_units();
        &self.scores[i * n..(i + 1) * n]
    }
}

type Matrix = (Option<Vec<String>>, usize, usize, Vec<f64>);

/// An import error for `path` (at `line`, when known).
fn import(path: &Path, line: Option<usize>, problem: ImportProblem) -> Error {
    Error::Import {
        path: path.to_path_buf(),
        line,
        problem,
    }
}

fn read_matrix(path: &Path) -> Result<Matrix> {
    let bytes = std::fs::read(path).map_err(|e| import(path, None, e.into()))?;
    if path.extension().and_then(|e| e.to_str()) == Some("npy") {
        let (r, c, d) = parse_npy(path, &bytes)?;
        Ok((None, r, c, d))
    } else {
        parse_csv(path, &bytes)
    }
}

fn parse_csv(path: &Path, bytes: &[u8]) -> Result<Matrix> {
    let bad = |line: usize, problem| import(path, Some(line), problem);
    let text =
        std::str::from_utf8(bytes).map_err(|_| import(path, None, ImportProblem::InvalidUtf8))?;
    let mut header = None;
    let mut data = Vec::new();
    let (mut rows, mut cols) = (0, 0);
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed: std::result::Result<Vec<f64>, _> =
            fields.iter().map(|f| f.parse::<f64>()).collect();
        match parsed {
            Ok(v) => {
                if rows == 0 && header.is_none() {
                    cols = v.len();
                } else if v.len() != cols {
                    return Err(bad(
                        i + 1,
                        ImportProblem::RowLength {
                            found: v.len(),
                            expected: cols,
                        },
                    ));
                }
                if rows == 0 && cols == 0 {
                    cols = v.len();
                }
                data.extend(v);
                rows += 1;
            }
            Err(_) if rows == 0 && header.is_none() => {
                header = Some(fields.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                cols = fields.len();
            }
            Err(e) => return Err(bad(i + 1, ImportProblem::NotANumber(e))),
        }
    }
    if rows == 0 {
        return Err(import(path, None, ImportProblem::NoRows));
    }
    Ok((header, rows, cols, data))
}

/// A 2-D NumPy array (C order) of f8, f4, i8, i4, u4, u1 or b1.
fn parse_npy(path: &Path, b: &[u8]) -> Result<(usize, usize, Vec<f64>)> {
    let bad = |p: NpyProblem| import(path, None, ImportProblem::Npy(p));
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(bad(NpyProblem::NotNpy));
    }
    let (hlen, start) = match b[6] {
        1 => (usize::from(u16::from_le_bytes([b[8], b[9]])), 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        _ => return Err(bad(NpyProblem::Version)),
    };
    let header = std::str::from_utf8(
        b.get(start..start + hlen)
            .ok_or_else(|| bad(NpyProblem::TruncatedHeader))?,
    )
    .map_err(|_| bad(NpyProblem::HeaderNotText))?;
    let field = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}'"))?;
        let rest = header[i + key.len() + 2..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        Some(rest)
    };
    let descr = field("descr")
        .and_then(|r| r.strip_prefix('\''))
        .and_then(|r| r.split('\'').next())
        .ok_or_else(|| bad(NpyProblem::NoDescr))?;
    if field("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return Err(bad(NpyProblem::FortranOrder));
    }
    let shape = field("shape")
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| bad(NpyProblem::NoShape))?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().map_err(|_| bad(NpyProblem::NoShape)))
        .collect::<Result<_>>()?;
    if dims.len() != 2 {
        return Err(bad(NpyProblem::NotTwoDimensional(shape.to_string())));
    }
    let n = dims[0] * dims[1];
    let body = &b[start + hlen..];
    let (size, conv): (usize, fn(&[u8]) -> f64) = match descr {
        "<f8" => (8, |x| f64::from_le_bytes(x.try_into().unwrap_or([0; 8]))),
        "<f4" => (4, |x| {
            f64::from(f32::from_le_bytes(x.try_into().unwrap_or([0; 4])))
        }),
        "<i8" => (8, |x| {
            i64::from_le_bytes(x.try_into().unwrap_or([0; 8])) as f64
        }),
        "<i4" => (4, |x| {
            f64::from(i32::from_le_bytes(x.try_into().unwrap_or([0; 4])))
        }),
        "<u4" => (4, |x| {
            f64::from(u32::from_le_bytes(x.try_into().unwrap_or([0; 4])))
        }),
        "|u1" | "|b1" => (1, |x| f64::from(x[0])),
        other => return Err(bad(NpyProblem::Dtype(other.to_string()))),
    };
    if body.len() < n * size {
        return Err(bad(NpyProblem::TruncatedData));
    }
    Ok((
        dims[0],
        dims[1],
        body[..n * size].chunks(size).map(conv).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: (usize, usize), body: &[u8]) -> Vec<u8> {
        let mut h = format!(
            "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}, {}), }}",
            shape.0, shape.1
        );
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend((h.len() as u16).to_le_bytes());
        v.extend(h.as_bytes());
        v.extend(body);
        v
    }

    #[test]
    fn csv_with_header_and_npy() {
        let dir = std::env::temp_dir().join(format!("cfmem-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = dir.join("m.csv");
        std::fs::write(&m, "a,b,c\n1,0,1\n0,1,0\n").unwrap();
        let s = dir.join("s.npy");
        let body: Vec<u8> = [0.5f64, 0.25, 1.0, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        std::fs::write(&s, npy("<f8", (2, 3), &body)).unwrap();
        let t = ScoreTable::load(&m, &s, None).unwrap();
        assert_eq!(t.ids, vec!["a", "b", "c"]);
        assert_eq!(t.membership.row(1), &[0, 1, 0]);
        assert_eq!(t.row(1), &[2.0, 3.0, 4.0]);
        // Membership as a uint8 .npy.
        let m2 = dir.join("m.npy");
        std::fs::write(&m2, npy("|u1", (2, 3), &[1, 0, 1, 0, 1, 0])).unwrap();
        assert_eq!(
            ScoreTable::load(&m2, &s, None).unwrap().membership,
            t.membership
        );
        // Errors name the file and line.
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "1,0,1\n0,x,0\n").unwrap();
        let err = ScoreTable::load(&bad, &s, None).unwrap_err().to_string();
        assert!(err.contains("bad.csv:2"), "{err}");
        std::fs::write(&bad, "1,0\n0,1\n").unwrap();
        assert!(ScoreTable::load(&bad, &s, None)
            .unwrap_err()
            .to_string()
            .contains("2 × 2"));
        std::fs::write(&bad, "1,0.5,1\n0,1,0\n").unwrap();
        assert!(ScoreTable::load(&bad, &s, None)
            .unwrap_err()
            .to_string()
            .contains("whole numbers"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
