//! From memorization to generalization: removal by selection functions of
//! growing breadth (a document, its near-duplicate cluster, its topic), all
//! estimated from one set of models whose removed mass is held fixed.
//!
//! A [`Spectrum`] is a hierarchy of partitions of the documents, finest
//! first: level 0 is the documents themselves, and every unit of a level is
//! a union of units of the level below (levels that are not nested are made
//! so, [`Units::nested_in`]). Under a budget design
//! ([`crate::DesignKind::Budget`]) each model leaves out exactly the same
//! number of documents, as whole units of every level drawn in one random
//! order ([`Spectrum::row`]). Then for a document `x` and a level `l`:
//!
//! ```text
//! in(x)      : x is in the model's training set
//! out_l(x)   : every document of U_l(x) is out, and U_p(x) is not all out,
//!              p the first level above l whose unit of x is larger (none at the top)
//! mem_l(x)   = E[ M(x) | in(x) ] − E[ M(x) | out_l(x) ]
//! ```
//!
//! `mem_0` is the usual memorization of `x` with its near-duplicates and
//! its topic present as the design draws them; `mem_l` removes the whole
//! unit instead, holding its parent in. Both sides remove the same number
//! of documents: what the out-side removes as `U_l(x)` the in-side removes
//! elsewhere, so that a broad selection is not confounded with a smaller
//! training set. The mass a level's contrast takes out is the mean, over
//! the in-models, of `U_l(x)`'s documents (and tokens) they hold (the
//! out-models hold none); the effect per removed token divides by it.
//!
//! Models are drawn independently, so each contrast gets Welch's error,
//! and a level's mean over documents the jackknife over models of
//! [`crate::contrast`] (`tests/coverage_spectrum.rs` checks both).

use crate::design::{problems, CoverageProblem, Design, DesignKind};
use crate::error::{DesignProblem, Error, Result};
use crate::units::Units;
use cfmem_hash::hash_words;

mod estimate;

pub use estimate::{
    spectrum, DocSpectrum, KindSpectrum, LevelEstimate, LevelSummary, SpectrumReport,
};

/// The most levels above the documents.
pub const MAX_LEVELS: usize = 8;

/// The design's random order of units: unit `unit` of level `level` for
/// model `model` (level 0 alone gives the flat budget design's order).
pub(crate) fn walk_key(seed: u64, model: usize, level: usize, unit: usize) -> u64 {
    hash_words(&[seed, 5, model as u64, level as u64, unit as u64])
}

/// Nested partitions of the documents, finest first (level 0: each
/// document alone).
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    names: Vec<String>,
    levels: Vec<Units>,
    members: Vec<Vec<Vec<usize>>>,
    /// Per level and unit: the first level above whose unit is larger.
    parent: Vec<Vec<Option<usize>>>,
    /// The distinct units `(level, unit)`: a unit equal to the one below
    /// it is walked once, at its finest level.
    walk: Vec<(usize, usize)>,
}

