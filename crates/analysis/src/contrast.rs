//! Means over documents whose interval knows that every document is scored
//! by the same models.
//!
//! A t-interval over documents treats their estimates as independent. They
//! are not: a model that memorizes more than the others (a lucky
//! initialisation or batch order) raises every document's gap at once, and
//! a model that is better overall shifts every document it left out. The
//! interval here is the same design-based one a single document gets: the
//! document-averaged contrast is a linear function of the scores, and its
//! error is clustered by block of the design (by model for designs without
//! blocks), so that whatever the models share across documents enters it.
//!
//! It is the interval of the mean over *these* documents (what the models
//! did to them), not of a population of documents they were drawn from.

use statrs::distribution::ContinuousCDF;

use crate::binary::{clopper_pearson, mover_correlated, mover_of};
use crate::error::Result;
use crate::estimate::{t_interval, Estimate, Metric, Welch};
use crate::report::{adjuster, Report};
use crate::rows::{Rows, Value};

/// `Σ_d weight[d] · mem(d)` over the documents of `report` (computed from
/// `src`, under its metric and adjustment), with the delete-one-cluster
/// jackknife's standard error (clusters: blocks, or models without
/// blocks) and a Student-t interval on `K − 1` degrees of freedom (`K`
/// clusters) at the report's level. Documents without an estimate must
/// have weight 0. `None` below two clusters.
///
/// # Formula
/// ```text
/// C    = Σ_d w_d (m_in(d) − m_out(d))                      (sign flipped for losses)
/// R_kd = Σ_{i ∈ k, d ∈ S_i} (s_id − m_in(d))  (c_kd such scores), likewise R'_kd out
/// D_k  = Σ_d w_d ( R_kd / (n_in(d) − c_kd) − R'_kd / (n_out(d) − c'_kd) )
/// se²  = (K − 1)/K · Σ_k D_k²
/// ```
/// `−D_k` is exactly how far leaving cluster `k` out moves `C` (its scores
/// leave each side mean they entered), and `Σ_k D_k = 0`, so this is the
/// jackknife (Quenouille–Tukey) of `C` over clusters, computed in one pass.
/// With complementary blocks of two (`n_in = n_out = K`, one score a side
/// per cluster) it is the CR1 sandwich (Liang & Zeger 1986, factor
/// `K/(K − 1)`); where a side holds few of the `K` models (a Bernoulli or
/// repetition design) CR1 is too small, and the jackknife is not: CR1
/// covered a repetition level's paired mean 0.900, this 0.967
/// (`tests/coverage_means.rs`). For one document with weight 1 in a block
/// design it is that document's clustered error.
///
/// # Errors
/// Errors of the source.
pub fn contrast(report: &Report, src: &dyn Rows, weights: &[f64]) -> Result<Option<Welch>> {
    with_report(report, src, |setting, estimates, scores| {
        setting.of(estimates, src, weights, scores)
    })
}

/// Call `f` with `report`'s contrast setting, its estimates and its scores
/// (adjusted as the report's were).
fn with_report<T>(
    report: &Report,
    src: &dyn Rows,
    f: impl FnOnce(&Contrast<'_>, &[&Estimate], &ScoresOf<'_>) -> Result<T>,
) -> Result<T> {
    let (setting, estimates) = of_report(report);
    let adj = adjuster(src, report.config.metric, report.config.adjustment, &|_| {
        true
    })?;
    f(&setting, &estimates, &|copies, values| {
        adj.apply(copies, values)
    })
}

/// `Σ_d weight[d] · m(d)` with `m` the mean score of the in-models
/// (`inn`) or of the out-models of each document, with the side's
/// clustered error ([`contrast`]'s `T_i` of that side alone). Weights ≥ 0.
///
/// # Errors
/// Errors of the source.
pub fn side_contrast(
    report: &Report,
    src: &dyn Rows,
    weights: &[f64],
    inn: bool,
) -> Result<Option<Welch>> {
    with_report(report, src, |setting, estimates, scores| {
        setting.side_mean(estimates, src, weights, scores, inn)
    })
}

