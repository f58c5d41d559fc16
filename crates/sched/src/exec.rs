//! The executor: trains the missing models of an experiment on a worker
//! pool, claiming each model (see `claim.rs`) so that any number of
//! processes sharing the directory never train the same model twice.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cfmem_analysis::CoverageProblem;
use cfmem_core::{
    evaluate, evaluate_tokens, extraction, select_device, Checkpoint, DType, Device, DeviceChoice,
    Ensemble, ModelJob, Subset, TokenScores, TokenizedCorpus,
};

use crate::claim::Claim;
use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::record::{Evals, Record, RecordMeta};
use crate::shard::Shard;

/// Models per ensemble when training on a GPU and none is asked for. One
/// small model leaves a GPU idle; 64 tiny or small models make matrix
/// products of 64 × 16 windows × 64–128 tokens by d 64–128, tens of MFLOP
/// each. Not measured yet (`scripts/gpu-check.sh` measures K = 1, 16, 64,
/// 256); change it when the figures say so.
pub const GPU_ENSEMBLE: usize = 64;

/// How to run.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `n_models` | 16 | models `0..n_models` must exist when done |
/// | `jobs` | cores | workers: models (or ensembles) trained at once |
/// | `threads` | 1 | threads per worker: its rayon pool, which its fused kernels and matrix products split over (candle's products also read a process-wide count, set once by [`cfmem_core::settle_process`]) |
/// | `ensemble` | 1 | models packed into one ensemble graph |
/// | `device` | cpu | where to train |
/// | `tf32` | false | CUDA: TF32 matrix products (f32 weights and optimizer; [`cfmem_core::set_tf32`]) |
/// | `shard` | none | train only the models of this shard |
/// | `stop` | false | set it (e.g. from a Ctrl-C handler) to start no new model |
/// | `save_models` | false | also keep each trained model's weights, `runs/model-NNNNNN.safetensors` (f32; e.g. 0.5 MB for the tiny preset), for probing later; not part of the record |
///
/// Defaults, measured on a 2-core machine with the tiny preset (4 models,
/// 4 epochs, 150 short dictionary entries, `cfmem run --jobs J --threads T
/// --ensemble K`): jobs 2 × threads 1 trained 11,870 tokens/s; jobs 1 ×
/// threads 2, 6,946; jobs 2 × ensembles of 2, 10,475; jobs 1 × threads 2 ×
/// ensemble 4, 6,450. Small products scale poorly across threads and the
/// ensemble graph does not yet pay for itself on the CPU, hence
/// `jobs = cores, threads = 1, ensemble = 1`.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Target number of models.
    pub n_models: usize,
    /// Parallel workers.
    pub jobs: usize,
    /// Threads per worker.
    pub threads: usize,
    /// Models per ensemble.
    pub ensemble: usize,
    /// Device.
    pub device: DeviceChoice,
    /// Only this shard's models.
    pub shard: Option<Shard>,
    /// When set, workers take no new model and the run returns once the
    /// models in training are written.
    pub stop: Arc<AtomicBool>,
    /// Keep each trained model's weights beside its record.
    pub save_models: bool,
    /// CUDA: TF32 matrix products ([`cfmem_core::set_tf32`]).
    pub tf32: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            n_models: 16,
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            threads: 1,
            ensemble: 1,
            device: DeviceChoice::Cpu,
            shard: None,
            stop: Arc::new(AtomicBool::new(false)),
            save_models: false,
            tf32: false,
        }
    }
}

/// Callbacks from a run (all optional). Called from worker threads.
pub trait Observer: Sync {
    /// The run starts: `pending` models to train in this process's share,
    /// `done` already finished.
    fn start(&self, _pending: usize, _done: usize) {}
    /// Units that will have no estimate with this many models.
    fn design_problems(&self, _problems: &[CoverageProblem]) {}
    /// A corrupt record was found and moved aside.
    fn corrupt(&self, _model: usize, _message: &str) {}
    /// Training of these models (one ensemble) starts.
    fn models_started(&self, _models: &[usize]) {}
    /// A model finished: its index, wall seconds (its share of the ensemble), trained tokens.
    fn model_done(&self, _model: usize, _seconds: f64, _tokens: u64) {}
    /// A model is being trained by another process, or was finished by one.
    fn model_elsewhere(&self, _model: usize) {}
    /// A model failed.
    fn model_failed(&self, _model: usize, _error: &Error) {}
}

