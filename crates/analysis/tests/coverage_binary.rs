//! Intervals for a 0/1 metric (extraction) cover at the boundary.
//!
//! Student t on 0/1 scores gives a zero-width interval whenever every model
//! on each side scores the same, which happens most of the time when
//! P(extractable) is near 0 or 1 on a side; at 8 models such intervals
//! cover far less than 95 %. cfmem's MOVER interval (Clopper–Pearson
//! bounds) must cover in
//! at least 93 % of 2,000 replications (one per document) for P(in),
//! P(out) in {0, 0.02, 0.5, 0.98, 1}, at 8, 16 and 32 models, for
//! independent models and for blocks of two whose partners' scores are
//! uncorrelated, positively or negatively correlated.

use cfmem_analysis::{welch, MemAccumulator, Metric, RunningStats};
use cfmem_hash::{hash_words, unit_f64};

const REPS: usize = 2000;
const P: [f64; 5] = [0.0, 0.02, 0.5, 0.98, 1.0];

/// A uniform draw for (replication, model, stream) within one cell.
fn u(cell: u64, rep: usize, model: usize, stream: u64) -> f64 {
    unit_f64(hash_words(&[cell, rep as u64, model as u64, stream]))
}

/// One cell's rows: `n_models` models, one document per replication.
/// With `blocks`, models `2k` and `2k + 1` are partners: one includes the
/// document, the other does not, and with probability `|rho|` the
/// out-partner's draw is the in-partner's (or its mirror, for `rho < 0`).
fn cell_rows(
    cell: u64,
    n_models: usize,
    p_in: f64,
    p_out: f64,
    blocks: bool,
    rho: f64,
) -> Vec<(Vec<u32>, Vec<f64>)> {
    (0..n_models)
        .map(|i| {
            let mut copies = vec![0u32; REPS];
            let mut scores = vec![0f64; REPS];
            for d in 0..REPS {
                let (inn, own, shared) = if blocks {
                    let k = i / 2;
                    let in_model = 2 * k + (d + k) % 2;
                    let shared = u(cell, d, k, 1);
                    (i == in_model, u(cell, d, i, 2), shared)
                } else {
                    ((i + d) % 2 == 0, u(cell, d, i, 2), 0.0)
                };
                let draw = if !blocks || inn {
                    if blocks {
                        shared
                    } else {
                        own
                    }
                } else if u(cell, d, i, 3) < rho.abs() {
                    if rho < 0.0 {
                        1.0 - shared
                    } else {
                        shared
                    }
                } else {
                    own
                };
                copies[d] = u32::from(inn);
                scores[d] = f64::from(u8::from(draw < if inn { p_in } else { p_out }));
            }
            (copies, scores)
        })
        .collect()
}

fn coverage(rows: &[(Vec<u32>, Vec<f64>)], truth: f64, blocks: bool) -> (f64, f64) {
    let mut acc = MemAccumulator::new(REPS, Metric::Extraction).blocks(if blocks { 2 } else { 1 });
    for (c, s) in rows {
        acc.add(c, s).unwrap();
    }
    let covers = |lo: f64, hi: f64| lo <= truth + 1e-12 && truth <= hi + 1e-12;
    let est = acc.finish();
    let ours = est
        .iter()
        .filter(|e| covers(e.ci_low.unwrap(), e.ci_high.unwrap()))
        .count();
    // Student t (Welch) on the same scores, for comparison.
    let mut student = 0;
    for d in 0..REPS {
        let (mut i, mut o) = (RunningStats::default(), RunningStats::default());
        for (c, s) in rows {
            if c[d] > 0 {
                i.push(s[d])
            } else {
                o.push(s[d])
            }
        }
        let w = welch(&i, &o, 0.95).unwrap();
        student += usize::from(covers(w.ci_low, w.ci_high));
    }
    (ours as f64 / REPS as f64, student as f64 / REPS as f64)
}

#[test]
fn binary_intervals_cover_at_the_boundary() {
    let mut worst_student: f64 = 1.0;
    let (mut lowest, mut highest): (f64, f64) = (1.0, 0.0);
    let mut failures = Vec::new();
    let mut cell = 0u64;
    for (blocks, rho) in [(false, 0.0), (true, 0.0), (true, 0.6), (true, -0.6)] {
        for n_models in [8, 16, 32] {
            for &p_in in &P {
                for &p_out in &P {
                    cell += 1;
                    let rows = cell_rows(cell, n_models, p_in, p_out, blocks, rho);
                    let (ours, student) = coverage(&rows, p_in - p_out, blocks);
                    worst_student = worst_student.min(student);
                    lowest = lowest.min(ours);
                    highest = highest.max(ours);
                    if ours < 0.93 {
                        failures.push(format!(
                            "blocks {blocks} rho {rho} models {n_models} p_in {p_in} p_out {p_out}: {ours:.3}"
                        ));
                    }
                }
            }
        }
    }
    eprintln!("coverage from {lowest:.3} to {highest:.3}; Student t's worst {worst_student:.3}");
    assert!(
        failures.is_empty(),
        "under-covering cells:\n{}",
        failures.join("\n")
    );
    // What the interval replaces: Student t collapses and under-covers.
    assert!(
        worst_student < 0.85,
        "Student t's worst coverage {worst_student}"
    );
}
