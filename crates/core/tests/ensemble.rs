//! An ensemble couples nothing: a model trained inside a K-ensemble gives
//! what it gives alone; and training is deterministic.

use cfmem_core::*;

fn setup() -> (ModelConfig, TrainConfig, TokenizedCorpus) {
    let docs: Vec<Document> = (0..12)
        .map(|i| {
            Document::new(
                format!("d{i}"),
                format!("document {i}: {}", "lorem ipsum ".repeat(i % 4 + 1)),
            )
        })
        .collect();
    let corpus = Corpus::from_documents(docs).unwrap();
    let cfg = ModelConfig {
        d_model: 16,
        d_ff: 32,
        n_head: 2,
        ctx: 16,
        ..ModelConfig::tiny()
    };
    let tcfg = TrainConfig {
        epochs: 3,
        batch_size: 4,
        ..Default::default()
    };
    let tc = TokenizedCorpus::new(&corpus, &ByteTokenizer, cfg.ctx).unwrap();
    (cfg, tcfg, tc)
}

fn job(model: usize, copies: &[u32]) -> ModelJob {
    ModelJob {
        model,
        subset: Subset::from_copies(copies),
        init_seed: 100 + model as u64,
        data_seed: 200 + model as u64,
    }
}

#[test]
fn ensemble_member_equals_model_trained_alone() {
    let (cfg, tcfg, tc) = setup();
    // Subsets of different sizes, so the models run different step counts,
    // and one with repeated copies.
    let jobs = vec![
        job(0, &[1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]),
        job(1, &[0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]),
        job(2, &[2, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1]),
    ];
    let dev = Device::Cpu;
    let Trained {
        model: ens,
        stats: ens_stats,
    } = Ensemble::new(&cfg, &tcfg, &tc, &jobs).train(None).unwrap();
    let ens_eval = evaluate(&ens, &tc, 8, &dev).unwrap();
    assert_ne!(ens_stats[0].steps, ens_stats[1].steps);
    for (k, j) in jobs.iter().enumerate() {
        let Trained {
            model: alone,
            stats: st,
        } = Ensemble::new(&cfg, &tcfg, &tc, std::slice::from_ref(j))
            .train(None)
            .unwrap();
        assert_eq!(st[0].steps, ens_stats[k].steps);
        assert!(
            (st[0].final_loss.unwrap() - ens_stats[k].final_loss.unwrap()).abs() < 1e-4,
            "model {k}"
        );
        let ev = evaluate(&alone, &tc, 8, &dev).unwrap();
        for d in 0..tc.n_docs() {
            let (a, b) = (ev[0][d], ens_eval[k][d]);
            assert_eq!(a.n_tokens, b.n_tokens);
            assert!(
                (a.loss() - b.loss()).abs() < 1e-3,
                "model {k} doc {d}: {} vs {}",
                a.loss(),
                b.loss()
            );
        }
        let wa = alone.model_weights(0).unwrap();
        let we = ens.model_weights(k).unwrap();
        for (x, y) in wa.iter().flatten().zip(we.iter().flatten()) {
            assert!((x - y).abs() < 1e-3, "model {k}: weights differ");
        }
    }
}

#[test]
fn training_is_deterministic_and_seed_dependent() {
    let (cfg, tcfg, tc) = setup();
    let dev = Device::Cpu;
    let j = job(4, &[1; 12]);
    let run = |j: &ModelJob| {
        let m = Ensemble::new(&cfg, &tcfg, &tc, std::slice::from_ref(j))
            .train(None)
            .unwrap()
            .model;
        evaluate(&m, &tc, 8, &dev).unwrap()
    };
    let a = run(&j);
    let b = run(&j);
    for (x, y) in a[0].iter().zip(&b[0]) {
        assert_eq!(x.sum_nll.to_bits(), y.sum_nll.to_bits());
        assert_eq!(x.n_correct, y.n_correct);
    }
    let c = run(&ModelJob {
        data_seed: 999,
        ..j
    });
    assert!(a[0].iter().zip(&c[0]).any(|(x, y)| x.sum_nll != y.sum_nll));
}

#[test]
fn training_lowers_loss_on_included_documents() {
    let (cfg, mut tcfg, tc) = setup();
    tcfg.epochs = 30;
    let dev = Device::Cpu;
    let untrained = Gpt::new(&cfg, &[1], DType::F32, &dev).unwrap();
    let before = evaluate(&untrained, &tc, 8, &dev).unwrap();
    let m = Ensemble::new(&cfg, &tcfg, &tc, &[job(0, &[1; 12])])
        .train(None)
        .unwrap()
        .model;
    let after = evaluate(&m, &tc, 8, &dev).unwrap();
    let mean = |e: &[DocEval]| e.iter().map(DocEval::loss).sum::<f64>() / e.len() as f64;
    assert!(
        mean(&after[0]) < 0.6 * mean(&before[0]),
        "{} vs {}",
        mean(&after[0]),
        mean(&before[0])
    );
}

#[test]
fn subset_naming_unknown_document_is_an_error() {
    let (cfg, tcfg, tc) = setup();
    let bad = ModelJob {
        subset: Subset {
            entries: vec![(99, 1)],
        },
        ..job(3, &[])
    };
    let err = Ensemble::new(&cfg, &tcfg, &tc, &[bad])
        .train(None)
        .unwrap_err();
    assert!(err.to_string().contains("model 3"), "{err}");
}
