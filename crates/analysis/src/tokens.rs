//! Per-token memorization: which part of a document is memorized. For
//! every predicted token, the in-models' mean minus the out-models' mean
//! of its correctness (accuracy) and of its loss (out − in, nats), over
//! the models whose per-token results were kept (`cfmem run --per-token`).
//! Unadjusted: the model-mean adjustment is a per-document correction.
//!
//! Averaged over a document's tokens, the accuracy view is the document's
//! unadjusted accuracy estimate (each model's accuracy on a document is the
//! mean of its tokens' correctness, and the means commute).

use crate::error::{Error, Result};
use crate::estimate::Metric;

/// Per-token memorization of every document.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenMem {
    /// Document `d`'s targets are `starts[d]..starts[d + 1]`.
    pub starts: Vec<usize>,
    /// In-mean minus out-mean of correctness, per target (NaN where a side
    /// has no model).
    pub accuracy: Vec<f32>,
    /// Out-mean minus in-mean of the loss (nats), per target (NaN likewise).
    pub loss: Vec<f32>,
    /// Standard error of each `accuracy` value: Agresti & Caffo's (2000),
    /// one success and one failure added to each side, so that it is not 0
    /// where every model on each side agrees.
    pub accuracy_se: Vec<f32>,
    /// Welch's standard error of each `loss` value (NaN below two models a
    /// side).
    pub loss_se: Vec<f32>,
    /// Models used.
    pub n_models: usize,
}

impl TokenMem {
    /// Document `d`'s per-token memorization under `metric` (accuracy, or
    /// the loss difference for the loss and log-probability metrics: both
    /// are sums of per-token log-likelihoods).
    pub fn doc(&self, d: usize, metric: Metric) -> &[f32] {
        let r = self.starts[d]..self.starts[d + 1];
        match metric {
            Metric::Accuracy | Metric::Extraction | Metric::ExtractionLength => &self.accuracy[r],
            Metric::Loss | Metric::LogProb => &self.loss[r],
        }
    }

    /// The standard errors of [`TokenMem::doc`]'s values.
    pub fn doc_se(&self, d: usize, metric: Metric) -> &[f32] {
        let r = self.starts[d]..self.starts[d + 1];
        match metric {
            Metric::Accuracy | Metric::Extraction | Metric::ExtractionLength => {
                &self.accuracy_se[r]
            }
            Metric::Loss | Metric::LogProb => &self.loss_se[r],
        }
    }

    /// Number of documents.
    pub fn n_docs(&self) -> usize {
        self.starts.len() - 1
    }
}

/// A text cut into runs of characters that share a per-token value, for
/// showing per-token memorization on the text: `(length in UTF-16 code
/// units, value)` pairs covering `text` in order. Token `j` covers the
/// bytes `spans[j]` and has `values[j]` (extra values, e.g. the
/// end-of-sequence target's, are ignored); a character takes the mean of
/// its bytes' values (a byte tokenizer splits multi-byte characters), NaN
/// where no token covers it.
pub fn text_segments(
    text: &str,
    spans: &[std::ops::Range<usize>],
    values: &[f32],
) -> Vec<(u32, f32)> {
    text_segments_se(text, spans, values, values)
        .into_iter()
        .map(|(n, v, _)| (n, v))
        .collect()
}

/// [`text_segments`] with each run's standard error beside its value
/// (`se[j]` for token `j`, a character's the mean of its bytes' too): `(length,
/// value, se)`, a new run where either changes.
pub fn text_segments_se(
    text: &str,
    spans: &[std::ops::Range<usize>],
    values: &[f32],
    se: &[f32],
) -> Vec<(u32, f32, f32)> {
    let per_byte = |values: &[f32]| {
        let mut at_byte = vec![f32::NAN; text.len()];
        for (span, &v) in spans.iter().zip(values) {
            for b in span.clone() {
                if let Some(x) = at_byte.get_mut(b) {
                    *x = v;
                }
            }
        }
        at_byte
    };
    let (v_at, se_at) = (per_byte(values), per_byte(se));
    let mean = |bytes: &[f32]| {
        let known: Vec<f32> = bytes.iter().copied().filter(|x| !x.is_nan()).collect();
        if known.is_empty() {
            f32::NAN
        } else {
            known.iter().sum::<f32>() / known.len() as f32
        }
    };
    let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
    let mut out: Vec<(u32, f32, f32)> = Vec::new();
    for (b, c) in text.char_indices() {
        let r = b..b + c.len_utf8();
        let (v, e) = (mean(&v_at[r.clone()]), mean(&se_at[r]));
        let w = c.len_utf16() as u32;
        match out.last_mut() {
            Some((n, lv, le)) if same(*lv, v) && same(*le, e) => *n += w,
            _ => out.push((w, v, e)),
        }
    }
    out
}

