//! Cheap single-model memorization signals ("proxies") computed from what
//! an experiment stores, and their audit against counterfactual
//! memorization.
//!
//! An auditor of a large model cannot retrain it; they score each document
//! with one model (the *target*) and call high scores memorized. Every
//! in-model of a cfmem experiment is such a target for the documents it
//! trained on, and the experiment knows each document's counterfactual
//! memorization, so [`audit`] measures how far each proxy tracks it.
//! Every proxy is oriented so that higher means "more memorized".

use serde::{Deserialize, Serialize};

use crate::correlation::{ranks, spearman};
use crate::error::Result;
use crate::estimate::{Metric, RunningStats};
use crate::lira::{roc, Observation};
use crate::report::Report;
use crate::rows::{Rows, Value};

/// One proxy's values: `values[i][d]` is target model `i`'s score of
/// document `d`, `NaN` where `d` is not in model `i`'s subset (a target
/// scores only what it trained on) or the proxy is undefined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyTable {
    /// Short name (`loss`, `zlib`, `reference`, `lira-offline`, `rmia`,
    /// `extraction-length`).
    pub name: String,
    /// Where it comes from.
    pub source: String,
    /// Per target model, per document.
    pub values: Vec<Vec<f64>>,
}

/// The loaded rows a proxy is computed from: per model its copies and its
/// mean per-token loss, sequence log-probability and (when kept) matched
/// extraction length of every document.
struct Loaded {
    copies: Vec<Vec<u32>>,
    loss: Vec<Vec<f64>>,
    logprob: Option<Vec<Vec<f64>>>,
    extraction: Option<Vec<Vec<f64>>>,
}

impl Loaded {
    /// `None` when the source has no losses (an imported table of another
    /// metric).
    fn of(src: &dyn Rows) -> Result<Option<Self>> {
        if !src.has_metric(Metric::Loss) {
            return Ok(None);
        }
        let (mut copies, mut loss) = (Vec::new(), Vec::new());
        src.visit(Value::Scores(Metric::Loss), &mut |r| {
            copies.push(r.copies.to_vec());
            loss.push(r.values.to_vec());
            Ok(())
        })?;
        let other = |metric: Metric| -> Option<Vec<Vec<f64>>> {
            if !src.has_metric(metric) {
                return None;
            }
            let mut v = Vec::new();
            let ok = src
                .visit(Value::Scores(metric), &mut |r| {
                    v.push(r.values.to_vec());
                    Ok(())
                })
                .is_ok();
            (ok && v.len() == copies.len() && v.iter().flatten().any(|x| x.is_finite()))
                .then_some(v)
        };
        let (logprob, extraction) = (other(Metric::LogProb), other(Metric::ExtractionLength));
        Ok(Some(Self {
            copies,
            loss,
            logprob,
            extraction,
        }))
    }

    fn n_docs(&self) -> usize {
        self.copies.first().map_or(0, Vec::len)
    }

