//! Every path of an experiment directory, in one place.
//!
//! ```text
//! DIR/manifest.json                 everything that determines the records
//! DIR/corpus.jsonl                  the validated corpus (the experiment is self-contained)
//! DIR/queries.jsonl                 the query corpus, when the experiment has one
//! DIR/tokenizer.json                a Hugging Face tokenizer (trained BPE or a user's file), when the manifest names one
//! DIR/tokens.bin                    the corpus tokenized once (`tokens.rs`); queries.tokens.bin likewise
//! DIR/target.json                   the number of models last asked for
//! DIR/log.txt                       what runs did (corrupt records moved, failures)
//! DIR/runs/model-NNNNNN.rec         one checksummed record per finished model
//! DIR/runs/model-NNNNNN.meta.json   wall time, ensemble size, threads, shard
//! DIR/runs/model-NNNNNN.lock        the claim of the process training model NNNNNN
//! DIR/runs/.NAME.PID.tmp            a file being written (renamed into place when complete)
//! DIR/runs/corrupt/                 records that failed verification, moved aside
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{io, Result};

/// The paths of one experiment directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn manifest(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }

    pub(crate) fn corpus(&self) -> PathBuf {
        self.dir.join("corpus.jsonl")
    }

    pub(crate) fn queries(&self) -> PathBuf {
        self.dir.join("queries.jsonl")
    }

    pub(crate) fn tokenizer(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }

    pub(crate) fn init(&self) -> PathBuf {
        self.dir.join("init.safetensors")
    }

    pub(crate) fn init_config(&self) -> PathBuf {
        self.dir.join("init.config.json")
    }

    pub(crate) fn tokens(&self) -> PathBuf {
        self.dir.join("tokens.bin")
    }

    pub(crate) fn query_tokens(&self) -> PathBuf {
        self.dir.join("queries.tokens.bin")
    }

    pub(crate) fn spectrum(&self) -> PathBuf {
        self.dir.join("spectrum.json")
    }

    pub(crate) fn target(&self) -> PathBuf {
        self.dir.join("target.json")
    }

    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("log.txt")
    }

    pub(crate) fn runs(&self) -> PathBuf {
        self.dir.join("runs")
    }

    pub(crate) fn record(&self, i: usize) -> PathBuf {
        self.runs().join(format!("model-{i:06}.rec"))
    }

    pub(crate) fn token_scores(&self, i: usize) -> PathBuf {
        self.runs().join(format!("model-{i:06}.tok"))
    }

    pub(crate) fn extraction(&self, i: usize) -> PathBuf {
        self.runs().join(format!("model-{i:06}.ext"))
    }

    pub(crate) fn exposure(&self, i: usize) -> PathBuf {
        self.runs().join(format!("model-{i:06}.xps"))
    }

    pub(crate) fn weights(&self, i: usize) -> PathBuf {
        self.runs().join(format!("model-{i:06}.safetensors"))
    }

    pub(crate) fn meta(&self, i: usize) -> PathBuf {
        self.runs().join(format!("model-{i:06}.meta.json"))
    }

    pub(crate) fn lock(&self, i: usize) -> PathBuf {
        self.runs().join(format!("model-{i:06}.lock"))
    }

    pub(crate) fn corrupt(&self) -> PathBuf {
        self.runs().join("corrupt")
    }

    /// Where model `i`'s corrupt record goes (`stamp` keeps earlier ones).
    pub(crate) fn quarantined(&self, i: usize, stamp: u128) -> PathBuf {
        self.corrupt().join(format!("model-{i:06}.rec.{stamp}"))
    }

    /// The model index of a record file name (`model-NNNNNN.rec`).
    pub(crate) fn record_index(name: &str) -> Option<usize> {
        name.strip_prefix("model-")?
            .strip_suffix(".rec")?
            .parse()
            .ok()
    }

    /// Whether `name` is a temp file of one of model `i`'s files.
    pub(crate) fn is_temp_of(name: &str, i: usize) -> bool {
        name.starts_with(&format!(".model-{i:06}.")) && name.ends_with(".tmp")
    }

    /// The temp file `write_atomic` writes `path` through.
    fn temp_for(path: &Path) -> PathBuf {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        dir.join(format!(".{name}.{}.tmp", std::process::id()))
    }

    /// Indices of all models with a record file (valid or not), sorted.
    pub(crate) fn record_indices(&self) -> Result<Vec<usize>> {
        let runs = self.runs();
        let rd = match std::fs::read_dir(&runs) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&runs)(e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let name = entry.map_err(io(&runs))?.file_name();
            if let Some(i) = Self::record_index(&name.to_string_lossy()) {
                out.push(i);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Remove model `i`'s leftover temp files (their writers are dead: the
    /// caller holds the model's claim).
    pub(crate) fn remove_temps_of(&self, i: usize) {
        if let Ok(rd) = std::fs::read_dir(self.runs()) {
            for e in rd.flatten() {
                if Self::is_temp_of(&e.file_name().to_string_lossy(), i) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// Remove everything an experiment keeps in the directory (other files
    /// in it are left alone).
    pub(crate) fn discard(&self) -> Result<()> {
        for p in [
            self.manifest(),
            self.corpus(),
            self.queries(),
            self.tokenizer(),
            self.init(),
            self.init_config(),
            self.tokens(),
            self.query_tokens(),
            self.target(),
            self.log(),
        ] {
            if p.exists() {
                std::fs::remove_file(&p).map_err(io(&p))?;
            }
        }
        let runs = self.runs();
        if runs.exists() {
            std::fs::remove_dir_all(&runs).map_err(io(&runs))?;
        }
        Ok(())
    }

    /// Append a line to `log.txt` (best effort).
    pub(crate) fn append_log(&self, line: &str) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Write `bytes` to `path` atomically: a temp file in the same directory,
/// fsync, rename, fsync of the directory.
///
/// # Errors
/// I/O errors naming the path.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = Layout::temp_for(path);
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    // Fault injection for the kill tests: widen the window between the
    // temp file and the rename, so a test can kill a process mid-write.
    if let Some(ms) = std::env::var("CFMEM_FAULT_WRITE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Ok(d) = std::fs::File::open(path.parent().unwrap_or(Path::new("."))) {
        // Directory fsync makes the rename durable; not supported everywhere.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        let l = Layout::new("/x");
        let rec = l.record(42);
        let name = rec.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, "model-000042.rec");
        assert_eq!(Layout::record_index(&name), Some(42));
        assert_eq!(Layout::record_index("model-000042.meta.json"), None);
        assert_eq!(Layout::record_index("model-x.rec"), None);
        let tmp = Layout::temp_for(&rec);
        let tmp = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(Layout::is_temp_of(&tmp, 42) && !Layout::is_temp_of(&tmp, 4));
        let meta_tmp = Layout::temp_for(&l.meta(42));
        assert!(Layout::is_temp_of(
            &meta_tmp.file_name().unwrap().to_string_lossy(),
            42
        ));
    }

    #[test]
    fn atomic_write_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.rec");
        write_atomic(&p, b"hello").unwrap();
        write_atomic(&p, b"world").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"world");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
