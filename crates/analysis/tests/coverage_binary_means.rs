//! Means over documents of a 0/1 metric cover at the boundary, and so do
//! differences of such means and each side's mean rate.
//!
//! Three kinds of 20 documents each, scored 0/1 (extraction) by models in
//! complementary pairs (LiRA-style balanced halves, clustered by pair):
//! "canaries" extractable with P 0.98–1 when trained on and 0–0.02 when
//! not, "rare" extractable with P 0–0.02 in and never out, "mixed" 0.5–0.98
//! in and 0.02–0.5 out. Half the models are stronger (the higher P in on
//! every document at once), so the documents share what the models do.
//! Over 2,000 replications at 8, 16 and 32 models, the mean of each kind,
//! the differences of kinds and the in-side rates must cover the expected
//! value in at least 93 % of them. A clustered t-interval (what a
//! continuous metric gets) collapses to zero width when nothing varies,
//! as "rare" at 8 models mostly does, and under-covers there.

use cfmem_analysis::{
    report, Difference, Imported, MeanCi, Membership, Metric, ReportConfig, ScoreTable,
};
use cfmem_hash::{hash_words, unit_f64};

const REPS: u64 = 2000;
const PER_KIND: usize = 20;

/// `(P in for a weak model, P in for a strong one, P out)` per document.
fn kinds() -> Vec<[f64; 3]> {
    let mut p = Vec::new();
    for d in 0..PER_KIND {
        p.push([0.98, 1.0, if d % 2 == 0 { 0.0 } else { 0.02 }]);
    }
    for d in 0..PER_KIND {
        p.push([0.0, if d % 2 == 0 { 0.0 } else { 0.02 }, 0.0]);
    }
    for d in 0..PER_KIND {
        p.push([0.5, 0.98, if d % 2 == 0 { 0.02 } else { 0.5 }]);
    }
    p
}

fn u(words: &[u64]) -> f64 {
    unit_f64(hash_words(words))
}

fn rows(rep: u64, n_models: usize, p: &[[f64; 3]]) -> Imported {
    let n = p.len();
    let (mut membership, mut scores) = (Vec::new(), Vec::new());
    for i in 0..n_models {
        let strong = u(&[rep, i as u64, 7]) < 0.5;
        for (d, &[weak_in, strong_in, out]) in p.iter().enumerate() {
            let first = u(&[rep, (i / 2) as u64, d as u64, 1]) < 0.5;
            let inn = first == (i % 2 == 0);
            let q = match (inn, strong) {
                (false, _) => out,
                (true, false) => weak_in,
                (true, true) => strong_in,
            };
            membership.push(u32::from(inn));
            scores.push(f64::from(u8::from(u(&[rep, i as u64, d as u64, 2]) < q)));
        }
    }
    let membership = Membership::from_rows(n_models, n, membership).unwrap();
    let ids = (0..n).map(|d| format!("doc-{d}")).collect();
    Imported {
        table: ScoreTable::new(ids, membership, scores).unwrap(),
        metric: Metric::Extraction,
        blocks: 2,
    }
}

#[test]
fn binary_means_over_documents_cover() {
    let p = kinds();
    let kind = |k: usize| -> Vec<usize> { (k * PER_KIND..(k + 1) * PER_KIND).collect() };
    let expected = |docs: &[usize], f: &dyn Fn(&[f64; 3]) -> f64| {
        docs.iter().map(|&d| f(&p[d])).sum::<f64>() / docs.len() as f64
    };
    let mem = |q: &[f64; 3]| 0.5 * (q[0] + q[1]) - q[2];
    let rate_in = |q: &[f64; 3]| 0.5 * (q[0] + q[1]);
    let mut failures = Vec::new();
    let mut zero_width_t = 0u64;
    for n_models in [8, 16, 32] {
        // Per kind: the mean, the in-side rate; then two differences.
        let mut hits = [0u64; 8];
        for rep in 0..REPS {
            let src = rows(rep * 100 + n_models as u64, n_models, &p);
            let r = report(&src, &ReportConfig::plain(Metric::Extraction)).unwrap();
            let covers = |lo: f64, hi: f64, t: f64| lo <= t + 1e-12 && t <= hi + 1e-12;
            for k in 0..3 {
                let docs = kind(k);
                let m = MeanCi::over(&r, &src, &docs).unwrap();
                hits[k] += u64::from(covers(m.ci_low, m.ci_high, expected(&docs, &mem)));
                assert!(m.ci_high > m.ci_low, "a zero-width interval");
                let s = MeanCi::side_over(&r, &src, &docs, true).unwrap();
                hits[3 + k] += u64::from(covers(s.ci_low, s.ci_high, expected(&docs, &rate_in)));
            }
            for (j, (a, b)) in [(0, 2), (2, 1)].into_iter().enumerate() {
                let d = Difference::over(&r, &src, &kind(a), &kind(b)).unwrap();
                let w = d.welch.unwrap();
                let truth = expected(&kind(a), &mem) - expected(&kind(b), &mem);
                hits[6 + j] += u64::from(covers(w.ci_low, w.ci_high, truth));
            }
            // What a continuous metric's clustered t-interval would give
            // for "rare": zero width whenever no model extracted anything.
            let rare = &r.docs[PER_KIND..2 * PER_KIND];
            zero_width_t += u64::from(rare.iter().all(|d| d.estimate.in_mean == Some(0.0)));
        }
        let names = [
            "canaries",
            "rare",
            "mixed",
            "canaries in",
            "rare in",
            "mixed in",
            "canaries − mixed",
            "mixed − rare",
        ];
        let cov: Vec<f64> = hits.iter().map(|&h| h as f64 / REPS as f64).collect();
        eprintln!(
            "{n_models} models: {}",
            names
                .iter()
                .zip(&cov)
                .map(|(n, c)| format!("{n} {c:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (n, c) in names.iter().zip(&cov) {
            if *c < 0.93 {
                failures.push(format!("{n_models} models, {n}: {c:.3}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "under-covering:\n{}",
        failures.join("\n")
    );
    // The case the interval is for happens: all-zero "rare" rows.
    assert!(zero_width_t > 100, "{zero_width_t} all-zero replications");
}
