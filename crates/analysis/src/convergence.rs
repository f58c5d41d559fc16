//! How reliable are the estimates? Split-half agreement over many random
//! partitions of the models, with a bootstrap interval over documents, at
//! growing model counts.

use serde::{Deserialize, Serialize};

use crate::correlation::{spearman_brown, RankPair};
use crate::error::{Error, Result};
use crate::report::{adjuster, ReportConfig};
use crate::rows::{count_rows, Rows, Value};
use cfmem_hash::{hash_words, SplitMix64};

/// Settings of [`convergence`].
///
/// | field | default | meaning |
/// |---|---|---|
/// | `report` | [`ReportConfig::default`] | how the estimates are computed (metric, adjustment, interval level) |
/// | `checkpoints` | 8, 16, 32, … | model counts at which the halves are compared (the total is always one) |
/// | `n_models` | all rows | use only the models `0..n_models` |
/// | `partitions` | 20 | random partitions of the models into two halves per checkpoint (all of them when there are fewer) |
/// | `bootstrap` | 200 | bootstrap resamples of the documents for the interval |
/// | `max_groups` | 32 | the blocks are dealt into at most this many groups, the units of a partition (memory: documents × groups × 32 bytes) |
/// | `seed` | 0 | seed of the partitions and resamples |
#[derive(Debug, Clone, PartialEq)]
pub struct ConvergenceConfig {
    /// The metric, adjustment and level of the estimates.
    pub report: ReportConfig,
    /// Checkpoints (`None`: 8, 16, 32, …).
    pub checkpoints: Option<Vec<usize>>,
    /// Only models below this index (`None`: all).
    pub n_models: Option<usize>,
    /// Partitions per checkpoint.
    pub partitions: usize,
    /// Bootstrap resamples.
    pub bootstrap: usize,
    /// Most groups of blocks.
    pub max_groups: usize,
    /// Seed of the partitions and resamples.
    pub seed: u64,
}

impl Default for ConvergenceConfig {
    fn default() -> Self {
        Self {
            report: ReportConfig::default(),
            checkpoints: None,
            n_models: None,
            partitions: 20,
            bootstrap: 200,
            max_groups: 32,
            seed: 0,
        }
    }
}

/// The split-half agreement at one model count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvergencePoint {
    /// Models used in all (about half in each half).
    pub n_models: usize,
    /// Spearman correlation between the two halves' estimates, averaged
    /// over the partitions (`None` when fewer than three documents have an
    /// estimate in both halves, or with fewer than two groups of models).
    pub spearman: Option<f64>,
    /// Its standard deviation over the partitions (which halves the models
    /// fall in).
    pub spearman_sd: Option<f64>,
    /// Bootstrap interval over documents of `spearman` (percentile, at the
    /// report's level).
    pub ci_low: Option<f64>,
    /// Upper end of that interval.
    pub ci_high: Option<f64>,
    /// Spearman–Brown reliability `2ρ/(1+ρ)` of an estimate from all
    /// `n_models`: the expected agreement with a replication.
    pub reliability: Option<f64>,
    /// The interval mapped through Spearman–Brown.
    pub reliability_ci_low: Option<f64>,
    /// Upper end.
    pub reliability_ci_high: Option<f64>,
    /// Partitions averaged.
    pub n_partitions: usize,
    /// Documents with an estimate in both halves (in the first partition).
    pub n_docs: usize,
}

/// The default checkpoints up to `n`: 8, 16, 32, … and `n`.
fn default_checkpoints(n: usize) -> Vec<usize> {
    let mut c = Vec::new();
    let mut x = 8;
    while x < n {
        c.push(x);
        x *= 2;
    }
    c.push(n);
    c
}

/// Per document and group of models: in- and out-sums and counts of the
/// (adjusted) scores.
struct GroupSums {
    n_groups: usize,
    /// `[doc][group] → (Σ in, n in, Σ out, n out)`.
    sums: Vec<[f64; 4]>,
}

