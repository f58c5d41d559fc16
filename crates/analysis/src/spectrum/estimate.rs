//! The estimates of a [`Spectrum`]: every document at every level, and
//! each level's means over documents with the design's error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Spectrum;
use crate::contrast::Contrast;
use crate::error::{Error, Result};
use crate::estimate::{Estimate, Metric, RunningStats};
use crate::rows::{Row, RowVisitor, Rows, SkippedRow, Value};
use crate::summary::MeanCi;

/// One document at one level of the spectrum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelEstimate {
    /// The document's unit at this level.
    pub unit: String,
    /// Its documents.
    pub unit_docs: usize,
    /// Its tokens.
    pub unit_tokens: usize,
    /// The unit is the same set as at the level below (same estimate).
    pub same_as_below: bool,
    /// Documents the contrast removes: the mean over the in-models of the
    /// unit's documents they hold.
    pub removed_docs: f64,
    /// The same in tokens.
    pub removed_tokens: f64,
    /// `mem / removed_tokens` (`None` without an estimate).
    pub per_token: Option<f64>,
    /// What this level adds to the one below, `mem_l − mem_{l−1}`: the
    /// out-models of the level below against this level's (disjoint sets
    /// of models, so Welch's error); exactly 0 when the unit is the same
    /// set; `None` at the document level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Estimate>,
    /// What this level adds to the document alone, `mem_l − mem_0`,
    /// likewise (`None` at the document level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beyond_document: Option<Estimate>,
    /// In (the document trained on) against out (the unit removed, its
    /// parent kept).
    #[serde(flatten)]
    pub estimate: Estimate,
}

/// One document across the levels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocSpectrum {
    /// Document id.
    pub id: String,
    /// Its kind (for summaries), when the source gives kinds.
    pub kind: Option<String>,
    /// One estimate per level, finest first.
    pub levels: Vec<LevelEstimate>,
}

/// A level's estimates summarized over a set of documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelSummary {
    /// The level's name.
    pub level: String,
    /// Mean memorization over the documents with an estimate, with the
    /// design's error (jackknife over models).
    pub mean: MeanCi,
    /// Mean removed documents per contrast.
    pub removed_docs: f64,
    /// Mean removed tokens per contrast.
    pub removed_tokens: f64,
    /// `mean / removed_tokens`, with the interval scaled alike (the
    /// removed mass taken as fixed).
    pub per_token: MeanCi,
    /// The mean of what this level adds to the one below
    /// ([`LevelEstimate::step`]), with the design's error (`None` at the
    /// document level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<MeanCi>,
    /// The mean of what this level adds to the document alone,
    /// `mem_l − mem_0`, likewise (`None` at the document level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beyond_document: Option<MeanCi>,
    /// 10th, 50th and 90th percentiles of the documents' estimates.
    pub quantiles: [f64; 3],
}

/// Documents of one kind (or all), level by level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindSpectrum {
    /// The kind (`all documents` for every document).
    pub kind: String,
    /// Documents of the kind.
    pub n_docs: usize,
    /// One summary per level, finest first.
    pub levels: Vec<LevelSummary>,
}

/// The spectrum of every document ([`spectrum`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectrumReport {
    /// Level names, finest first.
    pub levels: Vec<String>,
    /// The metric.
    pub metric: Metric,
    /// Confidence level of the intervals.
    pub level: f64,
    /// Models read.
    pub n_models: usize,
    /// Per document.
    pub docs: Vec<DocSpectrum>,
    /// Every document, then each kind.
    pub kinds: Vec<KindSpectrum>,
    /// Rows left out, with the reason.
    #[serde(skip)]
    pub skipped: Vec<SkippedRow>,
}