    /// `f(i, d)` where model `i` trained on `d`, `NaN` elsewhere.
    fn targets(&self, f: impl Fn(usize, usize) -> f64) -> Vec<Vec<f64>> {
        (0..self.copies.len())
            .map(|i| {
                (0..self.n_docs())
                    .map(|d| {
                        if self.copies[i][d] > 0 {
                            f(i, d)
                        } else {
                            f64::NAN
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The models that did not train on `d`, other than `skip`.
    fn out_models(&self, d: usize, skip: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.copies.len()).filter(move |&j| j != skip && self.copies[j][d] == 0)
    }
}

/// The zlib-compressed size of `text` in bytes (default compression), the
/// denominator of [`zlib_ratio`].
pub fn zlib_size(text: &str) -> usize {
    use std::io::Write as _;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(text.as_bytes());
    e.finish().map_or(text.len(), |v| v.len())
}

/// The target's loss, negated.
///
/// # Formula
/// ```text
/// loss(i, d) = −(1/T_d) Σ_t −log p_i(x_t | x_<t)
/// ```
/// (Yeom et al. 2018's loss attack.)
fn loss(rows: &Loaded) -> ProxyTable {
    ProxyTable {
        name: "loss".into(),
        source: "Yeom et al. 2018: the target's mean per-token loss, negated".into(),
        values: rows.targets(|i, d| -rows.loss[i][d]),
    }
}

/// The target's sequence log-probability over the document's zlib size.
///
/// # Formula
/// ```text
/// zlib(i, d) = log p_i(x) / zlib(x)        (nats per compressed byte; log p ≤ 0)
/// ```
/// (Carlini et al. 2021, "Extracting Training Data from Large Language
/// Models": the ratio of log-perplexity to zlib entropy, negated so higher
/// is more memorized.)
pub fn zlib_ratio(logprob: f64, zlib_bytes: usize) -> f64 {
    logprob / zlib_bytes.max(1) as f64
}

fn zlib(rows: &Loaded, logprob: &[Vec<f64>], sizes: &[usize]) -> ProxyTable {
    ProxyTable {
        name: "zlib".into(),
        source: "Carlini et al. 2021: log-probability over zlib-compressed size".into(),
        values: rows.targets(|i, d| zlib_ratio(logprob[i][d], sizes[d])),
    }
}

/// The target's loss against reference models trained without the
/// document (the out-models).
///
/// # Formula
/// ```text
/// reference(i, d) = mean{ loss(j, d) : d ∉ S_j } − loss(i, d)
/// ```
/// (Carlini et al. 2021's reference-model ratio, here a difference of
/// losses; Mireshghallah et al. 2022's likelihood-ratio attack.)
fn reference(rows: &Loaded) -> ProxyTable {
    ProxyTable {
        name: "reference".into(),
        source: "Carlini et al. 2021: out-models' mean loss minus the target's".into(),
        values: rows.targets(|i, d| {
            let mut s = RunningStats::default();
            for j in rows.out_models(d, i) {
                s.push(rows.loss[j][d]);
            }
            if s.n == 0 {
                f64::NAN
            } else {
                s.mean - rows.loss[i][d]
            }
        }),
    }
}

/// LiRA offline: the target's observation standardized against the
/// out-models' Gaussian.
///
/// # Formula
/// ```text
/// φ(i, d)  = log(p / (1 − p)),  p = exp(−loss(i, d))     (LiRA's logit scaling)
/// lira(i, d) = (φ(i, d) − μ_out(d)) / σ_out
/// ```
/// with `μ_out(d)` the out-models' mean of `φ` and `σ_out` their standard
/// deviation pooled over documents (the global variance Carlini et al.
/// 2022, §4.2, use with few shadow models); monotone in their offline
/// one-sided test.
fn lira_offline(rows: &Loaded) -> ProxyTable {
    let phi = |i: usize, d: usize| Observation::LogitConfidence.of_loss(rows.loss[i][d]);
    let n = rows.n_docs();
    let mu: Vec<f64> = (0..n)
        .map(|d| {
            let mut s = RunningStats::default();
            for j in rows.out_models(d, usize::MAX) {
                s.push(phi(j, d));
            }
            if s.n == 0 {
                f64::NAN
            } else {
                s.mean
            }
        })
        .collect();
    let (mut ss, mut df) = (0.0, 0.0);
    for d in 0..n {
        let outs: Vec<usize> = rows.out_models(d, usize::MAX).collect();
        if outs.len() >= 2 {
            ss += outs
                .iter()
                .map(|&j| (phi(j, d) - mu[d]).powi(2))
                .sum::<f64>();
            df += (outs.len() - 1) as f64;
        }
    }
    let sigma = if df > 0.0 { (ss / df).sqrt() } else { f64::NAN };
    ProxyTable {
        name: "lira-offline".into(),
        source: "Carlini et al. 2022: out-models' Gaussian, global variance".into(),
        values: rows.targets(|i, d| (phi(i, d) - mu[d]) / sigma),
    }
}

/// RMIA's likelihood-ratio threshold.
pub const RMIA_GAMMA: f64 = 1.0;

/// RMIA (Zarifzadeh et al. 2024) with the out-models as reference models:
/// the fraction of a population of documents `z` that `x` beats in the
/// pairwise likelihood ratio.
///
/// # Formula
/// ```text
/// Pr(x | θ) = exp(−loss(θ, x))                  (per-token geometric mean probability)
/// Pr(x)     = mean{ Pr(x | θ_j) : x ∉ S_j, j ≠ i }
/// LR(x, z)  = (Pr(x | θ_i) / Pr(x)) / (Pr(z | θ_i) / Pr(z))
/// rmia(i, x) = |{ z ∈ Z_i : LR(x, z) ≥ γ }| / |Z_i|,   γ = 1
/// ```
/// `Z_i`: every document target `i` did not train on (the paper's
/// population data: non-members of the target), `Pr(z)` from its
/// out-models other than `i`. The paper's offline variant scales `Pr(x)`
/// from out-models by a factor `a` fitted on a reference model; here
/// `a = 1` (out-models only, no scaling) and `γ = 1`, as in its Table 7
/// ablation.
fn rmia(rows: &Loaded) -> ProxyTable {
    let n = rows.n_docs();
    let p = |i: usize, d: usize| (-rows.loss[i][d]).exp();
    let marginal = |d: usize, skip: usize| {
        let mut s = RunningStats::default();
        for j in rows.out_models(d, skip) {
            s.push(p(j, d));
        }
        if s.n == 0 {
            f64::NAN
        } else {
            s.mean
        }
    };
    let values = (0..rows.copies.len())
        .map(|i| {
            // The population's ratios, sorted, for a count by binary search.
            let mut pop: Vec<f64> = (0..n)
                .filter(|&z| rows.copies[i][z] == 0)
                .map(|z| p(i, z) / marginal(z, i))
                .filter(|r| r.is_finite())
                .collect();
            pop.sort_by(f64::total_cmp);
            (0..n)
                .map(|x| {
                    if rows.copies[i][x] == 0 || pop.is_empty() {
                        return f64::NAN;
                    }
                    let rx = p(i, x) / marginal(x, i);
                    if !rx.is_finite() {
                        return f64::NAN;
                    }
                    // LR(x, z) ≥ γ  ⇔  r_z ≤ r_x / γ.
                    let beaten = pop.partition_point(|&rz| rz <= rx / RMIA_GAMMA);
                    beaten as f64 / pop.len() as f64
                })
                .collect()
        })
        .collect();
    ProxyTable {
        name: "rmia".into(),
        source: "Zarifzadeh et al. 2024: pairwise likelihood ratio, out-model references, γ = 1"
            .into(),
        values,
    }
}

/// The target's matched extraction length (Carlini et al. 2023's
/// k-extractability, as a length).
fn extraction(rows: &Loaded, lengths: &[Vec<f64>]) -> ProxyTable {
    ProxyTable {
        name: "extraction-length".into(),
        source: "Carlini et al. 2023: greedy continuation tokens matched".into(),
        values: rows.targets(|i, d| lengths[i][d]),
    }
}

/// The fractions of a document's tokens [`min_k_table`] averages.
pub const MIN_K: [f64; 3] = [0.1, 0.2, 0.5];

/// Min-K % Prob (Shi et al. 2024, "Detecting Pretraining Data from Large
/// Language Models"): the mean log-likelihood of the document's `k`
/// fraction of least likely tokens.
///
/// # Formula
/// ```text
/// min_k(x) = (1/|E|) Σ_{t ∈ E} log p(x_t | x_<t),   E = the ⌈k·T⌉ tokens of lowest p
/// ```
/// from per-token negative log-likelihoods `nll` (`NaN` for none).
pub fn min_k_prob(nll: &[f32], k: f64) -> f64 {
    if nll.is_empty() {
        return f64::NAN;
    }
    let mut v: Vec<f64> = nll.iter().map(|&x| f64::from(x)).collect();
    v.sort_by(|a, b| b.total_cmp(a));
    let take = ((k * v.len() as f64).ceil() as usize).clamp(1, v.len());
    -v[..take].iter().sum::<f64>() / take as f64
}

/// Min-K %++ (Zhang et al. 2024, "Min-K %++: Improved Baseline for
/// Detecting Pre-Training Data from Large Language Models"): each token's
/// log-likelihood standardised by the model's next-token distribution at
/// that position, averaged over the document's `k` fraction of lowest
/// standardised tokens.
///
/// # Formula
/// ```text
/// z_t = (log p(x_t | x_<t) − μ_t) / σ_t,   μ_t = E_{z∼p(·|x_<t)} log p(z | x_<t),
///                                         σ_t² = Var_{z∼p(·|x_<t)} log p(z | x_<t)
/// min_k++(x) = (1/|E|) Σ_{t ∈ E} z_t,      E = the ⌈k·T'⌉ tokens of lowest z_t
/// ```
/// from per-token losses `nll` (`−log p(x_t | x_<t)`) and the moments
/// `mu`, `sigma` (cfmem's evaluation keeps them with `--per-token`).
/// Tokens where `σ_t = 0` (a next-token distribution on one token) or a
/// value is missing have no `z_t` and are left out (`T'` counts the rest);
/// `NaN` when none is left.
pub fn min_k_pp(nll: &[f32], mu: &[f32], sigma: &[f32], k: f64) -> f64 {
    let mut z: Vec<f64> = nll
        .iter()
        .zip(mu)
        .zip(sigma)
        .filter(|&((l, m), s)| l.is_finite() && m.is_finite() && s.is_finite() && *s > 0.0)
        .map(|((&l, &m), &s)| (-f64::from(l) - f64::from(m)) / f64::from(s))
        .collect();
    if z.is_empty() {
        return f64::NAN;
    }
    z.sort_by(f64::total_cmp);
    let take = ((k * z.len() as f64).ceil() as usize).clamp(1, z.len());
    z[..take].iter().sum::<f64>() / take as f64
}

/// One target's per-token results on one document, as the per-token
/// proxies read them: losses, and (where the experiment kept them; empty
/// otherwise) the mean and standard deviation of `log p` under the
/// next-token distribution at each position.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenView {
    /// `−log p(x_t | x_<t)` per predicted token.
    pub nll: Vec<f32>,
    /// `E log p(z | x_<t)` per predicted token, or empty.
    pub mu: Vec<f32>,
    /// `sd log p(z | x_<t)` per predicted token, or empty.
    pub sigma: Vec<f32>,
}

/// Min-K % Prob ([`min_k_prob`]) and, where the moments are kept, Min-K %++
/// ([`min_k_pp`]) tables at each of [`MIN_K`]: `tokens(i, d)` gives target
/// `i`'s per-token results on document `d` (`None` when it has none),
/// `copies[i]` its subset. The Min-K %++ tables are left out when no
/// target has the moments.
pub fn min_k_table(
    copies: &[Vec<u32>],
    tokens: &dyn Fn(usize, usize) -> Option<TokenView>,
) -> Vec<ProxyTable> {
    let n = copies.first().map_or(0, Vec::len);
    let blank = || vec![vec![vec![f64::NAN; n]; copies.len()]; MIN_K.len()];
    let (mut plain, mut pp) = (blank(), blank());
    let mut any_pp = false;
    for (i, c) in copies.iter().enumerate() {
        for d in 0..n {
            if c[d] == 0 {
                continue;
            }
            let Some(t) = tokens(i, d) else { continue };
            let moments = t.mu.len() == t.nll.len() && t.sigma.len() == t.nll.len();
            for (k, &frac) in MIN_K.iter().enumerate() {
                plain[k][i][d] = min_k_prob(&t.nll, frac);
                if moments {
                    pp[k][i][d] = min_k_pp(&t.nll, &t.mu, &t.sigma, frac);
                    any_pp |= pp[k][i][d].is_finite();
                }
            }
        }
    }
    let table = |name: String, source: &str, values| ProxyTable {
        name,
        source: source.into(),
        values,
    };
    let mut out: Vec<ProxyTable> = MIN_K
        .iter()
        .zip(plain)
        .map(|(k, v)| {
            table(
                format!("min-{:.0}%", 100.0 * k),
                "Shi et al. 2024: mean log-likelihood of the least likely tokens",
                v,
            )
        })
        .collect();
    if any_pp {
        out.extend(MIN_K.iter().zip(pp).map(|(k, v)| {
            table(
                format!("min-{:.0}%++", 100.0 * k),
                "Zhang et al. 2024: least likely tokens, standardised by the next-token distribution",
                v,
            )
        }));
    }
    out
}

/// Every proxy cfmem computes from `src`'s rows, nothing retrained: loss,
/// zlib ratio (when `texts` gives the documents' texts and the source has
/// log-probabilities), reference loss, LiRA offline, RMIA, the matched
/// extraction length (when the source has it) and Min-K % Prob (when it
/// keeps per-token losses, [`Rows::token_proxies`]). None for a source
/// without losses.
///
/// # Errors
/// Errors of the source.
pub fn proxies(src: &dyn Rows, texts: Option<&[String]>) -> Result<Vec<ProxyTable>> {
    let Some(rows) = Loaded::of(src)? else {
        return Ok(Vec::new());
    };
    let mut out = vec![loss(&rows)];
    if let (Some(t), Some(lp)) = (texts.filter(|t| t.len() == rows.n_docs()), &rows.logprob) {
        let sizes: Vec<usize> = t.iter().map(|x| zlib_size(x)).collect();
        out.push(zlib(&rows, lp, &sizes));
    }
    out.push(reference(&rows));
    out.push(lira_offline(&rows));
    out.push(rmia(&rows));
    if let Some(e) = &rows.extraction {
        out.push(extraction(&rows, e));
    }
    // Per-token proxies, where the source keeps per-token results, one row
    // per visited row (else they would not line up and are left out).
    out.extend(
        src.token_proxies()?
            .into_iter()
            .filter(|t| t.values.len() == rows.copies.len()),
    );
    Ok(out)
}

/// The fractions of a target's documents whose precision and recall
/// [`audit`] reports: the proxy's top 1 %, 5 % and 10 %.
pub const TOP_FRACTIONS: [f64; 3] = [0.01, 0.05, 0.1];

/// How one proxy agrees with counterfactual memorization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyAudit {
    /// The proxy's name.
    pub name: String,
    /// Where it comes from.
    pub source: String,
    /// Targets with at least three scored documents.
    pub n_targets: usize,
    /// Mean over targets of the Spearman correlation between the proxy and
    /// memorization over the target's documents.
    pub spearman: f64,
    /// Its standard deviation across targets.
    pub spearman_sd: f64,
    /// A percentile interval for `spearman` from a bootstrap over
    /// documents (200 replicates).
    pub spearman_ci: Option<[f64; 2]>,
    /// Mean over targets of the precision of the proxy's top fraction
    /// ([`TOP_FRACTIONS`]) against the memorized documents (discoveries at
    /// the audit's false discovery rate).
    pub precision: Vec<f64>,
    /// The same fractions' recall.
    pub recall: Vec<f64>,
    /// Mean over targets of the AUC of the proxy for memorized against
    /// not-detected documents (`None` where no target has both).
    pub auc: Option<f64>,
    /// Its standard deviation across targets.
    pub auc_sd: Option<f64>,
    /// What a chart of the proxy draws: the first target's documents
    /// (the first with three or more scored), `(memorization, proxy)`
    /// each, at most [`CHART_POINTS`] evenly spaced in document order.
    /// Not serialised.
    #[serde(skip)]
    pub points: Vec<(f64, f64)>,
}

/// The most points [`ProxyAudit::points`] keeps.
pub const CHART_POINTS: usize = 400;

/// The audit of every proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Audit {
    /// The false discovery rate at which documents count as memorized.
    pub fdr: f64,
    /// Documents memorized at that rate (of those with an estimate).
    pub n_memorized: usize,
    /// One per proxy.
    pub proxies: Vec<ProxyAudit>,
}

/// Each target's ground truth: per document its memorization in `report`'s
/// metric with the target left out of the in-side (plain estimator), so
/// that the target's own noise, which every proxy shares, does not enter
/// the truth it is compared with.
fn truth_without_targets(report: &Report, src: &dyn Rows) -> Result<Vec<Vec<f64>>> {
    let metric = report.config.metric;
    let sign = metric.orientation();
    let (mut copies, mut scores) = (Vec::new(), Vec::new());
    src.visit(Value::Scores(metric), &mut |r| {
        copies.push(r.copies.to_vec());
        scores.push(r.values.to_vec());
        Ok(())
    })?;
    let n = copies.first().map_or(0, Vec::len);
    let (mut sum_in, mut n_in) = (vec![0.0; n], vec![0usize; n]);
    let (mut sum_out, mut n_out) = (vec![0.0; n], vec![0usize; n]);
    for (c, s) in copies.iter().zip(&scores) {
        for d in 0..n {
            if !s[d].is_finite() {
                continue;
            }
            if c[d] > 0 {
                sum_in[d] += s[d];
                n_in[d] += 1;
            } else {
                sum_out[d] += s[d];
                n_out[d] += 1;
            }
        }
    }
    Ok(copies
        .iter()
        .zip(&scores)
        .map(|(c, s)| {
            (0..n)
                .map(|d| {
                    if c[d] == 0 || !s[d].is_finite() || n_in[d] < 2 || n_out[d] == 0 {
                        return f64::NAN;
                    }
                    let inn = (sum_in[d] - s[d]) / (n_in[d] - 1) as f64;
                    sign * (inn - sum_out[d] / n_out[d] as f64)
                })
                .collect()
        })
        .collect())
}

/// Audit each proxy of `tables` against the counterfactual memorization
/// of `report` (made from `src`): per target model, over the documents it
/// trained on, the Spearman correlation of the proxy with memorization
/// (the target left out of it), the precision and recall of the proxy's
/// top 1 / 5 / 10 % against the documents memorized at false discovery
/// rate `fdr` (Benjamini–Hochberg over `report`), and the AUC of the proxy
/// for memorized against not-detected documents; averaged over targets,
/// with the spread across targets and, for the Spearman, an interval from
/// a bootstrap over documents (`seed` its stream).
///
/// # Errors
/// Errors of the source.
pub fn audit(
    report: &Report,
    src: &dyn Rows,
    tables: &[ProxyTable],
    fdr: f64,
    seed: u64,
) -> Result<Audit> {
    let truth = truth_without_targets(report, src)?;
    let memorized: Vec<bool> = report
        .q_values()
        .iter()
        .map(|q| q.is_some_and(|q| q <= fdr))
        .collect();
    let proxies = tables
        .iter()
        .map(|t| audit_against(t, &truth, &memorized, report.config.level, seed))
        .collect();
    Ok(Audit {
        fdr,
        n_memorized: memorized.iter().filter(|&&m| m).count(),
        proxies,
    })
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let mut s = RunningStats::default();
    for &x in v {
        s.push(x);
    }
    (
        if s.n == 0 { f64::NAN } else { s.mean },
        s.variance().map_or(f64::NAN, f64::sqrt),
    )
}

/// Per target, the documents both the proxy and the truth score.
fn scored(table: &ProxyTable, truth: &[Vec<f64>], i: usize) -> Vec<usize> {
    let (p, t) = (&table.values[i], &truth[i]);
    (0..p.len().min(t.len()))
        .filter(|&d| p[d].is_finite() && t[d].is_finite())
        .collect()
}

/// The audit of one proxy against a given truth: `truth[i][d]` is the
/// memorization target `i`'s score of `d` is compared with (`NaN` to
/// leave `d` out), `memorized[d]` whether `d` counts as memorized, `level`
/// the bootstrap interval's coverage, `seed` its stream. [`audit`] calls it
/// with each target left out of its truth; a study with an independent
/// truth (other models) calls it directly.
pub fn audit_against(
    table: &ProxyTable,
    truth: &[Vec<f64>],
    memorized: &[bool],
    level: f64,
    seed: u64,
) -> ProxyAudit {
    let targets = table.values.len().min(truth.len());
    let docs: Vec<Vec<usize>> = (0..targets).map(|i| scored(table, truth, i)).collect();
    let rho_of = |i: usize, d: &[usize]| -> Option<f64> {
        if d.len() < 3 {
            return None;
        }
        let p: Vec<f64> = d.iter().map(|&x| table.values[i][x]).collect();
        let t: Vec<f64> = d.iter().map(|&x| truth[i][x]).collect();
        spearman(&p, &t).filter(|r| r.is_finite())
    };
    let rhos: Vec<f64> = (0..targets).filter_map(|i| rho_of(i, &docs[i])).collect();
    let (spearman, spearman_sd) = mean_sd(&rhos);
    // Bootstrap over documents: one draw of documents per replicate, each
    // target keeping the drawn documents it scores.
    let n_docs = memorized.len();
    let mut rng = cfmem_hash::SplitMix64::new(cfmem_hash::hash_words(&[seed, 0xa0d1]));
    let mut reps = Vec::new();
    for _ in 0..200 {
        let mut count = vec![0usize; n_docs];
        for _ in 0..n_docs {
            count[rng.below(n_docs as u64) as usize] += 1;
        }
        let r: Vec<f64> = (0..targets)
            .filter_map(|i| {
                let d: Vec<usize> = docs[i]
                    .iter()
                    .flat_map(|&x| std::iter::repeat_n(x, count.get(x).copied().unwrap_or(0)))
                    .collect();
                rho_of(i, &d)
            })
            .collect();
        if !r.is_empty() {
            reps.push(r.iter().sum::<f64>() / r.len() as f64);
        }
    }
    reps.sort_by(f64::total_cmp);
    let spearman_ci = (reps.len() >= 2).then(|| {
        let q = |p: f64| reps[((p * (reps.len() - 1) as f64).round() as usize).min(reps.len() - 1)];
        [q((1.0 - level) / 2.0), q((1.0 + level) / 2.0)]
    });
    let (mut precision, mut recall) = (
        vec![Vec::new(); TOP_FRACTIONS.len()],
        vec![Vec::new(); TOP_FRACTIONS.len()],
    );
    let mut aucs = Vec::new();
    for i in 0..targets {
        let d = &docs[i];
        if d.is_empty() {
            continue;
        }
        let is_mem = |x: usize| memorized.get(x).copied().unwrap_or(false);
        let positives = d.iter().filter(|&&x| is_mem(x)).count();
        // The proxy's order, highest first (ties by rank average do not
        // matter for a top fraction; the order is stable).
        let r = ranks(&d.iter().map(|&x| table.values[i][x]).collect::<Vec<_>>());
        let mut order: Vec<usize> = (0..d.len()).collect();
        order.sort_by(|&a, &b| r[b].total_cmp(&r[a]));
        for (f, &frac) in TOP_FRACTIONS.iter().enumerate() {
            let top = ((frac * d.len() as f64).ceil() as usize).clamp(1, d.len());
            let hits = order[..top].iter().filter(|&&k| is_mem(d[k])).count();
            precision[f].push(hits as f64 / top as f64);
            if positives > 0 {
                recall[f].push(hits as f64 / positives as f64);
            }
        }
        let pairs: Vec<(f64, bool)> = d.iter().map(|&x| (table.values[i][x], is_mem(x))).collect();
        if let Some(r) = roc(&pairs) {
            aucs.push(r.auc);
        }
    }
    let mean = |v: &[f64]| mean_sd(v).0;
    let (auc, auc_sd) = mean_sd(&aucs);
    let points = docs
        .iter()
        .enumerate()
        .find(|(_, d)| d.len() >= 3)
        .map(|(i, d)| {
            let step = d.len().div_ceil(CHART_POINTS);
            d.iter()
                .step_by(step)
                .map(|&x| (truth[i][x], table.values[i][x]))
                .collect()
        })
        .unwrap_or_default();
    ProxyAudit {
        name: table.name.clone(),
        source: table.source.clone(),
        n_targets: rhos.len(),
        spearman,
        spearman_sd,
        spearman_ci,
        precision: precision.iter().map(|v| mean(v)).collect(),
        recall: recall.iter().map(|v| mean(v)).collect(),
        auc: (!aucs.is_empty()).then_some(auc),
        auc_sd: (aucs.len() >= 2).then_some(auc_sd),
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{report, DesignConfig, Imported, Membership, ReportConfig, ScoreTable, Synthetic};

    /// Four models, three documents, losses by hand.
    fn small() -> Imported {
        let copies = vec![1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0];
        let losses = vec![
            1.0, 2.0, 0.5, //
            3.0, 1.0, 2.5, //
            1.2, 0.9, 0.6, //
            2.8, 2.9, 2.4,
        ];
        Imported {
            table: ScoreTable::new(
                vec!["a".into(), "b".into(), "c".into()],
                Membership::from_rows(4, 3, copies).unwrap(),
                losses,
            )
            .unwrap(),
            metric: Metric::Loss,
            blocks: 1,
        }
    }

    fn table<'a>(t: &'a [ProxyTable], name: &str) -> &'a ProxyTable {
        t.iter().find(|p| p.name == name).unwrap()
    }

    #[test]
    fn proxies_by_hand() {
        let t = proxies(&small(), None).unwrap();
        // Model 0 trained on a and c; model 1 on b; model 2 on a, c; model 3 on b.
        let l = table(&t, "loss");
        assert_eq!(l.values[0][0], -1.0);
        assert!(l.values[0][1].is_nan() && l.values[1][1] == -1.0);
        // Reference: out-models of a are 1 and 3 (3.0, 2.8), mean 2.9.
        let r = table(&t, "reference");
        assert!((r.values[0][0] - (2.9 - 1.0)).abs() < 1e-12);
        assert!((r.values[2][2] - (2.45 - 0.6)).abs() < 1e-12);
        // LiRA offline by its formula: φ = log(p/(1 − p)), p = e^(−loss).
        let phi = |x: f64| {
            let p = (-x).exp();
            (p / (1.0 - p)).ln()
        };
        let out = |d: usize| -> Vec<f64> {
            let m = [[3.0, 2.8], [2.0, 0.9], [2.5, 2.4]];
            m[d].iter().map(|&x| phi(x)).collect()
        };
        let mu: Vec<f64> = (0..3).map(|d| out(d).iter().sum::<f64>() / 2.0).collect();
        let ss: f64 = (0..3)
            .map(|d| out(d).iter().map(|x| (x - mu[d]).powi(2)).sum::<f64>())
            .sum();
        let sigma = (ss / 3.0).sqrt();
        let z = table(&t, "lira-offline");
        assert!((z.values[0][0] - (phi(1.0) - mu[0]) / sigma).abs() < 1e-12);
        // Imported losses have no log-probabilities nor extraction.
        assert!(t
            .iter()
            .all(|p| p.name != "zlib" && p.name != "extraction-length"));
    }

    #[test]
    fn rmia_by_its_definition() {
        // Target 0 trained on a and c; its population Z_0 = {b}.
        // Pr(x | θ_0) = e^(−loss); Pr(x) = mean of e^(−loss) over the
        // out-models other than 0: a → {1, 3}, b → {2} (model 0 trained
        // on... not b: its out-models other than 0 are 2).
        let e = |x: f64| (-x).exp();
        let ratio_a = e(1.0) / ((e(3.0) + e(2.8)) / 2.0);
        let ratio_c = e(0.5) / ((e(2.5) + e(2.4)) / 2.0);
        let ratio_b = e(2.0) / e(0.9);
        // LR(x, b) = ratio_x / ratio_b ≥ 1 ⇔ x beats b.
        let t = proxies(&small(), None).unwrap();
        let r = table(&t, "rmia");
        assert_eq!(
            r.values[0][0],
            f64::from(u8::from(ratio_a / ratio_b >= RMIA_GAMMA))
        );
        assert_eq!(
            r.values[0][2],
            f64::from(u8::from(ratio_c / ratio_b >= RMIA_GAMMA))
        );
        assert!(r.values[0][1].is_nan());
        assert_eq!(r.values[0][0], 1.0);
    }

    #[test]
    fn min_k_by_hand() {
        // Losses 0.1, 2.0, 0.5, 3.0, 1.0: the 20 % least likely of five is
        // one token (3.0), 50 % three (3.0, 2.0, 1.0).
        let nll = [0.1f32, 2.0, 0.5, 3.0, 1.0];
        assert!((min_k_prob(&nll, 0.2) + 3.0).abs() < 1e-6);
        assert!((min_k_prob(&nll, 0.5) + 2.0).abs() < 1e-6);
        assert!((min_k_prob(&nll, 1.0) + 6.6 / 5.0).abs() < 1e-6);
        assert!(min_k_prob(&[], 0.2).is_nan());
        let copies = vec![vec![1, 0], vec![0, 1]];
        let t = min_k_table(&copies, &|i, d| {
            Some(TokenView {
                nll: vec![(i + d) as f32, 1.0],
                ..TokenView::default()
            })
        });
        // Without the moments, no Min-K %++.
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].values[0][0], -1.0);
        assert!(t[0].values[0][1].is_nan());
        assert_eq!(t[2].values[1][1], -2.0);
    }

    /// Min-K %++ against its paper's definition (Zhang et al. 2024, eq. 2)
    /// on a worked example: two positions of a three-token vocabulary,
    /// their next-token distributions written out, μ and σ by hand.
    #[test]
    fn min_k_pp_by_hand() {
        // Position 1: p = (0.5, 0.25, 0.25), the token 0 follows.
        //   μ = 0.5 ln 0.5 + 2·0.25 ln 0.25 = −1.0397208,
        //   E[(ln p)²] = 0.5 (ln 0.5)² + 0.5 (ln 0.25)² = 1.2011325,
        //   σ = √(1.2011325 − 1.0810193) = 0.3465736,
        //   z = (ln 0.5 − μ)/σ = 1.0.
        // Position 2: p = (0.7, 0.2, 0.1), the token 2 follows.
        let p2 = [0.7f64, 0.2, 0.1];
        let mu2: f64 = p2.iter().map(|p| p * p.ln()).sum();
        let m2: f64 = p2.iter().map(|p| p * p.ln() * p.ln()).sum();
        let s2 = (m2 - mu2 * mu2).sqrt();
        let z2 = (0.1f64.ln() - mu2) / s2;
        assert!(z2 < 1.0);
        let nll = [-(0.5f32.ln()), -(0.1f32.ln())];
        let mu = [-1.039_720_8f32, mu2 as f32];
        let sigma = [0.346_573_6f32, s2 as f32];
        // 50 % of two tokens is the lower one, z₂; all of them their mean.
        assert!((min_k_pp(&nll, &mu, &sigma, 0.5) - z2).abs() < 1e-5);
        assert!((min_k_pp(&nll, &mu, &sigma, 1.0) - (1.0 + z2) / 2.0).abs() < 1e-5);
        // A position with σ = 0 has no z and is left out.
        assert!((min_k_pp(&nll, &mu, &[0.346_573_6, 0.0], 1.0) - 1.0).abs() < 1e-5);
        assert!(min_k_pp(&nll[..1], &mu[..1], &[0.0], 1.0).is_nan());
        // The tables: targets with the moments get the ++ tables.
        let copies = vec![vec![1, 1]];
        let t = min_k_table(&copies, &|_, d| {
            Some(TokenView {
                nll: nll[d..].to_vec(),
                mu: mu[d..].to_vec(),
                sigma: sigma[d..].to_vec(),
            })
        });
        assert_eq!(t.len(), 6);
        assert_eq!(t[4].name, "min-20%++");
        assert!((t[5].values[0][1] - z2).abs() < 1e-5);
    }

    #[test]
    fn zlib_ratio_and_size() {
        // A repetitive text compresses far below its length; a ratio is
        // log-probability per compressed byte.
        let rep = "abc".repeat(100);
        assert!(zlib_size(&rep) < 30);
        assert!(zlib_size("") >= 1);
        assert!((zlib_ratio(-20.0, 10) + 2.0).abs() < 1e-12);
    }

    #[test]
    fn the_audit_finds_the_proxy_built_from_memorization() {
        // Documents with normally spread memorization; proxies built per
        // target from the truth the audit uses: itself (Spearman 1, top
        // documents memorized), its negation (−1), the truth plus noise of
        // the truth's own spread (Pearson 1/√2, so Spearman
        // (6/π)·asin(1/(2√2)) = 0.682 for normal scores), and pure noise (0).
        let n = 300;
        let mut rng = cfmem_hash::SplitMix64::new(4);
        let mem: Vec<f64> = (0..n).map(|_| 0.1 + 0.05 * rng.normal()).collect();
        let src = Synthetic::new(DesignConfig::blocks(2, 8), 32, mem)
            .noise(0.01)
            .seed(6);
        let rep = report(&src, &ReportConfig::plain(Metric::Accuracy)).unwrap();
        let truth = truth_without_targets(&rep, &src).unwrap();
        let sd: Vec<f64> = truth
            .iter()
            .map(|t| {
                let v: Vec<f64> = t.iter().copied().filter(|x| x.is_finite()).collect();
                mean_sd(&v).1
            })
            .collect();
        let make = |name: &str, f: &mut dyn FnMut(usize, f64) -> f64| ProxyTable {
            name: name.into(),
            source: String::new(),
            values: truth
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    t.iter()
                        .map(|&x| if x.is_finite() { f(i, x) } else { f64::NAN })
                        .collect()
                })
                .collect(),
        };
        let mut r1 = cfmem_hash::SplitMix64::new(11);
        let mut r2 = cfmem_hash::SplitMix64::new(12);
        let tables = vec![
            make("same", &mut |_, x| x),
            make("negated", &mut |_, x| -x),
            make("noisy", &mut |i, x| x + sd[i] * r1.normal()),
            make("noise", &mut |_, _| r2.normal()),
        ];
        let a = audit(&rep, &src, &tables, 0.05, 1).unwrap();
        let get = |name: &str| a.proxies.iter().find(|p| p.name == name).unwrap();
        assert!((get("same").spearman - 1.0).abs() < 1e-12);
        assert!((get("negated").spearman + 1.0).abs() < 1e-12);
        let known = 6.0 / std::f64::consts::PI * (1.0 / (2.0 * 2f64.sqrt())).asin();
        let noisy = get("noisy");
        assert!(
            (noisy.spearman - known).abs() < 0.05,
            "{} vs {known}",
            noisy.spearman
        );
        let [lo, hi] = noisy.spearman_ci.unwrap();
        assert!(lo < noisy.spearman && noisy.spearman < hi);
        assert!(
            get("noise").spearman.abs() < 0.05,
            "{}",
            get("noise").spearman
        );
        assert_eq!(get("same").n_targets, 32);
        // Most documents are memorized (mem 0.1 ± 0.05, small noise): the
        // truth's own top 10 % all are, and it separates better than noise.
        assert!(a.n_memorized > n / 2);
        assert!(get("same").precision[2] > 0.99);
        assert!(get("same").auc.unwrap() > get("noise").auc.unwrap() + 0.2);
        assert!((get("noise").auc.unwrap() - 0.5).abs() < 0.1);
    }

    #[test]
    fn the_truth_leaves_the_target_out() {
        // Document a: in-models 0 and 2 score 1.0 and 1.2 (losses); out 3.0
        // and 2.8. For target 0 the in-side is model 2 alone: mem =
        // 2.9 − 1.2 (loss: out − in).
        let src = small();
        let rep = report(&src, &ReportConfig::plain(Metric::Loss)).unwrap();
        let t = truth_without_targets(&rep, &src).unwrap();
        assert!((t[0][0] - (2.9 - 1.2)).abs() < 1e-12);
        assert!((t[2][0] - (2.9 - 1.0)).abs() < 1e-12);
        assert!(t[1][0].is_nan());
    }
}
