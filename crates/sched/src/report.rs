//! Estimates from an experiment directory (streaming its records) or from
//! imported tables.

use cfmem_analysis::{Adjuster, Adjustment, Estimate, MemAccumulator, Metric, ScoreTable};

use crate::error::Result;
use crate::experiment::Experiment;

/// What a row carries to an analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// Per-document scores under a metric.
    Metric(Metric),
    /// Per-document mean loss (for membership inference).
    Loss,
}

/// Called with `(model, copies, values)` for each row.
pub type RowVisitor<'a> = dyn FnMut(usize, &[u32], &[f64]) -> cfmem_analysis::Result<()> + 'a;

/// A source of per-model rows: an experiment's records, or imported tables.
pub trait Rows {
    /// Document ids.
    fn ids(&self) -> Vec<String>;
    /// Block size of the design (1 when unknown or without blocks).
    fn block_size(&self) -> usize;
    /// Call `f(model, copies, values)` for each valid row in model order;
    /// returns the rows skipped as invalid, with the reason.
    ///
    /// # Errors
    /// Errors of `f`; I/O errors.
    fn visit(&self, value: Value, f: &mut RowVisitor<'_>) -> Result<Vec<(usize, String)>>;
}

impl Rows for Experiment {
    fn ids(&self) -> Vec<String> {
        self.documents().iter().map(|d| d.id.clone()).collect()
    }
    fn block_size(&self) -> usize {
        self.manifest().design.block_size()
    }
    fn visit(&self, value: Value, f: &mut RowVisitor<'_>) -> Result<Vec<(usize, String)>> {
        let mut skipped = Vec::new();
        for i in self.record_indices()? {
            match self.read(i) {
                Ok(r) => {
                    let v = match value {
                        Value::Metric(m) => r.scores(m),
                        Value::Loss => r.loss(),
                    };
                    f(i, &r.copies, &v)?;
                }
                Err(e) => skipped.push((i, e.to_string())),
            }
        }
        Ok(skipped)
    }
}

/// Imported results: a [`ScoreTable`] whose scores are of `metric`
/// (its orientation says whether higher is better; for membership
/// inference the scores stand in for negated losses, or losses).
#[derive(Debug, Clone)]
pub struct Imported {
    /// The table.
    pub table: ScoreTable,
    /// What the scores are.
    pub metric: Metric,
}

impl Rows for Imported {
    fn ids(&self) -> Vec<String> {
        self.table.ids.clone()
    }
    fn block_size(&self) -> usize {
        1
    }
    fn visit(&self, value: Value, f: &mut RowVisitor<'_>) -> Result<Vec<(usize, String)>> {
        for i in 0..self.table.n_models() {
            let row = self.table.row(i);
            match value {
                Value::Metric(_) => f(i, self.table.membership.row(i), row)?,
                Value::Loss => {
                    let sign = -self.metric.orientation();
                    let v: Vec<f64> = row.iter().map(|x| sign * x).collect();
                    f(i, self.table.membership.row(i), &v)?
                }
            }
        }
        Ok(Vec::new())
    }
}

/// The estimate of one document.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DocEstimate {
    /// Index in the corpus.
    pub index: usize,
    /// Document id.
    pub id: String,
    /// The estimate.
    #[serde(flatten)]
    pub estimate: Estimate,
}

/// Estimates for every document, and which records were used.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The metric.
    pub metric: Metric,
    /// One per document, in corpus order.
    pub docs: Vec<DocEstimate>,
    /// Models whose records were used.
    pub n_models: usize,
    /// Records skipped because they failed verification, with the reason.
    pub skipped: Vec<(usize, String)>,
}

