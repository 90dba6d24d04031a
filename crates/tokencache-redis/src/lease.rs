//! [`RedisLock`]: the refresh lock of a namespace, shared by every process (and server)
//! that uses the namespace, and the lease values a fenced update compares.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokencache_core::{
    async_trait, Clock, Error, Fence, Lease, RefreshLock, Result, Retention, TryAcquire,
};

use crate::cache::run_bounded;
use crate::conn::RedisConnection;
use crate::scripts;

/// The refresh lock of one [`RedisCache`](crate::RedisCache) namespace: one lease key per
/// lock name, shared by every process and server connected to the namespace, so that per
/// lock name at most one refresh is in flight store-wide (until a lease expires).
///
/// - **Keys.** The lease of lock `name` is the string key `tokencache:{namespace}:l:<name>`,
///   holding `holder:epoch` (the holder's random 16-byte id in hex and the epoch) with a
///   Redis TTL of the lease's length; its epoch counter is
///   `tokencache:{namespace}:e:<name>`. Both share the namespace's hash tag (one cluster
///   slot) and are declared in `KEYS` by every script. Neither is an entry: they are not
///   in the namespace's index, so listings never show them, and neither
///   [`Cache::remove_many`](tokencache_core::Cache::remove_many), a manager's `clear` nor
///   [`RedisCache::clear_namespace`](crate::RedisCache::clear_namespace) removes them.
///   A held lease survives them; the epoch counter (one small integer per lock name) stays
///   for good, so epochs keep growing.
/// - **Time.** A lease ends by the Redis server's clock (its key's TTL), whatever the
///   cache's [`Clock`] says; [`Lease::expires_at_ms`] is the cache's clock read before the
///   request plus the lease's length, so by the system clock the lease holds at least that
///   long.
/// - **Acquire** is one script: if no lease lives, the epoch counter is incremented and
///   the lease set (`SET … NX PX`); a refused acquisition takes no epoch and answers
///   [`TryAcquire::Busy`] with the lease's `PTTL`.
/// - **Extend and release** compare the lease's value with the caller's `holder:epoch` in
///   one script: a holder whose lease expired and was taken again can neither extend nor
///   free the newer holder's lease.
/// - **Fences.** A fenced [`Cache::update`](tokencache_core::Cache::update) of the same
///   namespace writes only while the lease key still holds the fence's `holder:epoch`,
///   checked in the update's compare-and-set script ([`Updated::FenceLost`] otherwise).
///
/// Holder ids and lease values are not secret; they appear in `Debug` output of neither
/// this type nor [`Fence`].
///
/// [`Updated::FenceLost`]: tokencache_core::Updated::FenceLost
#[derive(Clone)]
pub struct RedisLock {
    conn: RedisConnection,
    namespace: String,
    lease_prefix: String,
    epoch_prefix: String,
    clock: Arc<dyn Clock>,
    command_timeout: Duration,
}

impl fmt::Debug for RedisLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLock")
            .field("namespace", &self.namespace)
            .field("cluster", &self.conn.is_cluster())
            .field("clock", &self.clock)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

/// A lease's length in whole milliseconds as Redis takes it: at least 1 (`PX 0` is an
/// error) and at most [`Retention::MAX_TIME_TO_LIVE`].
pub(crate) fn lease_ms(ttl: Duration) -> i64 {
    let max = Retention::MAX_TIME_TO_LIVE.as_millis();
    i64::try_from(ttl.as_millis().clamp(1, max)).unwrap_or(i64::MAX)
}

/// The value a lease key holds for `fence`: its holder in lowercase hex, `:`, its epoch.
pub(crate) fn lease_value(holder: &[u8; 16], epoch: u64) -> String {
    let mut s = hex(holder);
    s.push(':');
    s.push_str(&epoch.to_string());
    s
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// 16 random bytes from the operating system: a holder id.
fn new_holder() -> Result<[u8; 16]> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| {
        Error::unexpected("no randomness for a refresh-lock holder id").with_source(e)
    })?;
    Ok(id)
}

impl RedisLock {
    pub(crate) fn new(
        conn: RedisConnection,
        namespace: &str,
        clock: Arc<dyn Clock>,
        command_timeout: Duration,
    ) -> RedisLock {
        RedisLock {
            conn,
            namespace: namespace.to_owned(),
            lease_prefix: lease_prefix(namespace),
            epoch_prefix: epoch_prefix(namespace),
            clock,
            command_timeout,
        }
    }

