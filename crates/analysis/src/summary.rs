//! Summaries over documents: the mean memorization of a kind of document
//! with its interval, and the difference between two kinds.
//!
//! Two kinds of interval. [`MeanCi::over`] and [`Difference::over`] are
//! those of the mean over *these* documents, with the design's error
//! ([`crate::contrast`]): every document is scored by the same models, so
//! what the models share (a model that memorizes more) moves every
//! document's estimate at once, and only an error clustered like a single
//! document's covers it (`tests/coverage_means.rs`). [`MeanCi::of`] and
//! [`Difference::of`] treat values as independent (Student t over them):
//! right for values that are, not for documents' estimates from the same
//! models (the repetition curve still uses them).

use serde::{Deserialize, Serialize};

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::contrast::{contrast, difference_weights, mean_weights, paired_contrast, side_contrast};
use crate::error::Result;
use crate::estimate::{welch, Estimate, RunningStats, Welch};
use crate::report::Report;
use crate::rows::Rows;

/// The mean of some values with its Student-t interval.
///
/// # Formula
/// ```text
/// mean ± t_{1−α/2, n−1} · s / √n
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanCi {
    /// Values averaged (the finite ones).
    pub n: usize,
    /// Their mean (`NaN` when there are none).
    pub mean: f64,
    /// Standard error of the mean (`NaN` below two values).
    pub se: f64,
    /// Lower end of the interval (`NaN` below two values).
    pub ci_low: f64,
    /// Upper end of the interval (`NaN` below two values).
    pub ci_high: f64,
    /// Degrees of freedom of `se`: `n − 1` over documents, `K − 1` with
    /// the design's error (`K` clusters), infinite for an interval that
    /// comes from a score or exact method rather than a t quantile.
    #[serde(default = "nan")]
    pub df: f64,
}

fn nan() -> f64 {
    f64::NAN
}

fn stats(values: &[f64]) -> RunningStats {
    let mut s = RunningStats::default();
    for &v in values.iter().filter(|v| v.is_finite()) {
        s.push(v);
    }
    s
}

impl MeanCi {
    /// The mean of the finite `values` with its interval at `level`.
    pub fn of(values: &[f64], level: f64) -> Self {
        let s = stats(values);
        let (ci_low, ci_high) = s.mean_ci(level).unwrap_or((f64::NAN, f64::NAN));
        Self {
            n: s.n,
            mean: if s.n > 0 { s.mean } else { f64::NAN },
            se: s.variance().map_or(f64::NAN, |v| (v / s.n as f64).sqrt()),
            ci_low,
            ci_high,
            df: s.n.saturating_sub(1) as f64,
        }
    }

    /// A mean over `n` documents from its contrast (`None`: not enough
    /// clusters, every number `NaN`).
    pub(crate) fn of_contrast(n: usize, c: Option<Welch>) -> Self {
        Self {
            n,
            mean: c.map_or(f64::NAN, |c| c.diff),
            se: c.map_or(f64::NAN, |c| c.se),
            ci_low: c.map_or(f64::NAN, |c| c.ci_low),
            ci_high: c.map_or(f64::NAN, |c| c.ci_high),
            df: c.map_or(f64::NAN, |c| c.df),
        }
    }

    /// The mean of `report`'s estimates over the documents `docs` (those
    /// with an estimate), with the design's error ([`crate::contrast`]:
    /// clustered by block, so that what the models share across documents
    /// enters it) instead of a t-interval over the documents. `src` is the
    /// source `report` came from.
    ///
    /// # Errors
    /// Errors of the source.
    pub fn over(report: &Report, src: &dyn Rows, docs: &[usize]) -> Result<Self> {
        let w = mean_weights(report, docs);
        let n = w.iter().filter(|&&x| x != 0.0).count();
        Ok(Self::of_contrast(n, contrast(report, src, &w)?))
    }

    /// The mean over the documents `docs` of the in-models' mean score
    /// (`inn`) or the out-models', with that side's clustered error
    /// ([`crate::side_contrast`]; Clopper–Pearson on its effective sample
    /// size for a 0/1 metric).
    ///
    /// # Errors
    /// Errors of the source.
    pub fn side_over(report: &Report, src: &dyn Rows, docs: &[usize], inn: bool) -> Result<Self> {
        let w = mean_weights(report, docs);
        let n = w.iter().filter(|&&x| x != 0.0).count();
        Ok(Self::of_contrast(n, side_contrast(report, src, &w, inn)?))
    }

    /// The mean over the documents `docs` (those with an estimate in both)
    /// of `mem_b − mem_a`, two experiments on the same documents whose
    /// models pair up by cluster ([`crate::paired_contrast`]).
    ///
    /// # Errors
    /// Errors of the sources.
    pub fn paired_over(
        a: (&Report, &dyn Rows),
        b: (&Report, &dyn Rows),
        docs: &[usize],
    ) -> Result<Self> {
        let both: Vec<usize> = docs
            .iter()
            .copied()
            .filter(|&d| b.0.docs.get(d).is_some_and(|e| e.estimate.mem.is_some()))
            .collect();
        let w = mean_weights(a.0, &both);
        let n = w.iter().filter(|&&x| x != 0.0).count();
        Ok(Self::of_contrast(n, paired_contrast(a, b, &w)?))
    }

