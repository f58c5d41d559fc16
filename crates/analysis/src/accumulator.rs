//! The streaming estimator: per-document in/out statistics from model
//! rows, with Welch's standard error for independent models and a
//! block-clustered one for block designs.

use crate::binary::mover;
use crate::error::{Error, Result};
use crate::estimate::{t_interval, welch, Estimate, Metric, NoEstimate, RunningStats};

/// One document's sums for the block-clustered standard error: the
/// current block's in/out sums and counts, and the cross-block sums of
/// their products. Scores are shifted by the document's first score, so
/// the sums stay small and the expansion below loses no precision.
#[derive(Debug, Clone, Copy, Default)]
struct BlockSums {
    shift: Option<f64>,
    /// Current block: Σ in, n in, Σ out, n out.
    cur: [f64; 4],
    /// Over finished blocks: Σ S_I², Σ S_O², Σ S_I S_O, Σ c_I S_I, Σ c_I S_O,
    /// Σ c_O S_I, Σ c_O S_O, Σ c_I², Σ c_O², Σ c_I c_O.
    acc: [f64; 10],
    /// Blocks with at least one score.
    k: usize,
}

impl BlockSums {
    fn push(&mut self, x: f64, inn: bool) {
        let shift = *self.shift.get_or_insert(x);
        let at = if inn { 0 } else { 2 };
        self.cur[at] += x - shift;
        self.cur[at + 1] += 1.0;
    }

    fn flush(&mut self) {
        let [si, ci, so, co] = self.cur;
        if ci + co == 0.0 {
            return;
        }
        let terms = [
            si * si,
            so * so,
            si * so,
            ci * si,
            ci * so,
            co * si,
            co * so,
            ci * ci,
            co * co,
            ci * co,
        ];
        for (a, t) in self.acc.iter_mut().zip(terms) {
            *a += t;
        }
        self.k += 1;
        self.cur = [0.0; 4];
    }

    /// The cluster-robust (CR1) standard error of `mean_in − mean_out`
    /// with blocks as clusters, and its degrees of freedom `K − 1`.
    fn se(&self, inn: &RunningStats, out: &RunningStats) -> Option<(f64, f64)> {
        let k = self.k as f64;
        if self.k < 2 || inn.n == 0 || out.n == 0 {
            return None;
        }
        let shift = self.shift?;
        let (a, b) = (1.0 / inn.n as f64, 1.0 / out.n as f64);
        let (p, q) = ((inn.mean - shift) * a, (out.mean - shift) * b);
        let [ssi, sso, sio, cisi, ciso, cosi, coso, cici, coco, cico] = self.acc;
        // Σ_k (a S_Ik − b S_Ok − p c_Ik + q c_Ok)², expanded.
        let sum = a * a * ssi + b * b * sso + p * p * cici + q * q * coco
            - 2.0 * a * b * sio
            - 2.0 * a * p * cisi
            + 2.0 * a * q * cosi
            + 2.0 * b * p * ciso
            - 2.0 * b * q * coso
            - 2.0 * p * q * cico;
        Some(((k / (k - 1.0) * sum.max(0.0)).sqrt(), k - 1.0))
    }

    /// The correlation of the in- and out-models' means across blocks, from
    /// the same sums as [`BlockSums::se`]: with `X_k`, `Y_k` the in and out
    /// parts of `T_k`, `Σ X_k Y_k / √(Σ X_k² Σ Y_k²)`; 0 where a side does
    /// not vary (Newcombe's rule for a zero margin).
    fn corr(&self, inn: &RunningStats, out: &RunningStats) -> f64 {
        let Some(shift) = self.shift else { return 0.0 };
        if self.k < 2 || inn.n == 0 || out.n == 0 {
            return 0.0;
        }
        let (a, b) = (1.0 / inn.n as f64, 1.0 / out.n as f64);
        let (p, q) = ((inn.mean - shift) * a, (out.mean - shift) * b);
        let [ssi, sso, sio, cisi, ciso, cosi, coso, cici, coco, cico] = self.acc;
        let xx = a * a * ssi - 2.0 * a * p * cisi + p * p * cici;
        let yy = b * b * sso - 2.0 * b * q * coso + q * q * coco;
        let xy = a * b * sio - a * q * cosi - b * p * ciso + p * q * cico;
        // Rounding leaves a constant side at ≈ 1e-17, not 0.
        if xx <= 1e-12 * a * a || yy <= 1e-12 * b * b {
            return 0.0;
        }
        (xy / (xx * yy).sqrt()).clamp(-1.0, 1.0)
    }
}

