//! Membership designs: which units each model trains on, and how many times.

use serde::{Deserialize, Serialize};

use crate::error::{DesignProblem, Error, Result};
use cfmem_hash::{hash_words, unit_f64, SplitMix64};

/// The most copies per epoch a design may give a unit.
pub const MAX_COPIES: u32 = u16::MAX as u32;

/// How units are assigned to models.
///
/// | kind | parameter | meaning |
/// |---|---|---|
/// | `Bernoulli { p }` | `0 < p < 1` | unit `j` is in model `i` iff `hash(seed, i, j) < p`: independent coins |
/// | `Blocks { b }` | `b ≥ 2` | models come in blocks of `b`; each block splits the units into `b` disjoint parts and model `k` of the block trains on part `k` |
///
/// | `Repetition { copies, probs }` | `probs` sum to 1, one level is 0 | unit `j` gets `copies[l]` copies per epoch with probability `probs[l]` (graded inclusion) |
/// | `Budget { fraction }` | `0 < fraction < 1` | every model leaves out exactly `round(fraction · n)` of the `n` units (documents), drawn at random; over a [`crate::Spectrum`], whole units of every level until that many documents are out |
///
/// `Blocks { b: 2 }` gives complementary halves (as LiRA's balanced keep
/// masks), `Blocks { b: 4 }` gives Zhang et al.'s 25 % subsets with exact
/// balance in every complete block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DesignKind {
    /// Independent inclusion with probability `p`.
    Bernoulli {
        /// Inclusion probability.
        p: f64,
    },
    /// Exactly balanced blocks of `b` models with disjoint parts.
    Blocks {
        /// Models per block (= number of parts).
        b: usize,
    },
    /// Graded inclusion: `copies[l]` copies per epoch with probability `probs[l]`.
    Repetition {
        /// Copy counts, e.g. `[0, 1, 2, 4]` (one of them 0).
        copies: Vec<u32>,
        /// Their probabilities (summing to 1).
        probs: Vec<f64>,
    },
    /// A fixed number left out: every model removes the same number of
    /// documents (the removal budget), as whole units of a
    /// [`crate::Spectrum`]'s levels when there is one.
    Budget {
        /// The fraction of the documents each model leaves out.
        fraction: f64,
    },
}

/// A membership design: a [`DesignKind`] and a seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesignConfig {
    /// The assignment rule.
    pub kind: DesignKind,
    /// Seed of the design's hash; with the model and unit index it fixes
    /// every membership.
    pub seed: u64,
}

impl Default for DesignConfig {
    fn default() -> Self {
        Self {
            kind: DesignKind::Blocks { b: 2 },
            seed: 0,
        }
    }
}

impl DesignConfig {
    /// Bernoulli design with inclusion probability `p`.
    pub fn bernoulli(p: f64, seed: u64) -> Self {
        Self {
            kind: DesignKind::Bernoulli { p },
            seed,
        }
    }

    /// Block design with `b` models per block.
    pub fn blocks(b: usize, seed: u64) -> Self {
        Self {
            kind: DesignKind::Blocks { b },
            seed,
        }
    }

    /// Repetition design: `copies[l]` with probability `probs[l]`.
    pub fn repetition(copies: Vec<u32>, probs: Vec<f64>, seed: u64) -> Self {
        Self {
            kind: DesignKind::Repetition { copies, probs },
            seed,
        }
    }

    /// Validate the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidProbability`] for `p` outside (0, 1),
    /// [`Error::InvalidDesign`] for `b < 2` or a repetition design whose
    /// probabilities do not sum to 1 or that has no 0-copies level.
    pub fn check(&self) -> Result<()> {
        match self.kind {
            DesignKind::Repetition {
                ref copies,
                ref probs,
            } => {
                let bad = |p: DesignProblem| Err(Error::InvalidDesign(p));
                if copies.len() != probs.len() || copies.len() < 2 {
                    return bad(DesignProblem::RepetitionLevels {
                        levels: copies.len(),
                        probabilities: probs.len(),
                    });
                }
                if !copies.contains(&0) {
                    return bad(DesignProblem::NoBaseline);
                }
                if let Some(p) = probs.iter().find(|p| !(**p >= 0.0 && p.is_finite())) {
                    return Err(Error::InvalidProbability(*p));
                }
                let total: f64 = probs.iter().sum();
                if (total - 1.0).abs() > 1e-9 {
                    return bad(DesignProblem::ProbabilitySum(total));
                }
                let mut sorted = copies.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if sorted.len() != copies.len() {
                    return bad(DesignProblem::RepeatedLevel);
                }
                if let Some(&c) = copies.iter().find(|&&c| c > MAX_COPIES) {
                    return bad(DesignProblem::TooManyCopies {
                        copies: c,
                        max: MAX_COPIES,
                    });
                }
            }
            DesignKind::Bernoulli { p } => {
                if !(p > 0.0 && p < 1.0) {
                    return Err(Error::InvalidProbability(p));
                }
            }
            DesignKind::Blocks { b } => {
                if b < 2 {
                    return Err(Error::InvalidDesign(DesignProblem::BlockSize(b)));
                }
            }
            DesignKind::Budget { fraction } => {
                if !(fraction > 0.0 && fraction < 1.0) {
                    return Err(Error::InvalidDesign(DesignProblem::Budget(fraction)));
                }
            }
        }
        Ok(())
    }

