//! Experiments that fine-tune a pretrained model: every model starts from
//! the checkpoint kept in the directory, records are deterministic (and do
//! not depend on where the checkpoint was read from), a different
//! checkpoint is a different experiment, and weights that do not fit the
//! model are refused when the experiment is made. The extraction test
//! kept beside each record is what greedy decoding of the saved model
//! writes.

use cfmem_core::{
    Checkpoint, Corpus, Document, Ensemble, ExtractionConfig, ModelConfig, ModelJob, Subset,
    TokenizedCorpus, TrainConfig,
};
use cfmem_sched::*;

fn corpus() -> Corpus {
    Corpus::from_documents(
        (0..8)
            .map(|i| {
                Document::new(
                    format!("d{i}"),
                    format!("entry {i}: {}", "xy ".repeat(i + 2)),
                )
            })
            .collect(),
    )
    .unwrap()
}

fn model() -> ModelConfig {
    ModelConfig {
        d_model: 16,
        d_ff: 32,
        n_head: 2,
        ctx: 16,
        ..ModelConfig::tiny()
    }
}

fn train() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 4,
        ..Default::default()
    }
}

/// A base model trained on everything with `seed`, saved to `path`.
fn pretrain(path: &std::path::Path, seed: u64) {
    let c = corpus();
    let tc = TokenizedCorpus::new(&c, &cfmem_core::ByteTokenizer, model().ctx).unwrap();
    let job = ModelJob {
        model: 0,
        subset: Subset::from_copies(&vec![1; c.len()]),
        init_seed: seed,
        data_seed: seed,
    };
    let t = Ensemble::new(&model(), &train(), &tc, &[job])
        .train(None)
        .unwrap();
    Checkpoint::save(&t.model, 0, path).unwrap();
}

fn builder(dir: &std::path::Path) -> ExperimentBuilder {
    Experiment::builder(dir)
        .corpus(corpus())
        .model(model())
        .train(train())
        .seed(1)
}

fn cfg() -> RunConfig {
    RunConfig {
        n_models: 2,
        jobs: 1,
        threads: 1,
        ..Default::default()
    }
}