/// A model that failed to train or to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedModel {
    /// The model index.
    pub model: usize,
    /// What went wrong.
    pub error: String,
}

impl FailedModel {
    fn new(model: usize, error: &Error) -> Self {
        Self {
            model,
            error: error.to_string(),
        }
    }
}

/// An observer that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;
impl Observer for Silent {}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// Models trained now.
    pub trained: Vec<usize>,
    /// Models that were already done.
    pub n_already_done: usize,
    /// Models left to other processes (claimed by them, or finished meanwhile).
    pub elsewhere: Vec<usize>,
    /// Models not started because the run was stopped.
    pub not_started: Vec<usize>,
    /// Corrupt records moved aside (and retrained).
    pub corrupt: Vec<usize>,
    /// Models that failed, with the error.
    pub failed: Vec<FailedModel>,
    /// Tokens trained in this run.
    pub tokens: u64,
    /// Wall seconds.
    pub seconds: f64,
    /// Units with no model on one side.
    pub design_problems: Vec<CoverageProblem>,
}

/// Lock a mutex; a poisoned one still holds valid data.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RunConfig {
    /// Validate.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] naming the bad setting.
    pub fn check(&self) -> Result<()> {
        let at_least_one = |setting: &'static str, v: usize, expected: &'static str| {
            if v == 0 {
                Err(Error::InvalidSetting {
                    setting,
                    value: v.to_string(),
                    expected,
                })
            } else {
                Ok(())
            }
        };
        at_least_one(
            "number of models",
            self.n_models,
            "at least 1 (an experiment without models has no estimate)",
        )?;
        at_least_one("jobs", self.jobs, "at least 1")?;
        at_least_one("threads", self.threads, "at least 1")?;
        at_least_one("ensemble", self.ensemble, "at least 1")
    }
}

/// Train every missing model of `exp` up to `cfg.n_models` (in `cfg.shard`
/// only, when given), writing one record per model as it finishes.
///
/// A model that fails does not stop the others: every other record is still
/// written, and the run then returns [`Error::ModelsFailed`] with the
/// summary, so failures cannot go unnoticed. A run stopped through
/// [`RunConfig::stop`] returns its summary with the models not started.
///
/// ```no_run
/// use cfmem_sched::{run, Experiment, RunConfig, Silent};
///
/// let exp = Experiment::open("experiments/devil")?;
/// let summary = run(&exp, &RunConfig { n_models: 16, ..RunConfig::default() }, &Silent)?;
/// println!("trained {} models, {} were already done", summary.trained.len(), summary.n_already_done);
/// # Ok::<(), cfmem_sched::Error>(())
/// ```
///
/// # Errors
/// Bad settings, an unusable device, I/O errors on the experiment directory,
/// [`Error::ModelsFailed`].
pub fn run(exp: &Experiment, cfg: &RunConfig, obs: &dyn Observer) -> Result<RunSummary> {
    cfg.check()?;
    let start = Instant::now();
    warn_matmul_threads(cfg);
    // The design draws units; a model's documents follow their unit. Rows
    // are made when a model is trained (memory O(units), not models × units).
    let problems = exp.coverage_problems(cfg.n_models)?;
    if !problems.is_empty() {
        obs.design_problems(&problems);
    }
    let todo = pending_models(exp, cfg, obs)?;
    obs.start(todo.pending.len(), todo.n_done);
    let inputs = Inputs::load(exp, cfg)?;
    let work = Work {
        exp,
        cfg,
        obs,
        inputs: &inputs,
        summary: Mutex::new(RunSummary {
            n_already_done: todo.n_done,
            corrupt: todo.corrupt,
            design_problems: problems,
            ..Default::default()
        }),
        queue: Mutex::new(VecDeque::from(todo.pending)),
    };
    // One thread per job, each training on a rayon pool of `threads`
    // threads of its own (the pool its matrix products and fused kernels
    // split their work over). The job threads are plain threads, not rayon
    // tasks: a rayon worker waiting on another pool runs its own pool's
    // queued tasks meanwhile, and would run a second job's whole loop on
    // top of the first job's unfinished model.
    let job_pools = (0..cfg.jobs)
        .map(|_| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(cfg.threads)
                .build()
                .map_err(Error::from)
        })
        .collect::<Result<Vec<_>>>()?;
    std::thread::scope(|scope| {
        for job_pool in &job_pools {
            scope.spawn(|| work.job(job_pool));
        }
    });
    work.finish(start)
}