    /// Expected fraction of units that a model includes.
    pub fn inclusion_rate(&self) -> f64 {
        match self.kind {
            DesignKind::Bernoulli { p } => p,
            DesignKind::Blocks { b } => 1.0 / b as f64,
            DesignKind::Repetition {
                ref copies,
                ref probs,
            } => copies
                .iter()
                .zip(probs)
                .filter(|(c, _)| **c > 0)
                .map(|(_, p)| p)
                .sum(),
            DesignKind::Budget { fraction } => 1.0 - fraction,
        }
    }

    /// A budget design over `n` documents: how many each model leaves out,
    /// `round(fraction · n)` (`None` for other designs).
    ///
    /// # Errors
    /// [`Error::InvalidDesign`] when that is 0 or `n`.
    pub fn budget_docs(&self, n: usize) -> Result<Option<usize>> {
        let DesignKind::Budget { fraction } = self.kind else {
            return Ok(None);
        };
        let removed = (fraction * n as f64).round() as usize;
        if removed == 0 || removed >= n {
            return Err(Error::InvalidDesign(DesignProblem::BudgetSize {
                fraction,
                removed,
                docs: n,
            }));
        }
        Ok(Some(removed))
    }

    /// The block size for split-half analyses (1 for designs without blocks).
    pub fn block_size(&self) -> usize {
        match self.kind {
            DesignKind::Blocks { b } => b,
            _ => 1,
        }
    }

    /// The design, checked: what draws rows.
    ///
    /// # Errors
    /// As [`DesignConfig::check`].
    pub fn checked(&self) -> Result<Design> {
        self.check()?;
        Ok(Design(self.clone()))
    }
}

/// A checked [`DesignConfig`] ([`DesignConfig::checked`]): its rows cannot
/// fail.
#[derive(Debug, Clone, PartialEq)]
pub struct Design(DesignConfig);

impl Design {
    /// The settings it was checked from.
    pub fn config(&self) -> &DesignConfig {
        &self.0
    }

    /// Expected fraction of units that a model includes.
    pub fn inclusion_rate(&self) -> f64 {
        self.0.inclusion_rate()
    }

    /// The block size for split-half analyses (1 for designs without blocks).
    pub fn block_size(&self) -> usize {
        self.0.block_size()
    }

    /// The copies (0 or 1) of every unit for model `model`: a pure function of
    /// `(seed, model, n_units)`.
    ///
    pub fn row(&self, model: usize, n_units: usize) -> Vec<u32> {
        let cfg = &self.0;
        match cfg.kind {
            DesignKind::Repetition {
                ref copies,
                ref probs,
            } => (0..n_units)
                .map(|j| {
                    let u = unit_f64(hash_words(&[cfg.seed, 3, model as u64, j as u64]));
                    let mut acc = 0.0;
                    for (c, p) in copies.iter().zip(probs) {
                        acc += p;
                        if u < acc {
                            return *c;
                        }
                    }
                    *copies.last().unwrap_or(&0)
                })
                .collect(),
            DesignKind::Bernoulli { p } => (0..n_units)
                .map(|j| {
                    let h = hash_words(&[cfg.seed, 1, model as u64, j as u64]);
                    u32::from(unit_f64(h) < p)
                })
                .collect(),
            DesignKind::Budget { fraction } => {
                let removed = ((fraction * n_units as f64).round() as usize).min(n_units);
                let mut order: Vec<(u64, usize)> = (0..n_units)
                    .map(|j| (crate::spectrum::walk_key(cfg.seed, model, 0, j), j))
                    .collect();
                order.sort_unstable();
                let mut row = vec![1u32; n_units];
                for &(_, j) in &order[..removed] {
                    row[j] = 0;
                }
                row
            }
            DesignKind::Blocks { b } => {
                let block = model / b;
                let part = model % b;
                let perm = block_permutation(cfg.seed, block, n_units);
                let mut row = vec![0u32; n_units];
                for (pos, &unit) in perm.iter().enumerate() {
                    if pos % b == part {
                        row[unit] = 1;
                    }
                }
                row
            }
        }
    }

