//! `cfmem status`: where an experiment stands.

use anyhow::Result;
use cfmem_sched::Experiment;

use crate::flags::StatusArgs;

fn human(s: f64) -> String {
    if s < 3600.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.2} h", s / 3600.0)
    }
}

pub fn cmd_status(a: &StatusArgs) -> Result<()> {
    let exp = Experiment::open(&a.dir)?;
    let s = exp.status(a.shards)?;
    println!(
        "{}: {} documents, {} models wanted: {} done, {} pending ({} in training now), {} corrupt",
        a.dir.display(),
        s.n_docs,
        s.n_wanted,
        s.done.len(),
        s.pending.len(),
        s.running.len(),
        s.corrupt.len()
    );
    for c in &s.corrupt {
        println!(
            "  corrupt: model {}: {} (the next run moves it aside and retrains it)",
            c.model, c.reason
        );
    }
    println!(
        "compute spent: {} of worker time ({} of core time at the recorded threads per worker)",
        human(s.seconds),
        human(s.core_seconds)
    );
    for sh in &s.shards {
        println!(
            "  shard {}: {}/{} done, {} in training",
            sh.shard, sh.done, sh.wanted, sh.running
        );
    }
    Ok(())
}
