//! The studies behind the examples: each tests one prediction about
//! counterfactual memorization on a corpus it builds, trains (or resumes)
//! its experiments under a directory, and returns its numbers. The examples
//! run them at full size and print and plot the results; the integration
//! tests (`tests/studies.rs`) run them small and check the direction of each
//! effect, so a regression in training or estimation that breaks the
//! science fails CI.
//!
//! A prediction *holds* when the 95 % interval of the effect excludes 0 in
//! the predicted direction; a prediction that fails is reported as such.

use std::path::Path;

use cfmem_analysis::{
    Adjustment, DesignConfig, Estimate, InfluenceConfig, Metric, RunningStats, Welch,
};
use cfmem_core::{Corpus, Document, LoadConfig, ModelConfig, TrainConfig};
use cfmem_sched::{report_adjusted, run, Experiment, Manifest, Observer, RunConfig, UnitSpec};

/// Any error of a study.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How big a study runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// Models per experiment (the budget, for the convergence study).
    pub n_models: usize,
    /// Epochs per model.
    pub epochs: usize,
    /// Natural-text documents (short dictionary entries) in the corpus.
    pub n_natural: usize,
    /// Documents per planted group (random ids, repeated words, duplicates…).
    pub n_planted: usize,
}

impl Scale {
    /// The examples' size: 32 models, 64 epochs, 64 dictionary entries, 16
    /// planted documents per group (each study under 10 minutes on 2 cores).
    pub fn full() -> Self {
        Self {
            n_models: 32,
            epochs: 64,
            n_natural: 64,
            n_planted: 16,
        }
    }

    /// The integration tests' size (seconds).
    pub fn small() -> Self {
        Self {
            n_models: 16,
            epochs: 48,
            n_natural: 24,
            n_planted: 8,
        }
    }
}

/// Mean of a group of documents' memorization with its 95 % interval
/// (Student t over the documents).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStat {
    /// Documents with an estimate.
    pub n: usize,
    /// Mean memorization.
    pub mean: f64,
    /// 95 % interval of the mean.
    pub ci: (f64, f64),
}

impl GroupStat {
    fn of(values: &[f64]) -> Self {
        let s = stats(values);
        Self {
            n: s.n,
            mean: s.mean,
            ci: s.mean_ci(0.95).unwrap_or((f64::NAN, f64::NAN)),
        }
    }
}

fn stats(values: &[f64]) -> RunningStats {
    let mut s = RunningStats::default();
    for &v in values.iter().filter(|v| v.is_finite()) {
        s.push(v);
    }
    s
}

/// `a − b` over documents (Welch), and whether its interval is above 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The comparison (`diff`, `se`, `ci_low`, `ci_high`).
    pub welch: Option<Welch>,
    /// The interval excludes 0 on the positive side.
    pub holds: bool,
}

impl Difference {
    fn of(a: &[f64], b: &[f64]) -> Self {
        let welch = cfmem_analysis::welch(&stats(a), &stats(b), 0.95);
        Self {
            holds: welch.is_some_and(|w| w.ci_low > 0.0),
            welch,
        }
    }
}

/// A deterministic stream of pseudo-random hex digits.
struct Hex(cfmem_analysis::SplitMix64);

impl Hex {
    fn new(seed: u64) -> Self {
        Self(cfmem_analysis::SplitMix64::new(seed))
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit(self.0.below(16) as u32, 16).unwrap_or('0'))
            .collect()
    }
    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.digits(8),
            self.digits(4),
            self.digits(3),
            self.digits(3),
            self.digits(12)
        )
    }
    /// `text` with one hex digit of its code (the last 32 characters)
    /// replaced by a different one.
    fn edit(&mut self, text: &str) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        let at = chars.len() - 1 - self.0.below(32) as usize;
        let old = chars[at];
        let mut new = old;
        while new == old {
            new = char::from_digit(self.0.below(16) as u32, 16).unwrap_or('0');
        }
        chars[at] = new;
        chars.into_iter().collect()
    }
}

fn secret(code: &str) -> String {
    format!("The secret code is {code}")
}

