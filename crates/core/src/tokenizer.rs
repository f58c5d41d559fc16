//! Tokenizers: text → token ids with BOS/EOS/PAD.

use serde::{Deserialize, Serialize};

use crate::corpus::Corpus;
use crate::error::{Error, Result};

/// A tokenizer: turns a document into ids, framed by BOS and EOS.
pub trait Tokenizer: Send + Sync {
    /// Ids of `text`, without BOS/EOS.
    fn encode(&self, text: &str) -> Vec<u32>;
    /// Number of ids, specials included.
    fn vocab_size(&self) -> usize;
    /// Beginning-of-sequence id.
    fn bos(&self) -> u32;
    /// End-of-sequence id.
    fn eos(&self) -> u32;
    /// Padding id (never a prediction target).
    fn pad(&self) -> u32;
    /// The byte range of `text` each id of [`Tokenizer::encode`] stands
    /// for (for showing per-token results on the text); empty when the
    /// tokenizer cannot say.
    fn spans(&self, text: &str) -> Vec<std::ops::Range<usize>> {
        let _ = text;
        Vec::new()
    }
}

/// Byte-level tokenizer: ids 0–255 are bytes, then BOS, EOS and PAD.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteTokenizer;

impl Tokenizer for ByteTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }
    fn vocab_size(&self) -> usize {
        259
    }
    fn bos(&self) -> u32 {
        256
    }
    fn eos(&self) -> u32 {
        257
    }
    fn pad(&self) -> u32 {
        258
    }
    fn spans(&self, text: &str) -> Vec<std::ops::Range<usize>> {
        (0..text.len()).map(|i| i..i + 1).collect()
    }
}

/// Which tokenizer an experiment uses (written into its manifest).
///
/// A Hugging Face tokenizer is identified by its `tokenizer.json` bytes
/// (their blake3 `fingerprint`): an experiment keeps the file in its
/// directory, and a different one is a different experiment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenizerConfig {
    /// [`ByteTokenizer`].
    #[default]
    Byte,
    /// A Hugging Face tokenizer ([`HfTokenizer`]).
    HuggingFace {
        /// Where it came from: `bpe:VOCAB` (trained on the corpus) or the
        /// file's path as given.
        source: String,
        /// The model's vocabulary: the tokenizer's, plus BOS, EOS and PAD.
        vocab_size: usize,
        /// blake3 of its `tokenizer.json`.
        fingerprint: String,
    },
}

impl TokenizerConfig {
    /// The model vocabulary this tokenizer needs.
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Byte => ByteTokenizer.vocab_size(),
            Self::HuggingFace { vocab_size, .. } => *vocab_size,
        }
    }

    /// A short description (`bytes`, `bpe:512`, a path).
    pub fn name(&self) -> &str {
        match self {
            Self::Byte => "bytes",
            Self::HuggingFace { source, .. } => source,
        }
    }

    /// Build the tokenizer; a Hugging Face one from its `tokenizer.json`
    /// bytes, which must match the fingerprint.
    ///
    /// # Errors
    /// [`Error::TokenizerMissing`], [`Error::TokenizerChanged`], or [`Error::Tokenizer`] when the JSON
    /// cannot be read.
    pub fn build(&self, json: Option<&[u8]>) -> Result<Box<dyn Tokenizer>> {
        match self {
            Self::Byte => Ok(Box::new(ByteTokenizer)),
            Self::HuggingFace { fingerprint, .. } => {
                let json = json.ok_or(Error::TokenizerMissing)?;
                let got = blake3::hash(json).to_hex().to_string();
                if &got != fingerprint {
                    return Err(Error::TokenizerChanged {
                        found: got,
                        expected: fingerprint.clone(),
                    });
                }
                Ok(Box::new(HfTokenizer::from_json(json)?))
            }
        }
    }
}

