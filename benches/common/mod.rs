#![allow(dead_code)] // each benchmark uses a part of these helpers
//! Shared by the benchmarks: the machine's matrix-product peak and the
//! process's peak memory, measured in the same run as the figures.

use std::time::Instant;

use anyhow::Result;
use cfmem::engine::{Device, Ensemble, Gpt, Tensor, Trained};

/// GFLOP/s of the best of a few 2048³ f32 matrix products on `threads` threads.
pub fn peak_gflops(threads: usize) -> Result<f64> {
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let n = 2048;
    let a = Tensor::randn(0f32, 1.0, (n, n), &Device::Cpu)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), &Device::Cpu)?;
    let mut best = f64::MAX;
    for _ in 0..4 {
        let t = Instant::now();
        let c = a.matmul(&b)?;
        let _ = c.get(0)?.get(0)?.to_scalar::<f32>()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n as f64).powi(3) / best / 1e9)
}

/// GFLOP/s of the best of a few 2048³ bf16 products (fp32 accumulation)
/// on `threads` threads, operands packed before the timing (the kernel's
/// rate, as the PyTorch peer times products of bf16 tensors), and the
/// engine that ran them: the bf16 ceiling beside [`peak_gflops`].
pub fn peak_bf16_gflops(threads: usize) -> Result<(f64, &'static str)> {
    use cfmem_kernels::{gemm, Engine, MatRef, PackedA, PackedB};
    let n = 2048;
    let a: Vec<f32> = (0..n * n)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let mut c = vec![0.0f32; n * n];
    let engine = Engine::detect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let view = MatRef::row_major(&a, n, n)?;
    let (pa, pb) = pool.install(|| (PackedA::pack_with(view, threads), PackedB::pack(view)));
    let mut best = f64::MAX;
    for _ in 0..4 {
        let t = Instant::now();
        pool.install(|| gemm(engine, &pa, &pb, &mut c, n, false, threads))?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok((2.0 * (n as f64).powi(3) / best / 1e9, engine.name()))
}

/// Peak resident memory of this process (VmHWM), in MiB.
pub fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Per document, 1 when every window of it is full (`ctx` predicted
/// tokens), so that every step trains `batch × ctx` tokens, else 0 (a
/// subset's copies); and the full windows of one epoch over them.
pub fn full_windows(data: &cfmem::engine::TokenizedCorpus, ctx: usize) -> (Vec<u32>, usize) {
    let full: Vec<u32> = (0..data.n_docs())
        .map(|d| u32::from(data.windows(d).iter().all(|w| w.n_targets as usize == ctx)))
        .collect();
    let per_epoch = (0..data.n_docs())
        .filter(|&d| full[d] > 0)
        .map(|d| data.windows(d).len())
        .sum();
    (full, per_epoch)
}

/// Steps left out of the timing, as the peers leave out their warm-up steps:
/// the first steps fault in the memory that later steps reuse.
pub const WARM_UP_STEPS: usize = 2;

/// Train `ensemble` and return its tokens/s over the steps after the warm-up
/// (every step trains `batch` full windows per model), with the model.
pub fn steady_rate(ensemble: &Ensemble<'_>, batch: usize) -> Result<(f64, Gpt)> {
    let mut start = None;
    let mut hook = |step: usize, _total: usize| {
        if step == WARM_UP_STEPS {
            start = Some(Instant::now());
        }
    };
    let Trained { model, stats } = ensemble.train(Some(&mut hook))?;
    let secs = start
        .ok_or_else(|| anyhow::anyhow!("fewer than {WARM_UP_STEPS} steps"))?
        .elapsed()
        .as_secs_f64();
    eprintln!(
        "timed {} steps in {secs:.2} s",
        stats[0].steps - WARM_UP_STEPS
    );
    let cfg = model.config();
    let warm_up_tokens = (WARM_UP_STEPS * batch * cfg.ctx * stats.len()) as u64;
    let tokens: u64 = stats.iter().map(|s| s.tokens).sum::<u64>() - warm_up_tokens;
    Ok((tokens as f64 / secs, model))
}
