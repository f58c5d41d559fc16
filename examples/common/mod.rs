#![allow(dead_code)] // each example uses a part of these helpers
//! Shared by the examples: the progress printer, the output directory, and
//! the wording of verdicts and intervals.

use std::path::PathBuf;

use cfmem::analysis::{MeanCi, Welch};
use cfmem::sched::PrintProgress;

/// A line every 8 trained models.
pub fn progress() -> PrintProgress {
    PrintProgress::every(8)
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

/// A mean with its interval.
pub fn mean_ci(m: &MeanCi) -> String {
    ci(m.mean, (m.ci_low, m.ci_high))
}

/// A difference with its interval.
pub fn diff_ci(w: &Welch) -> String {
    ci(w.diff, (w.ci_low, w.ci_high))
}
