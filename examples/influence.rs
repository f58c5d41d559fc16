//! Prediction: the most influential training documents for a held-out
//! document are its near-duplicates.
//!
//! ```text
//! cargo run --release --example influence   # ≈ 3 minutes on 2 cores
//! ```
//! 64 dictionary entries plus, for each of 16 held-out secret codes, two
//! near-duplicates in training (one hex digit changed each); 32 tiny models
//! (blocks of 2, 64 epochs) also evaluate the 16 held-out codes. Influence of
//! training document j on held-out q: the gap in q's accuracy between models
//! with and without j. Plot: `target/cfmem-examples/influence/`.

mod common;

use anyhow::Result;
use cfmem::report::plot::{plot, Chart, Labels};
use cfmem_studies::{influence, Scale};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    // One matrix-product thread per job (one job per core), set before
    // any thread starts.
    cfmem::engine::settle_process(Some(1), |k, v| std::env::set_var(k, v));
    let dir = common::out_dir("influence")?;
    println!(
        "train → held-out influence; experiment in {}",
        dir.display()
    );
    let r = influence(&dir.join("exp"), &Scale::full(), &common::progress())?;
    println!("\nheld-out query   top 3 training documents by influence (± SE)");
    for q in &r.tops {
        let list: Vec<String> = q
            .top
            .iter()
            .map(|u| format!("{} {:+.3}±{:.3}", u.id, u.infl, u.se))
            .collect();
        println!("  {:<14} {}", q.query, list.join(", "));
    }
    println!(
        "\ntop-1 is one of the query's near-duplicates: {}/{} (chance {:.3} each)",
        r.top1_is_duplicate, r.n_queries, r.chance
    );
    println!(
        "both near-duplicates in the top 3: {}/{}",
        r.both_in_top3, r.n_queries
    );
    println!(
        "mean rank of a query's near-duplicates among the {} training documents: {:.1} (chance {:.1})",
        (2.0 * r.chance_rank - 1.0).round(),
        r.mean_rank,
        r.chance_rank
    );
    // A one-sided binomial tail: P(≥ hits | chance) for the top-1 count.
    let p = binomial_tail(r.n_queries, r.top1_is_duplicate, r.chance);
    println!(
        "prediction (near-duplicates are the most influential): {} (P(≥ {} hits by chance) = {p:.2e})",
        if r.top1_is_duplicate * 2 > r.n_queries && p < 0.05 { "HOLDS" } else { "DOES NOT HOLD" },
        r.top1_is_duplicate
    );
    let groups = vec![(
        "influence of the top-3 training documents, by rank".to_string(),
        r.tops
            .iter()
            .flat_map(|q| {
                q.top
                    .iter()
                    .enumerate()
                    .map(|(k, u)| ((k + 1) as f64, u.infl))
            })
            .collect(),
    )];
    for p in plot(
        &dir.join("top-influence"),
        &Chart::Scatter { groups },
        &Labels {
            title: "Influence of each held-out code's top training documents".into(),
            x: "rank".into(),
            y: "influence (accuracy gap)".into(),
        },
    )? {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// P(X ≥ k) for X ~ Binomial(n, p), summed exactly.
fn binomial_tail(n: usize, k: usize, p: f64) -> f64 {
    let mut total = 0.0;
    for i in k..=n {
        let mut c = 1.0f64;
        for j in 0..i {
            c *= (n - j) as f64 / (j + 1) as f64;
        }
        total += c * p.powi(i as i32) * (1.0 - p).powi((n - i) as i32);
    }
    total
}
