//! The experiment directory: resume, growth, determinism, refusal of a
//! different experiment, corrupt records, and estimates from records.

use cfmem_analysis::{report, DesignConfig, DesignKind, Metric, ReportConfig};
use cfmem_core::{Corpus, Document, ModelConfig, TrainConfig};
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

fn builder(dir: &std::path::Path, c: &Corpus, epochs: usize) -> ExperimentBuilder {
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
    Experiment::builder(dir)
        .corpus(c.clone())
        .model(model)
        .train(train)
        .design(DesignKind::Blocks { b: 2 })
        .seed(3)
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
    std::fs::read(exp.record_path(i)).unwrap()
}

#[test]
fn resume_grow_and_determinism() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let exp = builder(dir.path(), &c, 2).open(OnChange::Refuse).unwrap();
    let s = run(&exp, &cfg(4), &Silent).unwrap();
    assert_eq!(s.trained, vec![0, 1, 2, 3]);
    let first: Vec<Vec<u8>> = (0..4).map(|i| bytes(&exp, i)).collect();

    // Running again trains nothing.
    let s = run(&exp, &cfg(4), &Silent).unwrap();
    assert!(s.trained.is_empty());
    assert_eq!(s.n_already_done, 4);

    // Growing trains only the new models and leaves the old files alone.
    let exp = builder(dir.path(), &c, 2).open(OnChange::Refuse).unwrap();
    let s = run(&exp, &cfg(6), &Silent).unwrap();
    assert_eq!(s.trained, vec![4, 5]);
    for i in 0..4 {
        assert_eq!(bytes(&exp, i), first[i], "model {i} changed");
    }

    // Retraining a model gives a bit-identical record.
    std::fs::remove_file(exp.record_path(2)).unwrap();
    let s = run(&exp, &cfg(6), &Silent).unwrap();
    assert_eq!(s.trained, vec![2]);
    assert_eq!(bytes(&exp, 2), first[2]);

    // Records carry the design's membership.
    let r = exp.read(5).unwrap();
    assert_eq!(
        r.copies,
        DesignConfig::blocks(2, 3).checked().unwrap().row(5, 10)
    );
}

#[test]
fn different_experiment_is_refused_with_the_differing_fields() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    builder(dir.path(), &c, 2).open(OnChange::Refuse).unwrap();
    let err = builder(dir.path(), &c, 3)
        .open(OnChange::Refuse)
        .unwrap_err();
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
    let msg = builder(dir.path(), &other, 2)
        .open(OnChange::Refuse)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("corpus.fingerprint") && msg.contains("corpus.n_docs"),
        "{msg}"
    );
    // --fresh replaces it.
    let exp = builder(dir.path(), &other, 2)
        .open(OnChange::Replace)
        .unwrap();
    assert_eq!(exp.corpus().len(), 11);
}