/// What a user asks for: `bytes`, `bpe:VOCAB` (a byte-level BPE trained
/// on the corpus) or the path of a Hugging Face `tokenizer.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerSpec {
    /// Bytes.
    Bytes,
    /// A byte-level BPE with this vocabulary (at least 257: the 256 bytes
    /// and one merge), trained on the corpus.
    Bpe(usize),
    /// A Hugging Face `tokenizer.json` file.
    File(std::path::PathBuf),
}

impl std::str::FromStr for TokenizerSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "bytes" || s == "byte" {
            return Ok(Self::Bytes);
        }
        if let Some(v) = s.strip_prefix("bpe:") {
            return v.parse().map(Self::Bpe).map_err(|_| Error::Parse {
                what: "tokenizer",
                input: s.to_string(),
                expected: "bpe:VOCAB, e.g. bpe:512",
            });
        }
        Ok(Self::File(s.into()))
    }
}

/// A resolved tokenizer: its manifest entry and, for a Hugging Face one,
/// the `tokenizer.json` to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTokenizer {
    /// The manifest entry.
    pub config: TokenizerConfig,
    /// The `tokenizer.json` bytes (none for bytes).
    pub json: Option<Vec<u8>>,
}

impl TokenizerSpec {
    /// Train or read the tokenizer (BPE training is deterministic: the same
    /// corpus gives the same `tokenizer.json`).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] for a bad vocabulary size, an unreadable file
    /// or a failed training; [`Error::Io`] naming the file.
    pub fn resolve(&self, corpus: &Corpus) -> Result<ResolvedTokenizer> {
        let (source, tok) = match self {
            Self::Bytes => {
                return Ok(ResolvedTokenizer {
                    config: TokenizerConfig::Byte,
                    json: None,
                })
            }
            Self::Bpe(v) => (format!("bpe:{v}"), HfTokenizer::train_bpe(corpus, *v)?),
            Self::File(p) => {
                let bytes = std::fs::read(p).map_err(|source| Error::Io {
                    path: p.clone(),
                    source,
                })?;
                let tok = HfTokenizer::from_json(&bytes).map_err(|e| match e {
                    Error::Tokenizer { source, .. } => Error::Tokenizer {
                        file: Some(p.clone()),
                        source,
                    },
                    other => other,
                })?;
                (p.display().to_string(), tok)
            }
        };
        let json = tok.to_json()?;
        Ok(ResolvedTokenizer {
            config: TokenizerConfig::HuggingFace {
                source,
                vocab_size: tok.vocab_size(),
                fingerprint: blake3::hash(&json).to_hex().to_string(),
            },
            json: Some(json),
        })
    }
}

/// A Hugging Face tokenizer (the `tokenizers` crate): a `tokenizer.json`
/// from any model (GPT-2, Pythia, …) or a byte-level BPE trained on the
/// corpus. Its special tokens are not used; BOS, EOS and PAD are three ids
/// after its vocabulary.
#[derive(Debug, Clone)]
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    base: usize,
}

impl HfTokenizer {
    /// From `tokenizer.json` bytes.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when the JSON is not a tokenizer.
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(json)
            .map_err(|source| Error::Tokenizer { file: None, source })?;
        let base = inner.get_vocab_size(true);
        Ok(Self { inner, base })
    }

    /// A byte-level BPE (GPT-2's pre-tokenization, the 256 byte symbols,
    /// merges up to `vocab_size`) trained on the documents of `corpus`.
    ///
    /// # Errors
    /// [`Error::BpeVocabulary`] for `vocab_size < 257`; [`Error::Tokenizer`] for a failed training.
    pub fn train_bpe(corpus: &Corpus, vocab_size: usize) -> Result<Self> {
        use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        use tokenizers::{
            DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
            TokenizerBuilder,
        };
        if vocab_size < 257 {
            return Err(Error::BpeVocabulary(vocab_size));
        }
        let err = |source: tokenizers::Error| Error::Tokenizer { file: None, source };
        let mut tk = TokenizerBuilder::<
            BPE,
            NormalizerWrapper,
            PreTokenizerWrapper,
            PostProcessorWrapper,
            DecoderWrapper,
        >::default()
        .with_model(BPE::default())
        .with_pre_tokenizer(Some(PreTokenizerWrapper::ByteLevel(ByteLevel::default())))
        .with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())))
        .build()
        .map_err(err)?;
        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        tk.train(&mut trainer, corpus.documents().iter().map(|d| &d.text))
            .map_err(err)?;
        let inner: tokenizers::Tokenizer = tk.into();
        let base = inner.get_vocab_size(true);
        Ok(Self { inner, base })
    }

    /// The `tokenizer.json` bytes.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when it cannot be serialised.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        self.inner
            .to_string(false)
            .map(String::into_bytes)
            .map_err(|source| Error::Tokenizer { file: None, source })
    }
}

