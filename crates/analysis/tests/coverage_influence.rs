//! Influence winners get honest intervals from held-out models.
//!
//! No unit influences any document (30 documents, 32 models in blocks of
//! two, the synthetic model's noise only), so every pair's influence is 0.
//! Each query's most influential unit is the largest of 29 noisy
//! estimates: the selection's own 95 % interval of that winner covers 0
//! far less often than 95 %. Re-estimated on the models the selection did
//! not use (odd blocks), the winners' intervals must cover 0 in 93–97 % of
//! 2,000 replications × 30 queries.

use cfmem_analysis::{influence, DesignConfig, InfluenceConfig, Metric, Synthetic};
use statrs::distribution::{ContinuousCDF, StudentsT};

const REPS: u64 = 2000;

#[test]
fn held_out_winners_cover_and_selected_ones_do_not() {
    let (mut held, mut selected, mut n) = (0u64, 0u64, 0u64);
    for rep in 0..REPS {
        let src = Synthetic::new(DesignConfig::blocks(2, 90_000 + rep), 32, vec![0.1; 30])
            .noise(0.05)
            .model_sd(0.02)
            .seed(rep);
        let cfg = InfluenceConfig {
            metric: Metric::Accuracy,
            k: 1,
            ..InfluenceConfig::default()
        };
        let r = influence(&src, &cfg).unwrap();
        assert_eq!((r.influence.n_models, r.influence.n_held_out), (16, 16));
        for list in &r.influence.top_units {
            let e = list[0];
            // No held-out interval when one held-out model, or none, is on
            // a side (the 8 that lack the query split by the unit as a
            // binomial: 7 % of winners).
            let Some(h) = e.held_out.filter(|h| h.se.is_finite()) else {
                continue;
            };
            held += u64::from(h.ci_low <= 0.0 && 0.0 <= h.ci_high);
            // The selection's own interval (Welch's error; t on 6 df, the
            // out-models of the query split by the unit, is generous).
            let t = StudentsT::new(0.0, 1.0, 6.0).unwrap().inverse_cdf(0.975);
            selected += u64::from((e.infl - t * e.se) <= 0.0);
            n += 1;
        }
    }
    assert!(n > 54_000, "{n} winners with a held-out interval");
    let (h, s) = (held as f64 / n as f64, selected as f64 / n as f64);
    eprintln!("winners' intervals cover 0: held out {h:.3}, selection's own {s:.3}");
    assert!((0.93..=0.97).contains(&h), "held out {h}");
    assert!(s < 0.8, "selection's own {s}");
}
