//! The executor: trains the missing models of an experiment in parallel.

use std::sync::Mutex;
use std::time::Instant;

use cfmem_analysis::CoverageProblem;
use cfmem_core::{
    evaluate, select_device, train_ensemble, ByteTokenizer, DType, DeviceChoice, ModelJob, Subset,
    TokenizedCorpus,
};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::record::{encode, meta_path, record_path, write_atomic, Record, RecordMeta};

/// How to run.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `n_models` | 16 | models `0..n_models` must exist when done |
/// | `jobs` | cores | models (or ensembles) trained at once |
/// | `threads` | 1 | matrix-product threads per job (sets `RAYON_NUM_THREADS`, process-wide) |
/// | `ensemble` | 1 | models packed into one ensemble graph |
/// | `device` | cpu | where to train |
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Target number of models.
    pub n_models: usize,
    /// Parallel jobs.
    pub jobs: usize,
    /// Threads per job.
    pub threads: usize,
    /// Models per ensemble.
    pub ensemble: usize,
    /// Device.
    pub device: DeviceChoice,
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
        }
    }
}

/// Callbacks from a run (all optional). Called from worker threads.
pub trait Observer: Sync {
    /// The run starts: `pending` models to train, `done` already finished.
    fn start(&self, _pending: usize, _done: usize) {}
    /// Units that will have no estimate with this many models.
    fn design_problems(&self, _problems: &[CoverageProblem]) {}
    /// A corrupt record was found and moved aside.
    fn corrupt(&self, _model: usize, _message: &str) {}
    /// A model finished: its index, wall seconds (its share of the ensemble), trained tokens.
    fn model_done(&self, _model: usize, _seconds: f64, _tokens: u64) {}
    /// A model failed.
    fn model_failed(&self, _model: usize, _error: &Error) {}
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
    /// Corrupt records moved aside (and retrained).
    pub corrupt: Vec<usize>,
    /// Models that failed, with the error message.
    pub failed: Vec<(usize, String)>,
    /// Tokens trained in this run.
    pub tokens: u64,
    /// Wall seconds.
    pub seconds: f64,
    /// Units with no model on one side.
    pub design_problems: Vec<CoverageProblem>,
}

/// Train every missing model of `exp` up to `cfg.n_models`, writing one
/// record per model as it finishes. Models that fail are reported in the
/// summary; every other record is still written.
///
/// # Errors
/// Bad settings, an unusable device, I/O errors on the experiment directory.
pub fn run(exp: &Experiment, cfg: &RunConfig, obs: &dyn Observer) -> Result<RunSummary> {
    if cfg.jobs == 0 || cfg.threads == 0 || cfg.ensemble == 0 {
        return Err(Error::Config(
            "jobs, threads and ensemble must be at least 1".into(),
        ));
    }
    let start = Instant::now();
    // candle reads the matrix-product thread count from this variable on
    // every product; it is process-wide.
    std::env::set_var("RAYON_NUM_THREADS", cfg.threads.to_string());
    let m = exp.manifest();
    let n_docs = exp.corpus().len();
    let membership = m.design.membership(cfg.n_models, n_docs)?;
    let problems = membership.coverage_problems();
    if !problems.is_empty() {
        obs.design_problems(&problems);
    }
    let scan = exp.scan(cfg.n_models)?;
    let mut pending = scan.missing.clone();
    let mut corrupt = Vec::new();
    for (i, msg) in &scan.corrupt {
        obs.corrupt(*i, msg);
        let dst = exp.quarantine(*i)?;
        exp.log(&format!("model {i}: {msg}; moved to {}", dst.display()));
        corrupt.push(*i);
        pending.push(*i);
    }
    pending.sort_unstable();
    obs.start(pending.len(), scan.done.len());
    let device = select_device(cfg.device)?;
    let data = TokenizedCorpus::new(exp.corpus(), &ByteTokenizer, m.model.ctx)?;
    let summary = Mutex::new(RunSummary {
        n_already_done: scan.done.len(),
        corrupt,
        design_problems: problems,
        ..Default::default()
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.jobs)
        .build()
        .map_err(|e| Error::Config(format!("thread pool: {e}")))?;
    let chunks: Vec<&[usize]> = pending.chunks(cfg.ensemble).collect();
    pool.install(|| {
        chunks.par_iter().for_each(|chunk| {
            let t0 = Instant::now();
            let result = train_chunk(exp, &data, &membership, chunk, &device);
            let secs = t0.elapsed().as_secs_f64() / chunk.len() as f64;
            match result {
                Ok(records) => {
                    for r in records {
                        let i = r.model;
                        let written = write_atomic(&record_path(&exp.runs_dir(), i), &encode(&r))
                            .and_then(|_| {
                                let meta = RecordMeta {
                                    seconds: secs,
                                    ensemble: chunk.len(),
                                    threads: cfg.threads,
                                    shard: None,
                                };
                                let bytes = serde_json::to_vec_pretty(&meta).unwrap_or_default();
                                write_atomic(&meta_path(&exp.runs_dir(), i), &bytes)
                            });
                        let mut s = summary.lock().unwrap_or_else(|p| p.into_inner());
                        match written {
                            Ok(()) => {
                                obs.model_done(i, secs, r.train.tokens);
                                s.trained.push(i);
                                s.tokens += r.train.tokens;
                            }
                            Err(e) => {
                                obs.model_failed(i, &e);
                                s.failed.push((i, e.to_string()));
                            }
                        }
                    }
                }
                Err(e) => {
                    let mut s = summary.lock().unwrap_or_else(|p| p.into_inner());
                    for &i in chunk.iter() {
                        obs.model_failed(i, &e);
                        exp.log(&format!("model {i}: failed: {e}"));
                        s.failed.push((i, e.to_string()));
                    }
                }
            }
        });
    });
    let mut s = summary.into_inner().unwrap_or_else(|p| p.into_inner());
    s.trained.sort_unstable();
    s.failed.sort_by_key(|f| f.0);
    s.seconds = start.elapsed().as_secs_f64();
    Ok(s)
}

/// Train one ensemble and evaluate it on every document.
fn train_chunk(
    exp: &Experiment,
    data: &TokenizedCorpus,
    membership: &cfmem_analysis::Membership,
    chunk: &[usize],
    device: &cfmem_core::Device,
) -> Result<Vec<Record>> {
    let m = exp.manifest();
    let first = chunk[0];
    let wrap = |e: cfmem_core::Error| Error::Model {
        model: first,
        source: e,
    };
    let jobs: Vec<ModelJob> = chunk
        .iter()
        .map(|&i| ModelJob {
            model: i,
            subset: Subset::from_copies(membership.row(i)),
            init_seed: m.init_seed(i),
            data_seed: m.data_seed(i),
        })
        .collect();
    let (model, stats) =
        train_ensemble(&m.model, &m.train, data, &jobs, DType::F32, device, None).map_err(wrap)?;
    let evals = evaluate(&model, data, m.eval_batch, device).map_err(wrap)?;
    let hash = m.hash();
    Ok(chunk
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            Record::new(
                i,
                hash.clone(),
                membership.row(i).to_vec(),
                stats[k].clone(),
                &evals[k],
            )
        })
        .collect())
}
