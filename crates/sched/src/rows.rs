//! An experiment as a source of rows for every analysis of
//! `cfmem-analysis`: its valid records, in model order.

use cfmem_analysis::{DesignConfig, Observation, Row, RowVisitor, Rows, SkippedRow, Units, Value};

use crate::experiment::Experiment;

impl Rows for Experiment {
    fn ids(&self) -> Vec<String> {
        self.documents().iter().map(|d| d.id.clone()).collect()
    }

    /// Records that fail verification are skipped (and listed); an I/O
    /// error listing the runs directory fails the visit.
    fn visit(
        &self,
        value: Value,
        f: &mut RowVisitor<'_>,
    ) -> cfmem_analysis::Result<Vec<SkippedRow>> {
        let source = |e: crate::Error| cfmem_analysis::Error::Source(Box::new(e));
        let mut skipped = Vec::new();
        if let Value::Scores(m) | Value::QueryScores(m) = value {
            if m.is_extraction() && self.manifest().extraction.is_none() {
                return Err(source(self.not_kept(crate::error::Kept::Extraction)));
            }
            if m.is_extraction() && matches!(value, Value::QueryScores(_)) {
                return Err(cfmem_analysis::Error::ExtractionOnQueries);
            }
        }
        for i in self.record_indices().map_err(source)? {
            // Extraction scores live beside the record.
            let got = self.read(i).and_then(|r| match value {
                Value::Scores(m) if m.is_extraction() => {
                    let s = self.extraction_scores(i, m)?;
                    Ok((r, Some(s)))
                }
                _ => Ok((r, None)),
            });
            match got {
                Ok((r, extracted)) => {
                    let values = match (value, extracted) {
                        (_, Some(s)) => s,
                        (Value::Scores(m), None) => r.scores(m),
                        (Value::Loss, None) => r.scores(cfmem_analysis::Metric::Loss),
                        (Value::QueryScores(m), None) => {
                            if r.queries.is_none() {
                                return Err(cfmem_analysis::Error::NoQueries);
                            }
                            r.query_scores(m)
                        }
                    };
                    f(Row {
                        model: i,
                        copies: &r.copies,
                        values: &values,
                    })?;
                }
                Err(e) => skipped.push(SkippedRow {
                    model: i,
                    reason: e.to_string(),
                }),
            }
        }
        Ok(skipped)
    }

    fn design(&self) -> Option<DesignConfig> {
        Some(self.manifest().design())
    }

    fn units(&self) -> Option<&Units> {
        Some(Experiment::units(self))
    }

    fn spectrum(&self) -> Option<&cfmem_analysis::Spectrum> {
        Experiment::spectrum(self)
    }

    /// Tokens per document under the manifest's tokenizer (read from or
    /// kept in `DIR/tokens.bin`).
    fn doc_tokens(&self) -> cfmem_analysis::Result<Option<Vec<usize>>> {
        let source = |e: crate::Error| cfmem_analysis::Error::Source(Box::new(e));
        let table = self.token_table().map_err(source)?;
        Ok(Some(
            (0..table.n_docs())
                .map(|d| table.n_targets(d) + 1)
                .collect(),
        ))
    }

    fn query_ids(&self) -> Option<Vec<String>> {
        self.queries()
            .map(|q| q.documents().iter().map(|d| d.id.clone()).collect())
    }

    /// Min-K % Prob from the per-token losses `--per-token` keeps, for
    /// the records [`Rows::visit`] reads (a model whose per-token file is
    /// missing gets none).
    fn token_proxies(&self) -> cfmem_analysis::Result<Vec<cfmem_analysis::ProxyTable>> {
        if !self.manifest().per_token {
            return Ok(Vec::new());
        }
        let source = |e: crate::Error| cfmem_analysis::Error::Source(Box::new(e));
        let table = self.token_table().map_err(source)?;
        let mut start = vec![0usize; table.n_docs() + 1];
        for d in 0..table.n_docs() {
            start[d + 1] = start[d] + table.n_targets(d);
        }
        let (mut copies, mut scores) = (Vec::new(), Vec::new());
        for i in self.record_indices().map_err(source)? {
            let Ok(r) = self.read(i) else { continue };
            copies.push(r.copies);
            scores.push(self.read_token_scores(i).ok());
        }
        Ok(cfmem_analysis::min_k_table(&copies, &|i, d| {
            let t = scores.get(i)?.as_ref()?;
            let range = start[d]..start[d + 1];
            // Files of the first format have no moments: empty columns.
            let part = |v: &[f32]| {
                v.get(range.clone())
                    .map(<[f32]>::to_vec)
                    .unwrap_or_default()
            };
            Some(cfmem_analysis::TokenView {
                nll: t.nll.get(range.clone())?.to_vec(),
                mu: part(&t.mu),
                sigma: part(&t.sigma),
            })
        }))
    }

    fn texts(&self) -> Option<Vec<String>> {
        Some(self.documents().iter().map(|d| d.text.clone()).collect())
    }

    fn kinds(&self) -> Option<Vec<String>> {
        Some(
            self.documents()
                .iter()
                .map(|d| cfmem_core::kind_of(&d.id).to_string())
                .collect(),
        )
    }

    /// The records hold real per-token losses: LiRA's logit scaling applies.
    fn observation(&self) -> Observation {
        Observation::LogitConfidence
    }
}
