//! The `cfmem` command-line tool: a thin layer that turns flags into
//! library configs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cfmem_analysis::plot::{plot, Chart, Labels, Series};
use cfmem_analysis::{CoverageProblem, DesignConfig, Metric};
use cfmem_core::{Corpus, DeviceChoice, LoadConfig, ModelConfig};
use cfmem_sched::{is_claimed, run, Experiment, Manifest, Observer, RunConfig, Shard};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// Training allocates and frees many short-lived tensors; mimalloc keeps the
/// memory instead of returning it to the OS on every free (≈ 1.4× faster
/// training than glibc malloc on the tiny preset).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measure counterfactual memorization: train many small language models on
/// random subsets of a corpus and estimate, per document, the gap between
/// models that saw it and models that did not.
#[derive(Parser, Debug)]
#[command(name = "cfmem", version, about, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train the missing models of an experiment (creates it if needed; resumes and grows it otherwise).
    Run(Box<RunArgs>),
    /// Print and export per-document memorization estimates.
    Report(ReportArgs),
    /// Show how many models are done, missing or corrupt.
    Status(StatusArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Experiment directory (same as --out).
    dir: Option<PathBuf>,
    /// Experiment directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Corpus: a .jsonl file, a plain-text file, or a directory of .txt files.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Held-out query corpus that every model also evaluates (for `report --influence --queries`).
    #[arg(long)]
    queries: Option<PathBuf>,
    /// Number of models the experiment should have when done [default: the last count asked for, or 16].
    #[arg(long)]
    models: Option<usize>,
    /// Bernoulli design: each document is in each model with probability P.
    #[arg(long, conflicts_with = "blocks")]
    p: Option<f64>,
    /// Block design: blocks of B models, each document in exactly one model per block [default: 2].
    #[arg(long, conflicts_with = "repetition")]
    blocks: Option<usize>,
    /// Repetition design: COPIES:PROB pairs, e.g. 0:0.4,1:0.2,2:0.2,4:0.2 (a unit gets COPIES copies per epoch with probability PROB).
    #[arg(long, conflicts_with = "p")]
    repetition: Option<String>,
    /// Units of removal: documents, group (the corpus's group field), contains:TEXT, regex:PATTERN, near-dup[:NGRAM:THRESHOLD].
    #[arg(long)]
    units: Option<cfmem_sched::UnitSpec>,
    /// Seed of the design, initialisation and batch order [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Seeding: `shared` (common random numbers: one initialisation and batch-order stream for all models; memorization conditional on it) or `per-model` (each model its own: the unconditional definition) [default: shared].
    #[arg(long)]
    seeding: Option<cfmem_sched::Seeding>,
    /// Keep adding models, a block at a time, until the split-half Spearman of the estimates reaches R (e.g. 0.9); --models is then the budget.
    #[arg(long, value_name = "R")]
    until_reliability: Option<f64>,
    /// Model preset: tiny or small [default: tiny].
    #[arg(long)]
    preset: Option<String>,
    /// Epochs over each model's subset [default: 64].
    #[arg(long)]
    epochs: Option<usize>,
    /// Windows per training batch [default: 16].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate [default: 3e-3].
    #[arg(long)]
    lr: Option<f64>,
    /// Models (or ensembles) trained at once [default: number of cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Matrix-product threads per job [default: 1].
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Models packed into one ensemble graph [default: 1].
    #[arg(long, default_value_t = 1)]
    ensemble: usize,
    /// cpu, cuda or auto.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Discard an existing, different experiment in the directory instead of refusing.
    #[arg(long)]
    fresh: bool,
    /// Train only shard I of N (the models with index % N == I). Without it,
    /// the shard comes from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or
    /// JOB_COMPLETION_INDEX (with --shards N) when set.
    #[arg(long)]
    shard: Option<Shard>,
    /// Number of shards, for JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs).
    #[arg(long)]
    shards: Option<usize>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Args, Debug)]