impl Report {
    /// Documents with an estimate, most memorized first.
    pub fn ranked(&self) -> Vec<&DocEstimate> {
        let mut v: Vec<&DocEstimate> = self
            .docs
            .iter()
            .filter(|d| d.estimate.mem.is_some())
            .collect();
        v.sort_by(|a, b| {
            b.estimate
                .mem
                .partial_cmp(&a.estimate.mem)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        v
    }
}

/// Stream every valid row of `src` (an experiment's records, or imported
/// tables) into per-document estimates (memory O(documents)). Invalid
/// records are skipped and listed.
///
/// # Errors
/// I/O errors listing the runs directory.
pub fn report(src: &dyn Rows, metric: Metric) -> Result<Report> {
    report_adjusted(src, metric, Adjustment::None)
}

/// The first pass of an adjustment over the rows of models `< limit`
/// (nothing to do for [`Adjustment::None`]).
fn adjuster(
    src: &dyn Rows,
    metric: Metric,
    adjustment: Adjustment,
    limit: usize,
) -> Result<Adjuster> {
    let mut adj = Adjuster::new(adjustment, src.ids().len());
    if adj.needs_first_pass() {
        src.visit(Value::Metric(metric), &mut |i, copies, scores| {
            if i < limit {
                adj.observe(copies, scores);
            }
            Ok(())
        })?;
    }
    Ok(adj)
}

/// [`report`] on scores adjusted for model effects ([`Adjustment`]; two
/// passes over the rows when adjusting).
///
/// # Errors
/// I/O errors listing the runs directory.
pub fn report_adjusted(src: &dyn Rows, metric: Metric, adjustment: Adjustment) -> Result<Report> {
    let ids = src.ids();
    let adj = adjuster(src, metric, adjustment, usize::MAX)?;
    let mut acc = MemAccumulator::new(ids.len(), metric);
    let skipped = src.visit(Value::Metric(metric), &mut |_, copies, scores| {
        acc.add(copies, &adj.apply(copies, scores))?;
        Ok(())
    })?;
    let docs = acc
        .finish()
        .into_iter()
        .zip(ids)
        .enumerate()
        .map(|(index, (estimate, id))| DocEstimate {
            index,
            id,
            estimate,
        })
        .collect();
    Ok(Report {
        metric,
        docs,
        n_models: acc.n_models(),
        skipped,
    })
}

/// Split-half convergence of the estimates as models are added (rows in
/// index order; halves by block for block designs).
///
/// # Errors
/// I/O errors; analysis errors.
pub fn convergence(
    src: &dyn Rows,
    metric: Metric,
) -> Result<Vec<cfmem_analysis::ConvergencePoint>> {
    convergence_adjusted(src, metric, Adjustment::None)
}

/// [`convergence`] on adjusted scores. The adjustment's first pass uses
/// every row, so each checkpoint's halves share the document centres (not
/// the model effects, which are per model).
///
/// # Errors
/// I/O errors; analysis errors.
pub fn convergence_adjusted(
    src: &dyn Rows,
    metric: Metric,
    adjustment: Adjustment,
) -> Result<Vec<cfmem_analysis::ConvergencePoint>> {
    let mut n = 0;
    src.visit(Value::Metric(metric), &mut |_, _, _| {
        n += 1;
        Ok(())
    })?;
    convergence_at(src, metric, adjustment, n, None, usize::MAX)
}

/// [`convergence_adjusted`] over the rows of models `< limit` (`n` of
/// them), at `checkpoints` (and `n`) instead of 8, 16, 32, …
///
/// # Errors
/// I/O errors; analysis errors.
pub fn convergence_at(
    src: &dyn Rows,
    metric: Metric,
    adjustment: Adjustment,
    n: usize,
    checkpoints: Option<&[usize]>,
    limit: usize,
) -> Result<Vec<cfmem_analysis::ConvergencePoint>> {
    let adj = adjuster(src, metric, adjustment, limit)?;
    let (n_docs, block) = (src.ids().len(), src.block_size());
    let mut conv = match checkpoints {
        Some(c) => cfmem_analysis::Convergence::with_checkpoints(n_docs, metric, n, block, c)?,
        None => cfmem_analysis::Convergence::new(n_docs, metric, n, block)?,
    };
    src.visit(Value::Metric(metric), &mut |i, copies, scores| {
        if i < limit {
            conv.add(i, copies, &adj.apply(copies, scores))?;
        }
        Ok(())
    })?;
    Ok(conv.finish())
}

/// Membership-inference view of an experiment (LiRA style).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MembershipReport {
    /// The observation scored.
    pub observation: cfmem_analysis::Observation,
    /// The variance mode.
    pub variance: cfmem_analysis::Variance,
    /// Per document: its id, its in/out Gaussian fits over all models, and
    /// the ROC AUC of the online score over the models (leave-one-out).
    pub docs: Vec<DocMembership>,
    /// Over all (model, document) pairs, each model left out of the fits it is scored by.
    pub online: Option<cfmem_analysis::RocSummary>,
    /// The same for the offline (out-only) score.
    pub offline: Option<cfmem_analysis::RocSummary>,
}

/// One document's membership view.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DocMembership {
    /// Document id.
    pub id: String,
    /// Gaussian fits of the in- and out-observations.
    pub fit: cfmem_analysis::GaussianFit,
    /// ROC AUC of the online score across models for this document.
    pub auc: Option<f64>,
}

