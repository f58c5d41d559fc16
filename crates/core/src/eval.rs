//! Evaluation: every model on every document, forward only.

use candle_core::{DType, Device, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::data::{HostBatch, TokenizedCorpus, Window};
use crate::error::Result;
use crate::fused::Kernels;
use crate::model::{token_nll_with, Gpt};
use crate::native::{argmax, Evaluated, Host, Workspace};

/// One model's performance on one document: sums over its predicted tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DocEval {
    /// Predicted tokens.
    pub n_tokens: u32,
    /// Tokens whose argmax prediction was right.
    pub n_correct: u32,
    /// Sum of per-token negative log-likelihoods (nats).
    pub sum_nll: f64,
}

impl DocEval {
    /// Per-token accuracy.
    pub fn accuracy(&self) -> f64 {
        f64::from(self.n_correct) / f64::from(self.n_tokens.max(1))
    }

    /// Mean per-token loss (nats).
    pub fn loss(&self) -> f64 {
        self.sum_nll / f64::from(self.n_tokens.max(1))
    }

    /// Sequence log-probability: the sum of per-token log-likelihoods (nats, ≤ 0).
    pub fn log_prob(&self) -> f64 {
        -self.sum_nll
    }
}

/// One model's results on every predicted token of a corpus, in corpus
/// order: document `d`'s targets are at
/// [`TokenizedCorpus::target_offset`]`(d)..` + [`TokenizedCorpus::n_targets`]`(d)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenScores {
    /// Whether the argmax prediction was right, per target.
    pub correct: Vec<bool>,
    /// Negative log-likelihood per target (nats).
    pub nll: Vec<f32>,
    /// Per target, the mean of `log p(z)` over the model's next-token
    /// distribution `z ~ p(· | x_<t)` (nats, ≤ 0; minus its entropy): with
    /// `sigma`, what Min-K %++ standardises a token's log-likelihood by.
    /// Empty in per-token files written before it was kept.
    pub mu: Vec<f32>,
    /// Per target, the standard deviation of `log p(z)` under the same
    /// distribution. Empty where `mu` is.
    pub sigma: Vec<f32>,
}

/// The mean and standard deviation of `log p(z)` for `z` drawn from each
/// row's next-token distribution, from logits `[.., V]`: `μ = Σ p log p`,
/// `σ² = Σ p (log p)² − μ²` (Zhang et al. 2024, Min-K %++). Two tensors
/// of the logits' shape without the last axis, in f32.
///
/// # Errors
/// Candle errors.
pub fn next_token_moments(logits: &Tensor) -> Result<(Tensor, Tensor)> {
    let logp = crate::model::log_softmax_last(&logits.to_dtype(DType::F32)?)?;
    let p = logp.exp()?;
    let plogp = (&p * &logp)?;
    let mu = plogp.sum(D::Minus1)?;
    let m2 = (&plogp * &logp)?.sum(D::Minus1)?;
    // Rounding can leave σ² a hair below 0 for a near-deterministic model.
    let var = (m2 - mu.sqr()?)?.relu()?;
    Ok((mu, var.sqrt()?))
}

/// Evaluate each model of `model` on every document of `corpus`, in
/// batches of `batch` windows. Returns `K` rows of one [`DocEval`] per document.
///
/// # Errors
/// Candle errors.
pub fn evaluate(
    model: &Gpt,
    corpus: &TokenizedCorpus,
    batch: usize,
    device: &Device,
) -> Result<Vec<Vec<DocEval>>> {
    Ok(evaluate_inner(model, corpus, batch, device, false)?.0)
}

/// [`evaluate`], and each model's [`TokenScores`] (the per-document sums
/// are those of the token scores: the same numbers, bit for bit).
///
/// # Errors
/// Candle errors.
pub fn evaluate_tokens(
    model: &Gpt,
    corpus: &TokenizedCorpus,
    batch: usize,
    device: &Device,
) -> Result<(Vec<Vec<DocEval>>, Vec<TokenScores>)> {
    evaluate_inner(model, corpus, batch, device, true)
}