    /// The namespace this lock belongs to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Redis key of the lease of lock `name` (`holder:epoch`, with a TTL, while held).
    pub fn lease_key(&self, name: &str) -> String {
        format!("{}{name}", self.lease_prefix)
    }

    /// The Redis key of the epoch counter of lock `name`.
    pub fn epoch_key(&self, name: &str) -> String {
        format!("{}{name}", self.epoch_prefix)
    }

    async fn run<T>(
        &self,
        what: &'static str,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        run_bounded(self.command_timeout, what, fut).await
    }
}

/// The prefix of the lease keys of `namespace`.
pub(crate) fn lease_prefix(namespace: &str) -> String {
    format!("{}{{{namespace}}}:l:", crate::cache::KEY_ROOT)
}

/// The prefix of the epoch counters of `namespace`.
pub(crate) fn epoch_prefix(namespace: &str) -> String {
    format!("{}{{{namespace}}}:e:", crate::cache::KEY_ROOT)
}

#[async_trait]
impl RefreshLock for RedisLock {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<TryAcquire> {
        let holder = new_holder()?;
        let ms = lease_ms(ttl);
        let now = self.clock.now_ms();
        let mut conn = self.conn.clone();
        let mut inv = scripts::ACQUIRE.key(self.lease_key(name));
        inv.key(self.epoch_key(name)).arg(hex(&holder)).arg(ms);
        let reply: (i64, i64) = self
            .run(
                "acquire lease",
                async move { inv.invoke_async(&mut conn).await },
            )
            .await?;
        match reply {
            (1, epoch) => {
                let epoch = u64::try_from(epoch)
                    .map_err(|_| Error::unexpected("redis acquire lease: a negative epoch"))?;
                tracing::debug!(lock = name, epoch, "refresh lease taken");
                Ok(TryAcquire::Held(Lease {
                    fence: Fence {
                        lock: name.to_owned(),
                        holder,
                        epoch,
                    },
                    expires_at_ms: now.saturating_add(ms),
                }))
            }
            (_, left) => {
                let left = if left < 0 {
                    // Only a foreign write leaves a lease without a TTL: never take it,
                    // and look again after a lease's length.
                    tracing::warn!(lock = name, "the lease key has no TTL; treated as held");
                    ms
                } else {
                    left
                };
                Ok(TryAcquire::Busy {
                    retry_after: Duration::from_millis(u64::try_from(left).unwrap_or(0)),
                })
            }
        }
    }

    async fn extend(&self, lease: &Lease, ttl: Duration) -> Result<bool> {
        let fence = &lease.fence;
        let mut conn = self.conn.clone();
        let mut inv = scripts::EXTEND.key(self.lease_key(&fence.lock));
        inv.arg(lease_value(&fence.holder, fence.epoch))
            .arg(lease_ms(ttl));
        let extended: i64 = self
            .run(
                "extend lease",
                async move { inv.invoke_async(&mut conn).await },
            )
            .await?;
        Ok(extended == 1)
    }

    async fn release(&self, lease: Lease) -> Result<()> {
        let fence = &lease.fence;
        let mut conn = self.conn.clone();
        let mut inv = scripts::RELEASE.key(self.lease_key(&fence.lock));
        inv.arg(lease_value(&fence.holder, fence.epoch));
        let released: i64 = self
            .run(
                "release lease",
                async move { inv.invoke_async(&mut conn).await },
            )
            .await?;
        if released == 0 {
            tracing::debug!(
                lock = %fence.lock,
                epoch = fence.epoch,
                "lease already expired or taken again; nothing released"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_values_are_hex_holder_and_decimal_epoch() {
        let mut holder = [0u8; 16];
        holder[0] = 0xab;
        holder[15] = 0x01;
        assert_eq!(
            lease_value(&holder, 42),
            "ab000000000000000000000000000001:42"
        );
        assert_eq!(
            lease_value(&[0xff; 16], u64::MAX),
            format!("{}:18446744073709551615", "f".repeat(32))
        );
    }

    #[test]
    fn lease_lengths_are_whole_positive_milliseconds_redis_takes() {
        assert_eq!(lease_ms(Duration::ZERO), 1);
        assert_eq!(lease_ms(Duration::from_micros(10)), 1);
        assert_eq!(lease_ms(Duration::from_millis(300)), 300);
        let max = i64::try_from(Retention::MAX_TIME_TO_LIVE.as_millis()).unwrap();
        assert_eq!(lease_ms(Duration::MAX), max);
    }

    #[test]
    fn holder_ids_are_random() {
        let a = new_holder().unwrap();
        let b = new_holder().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 16]);
    }
}
