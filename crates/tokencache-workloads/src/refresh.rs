//! The refresh workloads: what a refresh through
//! [`CacheManager::get_or_refresh`](tokencache_core::CacheManager::get_or_refresh) costs a
//! backend, the identity provider's answer aside.

use std::sync::Arc;

use serde::Serialize;
use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, Clock, Error, GetOptions, InProcessLock,
    RefreshLock, RefreshOptions, RefreshPolicy, RefreshRequest, Result, TryAcquire, SEPARATOR,
};

use crate::data::{
    exact_key, frozen_clock, manager, populate, CLIENT_ID, EXPIRES_IN, TARGET_AUDIENCE,
};

/// A refresh workload. Both run on the target entry alone (no other keys): the cost of
/// the lock does not depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum RefreshOp {
    /// `try_acquire` and `release` of the refresh lock of the target's token family: the
    /// lock the manager uses (the cache's own, else an [`InProcessLock`]), under the
    /// name the manager gives it, for the default lease.
    #[serde(rename = "refresh_lock")]
    Lock,
    /// A forced `get_or_refresh` of the target whose refresh function answers at once:
    /// the read, the lock, the read under the lease, the fenced write of the new entry,
    /// the rewrite of the token family and the release.
    #[serde(rename = "forced_refresh")]
    Forced,
}

impl RefreshOp {
    /// Every refresh workload.
    pub const ALL: [RefreshOp; 2] = [RefreshOp::Lock, RefreshOp::Forced];

    /// The workload's name: `refresh_lock`, `forced_refresh`.
    ///
    /// ```
    /// use tokencache_workloads::RefreshOp;
    /// assert_eq!(RefreshOp::Lock.as_str(), "refresh_lock");
    /// assert_eq!(RefreshOp::from_name("forced_refresh"), Some(RefreshOp::Forced));
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshOp::Lock => "refresh_lock",
            RefreshOp::Forced => "forced_refresh",
        }
    }

    /// The refresh workload named `name`, if any.
    pub fn from_name(name: &str) -> Option<RefreshOp> {
        RefreshOp::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// A manager over `cache`, emptied of the benchmark client's keys and holding the
    /// target entry, ready for [`PreparedRefresh::run_once`].
    pub async fn prepare(self, cache: Arc<dyn Cache>) -> Result<PreparedRefresh> {
        self.prepare_with_clock(cache, frozen_clock()).await
    }

    /// [`RefreshOp::prepare`] with the manager (and, when the cache has no lock of its
    /// own, the lock) on `clock`.
    pub async fn prepare_with_clock(
        self,
        cache: Arc<dyn Cache>,
        clock: Arc<dyn Clock>,
    ) -> Result<PreparedRefresh> {
        let lock = cache
            .refresh_lock()
            .unwrap_or_else(|| Arc::new(InProcessLock::with_clock(clock.clone())));
        let manager = manager(cache, clock)?;
        manager.clear(Some(CLIENT_ID)).await?;
        populate(&manager, 0).await?;
        let prepared = PreparedRefresh {
            op: self,
            manager,
            lock,
            lock_name: format!("refresh{SEPARATOR}{CLIENT_ID}{SEPARATOR}{TARGET_AUDIENCE}"),
            key: exact_key(),
        };
        prepared.check().await?;
        Ok(prepared)
    }
}

/// The tokens the forced refresh of iteration `i` answers: `at-refresh-<i>`,
/// `rt-refresh-<i>`.
fn refreshed(req: RefreshRequest, i: u64) -> CacheEntry {
    let mut e = CacheEntry::new(
        req.client_id,
        req.audience,
        req.scope,
        format!("at-refresh-{i}"),
        EXPIRES_IN,
    )
    .with_refresh_token(format!("rt-refresh-{i}"));
    e.token_type = Some("Bearer".to_owned());
    e
}

/// A refresh workload ready to run on one cache.
pub struct PreparedRefresh {
    op: RefreshOp,
    manager: CacheManager,
    lock: Arc<dyn RefreshLock>,
    lock_name: String,
    key: CacheKey,
}

