//! Each example's prediction at a small size: the direction of every effect
//! (not its significance, which needs the examples' model counts). A
//! regression in training or estimation that breaks the science fails here.

use cfmem::engine::Precision;
use cfmem::sched::Silent;
use cfmem_studies::{self as studies, Scale};

#[test]
fn random_identifiers_are_memorized_more_than_a_repeated_word() {
    let dir = tempfile::tempdir().unwrap();
    let r = studies::random_vs_predictable(dir.path(), &Scale::small(), &Silent).unwrap();
    assert_eq!((r.random.n, r.repeated.n), (8, 8));
    let w = r.difference.welch.unwrap();
    assert!(
        w.diff > 0.0,
        "random {:.4} vs repeated {:.4}",
        r.random.mean,
        r.repeated.mean
    );
    assert!((w.diff - (r.random.mean - r.repeated.mean)).abs() < 1e-12);
}

#[test]
fn more_copies_are_memorized_more() {
    let dir = tempfile::tempdir().unwrap();
    let r = studies::repetition(dir.path(), &Scale::small(), &Silent).unwrap();
    let copies: Vec<u32> = r.levels.iter().map(|l| l.copies).collect();
    assert_eq!(copies, vec![1, 2, 4]);
    assert!(
        r.four_vs_one.mean > 0.0,
        "mem(4) − mem(1) = {:.4}",
        r.four_vs_one.mean
    );
    assert!(
        r.levels[2].mem.mean > r.levels[0].mem.mean,
        "{:?}",
        r.levels
    );
}

#[test]
fn a_near_duplicate_cluster_is_memorized_as_a_group_not_per_document() {
    let dir = tempfile::tempdir().unwrap();
    let r = studies::near_duplicates(dir.path(), &Scale::small(), &Silent).unwrap();
    assert_eq!((r.members.n, r.unique.n), (8, 8));
    assert!(
        r.unique.mean > r.members.mean,
        "unique {:.4} vs member {:.4}",
        r.unique.mean,
        r.members.mean
    );
    assert!(
        r.cluster.mem.unwrap() > r.members.mean,
        "cluster {:.4} vs member {:.4}",
        r.cluster.mem.unwrap(),
        r.members.mean
    );
}

#[test]
fn estimates_of_two_halves_of_the_models_agree() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = cfmem::engine::Corpus::from_documents(
        cfmem::bundled::quickstart_corpus().unwrap().documents()[100..].to_vec(),
    )
    .unwrap();
    let r = studies::convergence(dir.path(), corpus, &Scale::small(), &Silent).unwrap();
    let counts: Vec<usize> = r.curve.iter().map(|c| c.models).collect();
    assert_eq!(counts, vec![8, 16]);
    let rho = r.curve.last().unwrap().spearman.unwrap();
    assert!(rho > 0.0, "split-half Spearman {rho}");
    assert!(r.curve[1].model_seconds > r.curve[0].model_seconds);
}

#[test]
fn near_duplicates_are_the_most_influential_training_documents() {
    let dir = tempfile::tempdir().unwrap();
    let r = studies::influence(dir.path(), &Scale::small(), &Silent).unwrap();
    assert_eq!(r.n_queries, 8);
    // Chance: a query's top-1 is one of its 2 near-duplicates among 40
    // training documents with probability 0.05; 3 or more of 8 by chance has
    // probability 0.006. Its near-duplicates' mean rank by chance is 20.5.
    assert!(
        r.top1_is_duplicate >= 3,
        "top-1 is a near-duplicate for {}/{} queries",
        r.top1_is_duplicate,
        r.n_queries
    );
    assert!(
        r.mean_rank < r.chance_rank / 4.0,
        "mean rank {} (chance {})",
        r.mean_rank,
        r.chance_rank
    );
}

#[test]
fn a_pretrained_base_memorizes_its_fine_tuning_data_faster() {
    let dir = tempfile::tempdir().unwrap();
    let r = studies::finetune(
        dir.path(),
        &Scale::small(),
        &studies::BaseScale::small(),
        &Silent,
    )
    .unwrap();
    for arm in [&r.scratch, &r.pretrained] {
        assert_eq!((arm.natural.accuracy.n, arm.canaries.accuracy.n), (24, 8));
        // Every document of the fine-tuning corpus is long enough for 32 → 32.
        assert_eq!(arm.n_too_short, 0);
        let a = arm.agreement;
        assert_eq!(a.both + a.first_only + a.second_only + a.neither, 32);
    }
    // The base model predicts natural text it never saw better than random
    // weights do after the same fine-tuning...
    assert!(
        r.pretrained.natural.accuracy_out.mean > r.scratch.natural.accuracy_out.mean,
        "{:?} vs {:?}",
        r.pretrained.natural.accuracy_out,
        r.scratch.natural.accuracy_out
    );
    // ...and memorizes the natural text it fine-tunes on more.
    assert!(r.natural_gain.mean > 0.0, "{:?}", r.natural_gain);
    assert_eq!(r.natural_gain.n, 24);
}