/// Memorization of every document at every level of `spectrum`
/// (the module's `mem_l`), from the rows of `src` (each model's copies of
/// the documents and its scores under `metric`), with `tokens[d]` the
/// tokens of document `d` and `kinds` a kind per document for the
/// summaries (e.g. [`Rows::kinds`]). Intervals at confidence `level`.
///
/// # Errors
/// Errors of the source; [`Error::RowLength`] for a row or token list of
/// another length than the spectrum's documents.
pub fn spectrum(
    src: &dyn Rows,
    spectrum: &Spectrum,
    tokens: &[usize],
    kinds: Option<&[String]>,
    metric: Metric,
    level: f64,
) -> Result<SpectrumReport> {
    let (n, n_levels) = (spectrum.n_docs(), spectrum.n_levels());
    let ids = src.ids();
    if ids.len() != n || tokens.len() != n {
        return Err(Error::RowLength {
            model: 0,
            got: ids.len().min(tokens.len()),
            expected: n,
        });
    }
    let mut stats = vec![vec![[RunningStats::default(), RunningStats::default()]; n]; n_levels];
    let mut removed = vec![vec![(0f64, 0f64); n]; n_levels];
    let mut n_models = 0;
    let skipped = src.visit(Value::Scores(metric), &mut |r| {
        if r.copies.len() != n || r.values.len() != n {
            return Err(Error::RowLength {
                model: r.model,
                got: r.copies.len().min(r.values.len()),
                expected: n,
            });
        }
        n_models += 1;
        let sides = spectrum.sides(r.copies, tokens);
        for l in 0..n_levels {
            for d in 0..n {
                let s = r.values[d];
                if !s.is_finite() {
                    continue;
                }
                match sides.code[l][d] {
                    1 => {
                        stats[l][d][0].push(s);
                        let (docs, toks) = sides.present[l][spectrum.levels[l].unit_of(d)];
                        removed[l][d].0 += docs as f64;
                        removed[l][d].1 += toks as f64;
                    }
                    0 => stats[l][d][1].push(s),
                    _ => {}
                }
            }
        }
        Ok(())
    })?;
    // Level `to` against level `from < to`: the out-models of `from`
    // against those of `to` (disjoint unless the units are the same set,
    // when the difference is exactly 0).
    let pair = |from: usize, to: usize, d: usize| -> Estimate {
        let out = &stats[to][d][1];
        if spectrum.same_set(from, to, d) {
            exact_zero(stats[to][d][0].n, out.n)
        } else {
            Estimate::from_stats(&stats[from][d][1], out, metric, level)
        }
    };
    let docs: Vec<DocSpectrum> = (0..n)
        .map(|d| DocSpectrum {
            id: ids[d].clone(),
            kind: kinds.and_then(|k| k.get(d).cloned()),
            levels: (0..n_levels)
                .map(|l| {
                    let [inn, out] = &stats[l][d];
                    let estimate = Estimate::from_stats(inn, out, metric, level);
                    let step = (l > 0).then(|| pair(l - 1, l, d));
                    let beyond_document = (l > 0).then(|| pair(0, l, d));
                    let k = inn.n.max(1) as f64;
                    let (rd, rt) = (removed[l][d].0 / k, removed[l][d].1 / k);
                    let members = spectrum.unit_members(l, d);
                    LevelEstimate {
                        unit: spectrum.levels[l].names()[spectrum.levels[l].unit_of(d)].clone(),
                        unit_docs: members.len(),
                        unit_tokens: members.iter().map(|&m| tokens[m]).sum(),
                        same_as_below: spectrum.same_as_below(l, d),
                        removed_docs: rd,
                        removed_tokens: rt,
                        per_token: estimate.mem.filter(|_| rt > 0.0).map(|m| m / rt),
                        step,
                        beyond_document,
                        estimate,
                    }
                })
                .collect(),
        })
        .collect();
    // Summaries: every document, then each kind.
    let mut groups: Vec<(String, Vec<usize>)> = vec![("all documents".into(), (0..n).collect())];
    if let Some(k) = kinds {
        let mut by: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (d, kind) in k.iter().enumerate().take(n) {
            by.entry(kind).or_default().push(d);
        }
        if by.len() > 1 {
            groups.extend(by.into_iter().map(|(k, v)| (k.to_string(), v)));
        }
    }
    let mut summaries = Vec::new();
    for (kind, members) in groups {
        let levels = (0..n_levels)
            .map(|l| {
                let at = Summarize {
                    src,
                    spectrum,
                    tokens,
                    docs: &docs,
                    pair: &pair,
                    metric,
                    level,
                };
                at.level(&members, l)
            })
            .collect::<Result<Vec<_>>>()?;
        summaries.push(KindSpectrum {
            kind,
            n_docs: members.len(),
            levels,
        });
    }
    Ok(SpectrumReport {
        levels: spectrum.names.clone(),
        metric,
        level,
        n_models,
        docs,
        kinds: summaries,
        skipped,
    })
}

