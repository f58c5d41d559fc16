//! Counterfactual influence of training units on query documents, in
//! blocks of queries with top-k lists, so memory stays bounded.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::estimate::Metric;

/// One influence estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InfluenceEntry {
    /// The training unit.
    pub unit: usize,
    /// The query document.
    pub query: usize,
    /// `infl(unit → query)`; larger = including the unit helps the query more.
    pub infl: f64,
    /// Welch standard error (`NaN` below two models a side).
    pub se: f64,
}

/// Top-k lists of influence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Influence {
    /// For each query, the `k` most influential units, largest first.
    pub top_units: Vec<Vec<InfluenceEntry>>,
    /// For each unit, the `k` queries it influences most, largest first.
    pub top_queries: Vec<Vec<InfluenceEntry>>,
    /// Models used.
    pub n_models: usize,
}

/// Settings of [`influence`].
///
/// | field | default | meaning |
/// |---|---|---|
/// | `k` | 10 | entries kept per query and per unit |
/// | `block` | 0 (auto) | queries per pass; auto keeps the block matrices under `max_bytes` |
/// | `max_bytes` | 256 MiB | memory budget of one block |
/// | `exclude_self` | false | skip `unit == query` (when the queries are the training documents, that entry is memorization) |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfluenceConfig {
    /// Entries kept per list.
    pub k: usize,
    /// Queries per pass (0 = auto).
    pub block: usize,
    /// Memory budget for one block.
    pub max_bytes: usize,
    /// Skip unit == query.
    pub exclude_self: bool,
}

impl Default for InfluenceConfig {
    fn default() -> Self {
        Self {
            k: 10,
            block: 0,
            max_bytes: 256 << 20,
            exclude_self: false,
        }
    }
}

fn would_enter(list: &[InfluenceEntry], infl: f64, k: usize) -> bool {
    list.len() < k || list.iter().any(|e| e.infl < infl)
}

fn push_top(list: &mut Vec<InfluenceEntry>, e: InfluenceEntry, k: usize) {
    if list.len() < k {
        list.push(e);
    } else if let Some((min_i, min)) = list
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.infl.total_cmp(&b.1.infl))
    {
        if e.infl > min.infl {
            list[min_i] = e;
        }
    }
}

/// A pass over the models: the callback is given each model's unit copies
/// and its scores on the queries `q0..q0 + nq`.
pub type ModelVisitor<'a> = dyn FnMut(&[u32], &[f64]) -> Result<()> + 'a;

