//! Membership inference over a source of rows (LiRA style): fit, then
//! score every model with itself left out, and summarise by ROC.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::lira::{
    roc, roc_clustered, GaussianFit, LiraAccumulator, Observation, RocSummary, Variance,
};
use crate::rows::{Rows, Value};

/// Settings of [`membership`].
///
/// | field | default | meaning |
/// |---|---|---|
/// | `observation` | the source's ([`Rows::observation`]) | how a loss becomes the observation that is fitted |
/// | `variance` | automatic | per-document variances, or one per side pooled over documents; automatic: global when a side has fewer than [`PER_EXAMPLE_MIN_MODELS`] models |
/// | `level` | 0.95 | confidence level of the pooled AUC's and TPRs' intervals (bootstrap over documents) |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MembershipConfig {
    /// The observation (`None`: what the source recommends).
    pub observation: Option<Observation>,
    /// The variance of the Gaussian fits (`None`: chosen by the number of models).
    pub variance: Option<Variance>,
    /// Confidence level of the pooled AUC's and TPRs' intervals.
    #[serde(default = "default_level")]
    pub level: f64,
}

fn default_level() -> f64 {
    0.95
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self {
            observation: None,
            variance: None,
            level: default_level(),
        }
    }
}

/// Models a side needs (for the typical document) before the fits use
/// per-example variances by default. With fewer, a variance fitted from a
/// handful of models makes the unequal-variance likelihood ratio
/// non-monotone and its true-positive rate collapses at low false-positive
/// rates; Carlini et al. (2022, LiRA, §4.2 and Fig. 6) use a global
/// variance below about 64 shadow models. Tested on synthetic Gaussian
/// scores in this file.
pub const PER_EXAMPLE_MIN_MODELS: usize = 64;

/// Membership-inference view of a source of rows (LiRA style).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MembershipReport {
    /// The observation scored.
    pub observation: Observation,
    /// The variance mode used.
    pub variance: Variance,
    /// Whether it was chosen automatically (by the number of models).
    pub variance_auto: bool,
    /// Per document: its id, its in/out Gaussian fits over all models, and
    /// the ROC AUC of its observation between its in- and out-models.
    pub docs: Vec<DocMembership>,
    /// Over all (model, document) pairs, each model left out of the fits it is scored by.
    pub online: Option<RocSummary>,
    /// The same for the offline (out-only) score.
    pub offline: Option<RocSummary>,
}

/// One document's membership view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocMembership {
    /// Document id.
    pub id: String,
    /// Gaussian fits of the in- and out-observations.
    pub fit: GaussianFit,
    /// ROC AUC of the observation across models for this document: the
    /// probability that an in-model's observation exceeds an out-model's
    /// (0.5 in expectation for a document no model memorizes). Not the
    /// leave-one-out online score's: leaving the scored model out of its
    /// own side's fit moves that side's mean away from its score, so a
    /// member looks less like a member and a non-member less like a
    /// non-member, and the AUC of an unmemorized document came out
    /// 0.40–0.45 at 8–64 models (`null_documents_have_auc_one_half`).
    pub auc: Option<f64>,
}