/// LiRA-style membership scores: two passes over the rows (fit, then
/// score each model with itself left out). Ground truth is each row's own
/// membership. Memory O(models × documents) for the exact ROC.
///
/// # Errors
/// I/O errors; analysis errors.
pub fn membership(
    src: &dyn Rows,
    observation: cfmem_analysis::Observation,
    variance: cfmem_analysis::Variance,
) -> Result<MembershipReport> {
    let ids = src.ids();
    let n = ids.len();
    let mut acc = cfmem_analysis::LiraAccumulator::new(n, observation);
    src.visit(Value::Loss, &mut |_, copies, losses| {
        acc.add(copies, losses)?;
        Ok(())
    })?;
    let mut online = Vec::new();
    let mut offline = Vec::new();
    let mut per_doc: Vec<Vec<(f64, bool)>> = vec![Vec::new(); n];
    src.visit(Value::Loss, &mut |_, copies, losses| {
        let scores = acc.score_left_out(copies, losses, variance)?;
        for (d, s) in scores.into_iter().enumerate() {
            if let Some(s) = s {
                let member = copies[d] > 0;
                online.push((s.online, member));
                offline.push((s.offline, member));
                per_doc[d].push((s.online, member));
            }
        }
        Ok(())
    })?;
    let fits = acc.fits(variance);
    let docs = ids
        .into_iter()
        .zip(fits)
        .zip(&per_doc)
        .map(|((id, fit), pairs)| DocMembership {
            id,
            fit,
            auc: cfmem_analysis::roc(pairs).map(|r| r.auc),
        })
        .collect();
    Ok(MembershipReport {
        observation,
        variance,
        docs,
        online: cfmem_analysis::roc(&online),
        offline: cfmem_analysis::roc(&offline),
    })
}

/// Counterfactual influence of training documents on queries: on the
/// experiment's query corpus when `use_queries`, else on the training
/// documents themselves (self-influence, i.e. memorization, excluded).
/// Streams the records once per block of queries.
///
/// # Errors
/// [`crate::Error::Config`] when `use_queries` and the experiment has no
/// query corpus; I/O and analysis errors.
pub fn influence(
    exp: &Experiment,
    metric: Metric,
    use_queries: bool,
    mut cfg: cfmem_analysis::InfluenceConfig,
) -> Result<cfmem_analysis::Influence> {
    let n_units = exp.corpus().len();
    let n_queries = if use_queries {
        exp.queries()
            .ok_or_else(|| {
                crate::Error::Config(
                    "this experiment has no query corpus (cfmem run --queries PATH)".into(),
                )
            })?
            .len()
    } else {
        cfg.exclude_self = true;
        n_units
    };
    let indices = exp.record_indices()?;
    let out = cfmem_analysis::influence(n_units, n_queries, metric, &cfg, |q0, nq, visit| {
        for &i in &indices {
            // Invalid records are skipped, as in every other analysis.
            let Ok(r) = exp.read(i) else { continue };
            let s = if use_queries {
                r.query_scores(metric)
            } else {
                r.scores(metric)
            };
            visit(&r.copies, &s[q0..q0 + nq])?;
        }
        Ok(())
    })?;
    Ok(out)
}

/// The estimate of one unit of removal (a group of documents).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GroupEstimate {
    /// Unit name (`group:LABEL`, `cluster:FIRST-ID`, `contains:TEXT`, or a document id).
    pub name: String,
    /// Ids of its documents.
    pub members: Vec<String>,
    /// Memorization of the unit: its members' mean score, with the whole
    /// unit included against the whole unit removed.
    #[serde(flatten)]
    pub estimate: cfmem_analysis::Estimate,
}

/// Memorization per unit of removal (see [`crate::UnitSpec`]); members'
/// own estimates come from [`report()`].
///
/// # Errors
/// I/O and analysis errors.
pub fn groups(exp: &Experiment, metric: Metric) -> Result<Vec<GroupEstimate>> {
    let units = exp.units();
    let mut acc = MemAccumulator::new(units.n_units(), metric);
    for i in exp.record_indices()? {
        if let Ok(r) = exp.read(i) {
            let (c, s) = units.collapse(&r.copies, &r.scores(metric));
            acc.add(&c, &s)?;
        }
    }
    let docs = exp.documents();
    Ok(acc
        .finish()
        .into_iter()
        .enumerate()
        .map(|(u, estimate)| GroupEstimate {
            name: units.names()[u].clone(),
            members: units
                .members(u)
                .into_iter()
                .map(|d| docs[d].id.clone())
                .collect(),
            estimate,
        })
        .collect())
}

/// Memorization as a function of copies (repetition designs; other designs
/// give the single level 1).
///
/// # Errors
/// I/O and analysis errors.
pub fn repetition(exp: &Experiment, metric: Metric) -> Result<cfmem_analysis::RepetitionCurve> {
    let levels = match &exp.manifest().design.kind {
        cfmem_analysis::DesignKind::Repetition { copies, .. } => copies.clone(),
        _ => vec![0, 1],
    };
    let mut acc = cfmem_analysis::RepetitionAccumulator::new(exp.corpus().len(), metric, &levels);
    for i in exp.record_indices()? {
        if let Ok(r) = exp.read(i) {
            acc.add(&r.copies, &r.scores(metric))?;
        }
    }
    Ok(acc.finish())
}
