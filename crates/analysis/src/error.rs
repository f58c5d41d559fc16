use std::path::PathBuf;

use thiserror::Error;

/// Errors of the analysis crate. Each names the file, line, model, document
/// or setting at fault.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A design parameter outside its range.
    #[error("invalid design: {0}")]
    InvalidDesign(DesignProblem),
    /// A probability outside the open interval (0, 1).
    #[error("invalid inclusion probability {0}: it must lie strictly between 0 and 1")]
    InvalidProbability(f64),
    /// A row whose length does not match the number of units or documents.
    #[error("model {model}: row has {got} entries, expected {expected}")]
    RowLength {
        /// The model index of the row.
        model: usize,
        /// Entries found.
        got: usize,
        /// Entries expected.
        expected: usize,
    },
    /// A copy count that is not one of the repetition design's levels.
    #[error("document {document}: {copies} copies is not a level of the design")]
    NotALevel {
        /// The document.
        document: usize,
        /// Its copies in the row.
        copies: u32,
    },
    /// Rows of a block design out of model order.
    #[error("model {model} (block {block}) came after block {after}: rows of a block design must come in model order")]
    BlockOrder {
        /// The model index of the row.
        model: usize,
        /// Its block.
        block: usize,
        /// The block seen before it.
        after: usize,
    },
    /// Influence on the training documents with query rows of another length.
    #[error("influence on training documents: {n_queries} queries for {n_units} units (they must be the same documents)")]
    QueriesAreNotUnits {
        /// Query scores per row.
        n_queries: usize,
        /// Units.
        n_units: usize,
    },
    /// An imported file that cannot be read.
    #[error("import: {}{}: {problem}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Import {
        /// The file.
        path: PathBuf,
        /// 1-based line, where known.
        line: Option<usize>,
        /// What is wrong.
        problem: ImportProblem,
    },
    /// An imported membership and score matrix of different shapes.
    #[error("import: {} is {} × {} but {} is {} × {} (models × documents)", membership.display(), m_shape.0, m_shape.1, scores.display(), s_shape.0, s_shape.1)]
    ImportShapes {
        /// The membership file.
        membership: PathBuf,
        /// Its models × documents.
        m_shape: (usize, usize),
        /// The score file.
        scores: PathBuf,
        /// Its models × documents.
        s_shape: (usize, usize),
    },
    /// A score table whose parts do not fit one another.
    #[error(
        "import: {n_scores} scores and {n_ids} ids for {n_models} models × {n_docs} documents"
    )]
    TableShape {
        /// Scores given.
        n_scores: usize,
        /// Ids given.
        n_ids: usize,
        /// Models of the membership.
        n_models: usize,
        /// Documents of the membership.
        n_docs: usize,
    },
    /// A confidence level outside (0, 1).
    #[error("invalid confidence level {0}: it must lie strictly between 0 and 1")]
    InvalidLevel(f64),
    /// Influence on held-out queries from rows without a query corpus.
    #[error("these rows have no held-out query corpus")]
    NoQueries,
    /// The spectrum asked of rows whose design has none.
    #[error(
        "these rows were not drawn by a spectrum design (cfmem run --spectrum LEVELS --budget F)"
    )]
    NoSpectrum,
    /// The extraction metrics asked of held-out queries.
    #[error("extraction is scored on the training documents only, not on queries")]
    ExtractionOnQueries,
    /// Two sources compared that share no document.
    #[error("the two experiments have no document id in common")]
    NoCommonDocument,
    /// A value that does not parse (metrics, adjustments, variances).
    #[error("unknown {what} {input:?} (expected {expected})")]
    Parse {
        /// What was being read.
        what: &'static str,
        /// The text given.
        input: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A range of models that would split a block.
    #[error("a range of models must start at a multiple of the block size {block} (got {start})")]
    RangeStart {
        /// The range's first model.
        start: usize,
        /// The design's block size.
        block: usize,
    },
    /// Shrinkage asked of estimates it does not apply to.
    #[error("cannot shrink these estimates: {why}")]
    NotShrinkable {
        /// Why not.
        why: &'static str,
    },
    /// The source of rows failed (e.g. an experiment directory could not be read).
    #[error(transparent)]
    Source(Box<dyn std::error::Error + Send + Sync>),
}

