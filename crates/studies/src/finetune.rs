//! Memorization of fine-tuning data: the same corpus, design and recipe
//! trained from random weights and from a pretrained base model, scored by
//! per-token accuracy and by extraction.

use std::path::Path;

use cfmem::analysis::{report, Agreement, MeanCi, Metric, Report, ReportConfig};
use cfmem::engine::{
    Corpus, Document, ExtractionConfig, LoadConfig, ModelConfig, TokenizerSpec, TrainConfig,
};
use cfmem::sched::{pretrain, Experiment, Observer, Pretrained};

use crate::text::Hex;
use crate::{train, Result, Scale};

/// How big the base model's pretraining is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaseScale {
    /// Jargon File entries it trains on (all 2,307 at most).
    pub n_docs: usize,
    /// Epochs over them.
    pub epochs: usize,
}

impl BaseScale {
    /// The example's base: the whole Jargon File, one epoch (≈ 1.4 M tokens).
    pub fn full() -> Self {
        Self {
            n_docs: usize::MAX,
            epochs: 1,
        }
    }

    /// The integration test's base: 256 entries, two epochs.
    pub fn small() -> Self {
        Self {
            n_docs: 256,
            epochs: 2,
        }
    }
}

/// Means over documents of one kind in one experiment, with 95 % intervals.
#[derive(Debug, Clone)]
pub struct KindSummary {
    /// Per-token accuracy memorization.
    pub accuracy: MeanCi,
    /// Counterfactual extraction: P(extractable | in) − P(extractable | out).
    pub extraction: MeanCi,
    /// Counterfactual matched length (tokens).
    pub extraction_length: MeanCi,
    /// Extraction rate of the models that trained on the documents.
    pub extractable_in: MeanCi,
    /// Extraction rate of the models that did not.
    pub extractable_out: MeanCi,
    /// Per-token accuracy of the models that did not train on them.
    pub accuracy_out: MeanCi,
}

/// One experiment of the study.
#[derive(Debug, Clone)]
pub struct Arm {
    /// "from scratch" or "pretrained".
    pub name: &'static str,
    /// Natural text (Devil's Dictionary entries).
    pub natural: KindSummary,
    /// Planted random canaries.
    pub canaries: KindSummary,
    /// Per-token memorization (first) against extraction (second).
    pub agreement: Agreement,
    /// Every scored document: (is a canary, accuracy mem, extraction mem).
    pub points: Vec<(bool, f64, f64)>,
    /// Documents too short for the extraction test.
    pub n_too_short: usize,
}

/// The study's results.
#[derive(Debug, Clone)]
pub struct FinetuneStudy {
    /// The base model's pretraining.
    pub base: Pretrained,
    /// Trained from random weights.
    pub scratch: Arm,
    /// Fine-tuned from the base model.
    pub pretrained: Arm,
    /// Per document, pretrained − scratch accuracy memorization (natural
    /// text), averaged, the models paired by cluster across the arms.
    pub natural_gain: MeanCi,
    /// The same for the canaries.
    pub canary_gain: MeanCi,
}

/// Fine-tuning corpus: `n` Devil's Dictionary entries of 64 to 200 bytes
/// (long enough for the 32 → 32 extraction test), evenly spaced through the
/// dictionary, and `planted` canaries of the form "The secret code is"
/// followed by two random UUIDs (ids `canary-random-NN`).
pub fn fine_tuning_corpus(n: usize, planted: usize) -> Result<Corpus> {
    let full = Corpus::load(cfmem::bundled::DEVIL_PATH, &LoadConfig::default())?;
    let fit: Vec<&Document> = full
        .documents()
        .iter()
        .filter(|d| (64..=200).contains(&d.text.len()))
        .collect();
    let step = (fit.len() / n.max(1)).max(1);
    let mut docs: Vec<Document> = fit.into_iter().step_by(step).take(n).cloned().collect();
    let mut hex = Hex::new(0xf1e7);
    for i in 0..planted {
        docs.push(Document::new(
            format!("{}{i:02}", cfmem::engine::RANDOM_PREFIX),
            format!("The secret code is {} {}", hex.uuid(), hex.uuid()),
        ));
    }
    Ok(Corpus::from_documents(docs)?)
}

/// Pretrain the base model into `path`. Pretraining is deterministic: the
/// same settings write the same file, so experiments built on it resume.
pub(crate) fn base_model(path: &Path, base: &BaseScale, model: &ModelConfig) -> Result<Pretrained> {
    let jargon = Corpus::load(cfmem::bundled::JARGON_PATH, &LoadConfig::default())?;
    let docs: Vec<Document> = jargon
        .documents()
        .iter()
        .take(base.n_docs)
        .cloned()
        .collect();
    let corpus = Corpus::from_documents(docs)?;
    let train = TrainConfig {
        epochs: base.epochs,
        ..TrainConfig::default()
    };
    pretrain(&corpus, model, &train, &TokenizerSpec::Bytes, 0, path).map_err(Into::into)
}

