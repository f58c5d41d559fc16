//! The spectrum's intervals cover. 36 documents in 18 pairs (the
//! near-duplicate level) inside 6 topics of 6; a budget design leaves out
//! half of them per model; a model's score on a document is
//!
//! ```text
//! s = base_d + a_d · [d in] + b_d · (share of d's pair in) + c_d · (share of d's topic in) + g_i + ε
//! ```
//!
//! with a model effect `g_i` shared by every document (sd 0.03) and noise
//! `ε` (sd 0.05). The truth of each level's contrast is computed apart from
//! the estimator: from the definition (in: `d` in; out at the document
//! level: `d` out and its partner in; at the pair level: both out and the
//! topic not all out; at the topic level: all six out), averaged over
//! 200,000 models of the same design. Over 2,000 replications of 64
//! models, each document's Welch interval and each level's mean over the
//! documents (jackknife over models) must cover it in 93–97 % of cases,
//! and so must the intervals of what each level adds to the one below.

use cfmem_analysis::{
    spectrum, DesignConfig, DesignKind, Imported, Membership, Metric, ScoreTable, Spectrum, Units,
};
use cfmem_hash::SplitMix64;

const DOCS: usize = 36;
const MODELS: usize = 64;
const REPS: usize = 2000;

fn effects(d: usize) -> (f64, f64, f64, f64) {
    let base = 0.3 + 0.01 * d as f64;
    match d % 3 {
        // A document memorized on its own.
        0 => (base, 0.20, 0.02, 0.01),
        // One whose pair carries it.
        1 => (base, 0.02, 0.15, 0.02),
        // One that its topic carries.
        _ => (base, 0.01, 0.02, 0.12),
    }
}

fn expected(d: usize, row: &[u32]) -> f64 {
    let (base, a, b, c) = effects(d);
    let share = |docs: std::ops::Range<usize>| {
        let n = docs.len() as f64;
        docs.filter(|&x| row[x] > 0).count() as f64 / n
    };
    let pair = (d / 2) * 2;
    let topic = (d / 6) * 6;
    base + a * f64::from(u8::from(row[d] > 0))
        + b * share(pair..pair + 2)
        + c * share(topic..topic + 6)
}

/// Which side of level `l` `row` puts `d` on, from the definition.
fn side(d: usize, l: usize, row: &[u32]) -> Option<bool> {
    let out = |docs: std::ops::Range<usize>| docs.clone().all(|x| row[x] == 0);
    let (pair, topic) = ((d / 2) * 2, (d / 6) * 6);
    if row[d] > 0 {
        return Some(true);
    }
    let is_out = match l {
        0 => !out(pair..pair + 2),
        1 => out(pair..pair + 2) && !out(topic..topic + 6),
        _ => out(topic..topic + 6),
    };
    is_out.then_some(false)
}

