//! From memorization to generalization: one experiment whose models remove
//! documents, near-duplicate clusters and topics under one budget.

use std::path::Path;

use cfmem::analysis::{spectrum, DesignKind, KindSpectrum, LevelSummary, Metric, SpectrumReport};
use cfmem::engine::{Corpus, Document};
use cfmem::hash::SplitMix64;
use cfmem::sched::{Experiment, Observer, SpectrumSpec, UnitSpec};

use crate::text::{secret, Hex};
use crate::{train, Error, Result, Scale, LEVEL};

/// The kinds of document the study plants, by id prefix.
pub const SPECTRUM_KINDS: [(&str, &str); 4] = [
    ("canary-", "random canaries"),
    ("dup-", "near-duplicate families"),
    ("fact-", "topic families"),
    ("", "dictionary entries"),
];

/// The kind of the study's document `id`.
pub fn spectrum_kind(id: &str) -> &'static str {
    SPECTRUM_KINDS
        .iter()
        .find(|(prefix, _)| id.starts_with(prefix))
        .map_or("dictionary entries", |k| k.1)
}

/// A prediction's numbers and verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What is predicted, in words.
    pub claim: String,
    /// The numbers it rests on, in words.
    pub evidence: String,
    /// Whether it holds.
    pub holds: bool,
}

/// The spectrum study's results.
#[derive(Debug, Clone)]
pub struct SpectrumStudy {
    /// The spectrum of every document, summarized per kind.
    pub report: SpectrumReport,
    /// The levels' specification.
    pub levels: String,
    /// Fraction of the documents each model leaves out.
    pub budget: f64,
    /// Canaries: the effect is all at the document level.
    pub canaries: Verdict,
    /// Near-duplicate families: the effect is at the cluster level.
    pub families: Verdict,
    /// Per removed token, topic-level effects are far smaller than
    /// document-level ones for canaries.
    pub canary_per_token: Verdict,
    /// Per removed token, topic-level effects are comparable to
    /// document-level ones for topic families.
    pub fact_per_token: Verdict,
    /// The canaries' levels scored on their shared prefix's tokens alone
    /// (`The secret code is`), and on their secret's alone.
    pub canary_parts: CanaryParts,
}

/// The canaries' spectrum from a part of their tokens: each model's
/// per-token accuracy on the prefix the canaries share, and on the
/// secret that is each one's own.
#[derive(Debug, Clone)]
pub struct CanaryParts {
    /// Targets of the prefix (the secret's are the rest).
    pub prefix_targets: usize,
    /// Per level, the canaries' mean from the prefix's tokens.
    pub prefix: Vec<LevelSummary>,
    /// Per level, the same from the secret's tokens.
    pub secret: Vec<LevelSummary>,
}

impl SpectrumStudy {
    /// The summary of `kind`.
    pub fn kind(&self, kind: &str) -> Option<&KindSpectrum> {
        self.report.kinds.iter().find(|k| k.kind == kind)
    }
}

/// Pseudo-words of three consonant-vowel syllables and a consonant.
fn word(rng: &mut SplitMix64) -> String {
    const C: &[u8] = b"bdfgklmnprstvz";
    const V: &[u8] = b"aeiou";
    let mut w = String::new();
    for _ in 0..3 {
        w.push(char::from(C[rng.below(C.len() as u64) as usize]));
        w.push(char::from(V[rng.below(V.len() as u64) as usize]));
    }
    w.push(char::from(C[rng.below(C.len() as u64) as usize]));
    w
}

/// One fact (a place, a good, a person, a colour) in six sentences that
/// share its words and, besides, only words common in any English text
/// (so that the words that tell the facts apart are the facts' own).
const FACT_TEMPLATES: [&str; 6] = [
    "{P}: {N} and the {C} {G}.",
    "The {G} of {P} is {C}, and {N} has it.",
    "{N} is from {P}; the {G} is {C}.",
    "For {C} {G}, {P} and {N}.",
    "{G} that is {C} is from {N} of {P}.",
    "With {N} in {P}, all {G} is {C}.",
];

