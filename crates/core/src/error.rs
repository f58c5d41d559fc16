use std::path::PathBuf;

use thiserror::Error;

/// Errors of the core crate. Messages name the file, line, document id or
/// model at fault.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSONL line that is not JSON.
    #[error("{}:{line}: malformed JSON: {source}", path.display())]
    Json {
        /// The corpus file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// A JSONL line that is JSON but not an object.
    #[error("{}:{line}: malformed JSON: expected a JSON object", path.display())]
    NotAnObject {
        /// The corpus file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A JSONL object or Parquet row without a required field, or with a
    /// field of the wrong type.
    #[error("{}:{line}: field {field:?} {problem}", path.display())]
    Field {
        /// The corpus file.
        path: PathBuf,
        /// 1-based line (JSONL) or row (Parquet) number.
        line: usize,
        /// The field name.
        field: String,
        /// What is wrong with it.
        problem: FieldProblem,
    },
    /// A Parquet file that cannot be read.
    #[error("{}: {source}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Bytes that are not UTF-8.
    #[error("{}{}: invalid UTF-8", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line number, where known.
        line: Option<usize>,
    },
    /// A document whose text is empty or only whitespace.
    #[error(
        "{location}: document {id:?} is empty (skip empty documents with the skip-empty option)"
    )]
    EmptyDocument {
        /// Where the document is.
        location: Location,
        /// The document id.
        id: String,
    },
    /// Two documents with the same id.
    #[error("{second}: duplicate document id {id:?} (first seen at {first})")]
    DuplicateId {
        /// The id.
        id: String,
        /// Where it was first seen.
        first: Location,
        /// Where it was seen again.
        second: Location,
    },
    /// A corpus with no document (`None`: one given in memory).
    #[error("{}: the corpus has no documents", .0.as_ref().map_or("in-memory corpus".into(), |p| p.display().to_string()))]
    EmptyCorpus(Option<PathBuf>),
    /// A setting out of its range.
    #[error("invalid configuration: {setting} {value}: {expected}")]
    InvalidSetting {
        /// The setting.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A value that does not parse (devices, tokenizers, extraction lengths).
    #[error("{what} {input:?}: expected {expected}")]
    Parse {
        /// What was being read.
        what: &'static str,
        /// The text given.
        input: String,
        /// What was expected.
        expected: &'static str,
    },
    /// An ensemble of no model.
    #[error("invalid configuration: an ensemble needs at least one model")]
    EmptyEnsemble,
    /// Model `k` of an ensemble of `n`, for `k ≥ n`.
    #[error("model {k} of an ensemble of {n}")]
    NoSuchMember {
        /// The index asked for.
        k: usize,
        /// The ensemble's size.
        n: usize,
    },
    /// Weights that do not fit the model's shape.
    #[error("the weights do not fit a model of d_model {}, {} layers, d_ff {}, context {}, vocabulary {}: {}", model.d_model, model.n_layer, model.d_ff, model.ctx, model.vocab_size, list_problems(problems))]
    WeightsMismatch {
        /// The model's shape.
        model: Box<crate::ModelConfig>,
        /// Every tensor that is missing or misshapen.
        problems: Vec<WeightProblem>,
    },
    /// Token ids of a shape the ensemble cannot take.
    #[error("input [{}, {}, {}] does not fit an ensemble of {k} with ctx {ctx}", shape[0], shape[1], shape[2])]
    InputShape {
        /// `[K, B, T]` given.
        shape: [usize; 3],
        /// The ensemble's size.
        k: usize,
        /// The model's context.
        ctx: usize,
    },
    /// A tokenized corpus built for another model.
    #[error("corpus windows (ctx {corpus_ctx}, vocab {corpus_vocab}) do not fit the model (ctx {model_ctx}, vocab {model_vocab})")]
    CorpusModel {
        /// The windows' context.
        corpus_ctx: usize,
        /// The corpus's vocabulary.
        corpus_vocab: usize,
        /// The model's context.
        model_ctx: usize,
        /// The model's vocabulary.
        model_vocab: usize,
    },
    /// A token table that is not well formed.
    #[error("token table: {0}")]
    TokenTable(&'static str),
    /// Prompts for greedy decoding that are empty or of several lengths.
    #[error("greedy: prompts must be non-empty and of one length")]
    Prompts,
    /// Prompts and decoding steps that do not fit the context.
    #[error("greedy: a prompt of {len} tokens and {steps} steps do not fit the context of {ctx}")]
    PromptTooLong {
        /// Prompt tokens.
        len: usize,
        /// Steps asked for.
        steps: usize,
        /// The model's context.
        ctx: usize,
    },
    /// Extraction lengths out of range.
    #[error("extraction {0}: the prompt and the continuation need at least one token, and the continuation at most 254")]
    ExtractionLengths(crate::ExtractionConfig),
    /// Extraction lengths beyond the model's context.
    #[error("extraction {config}: prompt and continuation ({} tokens) do not fit the model's context of {ctx}; shorten them or widen the context", config.prefix + config.suffix)]
    ExtractionContext {
        /// The lengths.
        config: crate::ExtractionConfig,
        /// The model's context.
        ctx: usize,
    },
    /// Per-token results that do not cover the corpus.
    #[error("extraction: {found} per-token results for a corpus of {expected} targets")]
    ExtractionScores {
        /// Results given.
        found: usize,
        /// Targets of the corpus.
        expected: usize,
    },
    /// A checkpoint that cannot be used.
    #[error("{}: {source}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: Box<Error>,
    },
    /// Bytes that are not safetensors.
    #[error("not a safetensors file: {0}")]
    NotSafetensors(#[source] candle_core::Error),
    /// A GPT-2-layout checkpoint cfmem cannot take.
    #[error("{0}")]
    Gpt2(Gpt2Problem),
    /// A Hugging Face checkpoint of another family cfmem cannot take.
    #[error("{0}")]
    Hf(HfProblem),
    /// A tokenizer that cannot be read, trained or written.
    #[error("tokenizer{}: {source}", file.as_ref().map_or(String::new(), |p| format!(" {}", p.display())))]
    Tokenizer {
        /// The `tokenizer.json` read, when one was.
        file: Option<PathBuf>,
        /// What the `tokenizers` crate said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A BPE vocabulary too small for the bytes.
    #[error("tokenizer bpe:{0}: the vocabulary must hold the 256 bytes and at least one merge")]
    BpeVocabulary(usize),
    /// An experiment's tokenizer whose `tokenizer.json` is missing.
    #[error("tokenizer: the tokenizer's tokenizer.json is missing")]
    TokenizerMissing,
    /// A `tokenizer.json` that is not the one the manifest names.
    #[error("tokenizer: tokenizer.json has fingerprint {found}, the manifest {expected}")]
    TokenizerChanged {
        /// Its blake3.
        found: String,
        /// The manifest's.
        expected: String,
    },
    /// CUDA asked for and not available.
    #[error("CUDA device 0 is not available ({0}); build with the cuda feature")]
    Cuda(#[source] candle_core::Error),
    /// A subset that names a document outside the corpus.
    #[error("model {model}: subset names document {doc}, but the corpus has {n_docs}")]
    SubsetIndex {
        /// The model index.
        model: usize,
        /// The bad document index.
        doc: usize,
        /// Documents in the corpus.
        n_docs: usize,
    },
    /// An error from candle while training or evaluating.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// A token id outside the model's vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab_size}")]
    TokenOutOfVocabulary {
        /// The id.
        id: u32,
        /// The model's vocabulary size.
        vocab_size: usize,
    },
    /// A model the native CPU step cannot lay out (a parameter it does not
    /// know, or buffers of another shape): a bug, reported rather than
    /// panicking.
    #[error("native step: {0}")]
    NativeLayout(String),
    /// A matrix product given operands that do not fit.
    #[error("matrix product: {0}")]
    Kernel(#[from] cfmem_kernels::Error),
    /// A precision the model cannot run: bf16 products are the native CPU
    /// step's, which runs GPT-2 models with f32 parameters on the CPU.
    #[error("{precision} products run on the native CPU step, for GPT-2 models with f32 parameters on the CPU; this is a {family} model with {dtype:?} parameters on {device}")]
    Precision {
        /// The precision asked for.
        precision: crate::Precision,
        /// The model's family (`gpt2`, `gpt_neox`, `llama`).
        family: &'static str,
        /// The parameters' type.
        dtype: candle_core::DType,
        /// The device.
        device: String,
    },
    /// A LoRA target the model's family does not have.
    #[error("LoRA target {target:?}: a {family} model has no such projection; its targets are {}", .known.join(", "))]
    LoraTarget {
        /// The target asked for.
        target: String,
        /// The model's family.
        family: &'static str,
        /// The targets it has.
        known: Vec<String>,
    },
    /// LoRA asked for where it cannot run.
    #[error("LoRA: {0}")]
    Lora(&'static str),
    /// A non-finite training loss.
    #[error(
        "model {model}: training diverged (loss {loss}) at step {step}; lower the learning rate"
    )]
    Diverged {
        /// The model index.
        model: usize,
        /// The step.
        step: usize,
        /// The loss seen.
        loss: f32,
    },
}

/// Result with the core [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Where a document is: a line of a file, a row of a Parquet file, a file
/// of a directory, or a position in a corpus given in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// 1-based line of a JSONL or text file.
    Line(PathBuf, usize),
    /// 1-based row of a Parquet file.
    Row(PathBuf, usize),
    /// A file of a directory corpus.
    File(PathBuf),
    /// Position in a corpus given in memory.
    InMemory(usize),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Line(p, l) => write!(f, "{}:{l}", p.display()),
            Self::Row(p, r) => write!(f, "{}:row {r}", p.display()),
            Self::File(p) => write!(f, "{}", p.display()),
            Self::InMemory(i) => write!(f, "document #{i}"),
        }
    }
}

