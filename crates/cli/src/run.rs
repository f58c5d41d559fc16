//! `cfmem run`: create, resume, grow or shard an experiment.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Result};
use cfmem_analysis::ReportConfig;
use cfmem_sched::{grow, run, Experiment, Growth, OnChange, Round, RunConfig, RunSummary};

use crate::flags::RunArgs;
use crate::progress::{install_ctrl_c, Bar};

pub fn cmd_run(a: &RunArgs) -> Result<()> {
    let dir = a.dir()?;
    let on_change = if a.fresh {
        OnChange::Replace
    } else {
        OnChange::Refuse
    };
    let exp = a.builder(&dir)?.open(on_change)?;
    let shard = a.shard()?;
    let stop = Arc::new(AtomicBool::new(false));
    install_ctrl_c(stop.clone(), &dir);
    let cfg = RunConfig {
        stop: stop.clone(),
        ..a.run_config(shard)
    };
    let summaries = match a.until_reliability {
        Some(target) => {
            if shard.is_some() {
                bail!("--until-reliability decides how many models to train from all of them; it cannot run as a shard");
            }
            until_reliable(&exp, &cfg, target, a.models.unwrap_or(256))?
        }
        None => {
            let n_models = a
                .models
                .or(exp.target_models())
                .unwrap_or(exp.n_recorded()?.max(16));
            if n_models == 0 {
                bail!("--models 0: an experiment needs at least 1 model (and 2 for an estimate)");
            }
            exp.set_target_models(n_models)?;
            describe(&exp, n_models);
            if let Some(s) = shard {
                eprintln!(
                    "shard {s}: training only the models with index % {} == {}",
                    s.count, s.index
                );
            }
            let share = (0..n_models)
                .filter(|&i| shard.is_none_or(|s| s.contains(i)))
                .count();
            let bar = Bar::new(share);
            let s = run(&exp, &RunConfig { n_models, ..cfg }, &bar);
            bar.finish();
            vec![s.map_err(|e| failed(e, &dir))?]
        }
    };
    finish(&summaries, &dir, stop.load(Ordering::SeqCst))
}

fn describe(exp: &Experiment, n: usize) {
    let m = exp.manifest();
    eprintln!(
        "experiment {}: {} documents, {n} models ({:?}, d_model {} × {} layers, {} epochs, seeding {})",
        exp.dir().display(),
        exp.corpus().len(),
        m.design,
        m.model.d_model,
        m.model.n_layer,
        m.train.epochs,
        m.seeding,
    );
}

/// Grow by whole pairs of blocks from 16 models (or what is there) until
/// the split-half Spearman reaches `target`; `budget` models at most.
fn until_reliable(
    exp: &Experiment,
    cfg: &RunConfig,
    target: f64,
    budget: usize,
) -> Result<Vec<RunSummary>> {
    let growth = Growth {
        target,
        budget,
        report: ReportConfig::default(),
    };
    let (first, step) = growth.plan(exp.manifest().design().block_size(), exp.n_recorded()?);
    describe(exp, first);
    eprintln!("growing by {step} models until the split-half Spearman reaches {target} (budget {budget} models)");
    let bar = Bar::new(0);
    let rounds = grow(exp, cfg, &growth, &bar, &mut |r: &Round| {
        let p = r.point.as_ref();
        let show = |x: Option<f64>| x.map_or("n/a".into(), |v| format!("{v:.3}"));
        println!(
            "{} models: split-half Spearman {} [{}, {}] (two halves of {}, mean of {} partitions, 95% bootstrap interval over documents), Spearman–Brown reliability {}; trained {} now, {:.0} s so far",
            r.n_models,
            show(p.and_then(|p| p.spearman)),
            show(p.and_then(|p| p.ci_low)),
            show(p.and_then(|p| p.ci_high)),
            r.n_models / 2,
            p.map_or(0, |p| p.n_partitions),
            show(p.and_then(|p| p.reliability)),
            r.summary.trained.len(),
            r.seconds
        );
    });
    bar.finish();
    let rounds = rounds.map_err(|e| failed(e, exp.dir()))?;
    if let Some(last) = rounds.last() {
        if last.point.as_ref().is_some_and(|p| growth.reached(p)) {
            println!(
                "reached split-half Spearman {target} (the lower end of its interval) with {} models",
                last.n_models
            );
        } else if last.n_models >= budget {
            println!("model budget {budget} spent before the split-half Spearman reached {target}; raise --models to go on");
        }
    }
    Ok(rounds.into_iter().map(|r| r.summary).collect())
}

/// Failed models: list them and say how to retry.
fn failed(e: cfmem_sched::Error, dir: &Path) -> anyhow::Error {
    if let cfmem_sched::Error::ModelsFailed(s) = &e {
        for f in &s.failed {
            eprintln!("error: model {}: {}", f.model, f.error);
        }
        return anyhow::anyhow!(
            "{} models failed; the other records are saved; rerun `cfmem run {}` to retry",
            s.failed.len(),
            dir.display()
        );
    }
    e.into()
}

fn finish(summaries: &[RunSummary], dir: &Path, stopped: bool) -> Result<()> {
    let trained: usize = summaries.iter().map(|s| s.trained.len()).sum();
    let seconds: f64 = summaries.iter().map(|s| s.seconds).sum();
    let tokens: u64 = summaries.iter().map(|s| s.tokens).sum();
    let last = summaries.last().cloned().unwrap_or_default();
    println!(
        "trained {trained} models in {seconds:.1} s ({:.0} tokens/s); {} were already done; {} corrupt records retrained",
        tokens as f64 / seconds.max(1e-9),
        summaries.first().map_or(0, |s| s.n_already_done),
        summaries.iter().map(|s| s.corrupt.len()).sum::<usize>()
    );
    if stopped {
        bail!(
            "interrupted: {} models were not started (no partial record was written); resume with `cfmem run {}`",
            last.not_started.len(),
            dir.display()
        );
    }
    if !last.elsewhere.is_empty() {
        println!(
            "{} models were claimed or finished by other processes; `cfmem status {}` shows progress",
            last.elsewhere.len(),
            dir.display()
        );
    }
    println!("next: cfmem report {}", dir.display());
    Ok(())
}
