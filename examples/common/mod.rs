#![allow(dead_code)] // each example uses a part of these helpers
//! Shared by the examples: a progress line per trained model, the output
//! directory, and the verdict wording.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cfmem::sched::Observer;

/// Prints one line per trained model.
pub struct Progress {
    done: AtomicUsize,
    start: Instant,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            done: AtomicUsize::new(0),
            start: Instant::now(),
        }
    }
}

impl Observer for Progress {
    fn start(&self, pending: usize, done: usize) {
        if pending > 0 {
            println!("  {pending} models to train ({done} already done)");
        }
    }
    fn model_done(&self, model: usize, seconds: f64, tokens: u64) {
        let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if n.is_multiple_of(8) {
            println!(
                "  model {model:>3} trained ({seconds:.1} s, {:.0} tokens/s); {n} this run, {:.0} s elapsed",
                tokens as f64 / seconds.max(1e-9),
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

/// `target/cfmem-examples/NAME`, created.
pub fn out_dir(name: &str) -> std::io::Result<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/cfmem-examples"
    ))
    .join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// "holds" / "does not hold".
pub fn verdict(holds: bool) -> &'static str {
    if holds {
        "HOLDS (the 95% interval excludes 0 in the predicted direction)"
    } else {
        "DOES NOT HOLD at 95% (the interval reaches 0 or the other side)"
    }
}

/// `0.123 [0.100, 0.146]`.
pub fn ci(mean: f64, (lo, hi): (f64, f64)) -> String {
    format!("{mean:.4} [{lo:.4}, {hi:.4}]")
}
