//! Training and evaluation throughput, as tokens/s and as a fraction of the
//! machine's matrix-product peak measured in the same run.
//!
//! ```text
//! cargo bench --bench train            # all configurations (a few minutes)
//! CFMEM_BENCH_QUICK=1 cargo bench --bench train   # fewer steps
//! CFMEM_BENCH_DMODEL=128 cargo bench --bench train   # one width only
//! CFMEM_BENCH_PRODUCTS=1 cargo bench --bench train   # per-product GFLOP/s
//! CFMEM_BENCH_PRECISION=bf16 cargo bench --bench train   # one precision only
//! ```
//! Training is timed over the steps after the first two, evaluation over a
//! second pass, as the peers in `benches/peer/` time theirs.
//! One line per configuration and precision (fp32, then bf16 products with
//! fp32 accumulation; a bf16 line's `peak_fraction` is of the bf16 peak):
//! `train d_model=128 n_layer=2 ctx=128 batch=32 k=1 threads=2 precision=fp32 tokens_per_s=NNNN peak_fraction=0.NN`

mod common;

use std::time::Instant;

use anyhow::Result;
use cfmem::engine::{
    evaluate, ByteTokenizer, Corpus, Device, Ensemble, LoadConfig, ModelConfig, ModelJob,
    Precision, Subset, Tensor, TokenizedCorpus, TrainConfig,
};
use common::{peak_gflops, steady_rate};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    // candle's element-wise pool and the allocator, as `cfmem` sets them;
    // the matrix-product threads are set per measurement below.
    cfmem::engine::settle_process(None, |k, v| std::env::set_var(k, v));
    // Skip the libtest flags cargo bench passes.
    let quick = std::env::var("CFMEM_BENCH_QUICK").is_ok();
    let corpus = Corpus::load(
        concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/devil.jsonl"),
        &LoadConfig::default(),
    )?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let peaks: Vec<f64> = (1..=cores.min(2)).map(peak_gflops).collect::<Result<_>>()?;
    for (i, p) in peaks.iter().enumerate() {
        println!("peak threads={} gflops={p:.1}", i + 1);
    }
    let mut peaks_bf16 = Vec::new();
    for threads in 1..=cores.min(2) {
        let (g, engine) = common::peak_bf16_gflops(threads)?;
        println!("peak_bf16 threads={threads} gflops={g:.1} engine={engine}");
        peaks_bf16.push(g);
    }
    let precisions: Vec<Precision> = match std::env::var("CFMEM_BENCH_PRECISION") {
        Ok(p) => vec![p.parse()?],
        Err(_) => vec![Precision::Fp32, Precision::Bf16],
    };
    // The ceiling of a precision's products, on `threads` threads.
    let peak = |precision: Precision, threads: usize| match precision {
        Precision::Bf16 => peaks_bf16[threads - 1],
        _ => peaks[threads - 1],
    };
    if std::env::var("CFMEM_BENCH_PRODUCTS").is_ok() {
        return products();
    }
    let configs: Vec<(ModelConfig, usize)> = vec![
        (ModelConfig::tiny(), 16),
        (ModelConfig::small(), 32),
        (
            ModelConfig {
                d_model: 256,
                d_ff: 1024,
                n_layer: 4,
                ..ModelConfig::small()
            },
            32,
        ),
    ];
    // Evaluation runs over the first 150 entries (about 30k tokens), enough
    // for a stable rate without the whole corpus at every size.
    let eval_corpus = Corpus::from_documents(corpus.documents()[..150].to_vec())?;
    // `CFMEM_BENCH_DMODEL=128` keeps only that width (for profiling).
    let only: Option<usize> = std::env::var("CFMEM_BENCH_DMODEL")
        .ok()
        .and_then(|v| v.parse().ok());
    for (model, batch) in configs
        .iter()
        .filter(|(m, _)| only.is_none_or(|d| m.d_model == d))
    {
        let data = TokenizedCorpus::new(&corpus, &ByteTokenizer, model.ctx)?;
        let eval_data = TokenizedCorpus::new(&eval_corpus, &ByteTokenizer, model.ctx)?;
        let (full, per_epoch) = common::full_windows(&data, model.ctx);
        let steps = if quick { 6 } else { 16 };
        let epochs = (steps * batch).div_ceil(per_epoch.max(1)).max(1);
        // Ensembles of 4 at d 256 / 4 layers need more memory than a 2-core
        // machine's share (candle keeps every activation for backward).
        let ks: &[usize] = if model.d_model >= 256 { &[1] } else { &[1, 4] };
        for &precision in &precisions {
            // One model per core, in parallel (the `cfmem run` default:
            // jobs = cores, threads = 1): tokens/s summed over the models.
            if cores >= 2 {
                std::env::set_var("RAYON_NUM_THREADS", "1");
                let train = TrainConfig {
                    epochs,
                    batch_size: *batch,
                    precision,
                    ..Default::default()
                };
                let rates = std::thread::scope(|s| -> Result<Vec<f64>> {
                    let handles: Vec<_> = (0..2u64)
                        .map(|i| {
                            let (train, data, full) = (&train, &data, &full);
                            s.spawn(move || -> Result<f64> {
                                let job = ModelJob {
                                    model: i as usize,
                                    subset: Subset::from_copies(full),
                                    init_seed: i,
                                    data_seed: i,
                                };
                                // Each job on a pool of one thread of its
                                // own, as `cfmem run` trains its jobs.
                                let pool =
                                    rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
                                let jobs = [job];
                                let ensemble = Ensemble::new(model, train, data, &jobs);
                                Ok(pool.install(|| steady_rate(&ensemble, train.batch_size))?.0)
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().map_err(|_| anyhow::anyhow!("worker panicked"))?)
                        .collect()
                })?;
                let tps: f64 = rates.iter().sum();
                let frac = tps * model.train_flops_per_token() / (peak(precision, 2) * 1e9);
                println!(
                    "train d_model={} n_layer={} ctx={} batch={batch} k=2 jobs=2 threads=1 precision={precision} tokens_per_s={tps:.0} peak_fraction={frac:.3}",
                    model.d_model, model.n_layer, model.ctx
                );
            }
            for &k in ks {
                for threads in 1..=cores.min(2) {
                    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
                    let train = TrainConfig {
                        epochs,
                        batch_size: *batch,
                        precision,
                        ..Default::default()
                    };
                    let jobs: Vec<ModelJob> = (0..k)
                        .map(|i| ModelJob {
                            model: i,
                            subset: Subset::from_copies(&full),
                            init_seed: i as u64,
                            data_seed: i as u64,
                        })
                        .collect();
                    // On a pool of `threads` threads, as `cfmem run` trains each
                    // job (the calling thread is one of the pool's workers).
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()?;
                    let (tps, gpt) = pool.install(|| {
                        steady_rate(&Ensemble::new(model, &train, &data, &jobs), *batch)
                    })?;
                    let frac =
                        tps * model.train_flops_per_token() / (peak(precision, threads) * 1e9);
                    println!(
                        "train d_model={} n_layer={} ctx={} batch={batch} k={k} threads={threads} precision={precision} tokens_per_s={tps:.0} peak_fraction={frac:.3}",
                        model.d_model, model.n_layer, model.ctx
                    );
                    if k == 1 {
                        // The first pass warms up (faults in its buffers), as
                        // the peers leave out their first batches.
                        // On the same pool: evaluation's products and
                        // rows split over its threads.
                        let secs = pool.install(|| -> Result<f64> {
                            let _ = evaluate(&gpt, &eval_data, 64, &Device::Cpu)?;
                            let t = Instant::now();
                            let _ = evaluate(&gpt, &eval_data, 64, &Device::Cpu)?;
                            Ok(t.elapsed().as_secs_f64())
                        })?;
                        let eval_tokens = eval_data.total_targets() as f64;
                        let frac = eval_tokens / secs * model.train_flops_per_token()
                            / 3.0
                            / (peak(precision, threads) * 1e9);
                        println!(
                            "eval d_model={} n_layer={} ctx={} batch=64 k=1 threads={threads} precision={precision} tokens_per_s={:.0} peak_fraction={frac:.3}",
                            model.d_model, model.n_layer, model.ctx, eval_tokens / secs
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// `CFMEM_BENCH_PRODUCTS=1`: GFLOP/s of each matrix product a training step
/// of the d 128 and d 256 models runs outside attention, on one thread, in
/// the layouts the step uses (`benches/peer/torch_gpt.py --products` prints
/// PyTorch's in the same format): `fwd` = X·W, `dx` = dY·Wᵀ, `dw` = Xᵀ·dY,
/// with N = 32 × 128 rows.
fn products() -> Result<()> {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let n = 32 * 128;
    for d in [128usize, 256] {
        let v = 259;
        for (name, k, m) in [
            ("qkv", d, 3 * d),
            ("out", d, d),
            ("fc", d, 4 * d),
            ("proj", 4 * d, d),
            ("head", d, v),
        ] {
            let x = Tensor::randn(0f32, 1.0, (1, n, k), &Device::Cpu)?;
            let w = Tensor::randn(0f32, 1.0, (1, k, m), &Device::Cpu)?;
            let dy = Tensor::randn(0f32, 1.0, (1, n, m), &Device::Cpu)?;
            let xt = x.t()?;
            let wt = w.t()?;
            let runs: [(&str, &Tensor, &Tensor); 3] =
                [("fwd", &x, &w), ("dx", &dy, &wt), ("dw", &xt, &dy)];
            for (dir, a, b) in runs {
                let mut best = f64::MAX;
                for _ in 0..6 {
                    let t = Instant::now();
                    let c = a.matmul(b)?;
                    let _ = c.flatten_all()?.get(0)?.to_scalar::<f32>()?;
                    best = best.min(t.elapsed().as_secs_f64());
                }
                let gflops = 2.0 * (n * k * m) as f64 / best / 1e9;
                println!("product d_model={d} {name} {dir} n={n} k={k} m={m} gflops={gflops:.1}");
            }
        }
    }
    Ok(())
}