/// Counterfactual influence of every unit on every query, keeping top-k
/// lists. `stream(q0, nq, visit)` must call `visit(copies, scores)` once per
/// model, with `copies` over the `n_units` units and `scores` the metric on
/// queries `q0..q0 + nq`; it is called once per block of queries.
///
/// Memory: `n_units × block × 24` bytes per pass, plus the top-k lists.
///
/// # Formula
/// ```text
/// infl(u → q) = mean{ M(model_i, q) : u ∈ S_i } − mean{ M(model_i, q) : u ∉ S_i }
/// ```
/// (sign flipped for losses), with Welch's standard error.
///
/// # Errors
/// [`Error::RowLength`] for rows of the wrong length; errors of `stream`.
pub fn influence(
    n_units: usize,
    n_queries: usize,
    metric: Metric,
    cfg: &InfluenceConfig,
    mut stream: impl FnMut(usize, usize, &mut ModelVisitor<'_>) -> Result<()>,
) -> Result<Influence> {
    let k = cfg.k.max(1);
    let block = if cfg.block > 0 {
        cfg.block
    } else {
        (cfg.max_bytes / (24 * n_units.max(1))).clamp(1, n_queries.max(1))
    };
    let sign = metric.orientation();
    let mut top_units = vec![Vec::new(); n_queries];
    let mut top_queries = vec![Vec::new(); n_units];
    let mut n_models = 0;
    let mut q0 = 0;
    while q0 < n_queries {
        let nq = block.min(n_queries - q0);
        let mut sum = vec![0f64; n_units * nq];
        let mut sumsq = vec![0f64; n_units * nq];
        let mut n_in = vec![0usize; n_units];
        let mut total = vec![0f64; nq];
        let mut total_sq = vec![0f64; nq];
        let mut m = 0usize;
        stream(q0, nq, &mut |copies: &[u32], scores: &[f64]| {
            if copies.len() != n_units || scores.len() != nq {
                return Err(Error::RowLength {
                    model: m,
                    got: if copies.len() != n_units {
                        copies.len()
                    } else {
                        scores.len()
                    },
                    expected: if copies.len() != n_units { n_units } else { nq },
                });
            }
            for (q, &s) in scores.iter().enumerate() {
                total[q] += s;
                total_sq[q] += s * s;
            }
            for (u, &c) in copies.iter().enumerate() {
                if c == 0 {
                    continue;
                }
                n_in[u] += 1;
                let row = &mut sum[u * nq..(u + 1) * nq];
                let row_sq = &mut sumsq[u * nq..(u + 1) * nq];
                for q in 0..nq {
                    row[q] += scores[q];
                    row_sq[q] += scores[q] * scores[q];
                }
            }
            m += 1;
            Ok(())
        })?;
        n_models = m;
        let var = |n: usize, s: f64, ss: f64| {
            if n >= 2 {
                ((ss - s * s / n as f64) / (n - 1) as f64).max(0.0)
            } else {
                f64::NAN
            }
        };
        for u in 0..n_units {
            let ni = n_in[u];
            let no = m - ni;
            if ni == 0 || no == 0 {
                continue;
            }
            for q in 0..nq {
                let query = q0 + q;
                if cfg.exclude_self && query == u {
                    continue;
                }
                let (s, ss) = (sum[u * nq + q], sumsq[u * nq + q]);
                let (so, sso) = (total[q] - s, total_sq[q] - ss);
                let infl = sign * (s / ni as f64 - so / no as f64);
                // Most pairs enter no list: skip the SE for them.
                if !would_enter(&top_units[query], infl, k)
                    && !would_enter(&top_queries[u], infl, k)
                {
                    continue;
                }
                let se = (var(ni, s, ss) / ni as f64 + var(no, so, sso) / no as f64).sqrt();
                let e = InfluenceEntry {
                    unit: u,
                    query,
                    infl,
                    se,
                };
                push_top(&mut top_units[query], e, k);
                push_top(&mut top_queries[u], e, k);
            }
        }
        q0 += nq;
    }
    for l in top_units.iter_mut().chain(top_queries.iter_mut()) {
        l.sort_by(|a, b| b.infl.total_cmp(&a.infl));
    }
    Ok(Influence {
        top_units,
        top_queries,
        n_models,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_topk_matches_dense_brute_force() {
        // 5 models × 4 units × 3 queries, by hand-made pseudo-random numbers.
        let copies = [
            [1, 0, 1, 0],
            [0, 1, 1, 0],
            [1, 1, 0, 1],
            [0, 0, 1, 1],
            [1, 0, 0, 1],
        ];
        let scores: Vec<Vec<f64>> = (0..5)
            .map(|i| {
                (0..3)
                    .map(|q| ((i * 7 + q * 3) % 11) as f64 / 10.0)
                    .collect()
            })
            .collect();
        let dense = |u: usize, q: usize| {
            let inn: Vec<f64> = (0..5)
                .filter(|&i| copies[i][u] > 0)
                .map(|i| scores[i][q])
                .collect();
            let out: Vec<f64> = (0..5)
                .filter(|&i| copies[i][u] == 0)
                .map(|i| scores[i][q])
                .collect();
            inn.iter().sum::<f64>() / inn.len() as f64 - out.iter().sum::<f64>() / out.len() as f64
        };
        for block in [1, 2, 3] {
            let cfg = InfluenceConfig {
                k: 2,
                block,
                ..Default::default()
            };
            let inf = influence(4, 3, Metric::Accuracy, &cfg, |q0, nq, visit| {
                for i in 0..5 {
                    visit(&copies[i], &scores[i][q0..q0 + nq])?;
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(inf.n_models, 5);
            for q in 0..3 {
                let mut all: Vec<(usize, f64)> = (0..4).map(|u| (u, dense(u, q))).collect();
                all.sort_by(|a, b| b.1.total_cmp(&a.1));
                let got: Vec<f64> = inf.top_units[q].iter().map(|e| e.infl).collect();
                let want: Vec<f64> = all.iter().take(2).map(|a| a.1).collect();
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < 1e-12,
                        "block {block} query {q}: {got:?} vs {want:?}"
                    );
                }
            }
            for u in 0..4 {
                let best = (0..3).map(|q| dense(u, q)).fold(f64::MIN, f64::max);
                assert!((inf.top_queries[u][0].infl - best).abs() < 1e-12);
            }
            // The SE is Welch's, from the two sides' sample variances.
            let e = inf.top_units[0][0];
            let side = |inn: bool| -> crate::estimate::RunningStats {
                let mut s = crate::estimate::RunningStats::default();
                for i in (0..5).filter(|&i| (copies[i][e.unit] > 0) == inn) {
                    s.push(scores[i][0]);
                }
                s
            };
            let w = crate::estimate::welch(&side(true), &side(false), 0.95).unwrap();
            assert!((e.se - w.se).abs() < 1e-12, "{} vs {}", e.se, w.se);
        }
    }

    #[test]
    fn exclude_self_and_loss_sign() {
        let copies = [[1, 0], [0, 1], [1, 0], [0, 1]];
        let losses = [[1.0, 3.0], [3.0, 1.0], [1.2, 2.8], [2.8, 1.2]];
        let cfg = InfluenceConfig {
            k: 5,
            exclude_self: true,
            ..Default::default()
        };
        let inf = influence(2, 2, Metric::Loss, &cfg, |q0, nq, visit| {
            for i in 0..4 {
                visit(&copies[i], &losses[i][q0..q0 + nq])?;
            }
            Ok(())
        })
        .unwrap();
        // Query 0's only other unit is 1: with unit 1 in, loss on query 0 is 2.9; out, 1.1.
        assert_eq!(inf.top_units[0].len(), 1);
        assert_eq!(inf.top_units[0][0].unit, 1);
        assert!((inf.top_units[0][0].infl - (1.1 - 2.9)).abs() < 1e-12);
    }
}