/// Streams per-model score rows into per-document in/out statistics:
/// memory O(documents), whatever the number of models.
///
/// # Formula
/// ```text
/// mem(x) = mean{ M(model_i, x) : x ∈ S_i } − mean{ M(model_i, x) : x ∉ S_i }
/// ```
/// (sign flipped for losses), with a Student-t interval. Its standard error:
///
/// - models drawn independently (Bernoulli and repetition designs, imported
///   tables): Welch's, with Welch–Satterthwaite degrees of freedom;
/// - block designs ([`MemAccumulator::blocks`]): the cluster-robust (CR1)
///   standard error with the blocks as clusters and `K − 1` degrees of
///   freedom for `K` blocks. Models of a block share one random split of
///   the corpus (complementary subsets), so their overall qualities can be
///   correlated (complementary halves have complementary token totals);
///   Welch's error, which treats them as independent, then undercovers.
///   For complete blocks this is the paired-difference error: with
///   `D_k` = (in-model score − mean out-model score) in block `k`,
///   `se² = s²(D) / K`.
///
/// ```text
/// e_i = s_i − mean_in (in-models),  s_i − mean_out (out-models)
/// T_k = Σ_{i ∈ block k, in} e_i / n_in − Σ_{i ∈ block k, out} e_i / n_out
/// se² = K / (K − 1) · Σ_k T_k²
/// ```
/// (Liang & Zeger 1986; the CR1 small-sample factor of Cameron & Miller 2015.)
/// Coverage of both errors is checked by simulation in
/// `crates/analysis/tests/coverage.rs`.
///
/// For a 0/1 metric ([`Metric::is_binary`]: extraction) the interval is
/// not Student t, which collapses to a point when each side's models all
/// score the same: it is the MOVER interval of a difference of
/// proportions on Clopper–Pearson bounds (with blocks, widened by a
/// negative correlation of the sides' means estimated from the block
/// sums), and `se` is its half-width over `z`
/// (`crates/analysis/src/binary.rs`, `tests/coverage_binary.rs`).
#[derive(Debug, Clone)]
pub struct MemAccumulator {
    metric: Metric,
    level: f64,
    inn: Vec<RunningStats>,
    out: Vec<RunningStats>,
    n_models: usize,
    /// Models per block (1: independent models, Welch).
    block: usize,
    /// Block of the rows being added (block designs).
    current: Option<usize>,
    blocks: Vec<BlockSums>,
}

impl MemAccumulator {
    /// An accumulator for `n_docs` documents, 95 % intervals, models
    /// independent (Welch's error).
    pub fn new(n_docs: usize, metric: Metric) -> Self {
        Self {
            metric,
            level: 0.95,
            inn: vec![RunningStats::default(); n_docs],
            out: vec![RunningStats::default(); n_docs],
            n_models: 0,
            block: 1,
            current: None,
            blocks: Vec::new(),
        }
    }

    /// Set the confidence level of the intervals (default 0.95).
    pub fn level(mut self, level: f64) -> Self {
        self.level = level;
        self
    }

    /// Models come in blocks of `b` (model `i` in block `i / b`): the
    /// standard error is clustered by block. `b ≤ 1` keeps Welch's.
    pub fn blocks(mut self, b: usize) -> Self {
        self.block = b.max(1);
        self.blocks = if self.block > 1 {
            vec![BlockSums::default(); self.inn.len()]
        } else {
            Vec::new()
        };
        self
    }

    /// Add one model, counted as the next model index: `copies[d]` > 0
    /// when document `d` was in its subset, `scores[d]` its metric on
    /// document `d`. Non-finite scores are skipped.
    ///
    /// # Errors
    /// [`Error::RowLength`] when a row's length is not the number of documents.
    pub fn add(&mut self, copies: &[u32], scores: &[f64]) -> Result<()> {
        self.add_model(self.n_models, copies, scores)
    }

    /// Add model `model` (its index places it in its block). Rows must come
    /// in increasing model order when the accumulator has blocks.
    ///
    /// # Errors
    /// [`Error::RowLength`]; [`Error::Index`] for a row of an earlier block.
    pub fn add_model(&mut self, model: usize, copies: &[u32], scores: &[f64]) -> Result<()> {
        let n = self.inn.len();
        for len in [copies.len(), scores.len()] {
            if len != n {
                return Err(Error::RowLength {
                    model,
                    got: len,
                    expected: n,
                });
            }
        }
        if self.block > 1 {
            let b = model / self.block;
            match self.current {
                Some(c) if b < c => {
                    return Err(Error::BlockOrder {
                        model,
                        block: b,
                        after: c,
                    })
                }
                Some(c) if b > c => self.blocks.iter_mut().for_each(BlockSums::flush),
                _ => {}
            }
            self.current = Some(b);
        }
        for d in 0..n {
            if !scores[d].is_finite() {
                continue;
            }
            let inn = copies[d] > 0;
            if inn {
                self.inn[d].push(scores[d]);
            } else {
                self.out[d].push(scores[d]);
            }
            if let Some(bs) = self.blocks.get_mut(d) {
                bs.push(scores[d], inn);
            }
        }
        self.n_models += 1;
        Ok(())
    }