#[test]
fn corrupt_record_is_detected_moved_aside_and_retrained() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let exp = builder(dir.path(), &c, 1).open(OnChange::Refuse).unwrap();
    run(&exp, &cfg(3), &Silent).unwrap();
    let good = bytes(&exp, 1);
    let path = exp.record_path(1);
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let scan = exp.scan(3).unwrap();
    assert_eq!(scan.corrupt.len(), 1);
    assert!(
        scan.corrupt[0].reason.contains("model-000001.rec"),
        "{:?}",
        scan.corrupt
    );
    // The report skips it rather than using it.
    let rep = report(&exp, &ReportConfig::plain(Metric::Accuracy)).unwrap();
    assert_eq!((rep.n_models, rep.skipped.len()), (2, 1));
    let s = run(&exp, &cfg(3), &Silent).unwrap();
    assert_eq!((s.corrupt.clone(), s.trained.clone()), (vec![1], vec![1]));
    assert_eq!(bytes(&exp, 1), good);
    assert_eq!(
        std::fs::read_dir(exp.dir().join("runs/corrupt"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn report_matches_records_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let exp = builder(dir.path(), &c, 1).open(OnChange::Refuse).unwrap();
    run(&exp, &cfg(4), &Silent).unwrap();
    let rep = report(&exp, &ReportConfig::plain(Metric::Loss)).unwrap();
    let recs: Vec<Record> = (0..4).map(|i| exp.read(i).unwrap()).collect();
    for d in 0..10 {
        let inn: Vec<f64> = recs
            .iter()
            .filter(|r| r.copies[d] > 0)
            .map(|r| r.scores(Metric::Loss)[d])
            .collect();
        let out: Vec<f64> = recs
            .iter()
            .filter(|r| r.copies[d] == 0)
            .map(|r| r.scores(Metric::Loss)[d])
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
    let exp = builder(dir.path(), &c, 1).open(OnChange::Refuse).unwrap();
    let s = run(&exp, &cfg(1), &Silent).unwrap();
    assert_eq!(s.design_problems.len(), 10);
    let rep = report(&exp, &ReportConfig::plain(Metric::Accuracy)).unwrap();
    assert!(rep
        .docs
        .iter()
        .all(|d| d.estimate.mem.is_none() && d.estimate.reason.is_some()));
}

#[test]
fn shared_seeding_gives_every_model_the_same_seeds() {
    let c = corpus();
    let dir = tempfile::tempdir().unwrap();
    let m = builder(dir.path(), &c, 1)
        .seeding(Seeding::PerModel)
        .manifest()
        .unwrap();
    assert_ne!(m.init_seed(0), m.init_seed(1));
    assert_ne!(m.data_seed(0), m.data_seed(1));
    let m = builder(dir.path(), &c, 1).manifest().unwrap();
    assert_eq!(m.seeding, Seeding::Shared);
    assert_eq!(m.init_seed(0), m.init_seed(5));
    assert_eq!(m.data_seed(0), m.data_seed(5));
    assert_ne!(m.init_seed(0), m.data_seed(0));
    assert_eq!("shared".parse::<Seeding>().ok(), Some(Seeding::Shared));
    assert_eq!("per-model".parse::<Seeding>().ok(), Some(Seeding::PerModel));
    assert!("own".parse::<Seeding>().is_err());
    // Under shared seeds two models with the same subset train to the same
    // record. Over 3 documents there are 8 subsets, so 16 models must
    // repeat one.
    let c3 = Corpus::from_documents(c.documents()[..3].to_vec()).unwrap();
    let exp = builder(dir.path(), &c3, 1)
        .seeding(Seeding::Shared)
        .open(OnChange::Refuse)
        .unwrap();
    run(&exp, &cfg(16), &Silent).unwrap();
    let recs: Vec<Record> = (0..16).map(|i| exp.read(i).unwrap()).collect();
    let pair = (0..16)
        .flat_map(|i| (i + 1..16).map(move |j| (i, j)))
        .find(|&(i, j)| recs[i].copies == recs[j].copies);
    let (i, j) = pair.expect("two of 16 models with the same subset of 3 documents");
    assert_eq!(
        recs[i].docs.sum_nll, recs[j].docs.sum_nll,
        "models {i} and {j}"
    );
    // Different subsets give different records.
    let k = (0..16).find(|&k| recs[k].copies != recs[i].copies).unwrap();
    assert_ne!(recs[i].docs.sum_nll, recs[k].docs.sum_nll);
}

#[test]
fn adjusted_report_matches_records_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let exp = builder(dir.path(), &c, 1).open(OnChange::Refuse).unwrap();
    run(&exp, &cfg(4), &Silent).unwrap();
    let rep = report(&exp, &ReportConfig::with_metric(Metric::Loss)).unwrap();
    let recs: Vec<Record> = (0..4).map(|i| exp.read(i).unwrap()).collect();
    let n = 10;
    // Document centres: mean loss over the models each was out of.
    let centre: Vec<f64> = (0..n)
        .map(|d| {
            let v: Vec<f64> = recs
                .iter()
                .filter(|r| r.copies[d] == 0)
                .map(|r| r.scores(Metric::Loss)[d])
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        })
        .collect();
    // Adjusted loss of document d in model r (leave d out of its own model effect).
    let adjusted = |r: &Record, d: usize| -> f64 {
        let outs: Vec<usize> = (0..n).filter(|&e| r.copies[e] == 0 && e != d).collect();
        let effect = outs
            .iter()
            .map(|&e| r.scores(Metric::Loss)[e] - centre[e])
            .sum::<f64>()
            / outs.len() as f64;
        r.scores(Metric::Loss)[d] - effect
    };
    for d in 0..n {
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        let inn = mean(
            recs.iter()
                .filter(|r| r.copies[d] > 0)
                .map(|r| adjusted(r, d))
                .collect(),
        );
        let out = mean(
            recs.iter()
                .filter(|r| r.copies[d] == 0)
                .map(|r| adjusted(r, d))
                .collect(),
        );
        let e = &rep.docs[d].estimate;
        assert!((e.mem.unwrap() - (out - inn)).abs() < 1e-12, "doc {d}");
    }
    // And it differs from the plain estimate (the models differ overall).
    let plain = report(&exp, &ReportConfig::plain(Metric::Loss)).unwrap();
    assert!(plain
        .docs
        .iter()
        .zip(&rep.docs)
        .any(|(p, a)| (p.estimate.mem.unwrap() - a.estimate.mem.unwrap()).abs() > 1e-9));
}

#[test]
fn the_builder_resumes_with_stored_settings_and_refuses_or_replaces_changes() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    // No experiment and no corpus: a clear error.
    let err = Experiment::builder(dir.path())
        .resume_settings()
        .open(OnChange::Refuse)
        .unwrap_err();
    assert!(matches!(err, Error::NoCorpus(_)), "{err}");
    let exp = builder(dir.path(), &c, 2).open(OnChange::Refuse).unwrap();
    let hash = exp.manifest().hash();
    // Resuming with the stored settings gives the same experiment.
    let again = Experiment::builder(dir.path())
        .resume_settings()
        .open(OnChange::Refuse)
        .unwrap();
    assert_eq!(again.manifest().hash(), hash);
    assert_eq!(again.manifest().design().seed, 3);
    // Without resume_settings, unset settings take their defaults: another seed.
    let err = Experiment::builder(dir.path())
        .corpus(c.clone())
        .open(OnChange::Refuse)
        .unwrap_err()
        .to_string();
    assert!(err.contains("seed: existing 3, requested 0"), "{err}");
    assert!(!err.contains("--"), "library errors name no flags: {err}");
    // One changed setting over the stored ones: refused, or replaced.
    let changed = || {
        Experiment::builder(dir.path())
            .resume_settings()
            .train(TrainConfig {
                epochs: 5,
                batch_size: 4,
                ..Default::default()
            })
    };
    let err = changed().open(OnChange::Refuse).unwrap_err().to_string();
    assert!(
        err.contains("train.epochs: existing 2, requested 5"),
        "{err}"
    );
    run(&exp, &cfg(2), &Silent).unwrap();
    let replaced = changed().open(OnChange::Replace).unwrap();
    assert_eq!(replaced.manifest().train.epochs, 5);
    assert_eq!(replaced.manifest().design().seed, 3);
    assert_eq!(replaced.n_recorded().unwrap(), 0, "old records are gone");
}

#[test]
fn zero_models_and_other_format_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let exp = builder(dir.path(), &c, 1).open(OnChange::Refuse).unwrap();
    let err = run(&exp, &cfg(0), &Silent).unwrap_err().to_string();
    assert!(err.contains("at least 1"), "{err}");
    // A manifest of format 1 (two seed fields) is refused, saying why.
    let path = dir.path().join("manifest.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["format_version"] = 1.into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = Experiment::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("format version 1")
            && err.contains(&format!("reads version {FORMAT_VERSION}")),
        "{err}"
    );
    // Replacing it works.
    builder(dir.path(), &c, 1).open(OnChange::Replace).unwrap();
}

