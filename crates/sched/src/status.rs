//! Where an experiment stands: models done, pending, in training and
//! corrupt, compute spent, and progress per shard.

use crate::error::Result;
use crate::experiment::{CorruptRecord, Experiment};
use crate::shard::Shard;

/// The state of an experiment ([`Experiment::status`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Documents in the corpus.
    pub n_docs: usize,
    /// Models wanted: the last count asked for, or as many as there are records.
    pub n_wanted: usize,
    /// Models with a valid record.
    pub done: Vec<usize>,
    /// Models without a record (some may be in training).
    pub pending: Vec<usize>,
    /// Pending models some live process is training now.
    pub running: Vec<usize>,
    /// Records that failed verification (the next run moves them aside and retrains).
    pub corrupt: Vec<CorruptRecord>,
    /// Worker seconds spent on the finished models.
    pub seconds: f64,
    /// Core seconds (worker seconds × threads per worker).
    pub core_seconds: f64,
    /// Per shard, when the runs were sharded (or a shard count was given).
    pub shards: Vec<ShardStatus>,
}

/// Progress of one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardStatus {
    /// The shard.
    pub shard: Shard,
    /// Its models among those wanted.
    pub wanted: usize,
    /// Of those, done.
    pub done: usize,
    /// Of those, in training now.
    pub running: usize,
}

impl Experiment {
    /// Where the experiment stands. `shards` splits the progress per shard;
    /// by default the shard count recorded by sharded runs is used.
    ///
    /// ```no_run
    /// let s = cfmem_sched::Experiment::open("experiments/devil")?.status(None)?;
    /// println!("{} of {} models done, {} in training", s.done.len(), s.n_wanted, s.running.len());
    /// # Ok::<(), cfmem_sched::Error>(())
    /// ```
    ///
    /// # Errors
    /// I/O errors listing the runs directory.
    pub fn status(&self, shards: Option<usize>) -> Result<Status> {
        let n_wanted = self.target_models().unwrap_or(0).max(self.n_recorded()?);
        let scan = self.scan(n_wanted)?;
        let running: Vec<usize> = scan
            .missing
            .iter()
            .copied()
            .filter(|&i| self.is_claimed(i))
            .collect();
        let (mut seconds, mut core_seconds) = (0.0, 0.0);
        let mut count = shards;
        for &i in &scan.done {
            if let Some(meta) = self.read_meta(i) {
                seconds += meta.seconds;
                core_seconds += meta.seconds * meta.threads as f64;
                if count.is_none() {
                    count = meta
                        .shard
                        .and_then(|s| s.parse::<Shard>().ok())
                        .map(|s| s.count);
                }
            }
        }
        let shards = match count {
            Some(n) if n > 0 => (0..n)
                .filter_map(|i| Shard::new(i, n).ok())
                .map(|shard| {
                    let mine = |v: &[usize]| v.iter().filter(|&&i| shard.contains(i)).count();
                    ShardStatus {
                        shard,
                        wanted: (0..n_wanted).filter(|&i| shard.contains(i)).count(),
                        done: mine(&scan.done),
                        running: mine(&running),
                    }
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(Status {
            n_docs: self.corpus().len(),
            n_wanted,
            done: scan.done,
            pending: scan.missing,
            running,
            corrupt: scan.corrupt,
            seconds,
            core_seconds,
            shards,
        })
    }
}
