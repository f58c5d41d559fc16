//! `settle_process` turns mimalloc's purging of freed memory off, through
//! an option index that `libmimalloc-sys` does not name: check that the
//! index is the purge delay, and that building a model alone changes nothing
//! process-wide.
#![allow(unsafe_code)]

use cfmem_core::{settle_process, DType, Device, Gpt, ModelConfig};

/// `mi_option_purge_delay` (the position in mimalloc 3's `mi_option_t`).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn purge_delay() -> std::os::raw::c_long {
    // SAFETY: reads mimalloc's option table; any index is accepted.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

#[test]
fn settling_the_process_keeps_freed_memory_and_building_a_model_does_not() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        eprintln!("MIMALLOC_PURGE_DELAY is set; cfmem leaves the option alone");
        return;
    }
    let candle_threads = std::env::var_os("CANDLE_NUM_THREADS");
    // mimalloc 3's default purge delay (src/options.c): 1000 ms. Any other
    // value here means the index names another option.
    assert_eq!(purge_delay(), 1000);
    Gpt::new(&ModelConfig::tiny(), &[1], DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        purge_delay(),
        1000,
        "a model constructor changed the allocator"
    );
    assert_eq!(std::env::var_os("CANDLE_NUM_THREADS"), candle_threads);
    let mut set = Vec::new();
    settle_process(Some(3), |k, v| set.push((k.to_string(), v.to_string())));
    assert_eq!(purge_delay(), -1);
    assert_eq!(set[0], ("RAYON_NUM_THREADS".to_string(), "3".to_string()));
    assert_eq!(
        set.iter().any(|(k, _)| k == "CANDLE_NUM_THREADS"),
        candle_threads.is_none()
    );
}
