//! A ready-made [`Observer`] that prints one line per event to standard
//! error: for programs without a terminal progress bar (examples, scripts,
//! batch jobs).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use cfmem_analysis::CoverageProblem;

use crate::error::Error;
use crate::exec::Observer;

/// Prints the start of a run, every `every`-th finished model (with the
/// overall training rate), design problems, corrupt records and failures.
///
/// ```no_run
/// use cfmem_sched::{run, Experiment, PrintProgress, RunConfig};
///
/// let exp = Experiment::open("experiments/devil")?;
/// run(&exp, &RunConfig::default(), &PrintProgress::every(4))?;
/// # Ok::<(), cfmem_sched::Error>(())
/// ```
#[derive(Debug)]
pub struct PrintProgress {
    every: usize,
    total: AtomicUsize,
    done: AtomicUsize,
    tokens: AtomicU64,
    start: Instant,
}

impl Default for PrintProgress {
    fn default() -> Self {
        Self::every(1)
    }
}

impl PrintProgress {
    /// A line for every `n`-th model finished in this run (at least 1).
    pub fn every(n: usize) -> Self {
        Self {
            every: n.max(1),
            total: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            tokens: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    /// The line for a finished model, or `None` when it is not one to print.
    fn done_line(&self, model: usize, seconds: f64, tokens: u64) -> Option<String> {
        let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let all = self.tokens.fetch_add(tokens, Ordering::SeqCst) + tokens;
        let elapsed = self.start.elapsed().as_secs_f64();
        let total = self.total.load(Ordering::SeqCst);
        (n.is_multiple_of(self.every) || n == total).then(|| {
            format!(
                "[{n}/{total}] model {model} trained in {seconds:.1} s; {:.0} tokens/s overall; {elapsed:.0} s elapsed",
                all as f64 / elapsed.max(1e-9)
            )
        })
    }
}

impl Observer for PrintProgress {
    fn start(&self, pending: usize, done: usize) {
        self.total.store(pending, Ordering::SeqCst);
        self.done.store(0, Ordering::SeqCst);
        if pending > 0 {
            eprintln!("{pending} models to train ({done} already done)");
        }
    }
    fn design_problems(&self, problems: &[CoverageProblem]) {
        eprintln!("{}", describe_problems(problems));
    }
    fn corrupt(&self, model: usize, message: &str) {
        eprintln!("warning: {message}; moving it aside and retraining model {model}");
    }
    fn model_done(&self, model: usize, seconds: f64, tokens: u64) {
        if let Some(line) = self.done_line(model, seconds, tokens) {
            eprintln!("{line}");
        }
    }
    fn model_failed(&self, model: usize, error: &Error) {
        eprintln!("error: model {model} failed: {error}");
    }
}

/// One line about the units that will have no estimate.
pub fn describe_problems(problems: &[CoverageProblem]) -> String {
    match problems.first() {
        None => String::new(),
        Some(first) => format!(
            "warning: {} units have no model on one side and will have no estimate yet (first: {first}); train more models",
            problems.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_every_nth_and_the_last() {
        let p = PrintProgress::every(2);
        p.total.store(3, Ordering::SeqCst);
        let lines: Vec<Option<String>> = (0..3).map(|i| p.done_line(i, 1.0, 10)).collect();
        assert!(lines[0].is_none());
        assert!(lines[1].as_ref().unwrap().starts_with("[2/3] model 1"));
        assert!(lines[2].as_ref().unwrap().starts_with("[3/3] model 2"));
    }
}