impl Spectrum {
    /// The spectrum of `levels` (name and units, finest first) above the
    /// documents `ids`: each level made whole inside the next
    /// ([`Units::nested_in`], the name's part before `:` naming new units).
    ///
    /// # Errors
    /// [`Error::InvalidDesign`] for no level or more than [`MAX_LEVELS`],
    /// or a level whose units are not a partition of the documents.
    pub fn new(ids: &[&str], levels: Vec<(String, Units)>) -> Result<Self> {
        if levels.is_empty() || levels.len() > MAX_LEVELS {
            return Err(Error::InvalidDesign(DesignProblem::SpectrumLevels {
                got: levels.len(),
                max: MAX_LEVELS,
            }));
        }
        if let Some((name, units)) = levels.iter().find(|(_, u)| !u.partitions(ids.len())) {
            return Err(Error::InvalidDesign(DesignProblem::SpectrumUnits {
                level: name.clone(),
                docs: units.n_docs(),
                expected: ids.len(),
            }));
        }
        let mut names = vec!["document".to_string()];
        let mut nested = vec![Units::singletons(ids)];
        for (name, units) in levels {
            let prefix = name.split(':').next().unwrap_or("unit").to_string();
            let below = nested.last().map_or(Units::singletons(ids), Clone::clone);
            nested.push(below.nested_in(&units, ids, &prefix));
            names.push(name);
        }
        let members: Vec<Vec<Vec<usize>>> = nested.iter().map(Units::all_members).collect();
        let size = |l: usize, u: usize| members[l][u].len();
        let parent = (0..nested.len())
            .map(|l| {
                (0..nested[l].n_units())
                    .map(|u| {
                        let d = members[l][u][0];
                        (l + 1..nested.len()).find(|&p| size(p, nested[p].unit_of(d)) > size(l, u))
                    })
                    .collect()
            })
            .collect();
        let mut walk = Vec::new();
        for (l, units) in nested.iter().enumerate() {
            for u in 0..units.n_units() {
                let d = members[l][u][0];
                if l == 0 || size(l, u) > size(l - 1, nested[l - 1].unit_of(d)) {
                    walk.push((l, u));
                }
            }
        }
        Ok(Self {
            names,
            levels: nested,
            members,
            parent,
            walk,
        })
    }

    /// Levels, the documents included.
    pub fn n_levels(&self) -> usize {
        self.levels.len()
    }

    /// Documents.
    pub fn n_docs(&self) -> usize {
        self.levels[0].n_docs()
    }

    /// Level names (`document` first).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The (nested) units of level `l`.
    pub fn level(&self, l: usize) -> &Units {
        &self.levels[l]
    }

    /// The documents of `d`'s unit at level `l`.
    pub fn unit_members(&self, l: usize, d: usize) -> &[usize] {
        &self.members[l][self.levels[l].unit_of(d)]
    }

    /// Whether `d`'s unit at level `l` is the same set as at level `l − 1`.
    pub fn same_as_below(&self, l: usize, d: usize) -> bool {
        l > 0 && self.same_set(l - 1, l, d)
    }

    /// Whether `d`'s units at levels `a` and `b` are the same set (the
    /// levels are nested, so the same size is the same set).
    pub fn same_set(&self, a: usize, b: usize, d: usize) -> bool {
        self.unit_members(a, d).len() == self.unit_members(b, d).len()
    }

    /// How many documents each model of `design` leaves out, checked
    /// against the units: every unit must fit in it.
    ///
    /// # Errors
    /// [`Error::InvalidDesign`] for a design that is not a budget design
    /// or a budget that is 0 or every document, and
    /// [`DesignProblem::UnitOverBudget`] for the first (largest) unit that
    /// does not fit.
    pub fn budget(&self, design: &Design) -> Result<usize> {
        let cfg = design.config();
        let DesignKind::Budget { fraction } = cfg.kind else {
            return Err(Error::InvalidDesign(DesignProblem::SpectrumDesign));
        };
        let budget = cfg.budget_docs(self.n_docs())?.unwrap_or(0);
        let largest = self
            .walk
            .iter()
            .max_by_key(|&&(l, u)| (self.members[l][u].len(), std::cmp::Reverse((l, u))));
        if let Some(&(l, u)) = largest {
            let docs = self.members[l][u].len();
            if docs > budget {
                return Err(Error::InvalidDesign(DesignProblem::UnitOverBudget {
                    level: self.names[l].clone(),
                    unit: self.levels[l].names()[u].clone(),
                    docs,
                    budget,
                    fraction,
                }));
            }
        }
        Ok(budget)
    }

