//! Which cheap memorization proxy tracks counterfactual memorization, and
//! how many counterfactual models beat it? An experiment's models are cut
//! in two: the last ones estimate each document's counterfactual
//! memorization (the *truth*, independent of everything else); each of the
//! first ones is a *target* that scores the documents it trained on with
//! every proxy ([`cfmem::analysis::proxies`]), and the counterfactual
//! estimate of the first `N` models is scored the same way (restricted to
//! each target's documents), so that every row of the table is the same
//! statistic over the same documents: the mean over targets of the
//! Spearman correlation with the truth, with a bootstrap interval over
//! documents ([`audit_against`]).
//!
//! Proxies that need reference models (reference loss, LiRA offline, RMIA)
//! take them from the first half only, never from the truth's models,
//! whose noise they would share.

use std::path::Path;

use cfmem::analysis::{
    audit_against, proxies, report, ModelRange, ProxyAudit, ProxyTable, Report, ReportConfig, Rows,
    DEFAULT_FDR,
};
use cfmem::engine::Corpus;
use cfmem::sched::{Experiment, Observer};

use crate::{train, Result, Scale};

/// The proxies that need no model but the target.
const SINGLE_MODEL: [&str; 2] = ["loss", "zlib"];

/// One row of the study's table.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyRow {
    /// The proxy's name, or `counterfactual, N models`.
    pub name: String,
    /// Models trained for the row's score: 1 (the target) for the
    /// single-model proxies (loss, zlib ratio, Min-K % Prob, Min-K %++),
    /// the target and the first half's other models for the
    /// reference-based ones, `N` for a counterfactual estimate.
    pub models_needed: usize,
    /// Its agreement with the truth.
    pub audit: ProxyAudit,
}

/// The study over one experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyStudy {
    /// Documents of the corpus.
    pub n_docs: usize,
    /// Models of the truth (the experiment's last ones).
    pub truth_models: usize,
    /// Target models (the experiment's first ones).
    pub targets: usize,
    /// Documents the truth calls memorized at [`DEFAULT_FDR`].
    pub n_memorized: usize,
    /// The proxies, best Spearman first.
    pub proxies: Vec<ProxyRow>,
    /// The counterfactual estimates of the first `N` models, by `N`.
    pub counterfactual: Vec<ProxyRow>,
}

impl ProxyStudy {
    /// The proxy of highest mean Spearman.
    pub fn best_proxy(&self) -> Option<&ProxyRow> {
        self.proxies
            .first()
            .filter(|p| p.audit.spearman.is_finite())
    }

    /// The best single-model proxy (no reference models).
    pub fn best_single_model(&self) -> Option<&ProxyRow> {
        self.proxies
            .iter()
            .find(|p| p.models_needed == 1 && p.audit.spearman.is_finite())
    }

    /// The fewest counterfactual models whose estimate agrees with the
    /// truth better than `row` (by mean Spearman), if any does.
    pub fn beats(&self, row: &ProxyRow) -> Option<usize> {
        self.counterfactual
            .iter()
            .find(|c| c.audit.spearman > row.audit.spearman)
            .map(|c| c.models_needed)
    }
}

/// Train (or resume) `scale.n_models` models on `corpus` in `dir` with
/// the default settings and per-token results kept (for Min-K % Prob and
/// Min-K %++), and run the study with the first half as targets.
///
/// # Errors
/// Training or estimation errors.
pub fn proxy_study(
    dir: &Path,
    corpus: Corpus,
    scale: &Scale,
    observer: &dyn Observer,
) -> Result<ProxyStudy> {
    let b = Experiment::builder(dir).corpus(corpus).per_token(true);
    let exp = train(b, scale, observer)?;
    let n = exp.n_recorded()?;
    let texts = exp.texts();
    proxy_study_of(&exp, texts.as_deref(), n, n / 2)
}