    /// The units that models `0..n_models` leave without a model on one
    /// side, computed a row at a time (memory O(units), not models × units).
    pub fn coverage_problems(&self, n_models: usize, n_units: usize) -> Vec<CoverageProblem> {
        let mut n_in = vec![0usize; n_units];
        for i in 0..n_models {
            for (k, &c) in n_in.iter_mut().zip(&self.row(i, n_units)) {
                *k += usize::from(c > 0);
            }
        }
        problems(&n_in, n_models)
    }

    /// The membership matrix of models `0..n_models`.
    pub fn membership(&self, n_models: usize, n_units: usize) -> Membership {
        let mut data = Vec::with_capacity(n_models * n_units);
        for i in 0..n_models {
            data.extend(self.row(i, n_units));
        }
        Membership {
            n_models,
            n_units,
            data,
        }
    }
}

/// The seeded permutation of the units used by block `block`
/// (Fisher–Yates driven by SplitMix64).
fn block_permutation(seed: u64, block: usize, n_units: usize) -> Vec<usize> {
    let mut rng = SplitMix64::new(hash_words(&[seed, 2, block as u64]));
    let mut perm: Vec<usize> = (0..n_units).collect();
    for i in (1..n_units).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    perm
}

/// The units whose in-count `n_in[j]` out of `n_models` leaves a side empty.
pub(crate) fn problems(n_in: &[usize], n_models: usize) -> Vec<CoverageProblem> {
    n_in.iter()
        .enumerate()
        .filter(|&(_, &k)| k == 0 || k == n_models)
        .map(|(unit, &k)| CoverageProblem {
            unit,
            n_in: k,
            n_out: n_models - k,
        })
        .collect()
}

/// A membership matrix: model `i` × unit `j` → copies (0 = excluded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    n_models: usize,
    n_units: usize,
    data: Vec<u32>,
}

/// A unit that some side of the comparison never sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageProblem {
    /// The unit's index.
    pub unit: usize,
    /// Models that include it.
    pub n_in: usize,
    /// Models that exclude it.
    pub n_out: usize,
}

impl std::fmt::Display for CoverageProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = if self.n_in == 0 {
            "includes"
        } else {
            "excludes"
        };
        write!(
            f,
            "unit {}: no model {side} it (n_in = {}, n_out = {}), so it will have no estimate",
            self.unit, self.n_in, self.n_out
        )
    }
}

impl Membership {
    /// A membership matrix from row-major data.
    ///
    /// # Errors
    /// [`Error::RowLength`] if `data.len() != n_models * n_units`.
    pub fn from_rows(n_models: usize, n_units: usize, data: Vec<u32>) -> Result<Self> {
        if data.len() != n_models * n_units {
            return Err(Error::RowLength {
                model: data.len() / n_units.max(1),
                got: data.len(),
                expected: n_models * n_units,
            });
        }
        Ok(Self {
            n_models,
            n_units,
            data,
        })
    }

    /// Number of models (rows).
    pub fn n_models(&self) -> usize {
        self.n_models
    }

    /// Number of units (columns).
    pub fn n_units(&self) -> usize {
        self.n_units
    }

    /// The copies of each unit in model `i`.
    pub fn row(&self, i: usize) -> &[u32] {
        &self.data[i * self.n_units..(i + 1) * self.n_units]
    }

    /// Copies of unit `j` in model `i`.
    pub fn get(&self, i: usize, j: usize) -> u32 {
        self.data[i * self.n_units + j]
    }