/// What a level's summary reads: the rows, the spectrum, the documents'
/// estimates and [`spectrum`]'s pairwise contrast of two levels.
struct Summarize<'a> {
    src: &'a dyn Rows,
    spectrum: &'a Spectrum,
    tokens: &'a [usize],
    docs: &'a [DocSpectrum],
    pair: &'a dyn Fn(usize, usize, usize) -> Estimate,
    metric: Metric,
    level: f64,
}

impl Summarize<'_> {
    /// Level `l` over the documents `members`.
    fn level(&self, members: &[usize], l: usize) -> Result<LevelSummary> {
        let Self {
            src,
            spectrum,
            tokens,
            docs,
            metric,
            level,
            ..
        } = *self;
        let estimates: Vec<&Estimate> = docs.iter().map(|d| &d.levels[l].estimate).collect();
        let with: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&d| estimates[d].mem.is_some())
            .collect();
        let mut weights = vec![0.0; docs.len()];
        for &d in &with {
            weights[d] = 1.0 / with.len() as f64;
        }
        let view = LevelView {
            src,
            spectrum,
            tokens,
            level: l,
            from: None,
        };
        let side = |c: u32| match c {
            1 => Some(true),
            0 => Some(false),
            _ => None,
        };
        let setting = Contrast {
            metric,
            level,
            block: 1,
            side: &side,
        };
        let mean = if with.is_empty() {
            MeanCi::of(&[], level)
        } else {
            MeanCi::of_contrast(
                with.len(),
                setting.of(&estimates, &view, &weights, &|_, v| v.to_vec())?,
            )
        };
        let avg = |f: &dyn Fn(&LevelEstimate) -> f64| {
            with.iter().map(|&d| f(&docs[d].levels[l])).sum::<f64>() / with.len().max(1) as f64
        };
        let (removed_docs, removed_tokens) = (avg(&|e| e.removed_docs), avg(&|e| e.removed_tokens));
        let scale = |x: f64| {
            if removed_tokens > 0.0 {
                x / removed_tokens
            } else {
                f64::NAN
            }
        };
        let per_token = MeanCi {
            mean: scale(mean.mean),
            se: scale(mean.se),
            ci_low: scale(mean.ci_low),
            ci_high: scale(mean.ci_high),
            ..mean
        };
        let (step, beyond_document) = if l == 0 {
            (None, None)
        } else {
            let step = self.difference(&with, l - 1, l, &setting)?;
            // Above the first level the document is a level further down.
            let beyond = if l == 1 {
                step
            } else {
                self.difference(&with, 0, l, &setting)?
            };
            (Some(step), Some(beyond))
        };
        let mut values: Vec<f64> = with.iter().filter_map(|&d| estimates[d].mem).collect();
        values.sort_by(f64::total_cmp);
        let q = |p: f64| {
            if values.is_empty() {
                return f64::NAN;
            }
            let x = p * (values.len() - 1) as f64;
            let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
            values[lo] + (x - lo as f64) * (values[hi] - values[lo])
        };
        Ok(LevelSummary {
            level: spectrum.names[l].clone(),
            mean,
            removed_docs,
            removed_tokens,
            per_token,
            step,
            beyond_document,
            quantiles: [q(0.1), q(0.5), q(0.9)],
        })
    }

    /// The mean over `with` of `mem_to − mem_from`. The documents whose unit
    /// is the same set at both levels add exactly 0; the others' mean is the
    /// contrast of `from`'s out-models against `to`'s, and the whole mean
    /// scales it by their share.
    fn difference(
        &self,
        with: &[usize],
        from: usize,
        to: usize,
        setting: &Contrast<'_>,
    ) -> Result<MeanCi> {
        let moving: Vec<usize> = with
            .iter()
            .copied()
            .filter(|&d| !self.spectrum.same_set(from, to, d))
            .collect();
        let owned: Vec<Estimate> = (0..self.docs.len())
            .map(|d| (self.pair)(from, to, d))
            .collect();
        let estimates: Vec<&Estimate> = owned.iter().collect();
        let docs = self.docs;
        let usable: Vec<usize> = moving
            .into_iter()
            .filter(|&d| estimates[d].mem.is_some())
            .collect();
        if usable.is_empty() {
            let zero = MeanCi::of(&vec![0.0; with.len()], setting.level);
            return Ok(MeanCi {
                se: 0.0,
                ci_low: 0.0,
                ci_high: 0.0,
                ..zero
            });
        }
        let mut weights = vec![0.0; docs.len()];
        for &d in &usable {
            weights[d] = 1.0 / usable.len() as f64;
        }
        let view = LevelView {
            src: self.src,
            spectrum: self.spectrum,
            tokens: self.tokens,
            level: to,
            from: Some(from),
        };
        let m = MeanCi::of_contrast(
            with.len(),
            setting.of(&estimates, &view, &weights, &|_, v| v.to_vec())?,
        );
        let share = usable.len() as f64 / with.len().max(usable.len()) as f64;
        Ok(MeanCi {
            mean: m.mean * share,
            se: m.se * share,
            ci_low: m.ci_low * share,
            ci_high: m.ci_high * share,
            ..m
        })
    }
}

