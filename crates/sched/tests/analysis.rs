//! Analyses from an experiment directory, checked against brute force over
//! its records: convergence, influence on a query corpus, membership scores.

use cfmem_analysis::{
    convergence, groups, influence, membership, repetition, report, ConvergenceConfig, DesignKind,
    InfluenceConfig, InfluenceOn, MembershipConfig, Metric, Observation, ReportConfig, Variance,
};
use cfmem_core::{Corpus, Document, ModelConfig, TrainConfig};
use cfmem_sched::*;

fn setup(dir: &std::path::Path, n_models: usize) -> Experiment {
    setup_with(dir, n_models, false)
}

fn setup_with(dir: &std::path::Path, n_models: usize, per_token: bool) -> Experiment {
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
    let exp = Experiment::builder(dir)
        .corpus(corpus)
        .queries(queries)
        .model(model)
        .train(train)
        .design(DesignKind::Blocks { b: 2 })
        .seed(5)
        .per_token(per_token)
        .open(OnChange::Refuse)
        .unwrap();
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
        &InfluenceConfig {
            metric: Metric::Loss,
            on: InfluenceOn::Queries,
            k: 8,
            block: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(inf.query_ids, vec!["q0", "q1"]);
    let inf = inf.influence;
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
    let inf = influence(&exp, &InfluenceConfig::default())
        .unwrap()
        .influence;
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
    let cfg = ConvergenceConfig {
        report: ReportConfig::plain(Metric::Loss),
        ..Default::default()
    };
    let pts = convergence(&exp, &cfg).unwrap();
    assert_eq!(pts.len(), 1);
    assert_eq!(pts[0].n_models, 8);
    // Blocks of 2 → 4 blocks → the 3 partitions into halves of 2 blocks,
    // averaged: {0,1 | 2,3} vs the rest, {0,1 | 4,5}, {0,1 | 6,7}.
    let recs: Vec<Record> = (0..8).map(|i| exp.read(i).unwrap()).collect();
    let half_mem = |models: &[usize]| -> Vec<f64> {
        (0..8)
            .map(|d| {
                let side = |inn: bool| -> Vec<f64> {
                    models
                        .iter()
                        .filter(|&&i| (recs[i].copies[d] > 0) == inn)
                        .map(|&i| recs[i].scores(Metric::Loss)[d])
                        .collect()
                };
                mean(&side(false)) - mean(&side(true))
            })
            .collect()
    };
    // Spearman without ties: 1 − 6 Σd² / (n (n² − 1)).
    let rank = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .map(|x| v.iter().filter(|y| *y < x).count() as f64 + 1.0)
            .collect()
    };
    let rho = |a: &[usize], b: &[usize]| {
        let (ra, rb) = (rank(&half_mem(a)), rank(&half_mem(b)));
        let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y).powi(2)).sum();
        1.0 - 6.0 * d2 / (8.0 * 63.0)
    };
    let want = (rho(&[0, 1, 2, 3], &[4, 5, 6, 7])
        + rho(&[0, 1, 4, 5], &[2, 3, 6, 7])
        + rho(&[0, 1, 6, 7], &[2, 3, 4, 5]))
        / 3.0;
    assert_eq!(pts[0].n_partitions, 3);
    assert!(
        (pts[0].spearman.unwrap() - want).abs() < 1e-9,
        "{:?} vs {want}",
        pts[0]
    );
}

#[test]
fn membership_scores_cover_every_pair() {
    let dir = tempfile::tempdir().unwrap();
    let exp = setup(dir.path(), 8);
    let m = membership(
        &exp,
        &MembershipConfig {
            observation: Some(Observation::LogitConfidence),
            variance: Some(Variance::PerExample),
            ..MembershipConfig::default()
        },
    )
    .unwrap();
    let online = m.online.unwrap();
    // 8 models × 8 documents, each document in exactly 4 models; leaving one
    // out leaves 3 on its side, so every pair is scored.
    assert_eq!((online.n_pos, online.n_neg), (32, 32));
    assert!((0.0..=1.0).contains(&online.auc));
    assert!(m.docs.iter().all(|d| d.fit.n_in == 4 && d.fit.n_out == 4));
    let g = membership(
        &exp,
        &MembershipConfig {
            observation: Some(Observation::NegLoss),
            variance: Some(Variance::Global),
            ..MembershipConfig::default()
        },
    )
    .unwrap();
    // By default the experiment's losses are logit-scaled.
    let d = membership(&exp, &MembershipConfig::default()).unwrap();
    assert_eq!(d.observation, Observation::LogitConfidence);
    assert_eq!(g.docs.len(), 8);
}