/// `Σ_d weight[d] · (mem_b(d) − mem_a(d))` for two experiments on the same
/// documents with as many clusters, the `k`-th cluster of one paired with
/// the `k`-th of the other (the same design and seed give the same
/// subsets; pairs are independent across `k` either way): the clustered
/// error of the pairs' differences `T_b,k − T_a,k`, Student t on `K − 1`.
/// `None` when the cluster counts differ or are below two. Continuous
/// metrics only (a 0/1 metric gives `None`).
///
/// # Errors
/// Errors of the sources.
pub fn paired_contrast(
    a: (&Report, &dyn Rows),
    b: (&Report, &dyn Rows),
    weights: &[f64],
) -> Result<Option<Welch>> {
    let totals = |(report, src): (&Report, &dyn Rows)| -> Result<Parts> {
        with_report(report, src, |setting, estimates, scores| {
            setting.parts(estimates, src, weights, scores)
        })
    };
    if a.0.config.metric.is_binary() || b.0.config.metric.is_binary() {
        return Ok(None);
    }
    let (pa, pb) = (totals(a)?, totals(b)?);
    if pa.inn.len() < 2 || pa.inn.len() != pb.inn.len() {
        return Ok(None);
    }
    let d: Vec<f64> = (0..pa.inn.len())
        .map(|k| (pb.inn[k] - pb.out[k]) - (pa.inn[k] - pa.out[k]))
        .collect();
    let k = d.len() as f64;
    Ok(t_interval(
        pb.value - pa.value,
        jk(&d, &d).sqrt(),
        k - 1.0,
        a.0.config.level,
    ))
}

/// A report's contrast setting (its metric, level and blocks, in-models
/// those with a copy) and its estimates.
fn of_report(report: &Report) -> (Contrast<'static>, Vec<&Estimate>) {
    let cfg = &report.config;
    let estimates: Vec<&Estimate> = report.docs.iter().map(|d| &d.estimate).collect();
    let setting = Contrast {
        metric: cfg.metric,
        level: cfg.level,
        block: report.block_size,
        side: &|c| Some(c > 0),
    };
    (setting, estimates)
}

/// A row's scores as a contrast uses them, from its copies and values
/// (adjusted, or as they are).
pub(crate) type ScoresOf<'a> = dyn Fn(&[u32], &[f64]) -> Vec<f64> + 'a;

/// How a contrast's estimates were made: the metric (its orientation),
/// the level, the models per block (1: each model its own cluster) and
/// which side a model's copies of a document put it on (`None`: neither,
/// e.g. another copy count of a repetition design).
pub(crate) struct Contrast<'a> {
    pub(crate) metric: Metric,
    pub(crate) level: f64,
    pub(crate) block: usize,
    pub(crate) side: &'a dyn Fn(u32) -> Option<bool>,
}

/// A contrast's parts: its value, and per cluster the in- and out-sides'
/// contributions `T_in`, `T_out` (`T = T_in − T_out`, oriented).
struct Parts {
    value: f64,
    inn: Vec<f64>,
    out: Vec<f64>,
    /// `Σ_d w_d m_in(d)` and `Σ_d w_d m_out(d)`.
    means: (f64, f64),
    /// Mean over the weighted documents of `n_in(d)` and `n_out(d)`, and
    /// their sums.
    sizes: [f64; 4],
    /// Whether every weight is ≥ 0.
    positive: bool,
}

/// The delete-one-cluster jackknife's `(K − 1)/K Σ_k a_k b_k` over
/// clusters' deviations.
fn jk(a: &[f64], b: &[f64]) -> f64 {
    let k = a.len() as f64;
    (k - 1.0) / k * a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>()
}

