//! Train → held-out influence.

use std::path::Path;

use cfmem::analysis::{influence as infl, DesignKind, InfluenceConfig, InfluenceOn};
use cfmem::engine::{Corpus, Document};
use cfmem::sched::{Observer, UnitSpec};

use crate::text::{secret, Hex};
use crate::{experiment, Result, Scale};

/// A training document's influence on a query.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedUnit {
    /// The training document's id.
    pub id: String,
    /// Its influence on the query (per-token accuracy).
    pub infl: f64,
    /// The standard error.
    pub se: f64,
}

/// A query's most influential training documents.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTop {
    /// The query's id.
    pub query: String,
    /// Its top 3, most influential first.
    pub top: Vec<RankedUnit>,
}

/// Train → held-out influence.
#[derive(Debug, Clone)]
pub struct InfluenceStudy {
    /// Held-out documents with near-duplicates in training.
    pub n_queries: usize,
    /// Of those, how many have one of their own near-duplicates as the
    /// most influential training document.
    pub top1_is_duplicate: usize,
    /// How many have both of their near-duplicates among their top 3.
    pub both_in_top3: usize,
    /// Chance of a given query's top-1 being one of its duplicates.
    pub chance: f64,
    /// Mean rank (1 = most influential) of a query's own near-duplicates
    /// among all training documents.
    pub mean_rank: f64,
    /// The mean rank by chance: `(n + 1) / 2` for `n` training documents.
    pub chance_rank: f64,
    /// Per duplicated query, its top 3.
    pub tops: Vec<QueryTop>,
}

/// Prediction: the most influential training documents for a held-out
/// document are its near-duplicates.
///
/// # Errors
/// Training or I/O errors.
pub fn influence(dir: &Path, scale: &Scale, observer: &dyn Observer) -> Result<InfluenceStudy> {
    let mut docs = cfmem::bundled::short_entries(scale.n_natural)?;
    let mut hex = Hex::new(0x1f1);
    let mut queries = Vec::new();
    for i in 0..scale.n_planted {
        let base = secret(&hex.digits(32));
        for j in 0..2 {
            docs.push(Document::new(format!("near-{i:02}-{j}"), hex.edit(&base)));
        }
        queries.push(Document::new(format!("query-{i:02}"), base));
    }
    let corpus = Corpus::from_documents(docs)?;
    let n_train = corpus.len();
    let exp = experiment(
        dir,
        corpus,
        Some(Corpus::from_documents(queries)?),
        DesignKind::Blocks { b: 2 },
        UnitSpec::Documents,
        scale,
        observer,
    )?;
    let rep = infl(
        &exp,
        &InfluenceConfig {
            on: InfluenceOn::Queries,
            k: n_train,
            // A ranking of every unit on every model: the study measures
            // how often the right ones come first, not a winner's size.
            confirm: false,
            ..InfluenceConfig::default()
        },
    )?;
    let (mut top1, mut both) = (0, 0);
    let mut tops = Vec::new();
    let mut ranks = Vec::new();
    for (q, list) in rep.influence.top_units.iter().enumerate() {
        let qid = &rep.query_ids[q];
        let own = format!("near-{}-", &qid["query-".len()..]);
        let ranked: Vec<RankedUnit> = list
            .iter()
            .map(|e| RankedUnit {
                id: rep.unit_ids[e.unit].clone(),
                infl: e.infl,
                se: e.se,
            })
            .collect();
        for (r, u) in ranked.iter().enumerate() {
            if u.id.starts_with(&own) {
                ranks.push((r + 1) as f64);
            }
        }
        if ranked.first().is_some_and(|u| u.id.starts_with(&own)) {
            top1 += 1;
        }
        if ranked
            .iter()
            .take(3)
            .filter(|u| u.id.starts_with(&own))
            .count()
            == 2
        {
            both += 1;
        }
        tops.push(QueryTop {
            query: qid.clone(),
            top: ranked.into_iter().take(3).collect(),
        });
    }
    Ok(InfluenceStudy {
        n_queries: rep.query_ids.len(),
        top1_is_duplicate: top1,
        both_in_top3: both,
        chance: 2.0 / n_train as f64,
        mean_rank: ranks.iter().sum::<f64>() / ranks.len().max(1) as f64,
        chance_rank: (n_train + 1) as f64 / 2.0,
        tops,
    })
}