impl GroupSums {
    /// The estimates (in-mean − out-mean) of each document from the groups
    /// `in_half` marks (NaN where a side is empty).
    fn half(&self, in_half: &[bool], sign: f64) -> Vec<f64> {
        self.sums
            .chunks(self.n_groups)
            .map(|doc| {
                let mut t = [0.0; 4];
                for (g, s) in doc.iter().enumerate() {
                    if in_half[g] {
                        for (a, b) in t.iter_mut().zip(s) {
                            *a += b;
                        }
                    }
                }
                if t[1] > 0.0 && t[3] > 0.0 {
                    sign * (t[0] / t[1] - t[2] / t[3])
                } else {
                    f64::NAN
                }
            })
            .collect()
    }
}

/// The partitions of `g` groups into two halves (sizes ⌊g/2⌋ and ⌈g/2⌉):
/// all of them when there are at most `p`, else `p` drawn at random.
fn partitions(g: usize, p: usize, rng: &mut SplitMix64) -> Vec<Vec<bool>> {
    let half = g / 2;
    // Distinct partitions: C(g, g/2), halved when the halves have equal size.
    let mut count = 1f64;
    for i in 0..half {
        count *= (g - i) as f64 / (i + 1) as f64;
    }
    if g.is_multiple_of(2) {
        count /= 2.0;
    }
    if count <= p as f64 {
        // Subsets of size `half` as bit masks; with equal halves keep those
        // without the last group, so each partition appears once.
        return (0u64..1 << g)
            .filter(|m| m.count_ones() as usize == half)
            .filter(|m| g % 2 == 1 || m & (1 << (g - 1)) == 0)
            .map(|m| (0..g).map(|i| m & (1 << i) != 0).collect())
            .collect();
    }
    (0..p)
        .map(|_| {
            let mut idx: Vec<usize> = (0..g).collect();
            for i in (1..g).rev() {
                idx.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let mut mask = vec![false; g];
            for &i in &idx[..half] {
                mask[i] = true;
            }
            mask
        })
        .collect()
}

/// The split-half point at one checkpoint from its group sums.
fn point(
    sums: &GroupSums,
    n_models: usize,
    cfg: &ConvergenceConfig,
    rng: &mut SplitMix64,
) -> ConvergencePoint {
    let sign = cfg.report.metric.orientation();
    let parts = if sums.n_groups >= 2 {
        partitions(sums.n_groups, cfg.partitions.max(1), rng)
    } else {
        Vec::new()
    };
    let pairs: Vec<RankPair> = parts
        .iter()
        .map(|m| {
            let other: Vec<bool> = m.iter().map(|x| !x).collect();
            RankPair::new(&sums.half(m, sign), &sums.half(&other, sign))
        })
        .collect();
    let n_docs = sums.sums.len() / sums.n_groups.max(1);
    let mut scratch = [vec![0.0; n_docs], vec![0.0; n_docs]];
    let mean_rho = |w: &[f64], scratch: &mut [Vec<f64>; 2]| -> Option<(f64, f64)> {
        let rhos: Vec<f64> = pairs
            .iter()
            .filter_map(|p| p.spearman(w, scratch))
            .collect();
        if rhos.is_empty() {
            return None;
        }
        let m = rhos.iter().sum::<f64>() / rhos.len() as f64;
        let var = rhos.iter().map(|r| (r - m).powi(2)).sum::<f64>() / rhos.len() as f64;
        Some((m, var.sqrt()))
    };
    let ones = vec![1.0; n_docs];
    let full = mean_rho(&ones, &mut scratch);
    let mut boots: Vec<f64> = Vec::with_capacity(cfg.bootstrap);
    if full.is_some() {
        let mut w = vec![0.0; n_docs];
        for _ in 0..cfg.bootstrap {
            w.iter_mut().for_each(|x| *x = 0.0);
            for _ in 0..n_docs {
                w[rng.below(n_docs as u64) as usize] += 1.0;
            }
            if let Some((r, _)) = mean_rho(&w, &mut scratch) {
                boots.push(r);
            }
        }
    }
    boots.sort_by(f64::total_cmp);
    let alpha = (1.0 - cfg.report.level) / 2.0;
    let quantile = |q: f64| -> Option<f64> {
        (boots.len() >= 10).then(|| boots[((q * (boots.len() - 1) as f64).round()) as usize])
    };
    let (ci_low, ci_high) = (quantile(alpha), quantile(1.0 - alpha));
    let sb = |x: Option<f64>| x.map(spearman_brown);
    ConvergencePoint {
        n_models,
        spearman: full.map(|f| f.0),
        spearman_sd: full.map(|f| f.1),
        ci_low,
        ci_high,
        reliability: sb(full.map(|f| f.0)),
        reliability_ci_low: sb(ci_low),
        reliability_ci_high: sb(ci_high),
        n_partitions: pairs.len(),
        n_docs: pairs.first().map_or(0, RankPair::len),
    }
}

/// Split-half reliability of the estimates of `src` as models are added.
///
/// At each checkpoint `n`, only the models `0..n` are used, for
/// everything (the adjustment's document centres included). Their blocks
/// (single models for designs without blocks) are dealt into at most
/// `max_groups` groups; each of `partitions` random partitions of the
/// groups into two halves gives two estimates per document and their
/// Spearman correlation. The point is the mean over partitions (its spread
/// is reported too); the interval is the percentile interval of that mean
/// over `bootstrap` resamples of the documents. Two passes over the rows
/// per checkpoint (one without adjustment).
///
/// # Errors
/// Errors of the source; an invalid [`ReportConfig`].
pub fn convergence(src: &dyn Rows, cfg: &ConvergenceConfig) -> Result<Vec<ConvergencePoint>> {
    cfg.report.check()?;
    let metric = cfg.report.metric;
    let n_total = match cfg.n_models {
        Some(n) => n,
        None => count_rows(src, Value::Scores(metric))?,
    };
    let checkpoints = match &cfg.checkpoints {
        None => default_checkpoints(n_total),
        Some(c) => {
            let mut c: Vec<usize> = c
                .iter()
                .copied()
                .filter(|&x| x > 0 && x < n_total)
                .collect();
            c.push(n_total);
            c.sort_unstable();
            c.dedup();
            c
        }
    };
    let (n_docs, block) = (src.ids().len(), src.block_size().max(1));
    let mut rng = SplitMix64::new(hash_words(&[cfg.seed, 0xc0de]));
    let mut points = Vec::new();
    for &n in &checkpoints {
        // Models 0..n: visited in order, so the n-th row seen closes the checkpoint.
        let mut seen = 0usize;
        let mut keep_set = vec![false; 0];
        src.visit(Value::Scores(metric), &mut |r| {
            if seen < n {
                if keep_set.len() <= r.model {
                    keep_set.resize(r.model + 1, false);
                }
                keep_set[r.model] = true;
                seen += 1;
            }
            Ok(())
        })?;
        let keep = |i: usize| keep_set.get(i).copied().unwrap_or(false);
        let last = keep_set.iter().rposition(|&k| k).unwrap_or(0);
        let n_blocks = last / block + 1;
        let n_groups = n_blocks.min(cfg.max_groups.max(2));
        let adj = adjuster(src, metric, cfg.report.adjustment, &keep)?;
        let mut sums = GroupSums {
            n_groups,
            sums: vec![[0.0; 4]; n_docs * n_groups],
        };
        src.visit(Value::Scores(metric), &mut |r| {
            if !keep(r.model) {
                return Ok(());
            }
            if r.copies.len() != n_docs || r.values.len() != n_docs {
                return Err(Error::RowLength {
                    model: r.model,
                    got: r.values.len(),
                    expected: n_docs,
                });
            }
            let g = (r.model / block) % n_groups;
            let adjusted = adj.apply(r.copies, r.values);
            for (d, &x) in adjusted.iter().enumerate() {
                if x.is_finite() {
                    let s = &mut sums.sums[d * n_groups + g];
                    let at = if r.copies[d] > 0 { 0 } else { 2 };
                    s[at] += x;
                    s[at + 1] += 1.0;
                }
            }
            Ok(())
        })?;
        points.push(point(&sums, seen, cfg, &mut rng));
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DesignConfig, Synthetic};

    #[test]
    fn partitions_are_balanced_and_distinct() {
        let mut rng = SplitMix64::new(1);
        // 4 groups: C(4,2)/2 = 3 partitions, all enumerated.
        let p = partitions(4, 20, &mut rng);
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|m| m.iter().filter(|&&x| x).count() == 2));
        // 5 groups: C(5,2) = 10 (halves of 2 and 3 are distinct).
        assert_eq!(partitions(5, 20, &mut rng).len(), 10);
        // 16 groups: 6435 partitions, 20 drawn, each of 8.
        let p = partitions(16, 20, &mut rng);
        assert_eq!(p.len(), 20);
        assert!(p.iter().all(|m| m.iter().filter(|&&x| x).count() == 8));
    }

    #[test]
    fn one_partition_matches_a_brute_force_split() {
        // 8 models in blocks of 2 → 4 groups → 3 partitions. Partition
        // {blocks 0, 1} vs {2, 3} by brute force on the plain estimator.
        let mem: Vec<f64> = (0..10).map(|d| 0.05 * d as f64).collect();
        let rows = Synthetic::new(DesignConfig::blocks(2, 5), 8, mem).seed(2);
        let data: Vec<(Vec<u32>, Vec<f64>)> = (0..8).map(|i| rows.row(i).unwrap()).collect();
        let half = |models: &[usize]| -> Vec<f64> {
            (0..10)
                .map(|d| {
                    let side = |inn: bool| {
                        let v: Vec<f64> = models
                            .iter()
                            .filter(|&&i| (data[i].0[d] > 0) == inn)
                            .map(|&i| data[i].1[d])
                            .collect();
                        v.iter().sum::<f64>() / v.len() as f64
                    };
                    side(true) - side(false)
                })
                .collect()
        };
        let rhos = [
            crate::spearman(&half(&[0, 1, 2, 3]), &half(&[4, 5, 6, 7])).unwrap(),
            crate::spearman(&half(&[0, 1, 4, 5]), &half(&[2, 3, 6, 7])).unwrap(),
            crate::spearman(&half(&[0, 1, 6, 7]), &half(&[2, 3, 4, 5])).unwrap(),
        ];
        let want = rhos.iter().sum::<f64>() / 3.0;
        let cfg = ConvergenceConfig {
            report: ReportConfig::plain(crate::Metric::Accuracy),
            ..ConvergenceConfig::default()
        };
        let pts = convergence(&rows, &cfg).unwrap();
        assert_eq!(pts.len(), 1);
        let p = &pts[0];
        assert_eq!((p.n_models, p.n_partitions, p.n_docs), (8, 3, 10));
        assert!(
            (p.spearman.unwrap() - want).abs() < 1e-12,
            "{p:?} vs {want}"
        );
        assert!(p.ci_low.unwrap() <= p.spearman.unwrap() + 1e-12);
        assert!(p.ci_high.unwrap() >= p.spearman.unwrap() - 1e-12);
        assert!((p.reliability.unwrap() - spearman_brown(want)).abs() < 1e-12);
    }

    #[test]
    fn reliability_rises_with_models_and_checkpoints_use_only_their_own() {
        let n_docs = 60;
        let truth: Vec<f64> = (0..n_docs)
            .map(|d| 0.3 * d as f64 / n_docs as f64)
            .collect();
        let rows = Synthetic::new(DesignConfig::blocks(2, 1), 64, truth)
            .noise(0.12)
            .model_sd(0.05)
            .seed(5);
        let pts = convergence(&rows, &ConvergenceConfig::default()).unwrap();
        assert_eq!(
            pts.iter().map(|p| p.n_models).collect::<Vec<_>>(),
            vec![8, 16, 32, 64]
        );
        let rho: Vec<f64> = pts.iter().map(|p| p.spearman.unwrap()).collect();
        assert!(rho[3] > rho[0] && rho[3] > 0.7, "{rho:?}");
        // The first checkpoint is the same whether or not later models exist.
        let first = convergence(
            &rows,
            &ConvergenceConfig {
                n_models: Some(8),
                ..ConvergenceConfig::default()
            },
        )
        .unwrap();
        assert_eq!(first[0].spearman, pts[0].spearman);
        // The interval narrows as models are added.
        let w = |p: &ConvergencePoint| p.ci_high.unwrap() - p.ci_low.unwrap();
        assert!(w(&pts[3]) < w(&pts[0]));
    }
}