#[test]
fn failed_models_are_an_error_and_the_others_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    // A learning rate that sends the weights to infinity: training diverges.
    let exp = builder(dir.path(), &c, 3)
        .train(TrainConfig {
            epochs: 3,
            batch_size: 4,
            lr: 1e30,
            grad_clip: 0.0,
            ..Default::default()
        })
        .open(OnChange::Refuse)
        .unwrap();
    match run(&exp, &cfg(2), &Silent) {
        Err(Error::ModelsFailed(s)) => {
            assert_eq!(s.failed.len() + s.trained.len(), 2);
            assert!(!s.failed.is_empty());
            assert!(s.failed[0].error.contains("model"), "{:?}", s.failed);
        }
        other => panic!("expected ModelsFailed, got {other:?}"),
    }
}

#[test]
fn status_counts_done_pending_and_compute() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let exp = builder(dir.path(), &c, 1).open(OnChange::Refuse).unwrap();
    exp.set_target_models(4).unwrap();
    run(&exp, &cfg(3), &Silent).unwrap();
    let s = exp.status(Some(2)).unwrap();
    assert_eq!((s.n_docs, s.n_wanted), (10, 4));
    assert_eq!(
        (s.done.clone(), s.pending.clone()),
        (vec![0, 1, 2], vec![3])
    );
    assert!(s.running.is_empty() && s.corrupt.is_empty());
    assert!(s.seconds > 0.0);
    assert_eq!(s.shards.len(), 2);
    assert_eq!((s.shards[1].wanted, s.shards[1].done), (2, 1));
}

