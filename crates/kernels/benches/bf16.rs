//! bf16 products against the fp32 ones candle runs (the gemm crate with
//! its AVX-512 kernels), at the shapes of a training step and at 2048³,
//! measured side by side in one run.
//!
//! ```text
//! cargo bench -p cfmem-kernels --bench bf16
//! CFMEM_BENCH_QUICK=1 cargo bench -p cfmem-kernels --bench bf16
//! ```
//! Lines `peak m=2048 k=2048 n=2048 threads=T f32_gflops=.. bf16_gflops=..
//! bf16_kernel_gflops=..`, then one per product of a training step on one
//! thread, `product d_model=128 qkv fwd n=4096 k=128 m=384 f32_gflops=..
//! bf16_gflops=.. bf16_kernel_gflops=.. ratio=..`, where `bf16_gflops`
//! rounds and packs both fp32 operands inside the timing (what PyTorch's
//! autocast pays in casts) and `bf16_kernel_gflops` times the product of
//! operands packed before (PyTorch's bf16 tensors).

use std::time::Instant;

use cfmem_kernels::{gemm, Engine, MatRef, PackedA, PackedB};

fn f32_product(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], threads: usize) {
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: a is m × k, b k × n and c m × n, all row-major and of those
    // lengths (asserted), so every element the strides reach is inside.
    assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        )
    }
}

/// Best seconds of `reps` runs of `f`.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

/// fp32 (the gemm crate, as candle runs it), bf16 with both operands
/// packed inside the timing, and the bf16 kernel alone on packed
/// operands: GFLOP/s of `A·B` for `A` `m × k` and `B` `k × n` views.
fn measure(a: MatRef<'_>, b: MatRef<'_>, threads: usize, reps: usize) -> (f64, f64, f64) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    // The fp32 product wants contiguous row-major operands: copies, made
    // outside the timing (candle's kernel reads strided views as fast).
    let dense = |v: MatRef<'_>| -> Vec<f32> {
        (0..v.rows() * v.cols())
            .map(|e| v.at(e / v.cols(), e % v.cols()))
            .collect()
    };
    let (ad, bd) = (dense(a), dense(b));
    let mut c = vec![0.0f32; m * n];
    let engine = Engine::detect();
    let flops = 2.0 * (m * n * k) as f64;
    let t32 = best(reps, || f32_product(m, k, n, &ad, &bd, &mut c, threads));
    let t16 = best(reps, || {
        let (pa, pb) = (PackedA::pack_with(a, threads), PackedB::pack(b));
        gemm(engine, &pa, &pb, &mut c, n, false, threads).unwrap();
    });
    let (pa, pb) = (PackedA::pack_with(a, threads), PackedB::pack(b));
    let tk = best(reps, || {
        gemm(engine, &pa, &pb, &mut c, n, false, threads).unwrap();
    });
    (flops / t32 / 1e9, flops / t16 / 1e9, flops / tk / 1e9)
}

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

fn main() {
    let quick = std::env::var("CFMEM_BENCH_QUICK").is_ok();
    let engine = Engine::detect();
    println!("engine {engine}");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores.min(2))
        .build_global()
        .ok();
    let reps = if quick { 3 } else { 6 };
    if std::env::var("CFMEM_BENCH_LAYOUTS").is_ok() {
        return layouts(reps);
    }
    // The square ceiling on 1 and 2 threads.
    for threads in 1..=cores.min(2) {
        let x = values(2048 * 2048, 1);
        let v = MatRef::row_major(&x, 2048, 2048).unwrap();
        let (f32g, bf16g, kernel) = measure(v, v, threads, reps);
        println!(
            "peak m=2048 k=2048 n=2048 threads={threads} f32_gflops={f32g:.1} bf16_gflops={bf16g:.1} bf16_kernel_gflops={kernel:.1}"
        );
    }
    // Each product of a training step outside attention, one thread, as
    // `benches/peer/torch_gpt.py --products --bf16` times PyTorch's: 32
    // windows of 128 tokens; `fwd` = X·W, `dx` = dY·Wᵀ, `dw` = Xᵀ·dY
    // (transposed views, packed as they are).
    let n = 32 * 128;
    let widths: &[usize] = if quick { &[128] } else { &[128, 256] };
    for &d in widths {
        for (name, k, m) in [
            ("qkv", d, 3 * d),
            ("out", d, d),
            ("fc", d, 4 * d),
            ("proj", 4 * d, d),
            ("head", d, 259),
        ] {
            let (x, w, dy) = (values(n * k, 2), values(k * m, 3), values(n * m, 4));
            let x = MatRef::row_major(&x, n, k).unwrap();
            let w = MatRef::row_major(&w, k, m).unwrap();
            let dy = MatRef::row_major(&dy, n, m).unwrap();
            for (dir, a, b) in [("fwd", x, w), ("dx", dy, w.t()), ("dw", x.t(), dy)] {
                let (f32g, bf16g, kernel) = measure(a, b, 1, reps);
                println!(
                    "product d_model={d} {name} {dir} n={n} k={k} m={m} f32_gflops={f32g:.1} bf16_gflops={bf16g:.1} bf16_kernel_gflops={kernel:.1} ratio={:.2}",
                    bf16g / f32g
                );
            }
        }
    }
}

/// `CFMEM_BENCH_LAYOUTS=1`: the kernel on one `A` in its two layouts (rows
/// as converted from a row-major view, panels as spread from a transposed
/// copy), interleaved, best of five rounds, one thread.
fn layouts(reps: usize) {
    let engine = Engine::detect();
    let n = 32 * 128;
    for (k, m) in [
        (128, 384),
        (128, 128),
        (128, 512),
        (512, 128),
        (256, 768),
        (1024, 256),
    ] {
        let x = values(n * k, 2);
        let xt: Vec<f32> = (0..n * k).map(|i| x[(i % n) * k + i / n]).collect();
        let w = values(k * m, 3);
        let rows = PackedA::pack(MatRef::row_major(&x, n, k).unwrap());
        let panels = PackedA::pack(MatRef::row_major(&xt, k, n).unwrap().t());
        let pb = PackedB::pack(MatRef::row_major(&w, k, m).unwrap());
        let mut c = vec![0.0f32; n * m];
        let flops = 2.0 * (n * k * m) as f64;
        let (mut tr, mut tp) = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            tr = tr.min(best(reps, || {
                gemm(engine, &rows, &pb, &mut c, m, false, 1).unwrap()
            }));
            tp = tp.min(best(reps, || {
                gemm(engine, &panels, &pb, &mut c, m, false, 1).unwrap()
            }));
        }
        println!(
            "layout n={n} k={k} m={m} rows_gflops={:.1} panels_gflops={:.1}",
            flops / tr / 1e9,
            flops / tp / 1e9
        );
    }
}