fn evaluate_inner(
    model: &Gpt,
    corpus: &TokenizedCorpus,
    batch: usize,
    device: &Device,
    per_token: bool,
) -> Result<(Vec<Vec<DocEval>>, Vec<TokenScores>)> {
    let k = model.k();
    let batch = batch.max(1);
    let mut out = vec![vec![DocEval::default(); corpus.n_docs()]; k];
    let total = if per_token { corpus.total_targets() } else { 0 };
    let mut tokens = vec![
        TokenScores {
            correct: vec![false; total],
            nll: vec![0.0; total],
            mu: vec![0.0; total],
            sigma: vec![0.0; total],
        };
        if per_token { k } else { 0 }
    ];
    let mut all: Vec<Window> = (0..corpus.n_docs())
        .flat_map(|d| corpus.windows(d).iter().copied())
        .collect();
    // Longest windows first, so that each batch pads to a length close to
    // its windows' own (a batch is as long as its longest window). The sort
    // is stable: a document's windows keep their order.
    all.sort_by_key(|w| std::cmp::Reverse(w.n_targets));
    let mut add = |chunk: &[Window], t: usize, row: &dyn Fn(usize) -> (f32, bool, f32, f32)| {
        let n = batch * t;
        for (m, evals) in out.iter_mut().enumerate() {
            for (r, w) in chunk.iter().enumerate() {
                let e = &mut evals[w.doc as usize];
                let first = corpus.target_offset(w.doc as usize) + w.start as usize;
                for i in 0..w.n_targets as usize {
                    let (nll, correct, mu, sigma) = row(m * n + r * t + i);
                    e.n_tokens += 1;
                    e.n_correct += u32::from(correct);
                    e.sum_nll += f64::from(nll);
                    if let Some(s) = tokens.get_mut(m) {
                        s.correct[first + i] = correct;
                        s.nll[first + i] = nll;
                        s.mu[first + i] = mu;
                        s.sigma[first + i] = sigma;
                    }
                }
            }
        }
    };
    if model.kernels() == Kernels::Native {
        // The native forward pass, its buffers reused from batch to batch.
        let host = Host::of(model)?;
        let mut ws = Workspace::new(model.config(), &host, batch, model.precision(), false);
        ws.load(&host.theta)?;
        let (mut hb, mut rows) = (HostBatch::default(), Evaluated::default());
        for chunk in all.chunks(batch) {
            corpus.fill_batch(&vec![chunk; k], batch, &mut hb);
            ws.forward(&host.theta, &hb)?;
            ws.evaluate(&hb, per_token, &mut rows);
            add(chunk, hb.t, &|i| rows.row(i));
        }
        return Ok((out, tokens));
    }
    for chunk in all.chunks(batch) {
        let groups: Vec<&[Window]> = vec![chunk; k];
        let b = corpus.batch(&groups, batch, device)?;
        let logits = model.forward(&b.ids)?;
        let nll: Vec<f32> = token_nll_with(&logits, &b.targets, model.kernels())?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        let pred = logits.argmax(D::Minus1)?;
        let correct: Vec<u8> = pred.eq(&b.targets)?.flatten_all()?.to_vec1()?;
        let (mu, sigma) = if per_token {
            let (m, s) = next_token_moments(&logits)?;
            (m.flatten_all()?.to_vec1()?, s.flatten_all()?.to_vec1()?)
        } else {
            (Vec::new(), Vec::new())
        };
        let at = |i: usize| {
            let moment = |v: &[f32]| v.get(i).copied().unwrap_or(0.0);
            (nll[i], correct[i] != 0, moment(&mu), moment(&sigma))
        };
        add(chunk, b.t, &at);
    }
    Ok((out, tokens))
}

