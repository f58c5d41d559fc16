//! The native CPU step against candle's autograd and against finite
//! differences: every parameter's gradient, in fp32 and in bf16; every
//! parameter moves; training is deterministic and independent of the
//! thread count; evaluation and logits agree with candle's graph.

use candle_core::{DType, Device, Tensor};
use cfmem_core::*;

fn cfg(tie: bool) -> ModelConfig {
    ModelConfig {
        vocab_size: 259,
        d_model: 16,
        n_layer: 2,
        n_head: 2,
        d_ff: 24,
        ctx: 7,
        tie_embeddings: tie,
        init_std: 0.3,
        arch: Arch::Gpt2,
    }
}

fn corpus(ctx: usize) -> TokenizedCorpus {
    let corpus = Corpus::from_documents(vec![
        Document::new("a", "hello world, again"),
        Document::new("b", "abc"),
        Document::new("c", "the cat sat"),
    ])
    .unwrap();
    TokenizedCorpus::new(&corpus, &ByteTokenizer, ctx).unwrap()
}

/// Two models, batches of 3 windows of unequal length (padding inside
/// windows and a padding window).
fn groups(tc: &TokenizedCorpus) -> Vec<Vec<Window>> {
    vec![
        tc.windows(0).iter().take(3).copied().collect(),
        vec![tc.windows(1)[0], tc.windows(2)[0]],
    ]
}

/// candle's summed per-model mean loss (the composed graph, in `dtype`).
fn graph_loss(model: &Gpt, batch: &Batch) -> Tensor {
    let dtype = model.params()[0].var.dtype();
    let logits = model.forward(&batch.ids).unwrap();
    let nll = token_nll(&logits, &batch.targets).unwrap();
    let mask = batch.mask.to_dtype(dtype).unwrap();
    let counts = batch.counts.to_dtype(dtype).unwrap();
    (nll * mask)
        .unwrap()
        .sum(1)
        .unwrap()
        .div(&counts.clamp(1.0, f64::MAX).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
}

fn flat64(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// The native step's gradients and those of candle's composed graph in
/// f64 (which `gradients.rs` checks against finite differences), on the
/// same weights.
fn native_and_reference(
    tie: bool,
    precision: Precision,
) -> (NativeGradients, Vec<Vec<f64>>, Vec<String>) {
    let cfg = cfg(tie);
    let tc = corpus(cfg.ctx);
    let g = groups(&tc);
    let refs: Vec<&[Window]> = g.iter().map(Vec::as_slice).collect();
    let native = Gpt::new(&cfg, &[3, 4], DType::F32, &Device::Cpu)
        .unwrap()
        .with_precision(precision)
        .unwrap();
    assert_eq!(native.kernels(), Kernels::Native);
    let mut hb = HostBatch::default();
    tc.fill_batch(&refs, 3, &mut hb);
    let got = native_gradients(&native, &hb).unwrap();
    let reference = Gpt::new(&cfg, &[3, 4], DType::F64, &Device::Cpu)
        .unwrap()
        .with_kernels(Kernels::Composed);
    let batch = tc.batch(&refs, 3, &Device::Cpu).unwrap();
    let grads = graph_loss(&reference, &batch).backward().unwrap();
    let want = reference
        .params()
        .iter()
        .map(|p| flat64(grads.get(p.var.as_tensor()).unwrap()))
        .collect();
    let names = reference.params().iter().map(|p| p.name.clone()).collect();
    (got, want, names)
}

/// `max |a − b|` and `max |b|`.
fn diff(a: &[f32], b: &[f64]) -> (f64, f64) {
    let d = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - y).abs())
        .fold(0.0, f64::max);
    (d, b.iter().fold(0.0f64, |m, &y| m.max(y.abs())))
}

#[test]
fn fp32_gradients_match_autograd_in_f64() {
    for tie in [true, false] {
        let (got, want, names) = native_and_reference(tie, Precision::Fp32);
        assert_eq!(got.grads.len(), want.len());
        for ((g, w), name) in got.grads.iter().zip(&want).zip(&names) {
            let (d, scale) = diff(g, w);
            assert!(
                d <= 2e-5 * scale + 1e-7,
                "{name} (tie {tie}): off by {d:e} at scale {scale:e}"
            );
            // Each model's slice is non-zero on its own.
            let per = g.len() / 2;
            for m in 0..2 {
                assert!(
                    g[m * per..(m + 1) * per].iter().any(|&x| x != 0.0),
                    "{name} model {m}: zero gradient"
                );
            }
        }
    }
}

#[test]
fn bf16_gradients_are_fp32_s_within_bf16_rounding() {
    // bf16 operands carry 8 significant bits (relative rounding 2⁻⁹): the
    // gradients keep their direction and size to about 1 %.
    for tie in [true, false] {
        let (got, want, names) = native_and_reference(tie, Precision::Bf16);
        for ((g, w), name) in got.grads.iter().zip(&want).zip(&names) {
            let dot: f64 = g.iter().zip(w).map(|(&x, &y)| f64::from(x) * y).sum();
            let ng: f64 = g.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            let nw: f64 = w.iter().map(|&y| y * y).sum::<f64>().sqrt();
            let err: f64 = g
                .iter()
                .zip(w)
                .map(|(&x, &y)| (f64::from(x) - y).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                dot / (ng * nw) > 0.999,
                "{name} (tie {tie}): cosine {}",
                dot / (ng * nw)
            );
            assert!(
                err <= 0.03 * nw,
                "{name} (tie {tie}): relative error {}",
                err / nw
            );
        }
    }
}

