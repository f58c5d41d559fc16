//! Training throughput of a Pythia-14m-shaped model (GPT-NeoX: d 128,
//! 6 blocks, 4 heads, MLP 512, vocabulary 50,304, untied head, rotary on a
//! quarter of each head, parallel residual), fine-tuned in full and with
//! LoRA (rank 8 on every attention and MLP projection), beside the same
//! widths in GPT-2 (the native step), as tokens/s and as a fraction of the
//! machine's matrix-product peak measured in the same run.
//!
//! ```text
//! cargo bench --bench families
//! CFMEM_BENCH_QUICK=1 cargo bench --bench families   # fewer steps
//! .venv-peer/bin/python benches/peer/torch_families.py   # the same in PyTorch
//! ```
//! Context 128, 16 windows per step, one model, on 1 and 2 threads; timed
//! over the steps after the first two. One line per arrangement:
//! `train family=gpt_neox method=full d_model=128 n_layer=6 vocab=50304 ctx=128 batch=16 threads=T tokens_per_s=N peak_fraction=F`.
//! A full step's products are 3 × the forward's FLOPs; LoRA's are 2 × (no
//! weight gradients for the base; the adapters' own products, under 1 %,
//! left out).

mod common;

use anyhow::Result;
use cfmem::engine::{
    Arch, ByteTokenizer, Checkpoint, Corpus, DType, Device, Ensemble, Gpt, LoadConfig, Lora,
    ModelConfig, ModelJob, NeoXConfig, Subset, TokenizedCorpus, TrainConfig,
};
use common::{peak_gflops, steady_rate};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Pythia-14m's shape (its `config.json`), at context 128.
fn pythia_14m() -> ModelConfig {
    ModelConfig {
        vocab_size: 50_304,
        d_model: 128,
        n_layer: 6,
        n_head: 4,
        d_ff: 512,
        ctx: 128,
        tie_embeddings: false,
        init_std: 0.02,
        arch: Arch::NeoX(NeoXConfig::default()),
    }
}

fn main() -> Result<()> {
    cfmem::engine::settle_process(None, |k, v| std::env::set_var(k, v));
    let quick = std::env::var("CFMEM_BENCH_QUICK").is_ok();
    let corpus = Corpus::load(
        concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/devil.jsonl"),
        &LoadConfig::default(),
    )?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let threads: Vec<usize> = (1..=cores.min(2)).collect();
    let peaks: Vec<f64> = threads
        .iter()
        .map(|&t| peak_gflops(t))
        .collect::<Result<_>>()?;
    for (t, p) in threads.iter().zip(&peaks) {
        println!("peak threads={t} gflops={p:.1}");
    }
    let neox = pythia_14m();
    let gpt2 = ModelConfig {
        tie_embeddings: true,
        arch: Arch::Gpt2,
        ..neox.clone()
    };
    let batch: usize = 16;
    let steps = if quick { 6 } else { 12 };
    let data = TokenizedCorpus::new(&corpus, &ByteTokenizer, neox.ctx)?;
    let (full, per_epoch) = common::full_windows(&data, neox.ctx);
    let epochs = (steps * batch).div_ceil(per_epoch.max(1)).max(1);
    // LoRA's base: a random Pythia-14m-shaped model on disk.
    let dir = tempfile::tempdir()?;
    let base_path = dir.path().join("base.safetensors");
    Checkpoint::save(
        &Gpt::new(&neox, &[7], DType::F32, &Device::Cpu)?,
        0,
        &base_path,
    )?;
    let base = Checkpoint::load(&base_path)?;
    let lora = Lora::parse("8:16")?;
    let arms: [(&ModelConfig, &str, Option<&Lora>); 3] = [
        (&neox, "full", None),
        (&neox, "lora8", Some(&lora)),
        (&gpt2, "full", None),
    ];
    for (model, method, adapters) in arms {
        for (&t, &peak) in threads.iter().zip(&peaks) {
            std::env::set_var("RAYON_NUM_THREADS", t.to_string());
            let train = TrainConfig {
                epochs,
                batch_size: batch,
                lora: adapters.cloned(),
                ..Default::default()
            };
            let jobs = [ModelJob {
                model: 0,
                subset: Subset::from_copies(&full),
                init_seed: 1,
                data_seed: 1,
            }];
            let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build()?;
            let mut ensemble = Ensemble::new(model, &train, &data, &jobs);
            if adapters.is_some() {
                ensemble = ensemble.init(&base);
            }
            let tps = pool.install(|| steady_rate(&ensemble, batch))?.0;
            let passes = if adapters.is_some() { 2.0 } else { 3.0 };
            let flops = model.train_flops_per_token() / 3.0 * passes;
            let frac = tps * flops / (peak * 1e9);
            println!(
                "train family={} method={method} d_model={} n_layer={} vocab={} ctx={} batch={batch} threads={t} tokens_per_s={tps:.0} peak_fraction={frac:.3}",
                model.arch.name(),
                model.d_model,
                model.n_layer,
                model.vocab_size,
                model.ctx
            );
        }
    }
    Ok(())
}