/// Streams models' per-token results into [`TokenMem`]: memory 24 bytes
/// per target.
#[derive(Debug, Clone)]
pub struct TokenMemAccumulator {
    starts: Vec<usize>,
    in_correct: Vec<u32>,
    out_correct: Vec<u32>,
    in_nll: Vec<f64>,
    out_nll: Vec<f64>,
    in_nll2: Vec<f64>,
    out_nll2: Vec<f64>,
    n_in: Vec<u32>,
    n_out: Vec<u32>,
    n_models: usize,
}

impl TokenMemAccumulator {
    /// For documents with `n_targets[d]` targets each.
    pub fn new(n_targets: &[usize]) -> Self {
        let mut starts = Vec::with_capacity(n_targets.len() + 1);
        starts.push(0);
        for &n in n_targets {
            starts.push(starts.last().copied().unwrap_or(0) + n);
        }
        let total = starts.last().copied().unwrap_or(0);
        Self {
            in_correct: vec![0; total],
            out_correct: vec![0; total],
            in_nll: vec![0.0; total],
            out_nll: vec![0.0; total],
            in_nll2: vec![0.0; total],
            out_nll2: vec![0.0; total],
            n_in: vec![0; n_targets.len()],
            n_out: vec![0; n_targets.len()],
            starts,
            n_models: 0,
        }
    }

    /// Add model `model`: its copies of each document, and its correctness
    /// and loss per target.
    ///
    /// # Errors
    /// [`Error::RowLength`] when the lengths do not fit the documents.
    pub fn add(
        &mut self,
        model: usize,
        copies: &[u32],
        correct: &[bool],
        nll: &[f32],
    ) -> Result<()> {
        let total = self.in_correct.len();
        let bad = |got: usize, expected: usize| Error::RowLength {
            model,
            got,
            expected,
        };
        if copies.len() != self.n_in.len() {
            return Err(bad(copies.len(), self.n_in.len()));
        }
        if correct.len() != total || nll.len() != total {
            return Err(bad(correct.len().min(nll.len()), total));
        }
        for (d, &c) in copies.iter().enumerate() {
            let r = self.starts[d]..self.starts[d + 1];
            let (hits, sums, squares, n) = if c > 0 {
                (
                    &mut self.in_correct,
                    &mut self.in_nll,
                    &mut self.in_nll2,
                    &mut self.n_in[d],
                )
            } else {
                (
                    &mut self.out_correct,
                    &mut self.out_nll,
                    &mut self.out_nll2,
                    &mut self.n_out[d],
                )
            };
            *n += 1;
            for t in r {
                hits[t] += u32::from(correct[t]);
                let x = f64::from(nll[t]);
                sums[t] += x;
                squares[t] += x * x;
            }
        }
        self.n_models += 1;
        Ok(())
    }

