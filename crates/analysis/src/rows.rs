//! Sources of rows: what every analysis reads.
//!
//! An analysis sees a study as a stream of **rows**, one per trained model:
//! the model's index, its copies of each document (0 = excluded) and one
//! value per document (its score under a metric, its loss, or its scores on
//! a held-out query corpus). Anything that can produce such rows is a
//! [`Rows`] source: an experiment directory (in `cfmem-sched`), matrices
//! imported from another trainer ([`Imported`]), or synthetic data with
//! known effects ([`crate::Synthetic`]).

use crate::design::DesignConfig;
use crate::error::{Error, Result};
use crate::estimate::Metric;
use crate::import::ScoreTable;
use crate::lira::Observation;
use crate::units::Units;

/// What a row carries to an analysis. Deliberately exhaustive: every
/// source must say how it serves each kind of value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// Per-document scores under a metric.
    Scores(Metric),
    /// Per-document mean loss in nats per token (membership inference).
    Loss,
    /// Per-query scores on the held-out query corpus, under a metric.
    QueryScores(Metric),
}

/// One model's row.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// The model's index.
    pub model: usize,
    /// Copies of each document in its training subset (0 = excluded).
    pub copies: &'a [u32],
    /// One value per document (or per query for [`Value::QueryScores`]).
    pub values: &'a [f64],
}

/// A row left out of an analysis because its source could not be used
/// (e.g. a record that fails its checksum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRow {
    /// The model index.
    pub model: usize,
    /// Why.
    pub reason: String,
}

/// Called once per row.
pub type RowVisitor<'a> = dyn FnMut(Row<'_>) -> Result<()> + 'a;

/// A source of per-model rows.
///
/// Only [`Rows::ids`] and [`Rows::visit`] are required; the other methods
/// describe what the source knows about how its rows were made, and the
/// analyses that need them say so in their errors.
pub trait Rows {
    /// Document ids, in row order.
    fn ids(&self) -> Vec<String>;

    /// Call `f` for each usable row, in increasing model order; returns the
    /// rows left out, with the reason.
    ///
    /// # Errors
    /// Errors of `f`; [`Error::Source`] when the source cannot be read;
    /// [`Error::NoQueries`] for query scores from a source without queries.
    fn visit(&self, value: Value, f: &mut RowVisitor<'_>) -> Result<Vec<SkippedRow>>;

    /// The membership design the rows were drawn from, when known (its
    /// block size shapes split halves; repetition levels shape the
    /// repetition curve).
    fn design(&self) -> Option<DesignConfig> {
        None
    }

    /// The units of removal, when they are not the documents themselves.
    fn units(&self) -> Option<&Units> {
        None
    }

    /// The nested units of a spectrum design, when the rows were drawn
    /// by one ([`crate::spectrum()`]).
    fn spectrum(&self) -> Option<&crate::Spectrum> {
        None
    }

    /// Tokens per document (the mass a removal takes out), when known.
    ///
    /// # Errors
    /// Errors reading them.
    fn doc_tokens(&self) -> Result<Option<Vec<usize>>> {
        Ok(None)
    }

    /// Ids of the held-out query corpus, when the rows have query scores.
    fn query_ids(&self) -> Option<Vec<String>> {
        None
    }

    /// A kind per document for charts and summaries (e.g. planted canaries
    /// against natural text); `None` when all are alike.
    fn kinds(&self) -> Option<Vec<String>> {
        None
    }

    /// How membership inference should read this source's [`Value::Loss`]
    /// rows: real per-token losses are logit-scaled
    /// ([`Observation::LogitConfidence`], LiRA's scaling); other values are
    /// used as they are ([`Observation::NegLoss`], the default).
    fn observation(&self) -> Observation {
        Observation::NegLoss
    }

    /// Block size of the design (1 when unknown or without blocks).
    fn block_size(&self) -> usize {
        self.design().map_or(1, |d| d.block_size())
    }

    /// Memorization proxies read from per-token results the source keeps
    /// (Min-K % Prob, [`crate::min_k_table`]), one row per visited row;
    /// none by default.
    ///
    /// # Errors
    /// Errors reading them.
    fn token_proxies(&self) -> Result<Vec<crate::ProxyTable>> {
        Ok(Vec::new())
    }

    /// The documents' texts, when the source has them (for proxies that
    /// read the text, e.g. [`crate::zlib_ratio`]).
    fn texts(&self) -> Option<Vec<String>> {
        None
    }

    /// Whether [`Value::Scores`] of `metric` are this source's own (an
    /// imported table holds one metric and serves it for any).
    fn has_metric(&self, metric: Metric) -> bool {
        let _ = metric;
        true
    }
}

/// Imported results: a [`ScoreTable`] whose scores are of `metric`.
///
/// For membership inference ([`Value::Loss`]) the scores stand in for
/// negated losses when higher is better, or for losses otherwise.
///
/// ```
/// use cfmem_analysis::{report, Imported, Membership, Metric, ReportConfig, ScoreTable};
///
/// let membership = Membership::from_rows(4, 2, vec![1, 0, 0, 1, 1, 0, 0, 1])?;
/// let table = ScoreTable::new(
///     vec!["a".into(), "b".into()],
///     membership,
///     vec![0.9, 0.2, 0.3, 0.8, 0.8, 0.1, 0.4, 0.9],
/// )?;
/// let rows = Imported { table, metric: Metric::Accuracy, blocks: 1 };
/// let rep = report(&rows, &ReportConfig::plain(Metric::Accuracy))?;
/// assert!((rep.docs[0].estimate.mem.unwrap() - 0.5).abs() < 1e-12);
/// # Ok::<(), cfmem_analysis::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Imported {
    /// The table.
    pub table: ScoreTable,
    /// What the scores are.
    pub metric: Metric,
    /// Models per block of the design that made the membership (models
    /// `i` in block `i / blocks`, e.g. 2 for complementary halves, as in
    /// LiRA's balanced masks): errors are clustered by block. 1: models
    /// drawn independently (Welch's error).
    pub blocks: usize,
}

