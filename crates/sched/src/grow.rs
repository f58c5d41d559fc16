//! Growing an experiment until its estimates are reliable: train a round of
//! models, measure the split-half Spearman of the estimates (averaged over
//! random partitions of the models, with a bootstrap interval over
//! documents), and add models a step at a time until the lower end of that
//! interval reaches the target or the budget is spent.

use std::time::Instant;

use cfmem_analysis::{convergence, ConvergenceConfig, ConvergencePoint, ReportConfig};

use crate::error::{Error, Result};
use crate::exec::{run, Observer, RunConfig, RunSummary};
use crate::experiment::Experiment;

/// When to stop growing.
///
/// | field | meaning |
/// |---|---|
/// | `target` | split-half Spearman that the lower end of its interval must reach, in (0, 1) |
/// | `budget` | most models in all |
/// | `report` | [`ReportConfig::default`] | how the estimates are computed (as `cfmem report`) |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// Split-half Spearman to reach.
    pub target: f64,
    /// Most models in all.
    pub budget: usize,
    /// How the estimates are computed.
    pub report: ReportConfig,
}

/// One round of growth.
#[derive(Debug, Clone)]
pub struct Round {
    /// Models in the experiment after the round.
    pub n_models: usize,
    /// Split-half convergence at `n_models`.
    pub point: Option<ConvergencePoint>,
    /// Wall seconds since growth started.
    pub seconds: f64,
    /// What the round's run did.
    pub summary: RunSummary,
}

impl Growth {
    /// Whether a round's point meets the target: the lower end of the
    /// split-half Spearman's interval (bootstrap over documents) is at or
    /// above it, so a noisy crossing of the target does not stop growth.
    pub fn reached(&self, p: &ConvergencePoint) -> bool {
        p.ci_low.is_some_and(|lo| lo >= self.target)
    }

    /// The step between rounds and the first round's size for a design with
    /// blocks of `block` models: whole pairs of blocks (so both halves of
    /// the split stay balanced), at least 8 models a step, starting at two
    /// steps or what is already there.
    pub fn plan(&self, block: usize, existing: usize) -> (usize, usize) {
        let pair = 2 * block.max(1);
        let step = 8usize.div_ceil(pair) * pair;
        let start = existing.max(2 * step).div_ceil(pair) * pair;
        (start.min(self.budget), step)
    }
}

/// Grow `exp` (with `cfg`'s jobs, threads and device; its `n_models` is
/// ignored) until [`Growth::target`] or [`Growth::budget`]; `on_round` sees
/// each round. Stops early, returning the rounds so far, when a round was
/// interrupted (the caller reports it).
///
/// # Errors
/// A target outside (0, 1) or a zero budget; run errors (among them
/// [`Error::ModelsFailed`]) and analysis errors.
pub fn grow(
    exp: &Experiment,
    cfg: &RunConfig,
    growth: &Growth,
    observer: &dyn Observer,
    on_round: &mut dyn FnMut(&Round),
) -> Result<Vec<Round>> {
    if !(growth.target > 0.0 && growth.target < 1.0) {
        return Err(Error::InvalidSetting {
            setting: "reliability target",
            value: growth.target.to_string(),
            expected: "a correlation between 0 and 1, e.g. 0.9",
        });
    }
    if growth.budget == 0 {
        return Err(Error::InvalidSetting {
            setting: "model budget",
            value: growth.budget.to_string(),
            expected: "at least 1",
        });
    }
    let existing = exp.n_recorded()?;
    let (mut n, step) = growth.plan(exp.manifest().design().block_size(), existing);
    let started = Instant::now();
    let mut rounds = Vec::new();
    loop {
        exp.set_target_models(n)?;
        let summary = run(
            exp,
            &RunConfig {
                n_models: n,
                ..cfg.clone()
            },
            observer,
        )?;
        let halted = !summary.not_started.is_empty();
        let point = if halted {
            None
        } else {
            let cfg = ConvergenceConfig {
                report: growth.report,
                ..ConvergenceConfig::default()
            };
            convergence(exp, &cfg)?.last().cloned()
        };
        let round = Round {
            n_models: n,
            point,
            seconds: started.elapsed().as_secs_f64(),
            summary,
        };
        on_round(&round);
        let reached = round.point.as_ref().is_some_and(|p| growth.reached(p));
        rounds.push(round);
        if halted || reached || n >= growth.budget {
            return Ok(rounds);
        }
        n = (n + step).min(growth.budget);
    }
}