/// The experiment in `dir` with `manifest`: resumed when its manifest is
/// the same, started afresh when the settings (or the trainer revision)
/// changed or the manifest is unreadable. For examples, which own their
/// directories; `cfmem run` refuses a changed experiment instead.
///
/// # Errors
/// I/O errors; a corpus that does not match the manifest.
pub fn open_or_replace(
    dir: &Path,
    manifest: Manifest,
    corpus: Corpus,
    queries: Option<Corpus>,
) -> Result<Experiment> {
    let changed = dir.join("manifest.json").exists()
        && Manifest::read(dir).map_or(true, |old| !old.diff(&manifest).is_empty());
    Ok(Experiment::create_with_queries(
        dir, manifest, corpus, queries, changed,
    )?)
}

/// Train (or resume) an experiment in `dir` (recreated when its settings
/// changed).
fn experiment(
    dir: &Path,
    corpus: Corpus,
    queries: Option<Corpus>,
    design: DesignConfig,
    units: UnitSpec,
    scale: &Scale,
    observer: &dyn Observer,
) -> Result<Experiment> {
    let train = TrainConfig {
        epochs: scale.epochs,
        ..TrainConfig::default()
    };
    let mut manifest = Manifest::new(
        &corpus,
        None,
        LoadConfig::default(),
        ModelConfig::tiny(),
        train,
        design,
        0,
    );
    manifest.units = units;
    if let Some(q) = &queries {
        manifest = manifest.with_queries(q, None, LoadConfig::default());
    }
    let exp = open_or_replace(dir, manifest, corpus, queries)?;
    let s = run(
        &exp,
        &RunConfig {
            n_models: scale.n_models,
            ..RunConfig::default()
        },
        observer,
    )?;
    if !s.failed.is_empty() {
        return Err(format!("models failed: {:?}", s.failed).into());
    }
    Ok(exp)
}

/// Per-document estimates (model-mean adjusted, per-token accuracy), by id.
fn estimates(exp: &Experiment) -> Result<Vec<(String, Estimate)>> {
    let rep = report_adjusted(exp, Metric::Accuracy, Adjustment::ModelMean)?;
    Ok(rep.docs.into_iter().map(|d| (d.id, d.estimate)).collect())
}

fn mems(est: &[(String, Estimate)], prefix: &str) -> Vec<f64> {
    est.iter()
        .filter(|(id, _)| id.starts_with(prefix))
        .filter_map(|(_, e)| e.mem)
        .collect()
}

// ---------------------------------------------------------------------------

/// Random identifiers against one word repeated.
#[derive(Debug, Clone)]
pub struct RandomVsPredictable {
    /// Documents of random UUIDs.
    pub random: GroupStat,
    /// Documents of "the the the …".
    pub repeated: GroupStat,
    /// Dictionary entries, for reference.
    pub natural: GroupStat,
    /// random − repeated.
    pub difference: Difference,
    /// `(kind, out-mean accuracy, mem)` per document, for a scatter plot.
    pub points: Vec<(String, f64, f64)>,
}

/// Prediction: documents of random identifiers are memorized more than
/// documents of one repeated word, whose memorization is bounded by how
/// easy they are for a model that never saw them.
///
/// # Errors
/// Training or I/O errors.
pub fn random_vs_predictable(
    dir: &Path,
    scale: &Scale,
    observer: &dyn Observer,
) -> Result<RandomVsPredictable> {
    let mut docs = crate::bundled::short_entries(scale.n_natural)?;
    let mut hex = Hex::new(0x5eed);
    for i in 0..scale.n_planted {
        docs.push(Document::new(
            format!("uuid-{i:02}"),
            format!("{} {}", hex.uuid(), hex.uuid()),
        ));
        docs.push(Document::new(
            format!("repeated-{i:02}"),
            vec!["the"; 10 + i].join(" "),
        ));
    }
    let exp = experiment(
        dir,
        Corpus::from_documents(docs)?,
        None,
        DesignConfig::blocks(2, 0),
        UnitSpec::Documents,
        scale,
        observer,
    )?;
    let est = estimates(&exp)?;
    let (random, repeated) = (mems(&est, "uuid-"), mems(&est, "repeated-"));
    let nat: Vec<f64> = est
        .iter()
        .filter(|(id, _)| !id.starts_with("uuid-") && !id.starts_with("repeated-"))
        .filter_map(|(_, e)| e.mem)
        .collect();
    let points = est
        .iter()
        .filter_map(|(id, e)| {
            let kind = if id.starts_with("uuid-") {
                "random UUIDs"
            } else if id.starts_with("repeated-") {
                "one word repeated"
            } else {
                "dictionary entries"
            };
            Some((kind.to_string(), e.out_mean?, e.mem?))
        })
        .collect();
    Ok(RandomVsPredictable {
        random: GroupStat::of(&random),
        repeated: GroupStat::of(&repeated),
        natural: GroupStat::of(&nat),
        difference: Difference::of(&random, &repeated),
        points,
    })
}

