//! Membership scores in the style of LiRA (Carlini et al. 2022): per
//! document, a Gaussian fit of the scores of the models that trained on it
//! (in) and of those that did not (out); a model's observation on the
//! document is then scored by the likelihood ratio (online) or by its
//! distance above the out distribution (offline).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::estimate::variance_from_sums;

/// What a model's observation on a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Observation {
    /// Logit of the per-token confidence `p = exp(−loss)`:
    /// `log p − log(1 − p)` (LiRA's scaling; near-Gaussian across models).
    #[default]
    LogitConfidence,
    /// The negated mean per-token loss.
    NegLoss,
}

impl Observation {
    /// The observation for a mean per-token loss (nats).
    pub fn of_loss(self, loss: f64) -> f64 {
        match self {
            Observation::LogitConfidence => {
                let l = loss.max(1e-9);
                // log p − log(1 − p) with p = e^{−l}, computed stably.
                -l - (-(-l).exp_m1()).ln()
            }
            Observation::NegLoss => -loss,
        }
    }
}

/// Variance used in the Gaussian fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Variance {
    /// Each document's own in- and out-variances.
    #[default]
    PerExample,
    /// One in-variance and one out-variance pooled over documents (each
    /// side its own: in-scores never stand in for out-scores).
    Global,
}

impl std::str::FromStr for Variance {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "per-example" | "per_example" => Ok(Self::PerExample),
            "global" => Ok(Self::Global),
            other => Err(crate::Error::Parse {
                what: "variance",
                input: other.to_string(),
                expected: "per-example or global",
            }),
        }
    }
}

impl std::fmt::Display for Variance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PerExample => "per-example",
            Self::Global => "global",
        })
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    n: f64,
    s1: f64,
    s2: f64,
}

impl Sums {
    fn add(&mut self, x: f64, w: f64) {
        self.n += w;
        self.s1 += w * x;
        self.s2 += w * x * x;
    }
    fn mean(&self) -> f64 {
        self.s1 / self.n
    }
    fn var(&self) -> f64 {
        variance_from_sums(self.n, self.s1, self.s2)
    }
}

/// The Gaussian fits of one document.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GaussianFit {
    /// Models on each side.
    pub n_in: usize,
    /// Models on the out side.
    pub n_out: usize,
    /// Mean of the in-observations.
    pub mu_in: f64,
    /// Standard deviation of the in-observations.
    pub sigma_in: f64,
    /// Mean of the out-observations.
    pub mu_out: f64,
    /// Standard deviation of the out-observations.
    pub sigma_out: f64,
}

/// A model's scores on one document.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MembershipScore {
    /// `log N(s; μ_in, σ_in²) − log N(s; μ_out, σ_out²)`.
    pub online: f64,
    /// `(s − μ_out) / σ_out`, monotone in the one-sided p-value.
    pub offline: f64,
}

/// Smallest standard deviation used, so constant sides do not divide by 0.
const MIN_SIGMA: f64 = 1e-6;

fn log_normal_pdf(x: f64, mu: f64, sigma: f64) -> f64 {
    let z = (x - mu) / sigma;
    -0.5 * z * z - sigma.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
}

/// Streams `(copies, losses)` rows into per-document in/out sums.
///
/// # Formula
/// ```text
/// s      = φ(loss)                                   (Observation)
/// online = log N(s; μ_in, σ_in²) − log N(s; μ_out, σ_out²)
/// offline = (s − μ_out) / σ_out
/// ```
/// Scoring model `t` leaves `t` out of the fits (leave-one-model-out).
#[derive(Debug, Clone)]
pub struct LiraAccumulator {
    observation: Observation,
    inn: Vec<Sums>,
    out: Vec<Sums>,
}

impl LiraAccumulator {
    /// For `n_docs` documents.
    pub fn new(n_docs: usize, observation: Observation) -> Self {
        Self {
            observation,
            inn: vec![Sums::default(); n_docs],
            out: vec![Sums::default(); n_docs],
        }
    }

    fn check(&self, copies: &[u32], losses: &[f64]) -> Result<()> {
        for len in [copies.len(), losses.len()] {
            if len != self.inn.len() {
                return Err(Error::RowLength {
                    model: 0,
                    got: len,
                    expected: self.inn.len(),
                });
            }
        }
        Ok(())
    }

