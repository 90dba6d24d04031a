//! The SQLite refresh lock: one row per lock name in `tokencache_leases`, shared by every
//! process on the file, and the fence check of a fenced update.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, OptionalExtension, Transaction};
use tokencache_core::{async_trait, Error, Fence, Lease, RefreshLock, Result, TryAcquire};

use crate::cache::{Inner, SqliteCache};
use crate::error::map_err;

/// `d` in milliseconds, saturated.
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Whether `fence` still holds its lease at `now_ms`, read inside `tx`.
pub(crate) fn fence_holds(tx: &Transaction<'_>, fence: &Fence, now_ms: i64) -> Result<bool> {
    tx.prepare_cached(
        "SELECT 1 FROM tokencache_leases
         WHERE name = ?1 AND holder = ?2 AND epoch = ?3 AND expires_at_ms > ?4",
    )
    .and_then(|mut s| {
        s.query_row(
            params![fence.lock, &fence.holder[..], fence.epoch as i64, now_ms],
            |_| Ok(()),
        )
        .optional()
    })
    .map(|found| found.is_some())
    .map_err(map_err)
}

impl Inner {
    fn try_acquire(&self, name: &str, ttl: Duration) -> Result<TryAcquire> {
        let now = self.clock.now_ms();
        self.conns.write(|tx| {
            let row: Option<(i64, i64)> = tx
                .prepare_cached(
                    "SELECT epoch, expires_at_ms FROM tokencache_leases WHERE name = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(map_err)?;
            if let Some((_, expires)) = row.filter(|&(_, e)| e > now) {
                let left = u64::try_from(expires - now).unwrap_or(0);
                return Ok(TryAcquire::Busy {
                    retry_after: Duration::from_millis(left),
                });
            }
            let epoch = row.map_or(0, |(e, _)| e) + 1;
            let holder: Vec<u8> = tx
                .query_row("SELECT randomblob(16)", [], |r| r.get(0))
                .map_err(map_err)?;
            let holder: [u8; 16] = holder
                .try_into()
                .map_err(|_| Error::unexpected("SQLite returned a holder id of another size"))?;
            let expires_at_ms = now.saturating_add(ms(ttl));
            tx.prepare_cached(
                "INSERT INTO tokencache_leases (name, holder, epoch, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                     epoch = excluded.epoch, expires_at_ms = excluded.expires_at_ms",
            )
            .and_then(|mut s| s.execute(params![name, &holder[..], epoch, expires_at_ms]))
            .map_err(map_err)?;
            Ok(TryAcquire::Held(Lease {
                fence: Fence {
                    lock: name.to_owned(),
                    holder,
                    epoch: epoch as u64,
                },
                expires_at_ms,
            }))
        })
    }

    fn extend(&self, fence: &Fence, ttl: Duration) -> Result<bool> {
        let now = self.clock.now_ms();
        let changed = self.conns.write(|tx| {
            tx.prepare_cached(
                "UPDATE tokencache_leases SET expires_at_ms = ?5
                 WHERE name = ?1 AND holder = ?2 AND epoch = ?3 AND expires_at_ms > ?4",
            )
            .and_then(|mut s| {
                s.execute(params![
                    fence.lock,
                    &fence.holder[..],
                    fence.epoch as i64,
                    now,
                    now.saturating_add(ms(ttl))
                ])
            })
            .map_err(map_err)
        })?;
        Ok(changed == 1)
    }

    fn release(&self, fence: &Fence) -> Result<()> {
        self.conns.write(|tx| {
            tx.prepare_cached(
                "UPDATE tokencache_leases SET expires_at_ms = 0
                 WHERE name = ?1 AND holder = ?2 AND epoch = ?3",
            )
            .and_then(|mut s| s.execute(params![fence.lock, &fence.holder[..], fence.epoch as i64]))
            .map_err(map_err)
        })?;
        Ok(())
    }
}

/// The lease lock of the file: every process on it shares the `tokencache_leases` rows.
/// Acquiring takes a row only once its lease expired (by the cache's clock) and bumps its
/// epoch; releasing compares holder and epoch. A fenced [`Cache::update`] of the same
/// cache checks its fence in the update's own transaction.
///
/// [`Cache::update`]: tokencache_core::Cache::update
#[async_trait]
impl RefreshLock for SqliteCache {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<TryAcquire> {
        let name = name.to_owned();
        self.with_inner(move |inner| inner.try_acquire(&name, ttl))
            .await
    }

    async fn extend(&self, lease: &Lease, ttl: Duration) -> Result<bool> {
        let fence = lease.fence.clone();
        self.with_inner(move |inner| inner.extend(&fence, ttl))
            .await
    }

    async fn release(&self, lease: Lease) -> Result<()> {
        self.with_inner(move |inner| inner.release(&lease.fence))
            .await
    }
}

impl SqliteCache {
    /// This cache as the refresh lock of its file.
    pub(crate) fn lease_lock(&self) -> Arc<dyn RefreshLock> {
        Arc::new(self.clone())
    }
}