// ---------------------------------------------------------------------------

/// Memorization by number of copies.
#[derive(Debug, Clone)]
pub struct RepetitionStudy {
    /// `(copies, mean mem over documents, 95 % interval)`, ascending copies.
    pub levels: Vec<(u32, f64, (f64, f64))>,
    /// Per document `mem(4) − mem(1)`, averaged (paired over documents).
    pub four_vs_one: GroupStat,
    /// Per document `mem(2) − mem(1)`.
    pub two_vs_one: GroupStat,
}

/// Prediction: a document included with more copies per epoch (1, 2, 4)
/// is memorized more.
///
/// # Errors
/// Training or I/O errors.
pub fn repetition(dir: &Path, scale: &Scale, observer: &dyn Observer) -> Result<RepetitionStudy> {
    let docs = crate::bundled::short_entries(scale.n_natural)?;
    let design = DesignConfig::repetition(vec![0, 1, 2, 4], vec![0.25; 4], 0);
    let exp = experiment(
        dir,
        Corpus::from_documents(docs)?,
        None,
        design,
        UnitSpec::Documents,
        scale,
        observer,
    )?;
    let curve = cfmem_sched::repetition(&exp, Metric::Accuracy)?;
    let mut levels = Vec::new();
    for (l, &c) in curve.copies.iter().enumerate() {
        let v: Vec<f64> = curve.per_doc.iter().filter_map(|d| d[l].mem).collect();
        let g = GroupStat::of(&v);
        levels.push((c, g.mean, g.ci));
    }
    let paired = |hi: u32, lo: u32| -> GroupStat {
        let (Some(h), Some(l)) = (
            curve.copies.iter().position(|&c| c == hi),
            curve.copies.iter().position(|&c| c == lo),
        ) else {
            return GroupStat::of(&[]);
        };
        let v: Vec<f64> = curve
            .per_doc
            .iter()
            .filter_map(|d| Some(d[h].mem? - d[l].mem?))
            .collect();
        GroupStat::of(&v)
    };
    Ok(RepetitionStudy {
        four_vs_one: paired(4, 1),
        two_vs_one: paired(2, 1),
        levels,
    })
}

// ---------------------------------------------------------------------------

/// A cluster of near-duplicates against unique documents of the same kind.
#[derive(Debug, Clone)]
pub struct NearDuplicates {
    /// Individual memorization of the cluster's members (documents as units).
    pub members: GroupStat,
    /// Individual memorization of unique documents of the same kind.
    pub unique: GroupStat,
    /// The cluster removed as one unit (group design): its members' mean score.
    pub cluster: Estimate,
    /// unique − members (documents as units).
    pub unique_vs_member: Difference,
    /// cluster (as a unit) − members (individually): its interval from the
    /// two standard errors combined (normal approximation).
    pub cluster_vs_member: (f64, (f64, f64)),
    /// Whether the cluster interval is above the members' on the positive side.
    pub cluster_holds: bool,
}