/// The models a run must train, found before it starts.
struct Todo {
    /// Missing or corrupt models of the shard, in order.
    pending: Vec<usize>,
    /// Corrupt records moved aside (they are in `pending` too).
    corrupt: Vec<usize>,
    /// Models of the shard already done.
    n_done: usize,
}

/// Scan the experiment for the models of `cfg.shard` still to train, moving
/// corrupt records aside under the model's claim.
fn pending_models(exp: &Experiment, cfg: &RunConfig, obs: &dyn Observer) -> Result<Todo> {
    let in_shard = |i: &usize| cfg.shard.is_none_or(|s| s.contains(*i));
    let scan = exp.scan(cfg.n_models)?;
    exp.remove_stale_locks(&scan.done);
    let mut pending: Vec<usize> = scan.missing.iter().copied().filter(in_shard).collect();
    let mut corrupt = Vec::new();
    for c in scan.corrupt.iter().filter(|c| in_shard(&c.model)) {
        let i = c.model;
        // Another process may be rewriting it right now; only move it aside
        // under the model's claim.
        if let Some(_c) = exp.claim(i, cfg.shard)? {
            obs.corrupt(i, &c.reason);
            let dst = exp.quarantine(i)?;
            exp.log(&format!(
                "model {i}: {}; moved to {}",
                c.reason,
                dst.display()
            ));
            corrupt.push(i);
        }
        pending.push(i);
    }
    pending.sort_unstable();
    let n_done = scan.done.iter().filter(|i| in_shard(i)).count();
    Ok(Todo {
        pending,
        corrupt,
        n_done,
    })
}

/// What every model of a run reads: the device, the tokenized corpus (built
/// once per experiment, `DIR/tokens.bin`), the queries and the initial
/// checkpoint.
struct Inputs {
    device: Device,
    data: TokenizedCorpus,
    queries: Option<TokenizedCorpus>,
    /// The exposure candidates' texts (`--canaries`), tokenized.
    candidates: Option<TokenizedCorpus>,
    init: Option<Checkpoint>,
    /// What runs the matrix products (kept in each record's sidecar).
    engine: String,
}

impl Inputs {
    fn load(exp: &Experiment, cfg: &RunConfig) -> Result<Self> {
        let ctx = exp.manifest().model.ctx;
        let device = select_device(cfg.device)?;
        cfmem_core::set_tf32(cfg.tf32 && device.is_cuda());
        let data = TokenizedCorpus::from_table(exp.token_table()?, ctx)?;
        let init = exp.checkpoint()?;
        let queries = match exp.query_token_table()? {
            Some(t) => Some(TokenizedCorpus::from_table(t, ctx)?),
            None => None,
        };
        let candidates = match &exp.manifest().exposure {
            Some(x) => {
                let docs = cfmem_core::Corpus::from_documents(x.documents(exp.manifest().seed))?;
                let tok = exp.tokenizer()?;
                Some(TokenizedCorpus::new(&docs, tok.as_ref(), ctx)?)
            }
            None => None,
        };
        let precision = exp.manifest().train.precision;
        let engine = if device.is_cuda() {
            format!("cuda/{}", if cfg.tf32 { "tf32" } else { "fp32" })
        } else {
            precision.engine_name()
        };
        if engine == "bf16/portable" {
            tracing::warn!(
                "bf16 products run on the portable engine: this CPU has no AVX512-BF16; \
                 the records are the same, the training several times slower than fp32"
            );
        }
        Ok(Self {
            device,
            data,
            queries,
            candidates,
            init,
            engine,
        })
    }
}

