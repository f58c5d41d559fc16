//! Does bf16 keep the estimates' meaning? Four experiments on one corpus —
//! fp32 and bf16 products, each under two seeds (other subsets, other
//! initialisations) — and the Spearman correlation of their per-document
//! estimates: bf16 against fp32 under the same seed (the rounding alone),
//! against fp32 under the other seed (an independent replication), and the
//! two fp32 seeds against each other (what a replication of fp32 gives).

use std::path::Path;

use cfmem::analysis::{report, spearman_ci, Correlation, DesignKind, Difference, ReportConfig};
use cfmem::engine::{kind_of, Corpus, Precision, TrainConfig};
use cfmem::sched::{run, Experiment, Observer, OnChange, RunConfig};

use crate::shrinkage::paired_gain;
use crate::{Result, Scale, LEVEL};

/// One experiment of the study.
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionArm {
    /// Its products' arithmetic.
    pub precision: Precision,
    /// Its seed.
    pub seed: u64,
    /// Wall seconds its models took to train in this run (0 when resumed
    /// with every model already trained).
    pub seconds: f64,
    /// Random canaries − controls (mean memorization over the documents of
    /// each kind, with the design's interval), when the corpus has both.
    pub planted: Option<Difference>,
    /// Per-document estimates (model-mean adjusted per-token accuracy), in
    /// corpus order; `NaN` where a document has none.
    pub mem: Vec<f64>,
}

/// The comparison on one corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionStudy {
    /// Documents.
    pub n_docs: usize,
    /// Models per experiment.
    pub n_models: usize,
    /// fp32 and bf16 under the first seed, then under the second.
    pub arms: Vec<PrecisionArm>,
    /// Spearman(bf16, fp32), same seed: what rounding changes.
    pub same_seed: Option<Correlation>,
    /// Spearman(fp32 second seed, fp32 first seed): fp32's replication.
    pub fp32_replication: Option<Correlation>,
    /// Spearman(bf16 second seed, bf16 first seed): bf16's replication.
    pub bf16_replication: Option<Correlation>,
    /// Spearman(bf16 second seed, fp32 first seed): bf16 replicating an
    /// independent fp32 experiment.
    pub cross: Option<Correlation>,
    /// `cross − fp32_replication` (both against the first fp32
    /// experiment) with a 95 % paired bootstrap interval over documents:
    /// `(difference, low, high)`.
    pub cross_gain: Option<(f64, f64, f64)>,
}

impl PrecisionStudy {
    /// The criterion: bf16 agrees with fp32 under the same seed at least as
    /// well as two fp32 seeds agree with each other.
    pub fn holds(&self) -> bool {
        match (self.same_seed, self.fp32_replication) {
            (Some(s), Some(r)) => s.r >= r.r,
            _ => false,
        }
    }

    /// Whether every arm gives the planted prediction (canaries memorized
    /// more than controls) the same verdict; `None` without planted kinds.
    pub fn verdicts_agree(&self) -> Option<bool> {
        let v: Vec<bool> = self
            .arms
            .iter()
            .map(|a| a.planted.as_ref().map(|d| d.holds))
            .collect::<Option<_>>()?;
        Some(v.iter().all(|&h| h == v[0]))
    }
}

/// Train (or resume) the four experiments on `corpus` under `dir`
/// (`fp32-SEED`, `bf16-SEED`) with the default settings but the scale's
/// models and epochs, and compare them.
///
/// # Errors
/// Training or estimation errors.
pub fn precision_study(
    dir: &Path,
    corpus: Corpus,
    seeds: [u64; 2],
    scale: &Scale,
    observer: &dyn Observer,
) -> Result<PrecisionStudy> {
    let mut arms = Vec::new();
    for seed in seeds {
        for precision in [Precision::Fp32, Precision::Bf16] {
            let exp = Experiment::builder(dir.join(format!("{precision}-{seed}")))
                .corpus(corpus.clone())
                .design(DesignKind::Blocks { b: 2 })
                .seed(seed)
                .train(TrainConfig {
                    epochs: scale.epochs,
                    precision,
                    ..TrainConfig::default()
                })
                .open(OnChange::Replace)?;
            let summary = run(
                &exp,
                &RunConfig {
                    n_models: scale.n_models,
                    ..RunConfig::default()
                },
                observer,
            )?;
            arms.push(arm(&exp, precision, seed, summary.seconds)?);
        }
    }
    let (fa, ba, fb, bb) = (&arms[0].mem, &arms[1].mem, &arms[2].mem, &arms[3].mem);
    Ok(PrecisionStudy {
        n_docs: corpus.len(),
        n_models: scale.n_models,
        same_seed: spearman_ci(ba, fa, LEVEL),
        fp32_replication: spearman_ci(fb, fa, LEVEL),
        bf16_replication: spearman_ci(bb, ba, LEVEL),
        cross: spearman_ci(bb, fa, LEVEL),
        cross_gain: paired_gain(fb, bb, fa),
        arms,
    })
}

fn arm(exp: &Experiment, precision: Precision, seed: u64, seconds: f64) -> Result<PrecisionArm> {
    let rep = report(exp, &ReportConfig::default())?;
    let of = |kind: &str| -> Vec<usize> {
        rep.docs
            .iter()
            .filter(|d| kind_of(&d.id) == kind)
            .map(|d| d.index)
            .collect()
    };
    let (canaries, controls) = (of("random canaries"), of("controls"));
    let planted = if canaries.is_empty() || controls.is_empty() {
        None
    } else {
        Some(Difference::over(&rep, exp, &canaries, &controls)?)
    };
    let mut mem = vec![f64::NAN; rep.docs.len()];
    for d in &rep.docs {
        mem[d.index] = d.estimate.mem.unwrap_or(f64::NAN);
    }
    Ok(PrecisionArm {
        precision,
        seed,
        seconds,
        planted,
        mem,
    })
}