    /// Add one model's row.
    ///
    /// # Errors
    /// [`Error::RowLength`].
    pub fn add(&mut self, copies: &[u32], losses: &[f64]) -> Result<()> {
        self.check(copies, losses)?;
        for d in 0..copies.len() {
            let s = self.observation.of_loss(losses[d]);
            if !s.is_finite() {
                continue;
            }
            if copies[d] > 0 {
                self.inn[d].add(s, 1.0);
            } else {
                self.out[d].add(s, 1.0);
            }
        }
        Ok(())
    }

    /// The median over documents of the smaller side's model count.
    pub fn typical_side(&self) -> usize {
        let mut m: Vec<usize> = self
            .inn
            .iter()
            .zip(&self.out)
            .map(|(i, o)| i.n.min(o.n) as usize)
            .collect();
        m.sort_unstable();
        m.get(m.len() / 2).copied().unwrap_or(0)
    }

    fn pooled(sides: &[Sums], skip: Option<(usize, f64)>) -> f64 {
        // Mean of the per-document variances (documents with ≥ 2 values).
        let (mut total, mut k) = (0.0, 0.0);
        for (d, s) in sides.iter().enumerate() {
            let mut s = *s;
            if let Some((sd, x)) = skip {
                if sd == d {
                    s.add(x, -1.0);
                }
            }
            if s.n >= 2.0 {
                total += s.var();
                k += 1.0;
            }
        }
        if k > 0.0 {
            total / k
        } else {
            f64::NAN
        }
    }

    /// The per-document fits over all models added.
    pub fn fits(&self, variance: Variance) -> Vec<GaussianFit> {
        let (gi, go) = (Self::pooled(&self.inn, None), Self::pooled(&self.out, None));
        self.inn
            .iter()
            .zip(&self.out)
            .map(|(i, o)| {
                let (vi, vo) = match variance {
                    Variance::PerExample => (i.var(), o.var()),
                    Variance::Global => (gi, go),
                };
                GaussianFit {
                    n_in: i.n as usize,
                    n_out: o.n as usize,
                    mu_in: i.mean(),
                    sigma_in: vi.sqrt().max(MIN_SIGMA),
                    mu_out: o.mean(),
                    sigma_out: vo.sqrt().max(MIN_SIGMA),
                }
            })
            .collect()
    }

    /// Score one model (already added) on every document, with that model
    /// left out of the fits. `None` where a side has fewer than two other
    /// models. With `Variance::Global` the pooled variances are computed
    /// once, with the target included (its weight is 1 / documents).
    ///
    /// # Errors
    /// [`Error::RowLength`].
    pub fn score_left_out(
        &self,
        copies: &[u32],
        losses: &[f64],
        variance: Variance,
    ) -> Result<Vec<Option<MembershipScore>>> {
        self.check(copies, losses)?;
        let (gi, go) = (Self::pooled(&self.inn, None), Self::pooled(&self.out, None));
        Ok((0..copies.len())
            .map(|d| {
                let s = self.observation.of_loss(losses[d]);
                if !s.is_finite() {
                    return None;
                }
                let (mut i, mut o) = (self.inn[d], self.out[d]);
                if copies[d] > 0 {
                    i.add(s, -1.0);
                } else {
                    o.add(s, -1.0);
                }
                if i.n < 2.0 || o.n < 2.0 {
                    return None;
                }
                let (vi, vo) = match variance {
                    Variance::PerExample => (i.var(), o.var()),
                    Variance::Global => (gi, go),
                };
                let (si, so) = (vi.sqrt().max(MIN_SIGMA), vo.sqrt().max(MIN_SIGMA));
                Some(MembershipScore {
                    online: log_normal_pdf(s, i.mean(), si) - log_normal_pdf(s, o.mean(), so),
                    offline: (s - o.mean()) / so,
                })
            })
            .collect())
    }
}

