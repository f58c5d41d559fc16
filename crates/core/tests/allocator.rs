//! Building a model turns mimalloc's purging of freed memory off
//! (`device::keep_freed_memory`), through an option index that
//! `libmimalloc-sys` does not name: check that the index is the purge delay.
#![allow(unsafe_code)]

use cfmem_core::{DType, Device, Gpt, ModelConfig};

/// `mi_option_purge_delay` (the position in mimalloc 3's `mi_option_t`).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn purge_delay() -> std::os::raw::c_long {
    // SAFETY: reads mimalloc's option table; any index is accepted.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

#[test]
fn building_a_model_keeps_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        eprintln!("MIMALLOC_PURGE_DELAY is set; cfmem leaves the option alone");
        return;
    }
    // mimalloc 3's default purge delay (src/options.c): 1000 ms. Any other
    // value here means the index names another option.
    assert_eq!(purge_delay(), 1000);
    Gpt::new(&ModelConfig::tiny(), &[1], DType::F32, &Device::Cpu).unwrap();
    assert_eq!(purge_delay(), -1);
}