/// Greedy continuation: every model of `model` extends every prompt by
/// `steps` tokens, each the argmax of its next-token logits (the
/// extraction test of Carlini et al. 2022: is the true continuation what
/// the model writes?). Prompts must have one length, and prompt + steps − 1
/// tokens must fit the context. Returns `[K][prompt][steps]` token ids.
///
/// # Errors
/// [`crate::Error::Prompts`] for prompts of different lengths,
/// [`crate::Error::PromptTooLong`] for too long ones;
/// candle errors.
pub fn greedy(
    model: &Gpt,
    prompts: &[Vec<u32>],
    steps: usize,
    device: &Device,
) -> Result<Vec<Vec<Vec<u32>>>> {
    let (k, b) = (model.k(), prompts.len());
    let mut out = vec![vec![Vec::with_capacity(steps); b]; k];
    let Some(len) = prompts.first().map(Vec::len) else {
        return Ok(out);
    };
    if len == 0 || prompts.iter().any(|p| p.len() != len) {
        return Err(crate::Error::Prompts);
    }
    if steps > 0 && len + steps - 1 > model.config().ctx {
        return Err(crate::Error::PromptTooLong {
            len,
            steps,
            ctx: model.config().ctx,
        });
    }
    // Each model's own sequences: [K][B][T], extended as they are written.
    let mut seqs: Vec<Vec<Vec<u32>>> = vec![prompts.to_vec(); k];
    let mut decoder = Decoder::new(model, b)?;
    for _ in 0..steps {
        let t = seqs[0][0].len();
        let flat: Vec<u32> = seqs.iter().flatten().flatten().copied().collect();
        let next = decoder.next(&flat, (k, b, t), device)?;
        for m in 0..k {
            for r in 0..b {
                let id = next[m * b + r];
                seqs[m][r].push(id);
                out[m][r].push(id);
            }
        }
    }
    Ok(out)
}

/// The argmax of the last position's logits for every model and prompt:
/// through the native step, its buffers kept from one position to the
/// next, or through candle's graph.
enum Decoder<'a> {
    Native(Box<NativeDecoder>),
    Graph(&'a Gpt),
}

/// The native step's parameters, buffers and batch, kept between
/// positions.
struct NativeDecoder {
    host: Host,
    ws: Workspace,
    batch: HostBatch,
}

impl<'a> Decoder<'a> {
    fn new(model: &'a Gpt, prompts: usize) -> Result<Self> {
        if model.kernels() != Kernels::Native {
            return Ok(Decoder::Graph(model));
        }
        let host = Host::of(model)?;
        let mut ws = Workspace::new(model.config(), &host, prompts, model.precision(), false);
        ws.load(&host.theta)?;
        Ok(Decoder::Native(Box::new(NativeDecoder {
            host,
            ws,
            batch: HostBatch::default(),
        })))
    }

    /// The next id of each `[K, B, T]` sequence of `ids`, model-major.
    fn next(
        &mut self,
        ids: &[u32],
        (k, b, t): (usize, usize, usize),
        device: &Device,
    ) -> Result<Vec<u32>> {
        match self {
            Decoder::Native(d) => {
                let NativeDecoder { host, ws, batch } = d.as_mut();
                *batch = HostBatch {
                    ids: ids.to_vec(),
                    targets: vec![0; k * b * t],
                    mask: vec![0.0; k * b * t],
                    counts: vec![0.0; k],
                    k,
                    batch: b,
                    t,
                };
                ws.forward(&host.theta, batch)?;
                let logits = ws.logits(k * b * t);
                let v = logits.len() / (k * b * t);
                Ok((0..k * b)
                    .map(|i| argmax(&logits[(i * t + t - 1) * v..][..v]) as u32)
                    .collect())
            }
            Decoder::Graph(model) => {
                let ids = Tensor::from_slice(ids, (k, b, t), device)?;
                let logits = model.forward(&ids)?; // [K, B·T, V]
                let v = logits.dim(2)?;
                let last = logits.reshape((k, b, t, v))?.narrow(2, t - 1, 1)?;
                Ok(last.argmax(D::Minus1)?.flatten_all()?.to_vec1()?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// μ = Σ p ln p and σ² = Σ p (ln p)² − μ², by hand for p = (½, ¼, ¼)
    /// (μ = −1.0397208, σ = 0.3465736) and for a distribution on one token
    /// (μ = σ = 0), from logits shifted by a constant (softmax ignores it).
    #[test]
    fn next_token_moments_by_hand() {
        let logits = Tensor::new(
            &[
                [0.5f32.ln() + 3.0, 0.25f32.ln() + 3.0, 0.25f32.ln() + 3.0],
                [0.0, -200.0, -200.0],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let (m, s) = next_token_moments(&logits).unwrap();
        let (m, s): (Vec<f32>, Vec<f32>) = (m.to_vec1().unwrap(), s.to_vec1().unwrap());
        assert!((m[0] + 1.039_720_8).abs() < 1e-5, "{m:?}");
        assert!((s[0] - 0.346_573_6).abs() < 1e-5, "{s:?}");
        assert!(m[1].abs() < 1e-6 && s[1].abs() < 1e-3, "{m:?} {s:?}");
    }
}