impl Tokenizer for HfTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        // Encoding a &str cannot fail for the models used here; an error
        // gives no tokens (the document then predicts only EOS).
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }
    fn vocab_size(&self) -> usize {
        self.base + 3
    }
    fn bos(&self) -> u32 {
        self.base as u32
    }
    fn eos(&self) -> u32 {
        self.base as u32 + 1
    }
    fn pad(&self) -> u32 {
        self.base as u32 + 2
    }
    fn spans(&self, text: &str) -> Vec<std::ops::Range<usize>> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_offsets().iter().map(|&(a, b)| a..b).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpe_is_trained_deterministically_and_framed_by_its_own_specials() {
        let corpus = Corpus::from_documents(
            (0..40)
                .map(|i| {
                    crate::Document::new(
                        format!("d{i}"),
                        format!("the cat number {i} sat on the mat"),
                    )
                })
                .collect(),
        )
        .unwrap();
        let a = TokenizerSpec::Bpe(300).resolve(&corpus).unwrap();
        let b = TokenizerSpec::Bpe(300).resolve(&corpus).unwrap();
        assert_eq!(a, b, "BPE training must be deterministic");
        let TokenizerConfig::HuggingFace { vocab_size, .. } = a.config else {
            panic!("{:?}", a.config)
        };
        let tok = a.config.build(a.json.as_deref()).unwrap();
        assert_eq!(tok.vocab_size(), vocab_size);
        let ids = tok.encode("the cat sat");
        assert!(
            !ids.is_empty() && ids.len() < "the cat sat".len(),
            "{ids:?}"
        );
        assert!(ids.iter().all(|&i| i < tok.bos()));
        assert!(tok.bos() < tok.eos() && tok.eos() < tok.pad());
        assert!((tok.pad() as usize) < tok.vocab_size());
        // A tampered file is refused; bytes need none.
        assert!(a.config.build(Some(b"{}")).is_err());
        assert!(a.config.build(None).is_err());
        assert_eq!(
            "bpe:512".parse::<TokenizerSpec>().ok(),
            Some(TokenizerSpec::Bpe(512))
        );
        assert_eq!(
            "bytes".parse::<TokenizerSpec>().ok(),
            Some(TokenizerSpec::Bytes)
        );
        assert!("bpe:x".parse::<TokenizerSpec>().is_err());
        assert!(TokenizerSpec::Bpe(100).resolve(&corpus).is_err());
    }

    #[test]
    fn bytes_roundtrip_and_specials_are_distinct() {
        let t = ByteTokenizer;
        let ids = t.encode("hé!");
        assert_eq!(ids, vec![104, 0xc3, 0xa9, 33]);
        let specials = [t.bos(), t.eos(), t.pad()];
        assert!(specials
            .iter()
            .all(|&s| s >= 256 && (s as usize) < t.vocab_size()));
        assert_eq!(specials.len(), 3);
        assert!(specials[0] != specials[1] && specials[1] != specials[2]);
    }
}
