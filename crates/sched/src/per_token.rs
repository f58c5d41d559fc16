//! Files of an experiment beside its records: per-token results
//! (`cfmem run --per-token`) and the per-token memorization computed from
//! them, and the pretrained weights models start from (`cfmem run --init`).

use cfmem_analysis::{text_segments_se, Metric, SkippedRow, TokenMem, TokenMemAccumulator};
use cfmem_core::TokenScores;

use crate::error::{Error, Kept, Result};
use crate::experiment::Experiment;
use crate::layout::write_atomic;
use crate::token_record::{decode, encode};

impl Experiment {
    /// The pretrained weights every model starts from
    /// (`DIR/init.safetensors`), checked against the manifest's
    /// fingerprint; `None` when models start from random weights.
    ///
    /// # Errors
    /// I/O errors; [`Error::CheckpointChanged`] when the file does not match.
    pub fn checkpoint(&self) -> Result<Option<cfmem_core::Checkpoint>> {
        let Some(info) = &self.manifest().init else {
            return Ok(None);
        };
        let path = self.layout().init();
        let c = cfmem_core::Checkpoint::load(&path)?;
        if c.fingerprint() != info.fingerprint {
            return Err(Error::CheckpointChanged {
                found: c.fingerprint().to_string(),
                expected: info.fingerprint.clone(),
                path,
            });
        }
        Ok(Some(c))
    }

    /// Where model `i`'s weights are kept when the run saved them
    /// ([`crate::RunConfig::save_models`]); load them with
    /// [`cfmem_core::Checkpoint::load`].
    pub fn weights_path(&self, i: usize) -> std::path::PathBuf {
        self.layout().weights(i)
    }

    /// Write model `i`'s per-token results (atomically).
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn write_token_scores(&self, i: usize, t: &TokenScores) -> Result<()> {
        write_atomic(
            &self.layout().token_scores(i),
            &encode(i, &self.manifest().hash(), t)?,
        )
    }

    /// Model `i`'s per-token results: correctness and loss of every
    /// predicted token, in corpus order (document `d`'s from the sum of the
    /// earlier documents' targets; a document of `n` tokens has `n + 1`
    /// targets, its text's and the end of sequence).
    ///
    /// # Errors
    /// [`Error::CorruptRecord`] for a missing, damaged or foreign file.
    pub fn read_token_scores(&self, i: usize) -> Result<TokenScores> {
        let path = self.layout().token_scores(i);
        if !self.manifest().per_token {
            return Err(self.not_kept(Kept::PerToken));
        }
        let bytes = std::fs::read(&path).map_err(|source| Error::MissingBeside {
            path: path.clone(),
            what: Kept::PerToken,
            source,
        })?;
        let (model, hash, t) = decode(&path, &bytes)?;
        self.check_beside(&path, i, model, &hash)?;
        Ok(t)
    }

    /// Per-token memorization from every model with a record and
    /// per-token results; the models left out, with the reason.
    ///
    /// # Errors
    /// [`Error::NotKept`] when the experiment does not keep per-token
    /// results; I/O errors reading the token table.
    pub fn token_mem(&self) -> Result<(TokenMem, Vec<SkippedRow>)> {
        if !self.manifest().per_token {
            return Err(self.not_kept(Kept::PerToken));
        }
        let table = self.token_table()?;
        let n_targets: Vec<usize> = (0..table.n_docs()).map(|d| table.n_targets(d)).collect();
        let mut acc = TokenMemAccumulator::new(&n_targets);
        let mut skipped = Vec::new();
        for i in self.record_indices()? {
            let got = self
                .read(i)
                .and_then(|r| Ok((r, self.read_token_scores(i)?)));
            match got {
                Ok((r, t)) => acc
                    .add(i, &r.copies, &t.correct, &t.nll)
                    .map_err(Error::from)?,
                Err(e) => skipped.push(SkippedRow {
                    model: i,
                    reason: e.to_string(),
                }),
            }
        }
        Ok((acc.finish(), skipped))
    }

    /// Each document's text cut into runs of per-token memorization under
    /// `metric`, with their standard errors ([`text_segments_se`]), for the
    /// HTML report.
    ///
    /// # Errors
    /// Those of [`Experiment::token_mem`] and of building the tokenizer.
    pub fn token_segments(&self, metric: Metric) -> Result<Vec<Vec<(u32, f32, f32)>>> {
        let (mem, _) = self.token_mem()?;
        let tok = self.tokenizer()?;
        Ok(self
            .corpus()
            .documents()
            .iter()
            .enumerate()
            .map(|(d, doc)| {
                text_segments_se(
                    &doc.text,
                    &tok.spans(&doc.text),
                    mem.doc(d, metric),
                    mem.doc_se(d, metric),
                )
            })
            .collect())
    }
}