impl std::fmt::Debug for PreparedRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedRefresh")
            .field("op", &self.op)
            .field("lock_name", &self.lock_name)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl PreparedRefresh {
    /// The workload this was prepared for.
    pub fn op(&self) -> RefreshOp {
        self.op
    }

    /// The manager the workload runs through.
    pub fn manager(&self) -> &CacheManager {
        &self.manager
    }

    /// Runs the timed operation once; `i` numbers the iteration (the forced refresh
    /// answers `at-refresh-<i>`). A lock found busy is an error: nothing else holds it.
    pub async fn run_once(&self, i: u64) -> Result<()> {
        match self.op {
            RefreshOp::Lock => {
                let ttl = RefreshPolicy::default().lease;
                match self.lock.try_acquire(&self.lock_name, ttl).await? {
                    TryAcquire::Held(lease) => self.lock.release(lease).await,
                    TryAcquire::Busy { .. } => Err(Error::unexpected(
                        "workload refresh_lock found the refresh lock held by another holder",
                    )),
                }
            }
            RefreshOp::Forced => {
                let opts = RefreshOptions::default().force(true);
                let body = self
                    .manager
                    .get_or_refresh(&self.key, opts, |req| async move { Ok(refreshed(req, i)) })
                    .await?;
                if body.refresh_token() != Some(format!("rt-refresh-{i}").as_str()) {
                    return Err(Error::unexpected(
                        "workload forced_refresh did not get the refreshed entry",
                    ));
                }
                Ok(())
            }
        }
    }

    /// Checks that the target holds a valid access token and a refresh token, and (after
    /// forced refreshes) the refreshed ones, so that a benchmark never times a wrong
    /// answer.
    pub async fn check(&self) -> Result<()> {
        let got = self.manager.get(&self.key, GetOptions::default()).await?;
        let ok = got.as_ref().is_some_and(|b| {
            let at = b.access_token.as_deref().unwrap_or_default();
            let rt = b.refresh_token().unwrap_or_default();
            (at == "at-target" && rt == "rt-target")
                || (at.starts_with("at-refresh-")
                    && rt.starts_with("rt-refresh-")
                    && at["at-refresh-".len()..] == rt["rt-refresh-".len()..])
        });
        if !ok {
            return Err(Error::unexpected(format!(
                "workload {} did not find the target's tokens",
                self.op.as_str()
            )));
        }
        Ok(())
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
    fn names_round_trip() {
        for op in RefreshOp::ALL {
            assert_eq!(RefreshOp::from_name(op.as_str()), Some(op));
            assert_eq!(
                serde_json::to_value(op).unwrap(),
                serde_json::Value::from(op.as_str())
            );
        }
        assert_eq!(RefreshOp::from_name("refresh"), None);
    }

    #[test]
    fn a_forced_refresh_rotates_the_tokens_and_a_held_lock_is_an_error() {
        futures::executor::block_on(async {
            let cache: Arc<dyn Cache> = Arc::new(NoListing(MapCache::default()));
            let p = RefreshOp::Forced.prepare(cache.clone()).await.unwrap();
            p.run_once(7).await.unwrap();
            p.check().await.unwrap();
            let body = p
                .manager()
                .get(&exact_key(), GetOptions::default())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(body.access_token.as_deref(), Some("at-refresh-7"));

            // Someone else holds the family's lock: the lock workload fails, it does not
            // time a `Busy`.
            let lock = InProcessLock::new();
            let p = RefreshOp::Lock
                .prepare_with_clock(cache, frozen_clock())
                .await
                .unwrap();
            p.run_once(0).await.unwrap();
            let p = PreparedRefresh {
                lock: Arc::new(lock),
                ..p
            };
            let TryAcquire::Held(_held) = p
                .lock
                .try_acquire(&p.lock_name, RefreshPolicy::default().lease)
                .await
                .unwrap()
            else {
                panic!("the lock is free")
            };
            let e = p.run_once(1).await.unwrap_err();
            assert!(e.message().contains("held by another holder"), "{e}");
            p.cleanup().await.unwrap();
        });
    }
}