    /// Whether the interval lies above 0.
    pub fn above_zero(&self) -> bool {
        self.ci_low > 0.0
    }

    /// The mean as an uncertain value (on its degrees of freedom).
    pub fn uncertain(&self) -> Uncertain {
        Uncertain {
            value: self.mean,
            se: self.se,
            df: self.df,
        }
    }
}

/// A value with its standard error and the degrees of freedom of that error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Uncertain {
    /// The value.
    pub value: f64,
    /// Its standard error.
    pub se: f64,
    /// Degrees of freedom of the standard error (`inf` when known exactly).
    pub df: f64,
}

impl Uncertain {
    /// A memorization estimate as an uncertain value (`None` without an SE).
    pub fn of_estimate(e: &Estimate) -> Option<Self> {
        Some(Self {
            value: e.mem?,
            se: e.se?,
            df: e.df?,
        })
    }
}

/// `a − b` over documents (Welch), and whether its interval lies above 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// The comparison (`diff`, `se`, `df`, `ci_low`, `ci_high`); `None`
    /// when a side has fewer than two values.
    pub welch: Option<Welch>,
    /// The interval excludes 0 on the positive side.
    pub holds: bool,
}

impl Difference {
    /// `a − b` for two independent uncertain values: standard errors added
    /// in quadrature, Welch–Satterthwaite degrees of freedom, Student t.
    ///
    /// # Formula
    /// ```text
    /// se = √(se_a² + se_b²),   df = se⁴ / (se_a⁴/df_a + se_b⁴/df_b)
    /// ```
    pub fn between(a: Uncertain, b: Uncertain, level: f64) -> Self {
        let diff = a.value - b.value;
        let (qa, qb) = (a.se * a.se, b.se * b.se);
        let se = (qa + qb).sqrt();
        let denom = qa * qa / a.df + qb * qb / b.df;
        let df = if denom > 0.0 {
            (qa + qb).powi(2) / denom
        } else {
            f64::INFINITY
        };
        let t = if df.is_finite() {
            StudentsT::new(0.0, 1.0, df)
                .map(|d| d.inverse_cdf(0.5 + level / 2.0))
                .unwrap_or(f64::NAN)
        } else {
            statrs::distribution::Normal::standard().inverse_cdf(0.5 + level / 2.0)
        };
        let welch = (se.is_finite() && t.is_finite()).then_some(Welch {
            diff,
            se,
            df,
            ci_low: diff - t * se,
            ci_high: diff + t * se,
        });
        Self {
            holds: welch.is_some_and(|w| w.ci_low > 0.0),
            welch,
        }
    }

    /// The difference of the means of `report`'s estimates over the
    /// documents `a` and `b`, with the design's error ([`MeanCi::over`]).
    ///
    /// # Errors
    /// Errors of the source.
    pub fn over(report: &Report, src: &dyn Rows, a: &[usize], b: &[usize]) -> Result<Self> {
        let welch = contrast(report, src, &difference_weights(report, a, b))?;
        Ok(Self {
            holds: welch.is_some_and(|w| w.ci_low > 0.0),
            welch,
        })
    }

    /// The difference of the means of the finite `a` and `b` at `level`.
    pub fn of(a: &[f64], b: &[f64], level: f64) -> Self {
        let welch = welch(&stats(a), &stats(b), level);
        Self {
            holds: welch.is_some_and(|w| w.ci_low > 0.0),
            welch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_ci_and_difference_by_hand() {
        // 1, 2, 3, 4 (and a NaN, skipped): mean 2.5, se √(5/12),
        // t_{0.975, 3} = 3.182446 (tables).
        let m = MeanCi::of(&[1.0, 2.0, f64::NAN, 3.0, 4.0], 0.95);
        assert_eq!(m.n, 4);
        assert!((m.se - (5.0f64 / 12.0).sqrt()).abs() < 1e-12);
        assert!((m.ci_high - (2.5 + 3.182_446 * m.se)).abs() < 1e-5);
        assert!(m.above_zero());
        let one = MeanCi::of(&[1.0], 0.95);
        assert!(one.ci_low.is_nan() && !one.above_zero());
        // a − b = 2.5 − 3 (the Welch example of `estimate.rs`).
        let d = Difference::of(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0], 0.95);
        assert!((d.welch.unwrap().diff + 0.5).abs() < 1e-12 && !d.holds);
        assert!(Difference::of(&[5.0, 5.1], &[1.0, 1.1], 0.95).holds);
        assert!(Difference::of(&[5.0], &[1.0, 1.5], 0.95).welch.is_none());
        // `between` on two means reproduces Welch's test of the raw values.
        let (a, b) = ([1.0, 2.0, 3.0, 4.0], [2.0, 4.0]);
        let w = Difference::of(&a, &b, 0.95).welch.unwrap();
        let v = Difference::between(
            MeanCi::of(&a, 0.95).uncertain(),
            MeanCi::of(&b, 0.95).uncertain(),
            0.95,
        )
        .welch
        .unwrap();
        assert!((w.diff - v.diff).abs() < 1e-12 && (w.se - v.se).abs() < 1e-12);
        assert!((w.df - v.df).abs() < 1e-9 && (w.ci_low - v.ci_low).abs() < 1e-9);
    }
}