fn small_cfgs() -> (ModelConfig, TrainConfig) {
    (
        ModelConfig {
            d_model: 16,
            d_ff: 32,
            n_head: 2,
            ctx: 16,
            ..ModelConfig::tiny()
        },
        TrainConfig {
            epochs: 2,
            batch_size: 4,
            ..Default::default()
        },
    )
}

#[test]
fn groups_are_removed_together_and_estimated_as_units() {
    let mut docs: Vec<Document> = (0..6)
        .map(|i| Document::new(format!("doc-{i}"), format!("text number {i}")))
        .collect();
    for d in docs.iter_mut().take(3) {
        d.group = Some("g".into());
    }
    let corpus = Corpus::from_documents(docs).unwrap();
    let (model, train) = small_cfgs();
    let dir = tempfile::tempdir().unwrap();
    let exp = Experiment::builder(dir.path())
        .corpus(corpus)
        .model(model)
        .train(train)
        .seed(1)
        .units(UnitSpec::GroupField)
        .open(OnChange::Refuse)
        .unwrap();
    assert_eq!(exp.units().n_units(), 4);
    run(
        &exp,
        &RunConfig {
            n_models: 6,
            jobs: 2,
            ..Default::default()
        },
        &Silent,
    )
    .unwrap();
    let recs: Vec<Record> = (0..6).map(|i| exp.read(i).unwrap()).collect();
    for r in &recs {
        assert!(
            r.copies[0] == r.copies[1] && r.copies[1] == r.copies[2],
            "{:?}",
            r.copies
        );
    }
    let g = groups(&exp, Metric::Accuracy).unwrap();
    let unit = g.iter().find(|x| x.name == "group:g").unwrap();
    assert_eq!(unit.members, vec!["doc-0", "doc-1", "doc-2"]);
    let score = |r: &Record| (0..3).map(|d| r.scores(Metric::Accuracy)[d]).sum::<f64>() / 3.0;
    let inn: Vec<f64> = recs.iter().filter(|r| r.copies[0] > 0).map(score).collect();
    let out: Vec<f64> = recs
        .iter()
        .filter(|r| r.copies[0] == 0)
        .map(score)
        .collect();
    assert!((unit.estimate.mem.unwrap() - (mean(&inn) - mean(&out))).abs() < 1e-12);
    // Singleton units equal the per-document estimates.
    let rep = report(&exp, &ReportConfig::plain(Metric::Accuracy)).unwrap();
    let single = g.iter().find(|x| x.name == "doc-4").unwrap();
    assert_eq!(single.estimate, rep.docs[4].estimate);
}

