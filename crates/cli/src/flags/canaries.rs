//! `cfmem run --canaries N[:FORMAT[:COPIES]]`: random canaries planted in a
//! new corpus, with the exposure settings that rank them.

use anyhow::{bail, Context, Result};
use cfmem_core::Corpus;
use cfmem_sched::UnitSpec;

/// `--canaries N[:FORMAT[:COPIES]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CanarySpec {
    n: usize,
    format: cfmem_core::CanaryFormat,
    copies: usize,
}

impl std::str::FromStr for CanarySpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let mut parts = s.splitn(3, ':');
        let n = parts.next().unwrap_or_default();
        let n: usize =
            n.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                format!("--canaries {s:?}: N must be a positive number of canaries")
            })?;
        let format = parts.next().unwrap_or("hex32").parse()?;
        let copies = match parts.next() {
            None => 1,
            Some(c) => c
                .parse()
                .ok()
                .filter(|&c| (1..=1000).contains(&c))
                .ok_or_else(|| {
                    format!(
                        "--canaries {s:?}: COPIES must be a number of insertions from 1 to 1000"
                    )
                })?,
        };
        Ok(Self { n, format, copies })
    }
}

impl CanarySpec {
    fn config(&self, seed: u64) -> cfmem_core::CanaryConfig {
        cfmem_core::CanaryConfig {
            n_random: self.n,
            n_controls: 0,
            format: self.format,
            seed,
            copies: self.copies,
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

    /// The units of removal with these canaries, given the units asked
    /// for (`None`: the stored or default ones, `stored`). A canary planted
    /// more than once must go in and out of each model whole: its copies
    /// share a group, so the units are the group field (which the corpus
    /// before planting must not already use unasked: `grouped` is its first
    /// document with a group), or near-duplicate clusters (identical copies
    /// are one).
    pub(super) fn units(
        &self,
        asked: Option<&UnitSpec>,
        stored: Option<&UnitSpec>,
        grouped: Option<&str>,
    ) -> Result<Option<UnitSpec>> {
        if self.copies == 1 {
            return Ok(asked.cloned());
        }
        let asked_documents = asked.is_some_and(UnitSpec::is_documents);
        match asked.or(stored) {
            None | Some(UnitSpec::Documents) if !asked_documents => {
                if let Some(d) = grouped {
                    bail!(
                        "--canaries with {} copies removes each canary's copies together as a group (--units group), \
                         but the corpus has group fields of its own (document {:?}); give --units group to remove those groups too",
                        self.copies,
                        d
                    );
                }
                Ok(Some(UnitSpec::GroupField))
            }
            Some(u @ (UnitSpec::GroupField | UnitSpec::NearDuplicates { .. })) => {
                Ok(Some(u.clone()))
            }
            _ => bail!(
                "--canaries with {} copies needs units that keep a canary's copies together: \
                 --units group (the default with copies) or near-dup",
                self.copies
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfmem_core::Document;

    #[test]
    fn parses_count_format_and_copies() {
        let s: CanarySpec = "8".parse().unwrap();
        assert_eq!(
            (s.n, s.format.to_string(), s.copies),
            (8, "hex32".into(), 1)
        );
        let s: CanarySpec = "4:digits6:3".parse().unwrap();
        assert_eq!(
            (s.n, s.format.to_string(), s.copies),
            (4, "digits6".into(), 3)
        );
        for bad in ["0", "x", "4:octal2", "4:hex8:0", "4:hex8:y", "4:hex8:1001"] {
            assert!(bad.parse::<CanarySpec>().is_err(), "{bad}");
        }
        let err = "4:hex8:0".parse::<CanarySpec>().unwrap_err();
        assert!(err.contains("COPIES"), "{err}");
    }

    #[test]
    fn copies_keep_each_canary_whole() {
        let plain =
            Corpus::from_documents(vec![Document::new("a", "x"), Document::new("b", "y")]).unwrap();
        let grouped = Some("a");
        let one: CanarySpec = "2".parse().unwrap();
        let three: CanarySpec = "2:hex8:3".parse().unwrap();
        let contains = UnitSpec::Contains { text: "x".into() };
        // One copy: the units are what was asked.
        assert_eq!(one.units(None, None, grouped).unwrap(), None);
        assert_eq!(
            one.units(Some(&contains), None, None).unwrap(),
            Some(contains.clone())
        );
        // Copies: the group field, or near-duplicates when asked.
        assert_eq!(
            three.units(None, None, None).unwrap(),
            Some(UnitSpec::GroupField)
        );
        assert_eq!(
            three.units(None, Some(&UnitSpec::Documents), None).unwrap(),
            Some(UnitSpec::GroupField)
        );
        // Asked for documents: the copies would be separate units.
        assert!(three.units(Some(&UnitSpec::Documents), None, None).is_err());
        assert_eq!(
            three
                .units(None, Some(&UnitSpec::GroupField), grouped)
                .unwrap(),
            Some(UnitSpec::GroupField)
        );
        let nd: UnitSpec = "near-dup".parse().unwrap();
        assert_eq!(three.units(Some(&nd), None, None).unwrap(), Some(nd));
        let err = three.units(None, None, grouped).unwrap_err().to_string();
        assert!(
            err.contains("--units group") && err.contains("\"a\""),
            "{err}"
        );
        let err = three
            .units(Some(&contains), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 copies"), "{err}");
        // The planted corpus: each canary three times in its group.
        let c = three.plant(plain, 0).unwrap();
        assert_eq!(c.documents().len(), 2 + 6);
        assert_eq!(c.documents()[2].group.as_deref(), Some("canary-random-00"));
        assert_eq!(c.documents()[4].text, c.documents()[2].text);
    }
}
