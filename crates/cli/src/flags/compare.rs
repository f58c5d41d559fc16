//! `cfmem compare` flags.

use std::path::PathBuf;

use cfmem_analysis::{Adjustment, CompareConfig, Metric, ReportConfig};
use clap::Args;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The first experiment directory.
    pub a: PathBuf,
    /// The second experiment directory (same corpus, another seed).
    pub b: PathBuf,
    /// accuracy (per-token), loss (mean per-token nats) or logprob (sequence log-probability).
    #[arg(long, default_value_t = ReportConfig::default().metric)]
    metric: Metric,
    /// Model-effect adjustment of both sides' estimates: model-mean or none.
    #[arg(long, default_value_t = ReportConfig::default().adjustment)]
    adjust: Adjustment,
    /// Sizes of the top lists whose overlap is reported.
    #[arg(long, value_delimiter = ',', default_value = "10,50")]
    top_k: Vec<usize>,
    /// Write everything (and every matched document's two estimates) as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the scatter plot of the two experiments' estimates (PNG and SVG) into this directory.
    #[arg(long)]
    pub plots: Option<PathBuf>,
}

impl CompareArgs {
    /// The comparison the flags ask for.
    pub fn config(&self) -> CompareConfig {
        CompareConfig {
            report: ReportConfig {
                metric: self.metric,
                adjustment: self.adjust,
                ..ReportConfig::default()
            },
            top_k: self.top_k.clone(),
            ..CompareConfig::default()
        }
    }
}