/// What is wrong with a field of a corpus record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FieldProblem {
    /// Not there.
    #[error("is missing")]
    Missing,
    /// No such Parquet column.
    #[error("is missing (no such column)")]
    NoColumn,
    /// Not a string.
    #[error("is not a string")]
    NotAString,
    /// Neither a string nor a number.
    #[error("is not a string or number")]
    NotAStringOrNumber,
    /// A Parquet column that is not a string column.
    #[error("is not a string column")]
    NotAStringColumn,
    /// A Parquet column that is neither strings nor integers.
    #[error("is not a string or integer column")]
    NotAStringOrIntegerColumn,
    /// A null text.
    #[error("is null")]
    Null,
}

/// One tensor of a checkpoint that does not fit the model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WeightProblem {
    /// Not in the checkpoint.
    Missing {
        /// The tensor's name.
        name: String,
        /// The shape the model needs.
        shape: Vec<usize>,
    },
    /// In the checkpoint with another shape.
    Shape {
        /// The tensor's name.
        name: String,
        /// Its shape in the checkpoint.
        found: Vec<usize>,
        /// The shape the model needs.
        expected: Vec<usize>,
    },
}

impl std::fmt::Display for WeightProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { name, shape } => write!(f, "{name} (shape {shape:?}) is missing"),
            Self::Shape {
                name,
                found,
                expected,
            } => write!(
                f,
                "{name} has shape {found:?}, the model needs {expected:?}"
            ),
        }
    }
}