/// ROC summary of membership scores against ground truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocSummary {
    /// Members scored.
    pub n_pos: usize,
    /// Non-members scored.
    pub n_neg: usize,
    /// Area under the ROC curve (ties count one half).
    pub auc: f64,
    /// Its interval from the bootstrap over documents ([`roc_clustered`];
    /// `None` from [`roc`] alone).
    #[serde(default)]
    pub auc_ci: Option<[f64; 2]>,
    /// The best true-positive rate at false-positive rates of 0.1 %, 1 % and 10 %.
    pub tpr_at_fpr: Vec<TprAtFpr>,
    /// The ROC curve, `(fpr, tpr)` at every distinct threshold.
    pub curve: Vec<(f64, f64)>,
}

/// The best true-positive rate with a false-positive rate at most `fpr`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TprAtFpr {
    /// The false-positive rate allowed.
    pub fpr: f64,
    /// The best true-positive rate within it.
    pub tpr: f64,
    /// Whether there were enough non-members to measure it: at least
    /// `1/fpr` of them (with fewer, one false positive already exceeds it).
    #[serde(default = "supported_default")]
    pub supported: bool,
    /// Its interval from the bootstrap over documents, where there are
    /// enough non-members for one ([`roc_clustered`],
    /// [`TPR_CI_MIN_FALSE_POSITIVES`]).
    #[serde(default)]
    pub ci: Option<[f64; 2]>,
}

fn supported_default() -> bool {
    true
}

impl RocSummary {
    /// The best true-positive rate with a false-positive rate at most `fpr`
    /// (from the curve; any `fpr`).
    pub fn tpr_at(&self, fpr: f64) -> f64 {
        self.curve
            .iter()
            .filter(|(f, _)| *f <= fpr)
            .map(|(_, t)| *t)
            .fold(0.0, f64::max)
    }
}

