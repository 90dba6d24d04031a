//! The atomic read-modify-write of one entry ([`Cache::update`]) and the atomic removal of
//! a key prefix ([`Cache::remove_prefix`]): optimistic, by compare-and-set scripts, since
//! `WATCH`/`MULTI` cannot be used on the shared multiplexed connection.
//!
//! [`Cache::update`]: tokencache_core::Cache::update
//! [`Cache::remove_prefix`]: tokencache_core::Cache::remove_prefix

use std::time::Duration;

use tokencache_core::{decode_or_miss, Error, Fence, Result, Update, UpdateFn, Updated};

use crate::cache::{lex_range, RedisCache};
use crate::lease::lease_value;
use crate::scripts;

/// How many times an update (or a prefix removal) reads and tries its compare-and-set
/// before it gives up.
pub(crate) const TRIES: u32 = 16;

/// The most keys one prefix removal takes in its one script.
pub(crate) const REMOVE_PREFIX_MAX: usize = 10_000;

/// What the compare-and-set script answered.
const FENCE_LOST: i64 = -1;
const CHANGED: i64 = -2;
const KEPT: i64 = 0;
const STORED: i64 = 1;
const REMOVED: i64 = 2;

/// A short pause before try `attempt` (1, 2, ...), so that writers that met on a key
/// spread out: a random time up to 0.5 ms doubled per try, at most 32 ms.
async fn backoff(attempt: u32) {
    let cap_us: u64 = 500u64.saturating_mul(1 << attempt.min(6)).min(32_000);
    let jitter = getrandom::u64().unwrap_or(cap_us / 2);
    tokio::time::sleep(Duration::from_micros(jitter % (cap_us + 1))).await;
}

/// The error of an update or removal that lost every compare-and-set.
fn contended(what: &str) -> Error {
    Error::unavailable(format!(
        "redis {what}: the entries kept changing under concurrent writers; gave up after \
         {TRIES} tries"
    ))
    .temporary()
}

impl RedisCache {
    /// [`Cache::update`](tokencache_core::Cache::update): see its documentation on
    /// [`RedisCache`].
    pub(crate) async fn update_cas(
        &self,
        key: &str,
        fence: Option<&Fence>,
        mut f: UpdateFn,
    ) -> Result<Updated> {
        let _gate = self.gate(key).lock().await;
        let storage_key = self.storage_key(key);
        let fence = fence.map(|fence| {
            (
                self.lock.lease_key(&fence.lock),
                lease_value(&fence.holder, fence.epoch),
            )
        });
        for attempt in 0..TRIES {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let read: Option<Vec<u8>> = self
                .query("update", redis::cmd("GET").arg(&storage_key).to_owned())
                .await?;
            let current = match &read {
                Some(bytes) => decode_or_miss(self.codec.as_ref(), &storage_key, bytes)?,
                None => None,
            };
            let decision = f(current.as_ref());
            if fence.is_none() && decision == Update::Keep {
                return Ok(Updated::Kept(current));
            }
            let (op, bytes, ttl) = match &decision {
                Update::Keep => ("keep", Vec::new(), 0),
                Update::Put(value) => (
                    "put",
                    self.codec.encode(&storage_key, value)?,
                    self.ttl_arg(value),
                ),
                Update::Remove => ("del", Vec::new(), 0),
            };
            let stale = if decision == Update::Keep {
                Vec::new()
            } else {
                self.peek_stale()
            };
            let mut inv = scripts::UPDATE.key(&self.index_key);
            inv.key(&storage_key);
            if let Some((lease_key, _)) = &fence {
                inv.key(lease_key);
            }
            for m in &stale {
                inv.key(self.entry_key_of(m));
            }
            inv.arg(op)
                .arg(key)
                .arg(if read.is_some() { "1" } else { "0" })
                .arg(read.as_deref().unwrap_or_default())
                .arg(fence.as_ref().map_or("", |(_, value)| value.as_str()))
                .arg(bytes)
                .arg(ttl);
            for m in &stale {
                inv.arg(m);
            }
            let mut conn = self.conn.clone();
            let answer: i64 = self
                .run("update", async move { inv.invoke_async(&mut conn).await })
                .await?;
            match answer {
                FENCE_LOST => {
                    tracing::debug!(key, "fenced update: the fence lost its lease; not written");
                    return Ok(Updated::FenceLost);
                }
                CHANGED => {
                    tracing::debug!(key, attempt, "the entry changed during the update; again");
                }
                KEPT => return Ok(Updated::Kept(current)),
                STORED | REMOVED => {
                    self.forget_stale(&stale);
                    return Ok(match decision {
                        Update::Put(value) => Updated::Put(value),
                        _ => Updated::Removed,
                    });
                }
                other => {
                    return Err(Error::unexpected(format!(
                        "redis update: unexpected script answer {other}"
                    )))
                }
            }
        }
        tracing::warn!(
            key,
            tries = TRIES,
            "update gave up: the entry kept changing"
        );
        Err(contended("update"))
    }

    /// [`Cache::remove_prefix`](tokencache_core::Cache::remove_prefix): see its
    /// documentation on [`RedisCache`].
    pub(crate) async fn remove_prefix_cas(&self, prefix: &str) -> Result<Option<u64>> {
        let (min, max) = lex_range(prefix);
        for attempt in 0..TRIES {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let members: Vec<Vec<u8>> = self
                .query(
                    "remove prefix",
                    redis::cmd("ZRANGEBYLEX")
                        .arg(&self.index_key)
                        .arg(&min)
                        .arg(&max)
                        .arg("LIMIT")
                        .arg(0)
                        .arg(REMOVE_PREFIX_MAX + 1)
                        .to_owned(),
                )
                .await?;
            if members.len() > REMOVE_PREFIX_MAX {
                tracing::debug!(
                    limit = REMOVE_PREFIX_MAX,
                    "too many keys for one atomic prefix removal; removing one by one"
                );
                return Ok(None);
            }
            let mut inv = scripts::REMOVE_PREFIX.key(&self.index_key);
            for m in &members {
                inv.key(self.entry_key_of(m));
            }
            inv.arg(&min).arg(&max);
            for m in &members {
                inv.arg(m);
            }
            let mut conn = self.conn.clone();
            let removed: i64 = self
                .run(
                    "remove prefix",
                    async move { inv.invoke_async(&mut conn).await },
                )
                .await?;
            if let Ok(removed) = u64::try_from(removed) {
                self.forget_stale(&members);
                return Ok(Some(removed));
            }
            tracing::debug!(attempt, "a key of the prefix was written meanwhile; again");
        }
        Err(contended("remove prefix"))
    }
}
