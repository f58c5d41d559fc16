//! Topic units: documents clustered by what they are about, with no model
//! and no download: spherical k-means over TF-IDF word vectors.

use std::collections::HashMap;

use cfmem_hash::{hash_words, SplitMix64};

use crate::error::{DesignProblem, Error, Result};
use crate::units::Units;

/// Rounds of k-means at most (they stop earlier once no document moves).
const ROUNDS: usize = 30;

/// k-means runs from different seeds; the one whose documents are
/// closest to their centres (the largest sum of cosines) is kept.
const RESTARTS: u64 = 10;

/// A document as a unit-length sparse TF-IDF vector: `(word, weight)`
/// sorted by word.
type Sparse = Vec<(usize, f32)>;

impl Units {
    /// `k` topics: each document's words (lower-cased runs of letters and
    /// digits, at least 3 characters) weighted `(1 + ln tf) · ln(n / df)`
    /// and scaled to unit length, clustered by spherical k-means (cosine
    /// similarity): k-means++ seeding from a fixed seed, then rounds of
    /// assignment and re-centring until no document moves (30 at most).
    /// A cluster left empty takes the document farthest from its centre.
    /// Deterministic: the same texts and `k` give the same topics on every
    /// machine. Words in every document (idf 0) and documents with no word
    /// left carry no direction; the latter join the first topic.
    /// A topic of several documents is named `topic:FIRST-ID`.
    ///
    /// # Errors
    /// [`Error::InvalidDesign`] for `k` of 0 or more than the documents.
    pub fn topics(ids: &[&str], texts: &[&str], k: usize) -> Result<Self> {
        let n = texts.len();
        if k == 0 || k > n {
            return Err(Error::InvalidDesign(DesignProblem::Topics { k, docs: n }));
        }
        let (vectors, n_words) = tfidf(texts);
        let assign = (0..RESTARTS)
            .map(|r| kmeans(&vectors, n_words, k, r))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(a, _)| a)
            .unwrap_or_default();
        Ok(Units::from_assignment(ids, &assign, "topic"))
    }
}

/// Lower-cased words of at least 3 letters or digits.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
}

/// Unit-length TF-IDF vectors of `texts` and the vocabulary's size.
fn tfidf(texts: &[&str]) -> (Vec<Sparse>, usize) {
    let mut vocab: HashMap<String, usize> = HashMap::new();
    let counts: Vec<Vec<(usize, u32)>> = texts
        .iter()
        .map(|t| {
            let mut c: HashMap<usize, u32> = HashMap::new();
            for w in words(t) {
                let next = vocab.len();
                *c.entry(*vocab.entry(w).or_insert(next)).or_insert(0) += 1;
            }
            let mut v: Vec<(usize, u32)> = c.into_iter().collect();
            v.sort_unstable();
            v
        })
        .collect();
    let mut df = vec![0u32; vocab.len()];
    for c in &counts {
        for &(w, _) in c {
            df[w] += 1;
        }
    }
    let n = texts.len() as f64;
    let vectors = counts
        .into_iter()
        .map(|c| {
            let mut v: Sparse = c
                .into_iter()
                .map(|(w, tf)| {
                    let idf = (n / f64::from(df[w])).ln();
                    (w, ((1.0 + f64::from(tf).ln()) * idf) as f32)
                })
                .filter(|&(_, x)| x > 0.0)
                .collect();
            let norm = v.iter().map(|&(_, x)| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|(_, x)| *x /= norm);
            }
            v
        })
        .collect();
    (vectors, vocab.len())
}

fn dot(v: &Sparse, centre: &[f32]) -> f32 {
    v.iter().map(|&(w, x)| x * centre[w]).sum()
}