    /// The block size of a block design this matrix has the structure of:
    /// the smallest `b` in 2..=16 that divides the models into at least two
    /// blocks of `b` consecutive models in each of which every unit is in
    /// exactly one model (complementary halves for `b = 2`, as LiRA-style
    /// paired masks and cfmem's own block design make them); 1 when there
    /// is none (models drawn independently, or balanced per unit without
    /// blocks).
    pub fn detect_blocks(&self) -> usize {
        (2..=16)
            .filter(|&b| self.n_models.is_multiple_of(b) && self.n_models / b >= 2)
            .find(|&b| {
                (0..self.n_models / b).all(|k| {
                    (0..self.n_units)
                        .all(|j| (k * b..(k + 1) * b).filter(|&i| self.get(i, j) > 0).count() == 1)
                })
            })
            .unwrap_or(1)
    }

    /// Units that no model includes, or that every model includes: they
    /// will have no estimate.
    pub fn coverage_problems(&self) -> Vec<CoverageProblem> {
        let mut n_in = vec![0usize; self.n_units];
        for i in 0..self.n_models {
            for (k, &c) in n_in.iter_mut().zip(self.row(i)) {
                *k += usize::from(c > 0);
            }
        }
        problems(&n_in, self.n_models)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_structure_is_detected_from_the_matrix() {
        // cfmem's own block designs, and a Bernoulli one.
        for b in [2, 3, 4] {
            let m = DesignConfig::blocks(b, 9)
                .checked()
                .unwrap()
                .membership(4 * b, 50);
            assert_eq!(m.detect_blocks(), b);
        }
        let m = DesignConfig::bernoulli(0.5, 9)
            .checked()
            .unwrap()
            .membership(8, 50);
        assert_eq!(m.detect_blocks(), 1);
        // Complementary pairs but one unit broken: no blocks.
        let mut data = DesignConfig::blocks(2, 1)
            .checked()
            .unwrap()
            .membership(6, 10)
            .data;
        data[3] = 1 - data[3].min(1);
        assert_eq!(
            Membership::from_rows(6, 10, data).unwrap().detect_blocks(),
            1
        );
        // Each unit in exactly half the models: rows 0-1 and 2-3
        // complementary are pairs; the same rows in another order (as
        // LiRA's per-example balanced masks come) are not.
        let rows = [[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]];
        let data: Vec<u32> = rows.iter().flatten().copied().collect();
        let m = Membership::from_rows(4, 4, data).unwrap();
        assert_eq!(m.detect_blocks(), 2);
        let rows = [[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 1], [0, 1, 0, 1]];
        let data: Vec<u32> = rows.iter().flatten().copied().collect();
        assert_eq!(
            Membership::from_rows(4, 4, data).unwrap().detect_blocks(),
            1
        );
    }

    #[test]
    fn rows_are_pure_functions_and_growth_invariant() {
        for design in [
            DesignConfig::bernoulli(0.3, 11),
            DesignConfig::blocks(4, 11),
            DesignConfig {
                kind: DesignKind::Budget { fraction: 0.3 },
                seed: 11,
            },
        ] {
            let checked = design.checked().unwrap();
            let small = checked.membership(8, 50);
            let big = checked.membership(32, 50);
            for i in 0..8 {
                assert_eq!(small.row(i), big.row(i), "{design:?} model {i}");
                assert_eq!(checked.row(i, 50), small.row(i));
            }
            // A different seed gives a different design.
            let other = DesignConfig {
                seed: 12,
                ..design.clone()
            };
            assert_ne!(other.checked().unwrap().membership(8, 50), small);
        }
    }

    #[test]
    fn blocks_are_exactly_balanced() {
        for b in [2usize, 3, 4] {
            let n_units = 37;
            let m = DesignConfig::blocks(b, 5)
                .checked()
                .unwrap()
                .membership(5 * b, n_units);
            for block in 0..5 {
                let mut count = vec![0u32; n_units];
                let mut sizes = vec![];
                for k in 0..b {
                    let row = m.row(block * b + k);
                    sizes.push(row.iter().sum::<u32>());
                    for (j, &c) in row.iter().enumerate() {
                        count[j] += c;
                    }
                }
                // Every unit is in exactly one model of each block.
                assert!(count.iter().all(|&c| c == 1), "b={b} block={block}");
                // Part sizes differ by at most one.
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{sizes:?}");
            }
            // Blocks use different permutations.
            assert_ne!(m.row(0), m.row(b));
        }
    }

    #[test]
    fn bernoulli_rate_matches_p() {
        let m = DesignConfig::bernoulli(0.25, 1)
            .checked()
            .unwrap()
            .membership(200, 200);
        let total: u32 = (0..200).map(|i| m.row(i).iter().sum::<u32>()).sum();
        let rate = total as f64 / 40_000.0;
        // Binomial SE = sqrt(.25*.75/40000) ≈ 0.0022; allow 5 SE.
        assert!((rate - 0.25).abs() < 0.011, "{rate}");
    }

    #[test]
    fn repetition_levels_have_their_probabilities() {
        let d = DesignConfig::repetition(vec![0, 1, 2, 4], vec![0.4, 0.2, 0.2, 0.2], 3);
        let m = d.checked().unwrap().membership(100, 200);
        let mut count = [0usize; 5];
        for i in 0..100 {
            for &c in m.row(i) {
                count[c as usize] += 1;
            }
        }
        assert_eq!(count[3], 0);
        // 20,000 draws: SE of a 0.2 share ≈ 0.0028.
        assert!(
            (count[0] as f64 / 20_000.0 - 0.4).abs() < 0.015,
            "{count:?}"
        );
        assert!(
            (count[4] as f64 / 20_000.0 - 0.2).abs() < 0.015,
            "{count:?}"
        );
        assert!((d.inclusion_rate() - 0.6).abs() < 1e-12);
        assert!(DesignConfig::repetition(vec![1, 2], vec![0.5, 0.5], 0)
            .check()
            .is_err());
        assert!(DesignConfig::repetition(vec![0, 2], vec![0.5, 0.6], 0)
            .check()
            .is_err());
    }

    #[test]
    fn a_budget_leaves_out_the_same_number_in_every_model() {
        let d = DesignConfig {
            kind: DesignKind::Budget { fraction: 0.3 },
            seed: 2,
        };
        assert_eq!(d.budget_docs(50).unwrap(), Some(15));
        assert!((d.inclusion_rate() - 0.7).abs() < 1e-12);
        let m = d.checked().unwrap().membership(400, 50);
        let mut n_in = vec![0u32; 50];
        for i in 0..400 {
            assert_eq!(m.row(i).iter().filter(|&&c| c == 0).count(), 15);
            for (k, &c) in n_in.iter_mut().zip(m.row(i)) {
                *k += c;
            }
        }
        // Each document in about 70 % of the models (binomial SE ≈ 0.023).
        assert!(n_in.iter().all(|&k| (200..=360).contains(&k)), "{n_in:?}");
        // Out of range, or a budget that rounds to nothing or everything.
        for f in [0.0, 1.0, f64::NAN] {
            let bad = DesignConfig {
                kind: DesignKind::Budget { fraction: f },
                seed: 0,
            };
            assert!(bad.check().is_err(), "{f}");
        }
        assert!(d.budget_docs(1).is_err());
        let s = serde_json::to_string(&d).unwrap();
        assert_eq!(s, r#"{"kind":{"type":"budget","fraction":0.3},"seed":2}"#);
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        assert!(matches!(
            DesignConfig::bernoulli(1.0, 0).check(),
            Err(Error::InvalidProbability(p)) if p == 1.0
        ));
        assert!(DesignConfig::bernoulli(f64::NAN, 0).check().is_err());
        assert!(DesignConfig::blocks(1, 0).check().is_err());
    }

    #[test]
    fn coverage_problems_found() {
        // 2 models of a 2-block: every unit is in exactly one → no problem.
        let m = DesignConfig::blocks(2, 0)
            .checked()
            .unwrap()
            .membership(2, 10);
        assert!(m.coverage_problems().is_empty());
        // A single model: every unit is on one side only.
        let m = DesignConfig::blocks(2, 0)
            .checked()
            .unwrap()
            .membership(1, 10);
        assert_eq!(m.coverage_problems().len(), 10);
        let m = Membership::from_rows(2, 3, vec![1, 0, 1, 1, 0, 0]).unwrap();
        let p = m.coverage_problems();
        let expected = vec![
            CoverageProblem {
                unit: 0,
                n_in: 2,
                n_out: 0,
            },
            CoverageProblem {
                unit: 1,
                n_in: 0,
                n_out: 2,
            },
        ];
        assert_eq!(p, expected);
    }

    #[test]
    fn design_roundtrips_through_json() {
        let d = DesignConfig::bernoulli(0.5, 3);
        let s = serde_json::to_string(&d).unwrap();
        assert_eq!(s, r#"{"kind":{"type":"bernoulli","p":0.5},"seed":3}"#);
        assert_eq!(serde_json::from_str::<DesignConfig>(&s).unwrap(), d);
    }
}