struct LoadArgs {
    /// Skip empty documents (counted) instead of failing.
    #[arg(long)]
    skip_empty: bool,
    /// Plain-text corpora: one document per line instead of per paragraph.
    #[arg(long)]
    per_line: bool,
    /// JSONL field with the document id.
    #[arg(long, default_value = "id")]
    id_field: String,
    /// JSONL field with the text.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// JSONL field with the optional group.
    #[arg(long, default_value = "group")]
    group_field: String,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Experiment directory (omit it with --import-membership/--import-scores).
    dir: Option<PathBuf>,
    /// Analyse results produced elsewhere: membership matrix (models × documents, copies; .csv or .npy).
    #[arg(long, requires = "import_scores")]
    import_membership: Option<PathBuf>,
    /// Analyse results produced elsewhere: score matrix (models × documents, of --metric; .csv or .npy).
    #[arg(long, requires = "import_membership")]
    import_scores: Option<PathBuf>,
    /// Document ids for imported matrices, one per line (else a CSV header, else 0..n).
    #[arg(long)]
    import_ids: Option<PathBuf>,
    /// accuracy (per-token, default), loss (mean per-token nats) or logprob (sequence log-probability).
    #[arg(long, default_value = "accuracy")]
    metric: Metric,
    /// Adjust each model's scores for its overall performance before estimating (estimates and convergence): model-mean (a control variate: subtract the model's mean residual over its out-of-subset documents) or none.
    #[arg(long, default_value = "model-mean")]
    adjust: cfmem_analysis::Adjustment,
    /// Write the estimates (and any analysis asked for) as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Split-half convergence: Spearman between two disjoint halves of the models, as models are added.
    #[arg(long)]
    convergence: bool,
    /// LiRA-style membership scores: per-document Gaussian fits, ROC AUC and TPR at low FPR.
    #[arg(long)]
    membership: bool,
    /// Membership: per-example or global variance.
    #[arg(long, default_value = "per-example")]
    variance: String,
    /// Counterfactual influence: the most influential training documents per query.
    #[arg(long)]
    influence: bool,
    /// Influence on the experiment's query corpus (from `run --queries`) instead of on the training documents.
    #[arg(long)]
    queries: bool,
    /// Entries per influence list.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Memorization per unit of removal (groups, clusters), with the whole unit included vs removed.
    #[arg(long)]
    groups: bool,
    /// Write plots (PNG and SVG) into this directory: the memorization histogram, mem vs in-mean,
    /// and the convergence, repetition and ROC curves of the analyses asked for.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Memorization as a function of copies per epoch (repetition designs).
    #[arg(long)]
    repetition: bool,
    /// Write every document's estimate to this CSV file.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// How many of the most memorized documents to print.
    #[arg(long, default_value_t = 20)]
    top: usize,
}

#[derive(Args, Debug)]
struct StatusArgs {
    /// Experiment directory.
    dir: PathBuf,
    /// Show progress per shard for this many shards [default: as recorded by sharded runs].
    #[arg(long)]
    shards: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Run(a) => cmd_run(*a),
        Command::Report(a) => cmd_report(a),
        Command::Status(a) => cmd_status(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Reports progress: a bar on a terminal, log lines otherwise.
struct Progress {
    total: usize,
    done: AtomicUsize,
    tokens: AtomicU64,
    start: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} models  {msg}  ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        });
        Self {
            total,
            done: AtomicUsize::new(0),
            tokens: AtomicU64::new(0),
            start: Instant::now(),
            bar,
        }
    }

    fn say(&self, line: String) {
        match &self.bar {
            Some(b) => b.println(line),
            None => tracing::warn!("{line}"),
        }
    }
}

impl Observer for Progress {
    fn start(&self, pending: usize, done: usize) {
        self.done.store(done, Ordering::SeqCst);
        match &self.bar {
            Some(b) => {
                // A growing experiment learns its size per round.
                let len = if self.total > 0 {
                    self.total
                } else {
                    pending + done
                };
                b.set_length(len as u64);
                b.set_position(done as u64);
                b.reset_eta();
            }
            None => tracing::info!("{pending} models to train, {done} already done"),
        }
    }
    fn design_problems(&self, problems: &[CoverageProblem]) {
        self.say(format!(
            "warning: {} documents have no model on one side and will have no estimate (first: {}); train more models",
            problems.len(),
            problems[0]
        ));
    }
    fn corrupt(&self, model: usize, message: &str) {
        self.say(format!(
            "warning: {message}; moving it aside and retraining model {model}"
        ));
    }
    fn model_elsewhere(&self, model: usize) {
        tracing::debug!("model {model} is claimed or finished by another process");
    }
    fn model_done(&self, model: usize, seconds: f64, tokens: u64) {
        let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let all_tokens = self.tokens.fetch_add(tokens, Ordering::SeqCst) + tokens;
        let rate = all_tokens as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
        match &self.bar {
            Some(b) => {
                b.set_message(format!("{rate:.0} tokens/s"));
                b.set_position(n as u64);
            }
            None => tracing::info!(
                "[{n}/{}] model {model} done in {seconds:.1} s; {rate:.0} tokens/s overall; {:.0} s elapsed",
                self.total,
                self.start.elapsed().as_secs_f64()
            ),
        }
    }
    fn model_failed(&self, model: usize, error: &cfmem_sched::Error) {
        self.say(format!("error: model {model} failed: {error}"));
    }
}

