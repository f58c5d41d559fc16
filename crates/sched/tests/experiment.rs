//! The experiment directory: resume, growth, determinism, refusal of a
//! different experiment, corrupt records, and estimates from records.

use cfmem_analysis::{DesignConfig, Metric};
use cfmem_core::{Corpus, Document, LoadConfig, ModelConfig, TrainConfig};
use cfmem_sched::*;

fn corpus() -> Corpus {
    let docs = (0..10)
        .map(|i| {
            Document::new(
                format!("doc-{i}"),
                format!("entry {i}: {}", "abc ".repeat(i + 1)),
            )
        })
        .collect();
    Corpus::from_documents(docs).unwrap()
}

fn manifest(c: &Corpus, epochs: usize) -> Manifest {
    let model = ModelConfig {
        d_model: 16,
        d_ff: 32,
        n_head: 2,
        ctx: 16,
        ..ModelConfig::tiny()
    };
    let train = TrainConfig {
        epochs,
        batch_size: 4,
        ..Default::default()
    };
    Manifest::new(
        c,
        None,
        LoadConfig::default(),
        model,
        train,
        DesignConfig::blocks(2, 3),
        3,
    )
}

fn cfg(n_models: usize) -> RunConfig {
    RunConfig {
        n_models,
        jobs: 2,
        threads: 1,
        ensemble: 1,
        ..Default::default()
    }
}

fn bytes(exp: &Experiment, i: usize) -> Vec<u8> {
    std::fs::read(record_path(&exp.runs_dir(), i)).unwrap()
}

#[test]
fn resume_grow_and_determinism() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let exp = Experiment::create(dir.path(), manifest(&c, 2), c.clone(), false).unwrap();
    let s = run(&exp, &cfg(4), &Silent).unwrap();
    assert_eq!(s.trained, vec![0, 1, 2, 3]);
    let first: Vec<Vec<u8>> = (0..4).map(|i| bytes(&exp, i)).collect();

    // Running again trains nothing.
    let s = run(&exp, &cfg(4), &Silent).unwrap();
    assert!(s.trained.is_empty());
    assert_eq!(s.n_already_done, 4);

    // Growing trains only the new models and leaves the old files alone.
    let exp = Experiment::create(dir.path(), manifest(&c, 2), c.clone(), false).unwrap();
    let s = run(&exp, &cfg(6), &Silent).unwrap();
    assert_eq!(s.trained, vec![4, 5]);
    for i in 0..4 {
        assert_eq!(bytes(&exp, i), first[i], "model {i} changed");
    }

    // Retraining a model gives a bit-identical record.
    std::fs::remove_file(record_path(&exp.runs_dir(), 2)).unwrap();
    let s = run(&exp, &cfg(6), &Silent).unwrap();
    assert_eq!(s.trained, vec![2]);
    assert_eq!(bytes(&exp, 2), first[2]);

    // Records carry the design's membership.
    let r = exp.read(5).unwrap();
    assert_eq!(r.copies, DesignConfig::blocks(2, 3).row(5, 10).unwrap());
}

#[test]
fn different_experiment_is_refused_with_the_differing_fields() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    Experiment::create(dir.path(), manifest(&c, 2), c.clone(), false).unwrap();
    let err = Experiment::create(dir.path(), manifest(&c, 3), c.clone(), false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("train.epochs: existing 2, requested 3"),
        "{msg}"
    );
    // A changed corpus is named too.
    let other = c
        .clone()
        .extend(vec![Document::new("new", "text")])
        .unwrap();
    let msg = Experiment::create(dir.path(), manifest(&other, 2), other.clone(), false)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("corpus.fingerprint") && msg.contains("corpus.n_docs"),
        "{msg}"
    );
    // --fresh replaces it.
    let exp = Experiment::create(dir.path(), manifest(&other, 2), other, true).unwrap();
    assert_eq!(exp.corpus().len(), 11);
}

#[test]
fn corrupt_record_is_detected_moved_aside_and_retrained() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let exp = Experiment::create(dir.path(), manifest(&c, 1), c, false).unwrap();
    run(&exp, &cfg(3), &Silent).unwrap();
    let good = bytes(&exp, 1);
    let path = record_path(&exp.runs_dir(), 1);
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let scan = exp.scan(3).unwrap();
    assert_eq!(scan.corrupt.len(), 1);
    assert!(
        scan.corrupt[0].1.contains("model-000001.rec"),
        "{:?}",
        scan.corrupt
    );
    // The report skips it rather than using it.
    let rep = report(&exp, Metric::Accuracy).unwrap();
    assert_eq!((rep.n_models, rep.skipped.len()), (2, 1));
    let s = run(&exp, &cfg(3), &Silent).unwrap();
    assert_eq!((s.corrupt.clone(), s.trained.clone()), (vec![1], vec![1]));
    assert_eq!(bytes(&exp, 1), good);
    assert_eq!(
        std::fs::read_dir(exp.runs_dir().join("corrupt"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn report_matches_records_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let exp = Experiment::create(dir.path(), manifest(&c, 1), c, false).unwrap();
    run(&exp, &cfg(4), &Silent).unwrap();
    let rep = report(&exp, Metric::Loss).unwrap();
    let recs: Vec<Record> = (0..4).map(|i| exp.read(i).unwrap()).collect();
    for d in 0..10 {
        let inn: Vec<f64> = recs
            .iter()
            .filter(|r| r.copies[d] > 0)
            .map(|r| r.loss()[d])
            .collect();
        let out: Vec<f64> = recs
            .iter()
            .filter(|r| r.copies[d] == 0)
            .map(|r| r.loss()[d])
            .collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let e = &rep.docs[d].estimate;
        assert_eq!((e.n_in, e.n_out), (2, 2));
        assert!((e.mem.unwrap() - (mean(&out) - mean(&inn))).abs() < 1e-12);
        assert_eq!(rep.docs[d].id, format!("doc-{d}"));
    }
}

#[test]
fn too_few_models_are_reported_as_design_problems() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let exp = Experiment::create(dir.path(), manifest(&c, 1), c, false).unwrap();
    let s = run(&exp, &cfg(1), &Silent).unwrap();
    assert_eq!(s.design_problems.len(), 10);
    let rep = report(&exp, Metric::Accuracy).unwrap();
    assert!(rep
        .docs
        .iter()
        .all(|d| d.estimate.mem.is_none() && d.estimate.reason.is_some()));
}
