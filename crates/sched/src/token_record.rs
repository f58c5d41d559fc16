//! One model's per-token results (`runs/model-NNNNNN.tok`), kept when the
//! experiment asks for them (`cfmem run --per-token`), beside its record
//! and written before it (a record's per-token file exists when the record
//! does). Little-endian, checksummed:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `CFMEMTK1` |
//! | 8 | model index (u64) |
//! | 32 | manifest hash |
//! | 8 | targets `n` (u64) |
//! | ⌈n/8⌉ | correctness, one bit per target (least significant first) |
//! | 2n | loss per target, IEEE half precision (≈ 3 significant digits) |
//! | 32 | blake3 of everything above |
//!
//! [`TOKEN_BYTES`] per target: a corpus of 10 million tokens costs 21 MB a
//! model.

use std::path::Path;

use cfmem_core::TokenScores;
use half::f16;

use crate::error::{Error, RecordProblem, Result};
use crate::record::{hash_bytes, hex};

const MAGIC: &[u8; 8] = b"CFMEMTK1";
const HEADER: usize = 56;
const CHECKSUM: usize = 32;

/// Bytes per predicted token in a per-token file.
pub const TOKEN_BYTES: f64 = 2.125;

/// The file's bytes.
pub(crate) fn encode(model: usize, manifest: &str, t: &TokenScores) -> Result<Vec<u8>> {
    let n = t.correct.len();
    let mut body = Vec::with_capacity(n.div_ceil(8) + 2 * n);
    for chunk in t.correct.chunks(8) {
        body.push(
            chunk
                .iter()
                .enumerate()
                .fold(0u8, |b, (i, &c)| b | (u8::from(c) << i)),
        );
    }
    for &x in &t.nll {
        body.extend_from_slice(&f16::from_f32(x).to_le_bytes());
    }
    frame(MAGIC, model, manifest, n, &body)
}

/// Parse and verify a per-token file: its model index, manifest hash and
/// scores.
///
/// # Errors
/// [`Error::CorruptRecord`] for a wrong magic, size or checksum.
pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<(usize, String, TokenScores)> {
    let (model, manifest, n, body) = unframe(path, bytes, MAGIC, "per-token file", |n| {
        n.checked_mul(2).and_then(|x| x.checked_add(n.div_ceil(8)))
    })?;
    let bits = &body[..n.div_ceil(8)];
    let correct = (0..n).map(|i| bits[i / 8] >> (i % 8) & 1 == 1).collect();
    let nll = body[n.div_ceil(8)..]
        .chunks_exact(2)
        .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect();
    Ok((model, manifest, TokenScores { correct, nll }))
}

/// A file beside a record: `magic`, model index, manifest hash, item
/// count `n`, `body`, and the blake3 of everything before it.
pub(crate) fn frame(
    magic: &[u8; 8],
    model: usize,
    manifest: &str,
    n: usize,
    body: &[u8],
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER + body.len() + CHECKSUM);
    out.extend_from_slice(magic);
    out.extend_from_slice(&(model as u64).to_le_bytes());
    out.extend_from_slice(&hash_bytes(manifest)?);
    out.extend_from_slice(&(n as u64).to_le_bytes());
    out.extend_from_slice(body);
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    Ok(out)
}

/// Verify a [`frame`]d file of `what` and split it into model index,
/// manifest hash, item count and body; `body_len(n)` is the body's size
/// for `n` items (`None` on overflow).
///
/// # Errors
/// [`Error::CorruptRecord`] for a wrong magic, size or checksum.
pub(crate) fn unframe<'a>(
    path: &Path,
    bytes: &'a [u8],
    magic: &[u8; 8],
    what: &'static str,
    body_len: impl Fn(usize) -> Option<usize>,
) -> Result<(usize, String, usize, &'a [u8])> {
    let bad = |problem| Error::CorruptRecord {
        path: path.to_path_buf(),
        problem,
    };
    if bytes.len() < HEADER + CHECKSUM || &bytes[..8] != magic {
        return Err(bad(RecordProblem::NotThisFormat(what)));
    }
    let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
    if blake3::hash(body).as_bytes() != sum {
        return Err(bad(RecordProblem::Checksum));
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let model = u64_at(8) as usize;
    let manifest = hex(&body[16..48]);
    let n = u64_at(48) as usize;
    let expected = body_len(n).and_then(|x| x.checked_add(HEADER));
    if expected != Some(body.len()) {
        return Err(bad(RecordProblem::Size {
            bytes: body.len(),
            items: n,
            expected,
        }));
    }
    Ok((model, manifest, n, &body[HEADER..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let t = TokenScores {
            correct: (0..13).map(|i| i % 3 == 0).collect(),
            nll: (0..13).map(|i| i as f32 * 0.37).collect(),
        };
        let hash = "ab".repeat(32);
        let bytes = encode(7, &hash, &t).unwrap();
        assert!(encode(7, "not a hash", &t).is_err());
        assert_eq!(bytes.len(), HEADER + 2 + 26 + CHECKSUM);
        let (m, h, back) = decode(Path::new("x.tok"), &bytes).unwrap();
        assert_eq!((m, h.as_str()), (7, hash.as_str()));
        assert_eq!(back.correct, t.correct);
        for (a, b) in back.nll.iter().zip(&t.nll) {
            // Half precision: 11 significant bits.
            assert!((a - b).abs() <= b.abs() / 1024.0, "{a} vs {b}");
        }
        let mut broken = bytes.clone();
        broken[HEADER] ^= 1;
        let err = decode(Path::new("x.tok"), &broken).unwrap_err().to_string();
        assert!(err.contains("x.tok") && err.contains("checksum"), "{err}");
        assert!(decode(Path::new("x.tok"), &bytes[..40]).is_err());
    }
}