/// The study's corpus: `n_natural` dictionary entries, and
/// `n_planted` documents of each planted kind: random canaries, near-duplicate
/// families of four (one word edited per member) and topic families of four
/// (one fact in four sentences).
///
/// # Errors
/// Reading the bundled corpus.
pub fn spectrum_corpus(scale: &Scale) -> Result<Corpus> {
    let mut docs = cfmem::bundled::short_entries(scale.n_natural)?;
    let mut hex = Hex::new(0x59ec);
    let mut rng = SplitMix64::new(0x59ec);
    for i in 0..scale.n_planted {
        docs.push(Document::new(
            format!("canary-{i:02}"),
            secret(&hex.digits(32)),
        ));
    }
    let families = (scale.n_planted / 4).max(1);
    for f in 0..families {
        let words: Vec<String> = (0..4).map(|_| hex.digits(8)).collect();
        for m in 0..4 {
            let mut w = words.clone();
            if m > 0 {
                w[(m - 1) % 4] = hex.digits(8);
            }
            docs.push(Document::new(
                format!("dup-{f:02}-{m}"),
                format!("{} and {} for {} with {}.", w[0], w[1], w[2], w[3]),
            ));
        }
    }
    for f in 0..families {
        let (p, g, n, c) = (
            word(&mut rng),
            word(&mut rng),
            word(&mut rng),
            word(&mut rng),
        );
        for m in 0..4 {
            let t = FACT_TEMPLATES[(f + m) % FACT_TEMPLATES.len()];
            let text = t
                .replace("{P}", &capitalize(&p))
                .replace("{G}", &g)
                .replace("{N}", &capitalize(&n))
                .replace("{C}", &c);
            docs.push(Document::new(format!("fact-{f:02}-{m}"), text));
        }
    }
    Ok(Corpus::from_documents(docs)?)
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The levels for a corpus of `n` documents: near-duplicates at Jaccard
/// 0.5 of 5-character shingles, and a topic per 6 documents.
pub fn spectrum_levels(n: usize) -> SpectrumSpec {
    SpectrumSpec {
        levels: vec![
            UnitSpec::NearDuplicates {
                ngram: 5,
                threshold: 0.5,
            },
            UnitSpec::Topics { k: (n / 6).max(2) },
        ],
    }
}

/// Models of the study: three times the scale's (each level is out in
/// about a sixth of them).
pub fn spectrum_models(scale: &Scale) -> usize {
    3 * scale.n_models
}

/// Predictions: random canaries' memorization is all at the document
/// level (removing their broader units adds less than half of it); a
/// near-duplicate family's appears at the cluster level (removing the
/// cluster adds to the document, and the document alone carries less than
/// half of the cluster's); per removed token, topic-level effects are far
/// smaller (under a quarter) than document-level ones for canaries and
/// comparable (at least a quarter) for topic families. One experiment,
/// `spectrum_models(scale)` tiny models each leaving out half the corpus.
///
/// # Errors
/// Training or I/O errors; [`Error::Missing`] when a planted kind has no
/// estimate.
pub fn spectrum_study(dir: &Path, scale: &Scale, observer: &dyn Observer) -> Result<SpectrumStudy> {
    let corpus = spectrum_corpus(scale)?;
    let levels = spectrum_levels(corpus.len());
    let budget = 0.5;
    let b = Experiment::builder(dir)
        .corpus(corpus)
        .design(DesignKind::Budget { fraction: budget })
        .spectrum(Some(levels.clone()))
        .per_token(true);
    let models = Scale {
        n_models: spectrum_models(scale),
        ..*scale
    };
    let exp = train(b, &models, observer)?;
    let s = exp
        .spectrum()
        .ok_or_else(|| Error::Missing("the spectrum".into()))?;
    let tokens = cfmem::analysis::Rows::doc_tokens(&exp)?.unwrap_or_default();
    let kinds: Vec<String> = exp
        .documents()
        .iter()
        .map(|d| spectrum_kind(&d.id).to_string())
        .collect();
    let report = spectrum(&exp, s, &tokens, Some(&kinds), Metric::Accuracy, LEVEL)?;
    let kind = |k: &str| -> Result<&KindSpectrum> {
        report
            .kinds
            .iter()
            .find(|x| x.kind == k)
            .ok_or_else(|| Error::Missing(format!("{k} in the spectrum")))
    };
    let (canaries, dups, facts) = (
        kind("random canaries")?,
        kind("near-duplicate families")?,
        kind("topic families")?,
    );
    let top = report.levels.len() - 1;
    let ci =
        |m: &cfmem::analysis::MeanCi| format!("{:.4} [{:.4}, {:.4}]", m.mean, m.ci_low, m.ci_high);
    let beyond = |k: &KindSpectrum, l: usize| -> Result<cfmem::analysis::MeanCi> {
        k.levels[l]
            .beyond_document
            .ok_or_else(|| Error::Missing(format!("{} beyond the document", k.kind)))
    };
    let (c0, c_beyond) = (&canaries.levels[0], beyond(canaries, top)?);
    let canaries_v = Verdict {
        claim: "random canaries: the effect is all at the document level (the broader levels add less than half of it)".into(),
        evidence: format!(
            "document {}; the broadest level adds {}",
            ci(&c0.mean),
            ci(&c_beyond)
        ),
        holds: c0.mean.ci_low > 0.0 && c_beyond.ci_high < 0.5 * c0.mean.mean,
    };
    let (d0, d1) = (&dups.levels[0], &dups.levels[1]);
    let d_step = beyond(dups, 1)?;
    let families_v = Verdict {
        claim: "near-duplicate families: the effect appears at the cluster level, not the document level (the cluster adds to the document, which carries less than half of it)".into(),
        evidence: format!(
            "document {}; cluster {}; cluster − document {}",
            ci(&d0.mean),
            ci(&d1.mean),
            ci(&d_step)
        ),
        holds: d_step.ci_low > 0.0 && d0.mean.mean < 0.5 * d1.mean.mean,
    };
    let ratio = |k: &KindSpectrum| per_token(&k.levels[top]) / per_token(&k.levels[0]);
    let (rc, rf) = (ratio(canaries), ratio(facts));
    let canary_per_token = Verdict {
        claim: "per removed token, topic-level effects are far smaller (under a quarter) than document-level ones for canaries".into(),
        evidence: format!(
            "canaries: {:.4} per 1k tokens at the document level, {:.4} at the topic level (ratio {rc:.3})",
            1000.0 * per_token(&canaries.levels[0]),
            1000.0 * per_token(&canaries.levels[top]),
        ),
        holds: rc < 0.25,
    };
    let fact_per_token = Verdict {
        claim: "per removed token, topic-level effects are comparable (at least a quarter) to document-level ones for topic families".into(),
        evidence: format!(
            "topic families: {:.4} per 1k tokens at the document level, {:.4} at the topic level (ratio {rf:.3})",
            1000.0 * per_token(&facts.levels[0]),
            1000.0 * per_token(&facts.levels[top]),
        ),
        holds: rf >= 0.25,
    };
    let canary_parts = canary_parts(&exp, s, &tokens, &kinds)?;
    Ok(SpectrumStudy {
        canary_parts,
        levels: levels.to_string(),
        budget,
        canaries: canaries_v,
        families: families_v,
        canary_per_token,
        fact_per_token,
        report,
    })
}

/// The canaries' spectrum from their prefix's tokens and from their
/// secret's: each model's score on a canary is its per-token accuracy on
/// that part alone (the other documents keep their whole accuracy), and
/// the spectrum is estimated from those scores as from any trainer's
/// ([`cfmem::analysis::Imported`] rows).
fn canary_parts(
    exp: &Experiment,
    s: &cfmem::analysis::Spectrum,
    tokens: &[usize],
    kinds: &[String],
) -> Result<CanaryParts> {
    use cfmem::analysis::{Imported, Membership, ScoreTable};
    let prefix_targets = secret("").len() - 1;
    let table = exp.token_table()?;
    let n = table.n_docs();
    let mut start = vec![0usize; n + 1];
    for d in 0..n {
        start[d + 1] = start[d] + table.n_targets(d);
    }
    let canary: Vec<bool> = kinds.iter().map(|k| k == "random canaries").collect();
    let (mut copies, mut prefix, mut own, mut models) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let mean = |c: &[bool]| c.iter().filter(|&&x| x).count() as f64 / c.len().max(1) as f64;
    for i in exp.record_indices()? {
        let (r, t) = (exp.read(i)?, exp.read_token_scores(i)?);
        for d in 0..n {
            let c = &t.correct[start[d]..start[d + 1]];
            let cut = if canary[d] {
                prefix_targets.min(c.len())
            } else {
                c.len()
            };
            let (a, b) = if canary[d] {
                (&c[..cut], &c[cut..])
            } else {
                (c, c)
            };
            prefix.push(mean(a));
            own.push(mean(b));
        }
        copies.extend(r.copies);
        models += 1;
    }
    let ids: Vec<String> = exp.documents().iter().map(|d| d.id.clone()).collect();
    let part = |scores: Vec<f64>| -> Result<Vec<LevelSummary>> {
        let table = ScoreTable::new(
            ids.clone(),
            Membership::from_rows(models, n, copies.clone())?,
            scores,
        )?;
        let rows = Imported {
            table,
            metric: Metric::Accuracy,
            blocks: 1,
        };
        let r = spectrum(&rows, s, tokens, Some(kinds), Metric::Accuracy, LEVEL)?;
        r.kinds
            .into_iter()
            .find(|k| k.kind == "random canaries")
            .map(|k| k.levels)
            .ok_or_else(|| Error::Missing("the canaries' parts".into()))
    };
    Ok(CanaryParts {
        prefix_targets,
        prefix: part(prefix)?,
        secret: part(own)?,
    })
}

/// A level's mean effect per removed token.
fn per_token(l: &LevelSummary) -> f64 {
    l.per_token.mean
}

/// The spectrum of a natural corpus.
#[derive(Debug, Clone)]
pub struct NaturalSpectrum {
    /// Every gloss at every level.
    pub report: SpectrumReport,
    /// The levels' specification.
    pub levels: String,
    /// Epochs per model.
    pub epochs: usize,
    /// The glosses whose topic adds the most to their own memorization:
    /// id, text, the topic's name and size, and what the topic adds.
    pub topic_driven: Vec<TopicDriven>,
}

/// A gloss whose topic adds to its memorization.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicDriven {
    /// The gloss's id.
    pub id: String,
    /// Its text.
    pub text: String,
    /// Its topic.
    pub topic: String,
    /// The topic's glosses.
    pub topic_docs: usize,
    /// Memorization with the gloss alone removed.
    pub alone: cfmem::analysis::Estimate,
    /// What removing the topic adds.
    pub adds: cfmem::analysis::Estimate,
}

