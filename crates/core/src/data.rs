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

/// A corpus as token ids (BOS + text + EOS per document), with every
/// document cut into windows of at most `ctx` targets. The windows of a
/// document cover each of its targets exactly once, so every token is
/// trained on (when the document is included) and evaluated.
#[derive(Debug, Clone)]
pub struct TokenizedCorpus {
    tokens: Vec<Vec<u32>>,
    windows: Vec<Vec<Window>>,
    ctx: usize,
    pad: u32,
    vocab_size: usize,
}

impl TokenizedCorpus {
    /// Tokenize `corpus` for a model with context `ctx`.
    ///
    /// # Errors
    /// [`Error::Config`] for `ctx == 0`.
    pub fn new(corpus: &Corpus, tokenizer: &dyn Tokenizer, ctx: usize) -> Result<Self> {
        if ctx == 0 {
            return Err(Error::Config("ctx must be positive".into()));
        }
        let mut tokens = Vec::with_capacity(corpus.len());
        let mut windows = Vec::with_capacity(corpus.len());
        for (d, doc) in corpus.documents().iter().enumerate() {
            let mut t = vec![tokenizer.bos()];
            t.extend(tokenizer.encode(&doc.text));
            t.push(tokenizer.eos());
            let n_targets = t.len() - 1;
            let w: Vec<Window> = (0..n_targets)
                .step_by(ctx)
                .map(|start| Window {
                    doc: d as u32,
                    start: start as u32,
                    n_targets: ctx.min(n_targets - start) as u32,
                })
                .collect();
            tokens.push(t);
            windows.push(w);
        }
        Ok(Self {
            tokens,
            windows,
            ctx,
            pad: tokenizer.pad(),
            vocab_size: tokenizer.vocab_size(),
        })
    }

    /// Number of documents.
    pub fn n_docs(&self) -> usize {
        self.tokens.len()
    }

    /// Token ids of document `d` (BOS … EOS).
    pub fn tokens(&self, d: usize) -> &[u32] {
        &self.tokens[d]
    }

    /// Windows of document `d`.
    pub fn windows(&self, d: usize) -> &[Window] {
        &self.windows[d]
    }

    /// Predicted tokens of document `d`.
    pub fn n_targets(&self, d: usize) -> usize {
        self.tokens[d].len() - 1
    }

    /// Predicted tokens over the corpus.
    pub fn total_targets(&self) -> usize {
        (0..self.n_docs()).map(|d| self.n_targets(d)).sum()
    }

    /// The context length.
    pub fn ctx(&self) -> usize {
        self.ctx
    }

    /// The tokenizer's vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Build a batch for `K = groups.len()` models: model `k` gets the
    /// windows `groups[k]` (at most `batch` of them; missing rows are
    /// padding). The time axis is the longest window of the batch.
    ///
    /// # Errors
    /// Candle errors.
    pub fn batch(&self, groups: &[&[Window]], batch: usize, device: &Device) -> Result<Batch> {
        let k = groups.len();
        let t = groups
            .iter()
            .flat_map(|g| g.iter())
            .map(|w| w.n_targets as usize)
            .max()
            .unwrap_or(1)
            .max(1);
        let n = batch * t;
        let mut ids = vec![self.pad; k * n];
        let mut targets = vec![0u32; k * n];
        let mut mask = vec![0f32; k * n];
        let mut counts = vec![0f32; k];
        for (m, g) in groups.iter().enumerate() {
            for (r, w) in g.iter().take(batch).enumerate() {
                let toks = &self.tokens[w.doc as usize];
                let s = w.start as usize;
                for i in 0..w.n_targets as usize {
                    let at = m * n + r * t + i;
                    ids[at] = toks[s + i];
                    targets[at] = toks[s + i + 1];
                    mask[at] = 1.0;
                }
                counts[m] += w.n_targets as f32;
            }
        }
        Ok(Batch {
            ids: Tensor::from_vec(ids, (k, batch, t), device)?,
            targets: Tensor::from_vec(targets, (k, n), device)?,
            mask: Tensor::from_vec(mask, (k, n), device)?,
            counts: Tensor::from_vec(counts.clone(), k, device)?,
            n_tokens: counts,
            t,
        })
    }
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
