//! Atomic read-modify-write of one row, and the removal of a key prefix, each in one
//! `BEGIN IMMEDIATE` transaction.

use rusqlite::{params, OptionalExtension};
use tokencache_core::{decode_or_miss, Cacheable, Fence, Result, UpdateFn, Updated};

use crate::cache::Inner;
use crate::error::map_err;
use crate::lease::fence_holds;
use crate::rows::{prefix_upper_bound, DELETE, SELECT_VALUE, UPSERT};

impl Inner {
    /// Selects `key`, decodes it, runs `f` and writes or deletes what it decides, in one
    /// `BEGIN IMMEDIATE` transaction: no other connection or process writes between the
    /// read and the write. A busy database retries the whole transaction, `f` included.
    ///
    /// With a `fence`, its lease row is checked first in the same transaction: a lease
    /// that expired or was taken by another holder writes nothing ([`Updated::FenceLost`]).
    pub(crate) fn update(
        &self,
        key: &str,
        fence: Option<&Fence>,
        mut f: UpdateFn,
    ) -> Result<Updated> {
        self.conns.write(|tx| {
            if let Some(fence) = fence {
                if !fence_holds(tx, fence, self.clock.now_ms())? {
                    return Ok(Updated::FenceLost);
                }
            }
            let bytes: Option<Vec<u8>> = tx
                .prepare_cached(SELECT_VALUE)
                .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
                .map_err(map_err)?;
            let current = match bytes {
                Some(b) => decode_or_miss(&*self.codec, key, &b)?,
                None => None,
            };
            let write = |value: Option<&Cacheable>| {
                match value {
                    Some(value) => {
                        let bytes = self.codec.encode(key, value)?;
                        tx.prepare_cached(UPSERT).and_then(|mut s| {
                            s.execute(params![
                                key,
                                bytes,
                                value.expires_at(),
                                value.has_refresh_token()
                            ])
                        })
                    }
                    None => tx.prepare_cached(DELETE).and_then(|mut s| s.execute([key])),
                }
                .map_err(map_err)
                .map(drop)
            };
            f(current.as_ref()).apply(current, write)
        })
    }

    /// Deletes every key that starts with `prefix` in one transaction (a range of the
    /// primary-key index) and returns how many rows went.
    pub(crate) fn remove_prefix(&self, prefix: &str) -> Result<u64> {
        let upper = prefix_upper_bound(prefix);
        let n = self.conns.write(|tx| {
            match &upper {
                Some(upper) => tx
                    .prepare_cached("DELETE FROM tokencache_entries WHERE key >= ?1 AND key < ?2")
                    .and_then(|mut s| s.execute(params![prefix, upper])),
                None => tx
                    .prepare_cached("DELETE FROM tokencache_entries WHERE key >= ?1")
                    .and_then(|mut s| s.execute(params![prefix])),
            }
            .map_err(map_err)
        })?;
        Ok(n as u64)
    }
}
