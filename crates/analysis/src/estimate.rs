//! The memorization estimator: in/out means, Welch standard error and a
//! Student-t confidence interval, from streamed score rows.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A per-document performance measure. Deliberately exhaustive: a new
/// metric must be handled wherever scores are computed from evaluations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Fraction of tokens whose argmax prediction is the next token
    /// (Zhang et al. 2021). Higher is better.
    #[default]
    Accuracy,
    /// Mean per-token negative log-likelihood in nats. Lower is better, so
    /// memorization is `out_mean − in_mean`.
    Loss,
    /// Sequence log-probability: the sum of per-token log-likelihoods
    /// (nats, ≤ 0). Higher is better; long documents weigh more.
    LogProb,
    /// Extraction (Carlini et al. 2022): 1 when greedy decoding from the
    /// document's prompt writes its whole continuation, else 0; not scored
    /// (`NaN`) for a document too short. Higher is better, so memorization
    /// is P(extractable | in) − P(extractable | out).
    Extraction,
    /// Tokens of the continuation greedy decoding writes correctly before
    /// its first mistake (0 to the continuation's length); `NaN` for a
    /// document too short. Higher is better.
    ExtractionLength,
}

impl Metric {
    /// `+1` when higher is better, `−1` when lower is better.
    pub fn orientation(self) -> f64 {
        match self {
            Metric::Accuracy | Metric::LogProb | Metric::Extraction | Metric::ExtractionLength => {
                1.0
            }
            Metric::Loss => -1.0,
        }
    }

    /// The gap this metric's `mem` is, so that higher always means more
    /// memorized: `in_mean - out_mean`, or `out_mean - in_mean` when lower
    /// is better.
    pub fn gap(self) -> &'static str {
        if self.orientation() > 0.0 {
            "in_mean - out_mean"
        } else {
            "out_mean - in_mean"
        }
    }

    /// Short name used in files and flags.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::Loss => "loss",
            Metric::LogProb => "logprob",
            Metric::Extraction => "extraction",
            Metric::ExtractionLength => "extraction-length",
        }
    }

    /// Whether every score is 0 or 1 (extraction), so that intervals are
    /// those of a difference of proportions, not Student t.
    pub fn is_binary(self) -> bool {
        self == Metric::Extraction
    }

    /// Whether the metric is an extraction score (kept beside the record,
    /// not in it).
    pub fn is_extraction(self) -> bool {
        matches!(self, Metric::Extraction | Metric::ExtractionLength)
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Metric {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "accuracy" | "acc" => Ok(Metric::Accuracy),
            "loss" | "nll" => Ok(Metric::Loss),
            "logprob" | "seq-logprob" => Ok(Metric::LogProb),
            "extraction" | "exact" => Ok(Metric::Extraction),
            "extraction-length" => Ok(Metric::ExtractionLength),
            other => Err(crate::Error::Parse {
                what: "metric",
                input: other.to_string(),
                expected: "accuracy, loss, logprob, extraction or extraction-length",
            }),
        }
    }
}

/// Running count, mean and sum of squared deviations (Welford 1962).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunningStats {
    /// Number of values.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl RunningStats {
    /// Add one value.
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// Unbiased sample variance (`None` below two values).
    pub fn variance(&self) -> Option<f64> {
        (self.n >= 2).then(|| self.m2 / (self.n - 1) as f64)
    }

    /// Student-t confidence interval of the mean at `level` (e.g. 0.95):
    /// `mean ± t_{1−α/2, n−1} · s / √n` (`None` below two values).
    pub fn mean_ci(&self, level: f64) -> Option<(f64, f64)> {
        let se = (self.variance()? / self.n as f64).sqrt();
        let t = StudentsT::new(0.0, 1.0, (self.n - 1) as f64)
            .ok()?
            .inverse_cdf(0.5 + level / 2.0);
        Some((self.mean - t * se, self.mean + t * se))
    }
}

/// Unbiased sample variance from a count (or total weight) `n`, a sum `s`
/// and a sum of squares `ss`: `(ss − s²/n) / (n − 1)`, at least 0 (`NaN`
/// below two). For accumulators that keep raw sums because they add and
/// subtract them (`ss − s²/n` loses precision when the mean is far from 0
/// relative to the spread; their scores are per-token losses or accuracies,
/// where it is not).
pub(crate) fn variance_from_sums(n: f64, s: f64, ss: f64) -> f64 {
    if n >= 2.0 {
        ((ss - s * s / n) / (n - 1.0)).max(0.0)
    } else {
        f64::NAN
    }
}

