//! Claims: an exclusive `flock` on `runs/model-NNNNNN.lock`, held while a
//! model trains, so that any number of processes (shards, or plain
//! concurrent runs, on one or many machines sharing the directory) never
//! train the same model twice at once.
//!
//! The kernel drops a lock when its process dies, however it dies, so a
//! model claimed by a dead worker is simply free again on the next run.
//! After taking a claim the worker checks again for a finished record, so a
//! model finished by another process in the meantime is not retrained.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::PathBuf;

use crate::error::{io, Result};
use crate::experiment::Experiment;
use crate::shard::Shard;

/// An exclusive claim on a model; released (and its lock file removed)
/// when dropped.
pub(crate) struct Claim {
    file: File,
    path: PathBuf,
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Remove first, then unlock: a process that opened the old file
        // re-checks for the record after locking it.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

impl Experiment {
    /// Whether some live process holds model `i`'s claim (it is training it).
    pub fn is_claimed(&self, i: usize) -> bool {
        let Ok(f) = File::open(self.layout().lock(i)) else {
            return false;
        };
        match f.try_lock() {
            Ok(()) => {
                let _ = f.unlock();
                false
            }
            Err(_) => true,
        }
    }

    /// Try to claim model `i`: `None` when another process holds it or a
    /// valid record appeared.
    pub(crate) fn claim(&self, i: usize, shard: Option<Shard>) -> Result<Option<Claim>> {
        let path = self.layout().lock(i);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        let claim = Claim {
            file: file.try_clone().map_err(io(&path))?,
            path,
        };
        if self.read(i).is_ok() {
            return Ok(None);
        }
        // Who holds it, for `cfmem status`.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let _ = file.set_len(0);
        let _ = writeln!(
            file,
            "pid {} host {} shard {}",
            std::process::id(),
            host.trim(),
            shard.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
        );
        // Leftover temp files of this model come from dead writers: we hold the claim.
        self.layout().remove_temps_of(i);
        Ok(Some(claim))
    }

    /// Remove the lock files of finished models that no process holds (a
    /// process killed between writing a record and releasing its claim
    /// leaves one behind).
    pub(crate) fn remove_stale_locks(&self, done: &[usize]) {
        for &i in done {
            let p = self.layout().lock(i);
            if p.exists() && !self.is_claimed(i) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}