impl Contrast<'_> {
    /// [`contrast`] over per-document `estimates` whose in- and out-models
    /// are given by `side`, the scores as `scores` makes them from a row.
    /// For a 0/1 metric with non-negative weights (a mean of proportions):
    /// [`Contrast::binary`]; with weights of both signs (a difference of
    /// two such means) the MOVER interval of the two means' intervals,
    /// with their correlation across clusters.
    pub(crate) fn of(
        &self,
        estimates: &[&Estimate],
        src: &dyn Rows,
        weights: &[f64],
        scores: &ScoresOf<'_>,
    ) -> Result<Option<Welch>> {
        if self.metric.is_binary() && weights.iter().any(|&w| w < 0.0) {
            return self.binary_difference(estimates, src, weights, scores);
        }
        let p = self.parts(estimates, src, weights, scores)?;
        if p.inn.len() < 2 {
            return Ok(None);
        }
        if self.metric.is_binary() && p.positive {
            return Ok(Some(self.binary(&p)));
        }
        let total: Vec<f64> = p.inn.iter().zip(&p.out).map(|(i, o)| i - o).collect();
        let k = total.len() as f64;
        let se = jk(&total, &total).sqrt();
        Ok(t_interval(p.value, se, k - 1.0, self.level))
    }

    /// A mean of per-document differences of proportions: each side's
    /// mean proportion gets a Clopper–Pearson interval on its effective
    /// sample size (Korn & Graubard 1998: `n* = p(1 − p)/v` with `v` the
    /// side's clustered variance, times `(z/t_{K−1})²`, at most the side's
    /// observations), and the difference their MOVER interval with the
    /// sides' correlation across clusters. Where a side's variance is 0
    /// (nothing varies: every model on that side scored every document
    /// the same) there is no `n*` to estimate, and it is taken as the mean
    /// number of models a document has on that side, as if the documents
    /// were one (Korn & Graubard take all observations, which assumes
    /// documents independent, and the models are shared by them).
    fn binary(&self, p: &Parts) -> Welch {
        let [n_in, n_out, all_in, all_out] = p.sizes;
        let a = self.proportion(p.means.0, &p.inn, n_in, all_in);
        let b = self.proportion(p.means.1, &p.out, n_out, all_out);
        let (vi, vo) = (jk(&p.inn, &p.inn), jk(&p.out, &p.out));
        let r = if vi > 0.0 && vo > 0.0 {
            jk(&p.inn, &p.out) / (vi * vo).sqrt()
        } else {
            0.0
        };
        mover_of(a, b, r, self.level)
    }

    /// One side's mean proportion `(mean, low, high)`: Clopper–Pearson on
    /// the effective sample size of [`Contrast::binary`], from the side's
    /// cluster contributions `c`, `per_doc` the mean models a document has
    /// on the side and `total` their sum.
    fn proportion(&self, mean: f64, c: &[f64], per_doc: f64, total: f64) -> (f64, f64, f64) {
        let k = c.len() as f64;
        let z = statrs::distribution::Normal::standard().inverse_cdf(0.5 + self.level / 2.0);
        let t = statrs::distribution::StudentsT::new(0.0, 1.0, k - 1.0)
            .map_or(z, |d| d.inverse_cdf(0.5 + self.level / 2.0));
        let mean = mean.clamp(0.0, 1.0);
        let v = jk(c, c);
        let n = if v > 0.0 && mean > 0.0 && mean < 1.0 {
            (mean * (1.0 - mean) / v * (z / t).powi(2)).min(total)
        } else {
            per_doc
        };
        let (lo, hi) = clopper_pearson(mean, n.max(1.0), self.level);
        (mean, lo, hi)
    }

    /// `Σ_d w_d m_in(d)` (`inn`) or `Σ_d w_d m_out(d)`, with the clustered
    /// error of that side alone (Clopper–Pearson on the effective sample
    /// size for a 0/1 metric, [`Contrast::proportion`]). Weights ≥ 0.
    pub(crate) fn side_mean(
        &self,
        estimates: &[&Estimate],
        src: &dyn Rows,
        weights: &[f64],
        scores: &ScoresOf<'_>,
        inn: bool,
    ) -> Result<Option<Welch>> {
        let p = self.parts(estimates, src, weights, scores)?;
        if p.inn.len() < 2 {
            return Ok(None);
        }
        let [n_in, n_out, all_in, all_out] = p.sizes;
        let (mean, c, per_doc, total) = if inn {
            (p.means.0, &p.inn, n_in, all_in)
        } else {
            (p.means.1, &p.out, n_out, all_out)
        };
        if self.metric.is_binary() {
            let (m, lo, hi) = self.proportion(mean, c, per_doc, total);
            let z = statrs::distribution::Normal::standard().inverse_cdf(0.5 + self.level / 2.0);
            return Ok(Some(Welch {
                diff: m,
                se: (hi - lo) / (2.0 * z),
                df: f64::INFINITY,
                ci_low: lo,
                ci_high: hi,
            }));
        }
        let k = c.len() as f64;
        Ok(t_interval(mean, jk(c, c).sqrt(), k - 1.0, self.level))
    }

    /// `Σ w⁺ mem − Σ w⁻ mem` for a 0/1 metric: each part a mean of
    /// proportions ([`Contrast::binary`]), their difference the MOVER
    /// interval with the parts' correlation across clusters
    /// ([`mover_correlated`]).
    fn binary_difference(
        &self,
        estimates: &[&Estimate],
        src: &dyn Rows,
        weights: &[f64],
        scores: &ScoresOf<'_>,
    ) -> Result<Option<Welch>> {
        let plus: Vec<f64> = weights.iter().map(|&w| w.max(0.0)).collect();
        let minus: Vec<f64> = weights.iter().map(|&w| (-w).max(0.0)).collect();
        let a = self.parts(estimates, src, &plus, scores)?;
        let b = self.parts(estimates, src, &minus, scores)?;
        if a.inn.len() < 2 || a.inn.len() != b.inn.len() {
            return Ok(None);
        }
        let total =
            |p: &Parts| -> Vec<f64> { p.inn.iter().zip(&p.out).map(|(i, o)| i - o).collect() };
        let (ta, tb) = (total(&a), total(&b));
        let (va, vb) = (jk(&ta, &ta), jk(&tb, &tb));
        let r = if va > 0.0 && vb > 0.0 {
            jk(&ta, &tb) / (va * vb).sqrt()
        } else {
            0.0
        };
        let (x, y) = (self.binary(&a), self.binary(&b));
        Ok(Some(mover_correlated(
            (x.diff, x.ci_low, x.ci_high),
            (y.diff, y.ci_low, y.ci_high),
            r,
            self.level,
        )))
    }

    /// The value and the clusters' contributions.
    fn parts(
        &self,
        estimates: &[&Estimate],
        src: &dyn Rows,
        weights: &[f64],
        scores: &ScoresOf<'_>,
    ) -> Result<Parts> {
        let sign = self.metric.orientation();
        let n = estimates.len().min(weights.len());
        // Per document: its weight, the side means and sizes.
        let parts: Vec<Option<[f64; 5]>> = (0..n)
            .map(|d| {
                let e = estimates[d];
                let w = weights[d];
                if w == 0.0 || e.mem.is_none() {
                    return None;
                }
                Some([w, e.in_mean?, e.out_mean?, e.n_in as f64, e.n_out as f64])
            })
            .collect();
        let used: Vec<usize> = (0..n).filter(|&d| parts[d].is_some()).collect();
        let value: f64 = used
            .iter()
            .filter_map(|&d| Some(weights[d] * estimates[d].mem?))
            .sum();
        let means = used.iter().fold((0.0, 0.0), |(i, o), &d| {
            let e = estimates[d];
            (
                i + weights[d] * e.in_mean.unwrap_or(0.0),
                o + weights[d] * e.out_mean.unwrap_or(0.0),
            )
        });
        let (sum_in, sum_out) = used.iter().fold((0.0, 0.0), |(i, o), &d| {
            (i + estimates[d].n_in as f64, o + estimates[d].n_out as f64)
        });
        let m = used.len().max(1) as f64;
        let block = self.block.max(1);
        let (mut inn, mut out): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
        // The cluster being read: per document and side, the residuals'
        // sum and count (rows come in increasing model order, so a
        // cluster's rows are consecutive).
        let mut cluster = Cluster::new(n);
        let flush = |c: &mut Cluster, inn: &mut Vec<f64>, out: &mut Vec<f64>| {
            let Some(k) = c.index else { return };
            let (ti, to) = c.deviation(&parts);
            if inn.len() <= k {
                inn.resize(k + 1, 0.0);
                out.resize(k + 1, 0.0);
            }
            inn[k] += sign * ti;
            out[k] += sign * to;
            c.clear();
        };
        src.visit(Value::Scores(self.metric), &mut |r| {
            let k = r.model / block;
            if cluster.index != Some(k) {
                flush(&mut cluster, &mut inn, &mut out);
                cluster.index = Some(k);
            }
            let scores = scores(r.copies, r.values);
            for (d, p) in parts.iter().enumerate() {
                let Some([_, mi, mo, _, _]) = *p else {
                    continue;
                };
                let s = scores[d];
                if !s.is_finite() {
                    continue;
                }
                match (self.side)(r.copies[d]) {
                    Some(true) => cluster.add(d, 0, s - mi),
                    Some(false) => cluster.add(d, 1, s - mo),
                    None => {}
                }
            }
            Ok(())
        })?;
        flush(&mut cluster, &mut inn, &mut out);
        Ok(Parts {
            value,
            inn,
            out,
            means,
            sizes: [sum_in / m, sum_out / m, sum_in, sum_out],
            positive: weights.iter().all(|&w| w >= 0.0),
        })
    }
}