/// Welch's two-sample comparison of means.
///
/// # Formula
/// ```text
/// diff = mean_a − mean_b
/// se   = sqrt(s_a²/n_a + s_b²/n_b)
/// df   = se⁴ / ( (s_a²/n_a)²/(n_a−1) + (s_b²/n_b)²/(n_b−1) )      (Welch–Satterthwaite)
/// ci   = diff ± t_{1−α/2, df} · se
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Welch {
    /// `mean_a − mean_b`.
    pub diff: f64,
    /// Standard error of the difference.
    pub se: f64,
    /// Welch–Satterthwaite degrees of freedom (`inf` when both variances are 0).
    pub df: f64,
    /// Lower end of the confidence interval.
    pub ci_low: f64,
    /// Upper end of the confidence interval.
    pub ci_high: f64,
}

/// Welch's comparison of `a` and `b` at confidence `level` (e.g. 0.95).
/// `None` when a side has fewer than two values.
pub fn welch(a: &RunningStats, b: &RunningStats, level: f64) -> Option<Welch> {
    let (va, vb) = (a.variance()?, b.variance()?);
    let (qa, qb) = (va / a.n as f64, vb / b.n as f64);
    let diff = a.mean - b.mean;
    let se = (qa + qb).sqrt();
    let denom = qa * qa / (a.n - 1) as f64 + qb * qb / (b.n - 1) as f64;
    if denom == 0.0 {
        // Both sides constant: the difference is known exactly.
        return Some(Welch {
            diff,
            se: 0.0,
            df: f64::INFINITY,
            ci_low: diff,
            ci_high: diff,
        });
    }
    t_interval(diff, se, (qa + qb).powi(2) / denom, level)
}

/// Why a document has no estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NoEstimate {
    /// No model trained on it.
    NoInModel,
    /// Every model trained on it.
    NoOutModel,
    /// No model scored it under the metric (a document too short for the
    /// extraction test).
    NotScored,
}

impl std::fmt::Display for NoEstimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoEstimate::NoInModel => "no model included it",
            NoEstimate::NoOutModel => "no model excluded it",
            NoEstimate::NotScored => "too short to score",
        })
    }
}

/// The memorization estimate of one document under one metric.
///
/// `mem` is `in_mean − out_mean` for metrics where higher is better and
/// `out_mean − in_mean` for losses, so a larger `mem` always means more
/// memorized. `se`, `ci_low`, `ci_high` need two models on each side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Models whose subset held the document.
    pub n_in: usize,
    /// Models whose subset did not.
    pub n_out: usize,
    /// Mean metric over the in-models (`None` if `n_in == 0`).
    pub in_mean: Option<f64>,
    /// Mean metric over the out-models (`None` if `n_out == 0`).
    pub out_mean: Option<f64>,
    /// The memorization gap (`None` with a `reason` when a side is empty).
    pub mem: Option<f64>,
    /// Welch standard error of `mem`.
    pub se: Option<f64>,
    /// Degrees of freedom of the interval (Welch–Satterthwaite).
    pub df: Option<f64>,
    /// Lower end of the Student-t confidence interval.
    pub ci_low: Option<f64>,
    /// Upper end of the Student-t confidence interval.
    pub ci_high: Option<f64>,
    /// Why `mem` is missing.
    pub reason: Option<NoEstimate>,
}

impl Estimate {
    /// The estimate from in/out statistics at confidence `level`, with
    /// Welch's standard error (models independent).
    pub fn from_stats(inn: &RunningStats, out: &RunningStats, metric: Metric, level: f64) -> Self {
        Self::with_error(inn, out, metric, welch(inn, out, level))
    }

