//! The workloads: an operation, a number of other keys, and a prepared manager that runs
//! the operation once at a time.

use std::sync::Arc;

use serde::Serialize;
use tokencache_core::{Cache, CacheKey, CacheManager, Clock, Error, GetOptions, Result};

use crate::data::{
    entry, exact_key, frozen_clock, manager, miss_key, populate, subset_key, CLEAR_SIZE, CLIENT_ID,
    SET_SCOPE, SMALL_SIZE, TARGET_AUDIENCE,
};

/// An operation of the workload set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `set` overwriting one fixed key ([`SET_SCOPE`]) with a fresh entry.
    Set,
    /// `get` of the target's exact key.
    ExactHit,
    /// `get` by a subset of the target's scopes.
    Subset,
    /// `get` at an absent audience.
    Miss,
    /// `clear(Some(CLIENT_ID))` of the populated entries.
    Clear,
    /// [`Cache::all_keys`] of the cache itself (what a lookup by scope lists on a cache
    /// that lists its keys).
    AllKeys,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 6] = [
        Op::Set,
        Op::ExactHit,
        Op::Subset,
        Op::Miss,
        Op::Clear,
        Op::AllKeys,
    ];

    /// The name of the operation, as in workload names (and in the auth0-spa-js
    /// baseline's JSON): `set`, `exact_hit`, `subset`, `miss`, `clear`, `all_keys`.
    ///
    /// ```
    /// use tokencache_workloads::Op;
    /// assert_eq!(Op::ExactHit.as_str(), "exact_hit");
    /// assert_eq!(Op::from_name("subset"), Some(Op::Subset));
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Set => "set",
            Op::ExactHit => "exact_hit",
            Op::Subset => "subset",
            Op::Miss => "miss",
            Op::Clear => "clear",
            Op::AllKeys => "all_keys",
        }
    }

    /// The operation named `name` ([`Op::as_str`]), if any.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// Whether the operation's cost depends on the number of other keys (the lookups
    /// that list keys, and `clear`).
    pub fn depends_on_size(self) -> bool {
        !matches!(self, Op::Set | Op::ExactHit)
    }
}

/// One workload: an operation and the number of other keys present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// The operation timed.
    pub op: Op,
    /// How many other entries of the client are stored besides the target.
    pub others: usize,
}

impl Workload {
    /// A workload of `op` with `others` other keys.
    pub fn new(op: Op, others: usize) -> Self {
        Workload { op, others }
    }

    /// The fixed workload set: `set`, `exact_hit` (with [`SMALL_SIZE`] other keys),
    /// `subset_N` and `all_keys_N` for each of `sizes` (the scale curves), `miss_N` for
    /// the largest size, and `clear_N` with [`CLEAR_SIZE`] entries (or the largest size,
    /// if smaller).
    ///
    /// ```
    /// use tokencache_workloads::{Workload, SUBSET_SIZES};
    /// let names: Vec<String> = Workload::standard_set(&SUBSET_SIZES).iter().map(|w| w.name()).collect();
    /// assert_eq!(names, ["set", "exact_hit", "subset_10", "subset_100", "subset_1000",
    ///                    "subset_10000", "all_keys_10", "all_keys_100", "all_keys_1000",
    ///                    "all_keys_10000", "miss_10000", "clear_100"]);
    /// ```
    pub fn standard_set(sizes: &[usize]) -> Vec<Workload> {
        let largest = sizes.iter().copied().max().unwrap_or(SMALL_SIZE);
        let mut set = vec![
            Workload::new(Op::Set, SMALL_SIZE.min(largest)),
            Workload::new(Op::ExactHit, SMALL_SIZE.min(largest)),
        ];
        set.extend(sizes.iter().map(|&n| Workload::new(Op::Subset, n)));
        set.extend(sizes.iter().map(|&n| Workload::new(Op::AllKeys, n)));
        set.push(Workload::new(Op::Miss, largest));
        set.push(Workload::new(Op::Clear, CLEAR_SIZE.min(largest)));
        set
    }

    /// The workload's name: `set`, `exact_hit`, or `<op>_<N>` for the operations whose
    /// cost depends on the number of keys.
    pub fn name(&self) -> String {
        if self.op.depends_on_size() {
            format!("{}_{}", self.op.as_str(), self.others)
        } else {
            self.op.as_str().to_owned()
        }
    }

    /// A manager over `cache`, emptied of the benchmark client's keys and populated for
    /// this workload, ready for [`Prepared::run_once`].
    pub async fn prepare(&self, cache: Arc<dyn Cache>) -> Result<Prepared> {
        self.prepare_with_clock(cache, frozen_clock()).await
    }