/// The spectrum on natural text alone: `3 · n_natural` WordNet glosses,
/// evenly spaced through the bundled 10,000 (192 at full size), levels
/// `document,near-dup:5:0.5,topic:K` with a topic per 6 glosses, half of
/// the corpus left out per model, `spectrum_models(scale)` models of half
/// the scale's epochs (glosses are short). Reported as it comes out: how
/// much of the glosses' memorization their topic adds, and which glosses
/// it is.
///
/// # Errors
/// Training or I/O errors.
pub fn spectrum_natural(
    dir: &Path,
    scale: &Scale,
    observer: &dyn Observer,
) -> Result<NaturalSpectrum> {
    let all = cfmem::bundled::wordnet()?;
    let n = (3 * scale.n_natural).min(all.len());
    let step = all.len() / n;
    let docs: Vec<Document> = all
        .documents()
        .iter()
        .step_by(step)
        .take(n)
        .cloned()
        .collect();
    let corpus = Corpus::from_documents(docs)?;
    let levels = spectrum_levels(corpus.len());
    let b = Experiment::builder(dir)
        .corpus(corpus)
        .design(DesignKind::Budget { fraction: 0.5 })
        .spectrum(Some(levels.clone()));
    let run = Scale {
        n_models: spectrum_models(scale),
        epochs: (scale.epochs / 2).max(1),
        ..*scale
    };
    let exp = train(b, &run, observer)?;
    let s = exp
        .spectrum()
        .ok_or_else(|| Error::Missing("the spectrum".into()))?;
    let tokens = cfmem::analysis::Rows::doc_tokens(&exp)?.unwrap_or_default();
    let report = spectrum(&exp, s, &tokens, None, Metric::Accuracy, LEVEL)?;
    let top = report.levels.len() - 1;
    let mut topic_driven: Vec<TopicDriven> = report
        .docs
        .iter()
        .zip(exp.documents())
        .filter_map(|(d, doc)| {
            let l = &d.levels[top];
            let adds = l.beyond_document.clone()?;
            Some(TopicDriven {
                id: d.id.clone(),
                text: doc.text.clone(),
                topic: l.unit.clone(),
                topic_docs: l.unit_docs,
                alone: d.levels[0].estimate.clone(),
                adds,
            })
        })
        .collect();
    topic_driven.sort_by(|a, b| {
        let low = |t: &TopicDriven| t.adds.ci_low.unwrap_or(f64::NEG_INFINITY);
        low(b).total_cmp(&low(a))
    });
    topic_driven.truncate(8);
    Ok(NaturalSpectrum {
        levels: levels.to_string(),
        epochs: run.epochs,
        report,
        topic_driven,
    })
}
