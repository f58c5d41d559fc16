//! `cfmem run --canaries N[:FORMAT]`: random canaries planted in a new
//! corpus, with the exposure settings that rank them.

use anyhow::{Context, Result};
use cfmem_core::Corpus;

/// `--canaries N[:FORMAT]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CanarySpec {
    n: usize,
    format: cfmem_core::CanaryFormat,
}

impl std::str::FromStr for CanarySpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (n, format) = s.split_once(':').unwrap_or((s, "hex32"));
        let n: usize =
            n.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                format!("--canaries {s:?}: N must be a positive number of canaries")
            })?;
        Ok(Self {
            n,
            format: format.parse()?,
        })
    }
}

impl CanarySpec {
    fn config(&self, seed: u64) -> cfmem_core::CanaryConfig {
        cfmem_core::CanaryConfig {
            n_random: self.n,
            n_controls: 0,
            format: self.format,
            seed,
            ..cfmem_core::CanaryConfig::default()
        }
    }

    /// `corpus` with the canaries appended.
    pub(super) fn plant(&self, corpus: Corpus, seed: u64) -> Result<Corpus> {
        let mut docs = corpus.documents().to_vec();
        docs.extend(cfmem_core::canaries(&self.config(seed)));
        Corpus::from_documents(docs).context("planting canaries")
    }

    pub(super) fn exposure(&self) -> cfmem_core::ExposureConfig {
        cfmem_core::ExposureConfig {
            prefix: self.config(0).prefix,
            format: self.format,
            candidates: cfmem_core::DEFAULT_CANDIDATES,
        }
    }
}