fn cmd_run(a: RunArgs) -> Result<()> {
    if let Some(r) = a.until_reliability {
        if !(r > 0.0 && r < 1.0) {
            bail!(
                "--until-reliability {r}: expected a split-half Spearman between 0 and 1, e.g. 0.9"
            );
        }
    }
    let dir = match (&a.dir, &a.out) {
        (Some(d), None) | (None, Some(d)) => d.clone(),
        (Some(x), Some(y)) if x == y => x.clone(),
        (Some(_), Some(_)) => bail!("give the experiment directory once (positional or --out)"),
        (None, None) => bail!("give the experiment directory (--out DIR)"),
    };
    let existing = if dir.join("manifest.json").exists() && !a.fresh {
        Some(Experiment::open(&dir)?)
    } else {
        None
    };
    let load = LoadConfig {
        id_field: a.load.id_field.clone(),
        text_field: a.load.text_field.clone(),
        group_field: a.load.group_field.clone(),
        skip_empty: a.load.skip_empty,
        per_line: a.load.per_line,
    };
    let (corpus, corpus_path) = match (&a.corpus, &existing) {
        (Some(p), _) => {
            let c = Corpus::load(p, &load)?;
            if c.n_skipped_empty() > 0 {
                eprintln!(
                    "warning: skipped {} empty documents in {}",
                    c.n_skipped_empty(),
                    p.display()
                );
            }
            (c, Some(p.clone()))
        }
        (None, Some(e)) => (e.corpus().clone(), e.manifest().corpus.path.clone()),
        (None, None) => bail!(
            "{}: no experiment here yet; give --corpus PATH",
            dir.display()
        ),
    };
    // Start from the existing manifest (or defaults) and apply the flags given.
    let base = existing.as_ref().map(|e| e.manifest().clone());
    let mut model = base
        .as_ref()
        .map(|m| m.model.clone())
        .unwrap_or_else(ModelConfig::tiny);
    if let Some(p) = &a.preset {
        model = ModelConfig::preset(p)
            .with_context(|| format!("unknown preset {p:?} (expected tiny or small)"))?;
    }
    let mut train = base.as_ref().map(|m| m.train.clone()).unwrap_or_default();
    if let Some(e) = a.epochs {
        train.epochs = e;
    }
    if let Some(b) = a.batch_size {
        train.batch_size = b;
    }
    if let Some(lr) = a.lr {
        train.lr = lr;
    }
    let seed = a.seed.or(base.as_ref().map(|m| m.seed)).unwrap_or(0);
    let mut design = base
        .as_ref()
        .map(|m| m.design.clone())
        .unwrap_or(DesignConfig::blocks(2, seed));
    design.seed = a.seed.unwrap_or(design.seed);
    if let Some(p) = a.p {
        design.kind = cfmem_analysis::DesignKind::Bernoulli { p };
    }
    if let Some(b) = a.blocks {
        design.kind = cfmem_analysis::DesignKind::Blocks { b };
    }
    if let Some(spec) = &a.repetition {
        design.kind = parse_repetition(spec)?;
    }
    design.check()?;
    model.check()?;
    train.check()?;
    let load = base
        .as_ref()
        .filter(|_| a.corpus.is_none())
        .map(|m| m.corpus.load.clone())
        .unwrap_or(load);
    let mut manifest = Manifest::new(
        &corpus,
        corpus_path.as_deref(),
        load,
        model,
        train,
        design,
        seed,
    );
    if let Some(b) = &base {
        manifest.eval_batch = b.eval_batch;
        manifest.units = b.units.clone();
        manifest.seeding = b.seeding;
    }
    if let Some(s) = a.seeding {
        manifest.seeding = s;
    }
    if let Some(u) = &a.units {
        manifest.units = u.clone();
    }
    let queries = match (&a.queries, &existing) {
        (Some(p), _) => Some(Corpus::load(p, &LoadConfig::default())?),
        (None, Some(e)) => e.queries().cloned(),
        (None, None) => None,
    };
    if let Some(q) = &queries {
        let path = a
            .queries
            .clone()
            .or(base.as_ref().and_then(|m| m.queries.as_ref()?.path.clone()));
        manifest = manifest.with_queries(q, path.as_deref(), LoadConfig::default());
    }
    let exp = Experiment::create_with_queries(&dir, manifest, corpus, queries, a.fresh)?;
    let existing_count = exp.record_indices()?.last().map(|&i| i + 1).unwrap_or(0);
    let shard = match a.shard {
        Some(s) => Some(s),
        None => Shard::from_env(a.shards)?,
    };
    let stop = Arc::new(AtomicBool::new(false));
    install_ctrl_c(stop.clone(), &dir);
    let base_cfg = RunConfig {
        n_models: 0,
        jobs: a.jobs.unwrap_or(RunConfig::default().jobs),
        threads: a.threads,
        ensemble: a.ensemble,
        device: a.device,
        shard,
        stop: stop.clone(),
    };
    let describe = |n: usize| {
        eprintln!(
            "experiment {}: {} documents, {} models ({:?}, preset d_model {} × {} layers, {} epochs, seeding {:?})",
            dir.display(),
            exp.corpus().len(),
            n,
            exp.manifest().design.kind,
            exp.manifest().model.d_model,
            exp.manifest().model.n_layer,
            exp.manifest().train.epochs,
            exp.manifest().seeding,
        );
    };
    let summaries: Vec<cfmem_sched::RunSummary> = match a.until_reliability {
        Some(target) => {
            // --models is the budget; the experiment grows by whole pairs
            // of blocks from 16 models (or what is already there).
            if shard.is_some() {
                bail!("--until-reliability decides how many models to train from all of them; it cannot run as a shard");
            }
            let growth = cfmem_sched::Growth {
                target,
                budget: a.models.unwrap_or(256),
                metric: cfmem_analysis::Metric::Accuracy,
                adjustment: cfmem_analysis::Adjustment::ModelMean,
            };
            let (first, step) = growth.plan(exp.manifest().design.block_size(), existing_count);
            describe(first);
            eprintln!(
                "growing by {step} models until the split-half Spearman reaches {target} (budget {} models)",
                growth.budget
            );
            let obs = Progress::new(0);
            let rounds = cfmem_sched::grow(&exp, &base_cfg, &growth, &obs, &mut |r| {
                let p = r.point.as_ref();
                println!(
                    "{} models: split-half Spearman {} (two halves of {}), Spearman–Brown reliability {}; trained {} now, {:.0} s so far",
                    r.n_models,
                    p.and_then(|p| p.spearman).map_or("n/a".into(), |v| format!("{v:.3}")),
                    r.n_models / 2,
                    p.and_then(|p| p.reliability).map_or("n/a".into(), |v| format!("{v:.3}")),
                    r.summary.trained.len(),
                    r.seconds
                );
            })?;
            if let Some(b) = &obs.bar {
                b.finish_and_clear();
            }
            if let Some(last) = rounds.last() {
                let rho = last.point.as_ref().and_then(|p| p.spearman);
                if rho.is_some_and(|r| r >= target) {
                    println!(
                        "reached split-half Spearman {target} with {} models",
                        last.n_models
                    );
                } else if last.n_models >= growth.budget {
                    println!(
                        "model budget {} spent before the split-half Spearman reached {target}; raise --models to go on",
                        growth.budget
                    );
                }
            }
            rounds.into_iter().map(|r| r.summary).collect()
        }
        None => {
            let n_models = a
                .models
                .or(exp.target_models())
                .unwrap_or(existing_count.max(16));
            exp.set_target_models(n_models)?;
            describe(n_models);
            if let Some(s) = shard {
                eprintln!(
                    "shard {s}: training only the models with index % {} == {}",
                    s.count, s.index
                );
            }
            let share = (0..n_models)
                .filter(|&i| shard.is_none_or(|s| s.contains(i)))
                .count();
            let obs = Progress::new(share);
            let s = run(
                &exp,
                &RunConfig {
                    n_models,
                    ..base_cfg.clone()
                },
                &obs,
            )?;
            if let Some(b) = &obs.bar {
                b.finish_and_clear();
            }
            vec![s]
        }
    };
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
    if !last.failed.is_empty() {
        for (i, e) in &last.failed {
            eprintln!("error: model {i}: {e}");
        }
        bail!(
            "{} models failed; the other records are saved; rerun `cfmem run {}` to retry",
            last.failed.len(),
            dir.display()
        );
    }
    if stop.load(Ordering::SeqCst) {
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

/// `0:0.4,1:0.2,2:0.2,4:0.2` → a repetition design.
fn parse_repetition(spec: &str) -> Result<cfmem_analysis::DesignKind> {
    let mut copies = Vec::new();
    let mut probs = Vec::new();
    for part in spec.split(',') {
        let (c, p) = part.split_once(':').with_context(|| {
            format!("--repetition {spec:?}: expected COPIES:PROB pairs, e.g. 0:0.5,1:0.25,4:0.25")
        })?;
        copies.push(
            c.trim()
                .parse()
                .with_context(|| format!("--repetition: bad copy count {c:?}"))?,
        );
        probs.push(
            p.trim()
                .parse()
                .with_context(|| format!("--repetition: bad probability {p:?}"))?,
        );
    }
    Ok(cfmem_analysis::DesignKind::Repetition { copies, probs })
}

/// First Ctrl-C: start no new model, finish the ones in training. Second:
/// abandon them (records are written atomically, so nothing partial remains).
fn install_ctrl_c(stop: Arc<AtomicBool>, dir: &Path) {
    let dir = dir.display().to_string();
    let result = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            eprintln!("\nabandoned the models in training; no partial record was written; resume with `cfmem run {dir}`");
            std::process::exit(130);
        }
        eprintln!("\nstopping after the models in training (Ctrl-C again to abandon them)");
    });
    if let Err(e) = result {
        tracing::warn!("cannot install the Ctrl-C handler: {e}");
    }
}