    /// Number of models added.
    pub fn n_models(&self) -> usize {
        self.n_models
    }

    /// One estimate per document.
    pub fn finish(&self) -> Vec<Estimate> {
        (0..self.inn.len())
            .map(|d| {
                let (i, o) = (&self.inn[d], &self.out[d]);
                let error = match self.blocks.get(d) {
                    None if self.metric.is_binary() => mover(i, o, 0.0, self.level),
                    None => welch(i, o, self.level),
                    Some(bs) if self.metric.is_binary() => {
                        let mut bs = *bs;
                        bs.flush();
                        mover(i, o, bs.corr(i, o), self.level)
                    }
                    Some(bs) => {
                        let mut bs = *bs;
                        bs.flush();
                        bs.se(i, o)
                            .and_then(|(se, df)| t_interval(i.mean - o.mean, se, df, self.level))
                    }
                };
                let mut e = Estimate::with_error(i, o, self.metric, error);
                if i.n + o.n == 0 && self.n_models > 0 {
                    // Every model's score was missing (non-finite).
                    e.reason = Some(NoEstimate::NotScored);
                }
                e
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulator_matches_brute_force() {
        // 6 models × 3 documents; membership and scores by hand.
        let membership = [
            [1, 0, 1],
            [0, 1, 1],
            [1, 1, 0],
            [0, 0, 1],
            [1, 0, 0],
            [0, 1, 0],
        ];
        let scores = [
            [0.9, 0.2, 0.7],
            [0.4, 0.8, 0.6],
            [0.8, 0.7, 0.3],
            [0.5, 0.1, 0.9],
            [0.7, 0.3, 0.2],
            [0.3, 0.9, 0.4],
        ];
        let mut acc = MemAccumulator::new(3, Metric::Accuracy);
        for (m, s) in membership.iter().zip(&scores) {
            acc.add(m, s).unwrap();
        }
        let est = acc.finish();
        for d in 0..3 {
            let inn: Vec<f64> = (0..6)
                .filter(|&i| membership[i][d] == 1)
                .map(|i| scores[i][d])
                .collect();
            let out: Vec<f64> = (0..6)
                .filter(|&i| membership[i][d] == 0)
                .map(|i| scores[i][d])
                .collect();
            let mi = inn.iter().sum::<f64>() / inn.len() as f64;
            let mo = out.iter().sum::<f64>() / out.len() as f64;
            let var = |v: &[f64], m: f64| {
                v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
            };
            let se = (var(&inn, mi) / inn.len() as f64 + var(&out, mo) / out.len() as f64).sqrt();
            let e = &est[d];
            assert_eq!((e.n_in, e.n_out), (inn.len(), out.len()));
            assert!((e.mem.unwrap() - (mi - mo)).abs() < 1e-12);
            assert!((e.se.unwrap() - se).abs() < 1e-12);
            assert!(e.ci_low.unwrap() < e.mem.unwrap() && e.mem.unwrap() < e.ci_high.unwrap());
        }
        // Document 0: in = {0.9, 0.8, 0.7} mean 0.8; out = {0.4, 0.5, 0.3} mean 0.4.
        assert!((est[0].mem.unwrap() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn loss_flips_sign_and_interval() {
        let mut acc = MemAccumulator::new(1, Metric::Loss);
        for (c, s) in [(1, 1.0), (1, 1.2), (0, 2.0), (0, 2.4)] {
            acc.add(&[c], &[s]).unwrap();
        }
        let e = &acc.finish()[0];
        assert_eq!(e.in_mean, Some(1.1));
        assert!((e.mem.unwrap() - 1.1).abs() < 1e-12);
        assert!(e.ci_low.unwrap() < 1.1 && e.ci_high.unwrap() > 1.1);
        let half = e.ci_high.unwrap() - e.mem.unwrap();
        assert!((half - (e.mem.unwrap() - e.ci_low.unwrap())).abs() < 1e-12);
    }

    #[test]
    fn empty_side_gives_no_estimate_not_zero() {
        let mut acc = MemAccumulator::new(2, Metric::Accuracy);
        acc.add(&[1, 0], &[0.5, 0.5]).unwrap();
        acc.add(&[1, 1], &[0.6, 0.7]).unwrap();
        let est = acc.finish();
        assert_eq!(est[0].mem, None);
        assert_eq!(est[0].reason, Some(NoEstimate::NoOutModel));
        assert_eq!(est[0].out_mean, None);
        // One model per side: a gap but no SE.
        assert!((est[1].mem.unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(est[1].se, None);
        assert!(matches!(
            acc.add(&[1], &[0.1]),
            Err(Error::RowLength {
                model: 2,
                got: 1,
                expected: 2
            })
        ));
    }

    #[test]
    fn a_document_no_model_scored_says_so() {
        // Extraction: document 1 too short (NaN for every model).
        let mut acc = MemAccumulator::new(2, Metric::Extraction);
        assert_eq!(acc.finish()[1].reason, Some(NoEstimate::NoInModel));
        acc.add(&[1, 1], &[1.0, f64::NAN]).unwrap();
        acc.add(&[0, 0], &[0.0, f64::NAN]).unwrap();
        acc.add(&[1, 0], &[1.0, f64::NAN]).unwrap();
        let est = acc.finish();
        assert_eq!((est[0].mem, est[0].reason), (Some(1.0), None));
        assert_eq!((est[1].n_in, est[1].n_out), (0, 0));
        assert_eq!(
            (est[1].mem, est[1].reason),
            (None, Some(NoEstimate::NotScored))
        );
    }

    /// Brute-force cluster-robust error: residuals from the group means,
    /// weighted 1/n_in and −1/n_out, summed per block, squared, summed,
    /// times K/(K−1).
    fn cr1(rows: &[(usize, u32, f64)], b: usize) -> (f64, f64) {
        let (mut si, mut ni, mut so, mut no) = (0.0, 0.0, 0.0, 0.0);
        for &(_, c, x) in rows {
            if c > 0 {
                si += x;
                ni += 1.0;
            } else {
                so += x;
                no += 1.0;
            }
        }
        let (mi, mo) = (si / ni, so / no);
        let k = rows.iter().map(|r| r.0 / b).max().unwrap() + 1;
        let mut t = vec![0.0; k];
        for &(i, c, x) in rows {
            t[i / b] += if c > 0 { (x - mi) / ni } else { -(x - mo) / no };
        }
        let k = k as f64;
        (
            (k / (k - 1.0) * t.iter().map(|x| x * x).sum::<f64>()).sqrt(),
            k - 1.0,
        )
    }

    #[test]
    fn block_errors_are_the_paired_and_cluster_robust_ones() {
        // One document, blocks of 2, 4 complete blocks: the paired error.
        let rows: Vec<(usize, u32, f64)> = vec![
            (0, 1, 0.90),
            (1, 0, 0.40),
            (2, 0, 0.55),
            (3, 1, 0.80),
            (4, 1, 0.70),
            (5, 0, 0.45),
            (6, 0, 0.35),
            (7, 1, 0.95),
        ];
        let mut acc = MemAccumulator::new(1, Metric::Accuracy).blocks(2);
        for &(i, c, x) in &rows {
            acc.add_model(i, &[c], &[x]).unwrap();
        }
        let e = &acc.finish()[0];
        // D_k = in − out per block: 0.50, 0.25, 0.25, 0.60; mean 0.4.
        let d = [0.5, 0.25, 0.25, 0.6];
        let var = d.iter().map(|x: &f64| (x - 0.4).powi(2)).sum::<f64>() / 3.0;
        assert!((e.mem.unwrap() - 0.4).abs() < 1e-12);
        assert!((e.se.unwrap() - (var / 4.0).sqrt()).abs() < 1e-12, "{e:?}");
        assert_eq!(e.df, Some(3.0));
        // t_{0.975, 3} = 3.182446 (tables).
        assert!((e.ci_high.unwrap() - (0.4 + 3.182_446 * e.se.unwrap())).abs() < 1e-5);
        // Blocks of 3 with a partial last block and a missing model: CR1 by brute force.
        let rows: Vec<(usize, u32, f64)> = vec![
            (0, 1, 0.9),
            (1, 0, 0.4),
            (2, 0, 0.5),
            (3, 0, 0.45),
            (5, 1, 0.85),
            (6, 0, 0.3),
            (7, 1, 0.75),
        ];
        let mut acc = MemAccumulator::new(1, Metric::Loss).blocks(3);
        for &(i, c, x) in &rows {
            acc.add_model(i, &[c], &[x]).unwrap();
        }
        let e = &acc.finish()[0];
        let (se, df) = cr1(&rows, 3);
        assert!(
            (e.se.unwrap() - se).abs() < 1e-12,
            "{} vs {se}",
            e.se.unwrap()
        );
        assert_eq!(e.df, Some(df));
        // Rows of an earlier block are refused.
        assert!(acc.add_model(0, &[1], &[0.5]).is_err());
        // Scores far from 0 lose no precision (the sums are shifted).
        let mut far = MemAccumulator::new(1, Metric::Accuracy).blocks(3);
        let shifted: Vec<(usize, u32, f64)> =
            rows.iter().map(|&(i, c, x)| (i, c, x + 1e6)).collect();
        for &(i, c, x) in &shifted {
            far.add_model(i, &[c], &[x]).unwrap();
        }
        assert!((far.finish()[0].se.unwrap() - se).abs() < 1e-9);
    }
}
