//! Progress on a terminal (a bar) or in a log (lines), and Ctrl-C.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cfmem_analysis::CoverageProblem;
use cfmem_sched::{describe_problems, Observer, PrintProgress};
use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar (models done/total, tokens/s, ETA) on a terminal; the
/// library's line printer otherwise.
pub enum Bar {
    Terminal {
        bar: ProgressBar,
        total: usize,
        tokens: AtomicU64,
        start: Instant,
    },
    Lines(PrintProgress),
}

impl Bar {
    /// For `total` models (0: learn the size per round, as growth does).
    pub fn new(total: usize) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self::Lines(PrintProgress::every(1));
        }
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} models  {msg}  ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Self::Terminal {
            bar,
            total,
            tokens: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    pub fn finish(&self) {
        if let Self::Terminal { bar, .. } = self {
            bar.finish_and_clear();
        }
    }

    fn say(&self, line: String) {
        match self {
            Self::Terminal { bar, .. } => bar.println(line),
            Self::Lines(_) => eprintln!("{line}"),
        }
    }
}

impl Observer for Bar {
    fn start(&self, pending: usize, done: usize) {
        match self {
            Self::Terminal { bar, total, .. } => {
                let len = if *total > 0 { *total } else { pending + done };
                bar.set_length(len as u64);
                bar.set_position(done as u64);
                bar.reset_eta();
            }
            Self::Lines(p) => p.start(pending, done),
        }
    }
    fn design_problems(&self, problems: &[CoverageProblem]) {
        self.say(describe_problems(problems));
    }
    fn corrupt(&self, model: usize, message: &str) {
        self.say(format!(
            "warning: {message}; moving it aside and retraining model {model}"
        ));
    }
    fn model_done(&self, model: usize, seconds: f64, tokens: u64) {
        match self {
            Self::Terminal {
                bar,
                tokens: all,
                start,
                ..
            } => {
                let t = all.fetch_add(tokens, Ordering::SeqCst) + tokens;
                let rate = t as f64 / start.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("{rate:.0} tokens/s"));
                bar.inc(1);
            }
            Self::Lines(p) => p.model_done(model, seconds, tokens),
        }
    }
    fn model_failed(&self, model: usize, error: &cfmem_sched::Error) {
        self.say(format!("error: model {model} failed: {error}"));
    }
}

/// First Ctrl-C: start no new model, finish the ones in training. Second:
/// abandon them (records are written atomically, so nothing partial remains).
pub fn install_ctrl_c(stop: Arc<AtomicBool>, dir: &Path) {
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
