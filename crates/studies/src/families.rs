//! Memorization across model families and fine-tuning methods: the same
//! fine-tuning corpus, design, seeds and recipe, from a base of each family
//! (GPT-2, GPT-NeoX as Pythia sets it up, Llama-style) pretrained here on
//! the Jargon File, fine-tuned in full and with LoRA.

use std::path::Path;
use std::time::Instant;

use cfmem::analysis::{report, MeanCi, Metric, ReportConfig};
use cfmem::engine::{Arch, Corpus, Lora, ModelConfig, TrainConfig};
use cfmem::sched::{run, Experiment, Observer, OnChange, Pretrained, RunConfig};

use crate::finetune::base_model;
use crate::{of_kind, BaseScale, Result, Scale};

/// The families compared, by the names `--arch` takes.
pub const FAMILIES: [&str; 3] = ["gpt2", "gpt_neox", "llama"];

/// One family fine-tuned one way.
#[derive(Debug, Clone)]
pub struct MethodArm {
    /// `gpt2`, `gpt_neox` or `llama`.
    pub family: &'static str,
    /// `full` or `LoRA r=R`.
    pub method: String,
    /// Per-token accuracy memorization of the natural text, mean over
    /// documents [95 % CI, the design's error].
    pub natural: MeanCi,
    /// The same for the random canaries.
    pub canaries: MeanCi,
    /// The same for the controls planted beside them (`None` without).
    pub controls: Option<MeanCi>,
    /// Per-token accuracy on the natural text of the models that did not
    /// train on it (what the base and the rest of the corpus give).
    pub natural_out: MeanCi,
    /// Parameters each model trains.
    pub trained_params: usize,
    /// Wall seconds per model trained in this call (`None` when every
    /// model was already trained).
    pub seconds_per_model: Option<f64>,
}

/// The study's results.
#[derive(Debug, Clone)]
pub struct FamiliesStudy {
    /// Each family's base model: its pretraining.
    pub bases: Vec<(&'static str, Pretrained)>,
    /// Per family, full fine-tuning then LoRA.
    pub arms: Vec<MethodArm>,
    /// Per family, LoRA − full memorization (natural text, random
    /// canaries), the
    /// models paired by index across the two experiments.
    pub lora_minus_full: Vec<(&'static str, MeanCi, MeanCi)>,
}

/// The tiny preset in family `name` (its widths, the family's own
/// settings: Pythia's quarter-head rotary and parallel residual, Llama's
/// RMSNorm, SwiGLU and two key/value heads).
pub fn family_model(name: &str) -> Option<ModelConfig> {
    Some(ModelConfig {
        arch: Arch::by_name(name)?,
        ..ModelConfig::tiny()
    })
}

/// Questions: how much of its fine-tuning data does each family memorize
/// from a base pretrained the same way, and how much less (or more) when
/// only LoRA adapters train? At what cost per model?
///
/// For each family a base (the tiny preset's widths) is pretrained on the
/// Jargon File; two experiments on `corpus` (natural text with planted
/// random canaries, and controls if it has them: the quickstart corpus in
/// the example) share design, seed and recipe and differ only in the
/// method: every parameter, or LoRA adapters of rank `lora.rank` on every
/// attention and MLP projection. The scale gives the models and epochs.
///
/// # Errors
/// Training or I/O errors.
pub fn model_families(
    dir: &Path,
    corpus: &Corpus,
    scale: &Scale,
    base: &BaseScale,
    lora: &Lora,
    observer: &dyn Observer,
) -> Result<FamiliesStudy> {
    std::fs::create_dir_all(dir).map_err(|e| cfmem::sched::Error::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let (mut bases, mut arms, mut diffs) = (Vec::new(), Vec::new(), Vec::new());
    for family in FAMILIES {
        let model = family_model(family)
            .ok_or_else(|| crate::Error::Missing(format!("the family {family}")))?;
        let base_path = dir.join(format!("{family}-base.safetensors"));
        bases.push((family, base_model(&base_path, base, &model)?));
        let mut methods = Vec::new();
        for adapters in [None, Some(lora.clone())] {
            let method = adapters
                .as_ref()
                .map_or("full".to_string(), |l| format!("LoRA r={}", l.rank));
            let name = format!(
                "{family}-{}",
                if adapters.is_some() { "lora" } else { "full" }
            );
            let exp = Experiment::builder(dir.join(name))
                .corpus(corpus.clone())
                .model(model.clone())
                .init(&base_path)
                .train(TrainConfig {
                    epochs: scale.epochs,
                    lora: adapters.clone(),
                    ..TrainConfig::default()
                })
                .open(OnChange::Replace)?;
            let start = Instant::now();
            let summary = run(
                &exp,
                &RunConfig {
                    n_models: scale.n_models,
                    ..RunConfig::default()
                },
                observer,
            )?;
            let seconds = start.elapsed().as_secs_f64();
            let acc = report(&exp, &ReportConfig::plain(Metric::Accuracy))?;
            let kind = |k| MeanCi::over(&acc, &exp, &of_kind(&acc, k));
            let controls = of_kind(&acc, "controls");
            arms.push(MethodArm {
                family,
                method,
                natural: kind("documents")?,
                canaries: kind("random canaries")?,
                controls: (!controls.is_empty())
                    .then(|| MeanCi::over(&acc, &exp, &controls))
                    .transpose()?,
                natural_out: MeanCi::side_over(&acc, &exp, &of_kind(&acc, "documents"), false)?,
                trained_params: adapters
                    .as_ref()
                    .map_or(model.n_params(), |l| l.n_params(&model)),
                seconds_per_model: (!summary.trained.is_empty())
                    .then(|| seconds / summary.trained.len() as f64),
            });
            methods.push((acc, exp));
        }
        let [(acc_f, full), (acc_l, lo)] = <[_; 2]>::try_from(methods)
            .map_err(|_| crate::Error::Missing("the two methods".into()))?;
        let diff = |k| MeanCi::paired_over((&acc_f, &full), (&acc_l, &lo), &of_kind(&acc_f, k));
        diffs.push((family, diff("documents")?, diff("random canaries")?));
    }
    Ok(FamiliesStudy {
        bases,
        arms,
        lora_minus_full: diffs,
    })
}
