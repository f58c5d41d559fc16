//! An experiment's settings in words: what its reports show beside the
//! analyses (the HTML report's settings table).

use cfmem_analysis::DesignKind;

use crate::experiment::Experiment;
use crate::units::UnitSpec;

impl Experiment {
    /// The experiment's settings as `(name, value)` rows: directory,
    /// corpus, tokenizer, model, training recipe, design, seed and what is
    /// kept beside the records.
    pub fn describe(&self) -> Vec<(String, String)> {
        let m = self.manifest();
        let mut s: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: String| s.push((k.to_string(), v));
        put("directory", self.dir().display().to_string());
        put(
            "corpus",
            format!(
                "{} ({} documents, fingerprint {})",
                m.corpus
                    .path
                    .as_ref()
                    .map_or("given in memory".into(), |p| p.display().to_string()),
                m.corpus.n_docs,
                &m.corpus.fingerprint[..m.corpus.fingerprint.len().min(12)]
            ),
        );
        if let Some(q) = &m.queries {
            put("queries", format!("{} documents", q.n_docs));
        }
        put("tokenizer", m.tokenizer.name().to_string());
        let md = &m.model;
        put(
            "model",
            format!(
                "d {} × {} layers, {} heads, d_ff {}, context {}, vocabulary {}",
                md.d_model, md.n_layer, md.n_head, md.d_ff, md.ctx, md.vocab_size
            ),
        );
        let t = &m.train;
        put(
            "training",
            format!(
                "{} epochs, batch {}, AdamW lr {} (warm-up {} of the steps, cosine to {} of it), weight decay {}, clipping {}, {} products",
                t.epochs, t.batch_size, t.lr, t.warmup_frac, t.min_lr_frac, t.weight_decay, t.grad_clip, t.precision
            ),
        );
        put(
            "design",
            match &m.design {
                DesignKind::Blocks { b } => {
                    format!("blocks of {b} models; each document in exactly one model per block")
                }
                DesignKind::Bernoulli { p } => {
                    format!("each document in each model with probability {p}")
                }
                DesignKind::Repetition { copies, probs } => {
                    format!("repetition: copies per epoch {copies:?} with probabilities {probs:?}")
                }
                DesignKind::Budget { fraction } => format!(
                    "budget: each model leaves out {fraction} of the documents (the same number in every model)"
                ),
                other => format!("{other:?}"),
            },
        );
        if let Some(s) = &m.spectrum {
            put("spectrum", s.to_string());
        }
        if m.units != UnitSpec::Documents {
            put("units of removal", m.units.to_string());
        }
        put("seed", format!("{} (seeding {})", m.seed, m.seeding));
        if m.per_token {
            put("per-token results", "kept (runs/model-NNNNNN.tok)".into());
        }
        if let Some(e) = &m.extraction {
            put(
                "extraction test",
                format!(
                    "greedy continuation of {} prompt tokens, {} tokens scored (runs/model-NNNNNN.ext)",
                    e.prefix, e.suffix
                ),
            );
        }
        s
    }
}