#[test]
fn a_bpe_tokenizer_is_trained_kept_and_followed_by_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let bpe = |v| builder(dir.path(), &c, 1).tokenizer(cfmem_core::TokenizerSpec::Bpe(v));
    let exp = bpe(280).open(OnChange::Refuse).unwrap();
    let m = exp.manifest();
    assert_eq!(m.tokenizer.name(), "bpe:280");
    assert_eq!(m.model.vocab_size, m.tokenizer.vocab_size());
    assert!(dir.path().join("tokenizer.json").exists());
    run(&exp, &cfg(2), &Silent).unwrap();
    let table = exp.token_table().unwrap();
    assert_eq!(table.vocab_size(), m.model.vocab_size);
    // Fewer tokens than bytes: the merges apply.
    let bytes: usize = c.documents().iter().map(|d| d.text.len() + 2).sum();
    assert!(
        table.ids().len() < bytes,
        "{} ids for {bytes} bytes",
        table.ids().len()
    );
    // The same tokenizer again resumes; another vocabulary is another experiment.
    let again = Experiment::builder(dir.path())
        .resume_settings()
        .tokenizer(cfmem_core::TokenizerSpec::Bpe(280))
        .open(OnChange::Refuse)
        .unwrap();
    assert_eq!(again.manifest().hash(), m.hash());
    let err = bpe(300).open(OnChange::Refuse).unwrap_err().to_string();
    assert!(err.contains("tokenizer"), "{err}");
    // A tampered tokenizer.json is caught before it is used.
    std::fs::write(dir.path().join("tokenizer.json"), b"{}").unwrap();
    assert!(Experiment::open(dir.path()).unwrap().tokenizer().is_err());
}

#[test]
fn compressed_and_parquet_copies_of_a_corpus_give_byte_identical_records() {
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let jsonl = dir.path().join("c.jsonl");
    let lines: String = c
        .documents()
        .iter()
        .map(|d| format!("{}\n", serde_json::json!({"id": d.id, "text": d.text})))
        .collect();
    std::fs::write(&jsonl, &lines).unwrap();
    let zst = dir.path().join("c.jsonl.zst");
    std::fs::write(&zst, zstd::encode_all(lines.as_bytes(), 3).unwrap()).unwrap();
    let pq = dir.path().join("c.parquet");
    let col = |f: fn(&Document) -> &str| -> ArrayRef {
        Arc::new(StringArray::from(
            c.documents().iter().map(f).collect::<Vec<_>>(),
        ))
    };
    let batch =
        RecordBatch::try_from_iter([("id", col(|d| &d.id)), ("text", col(|d| &d.text))]).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&pq).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    let mut records = Vec::new();
    for (name, path) in [("jsonl", &jsonl), ("zst", &zst), ("parquet", &pq)] {
        let load = cfmem_core::LoadConfig::default();
        let loaded = Corpus::load(path, &load).unwrap();
        assert_eq!(loaded.fingerprint(), c.fingerprint(), "{name}");
        let exp = builder(&dir.path().join(name), &loaded, 1)
            .corpus_origin(path.as_path(), load)
            .open(OnChange::Refuse)
            .unwrap();
        assert_eq!(exp.manifest().corpus.path.as_deref(), Some(path.as_path()));
        run(&exp, &cfg(2), &Silent).unwrap();
        records.push((bytes(&exp, 0), bytes(&exp, 1)));
    }
    assert_eq!(records[0], records[1], "the .jsonl.zst copy");
    assert_eq!(records[0], records[2], "the Parquet copy");
}