fn fmt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

fn cmd_report(a: ReportArgs) -> Result<()> {
    let (exp, imported) = match (&a.dir, &a.import_membership, &a.import_scores) {
        (Some(dir), None, None) => (Some(Experiment::open(dir)?), None),
        (None, Some(m), Some(s)) => {
            let table = cfmem_analysis::ScoreTable::load(m, s, a.import_ids.as_deref())?;
            (
                None,
                Some(cfmem_sched::Imported {
                    table,
                    metric: a.metric,
                }),
            )
        }
        _ => bail!(
            "give an experiment directory, or --import-membership and --import-scores (not both)"
        ),
    };
    let src: &dyn cfmem_sched::Rows = match (&exp, &imported) {
        (Some(e), _) => e,
        (None, Some(i)) => i,
        (None, None) => bail!("nothing to report"),
    };
    let needs_experiment = a.influence || a.groups || a.repetition;
    if exp.is_none() && needs_experiment {
        bail!("--influence, --groups and --repetition need an experiment directory (imported tables carry no corpus or design)");
    }
    let rep = cfmem_sched::report_adjusted(src, a.metric, a.adjust)?;
    for (i, why) in &rep.skipped {
        eprintln!("warning: skipping model {i}: {why}");
    }
    if rep.n_models == 0 {
        let d = a
            .dir
            .as_deref()
            .unwrap_or(Path::new("."))
            .display()
            .to_string();
        bail!("{d}: no finished models yet; run `cfmem run {d}` first");
    }
    let ranked = rep.ranked();
    let missing = rep.docs.len() - ranked.len();
    println!(
        "{} documents, {} models, metric {}; mem = {} (95% CI, Welch/Student t)",
        rep.docs.len(),
        rep.n_models,
        a.metric.name(),
        if a.metric == Metric::Loss {
            "out_mean - in_mean"
        } else {
            "in_mean - out_mean"
        }
    );
    if missing > 0 {
        println!("{missing} documents have no estimate (a side with no model); train more models");
    }
    println!(
        "{:>4}  {:<32} {:>4} {:>5} {:>8} {:>8} {:>8}  95% CI",
        "rank", "id", "n_in", "n_out", "in", "out", "mem"
    );
    for (r, d) in ranked.iter().take(a.top).enumerate() {
        let e = &d.estimate;
        let id: String = d.id.chars().take(32).collect();
        println!(
            "{:>4}  {:<32} {:>4} {:>5} {:>8} {:>8} {:>8}  [{}, {}]",
            r + 1,
            id,
            e.n_in,
            e.n_out,
            fmt(e.in_mean),
            fmt(e.out_mean),
            fmt(e.mem),
            fmt(e.ci_low),
            fmt(e.ci_high)
        );
    }
    if let Some(path) = &a.csv {
        write_csv(path, &rep)?;
        println!("wrote {}", path.display());
    }
    let mut charts: Vec<(&str, Chart, Labels)> = Vec::new();
    let lab = |t: &str, x: &str, y: &str| Labels {
        title: t.into(),
        x: x.into(),
        y: y.into(),
    };
    let mems: Vec<f64> = ranked.iter().filter_map(|d| d.estimate.mem).collect();
    charts.push((
        "mem_histogram",
        Chart::Histogram {
            values: mems,
            bins: 30,
        },
        lab(
            &format!(
                "Counterfactual memorization ({}, {} models)",
                a.metric.name(),
                rep.n_models
            ),
            "mem",
            "documents",
        ),
    ));
    let mut kinds: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for d in &ranked {
        let kind = if d.id.starts_with(cfmem_core::RANDOM_PREFIX) {
            "random canaries"
        } else if d.id.starts_with(cfmem_core::CONTROL_PREFIX) {
            "controls"
        } else {
            "documents"
        };
        let p = (
            d.estimate.in_mean.unwrap_or(f64::NAN),
            d.estimate.mem.unwrap_or(f64::NAN),
        );
        match kinds.iter_mut().find(|k| k.0 == kind) {
            Some(k) => k.1.push(p),
            None => kinds.push((kind.to_string(), vec![p])),
        }
    }
    charts.push((
        "mem_vs_in_mean",
        Chart::Scatter { groups: kinds },
        lab(
            "Memorization vs performance when included",
            &format!("in_mean ({})", a.metric.name()),
            "mem",
        ),
    ));
    let mut json = serde_json::json!({
        "metric": a.metric.name(),
        "n_models": rep.n_models,
        "documents": rep.docs,
    });
    if a.convergence {
        let points = cfmem_sched::convergence_adjusted(src, a.metric, a.adjust)?;
        println!(
            "\nSplit-half convergence (Spearman between the estimates of two disjoint halves):"
        );
        println!(
            "{:>8} {:>9} {:>12} {:>6}",
            "models", "spearman", "reliability", "docs"
        );
        for p in &points {
            println!(
                "{:>8} {:>9} {:>12} {:>6}",
                p.n_models,
                fmt(p.spearman),
                fmt(p.reliability),
                p.n_docs
            );
        }
        println!("reliability = Spearman–Brown 2r/(1+r): the expected agreement of the full estimate with a replication");
        let pts = |f: fn(&cfmem_analysis::ConvergencePoint) -> Option<f64>| -> Vec<(f64, f64, Option<f64>)> {
            points.iter().filter_map(|p| Some((p.n_models as f64, f(p)?, None))).collect()
        };
        charts.push((
            "convergence",
            Chart::Lines {
                series: vec![
                    Series {
                        label: "split-half Spearman".into(),
                        points: pts(|p| p.spearman),
                    },
                    Series {
                        label: "Spearman-Brown reliability".into(),
                        points: pts(|p| p.reliability),
                    },
                ],
                log: false,
                diagonal: false,
            },
            lab("Convergence of the estimates", "models", "rank correlation"),
        ));
        json["convergence"] = serde_json::to_value(&points)?;
    }
    if a.membership {
        let variance = match a.variance.as_str() {
            "per-example" => cfmem_analysis::Variance::PerExample,
            "global" => cfmem_analysis::Variance::Global,
            v => bail!("unknown variance {v:?} (expected per-example or global)"),
        };
        // Imported scores are used as they are; an experiment's losses are logit-scaled.
        let (observation, obs_name) = if exp.is_some() {
            (
                cfmem_analysis::Observation::LogitConfidence,
                "logit confidence",
            )
        } else {
            (cfmem_analysis::Observation::NegLoss, "imported scores")
        };
        let m = cfmem_sched::membership(src, observation, variance)?;
        println!(
            "\nMembership inference (LiRA, {obs_name}, {} variance, each model left out of its fits):",
            a.variance
        );
        for (name, r) in [("online", &m.online), ("offline", &m.offline)] {
            match r {
                Some(r) => println!(
                    "  {name:<8} AUC {:.4}  TPR at FPR 0.1% {:.4}, 1% {:.4}, 10% {:.4}  ({} members, {} non-members)",
                    r.auc, r.tpr_at_fpr[0].1, r.tpr_at_fpr[1].1, r.tpr_at_fpr[2].1, r.n_pos, r.n_neg
                ),
                None => println!("  {name:<8} not enough models (each side needs 2 besides the scored model)"),
            }
        }
        let mut by_auc: Vec<&cfmem_sched::DocMembership> =
            m.docs.iter().filter(|d| d.auc.is_some()).collect();
        by_auc.sort_by(|x, y| {
            y.auc
                .partial_cmp(&x.auc)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        println!("  most exposed documents (per-document AUC over the models):");
        for d in by_auc.iter().take(a.top.min(10)) {
            println!(
                "    {:<32} AUC {:.3}  in {:.2}±{:.2}  out {:.2}±{:.2}",
                d.id.chars().take(32).collect::<String>(),
                d.auc.unwrap_or(f64::NAN),
                d.fit.mu_in,
                d.fit.sigma_in,
                d.fit.mu_out,
                d.fit.sigma_out
            );
        }
        let mut series = Vec::new();
        for (name, r) in [("online", &m.online), ("offline", &m.offline)] {
            if let Some(r) = r {
                series.push(Series {
                    label: format!("{name} (AUC {:.3})", r.auc),
                    points: r.curve.iter().map(|&(f, t)| (f, t, None)).collect(),
                });
            }
        }
        charts.push((
            "roc",
            Chart::Lines {
                series,
                log: true,
                diagonal: true,
            },
            lab(
                "Membership inference ROC (LiRA, leave-one-model-out)",
                "false positive rate",
                "true positive rate",
            ),
        ));
        json["membership"] = serde_json::to_value(&m)?;
    }
    if let (true, Some(exp)) = (a.influence, &exp) {
        let cfg = cfmem_analysis::InfluenceConfig {
            k: a.k,
            ..Default::default()
        };
        let inf = cfmem_sched::influence(exp, a.metric, a.queries, cfg)?;
        let query_ids: Vec<String> = if a.queries {
            exp.queries()
                .map(|q| q.documents().iter().map(|d| d.id.clone()).collect())
                .unwrap_or_default()
        } else {
            exp.documents().iter().map(|d| d.id.clone()).collect()
        };
        let ids: Vec<&str> = exp.documents().iter().map(|d| d.id.as_str()).collect();
        println!("\nCounterfactual influence ({}): top {} training documents for the queries with the strongest single influence:", a.metric.name(), a.k);
        let mut order: Vec<usize> = (0..query_ids.len())
            .filter(|&q| !inf.top_units[q].is_empty())
            .collect();
        order.sort_by(|&x, &y| {
            inf.top_units[y][0]
                .infl
                .total_cmp(&inf.top_units[x][0].infl)
        });
        for &q in order.iter().take(a.top.min(10)) {
            let list: Vec<String> = inf.top_units[q]
                .iter()
                .map(|e| format!("{} {:+.3}±{:.3}", ids[e.unit], e.infl, e.se))
                .collect();
            println!(
                "  {:<28} ← {}",
                query_ids[q].chars().take(28).collect::<String>(),
                list.join(", ")
            );
        }
        json["influence"] = serde_json::json!({
            "on": if a.queries { "queries" } else { "training documents" },
            "query_ids": query_ids,
            "unit_ids": ids,
            "top_units_per_query": inf.top_units,
            "top_queries_per_unit": inf.top_queries,
        });
    }
    if let (true, Some(exp)) = (a.groups, &exp) {
        let g = cfmem_sched::groups(exp, a.metric)?;
        let mut multi: Vec<&cfmem_sched::GroupEstimate> =
            g.iter().filter(|x| x.members.len() > 1).collect();
        multi.sort_by(|x, y| {
            y.estimate
                .mem
                .partial_cmp(&x.estimate.mem)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        println!(
            "\nUnits of removal: {} units ({} with several documents); mem of a unit = its members' mean score, unit in vs out:",
            g.len(),
            multi.len()
        );
        for x in multi.iter().take(a.top) {
            let e = &x.estimate;
            println!(
                "  {:<32} {:>3} docs  mem {:>8}  [{}, {}]  n_in {} n_out {}",
                x.name.chars().take(32).collect::<String>(),
                x.members.len(),
                fmt(e.mem),
                fmt(e.ci_low),
                fmt(e.ci_high),
                e.n_in,
                e.n_out
            );
        }
        json["groups"] = serde_json::to_value(&g)?;
    }
    if let (true, Some(exp)) = (a.repetition, &exp) {
        let curve = cfmem_sched::repetition(exp, a.metric)?;
        println!("\nMemorization by copies per epoch (mean over documents of E[M|k] - E[M|0]):");
        for p in &curve.overall {
            println!(
                "  {:>3} copies: mem {:.4} ± {:.4} (95%, {} documents)",
                p.copies,
                p.mem,
                1.96 * p.se,
                p.n_docs
            );
        }
        let mut points = vec![(0.0, 0.0, None)];
        points.extend(
            curve
                .overall
                .iter()
                .map(|p| (f64::from(p.copies), p.mem, Some(1.96 * p.se))),
        );
        charts.push((
            "mem_vs_copies",
            Chart::Lines {
                series: vec![Series {
                    label: "mean over documents (95% CI)".into(),
                    points,
                }],
                log: false,
                diagonal: false,
            },
            lab(
                "Memorization by copies per epoch",
                "copies per epoch",
                &format!("mem ({})", a.metric.name()),
            ),
        ));
        json["repetition"] = serde_json::to_value(&curve)?;
    }
    if let Some(dir) = &a.plots {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        for (name, chart, labels) in &charts {
            plot(&dir.join(name), chart, labels)?;
        }
        println!(
            "wrote {} plots (PNG and SVG) to {}",
            charts.len(),
            dir.display()
        );
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("{}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn write_csv(path: &Path, rep: &cfmem_sched::Report) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("{}", path.display()))?;
    w.write_record([
        "id", "index", "n_in", "n_out", "in_mean", "out_mean", "mem", "se", "ci_low", "ci_high",
        "reason",
    ])?;
    let o = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
    for d in &rep.docs {
        let e = &d.estimate;
        w.write_record([
            d.id.clone(),
            d.index.to_string(),
            e.n_in.to_string(),
            e.n_out.to_string(),
            o(e.in_mean),
            o(e.out_mean),
            o(e.mem),
            o(e.se),
            o(e.ci_low),
            o(e.ci_high),
            e.reason.map(|r| r.to_string()).unwrap_or_default(),
        ])?;
    }
    w.flush().with_context(|| format!("{}", path.display()))?;
    Ok(())
}

fn cmd_status(a: StatusArgs) -> Result<()> {
    let exp = Experiment::open(&a.dir)?;
    let indices = exp.record_indices()?;
    let n = exp
        .target_models()
        .unwrap_or(0)
        .max(indices.last().map(|&i| i + 1).unwrap_or(0));
    let scan = exp.scan(n)?;
    let running: Vec<usize> = scan
        .missing
        .iter()
        .copied()
        .filter(|&i| is_claimed(&exp, i))
        .collect();
    println!(
        "{}: {} documents, {} models wanted: {} done, {} pending ({} in training now), {} corrupt",
        a.dir.display(),
        exp.corpus().len(),
        n,
        scan.done.len(),
        scan.missing.len(),
        running.len(),
        scan.corrupt.len()
    );
    for (i, why) in &scan.corrupt {
        println!("  corrupt: model {i}: {why} (the next run moves it aside and retrains it)");
    }
    // Compute spent, and shards as recorded by the runs.
    let mut seconds = 0.0;
    let mut core_seconds = 0.0;
    let mut shard_count = a.shards;
    for &i in &scan.done {
        if let Some(meta) = exp.read_meta(i) {
            seconds += meta.seconds;
            core_seconds += meta.seconds * meta.threads as f64;
            if shard_count.is_none() {
                shard_count = meta
                    .shard
                    .and_then(|s| s.parse::<Shard>().ok())
                    .map(|s| s.count);
            }
        }
    }
    let human = |s: f64| {
        if s < 3600.0 {
            format!("{s:.1} s")
        } else {
            format!("{:.2} h", s / 3600.0)
        }
    };
    println!(
        "compute spent: {} of worker time ({} of core time at the recorded threads per worker)",
        human(seconds),
        human(core_seconds)
    );
    if let Some(count) = shard_count {
        for s in 0..count {
            let want = (0..n).filter(|i| i % count == s).count();
            let done = scan.done.iter().filter(|&&i| i % count == s).count();
            let live = running.iter().filter(|&&i| i % count == s).count();
            println!("  shard {s}/{count}: {done}/{want} done, {live} in training");
        }
    }
    Ok(())
}
