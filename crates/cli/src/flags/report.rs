//! `cfmem report` flags.

use std::path::PathBuf;

use cfmem_analysis::{
    Adjustment, AnalysisConfig, InfluenceConfig, InfluenceOn, MembershipConfig, Metric,
    ReportConfig, Variance,
};
use clap::Args;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Experiment directory (omit it with --import-membership/--import-scores).
    pub dir: Option<PathBuf>,
    /// Analyse results produced elsewhere: membership matrix (models × documents, copies; .csv or .npy).
    #[arg(long, requires = "import_scores")]
    pub import_membership: Option<PathBuf>,
    /// Analyse results produced elsewhere: score matrix (models × documents, of --metric; .csv or .npy).
    #[arg(long, requires = "import_membership")]
    pub import_scores: Option<PathBuf>,
    /// Document ids for imported matrices, one per line (else a CSV header, else 0..n).
    #[arg(long)]
    pub import_ids: Option<PathBuf>,
    /// Imported matrices: models per block of the design that made the membership (model i in block i / B; 2 for complementary halves), so that errors are clustered by block; 1: models drawn independently (Welch's error). By default detected from the membership: the smallest B whose blocks of consecutive models hold every document exactly once, else 1.
    #[arg(long, requires = "import_scores")]
    pub import_blocks: Option<usize>,
    /// accuracy (per-token), loss (mean per-token nats) or logprob (sequence log-probability).
    #[arg(long, default_value_t = ReportConfig::default().metric)]
    pub metric: Metric,
    /// Adjust each model's scores for its overall performance before estimating (estimates and convergence): model-mean (a control variate: subtract the model's mean residual over its out-of-subset documents) or none.
    #[arg(long, default_value_t = ReportConfig::default().adjustment)]
    adjust: Adjustment,
    /// Write the estimates (and any analysis asked for) as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Split-half convergence: Spearman between two disjoint halves of the models, as models are added.
    #[arg(long)]
    convergence: bool,
    /// LiRA-style membership scores: per-document Gaussian fits, ROC AUC and TPR at low FPR.
    #[arg(long)]
    membership: bool,
    /// Membership: per-example or global variance [default: global while a side has fewer than 64 models, per-example from 64].
    #[arg(long)]
    variance: Option<Variance>,
    /// Counterfactual influence: the most influential training documents per query.
    #[arg(long)]
    pub influence: bool,
    /// Influence on the experiment's query corpus (from `run --queries`) instead of on the training documents.
    #[arg(long)]
    queries: bool,
    /// Entries per influence list.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Influence: select the lists on every model. By default, with 4 blocks or more on each side, the lists are selected on the models of even blocks and every winner is re-estimated on the odd ones, whose interval the selection does not bias (at the cost of selecting on half the models).
    #[arg(long, requires = "influence")]
    select_on_all: bool,
    /// Memorization per unit of removal (groups, clusters), with the whole unit included vs removed.
    #[arg(long)]
    pub groups: bool,
    /// Write plots (PNG and SVG) into this directory: the memorization histogram, mem vs in-mean,
    /// and the convergence, repetition and ROC curves of the analyses asked for.
    #[arg(long)]
    pub plots: Option<PathBuf>,
    /// Memorization as a function of copies per epoch (repetition designs).
    #[arg(long)]
    pub repetition: bool,
    /// Empirical-Bayes shrinkage: beside each raw estimate, its posterior mean, posterior interval and local false sign rate (the posterior probability that it is not memorized), under a prior fitted over all documents (ash's: a point mass at 0 and uniforms) with moderated errors. Not for the 0/1 extraction metric. Off by default: on the quickstart corpus and WordNet glosses it did not rank better than the raw estimates.
    #[arg(long)]
    shrink: bool,
    /// Audit cheap single-model memorization proxies (loss, zlib ratio, reference loss, LiRA offline, RMIA, extraction length; Min-K % Prob and Min-K %++ with --per-token experiments) against the counterfactual estimates: each model scores the documents it trained on, and each proxy's Spearman with memorization, precision and recall of its top 1/5/10 % and AUC for the memorized documents are averaged over the models. With --plots, a chart of each proxy against memorization (proxies.png); with --csv, the audit as CSV.
    #[arg(long)]
    proxies: bool,
    /// The memorization-to-generalization spectrum of an experiment run with --spectrum: per document and level, memorization with the document in against its whole unit at that level out (the next larger unit kept), with its interval and the documents and tokens that removal takes out; per level, the mean over the documents (and per kind) and its distribution. With --plots and --html, the charts of memorization against removed mass (spectrum, spectrum_documents); with --csv, FILE.spectrum.csv.
    #[arg(long)]
    pub spectrum: bool,
    /// Write every document's estimate to this CSV file (and, with --proxies, the proxy audit to FILE.proxies.csv beside it).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write every document's estimate to this Parquet file (the CSV's columns plus group and kind; for pandas, pyarrow, polars).
    #[arg(long)]
    pub parquet: Option<PathBuf>,
    /// Write one self-contained HTML report to this file (settings, reliability, charts, a sortable table of all documents, a panel per document with its text and its models' scores; turns on --convergence).
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// How many of the most memorized documents to print.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
}

impl ReportArgs {
    /// The analyses the flags ask for.
    pub fn analyses(&self) -> AnalysisConfig {
        AnalysisConfig {
            report: ReportConfig {
                metric: self.metric,
                adjustment: self.adjust,
                ..ReportConfig::default()
            },
            convergence: self.convergence || self.html.is_some(),
            membership: self.membership.then_some(MembershipConfig {
                observation: None,
                variance: self.variance,
                ..MembershipConfig::default()
            }),
            influence: self.influence.then(|| InfluenceConfig {
                k: self.k,
                on: if self.queries {
                    InfluenceOn::Queries
                } else {
                    InfluenceOn::Training
                },
                confirm: !self.select_on_all,
                ..InfluenceConfig::default()
            }),
            groups: self.groups,
            repetition: self.repetition,
            shrink: self.shrink,
            proxies: self.proxies,
            spectrum: self.spectrum,
        }
    }
}