/// The study over the first `n_models` models of `src`: models
/// `split..n_models` are the truth, models `0..split` the targets, and the
/// counterfactual estimates of the first 2, 4, 8, … `split` models are
/// compared beside the proxies. `texts` (the documents' texts) gives the
/// zlib ratio.
///
/// # Errors
/// Estimation errors; [`crate::Error::Missing`] with too few models.
pub fn proxy_study_of(
    src: &dyn Rows,
    texts: Option<&[String]>,
    n_models: usize,
    split: usize,
) -> Result<ProxyStudy> {
    if split < 4 || n_models < split + 4 {
        return Err(crate::Error::Missing(format!(
            "at least 4 target models and 4 more for the truth (have {n_models}, split at {split})"
        )));
    }
    let cfg = ReportConfig::default();
    let targets = ModelRange::new(src, 0..split)?;
    let truth_rep = report(&ModelRange::new(src, split..n_models)?, &cfg)?;
    let truth_doc: Vec<f64> = mems(&truth_rep);
    let memorized: Vec<bool> = truth_rep
        .q_values()
        .iter()
        .map(|q| q.is_some_and(|q| q <= DEFAULT_FDR))
        .collect();
    let truth = vec![truth_doc; split];
    // The targets' proxies, reference models from their own half; the
    // per-token ones from the whole source (they use the target alone),
    // its first `split` rows.
    let mut tables = proxies(&targets, texts)?;
    for t in src.token_proxies()? {
        if t.values.len() >= split {
            tables.push(ProxyTable {
                values: t.values[..split].to_vec(),
                ..t
            });
        }
    }
    let copies = copies(&targets)?;
    let single = |name: &str| SINGLE_MODEL.contains(&name) || name.starts_with("min-");
    let mut rows: Vec<ProxyRow> = tables
        .iter()
        .enumerate()
        .map(|(k, t)| ProxyRow {
            name: t.name.clone(),
            models_needed: if single(&t.name) { 1 } else { split },
            audit: audit_against(t, &truth, &memorized, cfg.level, k as u64),
        })
        .collect();
    // Best first; a proxy without a correlation (its scores all tied on
    // every target) last.
    let key = |r: &ProxyRow| {
        if r.audit.spearman.is_finite() {
            r.audit.spearman
        } else {
            f64::NEG_INFINITY
        }
    };
    rows.sort_by(|a, b| key(b).total_cmp(&key(a)));
    let mut counterfactual = Vec::new();
    let mut m = 2;
    while m <= split {
        let est = mems(&report(&ModelRange::new(src, 0..m)?, &cfg)?);
        let table = ProxyTable {
            name: format!("counterfactual, {m} models"),
            source: "cfmem: the in-minus-out estimate of the first models".into(),
            values: copies
                .iter()
                .map(|c| {
                    c.iter()
                        .zip(&est)
                        .map(|(&c, &e)| if c > 0 { e } else { f64::NAN })
                        .collect()
                })
                .collect(),
        };
        counterfactual.push(ProxyRow {
            name: table.name.clone(),
            models_needed: m,
            audit: audit_against(&table, &truth, &memorized, cfg.level, 1000 + m as u64),
        });
        m *= 2;
    }
    Ok(ProxyStudy {
        n_docs: truth_rep.docs.len(),
        truth_models: n_models - split,
        targets: split,
        n_memorized: memorized.iter().filter(|&&x| x).count(),
        proxies: rows,
        counterfactual,
    })
}

fn mems(rep: &Report) -> Vec<f64> {
    rep.docs
        .iter()
        .map(|d| d.estimate.mem.unwrap_or(f64::NAN))
        .collect()
}

fn copies(src: &dyn Rows) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::new();
    src.visit(
        cfmem::analysis::Value::Scores(cfmem::analysis::Metric::Loss),
        &mut |r| {
            out.push(r.copies.to_vec());
            Ok(())
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfmem::analysis::{spearman, DesignConfig, Synthetic};

    #[test]
    fn the_study_scores_proxies_and_small_experiments_alike() {
        // 60 documents of spread-out memorization, 32 models in pairs.
        let mem: Vec<f64> = (0..60).map(|d| 0.004 * d as f64).collect();
        let rows = Synthetic::new(DesignConfig::blocks(2, 1), 32, mem)
            .doc_means(vec![1.5; 60])
            .seed(4);
        let s = proxy_study_of(&rows, None, 32, 16).unwrap();
        assert_eq!((s.targets, s.truth_models, s.n_docs), (16, 16, 60));
        let sizes: Vec<usize> = s.counterfactual.iter().map(|r| r.models_needed).collect();
        assert_eq!(sizes, [2, 4, 8, 16]);
        // Best first, single-model proxies marked as needing one model.
        for w in s.proxies.windows(2) {
            assert!(w[0].audit.spearman >= w[1].audit.spearman || w[1].audit.spearman.is_nan());
        }
        assert_eq!(s.best_single_model().unwrap().name, "loss");
        // More models agree better with an independent truth here.
        let first = s.counterfactual[0].audit.spearman;
        let last = s.counterfactual[3].audit.spearman;
        assert!(last > first, "{first} vs {last}");
        // `beats` is the first size above the row.
        let best = s.best_proxy().unwrap();
        if let Some(n) = s.beats(best) {
            let row = s
                .counterfactual
                .iter()
                .find(|r| r.models_needed == n)
                .unwrap();
            assert!(row.audit.spearman > best.audit.spearman);
            assert!(s
                .counterfactual
                .iter()
                .filter(|r| r.models_needed < n)
                .all(|r| r.audit.spearman <= best.audit.spearman));
        }
        // The 16-model row by hand: per target, the estimate of models
        // 0–15 against that of models 16–31 over the target's documents,
        // averaged over the 16 targets.
        let cfg = ReportConfig::default();
        let est = mems(&report(&ModelRange::new(&rows, 0..16).unwrap(), &cfg).unwrap());
        let truth = mems(&report(&ModelRange::new(&rows, 16..32).unwrap(), &cfg).unwrap());
        let c = copies(&rows).unwrap();
        let by_hand: f64 = (0..16)
            .map(|i| {
                let d: Vec<usize> = (0..60).filter(|&d| c[i][d] > 0).collect();
                spearman(
                    &d.iter().map(|&x| est[x]).collect::<Vec<_>>(),
                    &d.iter().map(|&x| truth[x]).collect::<Vec<_>>(),
                )
                .unwrap()
            })
            .sum::<f64>()
            / 16.0;
        let row = &s.counterfactual[3].audit;
        assert!(
            (row.spearman - by_hand).abs() < 1e-12,
            "{by_hand} vs {row:?}"
        );
        assert!(proxy_study_of(&rows, None, 10, 8).is_err());
    }
}