/// Prediction: a document with many near-duplicates has low individual
/// counterfactual memorization (the others stand in for it), while
/// removing the whole cluster shows high memorization for the group:
/// memorized, but not localized in one document.
///
/// # Errors
/// Training or I/O errors.
pub fn near_duplicates(
    dir: &Path,
    scale: &Scale,
    observer: &dyn Observer,
) -> Result<NearDuplicates> {
    let mut docs = crate::bundled::short_entries(scale.n_natural)?;
    let mut hex = Hex::new(0xd0b1e);
    let base = secret(&hex.digits(32));
    for i in 0..scale.n_planted {
        let mut d = Document::new(format!("dup-{i:02}"), hex.edit(&base));
        d.group = Some("cluster".into());
        docs.push(d);
        docs.push(Document::new(
            format!("unique-{i:02}"),
            secret(&hex.digits(32)),
        ));
    }
    let corpus = Corpus::from_documents(docs)?;
    let single = experiment(
        &dir.join("documents"),
        corpus.clone(),
        None,
        DesignConfig::blocks(2, 0),
        UnitSpec::Documents,
        scale,
        observer,
    )?;
    let est = estimates(&single)?;
    let members_v = mems(&est, "dup-");
    let unique_v = mems(&est, "unique-");
    let grouped = experiment(
        &dir.join("groups"),
        corpus,
        None,
        DesignConfig::blocks(2, 0),
        UnitSpec::GroupField,
        scale,
        observer,
    )?;
    let cluster = cfmem_sched::groups(&grouped, Metric::Accuracy)?
        .into_iter()
        .find(|g| g.members.len() > 1)
        .ok_or("the cluster is missing from the group design")?
        .estimate;
    let members = GroupStat::of(&members_v);
    let ms = stats(&members_v);
    let member_se = (ms.variance().unwrap_or(f64::NAN) / ms.n as f64).sqrt();
    let diff = cluster.mem.unwrap_or(f64::NAN) - members.mean;
    let se = (cluster.se.unwrap_or(f64::NAN).powi(2) + member_se.powi(2)).sqrt();
    let ci = (diff - 1.96 * se, diff + 1.96 * se);
    Ok(NearDuplicates {
        unique_vs_member: Difference::of(&unique_v, &members_v),
        unique: GroupStat::of(&unique_v),
        members,
        cluster,
        cluster_vs_member: (diff, ci),
        cluster_holds: ci.0 > 0.0,
    })
}

// ---------------------------------------------------------------------------

/// One point of a split-half curve.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    /// Models used (half in each half).
    pub models: usize,
    /// Spearman correlation of the two halves' estimates.
    pub spearman: Option<f64>,
    /// Spearman–Brown reliability of the estimate from all `models`.
    pub reliability: Option<f64>,
    /// Training seconds of the first `models` models, summed (one core each).
    pub model_seconds: f64,
}

/// Split-half convergence of the first `n` models' estimates (per-token
/// accuracy, adjusted as asked) at `checkpoints` (and `n`).
///
/// # Errors
/// I/O or analysis errors.
pub fn split_half(
    exp: &Experiment,
    n: usize,
    adjustment: Adjustment,
    checkpoints: &[usize],
) -> Result<Vec<CurvePoint>> {
    let points =
        cfmem_sched::convergence_at(exp, Metric::Accuracy, adjustment, n, Some(checkpoints), n)?;
    let secs: Vec<f64> = (0..n)
        .map(|i| exp.read_meta(i).map_or(0.0, |m| m.seconds))
        .collect();
    Ok(points
        .into_iter()
        .map(|p| CurvePoint {
            models: p.n_models,
            spearman: p.spearman,
            reliability: p.reliability,
            model_seconds: secs[..p.n_models.min(n)].iter().sum(),
        })
        .collect())
}

/// Split-half convergence of the estimates against the number of models.
#[derive(Debug, Clone)]
pub struct ConvergenceStudy {
    /// The curve at 8, 16, 24, 32, 48, 64, 96 models (those ≤ the budget).
    pub curve: Vec<CurvePoint>,
    /// The first checkpoint at which the split-half Spearman reached 0.9,
    /// with the wall seconds to train that many models on this machine's
    /// cores.
    pub crossing: Option<(usize, f64)>,
    /// Cores the wall time is computed for.
    pub cores: usize,
}