impl MembershipReport {
    /// Documents with a per-document AUC, most exposed first.
    pub fn most_exposed(&self) -> Vec<&DocMembership> {
        let mut v: Vec<&DocMembership> = self.docs.iter().filter(|d| d.auc.is_some()).collect();
        v.sort_by(|x, y| {
            y.auc
                .partial_cmp(&x.auc)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        v
    }
}

/// LiRA-style membership scores over the rows of `src`: two passes (fit,
/// then score each model with itself left out of the fits). Ground truth is
/// each row's own membership. Memory O(models × documents) for the exact ROC.
///
/// # Errors
/// Errors of the source.
pub fn membership(src: &dyn Rows, cfg: &MembershipConfig) -> Result<MembershipReport> {
    let ids = src.ids();
    let n = ids.len();
    let observation = cfg.observation.unwrap_or_else(|| src.observation());
    let mut acc = LiraAccumulator::new(n, observation);
    src.visit(Value::Loss, &mut |r| acc.add(r.copies, r.values))?;
    let variance = cfg.variance.unwrap_or_else(|| {
        if acc.typical_side() < PER_EXAMPLE_MIN_MODELS {
            Variance::Global
        } else {
            Variance::PerExample
        }
    });
    let mut online = Vec::new();
    let mut offline = Vec::new();
    let mut doc_of = Vec::new();
    let mut per_doc: Vec<Vec<(f64, bool)>> = vec![Vec::new(); n];
    src.visit(Value::Loss, &mut |r| {
        let scores = acc.score_left_out(r.copies, r.values, variance)?;
        for (d, s) in scores.into_iter().enumerate() {
            if let Some(s) = s {
                let member = r.copies[d] > 0;
                online.push((s.online, member));
                offline.push((s.offline, member));
                doc_of.push(d);
                per_doc[d].push((observation.of_loss(r.values[d]), member));
            }
        }
        Ok(())
    })?;
    let docs = ids
        .into_iter()
        .zip(acc.fits(variance))
        .zip(&per_doc)
        .map(|((id, fit), pairs)| DocMembership {
            id,
            fit,
            auc: roc(pairs).map(|r| r.auc),
        })
        .collect();
    Ok(MembershipReport {
        observation,
        variance,
        variance_auto: cfg.variance.is_none(),
        docs,
        // Intervals from the bootstrap over documents (all of a document's
        // scores share what the document is).
        online: roc_clustered(&online, &doc_of, cfg.level, 0x0e11),
        offline: roc_clustered(&offline, &doc_of, cfg.level, 0x0ff1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard normal CDF.
    fn phi(x: f64) -> f64 {
        use statrs::distribution::{ContinuousCDF, Normal};
        Normal::standard().cdf(x)
    }

    /// Membership scores of rows drawn as Gaussians: each document's
    /// observation is `N(μ_d + Δ_d·in, σ²)`.
    fn gaussian(n_models: usize, delta: Vec<f64>, variance: Option<Variance>) -> MembershipReport {
        let n = delta.len();
        let mu: Vec<f64> = (0..n).map(|d| 0.1 * (d % 10) as f64).collect();
        let rows = crate::Synthetic::new(crate::DesignConfig::blocks(2, 1), n_models, delta)
            .doc_means(mu)
            .noise(0.1)
            .seed(7);
        membership(
            &rows,
            &MembershipConfig {
                observation: Some(Observation::NegLoss),
                variance,
                ..MembershipConfig::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn separation_matches_the_analytic_roc() {
        // Δ = 0.2, σ = 0.1: d' = 2. The likelihood ratio is monotone in the
        // score, so AUC = Φ(d'/√2) = 0.9214 and TPR at FPR α is
        // Φ(d' − z_{1−α}): 0.3721 at 1 %, 0.7638 at 10 %.
        let (auc, tpr1, tpr10) = (
            phi(2.0 / 2f64.sqrt()),
            phi(2.0 - 2.326_348),
            phi(2.0 - 1.281_552),
        );
        // 128 models, 64 per side: per-example variances by default.
        let m = gaussian(128, vec![0.2; 300], None);
        assert_eq!((m.variance, m.variance_auto), (Variance::PerExample, true));
        for r in [m.online.as_ref().unwrap(), m.offline.as_ref().unwrap()] {
            assert!((r.auc - auc).abs() < 0.01, "AUC {} vs {auc}", r.auc);
            assert!(
                (r.tpr_at(0.01) - tpr1).abs() < 0.04,
                "TPR@1% {} vs {tpr1}",
                r.tpr_at(0.01)
            );
            assert!(
                (r.tpr_at(0.1) - tpr10).abs() < 0.03,
                "TPR@10% {} vs {tpr10}",
                r.tpr_at(0.1)
            );
        }
        // 16 models, 8 per side: the global variance by default, close to
        // the analytic curve; per-example variances from 7 models lose
        // power at low false-positive rates.
        let g = gaussian(16, vec![0.2; 300], None);
        assert_eq!(g.variance, Variance::Global);
        let on = g.online.as_ref().unwrap();
        assert!((on.auc - auc).abs() < 0.02, "AUC {}", on.auc);
        assert!(
            (on.tpr_at(0.01) - tpr1).abs() < 0.06,
            "TPR@1% {}",
            on.tpr_at(0.01)
        );
        let pe = gaussian(16, vec![0.2; 300], Some(Variance::PerExample));
        let pe_tpr = pe.online.as_ref().unwrap().tpr_at(0.01);
        eprintln!(
            "16 models: TPR at 1% FPR {:.3} global, {pe_tpr:.3} per-example (analytic {tpr1:.3})",
            on.tpr_at(0.01)
        );
        assert!(
            pe_tpr < on.tpr_at(0.01),
            "per-example {pe_tpr} vs global {}",
            on.tpr_at(0.01)
        );
    }

    #[test]
    fn null_documents_have_auc_one_half() {
        // 2,000 documents no model memorizes: the mean per-document AUC is
        // 0.5 (its SE over documents ≈ 0.29/√(n_in·n_out·2000·3) < 0.003);
        // the leave-one-out online score's was 0.40–0.45.
        for n_models in [8, 16, 64] {
            let m = gaussian(n_models, vec![0.0; 2000], None);
            let aucs: Vec<f64> = m.docs.iter().filter_map(|d| d.auc).collect();
            let mean = aucs.iter().sum::<f64>() / aucs.len() as f64;
            assert!((mean - 0.5).abs() < 0.01, "{n_models} models: {mean}");
        }
        // A memorized document's AUC is above one half.
        let m = gaussian(16, vec![0.2; 50], None);
        let mean = m.docs.iter().filter_map(|d| d.auc).sum::<f64>() / 50.0;
        assert!(mean > 0.8, "{mean}");
    }

    #[test]
    fn tpr_needs_enough_non_members() {
        // 16 models × 50 documents: 400 non-member pairs support 1 % and
        // 10 %, not 0.1 %.
        let m = gaussian(16, vec![0.2; 50], None);
        let on = m.online.unwrap();
        let supported: Vec<bool> = on.tpr_at_fpr.iter().map(|t| t.supported).collect();
        assert_eq!(on.n_neg, 400);
        assert_eq!(supported, vec![false, true, true]);
    }

    #[test]
    fn online_is_at_least_offline_on_clean_data() {
        // Memorization varying over documents: the likelihood ratio weighs
        // each document by its separation, the out-only z cannot.
        let delta: Vec<f64> = (0..300).map(|d| 0.3 * (d % 6) as f64 / 5.0).collect();
        let m = gaussian(128, delta, None);
        let (on, off) = (m.online.unwrap(), m.offline.unwrap());
        assert!(on.auc >= off.auc - 0.005, "{} vs {}", on.auc, off.auc);
        assert!(
            on.tpr_at(0.01) >= off.tpr_at(0.01),
            "{} vs {}",
            on.tpr_at(0.01),
            off.tpr_at(0.01)
        );
    }
}