/// What is wrong with a design.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum DesignProblem {
    /// A repetition design needs two levels, with a probability each.
    #[error("repetition needs at least two levels with one probability each (got {levels} levels, {probabilities} probabilities)")]
    RepetitionLevels {
        /// Copy levels given.
        levels: usize,
        /// Probabilities given.
        probabilities: usize,
    },
    /// No 0-copies level.
    #[error("repetition needs a 0-copies level (the baseline)")]
    NoBaseline,
    /// Probabilities that do not sum to 1.
    #[error("repetition probabilities sum to {0}, not 1")]
    ProbabilitySum(f64),
    /// The same copy count twice.
    #[error("repetition copy counts must be distinct")]
    RepeatedLevel,
    /// More copies than a record stores.
    #[error("{copies} copies per epoch: at most {max} (records store copies in 16 bits)")]
    TooManyCopies {
        /// The level.
        copies: u32,
        /// The most a record stores.
        max: u32,
    },
    /// A block of fewer than 2 models.
    #[error("blocks need at least 2 models per block, got b = {0}")]
    BlockSize(usize),
    /// Near-duplicate clustering settings out of range.
    #[error("near-duplicates need ngram ≥ 1 and 0 < threshold ≤ 1 (got {ngram}, {threshold})")]
    NearDuplicates {
        /// Characters per shingle.
        ngram: usize,
        /// Jaccard threshold.
        threshold: f64,
    },
    /// A topic count out of range.
    #[error("topics need 1 ≤ k ≤ the number of documents (got k = {k} for {docs} documents)")]
    Topics {
        /// Topics asked for.
        k: usize,
        /// Documents in the corpus.
        docs: usize,
    },
    /// A budget outside (0, 1).
    #[error("the budget is the fraction of the corpus each model leaves out: it must lie strictly between 0 and 1 (got {0})")]
    Budget(f64),
    /// A budget that removes no document, or every document.
    #[error("a budget of {fraction} removes {removed} of the {docs} documents from each model: every model must leave out at least one document and keep one")]
    BudgetSize {
        /// The fraction asked for.
        fraction: f64,
        /// Documents it removes.
        removed: usize,
        /// Documents in the corpus.
        docs: usize,
    },
    /// A unit of a spectrum level larger than what one model may remove.
    #[error("level {level}: unit {unit} has {docs} documents, more than the {budget} (budget {fraction}) that each model leaves out, so no model could remove it; raise --budget or make the level's units smaller (e.g. more topics)")]
    UnitOverBudget {
        /// The level's name.
        level: String,
        /// The unit's name.
        unit: String,
        /// Its documents.
        docs: usize,
        /// Documents each model removes.
        budget: usize,
        /// The budget as a fraction.
        fraction: f64,
    },
    /// A spectrum under a design that does not hold the removed mass fixed.
    #[error("a spectrum is drawn by a budget design (--budget): each model leaves out the same number of documents")]
    SpectrumDesign,
    /// A spectrum level whose units do not partition the documents.
    #[error("level {level}: its units cover {docs} documents and must partition the spectrum's {expected}, each in one unit, no unit empty")]
    SpectrumUnits {
        /// The level's name.
        level: String,
        /// Documents its units cover.
        docs: usize,
        /// Documents of the spectrum.
        expected: usize,
    },
    /// A spectrum without levels beyond the documents, or too many.
    #[error("a spectrum needs 1 to {max} levels of removal above the documents (got {got})")]
    SpectrumLevels {
        /// Levels given (above the documents).
        got: usize,
        /// The most allowed.
        max: usize,
    },
}

/// What is wrong with an imported file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImportProblem {
    /// It cannot be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not UTF-8 text.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A row of another length than the first.
    #[error("{found} values, expected {expected}")]
    RowLength {
        /// Values on the line.
        found: usize,
        /// Values on the first row.
        expected: usize,
    },
    /// A value that is not a number.
    #[error("not a number: {0}")]
    NotANumber(std::num::ParseFloatError),
    /// No data row.
    #[error("no rows")]
    NoRows,
    /// A membership entry that is not a copy count.
    #[error("model {model}, document {document}: copies must be whole numbers ≥ 0, got {value}")]
    Copies {
        /// Its row.
        model: usize,
        /// Its column.
        document: usize,
        /// The value.
        value: f64,
    },
    /// Not one id per document.
    #[error("{found} ids for {expected} documents")]
    Ids {
        /// Ids in the file.
        found: usize,
        /// Documents in the matrices.
        expected: usize,
    },
    /// A `.npy` file cannot be read.
    #[error("{0}")]
    Npy(NpyProblem),
}

/// What is wrong with a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NpyProblem {
    /// No NumPy magic.
    #[error("not a .npy file")]
    NotNpy,
    /// A format version other than 1–3.
    #[error("unsupported .npy version")]
    Version,
    /// Cut inside its header.
    #[error("truncated header")]
    TruncatedHeader,
    /// A header that is not text.
    #[error("header is not text")]
    HeaderNotText,
    /// No `descr` in the header.
    #[error("no descr")]
    NoDescr,
    /// Fortran order.
    #[error("Fortran-ordered arrays are not supported (save with np.ascontiguousarray)")]
    FortranOrder,
    /// No readable `shape` in the header.
    #[error("no shape")]
    NoShape,
    /// Not two dimensions.
    #[error("expected a 2-D array (models × documents), got shape ({0})")]
    NotTwoDimensional(String),
    /// A dtype cfmem does not read.
    #[error("unsupported dtype {0}")]
    Dtype(String),
    /// Fewer bytes than the shape needs.
    #[error("truncated data")]
    TruncatedData,
}

/// Result with the analysis [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