#[test]
fn every_level_covers_for_documents_and_means() {
    let ids: Vec<String> = (0..DOCS).map(|d| format!("d{d}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let label = |k: usize| -> Vec<String> { (0..DOCS).map(|d| format!("{}", d / k)).collect() };
    let (pairs, topics) = (label(2), label(6));
    let as_refs = |v: &[String]| -> Vec<Option<String>> { v.iter().cloned().map(Some).collect() };
    let (p, t) = (as_refs(&pairs), as_refs(&topics));
    let p: Vec<Option<&str>> = p.iter().map(Option::as_deref).collect();
    let t: Vec<Option<&str>> = t.iter().map(Option::as_deref).collect();
    let s = Spectrum::new(
        &refs,
        vec![
            ("near-dup".into(), Units::from_labels(&refs, &p)),
            ("topic:6".into(), Units::from_labels(&refs, &t)),
        ],
    )
    .unwrap();
    let design = DesignConfig {
        kind: DesignKind::Budget { fraction: 0.5 },
        seed: 11,
    }
    .checked()
    .unwrap();
    assert_eq!(s.budget(&design).unwrap(), 18);

    // The truth: the definition over 200,000 models.
    let mut sums = vec![[[0f64; 2]; 3]; DOCS];
    let mut counts = vec![[[0u64; 2]; 3]; DOCS];
    for i in 0..200_000 {
        let row = s.row(&design, 1_000_000 + i);
        for d in 0..DOCS {
            let e = expected(d, &row);
            for l in 0..3 {
                if let Some(inn) = side(d, l, &row) {
                    let k = usize::from(!inn);
                    sums[d][l][k] += e;
                    counts[d][l][k] += 1;
                }
            }
        }
    }
    let truth: Vec<[f64; 3]> = (0..DOCS)
        .map(|d| {
            std::array::from_fn(|l| {
                let m = |k: usize| sums[d][l][k] / counts[d][l][k] as f64;
                m(0) - m(1)
            })
        })
        .collect();
    // Every level is out often enough to be estimated.
    for l in 0..3 {
        let share = counts[0][l][1] as f64 / 200_000.0;
        assert!(share > 0.05, "level {l}: out in {share}");
    }
    let truth_mean: Vec<f64> = (0..3)
        .map(|l| truth.iter().map(|t| t[l]).sum::<f64>() / DOCS as f64)
        .collect();

    let tokens = vec![20usize; DOCS];
    let (mut hit_doc, mut n_doc) = ([0u64; 3], [0u64; 3]);
    let mut hit_mean = [0u64; 3];
    // What each level adds to the one below: per document and on average.
    let (mut hit_step, mut n_step, mut hit_step_mean) = ([0u64; 3], [0u64; 3], [0u64; 3]);
    let mut hit_beyond = 0u64;
    for rep in 0..REPS {
        let mut rng = SplitMix64::new(rep as u64);
        let mut data = Vec::with_capacity(MODELS * DOCS);
        let mut scores = Vec::with_capacity(MODELS * DOCS);
        for i in 0..MODELS {
            let row = s.row(&design, rep * MODELS + i);
            let g = 0.03 * rng.normal();
            for d in 0..DOCS {
                scores.push(expected(d, &row) + g + 0.05 * rng.normal());
            }
            data.extend(row);
        }
        let table = ScoreTable::new(
            ids.clone(),
            Membership::from_rows(MODELS, DOCS, data).unwrap(),
            scores,
        )
        .unwrap();
        let src = Imported {
            table,
            metric: Metric::Accuracy,
            blocks: 1,
        };
        let r = spectrum(&src, &s, &tokens, None, Metric::Accuracy, 0.95).unwrap();
        assert_eq!(r.n_models, MODELS);
        for (d, doc) in r.docs.iter().enumerate() {
            for l in 0..3 {
                let e = &doc.levels[l].estimate;
                if let (Some(lo), Some(hi)) = (e.ci_low, e.ci_high) {
                    n_doc[l] += 1;
                    hit_doc[l] += u64::from(lo <= truth[d][l] && truth[d][l] <= hi);
                }
                let step = doc.levels[l].step.as_ref();
                if let Some((Some(lo), Some(hi))) = step.map(|e| (e.ci_low, e.ci_high)) {
                    let t = truth[d][l] - truth[d][l - 1];
                    n_step[l] += 1;
                    hit_step[l] += u64::from(lo <= t && t <= hi);
                }
            }
        }
        for l in 0..3 {
            let m = &r.kinds[0].levels[l].mean;
            hit_mean[l] += u64::from(m.ci_low <= truth_mean[l] && truth_mean[l] <= m.ci_high);
            if let Some(m) = &r.kinds[0].levels[l].step {
                let t = truth_mean[l] - truth_mean[l - 1];
                hit_step_mean[l] += u64::from(m.ci_low <= t && t <= m.ci_high);
            }
            if let (2, Some(m)) = (l, &r.kinds[0].levels[l].beyond_document) {
                let t = truth_mean[2] - truth_mean[0];
                hit_beyond += u64::from(m.ci_low <= t && t <= m.ci_high);
            }
        }
    }
    for l in 0..3 {
        let doc = hit_doc[l] as f64 / n_doc[l] as f64;
        let mean = hit_mean[l] as f64 / REPS as f64;
        eprintln!(
            "level {l}: documents {doc:.3} ({} intervals), mean {mean:.3}",
            n_doc[l]
        );
        assert!((0.93..=0.97).contains(&doc), "level {l}: documents {doc}");
        assert!((0.93..=0.97).contains(&mean), "level {l}: mean {mean}");
        // Nearly every document has an interval at every level.
        assert!(n_doc[l] as f64 > 0.95 * (REPS * DOCS) as f64, "level {l}");
        if l > 0 {
            let step = hit_step[l] as f64 / n_step[l] as f64;
            let step_mean = hit_step_mean[l] as f64 / REPS as f64;
            eprintln!("level {l}: steps {step:.3}, mean step {step_mean:.3}");
            assert!((0.93..=0.97).contains(&step), "level {l}: steps {step}");
            assert!(
                (0.93..=0.97).contains(&step_mean),
                "level {l}: mean step {step_mean}"
            );
        }
    }
    let beyond = hit_beyond as f64 / REPS as f64;
    eprintln!("topic beyond the document, mean: {beyond:.3}");
    assert!(
        (0.93..=0.97).contains(&beyond),
        "beyond the document: {beyond}"
    );
    // The levels separate what the documents were built to show: a
    // document-level effect for d % 3 == 0, pair-level for 1, topic for 2.
    // (Truths here: d0 0.209, 0.220, 0.225; d1 0.080, 0.158, 0.167; d2
    // 0.032, 0.058, 0.111.)
    assert!(truth[0][0] > 0.15 && truth[0][2] - truth[0][0] < 0.03);
    assert!(truth[1][1] > 1.5 * truth[1][0]);
    assert!(truth[2][2] > truth[2][1] + 0.04);
}