/// An estimate that is exactly 0 (a step between two levels whose units
/// are the same set).
fn exact_zero(n_in: usize, n_out: usize) -> Estimate {
    Estimate {
        n_in,
        n_out,
        in_mean: None,
        out_mean: None,
        mem: Some(0.0),
        se: Some(0.0),
        df: None,
        ci_low: Some(0.0),
        ci_high: Some(0.0),
        reason: None,
    }
}

/// `src` with each row's copies replaced by level `l`'s sides (1 in,
/// 0 out, 2 neither), for the contrast of a level's mean; with `from`,
/// that level's out-side as 1 and this level's as 0.
struct LevelView<'a> {
    src: &'a dyn Rows,
    spectrum: &'a Spectrum,
    tokens: &'a [usize],
    level: usize,
    from: Option<usize>,
}

impl Rows for LevelView<'_> {
    fn ids(&self) -> Vec<String> {
        self.src.ids()
    }

    fn visit(&self, value: Value, f: &mut RowVisitor<'_>) -> Result<Vec<SkippedRow>> {
        self.src.visit(value, &mut |r| {
            let sides = self.spectrum.sides(r.copies, self.tokens);
            let l = self.level;
            let step: Vec<u32>;
            let copies = if let Some(from) = self.from {
                step = sides.code[from]
                    .iter()
                    .zip(&sides.code[l])
                    .map(|(&below, &here)| match (below, here) {
                        (0, _) => 1,
                        (_, 0) => 0,
                        _ => 2,
                    })
                    .collect();
                &step
            } else {
                &sides.code[l]
            };
            f(Row {
                model: r.model,
                copies,
                values: r.values,
            })
        })
    }
}