    /// Model `model`'s copies of every document (0 or 1): a pure function
    /// of `(seed, model)` and the units. The distinct units of every level
    /// are taken in an order drawn from `(seed, model, level, unit)`, and
    /// each one whose documents still fit in the budget is removed whole,
    /// until exactly the budget's documents are out (the documents, level
    /// 0, are units too, so it always fills). With equal chances per unit
    /// and every level covering the corpus, each level takes about an
    /// equal share of the budget. Other designs give their row over the
    /// documents.
    pub fn row(&self, design: &Design, model: usize) -> Vec<u32> {
        let n = self.n_docs();
        let cfg = design.config();
        let DesignKind::Budget { fraction } = cfg.kind else {
            return design.row(model, n);
        };
        let budget = ((fraction * n as f64).round() as usize).min(n);
        let mut order: Vec<(u64, usize, usize)> = self
            .walk
            .iter()
            .map(|&(l, u)| (walk_key(cfg.seed, model, l, u), l, u))
            .collect();
        order.sort_unstable();
        let mut row = vec![1u32; n];
        let mut out = 0;
        for (_, l, u) in order {
            if out == budget {
                break;
            }
            let docs = &self.members[l][u];
            let new = docs.iter().filter(|&&d| row[d] > 0).count();
            if out + new <= budget {
                for &d in docs {
                    row[d] = 0;
                }
                out += new;
            }
        }
        row
    }

    /// The documents that models `0..n_models` of `design` leave without
    /// a model on one side, a row at a time (memory O(documents)).
    pub fn coverage_problems(&self, design: &Design, n_models: usize) -> Vec<CoverageProblem> {
        let mut n_in = vec![0usize; self.n_docs()];
        for i in 0..n_models {
            for (k, &c) in n_in.iter_mut().zip(&self.row(design, i)) {
                *k += usize::from(c > 0);
            }
        }
        problems(&n_in, n_models)
    }

    /// Which side of level `l`'s contrast each document is on in a model
    /// with `copies`: 1 in, 0 out (its unit out, the parent not all out),
    /// 2 neither; and per level and unit, the documents and tokens present.
    pub(crate) fn sides(&self, copies: &[u32], tokens: &[usize]) -> Sides {
        let present: Vec<Vec<(usize, usize)>> = self
            .members
            .iter()
            .map(|units| {
                units
                    .iter()
                    .map(|docs| {
                        docs.iter()
                            .filter(|&&d| copies[d] > 0)
                            .fold((0, 0), |(n, t), &d| (n + 1, t + tokens[d]))
                    })
                    .collect()
            })
            .collect();
        let code = (0..self.n_levels())
            .map(|l| {
                (0..self.n_docs())
                    .map(|d| {
                        let u = self.levels[l].unit_of(d);
                        if copies[d] > 0 {
                            return 1;
                        }
                        let kept = |p: usize| present[p][self.levels[p].unit_of(d)].0 > 0;
                        let parent_kept = self.parent[l][u].is_none_or(kept);
                        if present[l][u].0 == 0 && parent_kept {
                            0
                        } else {
                            2
                        }
                    })
                    .collect()
            })
            .collect();
        Sides { code, present }
    }
}

/// One model's sides ([`Spectrum::sides`]).
pub(crate) struct Sides {
    /// Per level and document: 1 in, 0 out, 2 neither.
    pub(crate) code: Vec<Vec<u32>>,
    /// Per level and unit: the documents and tokens present.
    pub(crate) present: Vec<Vec<(usize, usize)>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::DesignConfig;

