//! From memorization to generalization: removing a document, its
//! near-duplicate cluster and its topic, in one experiment whose models
//! all leave out the same number of documents.
//!
//! ```text
//! cargo run --release --example spectrum   # ≈ 12 minutes on 2 cores
//! ```
//! 64 dictionary entries (natural text), 16 random canaries, 4 families of
//! 4 near-duplicates (one word edited per member) and 4 topic families of
//! 4 sentences (one invented fact each, worded four ways, no shared run of
//! text). Levels: document < near-dup:5:0.5 < topic:18 (k-means over
//! TF-IDF); 96 tiny models (64 epochs), each leaving out half the corpus
//! as whole units of every level. Predictions, reported as they come out:
//! canaries' effect is all at the document level; a near-duplicate
//! family's appears at the cluster level and not the document level; per
//! removed token, topic-level effects are far smaller than document-level
//! ones for canaries and comparable for the topic families. Then the same
//! levels on natural text alone (192 WordNet glosses, 96 models of 32
//! epochs): how much their topics add, and for which glosses. Plots and
//! the per-document tables: `target/cfmem-examples/spectrum/`.

mod common;

use anyhow::Result;
use cfmem_studies::{spectrum_natural, spectrum_study, Scale, Verdict};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    // One matrix-product thread per job (one job per core), set before
    // any thread starts.
    cfmem::engine::settle_process(Some(1), |k, v| std::env::set_var(k, v));
    let dir = common::out_dir("spectrum")?;
    println!(
        "the memorization-to-generalization spectrum; experiment in {}",
        dir.display()
    );
    let start = std::time::Instant::now();
    let r = spectrum_study(&dir.join("exp"), &Scale::full(), &common::progress())?;
    println!(
        "\n{} models, levels {}, each model leaving out {} of the documents ({:.0} s)",
        r.report.n_models,
        r.levels,
        r.budget,
        start.elapsed().as_secs_f64()
    );
    println!(
        "mem (per-token accuracy): document in − its unit at the level out, mean over documents [95% CI];\n\
         removed: the unit's documents and tokens the in-models hold; per 1k: mem per 1,000 removed tokens;\n\
         + below: what the level adds to the one below it [95% CI]"
    );
    for k in &r.report.kinds[1..] {
        println!("\n{} ({} documents)", k.kind, k.n_docs);
        for l in &k.levels {
            let step = l.step.map_or(String::new(), |s| {
                format!("  + below {}", common::mean_ci(&s))
            });
            println!(
                "  {:<16} {}  removed {:>5.1} docs {:>6.0} tokens  per 1k {:>7.4}{step}",
                l.level,
                common::mean_ci(&l.mean),
                l.removed_docs,
                l.removed_tokens,
                1000.0 * l.per_token.mean
            );
        }
    }
    println!();
    for v in [
        &r.canaries,
        &r.families,
        &r.canary_per_token,
        &r.fact_per_token,
    ] {
        print_verdict(v);
    }
    let parts = &r.canary_parts;
    println!(
        "\nrandom canaries, scored on their shared prefix ({} tokens) and on their secret alone:",
        parts.prefix_targets
    );
    for (p, q) in parts.prefix.iter().zip(&parts.secret) {
        let adds = |l: &cfmem::analysis::LevelSummary| {
            l.beyond_document.map_or(String::new(), |s| {
                format!(", beyond the document {}", common::mean_ci(&s))
            })
        };
        println!(
            "  {:<16} prefix {}{}\n  {:<16} secret {}{}",
            p.level,
            common::mean_ci(&p.mean),
            adds(p),
            "",
            common::mean_ci(&q.mean),
            adds(q)
        );
    }
    let charts = cfmem::report::spectrum::charts(&r.report);
    for p in cfmem::report::charts::write_all(&charts, &dir)? {
        println!("wrote {}", p.display());
    }
    let csv = dir.join("spectrum.csv");
    cfmem::report::spectrum::write_csv(&r.report, &csv)?;
    println!("wrote {}", csv.display());

    // The same levels on natural text alone: WordNet glosses.
    let start = std::time::Instant::now();
    let n = spectrum_natural(&dir.join("natural"), &Scale::full(), &common::progress())?;
    let all = &n.report.kinds[0];
    println!(
        "\nnatural text: {} WordNet glosses, {} models ({} epochs), levels {} ({:.0} s)",
        all.n_docs,
        n.report.n_models,
        n.epochs,
        n.levels,
        start.elapsed().as_secs_f64()
    );
    for l in &all.levels {
        let beyond = l.beyond_document.map_or(String::new(), |s| {
            format!("  beyond the document {}", common::mean_ci(&s))
        });
        println!(
            "  {:<16} {}  removed {:>5.1} docs {:>6.0} tokens  per 1k {:>7.4}  10/50/90 % {:.3} {:.3} {:.3}{beyond}",
            l.level,
            common::mean_ci(&l.mean),
            l.removed_docs,
            l.removed_tokens,
            1000.0 * l.per_token.mean,
            l.quantiles[0],
            l.quantiles[1],
            l.quantiles[2]
        );
    }
    println!("glosses whose topic adds the most (lower end of the interval first):");
    for t in &n.topic_driven {
        let ci = |e: &cfmem::analysis::Estimate| {
            common::ci(
                e.mem.unwrap_or(f64::NAN),
                (e.ci_low.unwrap_or(f64::NAN), e.ci_high.unwrap_or(f64::NAN)),
            )
        };
        println!(
            "  {:<28} alone {}  topic adds {}  ({} glosses in {})\n    {}",
            t.id,
            ci(&t.alone),
            ci(&t.adds),
            t.topic_docs,
            t.topic,
            t.text.chars().take(110).collect::<String>()
        );
    }
    let charts = cfmem::report::spectrum::charts(&n.report);
    let natural_dir = dir.join("natural-plots");
    for p in cfmem::report::charts::write_all(&charts, &natural_dir)? {
        println!("wrote {}", p.display());
    }
    let csv = dir.join("natural.spectrum.csv");
    cfmem::report::spectrum::write_csv(&n.report, &csv)?;
    println!("wrote {}", csv.display());
    Ok(())
}

fn print_verdict(v: &Verdict) {
    println!(
        "prediction ({}): {}\n  {}",
        v.claim,
        if v.holds { "HOLDS" } else { "DOES NOT HOLD" },
        v.evidence
    );
}
