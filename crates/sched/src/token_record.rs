//! One model's per-token results (`runs/model-NNNNNN.tok`), kept when the
//! experiment asks for them (`cfmem run --per-token`), beside its record
//! and written before it (a record's per-token file exists when the record
//! does). Little-endian, checksummed:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `CFMEMTK2` |
//! | 8 | model index (u64) |
//! | 32 | manifest hash |
//! | 8 | targets `n` (u64) |
//! | ⌈n/8⌉ | correctness, one bit per target (least significant first) |
//! | 2n | loss per target, IEEE half precision (≈ 3 significant digits) |
//! | 2n | mean of `log p` over the next-token distribution per target, half precision |
//! | 2n | its standard deviation per target, half precision |
//! | 32 | blake3 of everything above |
//!
//! [`TOKEN_BYTES`] per target: a corpus of 10 million tokens costs 61 MB a
//! model. Files of the first format (`CFMEMTK1`, without the two moments,
//! 2.125 bytes per target) still read, with empty
//! [`TokenScores::mu`]/[`TokenScores::sigma`]: everything but Min-K %++
//! works from them.

use std::path::Path;

use cfmem_core::TokenScores;
use half::f16;

use crate::error::{Error, RecordProblem, Result};
use crate::record::{hash_bytes, hex};

const MAGIC: &[u8; 8] = b"CFMEMTK2";
const MAGIC_V1: &[u8; 8] = b"CFMEMTK1";
const HEADER: usize = 56;
const CHECKSUM: usize = 32;

/// Bytes per predicted token in a per-token file.
pub const TOKEN_BYTES: f64 = 6.125;

/// The file's bytes.
pub(crate) fn encode(model: usize, manifest: &str, t: &TokenScores) -> Result<Vec<u8>> {
    let n = t.correct.len();
    let mut body = Vec::with_capacity(n.div_ceil(8) + 6 * n);
    for chunk in t.correct.chunks(8) {
        body.push(
            chunk
                .iter()
                .enumerate()
                .fold(0u8, |b, (i, &c)| b | (u8::from(c) << i)),
        );
    }
    // A column shorter than the targets (scores made without the moments)
    // is written as NaN where it has no value: undefined, not zero.
    for column in [&t.nll, &t.mu, &t.sigma] {
        for i in 0..n {
            let x = column.get(i).copied().unwrap_or(f32::NAN);
            body.extend_from_slice(&f16::from_f32(x).to_le_bytes());
        }
    }
    frame(MAGIC, model, manifest, n, &body)
}

/// Parse and verify a per-token file: its model index, manifest hash and
/// scores.
///
/// # Errors
/// [`Error::CorruptRecord`] for a wrong magic, size or checksum.
pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<(usize, String, TokenScores)> {
    // Half-precision columns after the correctness bits: 3 in this
    // format, 1 in the first.
    let columns = if bytes.starts_with(MAGIC_V1) { 1 } else { 3 };
    let magic = if columns == 1 { MAGIC_V1 } else { MAGIC };
    let (model, manifest, n, body) = unframe(path, bytes, magic, "per-token file", |n| {
        n.checked_mul(2 * columns)
            .and_then(|x| x.checked_add(n.div_ceil(8)))
    })?;
    let bits = &body[..n.div_ceil(8)];
    let correct = (0..n).map(|i| bits[i / 8] >> (i % 8) & 1 == 1).collect();
    let mut halves = body[n.div_ceil(8)..]
        .chunks_exact(2)
        .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32());
    let mut column = || (&mut halves).take(n).collect::<Vec<f32>>();
    let nll = column();
    let (mu, sigma) = if columns == 3 {
        (column(), column())
    } else {
        (Vec::new(), Vec::new())
    };
    Ok((
        model,
        manifest,
        TokenScores {
            correct,
            nll,
            mu,
            sigma,
        },
    ))
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
            mu: (0..13).map(|i| -(i as f32) * 0.11).collect(),
            sigma: (0..13).map(|i| i as f32 * 0.05).collect(),
        };
        let hash = "ab".repeat(32);
        let bytes = encode(7, &hash, &t).unwrap();
        assert!(encode(7, "not a hash", &t).is_err());
        let short = TokenScores {
            mu: Vec::new(),
            ..t.clone()
        };
        let (_, _, back) = decode(Path::new("x.tok"), &encode(7, &hash, &short).unwrap()).unwrap();
        assert!(back.mu.iter().all(|x| x.is_nan()) && back.sigma[3] > 0.0);
        assert_eq!(bytes.len(), HEADER + 2 + 3 * 26 + CHECKSUM);
        // One bit and three halves per target.
        assert_eq!(TOKEN_BYTES, 1.0 / 8.0 + 3.0 * 2.0);
        let (m, h, back) = decode(Path::new("x.tok"), &bytes).unwrap();
        assert_eq!((m, h.as_str()), (7, hash.as_str()));
        assert_eq!(back.correct, t.correct);
        for (got, want) in [
            (&back.nll, &t.nll),
            (&back.mu, &t.mu),
            (&back.sigma, &t.sigma),
        ] {
            assert_eq!(got.len(), 13);
            for (a, b) in got.iter().zip(want) {
                // Half precision: 11 significant bits.
                assert!((a - b).abs() <= b.abs() / 1024.0, "{a} vs {b}");
            }
        }
        // A file of the first format: the bits and the losses alone.
        let mut v1 = vec![0b0100_1001u8, 0b0001_0010];
        for &x in &t.nll {
            v1.extend_from_slice(&f16::from_f32(x).to_le_bytes());
        }
        let old = frame(MAGIC_V1, 7, &hash, 13, &v1).unwrap();
        let (_, _, back) = decode(Path::new("x.tok"), &old).unwrap();
        assert_eq!(back.correct, t.correct);
        assert_eq!(back.nll.len(), 13);
        assert!(back.mu.is_empty() && back.sigma.is_empty());
        let mut broken = bytes.clone();
        broken[HEADER] ^= 1;
        let err = decode(Path::new("x.tok"), &broken).unwrap_err().to_string();
        assert!(err.contains("x.tok") && err.contains("checksum"), "{err}");
        assert!(decode(Path::new("x.tok"), &bytes[..40]).is_err());
    }
}
