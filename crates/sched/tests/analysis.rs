//! Analyses from an experiment directory, checked against brute force over
//! its records: convergence, influence on a query corpus, membership scores.

use cfmem_analysis::{DesignConfig, InfluenceConfig, Metric, Observation, Variance};
use cfmem_core::{Corpus, Document, LoadConfig, ModelConfig, TrainConfig};
use cfmem_sched::*;

fn setup(dir: &std::path::Path, n_models: usize) -> Experiment {
    let docs = (0..8)
        .map(|i| {
            Document::new(
                format!("doc-{i}"),
                format!("entry {i}: {}", "xyz ".repeat(i + 1)),
            )
        })
        .collect();
    let corpus = Corpus::from_documents(docs).unwrap();
    let queries = Corpus::from_documents(vec![
        Document::new("q0", "entry 3: xyz xyz xyz"),
        Document::new("q1", "something else entirely"),
    ])
    .unwrap();
    let model = ModelConfig {
        d_model: 16,
        d_ff: 32,
        n_head: 2,
        ctx: 16,
        ..ModelConfig::tiny()
    };
    let train = TrainConfig {
        epochs: 2,
        batch_size: 4,
        ..Default::default()
    };
    let manifest = Manifest::new(
        &corpus,
        None,
        LoadConfig::default(),
        model,
        train,
        DesignConfig::blocks(2, 5),
        5,
    )
    .with_queries(&queries, None, LoadConfig::default());
    let exp = Experiment::create_with_queries(dir, manifest, corpus, Some(queries), false).unwrap();
    let cfg = RunConfig {
        n_models,
        jobs: 2,
        ..Default::default()
    };
    run(&exp, &cfg, &Silent).unwrap();
    exp
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn query_influence_matches_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let exp = setup(dir.path(), 6);
    let recs: Vec<Record> = (0..6).map(|i| exp.read(i).unwrap()).collect();
    assert!(recs
        .iter()
        .all(|r| r.queries.as_ref().unwrap().n_tokens.len() == 2));
    // The experiment reopens with its queries.
    assert_eq!(
        Experiment::open(dir.path())
            .unwrap()
            .queries()
            .unwrap()
            .len(),
        2
    );
    let inf = influence(
        &exp,
        Metric::Loss,
        true,
        InfluenceConfig {
            k: 8,
            block: 1,
            ..Default::default()
        },
    )
    .unwrap();
    for q in 0..2 {
        assert_eq!(inf.top_units[q].len(), 8);
        for e in &inf.top_units[q] {
            let inn: Vec<f64> = recs
                .iter()
                .filter(|r| r.copies[e.unit] > 0)
                .map(|r| r.query_scores(Metric::Loss)[q])
                .collect();
            let out: Vec<f64> = recs
                .iter()
                .filter(|r| r.copies[e.unit] == 0)
                .map(|r| r.query_scores(Metric::Loss)[q])
                .collect();
            assert!((e.infl - (mean(&out) - mean(&inn))).abs() < 1e-9);
        }
    }
    // Without queries, influence runs over the training documents, without self-pairs.
    let inf = influence(&exp, Metric::Accuracy, false, InfluenceConfig::default()).unwrap();
    assert!(inf
        .top_units
        .iter()
        .enumerate()
        .all(|(q, l)| l.iter().all(|e| e.unit != q)));
}

#[test]
fn convergence_matches_brute_force_split() {
    let dir = tempfile::tempdir().unwrap();
    let exp = setup(dir.path(), 8);
    let pts = convergence(&exp, Metric::Loss).unwrap();
    assert_eq!(pts.len(), 1);
    assert_eq!(pts[0].n_models, 8);
    // Blocks of 2: models {0,1,4,5} form one half, {2,3,6,7} the other.
    let recs: Vec<Record> = (0..8).map(|i| exp.read(i).unwrap()).collect();
    let half_mem = |models: [usize; 4]| -> Vec<f64> {
        (0..8)
            .map(|d| {
                let inn: Vec<f64> = models
                    .iter()
                    .filter(|&&i| recs[i].copies[d] > 0)
                    .map(|&i| recs[i].loss()[d])
                    .collect();
                let out: Vec<f64> = models
                    .iter()
                    .filter(|&&i| recs[i].copies[d] == 0)
                    .map(|&i| recs[i].loss()[d])
                    .collect();
                mean(&out) - mean(&inn)
            })
            .collect()
    };
    let (a, b) = (half_mem([0, 1, 4, 5]), half_mem([2, 3, 6, 7]));
    // Spearman without ties: 1 − 6 Σd² / (n (n² − 1)).
    let rank = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .map(|x| v.iter().filter(|y| *y < x).count() as f64 + 1.0)
            .collect()
    };
    let (ra, rb) = (rank(&a), rank(&b));
    let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y).powi(2)).sum();
    let rho = 1.0 - 6.0 * d2 / (8.0 * 63.0);
    assert!(
        (pts[0].spearman.unwrap() - rho).abs() < 1e-9,
        "{:?} vs {rho}",
        pts[0]
    );
}

#[test]
fn membership_scores_cover_every_pair() {
    let dir = tempfile::tempdir().unwrap();
    let exp = setup(dir.path(), 8);
    let m = membership(&exp, Observation::LogitConfidence, Variance::PerExample).unwrap();
    let online = m.online.unwrap();
    // 8 models × 8 documents, each document in exactly 4 models; leaving one
    // out leaves 3 on its side, so every pair is scored.
    assert_eq!((online.n_pos, online.n_neg), (32, 32));
    assert!((0.0..=1.0).contains(&online.auc));
    assert!(m.docs.iter().all(|d| d.fit.n_in == 4 && d.fit.n_out == 4));
    let g = membership(&exp, Observation::NegLoss, Variance::Global).unwrap();
    assert_eq!(g.docs.len(), 8);
}
