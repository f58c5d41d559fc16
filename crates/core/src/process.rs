//! Process-wide settings for training, made once by a program at start-up.
//!
//! candle and the allocator read a few process-wide settings: candle's
//! matrix products take their thread count from `RAYON_NUM_THREADS` on every
//! product, candle's element-wise worker pool is sized from
//! `CANDLE_NUM_THREADS` the first time it runs, and mimalloc returns freed
//! memory to the OS after a delay. A library must not change such state
//! behind its user's back (setting an environment variable is sound only
//! while no other thread reads the environment), so cfmem's library code
//! never does: a program calls [`settle_process`] once, first thing in
//! `main`, as the `cfmem` binary, the examples and the benchmarks do.

/// Settle the process for training. Call it once, at the start of `main`,
/// before any thread starts; `set_env` sets one environment variable (pass
/// `|k, v| std::env::set_var(k, v)`), so that the process's environment is
/// changed at the call site, in the program, not inside the library.
///
/// | setting | value | why |
/// |---|---|---|
/// | `RAYON_NUM_THREADS` | `matmul_threads`, when given | candle's matrix products split over this many threads, read on every product; give the per-job thread count (`cfmem run --threads`), or `None` to keep candle's default (the cores) |
/// | `CANDLE_NUM_THREADS` | `1`, unless set | candle 0.11 runs some element-wise operations on a persistent pool of spinning threads sized from it the first time one runs (else from `RAYON_NUM_THREADS`, else the cores) and never resized. cfmem spreads work over models and its own kernels' threads instead; a process whose first candle operation ran with every core (pretraining before an experiment) otherwise keeps a worker spinning beside its jobs: the fine-tuning study trained ≈ 2.6× slower that way (14.5 s against 5.6 s per model). Element-wise results do not depend on the split |
/// | mimalloc's purge delay | `−1`, unless `MIMALLOC_PURGE_DELAY` is set | see below |
///
/// A training step frees and allocates the same few hundred MB of tensors
/// (candle allocates every result, zeroed); by default mimalloc hands freed
/// pages back after a delay and the next step faults them in again, which
/// the kernel clears page by page. At d 128 on 2 threads this took 62,892
/// page faults over a 2-epoch run and 633 with the purge off, ≈ 6 % of the
/// run's time. The memory kept is the largest a step needed, which training
/// needs again at the next step anyway. This affects the process's mimalloc
/// when it is the global allocator (the `cfmem` binary, the examples and
/// benchmarks); otherwise it sets an option of an allocator nothing uses.
///
/// None of these settings changes a record: results do not depend on thread
/// counts or on the allocator.
///
/// ```
/// cfmem_core::settle_process(Some(1), |k, v| std::env::set_var(k, v));
/// assert_eq!(cfmem_core::matmul_threads(), 1);
/// ```
pub fn settle_process(matmul_threads: Option<usize>, mut set_env: impl FnMut(&str, &str)) {
    if let Some(t) = matmul_threads {
        set_env("RAYON_NUM_THREADS", &t.max(1).to_string());
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        set_env("CANDLE_NUM_THREADS", "1");
    }
    keep_freed_memory();
}

/// The number of threads candle's matrix products split over: candle reads
/// it from `RAYON_NUM_THREADS` on every product (else the cores).
pub fn matmul_threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t`
/// (`include/mimalloc.h` of the mimalloc that `libmimalloc-sys` 0.1.49
/// builds), which `libmimalloc-sys` does not name; `tests/allocator.rs`
/// checks it against the option's default (1000 ms).
const MIMALLOC_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's purge delay to −1 (never return freed memory to the OS),
/// unless `MIMALLOC_PURGE_DELAY` is set.
///
/// The workspace's one `unsafe` outside the tests (its lints deny it
/// elsewhere): mimalloc's options have no safe API, and the environment
/// variable is read when the process starts, before `main` could set it.
#[allow(unsafe_code)]
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores a value in mimalloc's option
        // table (atomically); it takes any option index and value.
        unsafe { libmimalloc_sys::mi_option_set(MIMALLOC_PURGE_DELAY, -1) }
    }
}
