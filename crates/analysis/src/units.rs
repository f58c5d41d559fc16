//! Units of removal: single documents, or groups of documents that are
//! included or removed together.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::accumulator::MemAccumulator;
use crate::error::{DesignProblem, Error, Result};
use crate::estimate::{Estimate, Metric};
use crate::rows::{Rows, Value};
use cfmem_hash::{hash_words, mix64};

/// A partition of the documents into units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Units {
    unit_of: Vec<usize>,
    names: Vec<String>,
}

impl Units {
    /// Every document its own unit (the plain estimate), named by its id.
    pub fn singletons(ids: &[&str]) -> Self {
        Self {
            unit_of: (0..ids.len()).collect(),
            names: ids.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Documents sharing a label form one unit (named by the label);
    /// documents without a label are units of their own.
    pub fn from_labels(ids: &[&str], labels: &[Option<&str>]) -> Self {
        Self::labelled(ids, labels, "group")
    }

    /// Documents sharing a label form one unit named `PREFIX:LABEL`;
    /// documents without a label are units of their own.
    pub(crate) fn labelled(ids: &[&str], labels: &[Option<&str>], prefix: &str) -> Self {
        let mut by_label: BTreeMap<&str, usize> = BTreeMap::new();
        let mut names = Vec::new();
        let mut unit_of = Vec::with_capacity(ids.len());
        for (id, label) in ids.iter().zip(labels) {
            let u = match label {
                Some(l) => *by_label.entry(l).or_insert_with(|| {
                    names.push(format!("{prefix}:{l}"));
                    names.len() - 1
                }),
                None => {
                    names.push(id.to_string());
                    names.len() - 1
                }
            };
            unit_of.push(u);
        }
        Self { unit_of, names }
    }

    /// The documents selected by `select` form one unit named `name`; the
    /// others are units of their own.
    pub fn selected(
        ids: &[&str],
        texts: &[&str],
        name: &str,
        select: impl Fn(&str) -> bool,
    ) -> Self {
        let labels: Vec<Option<&str>> = texts.iter().map(|t| select(t).then_some(name)).collect();
        Self::from_labels(ids, &labels)
    }

    /// Near-duplicate clusters: documents whose character `ngram`-shingle
    /// sets have Jaccard similarity ≥ `threshold` are linked, and linked
    /// documents (transitively) form one unit named after its first member.
    /// Exact Jaccard over all pairs up to 2,000 documents; beyond, MinHash
    /// (128 hashes) with LSH banding (32 bands × 4 rows) proposes pairs that
    /// are then checked exactly. Memory beyond 2,000 documents: the
    /// signatures, 1 KiB per document (shingle sets are built one document
    /// at a time, and again for each proposed pair).
    ///
    /// # Errors
    /// [`Error::InvalidDesign`] for `ngram == 0` or a threshold outside (0, 1].
    pub fn near_duplicates(
        ids: &[&str],
        texts: &[&str],
        ngram: usize,
        threshold: f64,
    ) -> Result<Self> {
        if ngram == 0 || !(threshold > 0.0 && threshold <= 1.0) {
            return Err(Error::InvalidDesign(DesignProblem::NearDuplicates {
                ngram,
                threshold,
            }));
        }
        let n = texts.len();
        let mut parent: Vec<usize> = (0..n).collect();
        let mut link = |i: usize, j: usize| {
            let (a, b) = (find(&mut parent, i), find(&mut parent, j));
            if a != b {
                parent[a.max(b)] = a.min(b);
            }
        };
        if n <= 2000 {
            let shingles: Vec<HashSet<u64>> = texts.iter().map(|t| shingle(t, ngram)).collect();
            for i in 0..n {
                for j in i + 1..n {
                    if jaccard(&shingles[i], &shingles[j]) >= threshold {
                        link(i, j);
                    }
                }
            }
        } else {
            let sigs: Vec<Vec<u64>> = texts
                .iter()
                .map(|t| signature(&shingle(t, ngram)))
                .collect();
            for (i, j) in lsh_candidates(&sigs) {
                if jaccard(&shingle(texts[i], ngram), &shingle(texts[j], ngram)) >= threshold {
                    link(i, j);
                }
            }
        }
        let roots: Vec<usize> = (0..n).map(|i| find(&mut parent, i)).collect();
        Ok(Self::from_assignment(ids, &roots, "cluster"))
    }

    /// Documents with the same `assign` value form one unit, numbered in
    /// the order of their first document; a unit of several documents is
    /// named `PREFIX:FIRST-ID`, one of a single document by its id.
    pub(crate) fn from_assignment(ids: &[&str], assign: &[usize], prefix: &str) -> Self {
        let mut size: BTreeMap<usize, usize> = BTreeMap::new();
        for &a in assign {
            *size.entry(a).or_insert(0) += 1;
        }
        let mut unit_by: BTreeMap<usize, usize> = BTreeMap::new();
        let mut names = Vec::new();
        let unit_of = assign
            .iter()
            .enumerate()
            .map(|(d, a)| {
                *unit_by.entry(*a).or_insert_with(|| {
                    names.push(if size[a] > 1 {
                        format!("{prefix}:{}", ids[d])
                    } else {
                        ids[d].to_string()
                    });
                    names.len() - 1
                })
            })
            .collect();
        Self { unit_of, names }
    }

    /// These units made whole inside `coarse`: each of them goes to the
    /// unit of `coarse` that holds most of its documents (on a tie, the
    /// one that comes first), so that every unit of the result is a union
    /// of units of `self`. Units of `coarse` keep their names; one that
    /// had a single document and gained others is named `PREFIX:FIRST-ID`,
    /// and a unit left with one document is named by its id.
    pub fn nested_in(&self, coarse: &Units, ids: &[&str], prefix: &str) -> Units {
        let mut votes: Vec<BTreeMap<usize, usize>> = vec![BTreeMap::new(); self.n_units()];
        for (d, &u) in self.unit_of.iter().enumerate() {
            *votes[u].entry(coarse.unit_of[d]).or_insert(0) += 1;
        }
        let target: Vec<usize> = votes
            .iter()
            .map(|v| {
                v.iter()
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                    .map_or(0, |(&c, _)| c)
            })
            .collect();
        let was_single: Vec<bool> = {
            let mut size = vec![0usize; coarse.n_units()];
            for &c in &coarse.unit_of {
                size[c] += 1;
            }
            size.iter().map(|&s| s <= 1).collect()
        };
        let label_of: Vec<usize> = self.unit_of.iter().map(|&u| target[u]).collect();
        let mut size = vec![0usize; coarse.n_units()];
        let mut first = vec![usize::MAX; coarse.n_units()];
        for (d, &c) in label_of.iter().enumerate() {
            size[c] += 1;
            first[c] = first[c].min(d);
        }
        let mut index: BTreeMap<usize, usize> = BTreeMap::new();
        let mut names = Vec::new();
        let unit_of = label_of
            .iter()
            .enumerate()
            .map(|(d, &c)| {
                *index.entry(c).or_insert_with(|| {
                    names.push(if size[c] == 1 {
                        ids[d].to_string()
                    } else if was_single[c] {
                        format!("{prefix}:{}", ids[first[c]])
                    } else {
                        coarse.names[c].clone()
                    });
                    names.len() - 1
                })
            })
            .collect();
        Units { unit_of, names }
    }

    /// Whether these units partition `n` documents: one unit per document,
    /// every unit named and none empty.
    pub fn partitions(&self, n: usize) -> bool {
        let mut used = vec![false; self.names.len()];
        for &u in &self.unit_of {
            match used.get_mut(u) {
                Some(x) => *x = true,
                None => return false,
            }
        }
        self.unit_of.len() == n && used.iter().all(|&x| x)
    }

    /// Whether every unit of `self` lies inside one unit of `coarse`.
    pub fn is_nested_in(&self, coarse: &Units) -> bool {
        let mut home = vec![usize::MAX; self.n_units()];
        self.unit_of.iter().zip(&coarse.unit_of).all(|(&f, &c)| {
            if home[f] == usize::MAX {
                home[f] = c;
            }
            home[f] == c
        })
    }

    /// Every unit's documents, in unit order.
    pub fn all_members(&self) -> Vec<Vec<usize>> {
        let mut m = vec![Vec::new(); self.n_units()];
        for (d, &u) in self.unit_of.iter().enumerate() {
            m[u].push(d);
        }
        m
    }

    /// Number of units.
    pub fn n_units(&self) -> usize {
        self.names.len()
    }

    /// Number of documents.
    pub fn n_docs(&self) -> usize {
        self.unit_of.len()
    }

    /// The unit of document `d`.
    pub fn unit_of(&self, d: usize) -> usize {
        self.unit_of[d]
    }

    /// Unit names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The documents of unit `u`.
    pub fn members(&self, u: usize) -> Vec<usize> {
        (0..self.unit_of.len())
            .filter(|&d| self.unit_of[d] == u)
            .collect()
    }

    /// Per-document copies from per-unit copies.
    pub fn expand(&self, unit_copies: &[u32]) -> Vec<u32> {
        self.unit_of.iter().map(|&u| unit_copies[u]).collect()
    }

    /// Per-unit copies and scores (the mean over members) from per-document ones.
    pub fn collapse(&self, copies: &[u32], scores: &[f64]) -> (Vec<u32>, Vec<f64>) {
        let mut c = vec![0u32; self.n_units()];
        let mut s = vec![0f64; self.n_units()];
        let mut k = vec![0f64; self.n_units()];
        for (d, &u) in self.unit_of.iter().enumerate() {
            c[u] = copies[d];
            s[u] += scores[d];
            k[u] += 1.0;
        }
        for (x, n) in s.iter_mut().zip(k) {
            *x /= n.max(1.0);
        }
        (c, s)
    }
}

/// The estimate of one unit of removal (a group of documents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupEstimate {
    /// Unit name (`group:LABEL`, `cluster:FIRST-ID`, `contains:TEXT`, or a document id).
    pub name: String,
    /// Ids of its documents.
    pub members: Vec<String>,
    /// Memorization of the unit: its members' mean score, with the whole
    /// unit included against the whole unit removed.
    #[serde(flatten)]
    pub estimate: Estimate,
}

/// Memorization per unit of removal (plain estimator: the adjustment is a
/// per-document correction), from rows whose design drew whole units
/// ([`Rows::units`]; without units every document is its own). Members'
/// own estimates come from [`crate::report()`].
///
/// # Formula
/// ```text
/// mem(U) = mean_i{ M̄(model_i, U) : U ⊂ S_i } − mean_i{ M̄(model_i, U) : U ∩ S_i = ∅ },   M̄ = mean over U's documents
/// ```
///
/// # Errors
/// Errors of the source.
pub fn groups(src: &dyn Rows, metric: Metric) -> Result<Vec<GroupEstimate>> {
    let ids = src.ids();
    let singletons;
    let units = match src.units() {
        Some(u) => u,
        None => {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            singletons = Units::singletons(&refs);
            &singletons
        }
    };
    let mut acc = MemAccumulator::new(units.n_units(), metric).blocks(src.block_size());
    src.visit(Value::Scores(metric), &mut |r| {
        let (c, s) = units.collapse(r.copies, r.values);
        acc.add_model(r.model, &c, &s)
    })?;
    Ok(acc
        .finish()
        .into_iter()
        .enumerate()
        .map(|(u, estimate)| GroupEstimate {
            name: units.names()[u].clone(),
            members: units
                .members(u)
                .into_iter()
                .map(|d| ids[d].clone())
                .collect(),
            estimate,
        })
        .collect())
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Hashed character n-grams of `text` (the whole text when shorter).
fn shingle(text: &str, n: usize) -> HashSet<u64> {
    let chars: Vec<char> = text.chars().collect();
    let word = |w: &[char]| {
        let v: Vec<u64> = w.iter().map(|&c| u64::from(c)).collect();
        hash_words(&v)
    };
    if chars.len() <= n {
        return std::iter::once(word(&chars)).collect();
    }
    chars.windows(n).map(word).collect()
}

/// `|A ∩ B| / |A ∪ B|`.
pub fn jaccard(a: &HashSet<u64>, b: &HashSet<u64>) -> f64 {
    let inter = a.intersection(b).count();
    let union = a.len() + b.len() - inter;
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

const HASHES: usize = 128;
const ROWS: usize = 4;

/// The MinHash signature of a shingle set (128 hashes).
fn signature(s: &HashSet<u64>) -> Vec<u64> {
    (0..HASHES as u64)
        .map(|h| {
            s.iter()
                .map(|&x| mix64(x ^ mix64(h + 1)))
                .min()
                .unwrap_or(u64::MAX)
        })
        .collect()
}

/// Pairs of documents whose signatures agree on some band of `ROWS` hashes.
fn lsh_candidates(sigs: &[Vec<u64>]) -> Vec<(usize, usize)> {
    let mut pairs = HashSet::new();
    for band in 0..HASHES / ROWS {
        let mut buckets: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (d, sig) in sigs.iter().enumerate() {
            let key = hash_words(&sig[band * ROWS..(band + 1) * ROWS]);
            buckets.entry(key).or_default().push(d);
        }
        for docs in buckets.values() {
            for (a, &i) in docs.iter().enumerate() {
                for &j in &docs[a + 1..] {
                    pairs.insert((i.min(j), i.max(j)));
                }
            }
        }
    }
    let mut v: Vec<(usize, usize)> = pairs.into_iter().collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_selection() {
        let ids = ["a", "b", "c", "d"];
        let u = Units::from_labels(&ids, &[Some("x"), None, Some("x"), Some("y")]);
        assert_eq!(u.n_units(), 3);
        assert_eq!(u.members(0), vec![0, 2]);
        assert_eq!(u.names(), &["group:x", "b", "group:y"]);
        assert_eq!(u.expand(&[1, 0, 2]), vec![1, 0, 1, 2]);
        let (c, s) = u.collapse(&[1, 0, 1, 2], &[0.2, 0.5, 0.4, 0.9]);
        assert_eq!(c, vec![1, 0, 2]);
        assert!((s[0] - 0.3).abs() < 1e-12);
        let sel = Units::selected(&ids, &["cat", "dog", "catalog", "cow"], "cat", |t| {
            t.contains("cat")
        });
        assert_eq!(sel.members(sel.unit_of(0)), vec![0, 2]);
        assert_eq!(Units::singletons(&ids).n_units(), 4);
    }

    #[test]
    fn near_duplicates_by_exact_jaccard_and_lsh() {
        let base = "the quick brown fox jumps over the lazy dog again and again";
        let texts: Vec<String> = vec![
            base.to_string(),
            base.replace("quick", "quack"),
            base.replace("lazy", "hazy"),
            "an entirely different sentence about cats".to_string(),
        ];
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ids = ["a", "b", "c", "d"];
        let u = Units::near_duplicates(&ids, &refs, 5, 0.7).unwrap();
        assert_eq!(u.n_units(), 2);
        assert_eq!(u.members(0), vec![0, 1, 2]);
        assert_eq!(u.names()[0], "cluster:a");
        // Jaccard by hand on tiny sets.
        let a: HashSet<u64> = [1, 2, 3].into();
        let b: HashSet<u64> = [2, 3, 4, 5].into();
        assert!((jaccard(&a, &b) - 2.0 / 5.0).abs() < 1e-12);
        // LSH finds a planted near-duplicate pair among many random texts.
        let mut rng = cfmem_hash::SplitMix64::new(1);
        let mut many: Vec<String> = (0..300)
            .map(|_| {
                (0..80)
                    .map(|_| char::from(b'a' + rng.below(26) as u8))
                    .collect()
            })
            .collect();
        let dup = many[7].clone();
        many.push(format!("{}x", &dup[..79]));
        let sigs: Vec<Vec<u64>> = many.iter().map(|t| signature(&shingle(t, 5))).collect();
        assert!(lsh_candidates(&sigs).contains(&(7, 300)));
        // Beyond 2,000 documents the clustering goes through signatures.
        while many.len() < 2100 {
            many.push(
                (0..80)
                    .map(|_| char::from(b'a' + rng.below(26) as u8))
                    .collect(),
            );
        }
        let big: Vec<&str> = many.iter().map(String::as_str).collect();
        let big_ids: Vec<String> = (0..many.len()).map(|i| format!("d{i}")).collect();
        let id_refs: Vec<&str> = big_ids.iter().map(String::as_str).collect();
        let u = Units::near_duplicates(&id_refs, &big, 5, 0.7).unwrap();
        assert_eq!(u.n_units(), 2099);
        assert_eq!(u.unit_of(7), u.unit_of(300));
        assert_eq!(u.names()[u.unit_of(7)], "cluster:d7");
        assert!(Units::near_duplicates(&ids, &refs, 0, 0.5).is_err());
    }
}