#[test]
fn per_token_results_average_to_the_document_estimates() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let plain = builder(&dir.path().join("plain"), &c, 2)
        .open(OnChange::Refuse)
        .unwrap();
    let exp = builder(&dir.path().join("tok"), &c, 2)
        .per_token(true)
        .open(OnChange::Refuse)
        .unwrap();
    assert!(exp.manifest().per_token && !plain.manifest().per_token);
    assert!(plain.token_mem().is_err());
    run(&plain, &cfg(4), &Silent).unwrap();
    run(&exp, &cfg(4), &Silent).unwrap();
    let table = exp.token_table().unwrap();
    let n_targets = table.ids().len() - table.n_docs();
    for i in 0..4 {
        // Keeping per-token results changes no number of the record.
        assert_eq!(exp.read(i).unwrap().docs, plain.read(i).unwrap().docs);
        let t = exp.read_token_scores(i).unwrap();
        assert_eq!(t.correct.len(), n_targets);
        // The per-token file agrees with the record's sums.
        let r = exp.read(i).unwrap();
        let mut at = 0;
        for d in 0..c.len() {
            let n = r.docs.n_tokens[d] as usize;
            let hits = t.correct[at..at + n].iter().filter(|&&x| x).count();
            assert_eq!(hits as u32, r.docs.n_correct[d], "model {i} doc {d}");
            let nll: f64 = t.nll[at..at + n].iter().map(|&x| f64::from(x)).sum();
            assert!((nll - r.docs.sum_nll[d]).abs() <= 2e-3 * r.docs.sum_nll[d].abs() + 1e-3);
            at += n;
        }
    }
    let (tm, skipped) = exp.token_mem().unwrap();
    assert!(skipped.is_empty());
    assert_eq!(tm.n_models, 4);
    // The mean over a document's tokens of the per-token accuracy
    // difference is the document's unadjusted accuracy estimate.
    let rep = report(&exp, &ReportConfig::plain(Metric::Accuracy)).unwrap();
    for (d, e) in rep.docs.iter().enumerate() {
        let per = tm.doc(d, Metric::Accuracy);
        let mean = per.iter().map(|&x| f64::from(x)).sum::<f64>() / per.len() as f64;
        let want = e.estimate.mem.unwrap();
        assert!((mean - want).abs() < 1e-6, "doc {d}: {mean} vs {want}");
    }
    // Segments cover each document's text.
    let segs = exp.token_segments(Metric::Accuracy).unwrap();
    for (d, s) in segs.iter().enumerate() {
        let len: u32 = s.iter().map(|x| x.0).sum();
        assert_eq!(len as usize, c.documents()[d].text.encode_utf16().count());
    }
    // A damaged per-token file is reported as such, naming it.
    let p = exp.dir().join("runs/model-000001.tok");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[60] ^= 0xff;
    std::fs::write(&p, bytes).unwrap();
    let (tm, skipped) = exp.token_mem().unwrap();
    assert_eq!(tm.n_models, 3);
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0].reason.contains("model-000001.tok"),
        "{}",
        skipped[0].reason
    );
}