#[test]
fn repetition_design_trains_copies_and_estimates_by_level() {
    let docs = (0..6)
        .map(|i| Document::new(format!("d{i}"), format!("line {i} of text")))
        .collect();
    let corpus = Corpus::from_documents(docs).unwrap();
    let (model, train) = small_cfgs();
    let dir = tempfile::tempdir().unwrap();
    let exp = Experiment::builder(dir.path())
        .corpus(corpus)
        .model(model)
        .train(train.clone())
        .design(DesignKind::Repetition {
            copies: vec![0, 1, 3],
            probs: vec![0.4, 0.3, 0.3],
        })
        .seed(2)
        .open(OnChange::Refuse)
        .unwrap();
    run(
        &exp,
        &RunConfig {
            n_models: 10,
            jobs: 2,
            ..Default::default()
        },
        &Silent,
    )
    .unwrap();
    let recs: Vec<Record> = (0..10).map(|i| exp.read(i).unwrap()).collect();
    for r in &recs {
        // Tokens trained = epochs × Σ copies × targets.
        let want: u64 = (0..6)
            .map(|d| u64::from(r.copies[d]) * u64::from(r.docs.n_tokens[d]))
            .sum::<u64>()
            * train.epochs as u64;
        assert_eq!(r.train.tokens, want, "model {}", r.model);
        assert!(r.copies.iter().all(|c| [0, 1, 3].contains(c)));
    }
    let curve = repetition(&exp, Metric::Loss, 0.95).unwrap();
    assert_eq!(curve.copies, vec![1, 3]);
    for d in 0..6 {
        for (l, k) in [(0usize, 1u32), (1, 3)] {
            let at = |c: u32| -> Vec<f64> {
                recs.iter()
                    .filter(|r| r.copies[d] == c)
                    .map(|r| r.scores(Metric::Loss)[d])
                    .collect()
            };
            let (ink, zero) = (at(k), at(0));
            let e = &curve.per_doc[d][l];
            if ink.is_empty() || zero.is_empty() {
                assert!(e.mem.is_none());
            } else {
                assert!((e.mem.unwrap() - (mean(&zero) - mean(&ink))).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn a_model_with_an_empty_subset_gives_a_valid_record() {
    let corpus = Corpus::from_documents(vec![
        Document::new("a", "alpha"),
        Document::new("b", "beta"),
    ])
    .unwrap();
    let (model, train) = small_cfgs();
    // Probability 0.99 of zero copies: some models train on nothing.
    let dir = tempfile::tempdir().unwrap();
    let exp = Experiment::builder(dir.path())
        .corpus(corpus)
        .model(model)
        .train(train)
        .design(DesignKind::Repetition {
            copies: vec![0, 1],
            probs: vec![0.99, 0.01],
        })
        .open(OnChange::Refuse)
        .unwrap();
    let s = run(
        &exp,
        &RunConfig {
            n_models: 2,
            jobs: 1,
            ..Default::default()
        },
        &Silent,
    )
    .unwrap();
    assert_eq!(s.trained, vec![0, 1]);
    let r = exp.read(0).unwrap();
    assert_eq!(
        (r.copies.clone(), r.train.steps, r.train.final_loss),
        (vec![0, 0], 0, None)
    );
}

#[test]
fn proxies_of_an_experiment_are_its_models_losses() {
    // An experiment's proxies come from its records (no retraining): the
    // loss proxy of each target is its record's mean loss, the zlib ratio
    // its log-probability over the text's compressed size; without
    // `--extraction` there is no extraction proxy.
    use cfmem_analysis::{audit, proxies, zlib_ratio, zlib_size, Rows};
    let dir = tempfile::tempdir().unwrap();
    let exp = setup(dir.path(), 8);
    let tables = proxies(&exp, exp.texts().as_deref()).unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["loss", "zlib", "reference", "lira-offline", "rmia"]);
    let texts = exp.texts().unwrap();
    for i in 0..8 {
        let r = exp.read(i).unwrap();
        for d in 0..8 {
            let e = r.docs.get(d);
            if r.copies[d] > 0 {
                assert_eq!(tables[0].values[i][d], -e.loss());
                let z = zlib_ratio(e.log_prob(), zlib_size(&texts[d]));
                assert!((tables[1].values[i][d] - z).abs() < 1e-12);
            } else {
                assert!(tables[0].values[i][d].is_nan());
            }
        }
    }
    let rep = report(&exp, &ReportConfig::default()).unwrap();
    let a = audit(&rep, &exp, &tables, 0.05, 1).unwrap();
    assert_eq!(a.proxies.len(), 5);
    // With per-token results, Min-K % Prob of each target from its own
    // per-token losses, by a direct re-implementation.
    let dir = tempfile::tempdir().unwrap();
    let exp = setup_with(dir.path(), 4, true);
    let tables = proxies(&exp, None).unwrap();
    let min20 = tables.iter().find(|t| t.name == "min-20%").unwrap();
    let pp50 = tables.iter().find(|t| t.name == "min-50%++").unwrap();
    let table = exp.token_table().unwrap();
    for i in 0..4 {
        let (r, t) = (exp.read(i).unwrap(), exp.read_token_scores(i).unwrap());
        let mut start = 0;
        for d in 0..8 {
            let n = table.n_targets(d);
            let mut v: Vec<f64> = t.nll[start..start + n]
                .iter()
                .map(|&x| f64::from(x))
                .collect();
            // Min-K %++: standardised log-likelihoods z = (−nll − μ)/σ,
            // the lowest half averaged (every σ here is positive: a tiny
            // model's next-token distribution is never on one token).
            let mut z: Vec<f64> = (start..start + n)
                .map(|j| (-f64::from(t.nll[j]) - f64::from(t.mu[j])) / f64::from(t.sigma[j]))
                .collect();
            assert!(t.sigma[start..start + n].iter().all(|&s| s > 0.0));
            start += n;
            v.sort_by(|a, b| b.total_cmp(a));
            let k = (0.2 * n as f64).ceil() as usize;
            let want = -v[..k].iter().sum::<f64>() / k as f64;
            z.sort_by(f64::total_cmp);
            let k = (0.5 * n as f64).ceil() as usize;
            let want_pp = z[..k].iter().sum::<f64>() / k as f64;
            if r.copies[d] > 0 {
                assert!((min20.values[i][d] - want).abs() < 1e-9, "{i} {d}");
                assert!((pp50.values[i][d] - want_pp).abs() < 1e-9, "{i} {d}");
            } else {
                assert!(min20.values[i][d].is_nan() && pp50.values[i][d].is_nan());
            }
        }
    }
    // (A target whose four documents' truths tie has no Spearman.)
    assert!(
        a.proxies.iter().all(|p| (1..=8).contains(&p.n_targets)),
        "{a:?}"
    );
}

/// Four tiny models (two jobs) trained for `epochs` on `docs`, ranking the
/// canaries of `exposure`, with `units` as the units of removal.
fn ranked_canaries(
    dir: &std::path::Path,
    docs: Vec<Document>,
    exposure: &cfmem_core::ExposureConfig,
    epochs: usize,
    units: UnitSpec,
) -> Experiment {
    let exp = Experiment::builder(dir)
        .corpus(Corpus::from_documents(docs).unwrap())
        .model(ModelConfig {
            d_model: 16,
            d_ff: 32,
            n_head: 2,
            ctx: 32,
            ..ModelConfig::tiny()
        })
        .train(TrainConfig {
            epochs,
            batch_size: 4,
            ..Default::default()
        })
        .units(units)
        .exposure(Some(exposure.clone()))
        .open(OnChange::Refuse)
        .unwrap();
    let run_cfg = RunConfig {
        n_models: 4,
        jobs: 2,
        ..Default::default()
    };
    run(&exp, &run_cfg, &Silent).unwrap();
    exp
}

#[test]
fn exposure_ranks_each_canary_among_the_candidates_each_model_scored() {
    // Four canaries of two digits (|R| = 100, so every secret is a
    // candidate and ranks are exact) among eight documents; each model's
    // exposure of a canary is log2 100 − log2 (1 + the candidates it scores
    // lower than the canary, the canary's own secret aside), by hand from
    // the stored files; the report averages it over in- and out-models.
    use cfmem_analysis::report;
    use cfmem_core::{canaries, CanaryConfig, ExposureConfig};
    let dir = tempfile::tempdir().unwrap();
    let cfg = CanaryConfig {
        n_random: 4,
        n_controls: 0,
        format: "digits2".parse().unwrap(),
        ..CanaryConfig::default()
    };
    let mut docs: Vec<Document> = (0..8)
        .map(|i| {
            Document::new(
                format!("doc-{i}"),
                format!("entry {i}: {}", "xyz ".repeat(i + 1)),
            )
        })
        .collect();
    docs.extend(canaries(&cfg));
    let exposure = ExposureConfig {
        prefix: cfg.prefix.clone(),
        format: cfg.format,
        candidates: 2000,
    };
    let exp = ranked_canaries(dir.path(), docs, &exposure, 3, UnitSpec::Documents);
    let rep = report(&exp, &ReportConfig::default()).unwrap();
    let x = exp.exposure(&rep).unwrap().unwrap();
    assert!(x.exhaustive && x.candidates == 100 && x.format == "digits2");
    assert_eq!(x.canaries.len(), 4);
    let (secrets, _) = exposure.secrets(exp.manifest().seed);
    let bits = 100f64.log2();
    for c in &x.canaries {
        let secret = &exp.documents()[c.index].text[cfg.prefix.len()..];
        let (mut sum_in, mut n_in, mut sum_out, mut n_out) = (0.0, 0, 0.0, 0);
        for i in 0..4 {
            let r = exp.read(i).unwrap();
            let cand = exp.read_exposure(i).unwrap();
            assert_eq!(cand.len(), 100);
            let own = f64::from(cand[secrets.iter().position(|s| s == secret).unwrap()]);
            let canary = r.docs.get(c.index).sum_nll;
            // The canary's own secret, scored among the candidates, is the
            // canary's text: the same loss, up to batching and f32.
            assert!(
                (own - canary).abs() < 1e-3 * canary.abs().max(1.0),
                "{own} vs {canary}"
            );
            let lower = cand
                .iter()
                .zip(&secrets)
                .filter(|(&v, s)| s.as_str() != secret && f64::from(v) < canary)
                .count();
            let e = bits - (1.0 + lower as f64).log2();
            if r.copies[c.index] > 0 {
                sum_in += e;
                n_in += 1;
            } else {
                sum_out += e;
                n_out += 1;
            }
        }
        assert_eq!((c.n_in, c.n_out), (n_in, n_out));
        assert!((c.exposure_in.unwrap() - sum_in / n_in as f64).abs() < 1e-9);
        assert!((c.exposure_out.unwrap() - sum_out / n_out as f64).abs() < 1e-9);
    }
    // An experiment without exposure has none, and says why it has no file.
    let other = tempfile::tempdir().unwrap();
    let plain = setup(other.path(), 2);
    let rep = report(&plain, &ReportConfig::default()).unwrap();
    assert!(plain.exposure(&rep).unwrap().is_none());
    let err = plain.read_exposure(0).unwrap_err().to_string();
    assert!(err.contains("exposure"), "{err}");
}

#[test]
fn canaries_planted_with_copies_go_in_and_out_whole_and_are_ranked_once() {
    // Three canaries, each three documents of one text in one group, under
    // a design over the group field: every model has all three copies or
    // none, and the exposure report lists each canary once, with its copies,
    // at its first document.
    use cfmem_analysis::report;
    use cfmem_core::{canaries, CanaryConfig, ExposureConfig};
    let dir = tempfile::tempdir().unwrap();
    let cfg = CanaryConfig {
        n_random: 3,
        n_controls: 0,
        format: "digits2".parse().unwrap(),
        copies: 3,
        ..CanaryConfig::default()
    };
    let mut docs: Vec<Document> = (0..6)
        .map(|i| {
            Document::new(
                format!("doc-{i}"),
                format!("entry {i}: {}", "ab ".repeat(i + 1)),
            )
        })
        .collect();
    docs.extend(canaries(&cfg));
    // A document with the first canary's text but outside its group: a
    // unit of its own, so a canary of its own.
    let twin = Document::new("twin", docs[6].text.clone());
    docs.push(twin);
    let exposure = ExposureConfig {
        prefix: cfg.prefix.clone(),
        format: cfg.format,
        candidates: 2000,
    };
    let exp = ranked_canaries(dir.path(), docs, &exposure, 2, UnitSpec::GroupField);
    let rep = report(&exp, &ReportConfig::default()).unwrap();
    let x = exp.exposure(&rep).unwrap().unwrap();
    let ids: Vec<&str> = x.canaries.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "canary-random-00-c1",
            "canary-random-01-c1",
            "canary-random-02-c1",
            "twin"
        ]
    );
    assert_eq!(x.canaries[3].copies, 1);
    let mut n_in_any = 0;
    for c in &x.canaries[..3] {
        assert_eq!(c.copies, 3);
        assert_eq!(c.n_in + c.n_out, 4);
        n_in_any += c.n_in;
        for i in 0..4 {
            let r = exp.read(i).unwrap();
            let k = r.copies[c.index];
            assert!(
                (c.index..c.index + 3).all(|d| r.copies[d] == k),
                "model {i}: a canary's copies split"
            );
        }
    }
    assert!(n_in_any > 0);
}