    /// The estimate from in/out statistics with the standard error,
    /// degrees of freedom and interval of `w` (of `in_mean − out_mean`).
    pub(crate) fn with_error(
        inn: &RunningStats,
        out: &RunningStats,
        metric: Metric,
        w: Option<Welch>,
    ) -> Self {
        let sign = metric.orientation();
        let mean = |s: &RunningStats| (s.n > 0).then_some(s.mean);
        let reason = if inn.n == 0 {
            Some(NoEstimate::NoInModel)
        } else if out.n == 0 {
            Some(NoEstimate::NoOutModel)
        } else {
            None
        };
        let mem = reason.is_none().then_some(sign * (inn.mean - out.mean));
        let (lo, hi) = match w {
            Some(w) if sign > 0.0 => (Some(w.ci_low), Some(w.ci_high)),
            Some(w) => (Some(-w.ci_high), Some(-w.ci_low)),
            None => (None, None),
        };
        Self {
            n_in: inn.n,
            n_out: out.n,
            in_mean: mean(inn),
            out_mean: mean(out),
            mem,
            se: w.map(|w| w.se),
            df: w.map(|w| w.df),
            ci_low: lo,
            ci_high: hi,
            reason,
        }
    }
}

/// Student-t interval of `diff` with standard error `se` on `df` degrees of freedom.
pub(crate) fn t_interval(diff: f64, se: f64, df: f64, level: f64) -> Option<Welch> {
    if se == 0.0 {
        return Some(Welch {
            diff,
            se,
            df,
            ci_low: diff,
            ci_high: diff,
        });
    }
    let t = StudentsT::new(0.0, 1.0, df)
        .ok()?
        .inverse_cdf(0.5 + level / 2.0);
    Some(Welch {
        diff,
        se,
        df,
        ci_low: diff - t * se,
        ci_high: diff + t * se,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn mean_ci_matches_a_hand_computation() {
        // Values 1, 2, 3, 4: mean 2.5, s² = 5/3, se = sqrt(5/12) = 0.6455;
        // t_{0.975, 3} = 3.182446 (tables): half-width 2.0542.
        let mut r = RunningStats::default();
        for x in [1.0, 2.0, 3.0, 4.0] {
            r.push(x);
        }
        let (lo, hi) = r.mean_ci(0.95).unwrap();
        let half = 3.182_446 * (5.0f64 / 12.0).sqrt();
        assert!((lo - (2.5 - half)).abs() < 1e-5 && (hi - (2.5 + half)).abs() < 1e-5);
        let mut one = RunningStats::default();
        one.push(1.0);
        assert!(one.mean_ci(0.95).is_none());
    }

    use super::*;

    fn stats(xs: &[f64]) -> RunningStats {
        let mut s = RunningStats::default();
        for &x in xs {
            s.push(x);
        }
        s
    }

    #[test]
    fn running_stats_match_two_pass() {
        let xs = [0.3, 0.9, 0.1, 0.55, 0.72];
        let s = stats(&xs);
        let mean = xs.iter().sum::<f64>() / 5.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
        assert!((s.mean - mean).abs() < 1e-12);
        assert!((s.variance().unwrap() - var).abs() < 1e-12);
    }

    #[test]
    fn welch_matches_hand_computation() {
        // a = [1,2,3,4] (mean 2.5, var 5/3), b = [2,4] (mean 3, var 2).
        // se² = (5/3)/4 + 2/2 = 5/12 + 1 = 17/12.
        // df = (17/12)² / ((5/12)²/3 + 1²/1) = 1.897155
        let w = welch(&stats(&[1.0, 2.0, 3.0, 4.0]), &stats(&[2.0, 4.0]), 0.95).unwrap();
        assert!((w.diff + 0.5).abs() < 1e-12);
        assert!((w.se - (17.0f64 / 12.0).sqrt()).abs() < 1e-12);
        let df = (17.0f64 / 12.0).powi(2) / ((5.0f64 / 12.0).powi(2) / 3.0 + 1.0);
        assert!((w.df - df).abs() < 1e-12);
        // t_{0.975} at df = 1.897155: scipy.stats.t.ppf(0.975, 1.8971553610503282)
        // = 4.534085 (between t(df=2) = 4.303 and t(df=1) = 12.706).
        let t = (w.ci_high - w.diff) / w.se;
        assert!((t - 4.534085).abs() < 1e-4, "{t}");
        // Large samples: t → 1.96.
        let big_a: Vec<f64> = (0..4000).map(|i| (i % 7) as f64).collect();
        let big_b: Vec<f64> = (0..4000).map(|i| (i % 5) as f64).collect();
        let w = welch(&stats(&big_a), &stats(&big_b), 0.95).unwrap();
        assert!(((w.ci_high - w.diff) / w.se - 1.9603).abs() < 1e-3);
    }
}