/// A run in progress, shared by its job threads.
struct Work<'a> {
    exp: &'a Experiment,
    cfg: &'a RunConfig,
    obs: &'a dyn Observer,
    inputs: &'a Inputs,
    summary: Mutex<RunSummary>,
    queue: Mutex<VecDeque<usize>>,
}

impl Work<'_> {
    /// One job's loop: claim an ensemble's worth of models, train them on
    /// `pool`, write their records; until the queue is empty or the run is
    /// stopped.
    fn job(&self, pool: &rayon::ThreadPool) {
        while !self.cfg.stop.load(Ordering::SeqCst) {
            let claims = self.claim_chunk();
            if claims.is_empty() {
                break;
            }
            let chunk: Vec<usize> = claims.iter().map(|(i, _)| *i).collect();
            self.obs.models_started(&chunk);
            let t0 = Instant::now();
            let inputs = self.inputs;
            let result =
                pool.install(|| train_chunk(self.exp, inputs, &chunk, self.cfg.save_models));
            let secs = t0.elapsed().as_secs_f64() / chunk.len() as f64;
            match result {
                Ok(records) => {
                    for (r, side) in records {
                        self.write_model(&r, &side, secs, chunk.len());
                    }
                }
                Err(e) => {
                    let mut s = lock(&self.summary);
                    for &i in &chunk {
                        self.obs.model_failed(i, &e);
                        self.exp.log(&format!("model {i}: failed: {e}"));
                        s.failed.push(FailedModel::new(i, &e));
                    }
                }
            }
            // The claims are held until the records are written.
            drop(claims);
        }
    }

    /// Claim up to `ensemble` models from the queue; models claimed by
    /// another process are left to it.
    fn claim_chunk(&self) -> Vec<(usize, Claim)> {
        let mut claims = Vec::new();
        let mut q = lock(&self.queue);
        while claims.len() < self.cfg.ensemble {
            let Some(i) = q.pop_front() else { break };
            match self.exp.claim(i, self.cfg.shard) {
                Ok(Some(c)) => claims.push((i, c)),
                Ok(None) => {
                    self.obs.model_elsewhere(i);
                    lock(&self.summary).elsewhere.push(i);
                }
                Err(e) => {
                    self.obs.model_failed(i, &e);
                    lock(&self.summary).failed.push(FailedModel::new(i, &e));
                }
            }
        }
        claims
    }

    /// Write a trained model's files: those beside the record first, so
    /// that they exist whenever the record does.
    fn write_model(&self, r: &Record, side: &Beside, secs: f64, ensemble: usize) {
        let i = r.model;
        let meta = RecordMeta {
            seconds: secs,
            ensemble,
            threads: self.cfg.threads,
            shard: self.cfg.shard.map(|s| s.to_string()),
            engine: Some(self.inputs.engine.clone()),
        };
        let written = match &side.tokens {
            Some(t) => self.exp.write_token_scores(i, t),
            None => Ok(()),
        }
        .and_then(|()| match &side.extraction {
            Some(e) => self.exp.write_extraction(i, e),
            None => Ok(()),
        })
        .and_then(|()| match &side.exposure {
            Some(e) => self.exp.write_exposure(i, e),
            None => Ok(()),
        })
        .and_then(|()| self.exp.write(r, &meta));
        let mut s = lock(&self.summary);
        match written {
            Ok(()) => {
                self.obs.model_done(i, secs, r.train.tokens);
                s.trained.push(i);
                s.tokens += r.train.tokens;
            }
            Err(e) => {
                self.obs.model_failed(i, &e);
                s.failed.push(FailedModel::new(i, &e));
            }
        }
    }

    /// The summary, in model order; [`Error::ModelsFailed`] if any failed.
    fn finish(self, start: Instant) -> Result<RunSummary> {
        let mut s = self.summary.into_inner().unwrap_or_else(|p| p.into_inner());
        s.not_started = self
            .queue
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .collect();
        s.trained.sort_unstable();
        s.elsewhere.sort_unstable();
        s.failed.sort_by_key(|f| f.model);
        s.seconds = start.elapsed().as_secs_f64();
        if s.failed.is_empty() {
            Ok(s)
        } else {
            Err(Error::ModelsFailed(Box::new(s)))
        }
    }
}