    /// [`Workload::prepare`] with the manager on `clock` (give the backend the same clock).
    pub async fn prepare_with_clock(
        &self,
        cache: Arc<dyn Cache>,
        clock: Arc<dyn Clock>,
    ) -> Result<Prepared> {
        let manager = manager(cache, clock)?;
        manager.clear(Some(CLIENT_ID)).await?;
        populate(&manager, self.others).await?;
        let prepared = Prepared {
            workload: *self,
            manager,
            key: match self.op {
                Op::Subset => subset_key(),
                Op::Miss => miss_key(),
                _ => exact_key(),
            },
        };
        prepared.check().await?;
        Ok(prepared)
    }
}

/// A workload ready to run on one cache.
#[derive(Debug)]
pub struct Prepared {
    workload: Workload,
    manager: CacheManager,
    key: CacheKey,
}

impl Prepared {
    /// The workload this was prepared for.
    pub fn workload(&self) -> Workload {
        self.workload
    }

    /// The manager the workload runs through.
    pub fn manager(&self) -> &CacheManager {
        &self.manager
    }

    /// The key a `get` workload looks up.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    /// Checks that a lookup gives the expected answer (the target entry, or nothing for
    /// the miss workload), so that a benchmark never times a wrong answer.
    pub async fn check(&self) -> Result<()> {
        let wanted = match self.workload.op {
            Op::Set | Op::Clear => return Ok(()),
            Op::AllKeys => return self.check_all_keys().await,
            Op::Miss => None,
            Op::ExactHit | Op::Subset => Some("at-target"),
        };
        let got = self.manager.get(&self.key, GetOptions::default()).await?;
        let got = got.as_ref().and_then(|b| b.access_token.as_deref());
        if got != wanted {
            let what = |found: bool| if found { "the target entry" } else { "nothing" };
            return Err(Error::unexpected(format!(
                "workload {} found {} where {} was expected",
                self.workload.name(),
                what(got.is_some()),
                what(wanted.is_some()),
            )));
        }
        Ok(())
    }

    /// A listing holds at least the populated entries (a cache that does not list its
    /// keys answers `None`, which is all it can do).
    async fn check_all_keys(&self) -> Result<()> {
        let cache = self.manager.cache();
        match cache.all_keys().await? {
            Some(keys) if keys.len() <= self.workload.others => Err(Error::unexpected(format!(
                "workload {} listed {} keys where at least {} were stored",
                self.workload.name(),
                keys.len(),
                self.workload.others + 1
            ))),
            None if cache.lists_keys() => Err(Error::unexpected(format!(
                "workload {}: a cache that lists its keys listed nothing",
                self.workload.name()
            ))),
            _ => Ok(()),
        }
    }

    /// Refills the cache after a `clear` (untimed setup of the next iteration). A no-op
    /// for the other workloads.
    pub async fn reset(&self) -> Result<()> {
        if self.workload.op == Op::Clear {
            populate(&self.manager, self.workload.others).await?;
        }
        Ok(())
    }

    /// Runs the timed operation once; `i` numbers the iteration (the `set` workload
    /// writes `at-<i>`).
    pub async fn run_once(&self, i: u64) -> Result<()> {
        match self.workload.op {
            Op::Set => self.manager.set(entry(TARGET_AUDIENCE, SET_SCOPE, i)).await,
            Op::ExactHit | Op::Subset | Op::Miss => self
                .manager
                .get(&self.key, GetOptions::default())
                .await
                .map(drop),
            Op::Clear => self.manager.clear(Some(CLIENT_ID)).await,
            Op::AllKeys => self.manager.cache().as_ref().all_keys().await.map(drop),
        }
    }

    /// Removes the benchmark client's keys from the cache.
    pub async fn cleanup(&self) -> Result<()> {
        self.manager.clear(Some(CLIENT_ID)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokencache_conformance::{MapCache, NoListing};

    #[test]
    fn op_names_round_trip() {
        for op in Op::ALL {
            assert_eq!(Op::from_name(op.as_str()), Some(op));
        }
        assert_eq!(Op::from_name("exact hit"), None);
    }

    #[test]
    fn a_wrong_answer_is_an_error() {
        futures::executor::block_on(async {
            let cache: Arc<dyn Cache> = Arc::new(NoListing(MapCache::default()));
            let p = Workload::new(Op::Subset, 3).prepare(cache).await.unwrap();
            p.manager()
                .remove(
                    CLIENT_ID,
                    Some(TARGET_AUDIENCE),
                    Some(crate::data::TARGET_SCOPE),
                )
                .await
                .unwrap();
            let e = p.check().await.unwrap_err();
            assert_eq!(e.kind(), tokencache_core::ErrorKind::Unexpected);
            assert!(e.message().contains("found nothing where the target entry"));
        });
    }
}