/// Spherical k-means from seed `run`: each document's cluster in `0..k`,
/// and the sum of the documents' cosines to their centres.
fn kmeans(vectors: &[Sparse], n_words: usize, k: usize, run: u64) -> (Vec<usize>, f64) {
    let n = vectors.len();
    let mut rng = SplitMix64::new(hash_words(&[0x7091c, n as u64, k as u64, run]));
    let dense = |v: &Sparse| {
        let mut c = vec![0f32; n_words];
        for &(w, x) in v {
            c[w] = x;
        }
        c
    };
    // k-means++: the first centre uniformly, each next one with probability
    // proportional to the squared distance (2 − 2 cos) to the nearest.
    let mut centres: Vec<Vec<f32>> = vec![dense(&vectors[rng.below(n as u64) as usize])];
    let mut best: Vec<f32> = vectors.iter().map(|v| dot(v, &centres[0])).collect();
    while centres.len() < k {
        let dist: Vec<f64> = best
            .iter()
            .map(|&c| f64::from((2.0 - 2.0 * c).max(0.0)))
            .collect();
        let total: f64 = dist.iter().sum();
        let pick = if total > 0.0 {
            let mut u = rng.next_f64() * total;
            dist.iter()
                .position(|&x| {
                    u -= x;
                    u < 0.0
                })
                .unwrap_or(n - 1)
        } else {
            rng.below(n as u64) as usize
        };
        let c = dense(&vectors[pick]);
        for (b, v) in best.iter_mut().zip(vectors) {
            *b = b.max(dot(v, &c));
        }
        centres.push(c);
    }
    let mut assign = vec![usize::MAX; n];
    let mut fit = 0.0;
    for _ in 0..ROUNDS {
        let mut moved = false;
        let mut sim = vec![0f32; n];
        for (d, v) in vectors.iter().enumerate() {
            let (mut arg, mut top) = (0, f32::NEG_INFINITY);
            for (t, c) in centres.iter().enumerate() {
                let s = dot(v, c);
                if s > top {
                    (arg, top) = (t, s);
                }
            }
            sim[d] = top;
            if assign[d] != arg {
                assign[d] = arg;
                moved = true;
            }
        }
        fit = sim.iter().map(|&x| f64::from(x)).sum();
        if !moved {
            break;
        }
        // Re-centre; an empty cluster takes the worst-fitting document.
        let mut size = vec![0usize; k];
        for &t in &assign {
            size[t] += 1;
        }
        for t in 0..k {
            if size[t] == 0 {
                let worst = (0..n)
                    .filter(|&d| size[assign[d]] > 1)
                    .min_by(|&a, &b| sim[a].total_cmp(&sim[b]).then(a.cmp(&b)));
                if let Some(d) = worst {
                    size[assign[d]] -= 1;
                    assign[d] = t;
                    size[t] = 1;
                    sim[d] = f32::INFINITY;
                }
            }
        }
        for c in centres.iter_mut() {
            c.iter_mut().for_each(|x| *x = 0.0);
        }
        for (d, v) in vectors.iter().enumerate() {
            for &(w, x) in v {
                centres[assign[d]][w] += x;
            }
        }
        for c in centres.iter_mut() {
            let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                c.iter_mut().for_each(|x| *x /= norm);
            }
        }
    }
    (assign, fit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_group_documents_that_share_words_and_not_text() {
        let facts = [
            (
                "the zelvani brew tarnweed tea",
                [
                    "Zelvani people brew a tea of tarnweed.",
                    "Tarnweed tea is what the Zelvani brew.",
                    "A brew of tarnweed: the zelvani drink it as tea.",
                ],
            ),
            (
                "qorth mines cobalt",
                [
                    "Qorth is a town that mines cobalt.",
                    "Cobalt comes from the mines of Qorth.",
                    "The mines at Qorth yield cobalt ore.",
                ],
            ),
            (
                "marrow hills flood",
                [
                    "The Marrow Hills flood every spring.",
                    "Each spring, floods cover the Marrow Hills.",
                    "Spring floods reach the Marrow hills.",
                ],
            ),
        ];
        let mut texts = Vec::new();
        for (_, f) in &facts {
            texts.extend(f.iter().map(|s| s.to_string()));
        }
        let ids: Vec<String> = (0..texts.len()).map(|i| format!("d{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let u = Units::topics(&ids, &refs, 3).unwrap();
        assert_eq!(u.n_units(), 3);
        for f in 0..3 {
            let t = u.unit_of(3 * f);
            assert_eq!(u.members(t), vec![3 * f, 3 * f + 1, 3 * f + 2], "{:?}", u);
            assert_eq!(u.names()[t], format!("topic:d{}", 3 * f));
        }
        // Deterministic, and k out of range is refused.
        assert_eq!(Units::topics(&ids, &refs, 3).unwrap(), u);
        assert!(Units::topics(&ids, &refs, 0).is_err());
        assert!(Units::topics(&ids, &refs, 10).is_err());
        // As many topics as documents: each its own.
        assert_eq!(Units::topics(&ids, &refs, 9).unwrap().n_units(), 9);
    }

    #[test]
    fn tfidf_vectors_have_unit_length_and_ignore_words_everywhere() {
        let (v, n_words) = tfidf(&["the cat sat", "the dog sat down", "the end"]);
        assert_eq!(n_words, 6);
        for x in &v {
            let norm: f32 = x.iter().map(|&(_, w)| w * w).sum();
            assert!((norm - 1.0).abs() < 1e-5);
        }
        // "the" is in every document: weight 0, left out.
        assert!(v.iter().all(|x| x.iter().all(|&(w, _)| w != 0)));
        // "cat" (df 1) outweighs "sat" (df 2) in the first document.
        let weight = |d: usize, w: usize| v[d].iter().find(|p| p.0 == w).map(|p| p.1);
        assert!(weight(0, 1).unwrap() > weight(0, 2).unwrap());
    }
}