#[test]
fn bf16_estimates_agree_with_fp32_s_as_well_as_two_fp32_seeds_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut docs = cfmem::bundled::short_entries(24).unwrap();
    docs.extend(cfmem::engine::canaries(&cfmem::engine::CanaryConfig {
        n_random: 8,
        n_controls: 8,
        ..Default::default()
    }));
    let corpus = cfmem::engine::Corpus::from_documents(docs).unwrap();
    let scale = Scale {
        n_models: 8,
        epochs: 24,
        ..Scale::small()
    };
    let r = studies::precision_study(dir.path(), corpus, [0, 1], &scale, &Silent).unwrap();
    let (same, fp32) = (r.same_seed.unwrap(), r.fp32_replication.unwrap());
    assert!(
        r.holds(),
        "same seed {:.3} vs fp32 replication {:.3}",
        same.r,
        fp32.r
    );
    assert!(same.r > 0.8, "bf16 vs fp32, same seed: {:.3}", same.r);
    for a in &r.arms {
        let w = a.planted.as_ref().and_then(|d| d.welch.as_ref()).unwrap();
        assert!(
            w.diff > 0.0,
            "{} seed {}: canaries − controls {:.4}",
            a.precision,
            a.seed,
            w.diff
        );
    }
    assert_eq!(
        r.arms.iter().map(|a| a.precision).collect::<Vec<_>>(),
        [
            Precision::Fp32,
            Precision::Bf16,
            Precision::Fp32,
            Precision::Bf16
        ]
    );
}

#[test]
fn lora_memorizes_its_fine_tuning_data_less_than_full_training_in_every_family() {
    let dir = tempfile::tempdir().unwrap();
    let scale = Scale {
        n_models: 8,
        epochs: 16,
        n_natural: 12,
        n_planted: 4,
    };
    let base = studies::BaseScale {
        n_docs: 64,
        epochs: 1,
    };
    let lora = cfmem::engine::Lora::rank(4);
    let corpus = studies::fine_tuning_corpus(12, 4).unwrap();
    let r = studies::model_families(dir.path(), &corpus, &scale, &base, &lora, &Silent).unwrap();
    let families: Vec<&str> = r.bases.iter().map(|b| b.0).collect();
    assert_eq!(families, studies::FAMILIES);
    assert_eq!(r.arms.len(), 6);
    for pair in r.arms.chunks(2) {
        let (full, lo) = (&pair[0], &pair[1]);
        assert_eq!(
            (full.method.as_str(), lo.method.as_str()),
            ("full", "LoRA r=4")
        );
        assert_eq!((full.natural.n, full.canaries.n), (12, 4));
        assert!(full.controls.is_none());
        // Adapters are a small part of the model.
        assert!(
            lo.trained_params * 4 < full.trained_params,
            "{}",
            full.family
        );
        assert!(
            full.canaries.mean > 0.0,
            "{}: {:?}",
            full.family,
            full.canaries
        );
    }
    // At the same recipe, adapters memorize less than every weight does.
    for (family, natural, canaries) in &r.lora_minus_full {
        assert!(natural.mean < 0.0, "{family}: natural {natural:?}");
        assert!(canaries.mean < 0.0, "{family}: canaries {canaries:?}");
    }
}

#[test]
fn the_spectrum_puts_each_planted_kind_at_its_own_level() {
    let dir = tempfile::tempdir().unwrap();
    let r = studies::spectrum_study(dir.path(), &Scale::small(), &Silent).unwrap();
    assert_eq!(r.report.levels.len(), 3);
    assert_eq!(r.report.n_models, studies::spectrum_models(&Scale::small()));
    let level = |kind: &str, l: usize| r.kind(kind).unwrap().levels[l].clone();
    // Canaries: memorized alone; per removed token, the topic level far
    // below the document level.
    let canary = level("random canaries", 0);
    assert!(canary.mean.mean > 0.0, "{canary:?}");
    assert!(
        level("random canaries", 2).per_token.mean < canary.per_token.mean,
        "{:?}",
        r.canary_per_token
    );
    // Near-duplicate families: the cluster carries more than a member.
    let (member, cluster) = (
        level("near-duplicate families", 0),
        level("near-duplicate families", 1),
    );
    assert!(cluster.mean.mean > member.mean.mean, "{:?}", r.families);
    assert!(cluster.removed_docs > 1.5 && member.removed_docs == 1.0);
    // A canary's own secret is memorized alone; the prefix all canaries
    // share is not (the others teach it).
    let parts = &r.canary_parts;
    assert!(
        parts.secret[0].mean.mean > parts.prefix[0].mean.mean,
        "secret {:?} prefix {:?}",
        parts.secret[0].mean,
        parts.prefix[0].mean
    );
    // Topic families: removing the topic takes out the fact.
    let (sentence, topic) = (level("topic families", 0), level("topic families", 2));
    assert!(
        topic.mean.mean > sentence.mean.mean,
        "{sentence:?} {topic:?}"
    );
}
