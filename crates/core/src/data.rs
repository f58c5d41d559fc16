//! Tokenized documents, cut into context-sized windows, and batches.

use candle_core::{Device, Tensor};

use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

/// A slice of one document: inputs `tokens[start .. start + n_targets]`
/// predict targets `tokens[start + 1 .. start + 1 + n_targets]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Document index.
    pub doc: u32,
    /// First input position in the document's token sequence.
    pub start: u32,
    /// Number of predicted tokens (≤ ctx).
    pub n_targets: u32,
}

/// Token ids, 16 bits wide when the vocabulary fits (half the memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenIds {
    /// Ids below 65,536.
    U16(Vec<u16>),
    /// Any ids.
    U32(Vec<u32>),
}

impl TokenIds {
    /// The id at `i`.
    #[inline]
    pub fn get(&self, i: usize) -> u32 {
        match self {
            Self::U16(v) => u32::from(v[i]),
            Self::U32(v) => v[i],
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        match self {
            Self::U16(v) => v.len(),
            Self::U32(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every document's token ids (BOS + text + EOS) back to back, with the
/// offsets where each document starts: a corpus tokenized once, in two
/// flat arrays (what an experiment directory keeps in `tokens.bin`).
///
/// [`TokenTable::new`] checks its parts: the offsets cover the ids, every
/// document has at least two tokens, every id is in the vocabulary. A
/// table from [`TokenTable::tokenize`] is checked when it is windowed
/// ([`TokenizedCorpus::from_table`]), since a [`Tokenizer`] may return ids
/// outside the vocabulary it declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTable {
    ids: TokenIds,
    /// `offsets[d]..offsets[d + 1]` are document `d`'s ids (`n_docs + 1` entries).
    offsets: Vec<u64>,
    vocab_size: usize,
    pad: u32,
}

impl TokenTable {
    /// Tokenize every document of `corpus`.
    pub fn tokenize(corpus: &Corpus, tokenizer: &dyn Tokenizer) -> Self {
        let mut ids = Vec::new();
        let mut offsets = Vec::with_capacity(corpus.len() + 1);
        offsets.push(0);
        for doc in corpus.documents() {
            ids.push(tokenizer.bos());
            ids.extend(tokenizer.encode(&doc.text));
            ids.push(tokenizer.eos());
            offsets.push(ids.len() as u64);
        }
        let ids = if tokenizer.vocab_size() <= 1 << 16 {
            TokenIds::U16(ids.into_iter().map(|x| x as u16).collect())
        } else {
            TokenIds::U32(ids)
        };
        Self {
            ids,
            offsets,
            vocab_size: tokenizer.vocab_size(),
            pad: tokenizer.pad(),
        }
    }

    /// A table from its parts (e.g. read back from a file), checked.
    ///
    /// # Errors
    /// [`Error::TokenTable`] when the offsets do not start at 0, end at the
    /// number of ids and give every document at least two tokens, or an id
    /// (or `pad`) is outside the vocabulary.
    pub fn new(ids: TokenIds, offsets: Vec<u64>, vocab_size: usize, pad: u32) -> Result<Self> {
        let table = Self {
            ids,
            offsets,
            vocab_size,
            pad,
        };
        table.check()?;
        Ok(table)
    }

    /// The ids, documents back to back.
    pub fn ids(&self) -> &TokenIds {
        &self.ids
    }

    /// `offsets()[d]..offsets()[d + 1]` are document `d`'s ids (`n_docs + 1` entries).
    pub fn offsets(&self) -> &[u64] {
        &self.offsets
    }

    /// The tokenizer's vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The padding id (never a target).
    pub fn pad(&self) -> u32 {
        self.pad
    }

    /// Number of documents.
    pub fn n_docs(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Targets of document `d` (its tokens but the first).
    pub fn n_targets(&self, d: usize) -> usize {
        (self.offsets[d + 1] - self.offsets[d]) as usize - 1
    }

    fn check(&self) -> Result<()> {
        let bad = |m: &'static str| Err(Error::TokenTable(m));
        if self.offsets.first() != Some(&0)
            || self.offsets.last().copied() != Some(self.ids.len() as u64)
            || self.offsets.windows(2).any(|w| w[1] < w[0] + 2)
        {
            return bad("offsets do not cover the ids, or a document has fewer than 2 tokens");
        }
        let vocab = self.vocab_size as u32;
        if (0..self.ids.len()).any(|i| self.ids.get(i) >= vocab) || self.pad >= vocab {
            return bad("an id is outside the vocabulary");
        }
        Ok(())
    }
}

/// A corpus as token ids (BOS + text + EOS per document), with every
/// document cut into windows of at most `ctx` targets. The windows of a
/// document cover each of its targets exactly once, so every token is
/// trained on (when the document is included) and evaluated. Memory: the
/// [`TokenTable`] (2 bytes per token with a vocabulary of at most 65,536)
/// plus 12 bytes per window.
#[derive(Debug, Clone)]
pub struct TokenizedCorpus {
    table: TokenTable,
    windows: Vec<Window>,
    /// `win_offsets[d]..win_offsets[d + 1]` are document `d`'s windows.
    win_offsets: Vec<usize>,
    ctx: usize,
}

impl TokenizedCorpus {
    /// Tokenize `corpus` for a model with context `ctx`.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for `ctx == 0`.
    pub fn new(corpus: &Corpus, tokenizer: &dyn Tokenizer, ctx: usize) -> Result<Self> {
        Self::from_table(TokenTable::tokenize(corpus, tokenizer), ctx)
    }

    /// Windows of context `ctx` over an already tokenized corpus.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for `ctx == 0`; [`Error::TokenTable`] for an invalid table.
    pub fn from_table(table: TokenTable, ctx: usize) -> Result<Self> {
        if ctx == 0 {
            return Err(Error::InvalidSetting {
                setting: "ctx",
                value: ctx.to_string(),
                expected: "must be positive",
            });
        }
        // Tables from `TokenTable::tokenize` are not checked before.
        table.check()?;
        let mut windows = Vec::new();
        let mut win_offsets = Vec::with_capacity(table.n_docs() + 1);
        win_offsets.push(0);
        for d in 0..table.n_docs() {
            let n_targets = table.n_targets(d);
            windows.extend((0..n_targets).step_by(ctx).map(|start| Window {
                doc: d as u32,
                start: start as u32,
                n_targets: ctx.min(n_targets - start) as u32,
            }));
            win_offsets.push(windows.len());
        }
        Ok(Self {
            table,
            windows,
            win_offsets,
            ctx,
        })
    }

    /// The token table.
    pub fn table(&self) -> &TokenTable {
        &self.table
    }

    /// Number of documents.
    pub fn n_docs(&self) -> usize {
        self.table.n_docs()
    }

    /// Token id `i` of document `d` (BOS is 0).
    #[inline]
    pub fn token(&self, d: usize, i: usize) -> u32 {
        self.table.ids.get(self.table.offsets[d] as usize + i)
    }

    /// Windows of document `d`.
    pub fn windows(&self, d: usize) -> &[Window] {
        &self.windows[self.win_offsets[d]..self.win_offsets[d + 1]]
    }

    /// Predicted tokens of document `d`.
    pub fn n_targets(&self, d: usize) -> usize {
        (self.table.offsets[d + 1] - self.table.offsets[d]) as usize - 1
    }

    /// Position of document `d`'s first target among all the corpus's
    /// targets (targets in corpus order; each document has one fewer
    /// target than tokens).
    pub fn target_offset(&self, d: usize) -> usize {
        self.table.offsets[d] as usize - d
    }

    /// Predicted tokens over the corpus.
    pub fn total_targets(&self) -> usize {
        self.table.ids.len() - self.n_docs()
    }

    /// The context length.
    pub fn ctx(&self) -> usize {
        self.ctx
    }

    /// The tokenizer's vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.table.vocab_size
    }

    /// Build a batch for `K = groups.len()` models: model `k` gets the
    /// windows `groups[k]` (at most `batch` of them; missing rows are
    /// padding). The time axis is the longest window of the batch.
    ///
    /// # Errors
    /// Candle errors.
    pub fn batch(&self, groups: &[&[Window]], batch: usize, device: &Device) -> Result<Batch> {
        let mut h = HostBatch::default();
        self.fill_batch(groups, batch, &mut h);
        let (k, n) = (groups.len(), batch * h.t);
        Ok(Batch {
            ids: Tensor::from_slice(&h.ids, (k, batch, h.t), device)?,
            targets: Tensor::from_slice(&h.targets, (k, n), device)?,
            mask: Tensor::from_slice(&h.mask, (k, n), device)?,
            counts: Tensor::from_slice(&h.counts, k, device)?,
            n_tokens: h.counts,
            t: h.t,
        })
    }

    /// [`TokenizedCorpus::batch`] into host buffers, reusing their memory.
    pub fn fill_batch(&self, groups: &[&[Window]], batch: usize, out: &mut HostBatch) {
        let k = groups.len();
        let t = groups
            .iter()
            .flat_map(|g| g.iter())
            .map(|w| w.n_targets as usize)
            .max()
            .unwrap_or(1)
            .max(1);
        let n = batch * t;
        let reset = |v: &mut Vec<_>, x| {
            v.clear();
            v.resize(k * n, x);
        };
        reset(&mut out.ids, self.table.pad);
        reset(&mut out.targets, 0);
        out.mask.clear();
        out.mask.resize(k * n, 0.0);
        out.counts.clear();
        out.counts.resize(k, 0.0);
        for (m, g) in groups.iter().enumerate() {
            for (r, w) in g.iter().take(batch).enumerate() {
                let first = self.table.offsets[w.doc as usize] as usize + w.start as usize;
                for i in 0..w.n_targets as usize {
                    let at = m * n + r * t + i;
                    out.ids[at] = self.table.ids.get(first + i);
                    out.targets[at] = self.table.ids.get(first + i + 1);
                    out.mask[at] = 1.0;
                }
                out.counts[m] += w.n_targets as f32;
            }
        }
        out.k = k;
        out.batch = batch;
        out.t = t;
    }
}

/// A batch on the host, as [`TokenizedCorpus::fill_batch`] writes it: the
/// same fields as [`Batch`], flat, model-major.
#[derive(Debug, Clone, Default)]
pub struct HostBatch {
    /// Input ids `[K, B, T]`.
    pub ids: Vec<u32>,
    /// Target ids `[K, B·T]` (0 where masked).
    pub targets: Vec<u32>,
    /// 1 for real targets, 0 for padding, `[K, B·T]`.
    pub mask: Vec<f32>,
    /// Real targets per model `[K]`.
    pub counts: Vec<f32>,
    /// Models.
    pub k: usize,
    /// Windows per model.
    pub batch: usize,
    /// The time axis length.
    pub t: usize,
}

/// A training or evaluation batch for an ensemble.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Input ids `[K, B, T]`.
    pub ids: Tensor,
    /// Target ids `[K, B·T]` (0 where masked).
    pub targets: Tensor,
    /// 1 for real targets, 0 for padding, `[K, B·T]` (f32).
    pub mask: Tensor,
    /// Real targets per model `[K]` (f32).
    pub counts: Tensor,
    /// The same counts on the host.
    pub n_tokens: Vec<f32>,
    /// The time axis length.
    pub t: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Document;
    use crate::tokenizer::ByteTokenizer;

    #[test]
    fn windows_cover_every_target_once() {
        let docs = vec![
            Document::new("a", "x".repeat(3)),
            Document::new("b", "y".repeat(10)),
            Document::new("c", "z".repeat(6)),
        ];
        let corpus = Corpus::from_documents(docs).unwrap();
        let tc = TokenizedCorpus::new(&corpus, &ByteTokenizer, 4).unwrap();
        for d in 0..3 {
            let w = tc.windows(d);
            let mut covered = vec![0; tc.n_targets(d)];
            for win in w {
                assert!(win.n_targets as usize <= 4);
                for i in 0..win.n_targets as usize {
                    covered[win.start as usize + i] += 1;
                }
            }
            assert!(covered.iter().all(|&c| c == 1), "doc {d}: {covered:?}");
        }
        // "b": BOS + 10 bytes + EOS = 12 tokens, 11 targets → windows 4, 4, 3.
        let sizes: Vec<u32> = tc.windows(1).iter().map(|w| w.n_targets).collect();
        assert_eq!(sizes, vec![4, 4, 3]);
        assert_eq!(tc.total_targets(), 4 + 11 + 7);
        // 16-bit ids for the byte vocabulary; the token of a window start.
        assert!(matches!(tc.table().ids(), TokenIds::U16(_)));
        assert_eq!(tc.token(1, 0), 256);
        assert_eq!(tc.token(1, 1), u32::from(b'y'));
        // A table rebuilt from its parts gives the same windows.
        let again = TokenizedCorpus::from_table(tc.table().clone(), 4).unwrap();
        assert_eq!(again.windows(1), tc.windows(1));
        // Broken tables are refused.
        let t = tc.table();
        let parts = |offsets: Vec<u64>, vocab: usize, pad: u32| {
            TokenTable::new(t.ids().clone(), offsets, vocab, pad)
        };
        assert_eq!(
            &parts(t.offsets().to_vec(), t.vocab_size(), t.pad()).unwrap(),
            t
        );
        let mut offsets = t.offsets().to_vec();
        offsets[1] = 99;
        assert!(matches!(
            parts(offsets, t.vocab_size(), t.pad()),
            Err(Error::TokenTable(_))
        ));
        // A document of one token has no target.
        let mut offsets = t.offsets().to_vec();
        offsets[1] = 1;
        assert!(parts(offsets, t.vocab_size(), t.pad()).is_err());
        assert!(parts(t.offsets().to_vec(), 200, t.pad()).is_err());
        assert!(parts(t.offsets().to_vec(), t.vocab_size(), 999).is_err());
    }

    #[test]
    fn batch_pads_and_masks() {
        let corpus = Corpus::from_documents(vec![Document::new("a", "hi")]).unwrap();
        let tc = TokenizedCorpus::new(&corpus, &ByteTokenizer, 8).unwrap();
        let w = tc.windows(0);
        let b = tc.batch(&[w, &[]], 2, &Device::Cpu).unwrap();
        assert_eq!(b.t, 3);
        assert_eq!(b.ids.dims(), &[2, 2, 3]);
        let ids: Vec<u32> = b.ids.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(&ids[..3], &[256, b'h' as u32, b'i' as u32]);
        assert!(ids[3..].iter().all(|&i| i == 258));
        let t: Vec<u32> = b.targets.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(&t[..3], &[b'h' as u32, b'i' as u32, 257]);
        let m: Vec<f32> = b.mask.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(m.iter().sum::<f32>(), 3.0);
        assert_eq!(b.n_tokens, vec![3.0, 0.0]);
    }
}