fn is_canary(id: &str) -> bool {
    id.starts_with(cfmem::engine::RANDOM_PREFIX)
}

/// The indices of the canaries (`canary`) or the natural documents.
fn kind_docs(rep: &Report, canary: bool) -> Vec<usize> {
    rep.docs
        .iter()
        .filter(|d| is_canary(&d.id) == canary)
        .map(|d| d.index)
        .collect()
}

fn arm(name: &'static str, exp: &Experiment) -> Result<Arm> {
    // Plain estimators: extraction is 0/1, and a model-mean adjustment of
    // it would mix the measures this study compares.
    let reports = [
        Metric::Accuracy,
        Metric::Extraction,
        Metric::ExtractionLength,
    ]
    .map(|m| report(exp, &ReportConfig::plain(m)));
    let [acc, ext, len] = reports;
    let (acc, ext, len) = (acc?, ext?, len?);
    // Means over documents with the design's error: the same models score
    // them all (extraction's with Clopper-Pearson on the effective size).
    let kind = |canary: bool| -> Result<KindSummary> {
        let docs = kind_docs(&acc, canary);
        Ok(KindSummary {
            accuracy: MeanCi::over(&acc, exp, &docs)?,
            extraction: MeanCi::over(&ext, exp, &docs)?,
            extraction_length: MeanCi::over(&len, exp, &docs)?,
            extractable_in: MeanCi::side_over(&ext, exp, &docs, true)?,
            extractable_out: MeanCi::side_over(&ext, exp, &docs, false)?,
            accuracy_out: MeanCi::side_over(&acc, exp, &docs, false)?,
        })
    };
    let points = acc
        .docs
        .iter()
        .zip(&ext.docs)
        .filter_map(|(a, x)| Some((is_canary(&a.id), a.estimate.mem?, x.estimate.mem?)))
        .collect();
    Ok(Arm {
        name,
        natural: kind(false)?,
        canaries: kind(true)?,
        agreement: Agreement::of(&acc, &ext, cfmem::analysis::DEFAULT_FDR),
        points,
        n_too_short: ext.n_not_scored(),
    })
}

/// Questions: does starting from a pretrained model change how much of the
/// fine-tuning data is memorized (natural text and planted canaries)? And
/// which documents are memorized yet not extractable, or the reverse?
///
/// A base model (the tiny preset) is pretrained on the Jargon File; two
/// experiments on one fine-tuning corpus (Devil's Dictionary entries and
/// random canaries) share their design, seed and recipe, and differ only in
/// the initial weights: random, or the base model's. Every model takes the
/// 32 → 32 extraction test on every document.
///
/// # Errors
/// Training or I/O errors.
pub fn finetune(
    dir: &Path,
    scale: &Scale,
    base: &BaseScale,
    observer: &dyn Observer,
) -> Result<FinetuneStudy> {
    std::fs::create_dir_all(dir).map_err(|e| cfmem::sched::Error::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let model = ModelConfig::tiny();
    let base_path = dir.join("base.safetensors");
    let pretrained_base = base_model(&base_path, base, &model)?;
    let corpus = fine_tuning_corpus(scale.n_natural, scale.n_planted)?;
    let open = |name: &str, init: bool| -> Result<Experiment> {
        let mut b = Experiment::builder(dir.join(name))
            .corpus(corpus.clone())
            .model(model.clone())
            .extraction(Some(ExtractionConfig::default()));
        if init {
            b = b.init(&base_path);
        }
        train(b, scale, observer)
    };
    let (s, p) = (open("scratch", false)?, open("pretrained", true)?);
    let accuracy = |e: &Experiment| report(e, &ReportConfig::plain(Metric::Accuracy));
    let (acc_s, acc_p) = (accuracy(&s)?, accuracy(&p)?);
    // The arms share design and seed: model k of one pairs with model k
    // of the other.
    let gain =
        |canary: bool| MeanCi::paired_over((&acc_s, &s), (&acc_p, &p), &kind_docs(&acc_s, canary));
    Ok(FinetuneStudy {
        base: pretrained_base,
        scratch: arm("from scratch", &s)?,
        pretrained: arm("pretrained", &p)?,
        natural_gain: gain(false)?,
        canary_gain: gain(true)?,
    })
}
