//! The tokenized corpus, kept in the experiment directory so that every
//! run, job and shard reads it instead of tokenizing the corpus again.
//!
//! File format (`tokens.bin`, `queries.tokens.bin`; little-endian):
//! ```text
//! offset  bytes          field
//! 0       8              magic "CFMEMTK1"
//! 8       32             blake3 of (corpus fingerprint, tokenizer config): what it was built from
//! 40      8              documents n (u64)
//! 48      8              ids m (u64)
//! 56      8              vocabulary size (u64)
//! 64      8              padding id (u64)
//! 72      8              id width in bytes, 2 or 4 (u64)
//! 80      8(n + 1)       document offsets into the ids (u64)
//!         width·m        the ids
//! end−32  32             blake3 of every byte before it
//! ```
//! A file that is missing, damaged, or built from another corpus or
//! tokenizer is rebuilt (atomically: temp file and rename, so concurrent
//! processes never read a partial one).

use std::io::{BufReader, Read};
use std::path::Path;

use cfmem_core::{Corpus, TokenIds, TokenTable, Tokenizer, TokenizerConfig};

use crate::error::Result;
use crate::layout::write_atomic;

/// `tokens.bin`'s magic (distinct from the per-token files' `CFMEMTK1`; a file
/// with another magic is rebuilt from the corpus, as any unreadable one).
const MAGIC: &[u8; 8] = b"CFMEMTB1";

/// What a token file must have been built from.
pub(crate) fn fingerprint(corpus: &Corpus, tokenizer: &TokenizerConfig) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(corpus.fingerprint().as_bytes());
    h.update(&serde_json::to_vec(tokenizer).unwrap_or_default());
    *h.finalize().as_bytes()
}

/// Serialise `table` built from `fp`.
fn encode(table: &TokenTable, fp: &[u8; 32]) -> Vec<u8> {
    let width: u64 = match table.ids() {
        TokenIds::U16(_) => 2,
        TokenIds::U32(_) => 4,
    };
    let m = table.ids().len();
    let mut out = Vec::with_capacity(80 + 8 * table.offsets().len() + width as usize * m + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(fp);
    for x in [
        table.n_docs() as u64,
        m as u64,
        table.vocab_size() as u64,
        u64::from(table.pad()),
        width,
    ] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    for &o in table.offsets() {
        out.extend_from_slice(&o.to_le_bytes());
    }
    match table.ids() {
        TokenIds::U16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TokenIds::U32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

/// Reads exact byte counts through a hasher.
struct Hashed<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Hashed<R> {
    fn bytes(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; n];
        self.inner.read_exact(&mut buf).ok()?;
        self.hasher.update(&buf);
        Some(buf)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }

    /// `n` little-endian values of `W` bytes, read in chunks of 1 MiB.
    fn column<T, const W: usize>(&mut self, n: usize, f: fn([u8; W]) -> T) -> Option<Vec<T>> {
        let mut out = Vec::with_capacity(n);
        let per = (1 << 20) / W;
        while out.len() < n {
            let k = per.min(n - out.len());
            let chunk = self.bytes(k * W)?;
            out.extend(
                chunk
                    .chunks_exact(W)
                    .map(|c| f(c.try_into().unwrap_or([0; W]))),
            );
        }
        Some(out)
    }
}

/// The table in `path` if it is intact and was built from `fp`.
fn read(path: &Path, fp: &[u8; 32]) -> Option<TokenTable> {
    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut r = Hashed {
        inner: BufReader::new(file),
        hasher: blake3::Hasher::new(),
    };
    if r.bytes(8)? != MAGIC || r.bytes(32)? != fp {
        return None;
    }
    let (n, m, vocab, pad, width) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let expected = 80u64
        .checked_add(n.checked_add(1)?.checked_mul(8)?)?
        .checked_add(m.checked_mul(width)?)?
        .checked_add(32)?;
    if expected != len || !(width == 2 || width == 4) {
        return None;
    }
    let offsets = r.column(n as usize + 1, u64::from_le_bytes)?;
    let ids = if width == 2 {
        TokenIds::U16(r.column(m as usize, u16::from_le_bytes)?)
    } else {
        TokenIds::U32(r.column(m as usize, u32::from_le_bytes)?)
    };
    let sum = r.hasher.finalize();
    let mut stored = [0u8; 32];
    r.inner.read_exact(&mut stored).ok()?;
    if sum.as_bytes() != &stored {
        return None;
    }
    TokenTable::new(ids, offsets, vocab as usize, u32::try_from(pad).ok()?).ok()
}

/// The token table of `corpus` under `tokenizer`: read from `path` when it
/// holds an intact one built from them, else tokenized and written there.
///
/// # Errors
/// I/O errors writing the file.
pub(crate) fn load_or_build(
    path: &Path,
    corpus: &Corpus,
    config: &TokenizerConfig,
    tokenizer: &dyn Tokenizer,
) -> Result<TokenTable> {
    let fp = fingerprint(corpus, config);
    if let Some(t) = read(path, &fp) {
        return Ok(t);
    }
    let table = TokenTable::tokenize(corpus, tokenizer);
    write_atomic(path, &encode(&table, &fp))?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfmem_core::Document;

    #[test]
    fn built_once_then_read_and_rebuilt_when_damaged_or_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.bin");
        let corpus = Corpus::from_documents(vec![
            Document::new("a", "hello"),
            Document::new("b", "wörld"),
        ])
        .unwrap();
        let tok = TokenizerConfig::default();
        let bytes_tok = cfmem_core::ByteTokenizer;
        let built = load_or_build(&path, &corpus, &tok, &bytes_tok).unwrap();
        assert_eq!(built, TokenTable::tokenize(&corpus, &bytes_tok));
        let bytes = std::fs::read(&path).unwrap();
        // 80 header + 3 offsets + 15 ids of 2 bytes (BOS + 5 bytes + EOS,
        // BOS + 6 bytes of "wörld" + EOS) + 32.
        assert_eq!(bytes.len(), 80 + 24 + 30 + 32);
        assert_eq!(
            read(&path, &fingerprint(&corpus, &tok)),
            Some(built.clone())
        );
        // A flipped byte: not read, rebuilt identical.
        let mut bad = bytes.clone();
        bad[100] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(read(&path, &fingerprint(&corpus, &tok)), None);
        assert_eq!(
            load_or_build(&path, &corpus, &tok, &bytes_tok).unwrap(),
            built
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        // Another corpus: stale.
        let other = Corpus::from_documents(vec![Document::new("a", "hello")]).unwrap();
        assert_eq!(read(&path, &fingerprint(&other, &tok)), None);
        assert_eq!(
            load_or_build(&path, &other, &tok, &bytes_tok)
                .unwrap()
                .n_docs(),
            1
        );
    }
}