impl Rows for Imported {
    fn ids(&self) -> Vec<String> {
        self.table.ids.clone()
    }

    fn block_size(&self) -> usize {
        self.blocks.max(1)
    }

    fn has_metric(&self, metric: Metric) -> bool {
        metric == self.metric
    }

    fn visit(&self, value: Value, f: &mut RowVisitor<'_>) -> Result<Vec<SkippedRow>> {
        let sign = match value {
            Value::Scores(_) => 1.0,
            Value::Loss => -self.metric.orientation(),
            Value::QueryScores(_) => return Err(Error::NoQueries),
        };
        for i in 0..self.table.n_models() {
            let row = self.table.row(i);
            let signed: Vec<f64>;
            let values = if sign == 1.0 {
                row
            } else {
                signed = row.iter().map(|x| sign * x).collect();
                &signed
            };
            f(Row {
                model: i,
                copies: self.table.membership.row(i),
                values,
            })?;
        }
        Ok(Vec::new())
    }
}

/// The rows of the models `0..n_models` of another source (e.g. the
/// estimates an experiment gave when it had 16 models).
#[derive(Clone, Copy)]
pub struct FirstModels<'a> {
    /// The source.
    pub src: &'a dyn Rows,
    /// Models kept: those with an index below this.
    pub n_models: usize,
}

impl std::fmt::Debug for FirstModels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstModels")
            .field("n_models", &self.n_models)
            .finish_non_exhaustive()
    }
}

impl Rows for FirstModels<'_> {
    fn ids(&self) -> Vec<String> {
        self.src.ids()
    }
    fn visit(&self, value: Value, f: &mut RowVisitor<'_>) -> Result<Vec<SkippedRow>> {
        let n = self.n_models;
        let mut skipped = self.src.visit(value, &mut |r| {
            if r.model < n {
                f(r)?;
            }
            Ok(())
        })?;
        skipped.retain(|s| s.model < n);
        Ok(skipped)
    }
    fn design(&self) -> Option<DesignConfig> {
        self.src.design()
    }
    fn has_metric(&self, metric: Metric) -> bool {
        self.src.has_metric(metric)
    }
    fn texts(&self) -> Option<Vec<String>> {
        self.src.texts()
    }
    fn token_proxies(&self) -> Result<Vec<crate::ProxyTable>> {
        // Rows of another source's subset would not line up.
        Ok(Vec::new())
    }
    fn units(&self) -> Option<&Units> {
        self.src.units()
    }

    fn spectrum(&self) -> Option<&crate::Spectrum> {
        self.src.spectrum()
    }

    fn doc_tokens(&self) -> Result<Option<Vec<usize>>> {
        self.src.doc_tokens()
    }
    fn query_ids(&self) -> Option<Vec<String>> {
        self.src.query_ids()
    }
    fn kinds(&self) -> Option<Vec<String>> {
        self.src.kinds()
    }
    fn observation(&self) -> Observation {
        self.src.observation()
    }
}