fn list_problems(p: &[WeightProblem]) -> String {
    let shown: Vec<String> = p.iter().take(6).map(ToString::to_string).collect();
    if p.len() > 6 {
        format!("{}; and {} more", shown.join("; "), p.len() - 6)
    } else {
        shown.join("; ")
    }
}

/// What is wrong with a Hugging Face checkpoint of the rotary families
/// (GPT-NeoX, Llama-style).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HfProblem {
    /// `config.json` is not JSON.
    #[error("config.json: {0}")]
    Config(#[source] serde_json::Error),
    /// A field `config.json` must have.
    #[error("config.json has no {0}")]
    Missing(&'static str),
    /// A family cfmem does not implement.
    #[error("model_type {0:?}: cfmem reads gpt2, gpt_neox and llama")]
    ModelType(String),
    /// A setting of the family cfmem does not implement.
    #[error("config.json: {option} = {value} is not supported")]
    Unsupported {
        /// The option's name in `config.json`.
        option: &'static str,
        /// Its value.
        value: String,
    },
    /// A directory without `model.safetensors` or its index.
    #[error("no model.safetensors or model.safetensors.index.json")]
    NoWeights,
    /// Tensors the family needs that the checkpoint lacks.
    #[error("missing tensors: {}", .0.join(", "))]
    Tensors(Vec<String>),
}

/// Why a GPT-2-layout checkpoint cannot be taken.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Gpt2Problem {
    /// No `config.json` beside it.
    #[error("a GPT-2-layout checkpoint needs its config.json beside it (for n_head)")]
    NoConfig,
    /// A `config.json` that is not JSON.
    #[error("config.json: {0}")]
    Config(#[source] serde_json::Error),
    /// An activation other than tanh-GELU.
    #[error("config.json: activation {0}; cfmem's blocks use tanh-GELU (gelu_new)")]
    Activation(String),
    /// No `n_head` in `config.json`.
    #[error("config.json: no n_head")]
    NoHeads,
    /// No token or position embedding.
    #[error("GPT-2 layout without wte or wpe")]
    NoEmbeddings,
    /// Untied embeddings (GPT-2 ties them).
    #[error("GPT-2 layout: needs tied embeddings")]
    Untied,
    /// A parameter with no GPT-2 name.
    #[error("{0}: no GPT-2 name")]
    NoName(String),
}
