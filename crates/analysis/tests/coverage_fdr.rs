//! "Memorized" counts at a stated false discovery rate: with 160 documents
//! no model memorizes and 40 that every in-model memorizes by 0.1, from
//! 16 models in blocks of two (with model effects and noise), 2,000
//! replications. Calling a document memorized when its Benjamini–Hochberg
//! q-value is at most 0.05 keeps the false discovery proportion at or
//! below 0.05 on average; calling it memorized when its 95 % interval lies
//! above 0 (what the counts were before) does not.

use cfmem_analysis::{report, DesignConfig, ReportConfig, Synthetic};

const REPS: u64 = 2000;
const NULL: usize = 160;
const REAL: usize = 40;

#[test]
fn discoveries_keep_their_false_discovery_rate() {
    let mem: Vec<f64> = (0..NULL + REAL)
        .map(|d| if d < NULL { 0.0 } else { 0.1 })
        .collect();
    let (mut fdp, mut fdp_uncorrected, mut found) = (0.0, 0.0, 0usize);
    for rep in 0..REPS {
        let design = DesignConfig::blocks(2, 10_000 + rep);
        let src = Synthetic::new(design, 16, mem.clone())
            .noise(0.05)
            .model_sd(0.03)
            .seed(rep);
        let r = report(&src, &ReportConfig::default()).unwrap();
        let q = r.q_values();
        let (mut false_hits, mut hits) = (0usize, 0usize);
        let (mut false_above, mut above) = (0usize, 0usize);
        for (d, doc) in r.docs.iter().enumerate() {
            if q[d].is_some_and(|q| q <= 0.05) {
                hits += 1;
                false_hits += usize::from(d < NULL);
            }
            if doc.estimate.ci_low.is_some_and(|l| l > 0.0) {
                above += 1;
                false_above += usize::from(d < NULL);
            }
        }
        assert_eq!(hits, r.discoveries(0.05));
        found += hits - false_hits;
        fdp += false_hits as f64 / hits.max(1) as f64;
        fdp_uncorrected += false_above as f64 / above.max(1) as f64;
    }
    let (fdp, fdp_uncorrected) = (fdp / REPS as f64, fdp_uncorrected / REPS as f64);
    let power = found as f64 / (REPS as usize * REAL) as f64;
    eprintln!("mean FDP {fdp:.4} (uncorrected {fdp_uncorrected:.4}); power {power:.3}");
    // BH: E[FDP] ≤ 0.05 · 160/200 = 0.04; the replication mean's SE is
    // below 0.002.
    assert!(fdp <= 0.05, "mean false discovery proportion {fdp}");
    assert!(fdp_uncorrected > 0.05, "uncorrected {fdp_uncorrected}");
    assert!(power > 0.2, "power {power}");
}