/// What the compute buys: `scale.n_models` models on `corpus` with the
/// default settings (shared seeds, blocks of 2, model-mean adjustment,
/// `scale.epochs` epochs), and the split-half curve of their estimates.
///
/// # Errors
/// Training or I/O errors.
pub fn convergence(
    dir: &Path,
    corpus: Corpus,
    scale: &Scale,
    observer: &dyn Observer,
) -> Result<ConvergenceStudy> {
    let exp = experiment(
        dir,
        corpus,
        None,
        DesignConfig::blocks(2, 0),
        UnitSpec::Documents,
        scale,
        observer,
    )?;
    let curve = split_half(
        &exp,
        scale.n_models,
        Adjustment::ModelMean,
        &[8, 16, 24, 32, 48, 64, 96],
    )?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let crossing = curve
        .iter()
        .find(|c| c.spearman.is_some_and(|r| r >= 0.9))
        .map(|c| (c.models, c.model_seconds / cores as f64));
    Ok(ConvergenceStudy {
        curve,
        crossing,
        cores,
    })
}

// ---------------------------------------------------------------------------

/// A training document's id, its influence on a query and the SE.
pub type Ranked = (String, f64, f64);

/// Train → held-out influence.
#[derive(Debug, Clone)]
pub struct InfluenceStudy {
    /// Held-out documents with near-duplicates in training.
    pub n_queries: usize,
    /// Of those, how many have one of their own near-duplicates as the
    /// most influential training document.
    pub top1_is_duplicate: usize,
    /// How many have both of their near-duplicates among their top 3.
    pub both_in_top3: usize,
    /// Chance of a given query's top-1 being one of its duplicates.
    pub chance: f64,
    /// Mean rank (1 = most influential) of a query's own near-duplicates
    /// among all training documents.
    pub mean_rank: f64,
    /// The mean rank by chance: `(n + 1) / 2` for `n` training documents.
    pub chance_rank: f64,
    /// Per duplicated query: its id and its top 3.
    pub tops: Vec<(String, Vec<Ranked>)>,
}

/// Prediction: the most influential training documents for a held-out
/// document are its near-duplicates.
///
/// # Errors
/// Training or I/O errors.
pub fn influence(dir: &Path, scale: &Scale, observer: &dyn Observer) -> Result<InfluenceStudy> {
    let mut docs = crate::bundled::short_entries(scale.n_natural)?;
    let mut hex = Hex::new(0x1f1);
    let mut queries = Vec::new();
    for i in 0..scale.n_planted {
        let base = secret(&hex.digits(32));
        for j in 0..2 {
            docs.push(Document::new(format!("near-{i:02}-{j}"), hex.edit(&base)));
        }
        queries.push(Document::new(format!("query-{i:02}"), base));
    }
    let corpus = Corpus::from_documents(docs)?;
    let ids: Vec<String> = corpus.documents().iter().map(|d| d.id.clone()).collect();
    let queries = Corpus::from_documents(queries)?;
    let qids: Vec<String> = queries.documents().iter().map(|d| d.id.clone()).collect();
    let exp = experiment(
        dir,
        corpus,
        Some(queries),
        DesignConfig::blocks(2, 0),
        UnitSpec::Documents,
        scale,
        observer,
    )?;
    let inf = cfmem_sched::influence(
        &exp,
        Metric::Accuracy,
        true,
        InfluenceConfig {
            k: ids.len(),
            ..InfluenceConfig::default()
        },
    )?;
    let mut top1 = 0;
    let mut both = 0;
    let mut tops = Vec::new();
    let mut ranks = Vec::new();
    for (q, list) in inf.top_units.iter().enumerate() {
        let own = format!("near-{}-", &qids[q]["query-".len()..]);
        let mut names: Vec<Ranked> = list
            .iter()
            .map(|e| (ids[e.unit].clone(), e.infl, e.se))
            .collect();
        for (r, n) in names.iter().enumerate() {
            if n.0.starts_with(&own) {
                ranks.push((r + 1) as f64);
            }
        }
        if names.first().is_some_and(|n| n.0.starts_with(&own)) {
            top1 += 1;
        }
        if names
            .iter()
            .take(3)
            .filter(|n| n.0.starts_with(&own))
            .count()
            == 2
        {
            both += 1;
        }
        names.truncate(3);
        tops.push((qids[q].clone(), names));
    }
    Ok(InfluenceStudy {
        n_queries: qids.len(),
        top1_is_duplicate: top1,
        both_in_top3: both,
        chance: 2.0 / ids.len() as f64,
        mean_rank: ranks.iter().sum::<f64>() / ranks.len().max(1) as f64,
        chance_rank: (ids.len() + 1) as f64 / 2.0,
        tops,
    })
}