/// Each job trains on a thread of its own, one model after another: a
/// job never starts a model before its previous one is done (a job loop run
/// as a task of a rayon pool could be resumed inside another job's wait and
/// hold that job's model until every other model is trained).
#[test]
fn jobs_train_side_by_side_one_model_at_a_time() {
    use std::sync::Mutex;
    use std::thread::ThreadId;

    #[derive(Default)]
    struct Events(Mutex<Vec<(ThreadId, usize, bool)>>);
    impl Observer for Events {
        fn models_started(&self, models: &[usize]) {
            let id = std::thread::current().id();
            let mut e = self.0.lock().unwrap();
            e.extend(models.iter().map(|&m| (id, m, true)));
        }
        fn model_done(&self, model: usize, _seconds: f64, _tokens: u64) {
            let id = std::thread::current().id();
            self.0.lock().unwrap().push((id, model, false));
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let exp = builder(dir.path(), &c, 2).open(OnChange::Refuse).unwrap();
    let events = Events::default();
    run(&exp, &cfg(8), &events).unwrap();
    let events = events.0.into_inner().unwrap();
    let mut threads: Vec<ThreadId> = events.iter().map(|e| e.0).collect();
    threads.sort_by_key(|t| format!("{t:?}"));
    threads.dedup();
    assert_eq!(threads.len(), 2, "2 jobs, 2 threads: {events:?}");
    for t in threads {
        let on: Vec<(usize, bool)> = events
            .iter()
            .filter(|e| e.0 == t)
            .map(|e| (e.1, e.2))
            .collect();
        for pair in on.chunks(2) {
            assert!(
                matches!(pair, [(a, true), (b, false)] if a == b),
                "a job started a model before finishing its last: {on:?}"
            );
        }
    }
}

#[test]
fn a_spectrum_design_is_pure_grows_and_repeats_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus();
    let levels: SpectrumSpec = "document,regex:entry [0-1]:,regex:entry [0-3]:"
        .parse()
        .unwrap();
    assert_eq!(
        levels.to_string(),
        "document,regex:entry [0-1]:,regex:entry [0-3]:"
    );
    let spectrum_builder = || {
        builder(dir.path(), &c, 2)
            .design(DesignKind::Budget { fraction: 0.4 })
            .spectrum(Some(levels.clone()))
    };
    let exp = spectrum_builder().open(OnChange::Refuse).unwrap();
    run(&exp, &cfg(4), &Silent).unwrap();
    let first: Vec<Vec<u8>> = (0..4).map(|i| bytes(&exp, i)).collect();
    // Each record leaves out exactly 4 of the 10 documents, as its
    // spectrum row says; the levels are nested.
    let s = exp.spectrum().unwrap();
    assert!(s.level(1).is_nested_in(s.level(2)));
    let design = exp.manifest().design().checked().unwrap();
    for i in 0..4 {
        let r = exp.read(i).unwrap();
        assert_eq!(r.copies, s.row(&design, i));
        assert_eq!(r.copies.iter().filter(|&&k| k == 0).count(), 4);
    }
    // Growing keeps the records; retraining repeats one bit for bit.
    let exp = spectrum_builder().open(OnChange::Refuse).unwrap();
    let done = run(&exp, &cfg(6), &Silent).unwrap();
    assert_eq!(done.trained, vec![4, 5]);
    std::fs::remove_file(exp.record_path(1)).unwrap();
    run(&exp, &cfg(6), &Silent).unwrap();
    for i in 0..4 {
        assert_eq!(bytes(&exp, i), first[i], "model {i} changed");
    }
    // The levels' units are kept in the directory; a damaged copy is
    // rebuilt to the same units.
    let kept = dir.path().join("spectrum.json");
    assert!(kept.exists());
    std::fs::write(&kept, b"{not json").unwrap();
    let again = Experiment::open(dir.path()).unwrap();
    assert_eq!(again.spectrum(), exp.spectrum());
    assert!(std::fs::read_to_string(&kept).unwrap().contains("\"key\""));
    // Another budget is another experiment.
    let err = builder(dir.path(), &c, 2)
        .design(DesignKind::Budget { fraction: 0.5 })
        .spectrum(Some(levels.clone()))
        .open(OnChange::Refuse)
        .unwrap_err()
        .to_string();
    assert!(err.contains("design.fraction"), "{err}");
}