#[test]
fn fine_tuning_experiments_are_deterministic_and_tied_to_their_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (base, moved) = (
        dir.path().join("base.safetensors"),
        dir.path().join("copy.safetensors"),
    );
    pretrain(&base, 7);
    std::fs::copy(&base, &moved).unwrap();
    let ext = ExtractionConfig {
        prefix: 6,
        suffix: 8,
    };
    let a = builder(&dir.path().join("a"))
        .init(&base)
        .extraction(Some(ext))
        .open(OnChange::Refuse)
        .unwrap();
    let b = builder(&dir.path().join("b"))
        .init(&moved)
        .extraction(Some(ext))
        .open(OnChange::Refuse)
        .unwrap();
    let scratch = builder(&dir.path().join("s"))
        .open(OnChange::Refuse)
        .unwrap();
    // The experiment keeps its own copy, checked against the fingerprint.
    assert!(a.dir().join("init.safetensors").exists());
    assert!(a.checkpoint().unwrap().is_some() && scratch.checkpoint().unwrap().is_none());
    let saving = RunConfig {
        save_models: true,
        ..cfg()
    };
    run(&a, &saving, &Silent).unwrap();
    for e in [&b, &scratch] {
        run(e, &cfg(), &Silent).unwrap();
    }
    // Saved weights evaluate to the numbers in the record.
    let tc = TokenizedCorpus::from_table(a.token_table().unwrap(), model().ctx).unwrap();
    for i in 0..2 {
        let ck = Checkpoint::load(a.weights_path(i)).unwrap();
        let m = cfmem_core::Gpt::from_weights(
            &model(),
            &ck.weights(),
            1,
            cfmem_core::DType::F32,
            &cfmem_core::Device::Cpu,
        )
        .unwrap();
        let evals = cfmem_core::evaluate(&m, &tc, 64, &cfmem_core::Device::Cpu).unwrap();
        assert_eq!(Evals::new(&evals[0]), a.read(i).unwrap().docs, "model {i}");
        // The kept extraction results are what the model writes greedily.
        let (prompts, truths): (Vec<_>, Vec<_>) =
            (0..tc.n_docs()).map(|d| ext.split(&tc, d).unwrap()).unzip();
        let written = cfmem_core::greedy(&m, &prompts, 8, &cfmem_core::Device::Cpu).unwrap();
        let matched: Vec<u8> = written[0]
            .iter()
            .zip(&truths)
            .map(|(w, t)| w.iter().zip(t).take_while(|(x, y)| x == y).count() as u8)
            .collect();
        assert_eq!(a.read_extraction(i).unwrap(), matched, "model {i}");
    }
    let rep = cfmem_analysis::report(
        &a,
        &cfmem_analysis::ReportConfig::plain(cfmem_analysis::Metric::ExtractionLength),
    )
    .unwrap();
    assert_eq!((rep.n_models, rep.n_not_scored()), (2, 0));
    assert!(scratch.read_extraction(0).is_err());
    assert!(!b.weights_path(0).exists());
    for i in 0..2 {
        let rec = |e: &Experiment| std::fs::read(e.record_path(i)).unwrap();
        // The same checkpoint read from elsewhere: byte-identical records.
        assert_eq!(rec(&a), rec(&b), "model {i}");
        assert_eq!(a.read_extraction(i).unwrap(), b.read_extraction(i).unwrap());
        // Fine-tuned models are not the models trained from scratch.
        assert_ne!(a.read(i).unwrap().docs, scratch.read(i).unwrap().docs);
    }
    // A fine-tuned model starts better than a random one: its loss over
    // the corpus is lower than the model from scratch after the same steps.
    let loss = |e: &Experiment| {
        let r = e.read(0).unwrap();
        r.docs.sum_nll.iter().sum::<f64>() / f64::from(r.docs.n_tokens.iter().sum::<u32>())
    };
    assert!(
        loss(&a) < loss(&scratch),
        "{} vs {}",
        loss(&a),
        loss(&scratch)
    );

    // Resuming without naming the checkpoint keeps it; another checkpoint
    // is another experiment.
    let again = builder(a.dir())
        .resume_settings()
        .open(OnChange::Refuse)
        .unwrap();
    assert_eq!(again.manifest().init, a.manifest().init);
    let other = dir.path().join("other.safetensors");
    pretrain(&other, 8);
    let err = builder(a.dir())
        .init(&other)
        .open(OnChange::Refuse)
        .unwrap_err()
        .to_string();
    assert!(err.contains("init.fingerprint"), "{err}");

    // Weights of another shape are refused when the experiment is made.
    let err = builder(&dir.path().join("wide"))
        .model(ModelConfig {
            d_ff: 64,
            ..model()
        })
        .init(&base)
        .open(OnChange::Refuse)
        .unwrap_err()
        .to_string();
    assert!(err.contains("mlp.w_fc"), "{err}");
    assert!(!dir.path().join("wide/manifest.json").exists());
}

#[test]
fn a_gpt2_layout_checkpoint_gives_the_experiment_its_model_shape() {
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("hf");
    std::fs::create_dir(&hf).unwrap();
    let m = cfmem_core::Gpt::new(
        &model(),
        &[3],
        cfmem_core::DType::F32,
        &cfmem_core::Device::Cpu,
    )
    .unwrap();
    assert!(model().tie_embeddings);
    Checkpoint::save_gpt2(&m, 0, hf.join("model.safetensors")).unwrap();
    // The tiny preset asked for (d 64) gives way to the checkpoint's shape (d 16).
    let exp = Experiment::builder(dir.path().join("exp"))
        .corpus(corpus())
        .train(train())
        .init(hf.join("model.safetensors"))
        .open(OnChange::Refuse)
        .unwrap();
    assert_eq!(
        (exp.manifest().model.d_model, exp.manifest().model.n_head),
        (16, 2)
    );
    assert!(exp.dir().join("init.config.json").exists());
    run(&exp, &cfg(), &Silent).unwrap();
    assert_eq!(exp.record_indices().unwrap(), vec![0, 1]);
    // Resuming finds the same experiment.
    let again = Experiment::builder(exp.dir())
        .resume_settings()
        .open(OnChange::Refuse)
        .unwrap();
    assert_eq!(again.manifest(), exp.manifest());
}
