//! The model on a CUDA device (built with `--features cuda`, run on a GPU
//! machine by `scripts/gpu-check.sh`; without the feature this file is
//! empty, so CPU-only builds skip it): the same weights give the CPU's
//! logits; every parameter gets a non-zero gradient that agrees with the
//! CPU's; an ensemble trains as its models alone do; training on the device
//! follows training on the CPU.
#![cfg(feature = "cuda")]

use candle_core::{DType, Device};
use cfmem_core::*;

mod common;
use common::max_abs_diff;

fn cuda() -> Device {
    select_device(DeviceChoice::Cuda).expect("a CUDA device (run on a GPU machine)")
}

fn cfg() -> ModelConfig {
    ModelConfig {
        vocab_size: 259,
        d_model: 32,
        n_layer: 2,
        n_head: 4,
        d_ff: 64,
        ctx: 16,
        tie_embeddings: true,
        init_std: 0.1,
        arch: Arch::Gpt2,
    }
}

fn data() -> TokenizedCorpus {
    let corpus = Corpus::from_documents(vec![
        Document::new("a", "hello world, hello cuda"),
        Document::new("b", "abc abc abc"),
        Document::new("c", "the quick brown fox jumps over the lazy dog"),
        Document::new("d", "0123456789"),
    ])
    .unwrap();
    TokenizedCorpus::new(&corpus, &ByteTokenizer, cfg().ctx).unwrap()
}

/// The same weights on both devices.
fn pair(k: usize) -> (Gpt, Gpt) {
    let seeds: Vec<u64> = (0..k as u64).collect();
    let cpu = Gpt::new(&cfg(), &seeds, DType::F32, &Device::Cpu).unwrap();
    let gpu = Gpt::new(&cfg(), &seeds, DType::F32, &cuda()).unwrap();
    for (p, q) in cpu.params().iter().zip(gpu.params()) {
        q.var
            .set(&p.var.as_tensor().to_device(&cuda()).unwrap())
            .unwrap();
    }
    (cpu, gpu)
}

#[test]
fn cuda_logits_match_the_cpu() {
    let (cpu, gpu) = pair(3);
    let tc = data();
    let w: Vec<&[Window]> = (0..3).map(|d| tc.windows(d)).collect();
    let bc = tc.batch(&w, 1, &Device::Cpu).unwrap();
    let bg = tc.batch(&w, 1, &cuda()).unwrap();
    let (lc, lg) = (cpu.forward(&bc.ids).unwrap(), gpu.forward(&bg.ids).unwrap());
    let d = max_abs_diff(&lc, &lg);
    assert!(d < 1e-4, "max logit difference {d}");
    // Evaluation on the device gives the CPU's numbers.
    let (ec, eg) = (
        evaluate(&cpu, &tc, 4, &Device::Cpu).unwrap(),
        evaluate(&gpu, &tc, 4, &cuda()).unwrap(),
    );
    for (a, b) in ec.iter().flatten().zip(eg.iter().flatten()) {
        assert_eq!(a.n_tokens, b.n_tokens);
        assert!((a.sum_nll - b.sum_nll).abs() < 1e-3 * a.sum_nll.abs().max(1.0));
    }
}

#[test]
fn every_parameter_gets_the_cpus_gradient_on_cuda() {
    let (cpu, gpu) = pair(2);
    let tc = data();
    let grads = |m: &Gpt, dev: &Device| {
        let b = tc.batch(&[tc.windows(0), tc.windows(2)], 1, dev).unwrap();
        let logits = m.forward(&b.ids).unwrap();
        let nll = token_nll(&logits, &b.targets).unwrap();
        let mask = b.mask.to_dtype(DType::F32).unwrap();
        (nll * mask).unwrap().sum_all().unwrap().backward().unwrap()
    };
    let (gc, gg) = (grads(&cpu, &Device::Cpu), grads(&gpu, &cuda()));
    for (p, q) in cpu.params().iter().zip(gpu.params()) {
        let a = gc.get(p.var.as_tensor()).expect("CPU gradient");
        let b = gg
            .get(q.var.as_tensor())
            .unwrap_or_else(|| panic!("{} has no gradient on CUDA", q.name));
        let norm = b
            .to_device(&Device::Cpu)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(norm > 0.0, "{}: zero gradient on CUDA", q.name);
        let d = max_abs_diff(a, b);
        assert!(d < 1e-3, "{}: gradients differ by {d}", q.name);
    }
}

fn jobs() -> Vec<ModelJob> {
    [[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 1]]
        .iter()
        .enumerate()
        .map(|(m, c)| ModelJob {
            model: m,
            subset: Subset::from_copies(c),
            init_seed: 10 + m as u64,
            data_seed: 20 + m as u64,
        })
        .collect()
}

#[test]
fn an_ensemble_trains_as_its_models_alone_and_as_on_the_cpu() {
    let tc = data();
    let train = TrainConfig {
        epochs: 4,
        batch_size: 2,
        ..TrainConfig::default()
    };
    let jobs = jobs();
    let ens = Ensemble::new(&cfg(), &train, &tc, &jobs)
        .device(&cuda())
        .train(None)
        .unwrap();
    let on_cpu = Ensemble::new(&cfg(), &train, &tc, &jobs)
        .train(None)
        .unwrap();
    let ev = evaluate(&ens.model, &tc, 8, &cuda()).unwrap();
    let ev_cpu = evaluate(&on_cpu.model, &tc, 8, &Device::Cpu).unwrap();
    for (k, j) in jobs.iter().enumerate() {
        let alone = Ensemble::new(&cfg(), &train, &tc, std::slice::from_ref(j))
            .device(&cuda())
            .train(None)
            .unwrap();
        assert_eq!(alone.stats[0].steps, ens.stats[k].steps);
        let ev1 = evaluate(&alone.model, &tc, 8, &cuda()).unwrap();
        for d in 0..tc.n_docs() {
            let (a, b, c) = (ev[k][d].loss(), ev1[0][d].loss(), ev_cpu[k][d].loss());
            assert!(
                (a - b).abs() < 1e-3,
                "model {k} doc {d}: ensemble {a}, alone {b}"
            );
            assert!((a - c).abs() < 1e-2, "model {k} doc {d}: cuda {a}, cpu {c}");
        }
        assert!(ens.stats[k].final_loss.unwrap() < 5.0);
    }
}
