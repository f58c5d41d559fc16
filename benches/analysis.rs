//! Scale of the analysis: memorization estimates and blocked top-k
//! influence on synthetic records, with time and peak memory.
//!
//! ```text
//! cargo bench --bench analysis                 # 1,000 models × 10,000 documents × 10,000 queries
//! CFMEM_BENCH_QUICK=1 cargo bench --bench analysis   # 200 × 2,000 × 2,000
//! ```
//! Rows are generated on the fly (a hash of model and document), as a
//! stream of records would arrive, so memory shows what the estimators keep.

mod common;

use std::time::Instant;

use anyhow::Result;
use cfmem::analysis::{
    influence_stream, DesignConfig, InfluenceConfig, InfluenceOn, MemAccumulator, Metric,
};
use cfmem::hash::{hash_words, unit_f64};
use common::peak_mib;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn score(model: usize, doc: usize, included: bool) -> f64 {
    0.3 + 0.1 * unit_f64(hash_words(&[model as u64, doc as u64]))
        + if included { 0.05 } else { 0.0 }
}

fn main() -> Result<()> {
    let quick = std::env::var("CFMEM_BENCH_QUICK").is_ok();
    let (n_models, n_docs, n_queries) = if quick {
        (200, 2_000, 2_000)
    } else {
        (1_000, 10_000, 10_000)
    };
    let design = DesignConfig::blocks(2, 0).checked()?;

    let t = Instant::now();
    let mut acc = MemAccumulator::new(n_docs, Metric::Accuracy);
    let mut scores = vec![0f64; n_docs];
    for i in 0..n_models {
        let copies = design.row(i, n_docs);
        for d in 0..n_docs {
            scores[d] = score(i, d, copies[d] > 0);
        }
        acc.add(&copies, &scores)?;
    }
    let est = acc.finish();
    let mean_mem = est.iter().filter_map(|e| e.mem).sum::<f64>() / n_docs as f64;
    println!(
        "mem models={n_models} docs={n_docs} seconds={:.2} peak_mib={:.0} mean_mem={mean_mem:.4}",
        t.elapsed().as_secs_f64(),
        peak_mib()
    );

    let t = Instant::now();
    let rows: Vec<Vec<u32>> = (0..n_models).map(|i| design.row(i, n_docs)).collect();
    let cfg = InfluenceConfig {
        k: 10,
        on: InfluenceOn::Queries,
        ..Default::default()
    };
    let mut passes = 0;
    let inf = influence_stream(n_docs, n_queries, &cfg, |q0, nq, visit| {
        passes += 1;
        let mut s = vec![0f64; nq];
        for (i, copies) in rows.iter().enumerate() {
            for (q, x) in s.iter_mut().enumerate() {
                // Query q is helped by training document q (a planted pair).
                *x = score(i, n_docs + q0 + q, copies[(q0 + q) % n_docs] > 0);
            }
            visit(copies, &s)?;
        }
        Ok(())
    })?;
    let found = (0..n_queries)
        .filter(|&q| inf.top_units[q][0].unit == q % n_docs)
        .count();
    println!(
        "influence models={n_models} units={n_docs} queries={n_queries} k=10 passes={passes} seconds={:.1} peak_mib={:.0} planted_pair_top1={found}/{n_queries}",
        t.elapsed().as_secs_f64(),
        peak_mib()
    );
    Ok(())
}