/// One cluster's residuals per document and side (0 in, 1 out): their
/// sums and counts, and the documents touched.
struct Cluster {
    index: Option<usize>,
    sum: Vec<[f64; 2]>,
    count: Vec<[u32; 2]>,
    touched: Vec<usize>,
}

impl Cluster {
    fn new(n: usize) -> Self {
        Self {
            index: None,
            sum: vec![[0.0; 2]; n],
            count: vec![[0; 2]; n],
            touched: Vec::new(),
        }
    }

    fn add(&mut self, d: usize, side: usize, residual: f64) {
        if self.count[d] == [0, 0] {
            self.touched.push(d);
        }
        self.sum[d][side] += residual;
        self.count[d][side] += 1;
    }

    /// The cluster's jackknife deviation of each side: leaving it out
    /// moves a document's side mean by `−R/(n − c)` (`R` the cluster's
    /// residual sum there, `c` its scores, `n` the side's), weighted.
    fn deviation(&self, parts: &[Option<[f64; 5]>]) -> (f64, f64) {
        let (mut ti, mut to) = (0.0, 0.0);
        for &d in &self.touched {
            let Some([w, _, _, n_in, n_out]) = parts[d] else {
                continue;
            };
            let [ri, ro] = self.sum[d];
            let [ci, co] = self.count[d];
            ti += w * ri / (n_in - f64::from(ci)).max(1.0);
            to += w * ro / (n_out - f64::from(co)).max(1.0);
        }
        (ti, to)
    }

    fn clear(&mut self) {
        for &d in &self.touched {
            self.sum[d] = [0.0; 2];
            self.count[d] = [0; 2];
        }
        self.touched.clear();
        self.index = None;
    }
}

/// Weights that average the documents of `docs` that have an estimate
/// (`1/n` each), for [`contrast`].
pub fn mean_weights(report: &Report, docs: &[usize]) -> Vec<f64> {
    let with: Vec<usize> = docs
        .iter()
        .copied()
        .filter(|&d| report.docs.get(d).is_some_and(|e| e.estimate.mem.is_some()))
        .collect();
    let mut w = vec![0.0; report.docs.len()];
    for &d in &with {
        w[d] += 1.0 / with.len() as f64;
    }
    w
}

/// Weights of the difference of the means of `a` and `b` ([`mean_weights`]
/// of `a` minus those of `b`), for [`contrast`].
pub fn difference_weights(report: &Report, a: &[usize], b: &[usize]) -> Vec<f64> {
    mean_weights(report, a)
        .into_iter()
        .zip(mean_weights(report, b))
        .map(|(x, y)| x - y)
        .collect()
}