    /// 12 documents: pairs (clusters) inside triples of pairs (topics).
    fn toy() -> (Vec<String>, Spectrum) {
        let ids: Vec<String> = (0..12).map(|i| format!("d{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let pair: Vec<Option<String>> = (0..12).map(|d| Some(format!("{}", d / 2))).collect();
        let pair: Vec<Option<&str>> = pair.iter().map(Option::as_deref).collect();
        let topic: Vec<Option<String>> = (0..12).map(|d| Some(format!("{}", d / 6))).collect();
        let topic: Vec<Option<&str>> = topic.iter().map(Option::as_deref).collect();
        let s = Spectrum::new(
            &refs,
            vec![
                ("pair".into(), Units::labelled(&refs, &pair, "pair")),
                ("topic".into(), Units::labelled(&refs, &topic, "topic")),
            ],
        )
        .unwrap();
        (ids, s)
    }

    #[test]
    fn rows_remove_exactly_the_budget_in_whole_units_and_are_pure() {
        let (_, s) = toy();
        let design = DesignConfig {
            kind: DesignKind::Budget { fraction: 0.5 },
            seed: 4,
        }
        .checked()
        .unwrap();
        assert_eq!(s.budget(&design).unwrap(), 6);
        let mut topic_out = 0;
        for i in 0..400 {
            let row = s.row(&design, i);
            assert_eq!(row.iter().filter(|&&c| c == 0).count(), 6, "model {i}");
            assert_eq!(row, s.row(&design, i));
            // Whole topics out now and then.
            topic_out += usize::from(row[..6].iter().all(|&c| c == 0));
        }
        // Every level gets about an equal share of the budget: a topic is
        // out far from never and far from always.
        assert!((20..300).contains(&topic_out), "{topic_out}");
        // A budget that a topic does not fit in is refused by name.
        let small = DesignConfig {
            kind: DesignKind::Budget { fraction: 0.25 },
            seed: 4,
        }
        .checked()
        .unwrap();
        let err = s.budget(&small).unwrap_err().to_string();
        assert!(
            err.contains("topic:0") && err.contains("6 documents"),
            "{err}"
        );
    }

    #[test]
    fn sides_follow_the_definition() {
        let (_, s) = toy();
        let tokens = vec![10; 12];
        // d0 out with its pair (d1) out, the topic's other pairs partly in.
        let mut copies = vec![1u32; 12];
        copies[0] = 0;
        copies[1] = 0;
        copies[2] = 0;
        let sides = s.sides(&copies, &tokens);
        // d0: level 0 out? its pair (parent at level 1) is all out: neither.
        assert_eq!(sides.code[0][0], 2);
        // Level 1: pair out, topic not all out: out.
        assert_eq!(sides.code[1][0], 0);
        // Level 2: topic not all out: neither.
        assert_eq!(sides.code[2][0], 2);
        // d2 alone out, its pair partner d3 in: out at level 0 only.
        assert_eq!(sides.code[0][2], 0);
        assert_eq!(sides.code[1][2], 2);
        // d4 in at every level; its pair holds 2 documents, 20 tokens.
        assert!((0..3).all(|l| sides.code[l][4] == 1));
        assert_eq!(sides.present[1][s.level(1).unit_of(4)], (2, 20));
        assert_eq!(sides.present[2][s.level(2).unit_of(4)], (3, 30));
    }

    #[test]
    fn levels_equal_to_the_one_below_share_it() {
        let ids = ["a", "b", "c"];
        let near = Units::labelled(&ids, &[Some("x"), Some("x"), None], "cluster");
        let s = Spectrum::new(&ids, vec![("near-dup".into(), near.clone())]).unwrap();
        assert!(s.same_as_below(1, 2));
        assert!(!s.same_as_below(1, 0));
        // c is walked once, as a document.
        assert_eq!(s.walk, vec![(0, 0), (0, 1), (0, 2), (1, 0)]);
        assert!(Spectrum::new(&ids, vec![]).is_err());
        // Units of other documents are refused, not indexed past their end.
        let short = Units::singletons(&ids[..2]);
        let err = Spectrum::new(&ids, vec![("short".into(), short)]).unwrap_err();
        assert!(err.to_string().contains("level short"), "{err}");
    }

    #[test]
    fn non_nested_levels_are_made_nested() {
        let ids = ["a", "b", "c", "d"];
        // Clusters {a, b}, {c, d}; topics {a, c, d}, {b}: b joins a's topic.
        let clusters = Units::labelled(
            &ids,
            &[Some("1"), Some("1"), Some("2"), Some("2")],
            "cluster",
        );
        let topics = Units::labelled(&ids, &[Some("t"), None, Some("t"), Some("t")], "topic");
        let s = Spectrum::new(
            &ids,
            vec![("near-dup".into(), clusters), ("topic:1".into(), topics)],
        )
        .unwrap();
        assert!(s.level(1).is_nested_in(s.level(2)));
        assert_eq!(s.level(2).n_units(), 1);
        assert_eq!(s.level(2).names(), &["topic:t"]);
    }
}