    /// The per-token differences.
    pub fn finish(self) -> TokenMem {
        let total = self.in_correct.len();
        let (mut accuracy, mut loss) = (vec![f32::NAN; total], vec![f32::NAN; total]);
        let (mut accuracy_se, mut loss_se) = (vec![f32::NAN; total], vec![f32::NAN; total]);
        // Agresti–Caffo: p̃ = (x + 1)/(n + 2), variance p̃(1 − p̃)/(n + 2).
        let ac = |x: u32, n: f64| {
            let p = (f64::from(x) + 1.0) / (n + 2.0);
            p * (1.0 - p) / (n + 2.0)
        };
        // The sample variance of a side's losses over its size.
        let var_of_mean = |sum: f64, sq: f64, n: f64| {
            if n < 2.0 {
                f64::NAN
            } else {
                ((sq - sum * sum / n) / (n - 1.0)).max(0.0) / n
            }
        };
        for d in 0..self.n_in.len() {
            let (ni, no) = (f64::from(self.n_in[d]), f64::from(self.n_out[d]));
            if ni == 0.0 || no == 0.0 {
                continue;
            }
            for t in self.starts[d]..self.starts[d + 1] {
                accuracy[t] = (f64::from(self.in_correct[t]) / ni
                    - f64::from(self.out_correct[t]) / no) as f32;
                loss[t] = (self.out_nll[t] / no - self.in_nll[t] / ni) as f32;
                accuracy_se[t] =
                    (ac(self.in_correct[t], ni) + ac(self.out_correct[t], no)).sqrt() as f32;
                loss_se[t] = (var_of_mean(self.in_nll[t], self.in_nll2[t], ni)
                    + var_of_mean(self.out_nll[t], self.out_nll2[t], no))
                .sqrt() as f32;
            }
        }
        TokenMem {
            starts: self.starts,
            accuracy,
            loss,
            accuracy_se,
            loss_se,
            n_models: self.n_models,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_token_differences_match_a_brute_force_count() {
        // Two documents of 3 and 2 targets, four models.
        let n_targets = [3, 2];
        let models: [(&[u32], [bool; 5], [f32; 5]); 4] = [
            (
                &[1, 0],
                [true, true, false, true, false],
                [0.1, 0.2, 3.0, 0.5, 1.0],
            ),
            (
                &[0, 1],
                [false, true, false, true, true],
                [2.0, 0.3, 2.5, 0.4, 0.2],
            ),
            (
                &[1, 1],
                [true, false, true, false, false],
                [0.2, 1.0, 0.7, 2.0, 1.5],
            ),
            (
                &[0, 0],
                [false, false, false, true, false],
                [2.2, 1.1, 2.9, 0.6, 1.2],
            ),
        ];
        let mut acc = TokenMemAccumulator::new(&n_targets);
        for (i, (c, k, l)) in models.iter().enumerate() {
            acc.add(i, c, k, l).unwrap();
        }
        let tm = acc.finish();
        assert_eq!(tm.n_models, 4);
        // Doc 0, target 0: in = models 0, 2 (correct, correct), out = 1, 3 (no, no): 1 − 0.
        assert_eq!(tm.doc(0, Metric::Accuracy), &[1.0, 0.0, 0.5]);
        // Doc 1, target 3: in = models 1, 2 (yes, no) = 0.5, out = 0, 3 (yes, yes) = 1;
        // target 4: in (yes, no) = 0.5, out (no, no) = 0.
        assert_eq!(tm.doc(1, Metric::Accuracy), &[-0.5, 0.5]);
        // Loss of doc 0, target 2: out (2.5 + 2.9)/2 − in (3.0 + 0.7)/2 = 0.85.
        assert!((tm.doc(0, Metric::Loss)[2] - 0.85).abs() < 1e-6);
        // Its errors. Accuracy, doc 0 target 0: in 2 of 2 correct, out 0
        // of 2: p̃ = 3/4 and 1/4, se = √(2 · (3/16)/4) = √(3/32).
        assert!((tm.doc_se(0, Metric::Accuracy)[0] - (3.0f32 / 32.0).sqrt()).abs() < 1e-6);
        // Loss, doc 0 target 2: in {3.0, 0.7} (variance 2.645), out {2.5,
        // 2.9} (variance 0.08): se = √(2.645/2 + 0.08/2).
        let want = (2.645f32 / 2.0 + 0.08 / 2.0).sqrt();
        assert!((tm.doc_se(0, Metric::Loss)[2] - want).abs() < 1e-5);
        assert!(acc_err());
    }

    fn acc_err() -> bool {
        let mut a = TokenMemAccumulator::new(&[2]);
        a.add(0, &[1], &[true], &[0.0]).is_err()
            && a.add(0, &[1, 0], &[true, true], &[0.0, 0.0]).is_err()
    }

    #[test]
    fn segments_follow_tokens_and_characters() {
        // Bytes: "aé b" is a, é (2 bytes), space, b: five byte tokens.
        let text = "aé b";
        let spans: Vec<_> = (0..text.len()).map(|i| i..i + 1).collect();
        let seg = text_segments(text, &spans, &[0.5, 0.2, 0.4, 0.0, 0.0, 9.0]);
        // a = 0.5; é = mean(0.2, 0.4) = 0.3; " b" share 0.0 (merged); the
        // sixth value (end of sequence) is ignored.
        assert_eq!(seg.len(), 3);
        assert_eq!(seg[0], (1, 0.5));
        assert_eq!(seg[1].0, 1);
        assert!((seg[1].1 - 0.3).abs() < 1e-6);
        assert_eq!(seg[2], (2, 0.0));
        // Subword tokens: "hello world" as "hello", " world"; a character
        // outside every span (none here) would be NaN.
        let seg = text_segments("hello world", &[0..5, 5..11], &[1.0, -1.0]);
        assert_eq!(seg, vec![(5, 1.0), (6, -1.0)]);
        // UTF-16 lengths: an astral character counts 2.
        let seg = text_segments("😀x", &[0..4, 4..5], &[1.0, 2.0]);
        assert_eq!(seg, vec![(2, 1.0), (1, 2.0)]);
        let first_only = [std::ops::Range { start: 0, end: 1 }];
        let seg = text_segments("ab", &first_only, &[1.0]);
        assert_eq!(seg[0], (1, 1.0));
        assert!(seg[1].1.is_nan());
    }

    #[test]
    fn a_side_without_models_gives_nan() {
        let mut a = TokenMemAccumulator::new(&[1]);
        a.add(0, &[1], &[true], &[0.5]).unwrap();
        assert!(a.finish().accuracy[0].is_nan());
    }
}
