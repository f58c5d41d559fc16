//! Device selection.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeviceChoice {
    /// The CPU.
    #[default]
    Cpu,
    /// CUDA device 0 (needs the `cuda` feature).
    Cuda,
    /// CUDA if compiled in and present, else the CPU.
    Auto,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            "auto" => Ok(Self::Auto),
            o => Err(format!("unknown device {o:?} (expected cpu, cuda or auto)")),
        }
    }
}

/// The candle device for a choice.
///
/// # Errors
/// [`Error::Config`] when CUDA is asked for and unavailable.
pub fn select_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda => Device::new_cuda(0).map_err(|e| {
            Error::Config(format!(
                "CUDA device 0 is not available ({e}); build with --features cuda"
            ))
        }),
        DeviceChoice::Auto => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
    }
}

/// Process-wide settings for training, once per process: candle's
/// element-wise worker pool kept empty (unless `CANDLE_NUM_THREADS` is set)
/// and freed memory kept in the process ([`keep_freed_memory`]). Called by
/// the model constructors, so it runs before any training or evaluation.
///
/// candle 0.11 runs some element-wise operations on a persistent pool of
/// spinning worker threads (`candle-bp-N`), sized from `CANDLE_NUM_THREADS`
/// (else `RAYON_NUM_THREADS`, else the cores) the first time one runs, and
/// never resized. cfmem spreads work over models (one job per core) and
/// over its own kernels' threads instead; a process whose first candle
/// operation ran with every core (e.g. pretraining a base model before an
/// experiment) otherwise keeps a worker spinning beside its jobs: the
/// fine-tuning study trained ≈ 2.6× slower that way (14.5 s against 5.6 s
/// per model). Element-wise results do not depend on the split.
pub(crate) fn settle_process() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            std::env::set_var("CANDLE_NUM_THREADS", "1");
        }
        keep_freed_memory();
    });
}

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t`
/// (`include/mimalloc.h` of the mimalloc that `libmimalloc-sys` 0.1.49
/// builds), which `libmimalloc-sys` does not name; `tests/allocator.rs`
/// checks it against the option's default (1000 ms).
const MIMALLOC_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tell mimalloc never to return freed memory to the OS (its purge delay
/// to −1), unless `MIMALLOC_PURGE_DELAY` is set.
///
/// A training step frees and allocates the same few hundred MB of tensors
/// (candle allocates every result, zeroed); by default mimalloc hands freed
/// pages back after a delay and the next step faults them in again, which
/// the kernel clears page by page. At d 128 on 2 threads this took
/// 62,892 page faults over a 2-epoch run and 633 with the purge off,
/// ≈ 6 % of the run's time, more with one model per core in one process
/// (the page faults of both jobs queue on the process's memory map). The
/// memory kept is the largest a step needed, which training needs again at
/// the next step anyway.
///
/// Affects the process's mimalloc when it is the global allocator (the
/// `cfmem` binary, the examples and benchmarks); otherwise it sets an option
/// of an allocator nothing uses.
///
/// The workspace's one `unsafe` outside tests (its lints deny it
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

/// TF32 matrix products on CUDA (`on`), or full f32 (the default): tensors,
/// weights and the optimizer stay f32; each product rounds its inputs to
/// TF32's 10-bit mantissa on the tensor cores (≈ 7× the f32 peak on an
/// H100). Process-wide; no effect on the CPU.
pub fn set_tf32(on: bool) {
    candle_core::cuda::set_gemm_reduced_precision_f32(on);
}