/// The rows of the models `start..end` of another source, numbered from
/// 0: an independent experiment from the same directory (e.g. models
/// 16–47 against models 0–15). `start` must be a multiple of the design's
/// block size, so that blocks stay whole ([`ModelRange::new`] checks it).
#[derive(Clone, Copy)]
pub struct ModelRange<'a> {
    src: &'a dyn Rows,
    start: usize,
    end: usize,
}

impl<'a> ModelRange<'a> {
    /// The models `range` of `src`.
    ///
    /// # Errors
    /// [`Error::RangeStart`] when `range.start` is not a multiple of the
    /// source's block size.
    pub fn new(src: &'a dyn Rows, range: std::ops::Range<usize>) -> Result<Self> {
        let b = src.block_size().max(1);
        if !range.start.is_multiple_of(b) {
            return Err(Error::RangeStart {
                start: range.start,
                block: b,
            });
        }
        Ok(Self {
            src,
            start: range.start,
            end: range.end,
        })
    }
}

impl std::fmt::Debug for ModelRange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRange")
            .field("start", &self.start)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl Rows for ModelRange<'_> {
    fn ids(&self) -> Vec<String> {
        self.src.ids()
    }
    fn visit(&self, value: Value, f: &mut RowVisitor<'_>) -> Result<Vec<SkippedRow>> {
        let (start, end) = (self.start, self.end);
        let mut skipped = self.src.visit(value, &mut |r| {
            if (start..end).contains(&r.model) {
                f(Row {
                    model: r.model - start,
                    ..r
                })?;
            }
            Ok(())
        })?;
        skipped.retain(|s| (start..end).contains(&s.model));
        for s in &mut skipped {
            s.model -= start;
        }
        Ok(skipped)
    }
    fn design(&self) -> Option<DesignConfig> {
        self.src.design()
    }
    fn has_metric(&self, metric: Metric) -> bool {
        self.src.has_metric(metric)
    }
    fn texts(&self) -> Option<Vec<String>> {
        self.src.texts()
    }
    fn token_proxies(&self) -> Result<Vec<crate::ProxyTable>> {
        // Rows of another source's subset would not line up.
        Ok(Vec::new())
    }
    fn units(&self) -> Option<&Units> {
        self.src.units()
    }

    fn spectrum(&self) -> Option<&crate::Spectrum> {
        self.src.spectrum()
    }

    fn doc_tokens(&self) -> Result<Option<Vec<usize>>> {
        self.src.doc_tokens()
    }
    fn query_ids(&self) -> Option<Vec<String>> {
        self.src.query_ids()
    }
    fn kinds(&self) -> Option<Vec<String>> {
        self.src.kinds()
    }
    fn observation(&self) -> Observation {
        self.src.observation()
    }
}

/// The number of rows `src` yields for `value`.
///
/// # Errors
/// Errors of the source.
pub fn count_rows(src: &dyn Rows, value: Value) -> Result<usize> {
    let mut n = 0;
    src.visit(value, &mut |_| {
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Synthetic;

    #[test]
    fn a_model_range_renumbers_whole_blocks() {
        let src = Synthetic::new(DesignConfig::blocks(2, 5), 8, vec![0.1; 6]).seed(2);
        let range = ModelRange::new(&src, 4..8).unwrap();
        let mut seen = Vec::new();
        range
            .visit(Value::Scores(crate::Metric::Accuracy), &mut |r| {
                let (copies, scores) = src.row(r.model + 4)?;
                assert_eq!((r.copies, r.values), (&copies[..], &scores[..]));
                seen.push(r.model);
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, vec![0, 1, 2, 3]);
        assert_eq!(range.block_size(), 2);
        // A range that splits a block is refused.
        assert!(matches!(
            ModelRange::new(&src, 1..8),
            Err(Error::RangeStart { start: 1, block: 2 })
        ));
    }
}