/// Central differences of the native loss in f32 on the same weights,
/// against the native gradient, for a few entries of every parameter.
fn finite_differences(precision: Precision, rel: f64) {
    let cfg = cfg(false);
    let tc = corpus(cfg.ctx);
    let g = groups(&tc);
    let refs: Vec<&[Window]> = g.iter().map(Vec::as_slice).collect();
    let mut hb = HostBatch::default();
    tc.fill_batch(&refs, 3, &mut hb);
    let model = Gpt::new(&cfg, &[5, 6], DType::F32, &Device::Cpu)
        .unwrap()
        .with_precision(precision)
        .unwrap();
    let grads = native_gradients(&model, &hb).unwrap().grads;
    // The loss in fp32 products whatever the precision being checked: the
    // finite differences of a bf16 loss would measure its rounding steps.
    let fp32 = Gpt::new(&cfg, &[5, 6], DType::F32, &Device::Cpu).unwrap();
    let total = |m: &Gpt| -> f64 {
        native_gradients(m, &hb)
            .unwrap()
            .losses
            .iter()
            .map(|&l| f64::from(l))
            .sum()
    };
    let h = 1e-2f32;
    for (i, p) in fp32.params().iter().enumerate() {
        let t = p.var.as_tensor();
        let orig: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let g = &grads[i];
        let half = orig.len() / 2;
        let argmax = |r: std::ops::Range<usize>| {
            r.max_by(|&a, &b| g[a].abs().partial_cmp(&g[b].abs()).unwrap())
                .unwrap()
        };
        for idx in [argmax(0..half), argmax(half..orig.len())] {
            let at = |delta: f32| {
                let mut v = orig.clone();
                v[idx] += delta;
                p.var
                    .set(&Tensor::from_vec(v, t.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                total(&fp32)
            };
            let fd = (at(h) - at(-h)) / (2.0 * f64::from(h));
            at(0.0);
            let gi = f64::from(g[idx]);
            assert!(
                (fd - gi).abs() <= 2e-3 + rel * fd.abs().max(gi.abs()),
                "{} [{idx}] ({precision}): native {gi} vs finite differences {fd}",
                p.name
            );
        }
    }
}

#[test]
fn fp32_gradients_match_finite_differences() {
    finite_differences(Precision::Fp32, 0.02);
}

#[test]
fn bf16_gradients_match_fp32_finite_differences() {
    finite_differences(Precision::Bf16, 0.05);
}

fn train(precision: Precision, threads: usize, tie: bool) -> (Gpt, Vec<TrainStats>) {
    let cfg = cfg(tie);
    let tc = corpus(cfg.ctx);
    let tcfg = TrainConfig {
        epochs: 3,
        batch_size: 2,
        precision,
        ..Default::default()
    };
    let jobs: Vec<ModelJob> = (0..2)
        .map(|i| ModelJob {
            model: i,
            subset: Subset::from_copies(if i == 0 { &[1, 1, 0] } else { &[0, 1, 2] }),
            init_seed: 10 + i as u64,
            data_seed: 20 + i as u64,
        })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let trained = pool
        .install(|| Ensemble::new(&cfg, &tcfg, &tc, &jobs).train(None))
        .unwrap();
    (trained.model, trained.stats)
}

fn weights(m: &Gpt) -> Vec<Vec<Vec<f32>>> {
    (0..m.k()).map(|k| m.model_weights(k).unwrap()).collect()
}

#[test]
fn every_parameter_moves_and_training_repeats_bit_for_bit() {
    for precision in [Precision::Fp32, Precision::Bf16] {
        let cfg = cfg(false);
        let before = weights(&Gpt::new(&cfg, &[10, 11], DType::F32, &Device::Cpu).unwrap());
        let (a, sa) = train(precision, 1, false);
        assert_eq!(a.precision(), precision);
        let after = weights(&a);
        for k in 0..2 {
            for ((p, x), y) in a.params().iter().zip(&before[k]).zip(&after[k]) {
                assert!(
                    x.iter().zip(y).any(|(u, v)| u != v),
                    "{} of model {k} did not move ({precision})",
                    p.name
                );
            }
        }
        // The same run again, and on three threads: the same bits.
        let (b, sb) = train(precision, 1, false);
        let (c, sc) = train(precision, 3, false);
        assert_eq!(after, weights(&b), "{precision}: a second run differs");
        assert_eq!(
            after,
            weights(&c),
            "{precision}: three threads differ from one"
        );
        assert_eq!(sa, sb);
        assert_eq!(sa, sc);
    }
}

#[test]
fn native_training_follows_candle_s_graph() {
    // The same recipe through candle's fused graph: the same losses to
    // float rounding, step after step, so the same weights at the end.
    let cfg = cfg(true);
    let tc = corpus(cfg.ctx);
    let tcfg = TrainConfig {
        epochs: 3,
        batch_size: 2,
        ..Default::default()
    };
    let job = [ModelJob {
        model: 0,
        subset: Subset::from_copies(&[1, 1, 1]),
        init_seed: 1,
        data_seed: 2,
    }];
    let run = |k: Kernels| {
        Ensemble::new(&cfg, &tcfg, &tc, &job)
            .kernels(k)
            .train(None)
            .unwrap()
    };
    let (native, graph) = (run(Kernels::Native), run(Kernels::Fused));
    assert_eq!(native.model.kernels(), Kernels::Native);
    assert_eq!(graph.model.kernels(), Kernels::Fused);
    let (ln, lg) = (
        native.stats[0].final_loss.unwrap(),
        graph.stats[0].final_loss.unwrap(),
    );
    assert!((ln - lg).abs() < 1e-4 * lg, "final loss {ln} vs {lg}");
    for (x, y) in weights(&native.model)[0]
        .iter()
        .zip(&weights(&graph.model)[0])
    {
        let d = x
            .iter()
            .zip(y)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-3, "weights differ by {d}");
    }
}

#[test]
fn native_evaluation_and_logits_agree_with_the_graph() {
    let cfg = cfg(true);
    let tc = corpus(cfg.ctx);
    let native = Gpt::new(&cfg, &[1, 2], DType::F32, &Device::Cpu).unwrap();
    let graph = Gpt::new(&cfg, &[1, 2], DType::F32, &Device::Cpu)
        .unwrap()
        .with_kernels(Kernels::Fused);
    let (en, tn) = evaluate_tokens(&native, &tc, 2, &Device::Cpu).unwrap();
    let (eg, tg) = evaluate_tokens(&graph, &tc, 2, &Device::Cpu).unwrap();
    for k in 0..2 {
        for (a, b) in en[k].iter().zip(&eg[k]) {
            assert_eq!(a.n_tokens, b.n_tokens);
            assert_eq!(a.n_correct, b.n_correct);
            assert!((a.sum_nll - b.sum_nll).abs() < 1e-4 * b.sum_nll.abs().max(1.0));
        }
        for (field, (x, y)) in [
            ("nll", (&tn[k].nll, &tg[k].nll)),
            ("mu", (&tn[k].mu, &tg[k].mu)),
            ("sigma", (&tn[k].sigma, &tg[k].sigma)),
        ] {
            let d = x
                .iter()
                .zip(y.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(d < 1e-4, "{field}: {d}");
        }
    }
    let ids = Tensor::from_vec(
        (0..2 * 3 * 5)
            .map(|i| (i * 37 % 259) as u32)
            .collect::<Vec<_>>(),
        (2, 3, 5),
        &Device::Cpu,
    )
    .unwrap();
    let a: Vec<f32> = native
        .logits(&ids)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let b: Vec<f32> = graph
        .forward(&ids)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let d = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(d < 1e-5, "logits differ by {d}");
    // An id outside the vocabulary is an error, not a panic.
    let bad = Tensor::from_vec(vec![300u32; 2], (2, 1, 1), &Device::Cpu).unwrap();
    assert!(matches!(
        native.logits(&bad),
        Err(Error::TokenOutOfVocabulary { id: 300, .. })
    ));
}

#[test]
fn bf16_is_refused_where_the_native_step_does_not_run() {
    let cfg = cfg(true);
    let f64_model = Gpt::new(&cfg, &[1], DType::F64, &Device::Cpu).unwrap();
    assert!(matches!(
        f64_model.with_precision(Precision::Bf16),
        Err(Error::Precision { .. })
    ));
    assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
    assert!("bf8".parse::<Precision>().is_err());
}

#[test]
fn threads_do_not_change_a_step_large_enough_to_split() {
    // Rows, column sums, packing and products split over threads at this
    // size (the tiny models above run on one thread whatever the pool).
    let cfg = ModelConfig {
        d_model: 64,
        d_ff: 128,
        n_head: 4,
        ctx: 64,
        ..cfg(true)
    };
    let docs = (0..24)
        .map(|i| Document::new(format!("d{i}"), format!("document {i}: ").repeat(8)))
        .collect();
    let tc = TokenizedCorpus::new(
        &Corpus::from_documents(docs).unwrap(),
        &ByteTokenizer,
        cfg.ctx,
    )
    .unwrap();
    let all: Vec<Window> = (0..24).flat_map(|d| tc.windows(d).to_vec()).collect();
    let mut hb = HostBatch::default();
    tc.fill_batch(&[&all[..16], &all[16..32]], 16, &mut hb);
    for precision in [Precision::Fp32, Precision::Bf16] {
        let model = Gpt::new(&cfg, &[1, 2], DType::F32, &Device::Cpu)
            .unwrap()
            .with_precision(precision)
            .unwrap();
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| native_gradients(&model, &hb).unwrap())
        };
        assert_eq!(on(1), on(3), "{precision}");
    }
}
