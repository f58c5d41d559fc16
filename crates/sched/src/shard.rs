//! Shards: which models a process trains when several share one directory.

use crate::error::{Error, Result};

/// Shard `index` of `count`: the models with `model % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0 ≤ index < count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// Check `index < count` and `count ≥ 1`.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] naming the bad values.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(Error::InvalidSetting {
                setting: "shard",
                value: format!("{index}/{count}"),
                expected: "an index below the count",
            });
        }
        Ok(Self { index, count })
    }

    /// Whether model `i` belongs to this shard.
    pub fn contains(&self, i: usize) -> bool {
        i % self.count == self.index
    }

    /// The shard given by a cluster engine's environment, if any:
    /// Slurm job arrays (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN`
    /// of `SLURM_ARRAY_TASK_COUNT`), or Kubernetes Indexed Jobs
    /// (`JOB_COMPLETION_INDEX` of `shards`, which the Job spec must give,
    /// e.g. `--shards $(COMPLETIONS)`).
    ///
    /// # Errors
    /// [`Error::ShardVariable`] for unparsable or inconsistent variables.
    pub fn from_env(shards: Option<usize>) -> Result<Option<Self>> {
        Self::from_vars(|k| std::env::var(k).ok(), shards)
    }

    /// As [`Shard::from_env`], reading variables through `get`.
    ///
    /// # Errors
    /// As [`Shard::from_env`].
    pub fn from_vars(
        get: impl Fn(&str) -> Option<String>,
        shards: Option<usize>,
    ) -> Result<Option<Self>> {
        let num = |k: &'static str| -> Result<Option<usize>> {
            match get(k) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| Error::ShardVariable {
                        variable: k,
                        value: v,
                        problem: "not a number",
                    }),
            }
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count =
                match (shards, num("SLURM_ARRAY_TASK_COUNT")?) {
                    (Some(n), _) | (None, Some(n)) => n,
                    (None, None) => return Err(Error::ShardVariable {
                        variable: "SLURM_ARRAY_TASK_ID",
                        value: id.to_string(),
                        problem:
                            "set, but SLURM_ARRAY_TASK_COUNT is not: the shard count must be given",
                    }),
                };
            let index = id.checked_sub(min).ok_or_else(|| Error::ShardVariable {
                variable: "SLURM_ARRAY_TASK_ID",
                value: id.to_string(),
                problem: "below SLURM_ARRAY_TASK_MIN",
            })?;
            return Self::new(index, count).map(Some);
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = shards.ok_or_else(|| Error::ShardVariable {
                variable: "JOB_COMPLETION_INDEX",
                value: index.to_string(),
                problem: "set, but no shard count was given (the Job's completions)",
            })?;
            return Self::new(index, count).map(Some);
        }
        Ok(None)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Parse {
            what: "shard",
            input: s.to_string(),
            expected: "I/N, e.g. 0/4",
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let parse = |x: &str| x.trim().parse::<usize>().map_err(|_| bad());
        Shard::new(parse(i)?, parse(n)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(a, _)| *a == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn parse_and_membership() {
        let s: Shard = "1/3".parse().unwrap();
        assert_eq!(s, Shard { index: 1, count: 3 });
        assert!(s.contains(4) && !s.contains(3));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }

    #[test]
    fn cluster_environments() {
        let slurm = vars(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::from_vars(slurm, None).unwrap(),
            Some(Shard { index: 2, count: 4 })
        );
        // 1-based arrays (--array=1-4).
        let slurm = vars(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::from_vars(slurm, None).unwrap(),
            Some(Shard { index: 3, count: 4 })
        );
        let k8s = vars(&[("JOB_COMPLETION_INDEX", "5")]);
        assert_eq!(
            Shard::from_vars(&k8s, Some(8)).unwrap(),
            Some(Shard { index: 5, count: 8 })
        );
        assert!(Shard::from_vars(&k8s, None)
            .unwrap_err()
            .to_string()
            .contains("no shard count"));
        assert_eq!(Shard::from_vars(vars(&[]), None).unwrap(), None);
        assert!(Shard::from_vars(vars(&[("JOB_COMPLETION_INDEX", "x")]), Some(2)).is_err());
    }
}
