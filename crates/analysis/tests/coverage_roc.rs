//! The pooled membership AUC and TPR at an FPR get intervals that cover,
//! because they resample documents, not (model, document) pairs.
//!
//! 150 documents, each scored by 8 member and 8 non-member models:
//! `score = μ_d + Δ·member + ε`, `μ_d ~ N(0, τ²)` shared by all of a
//! document's scores, `ε ~ N(0, σ²)`, τ = 1, σ = 0.5, Δ = 1. For the
//! population of documents the AUC is `Φ(Δ / √(2(τ² + σ²)))` and the TPR
//! at FPR f is `Φ(Δ/s − z_{1−f})`, `s = √(τ² + σ²)` (pairs of one
//! document, 1/150 of all, shift the AUC by under 0.002). Over 2,000
//! replications the 95 % bootstrap-over-documents intervals must cover in
//! 93–97 %; the same bootstrap over pairs does not (0.910 in 500). At
//! 1 % FPR (12 expected false positives) there is no interval: the
//! bootstrap covered 0.870 there ([`cfmem_analysis::TPR_CI_MIN_FALSE_POSITIVES`]).

use cfmem_analysis::roc_clustered;
use cfmem_hash::{hash_words, SplitMix64};
use statrs::distribution::{ContinuousCDF, Normal};

const REPS: u64 = 2000;
const DOCS: usize = 150;
const SIDE: usize = 8;

#[test]
fn pooled_auc_and_tpr_cover_with_the_bootstrap_over_documents() {
    let (tau, sigma, delta) = (1.0f64, 0.5f64, 1.0f64);
    let n = Normal::standard();
    let s = (tau * tau + sigma * sigma).sqrt();
    let auc_truth = n.cdf(delta / (2.0f64).sqrt() / s);
    let tpr_truth = |f: f64| n.cdf(delta / s - n.inverse_cdf(1.0 - f));
    let (mut auc_hit, mut tpr_hit, mut pairs_hit) = (0u64, 0u64, 0u64);
    for rep in 0..REPS {
        let mut rng = SplitMix64::new(hash_words(&[rep, 0x40c]));
        let mut pairs = Vec::new();
        let mut doc = Vec::new();
        for d in 0..DOCS {
            let mu = tau * rng.normal();
            for i in 0..2 * SIDE {
                let member = i < SIDE;
                pairs.push((
                    mu + delta * f64::from(u8::from(member)) + sigma * rng.normal(),
                    member,
                ));
                doc.push(d);
            }
        }
        let r = roc_clustered(&pairs, &doc, 0.95, rep).unwrap();
        let covers = |ci: Option<[f64; 2]>, t: f64| ci.is_some_and(|[lo, hi]| lo <= t && t <= hi);
        auc_hit += u64::from(covers(r.auc_ci, auc_truth));
        let at = |f: f64| {
            r.tpr_at_fpr
                .iter()
                .find(|t| (t.fpr - f).abs() < 1e-12)
                .unwrap()
                .ci
        };
        tpr_hit += u64::from(covers(at(0.1), tpr_truth(0.1)));
        // 12 expected false positives at 1 %: too few for an interval.
        assert!(at(0.01).is_none());
        if rep < 500 {
            let each: Vec<usize> = (0..pairs.len()).collect();
            let p = roc_clustered(&pairs, &each, 0.95, rep).unwrap();
            pairs_hit += u64::from(covers(p.auc_ci, auc_truth));
        }
    }
    let cov = |h: u64, n: u64| h as f64 / n as f64;
    let (auc, tpr, by_pairs) = (cov(auc_hit, REPS), cov(tpr_hit, REPS), cov(pairs_hit, 500));
    eprintln!("AUC {auc:.3}, TPR at 10 % FPR {tpr:.3}; AUC bootstrapped over pairs {by_pairs:.3}");
    assert!((0.93..=0.97).contains(&auc), "AUC {auc}");
    assert!((0.93..=0.97).contains(&tpr), "TPR at 10 % {tpr}");
    assert!(by_pairs < 0.93, "over pairs {by_pairs}");
}