/// Exact ROC analysis of `(score, is_member)` pairs (higher score = member).
///
/// # Formula
/// ```text
/// AUC = (Σ rank(positives) − n₊(n₊+1)/2) / (n₊ n₋)     (Mann–Whitney, average ranks for ties)
/// ```
/// `None` when a class is empty.
pub fn roc(pairs: &[(f64, bool)]) -> Option<RocSummary> {
    let pairs: Vec<(f64, bool)> = pairs
        .iter()
        .copied()
        .filter(|(s, _)| s.is_finite())
        .collect();
    let n_pos = pairs.iter().filter(|p| p.1).count();
    let n_neg = pairs.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let scores: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let r = crate::correlation::ranks(&scores);
    let rank_sum: f64 = r
        .iter()
        .zip(&pairs)
        .filter(|(_, p)| p.1)
        .map(|(r, _)| r)
        .sum();
    let auc = (rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0) / (n_pos as f64 * n_neg as f64);
    // Curve: sweep thresholds from high to low, one point per distinct score.
    let mut sorted = pairs.clone();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut curve = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < sorted.len() {
        let s = sorted[i].0;
        while i < sorted.len() && sorted[i].0 == s {
            if sorted[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        curve.push((fp as f64 / n_neg as f64, tp as f64 / n_pos as f64));
    }
    let mut r = RocSummary {
        n_pos,
        n_neg,
        auc,
        auc_ci: None,
        tpr_at_fpr: Vec::new(),
        curve,
    };
    r.tpr_at_fpr = FPRS
        .iter()
        .map(|&fpr| TprAtFpr {
            fpr,
            tpr: r.tpr_at(fpr),
            supported: n_neg as f64 * fpr >= 1.0 - 1e-9,
            ci: None,
        })
        .collect();
    Some(r)
}

/// The false-positive rates a [`RocSummary`] reports the TPR at.
pub const FPRS: [f64; 3] = [0.001, 0.01, 0.1];

/// Replicates of [`roc_clustered`]'s bootstrap: 400 put the 2.5 % and
/// 97.5 % percentiles 10 replicates from each end (Efron & Tibshirani
/// 1993, §13.3, ask for 500–1,000 for percentile intervals; fewer are
/// drawn past 10⁶ pairs, at least 100, so a pass stays near 4·10⁸ pairs).
pub const BOOTSTRAP_REPLICATES: usize = 400;

/// Expected false positives (`n₋ · FPR`) a TPR at an FPR needs before
/// [`roc_clustered`] gives it an interval. The bootstrap of a tail this
/// thin is too narrow: in `tests/coverage_roc.rs` (150 documents × 8
/// non-members), 95 % intervals at 1 % FPR (12 expected false positives)
/// covered 0.870, and with 600 documents (48) 0.927, at 10 % (120)
/// 0.953.
pub const TPR_CI_MIN_FALSE_POSITIVES: f64 = 50.0;

/// [`roc`] with percentile intervals at `level` for the AUC and each TPR
/// at an FPR with at least [`TPR_CI_MIN_FALSE_POSITIVES`] expected false
/// positives, from a bootstrap over clusters: `cluster[i]`
/// is pair `i`'s (e.g. its document: every model's score of one document
/// shares what that document is, so the pairs are not independent, and a
/// bootstrap over pairs is too narrow). Each replicate draws the clusters
/// with replacement (a multinomial weight per cluster, the seed's stream)
/// and recomputes the weighted AUC (Mann–Whitney, ties one half) and the
/// best TPR within each FPR in one sweep over the pairs sorted once.
/// `None` as [`roc`]; no intervals below two clusters.
pub fn roc_clustered(
    pairs: &[(f64, bool)],
    cluster: &[usize],
    level: f64,
    seed: u64,
) -> Option<RocSummary> {
    let mut r = roc(pairs)?;
    let mut kept: Vec<(f64, bool, usize)> = pairs
        .iter()
        .zip(cluster)
        .filter(|(p, _)| p.0.is_finite())
        .map(|(p, &c)| (p.0, p.1, c))
        .collect();
    // Clusters renumbered densely.
    let mut ids: Vec<usize> = kept.iter().map(|p| p.2).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() < 2 {
        return Some(r);
    }
    for p in &mut kept {
        p.2 = ids.binary_search(&p.2).unwrap_or(0);
    }
    kept.sort_by(|a, b| b.0.total_cmp(&a.0));
    let n_clusters = ids.len();
    let replicates = (4e8 / kept.len().max(1) as f64).clamp(100.0, BOOTSTRAP_REPLICATES as f64);
    let mut rng = cfmem_hash::SplitMix64::new(cfmem_hash::hash_words(&[seed, 0xb007]));
    let mut weight = vec![0f64; n_clusters];
    let mut aucs = Vec::new();
    let mut tprs: Vec<Vec<f64>> = vec![Vec::new(); FPRS.len()];
    for _ in 0..replicates as usize {
        weight.iter_mut().for_each(|w| *w = 0.0);
        for _ in 0..n_clusters {
            weight[rng.below(n_clusters as u64) as usize] += 1.0;
        }
        if let Some((auc, t)) = weighted_sweep(&kept, &weight) {
            aucs.push(auc);
            for (v, x) in tprs.iter_mut().zip(t) {
                v.push(x);
            }
        }
    }
    let interval = |v: &mut Vec<f64>| -> Option<[f64; 2]> {
        if v.len() < 2 {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
        Some([q((1.0 - level) / 2.0), q((1.0 + level) / 2.0)])
    };
    r.auc_ci = interval(&mut aucs);
    let n_neg = r.n_neg as f64;
    // Documents with members: where every replicate gives the same TPR (at
    // 0 or 1) the percentile interval has no width, and Clopper–Pearson on
    // that many documents stands in (a document's members count as one).
    let mut docs_with_members: Vec<usize> = kept.iter().filter(|p| p.1).map(|p| p.2).collect();
    docs_with_members.sort_unstable();
    docs_with_members.dedup();
    for (t, v) in r.tpr_at_fpr.iter_mut().zip(&mut tprs) {
        if t.supported && n_neg * t.fpr >= TPR_CI_MIN_FALSE_POSITIVES {
            t.ci = interval(v).map(|[lo, hi]| {
                if hi > lo {
                    [lo, hi]
                } else {
                    let (l, h) = crate::binary::clopper_pearson(
                        t.tpr,
                        docs_with_members.len() as f64,
                        level,
                    );
                    [l.min(lo), h.max(hi)]
                }
            });
        }
    }
    Some(r)
}

/// The weighted AUC and best TPR within each of [`FPRS`] of pairs sorted by
/// score, highest first, each weighted by its cluster's weight; `None`
/// when a class has no weight.
fn weighted_sweep(sorted: &[(f64, bool, usize)], weight: &[f64]) -> Option<(f64, Vec<f64>)> {
    let (mut total_pos, mut total_neg) = (0.0, 0.0);
    for &(_, member, c) in sorted {
        if member {
            total_pos += weight[c];
        } else {
            total_neg += weight[c];
        }
    }
    if total_pos <= 0.0 || total_neg <= 0.0 {
        return None;
    }
    let (mut pos_above, mut neg_above, mut wins) = (0.0, 0.0, 0.0);
    let mut best = vec![0f64; FPRS.len()];
    let mut i = 0;
    while i < sorted.len() {
        let s = sorted[i].0;
        let (mut wp, mut wn) = (0.0, 0.0);
        while i < sorted.len() && sorted[i].0 == s {
            let (_, member, c) = sorted[i];
            if member {
                wp += weight[c];
            } else {
                wn += weight[c];
            }
            i += 1;
        }
        // Positives of this score beat the negatives below it, tie with
        // those at it.
        wins += wp * (total_neg - neg_above - wn + 0.5 * wn);
        pos_above += wp;
        neg_above += wn;
        let (fpr, tpr) = (neg_above / total_neg, pos_above / total_pos);
        for (b, &f) in best.iter_mut().zip(&FPRS) {
            if fpr <= f + 1e-12 {
                *b = b.max(tpr);
            }
        }
    }
    Some((wins / (total_pos * total_neg), best))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logit_confidence_matches_direct_formula() {
        for loss in [0.01f64, 0.5, 2.0, 7.0] {
            let p: f64 = (-loss).exp();
            let direct = p.ln() - (1.0 - p).ln();
            assert!((Observation::LogitConfidence.of_loss(loss) - direct).abs() < 1e-9);
        }
        assert_eq!(Observation::NegLoss.of_loss(1.5), -1.5);
    }

    #[test]
    fn the_bootstrap_sweep_with_unit_weights_is_the_roc() {
        // Ties across classes and within; three clusters of unit weight.
        let pairs = [
            (0.9, true),
            (0.8, false),
            (0.8, true),
            (0.5, true),
            (0.3, false),
            (0.3, false),
            (0.1, true),
            (0.0, false),
        ];
        let r = roc(&pairs).unwrap();
        let mut sorted: Vec<(f64, bool, usize)> = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.0, p.1, i % 3))
            .collect();
        sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (auc, best) = weighted_sweep(&sorted, &[1.0, 1.0, 1.0]).unwrap();
        assert!((auc - r.auc).abs() < 1e-12, "{auc} vs {}", r.auc);
        for (b, t) in best.iter().zip(&r.tpr_at_fpr) {
            assert!((b - t.tpr).abs() < 1e-12);
        }
        // Weight 2 on a cluster is that cluster's pairs twice.
        let doubled: Vec<(f64, bool)> = pairs
            .iter()
            .enumerate()
            .flat_map(|(i, &p)| std::iter::repeat_n(p, if i % 3 == 1 { 2 } else { 1 }))
            .collect();
        let (auc2, _) = weighted_sweep(&sorted, &[1.0, 2.0, 1.0]).unwrap();
        assert!((auc2 - roc(&doubled).unwrap().auc).abs() < 1e-12);
        // The intervals hold the estimate; deterministic in the seed.
        let c: Vec<usize> = (0..pairs.len()).map(|i| i % 3).collect();
        let a = roc_clustered(&pairs, &c, 0.95, 1).unwrap();
        let [lo, hi] = a.auc_ci.unwrap();
        assert!(lo <= a.auc && a.auc <= hi);
        assert_eq!(a, roc_clustered(&pairs, &c, 0.95, 1).unwrap());
    }

    #[test]
    fn a_tpr_at_the_boundary_gets_width_from_its_documents() {
        // Perfect separation: every replicate's TPR at 10 % FPR is 1, and
        // Clopper–Pearson on the 100 documents stands in: [0.975^(1/100), 1].
        let mut pairs = Vec::new();
        let mut docs = Vec::new();
        for d in 0..100 {
            for i in 0..10 {
                pairs.push((if i < 5 { 1.0 + i as f64 } else { -(i as f64) }, i < 5));
                docs.push(d);
            }
        }
        let r = roc_clustered(&pairs, &docs, 0.95, 3).unwrap();
        let t = r.tpr_at_fpr.iter().find(|t| t.fpr == 0.1).unwrap();
        assert_eq!(t.tpr, 1.0);
        let [lo, hi] = t.ci.unwrap();
        assert!(
            (lo - 0.025f64.powf(0.01)).abs() < 1e-9 && hi == 1.0,
            "{lo} {hi}"
        );
    }

    #[test]
    fn auc_and_tpr_by_hand() {
        // Scores: positives {0.9, 0.8, 0.4}, negatives {0.7, 0.3, 0.2, 0.1}.
        // Pairs (pos > neg): 0.9 beats 4, 0.8 beats 4, 0.4 beats 3 → 11 of 12.
        let pairs = [
            (0.9, true),
            (0.8, true),
            (0.4, true),
            (0.7, false),
            (0.3, false),
            (0.2, false),
            (0.1, false),
        ];
        let r = roc(&pairs).unwrap();
        assert!((r.auc - 11.0 / 12.0).abs() < 1e-12);
        // At FPR 0: thresholds above 0.7 catch 2 of 3 positives.
        assert!((r.tpr_at_fpr[0].tpr - 2.0 / 3.0).abs() < 1e-12);
        // FPR ≤ 10 % is still only FPR 0 with 4 negatives.
        assert!((r.tpr_at_fpr[2].tpr - 2.0 / 3.0).abs() < 1e-12);
        // A tie between a positive and a negative counts one half.
        let r = roc(&[(0.5, true), (0.5, false)]).unwrap();
        assert!((r.auc - 0.5).abs() < 1e-12);
        assert!(roc(&[(0.5, true)]).is_none());
    }

    #[test]
    fn leave_one_out_matches_brute_force() {
        // 6 models × 2 documents.
        let copies = [[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]];
        let losses = [
            [0.5, 2.0],
            [1.5, 0.7],
            [0.4, 0.9],
            [1.7, 2.2],
            [0.6, 1.9],
            [1.4, 0.8],
        ];
        let mut acc = LiraAccumulator::new(2, Observation::NegLoss);
        for (c, l) in copies.iter().zip(&losses) {
            acc.add(c, l).unwrap();
        }
        let t = 2; // target model
        let scores = acc
            .score_left_out(&copies[t], &losses[t], Variance::PerExample)
            .unwrap();
        for d in 0..2 {
            let others = |side: u32| -> Vec<f64> {
                (0..6)
                    .filter(|&i| i != t && (copies[i][d] > 0) == (side > 0))
                    .map(|i| -losses[i][d])
                    .collect()
            };
            let (inn, out) = (others(1), others(0));
            let stats = |v: &[f64]| {
                let m = v.iter().sum::<f64>() / v.len() as f64;
                let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
                (m, var.sqrt())
            };
            let ((mi, si), (mo, so)) = (stats(&inn), stats(&out));
            let s = -losses[t][d];
            let pdf = |x: f64, m: f64, sd: f64| {
                (-(x - m).powi(2) / (2.0 * sd * sd)).exp()
                    / (sd * (2.0 * std::f64::consts::PI).sqrt())
            };
            let online = pdf(s, mi, si).ln() - pdf(s, mo, so).ln();
            let got = scores[d].unwrap();
            assert!(
                (got.online - online).abs() < 1e-9,
                "doc {d}: {} vs {online}",
                got.online
            );
            assert!((got.offline - (s - mo) / so).abs() < 1e-9);
        }
    }

    #[test]
    fn global_variance_keeps_each_side_its_own() {
        // In-scores vary a lot, out-scores hardly: the pooled in- and
        // out-variances must differ (the fixed-variance bug used the
        // in-variance for both).
        let mut acc = LiraAccumulator::new(1, Observation::NegLoss);
        for (c, l) in [(1, 0.1), (1, 0.9), (1, 0.5), (0, 2.0), (0, 2.01), (0, 1.99)] {
            acc.add(&[c], &[l]).unwrap();
        }
        let f = acc.fits(Variance::Global)[0];
        assert!((f.sigma_in - 0.4).abs() < 1e-9, "{f:?}");
        assert!((f.sigma_out - 0.01).abs() < 1e-9, "{f:?}");
    }
}
