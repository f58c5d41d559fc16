//! The whole pipeline through the library facade, on a tiny corpus:
//! corpus → design → train (ensembles of 2) → evaluate → records → estimates.

use cfmem::prelude::*;

#[test]
fn planted_canaries_are_found_through_the_library() {
    let mut docs: Vec<Document> = (0..6)
        .map(|i| {
            Document::new(
                format!("nat-{i}"),
                format!("A plain sentence number {i} about the weather."),
            )
        })
        .collect();
    docs.extend(canaries(&CanaryConfig {
        n_random: 6,
        n_controls: 6,
        seed: 9,
        ..Default::default()
    }));
    let corpus = Corpus::from_documents(docs).unwrap();
    let model = ModelConfig {
        d_model: 32,
        d_ff: 64,
        n_head: 2,
        ctx: 48,
        ..ModelConfig::tiny()
    };
    let train = TrainConfig {
        epochs: 40,
        batch_size: 4,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let exp = Experiment::builder(dir.path())
        .corpus(corpus)
        .model(model)
        .train(train)
        .seed(1)
        .open(OnChange::Refuse)
        .unwrap();
    let cfg = RunConfig {
        n_models: 8,
        jobs: 2,
        ensemble: 2,
        ..Default::default()
    };
    let summary = run(&exp, &cfg, &Silent).unwrap();
    assert_eq!(summary.trained.len(), 8);
    assert!(summary.design_problems.is_empty());

    let rep = report(&exp, &ReportConfig::plain(Metric::Accuracy)).unwrap();
    assert_eq!(rep.n_models, 8);
    let mean = |prefix: &str| {
        let v: Vec<f64> = rep
            .docs
            .iter()
            .filter(|d| d.id.starts_with(prefix))
            .map(|d| d.estimate.mem.unwrap())
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (random, control) = (
        mean(cfmem::engine::RANDOM_PREFIX),
        mean(cfmem::engine::CONTROL_PREFIX),
    );
    assert!(
        random > control + 0.02,
        "random {random:.4} vs control {control:.4}"
    );
    // Every estimate has a CI around it (blocks of 2: 4 models on each side).
    for d in &rep.docs {
        let e = &d.estimate;
        assert_eq!((e.n_in, e.n_out), (4, 4));
        assert!(e.ci_low.unwrap() <= e.mem.unwrap() && e.mem.unwrap() <= e.ci_high.unwrap());
    }
}