/// candle's matrix products split over a process-wide thread count
/// ([`cfmem_core::matmul_threads`]), which only the program sets
/// ([`cfmem_core::settle_process`]). Fewer than a job's pool leaves the
/// pool's other threads idle in every product: say so.
fn warn_matmul_threads(cfg: &RunConfig) {
    let matmul = cfmem_core::matmul_threads();
    if cfg.device == DeviceChoice::Cpu && matmul < cfg.threads {
        tracing::warn!(
            "matrix products split over {matmul} thread(s) (RAYON_NUM_THREADS), fewer than the {} per job asked for; \
             call cfmem_core::settle_process(Some({})) at the start of main",
            cfg.threads,
            cfg.threads
        );
    }
}

/// What a model keeps beside its record.
struct Beside {
    /// Per-token results (`--per-token`).
    tokens: Option<TokenScores>,
    /// Matched lengths (`--extraction`).
    extraction: Option<Vec<u8>>,
    /// Log-perplexity (nats) of each exposure candidate (`--canaries`).
    exposure: Option<Vec<f32>>,
}

/// Train one ensemble and evaluate it on every document.
fn train_chunk(
    exp: &Experiment,
    inputs: &Inputs,
    chunk: &[usize],
    save_models: bool,
) -> Result<Vec<(Record, Beside)>> {
    let (data, device) = (&inputs.data, &inputs.device);
    let (queries, candidates) = (inputs.queries.as_ref(), inputs.candidates.as_ref());
    let init = inputs.init.as_ref();
    let m = exp.manifest();
    let first = chunk[0];
    let wrap = |e: cfmem_core::Error| Error::Model {
        model: first,
        source: Box::new(e),
    };
    // Each model's documents: its design row over the units, expanded.
    let rows: Vec<Vec<u32>> = chunk
        .iter()
        .map(|&i| exp.membership_row(i))
        .collect::<Result<_>>()?;
    let jobs: Vec<ModelJob> = chunk
        .iter()
        .zip(&rows)
        .map(|(&i, row)| ModelJob {
            model: i,
            subset: Subset::from_copies(row),
            init_seed: m.init_seed(i),
            data_seed: m.data_seed(i),
        })
        .collect();
    let mut ensemble = Ensemble::new(&m.model, &m.train, data, &jobs)
        .dtype(DType::F32)
        .device(device);
    if let Some(c) = init {
        ensemble = ensemble.init(c);
    }
    let trained = ensemble.train(None).map_err(wrap)?;
    let (model, stats) = (trained.model, trained.stats);
    if save_models {
        for (k, &i) in chunk.iter().enumerate() {
            Checkpoint::save(&model, k, exp.layout().weights(i)).map_err(wrap)?;
        }
    }
    let (evals, mut tokens) = if m.per_token || m.extraction.is_some() {
        evaluate_tokens(&model, data, m.eval_batch, device).map_err(wrap)?
    } else {
        (
            evaluate(&model, data, m.eval_batch, device).map_err(wrap)?,
            Vec::new(),
        )
    };
    let query_evals = match queries {
        Some(q) => Some(evaluate(&model, q, m.eval_batch, device).map_err(wrap)?),
        None => None,
    };
    let candidate_evals = match candidates {
        Some(c) => Some(evaluate(&model, c, m.eval_batch, device).map_err(wrap)?),
        None => None,
    };
    let hash = m.hash();
    chunk
        .iter()
        .zip(rows)
        .enumerate()
        .map(|(k, (&i, row))| {
            let mut r = Record::new(i, hash.clone(), row, stats[k].clone(), &evals[k]);
            r.queries = query_evals.as_ref().map(|q| Evals::new(&q[k]));
            let t = (k < tokens.len()).then(|| std::mem::take(&mut tokens[k]));
            let extraction = match (&m.extraction, &t) {
                (Some(e), Some(t)) => Some(extraction(data, t, e).map_err(wrap)?),
                _ => None,
            };
            let side = Beside {
                tokens: t.filter(|_| m.per_token),
                extraction,
                exposure: candidate_evals
                    .as_ref()
                    .map(|c| c[k].iter().map(|e| e.sum_nll as f32).collect()),
            };
            Ok((r, side))
        })
        .collect()
}
