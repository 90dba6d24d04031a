//! Housekeeping over the whole file: [`SqliteCache::purge`] and [`SqliteCache::rotate`].

use rusqlite::params;
use tokencache_core::{ErrorKind, Result};

use crate::cache::SqliteCache;
use crate::error::map_err;

/// What [`SqliteCache::rotate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotation {
    /// How many values it re-encoded under the active key.
    pub rewritten: usize,
    /// The storage keys of the values that did not decode or authenticate, left as they
    /// were (storage keys are not secret: see the crate's security notes).
    pub unreadable: Vec<String>,
}

impl SqliteCache {
    /// Deletes the entries the core's policy ([`Retention`](tokencache_core::Retention),
    /// by the cache's clock) says may go: token entries whose access token expired and
    /// that hold no refresh token, and those with a refresh token whose access token
    /// expired longer ago than the configured retention (default: never). Manifests and
    /// ID-token entries carry no expiry and are never purged. Returns how many rows it
    /// deleted.
    pub async fn purge(&self) -> Result<usize> {
        self.with_inner(|inner| {
            let now_ms = inner.clock.now_ms();
            let without_rt = inner.retention.expired_before(now_ms, false);
            let with_rt = inner.retention.expired_before(now_ms, true);
            inner.conns.write(|tx| {
                tx.prepare_cached(
                    "DELETE FROM tokencache_entries
                     WHERE expires_at IS NOT NULL
                       AND ((has_refresh_token = 0 AND expires_at < ?1)
                            OR (has_refresh_token <> 0 AND expires_at < ?2))",
                )
                .and_then(|mut s| s.execute(params![without_rt, with_rt]))
                .map_err(map_err)
            })
        })
        .await
    }

    /// Re-encodes, in one transaction, every value for which the codec's
    /// [`ValueCodec::recode`](tokencache_core::ValueCodec::recode) returns new bytes: after
    /// a key rotation (`KeyRing::rotate`), moves every value to the active key.
    ///
    /// One bad value does not stop the others: a value that fails authentication (a
    /// tampered row, a key the ring does not hold) or does not decode is left exactly as
    /// it is, logged (without its content) and reported in [`Rotation::unreadable`].
    ///
    /// The same transaction records the active key's check, if its id is new (and
    /// refuses to go on if the id is known with other key material).
    pub async fn rotate(&self) -> Result<Rotation> {
        self.with_inner(|inner| {
            let n = inner.conns.write(|tx| {
                inner.record_key_check(tx)?;
                let rows: Vec<(String, Vec<u8>)> = {
                    let mut stmt = tx
                        .prepare("SELECT key, value FROM tokencache_entries")
                        .map_err(map_err)?;
                    let rows = stmt
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                        .map_err(map_err)?;
                    rows.collect::<rusqlite::Result<_>>().map_err(map_err)?
                };
                let mut update = tx
                    .prepare_cached("UPDATE tokencache_entries SET value = ?2 WHERE key = ?1")
                    .map_err(map_err)?;
                let mut done = Rotation::default();
                for (key, value) in rows {
                    match inner.codec.recode(&key, &value) {
                        Ok(Some(new)) => {
                            update.execute(params![key, new]).map_err(map_err)?;
                            done.rewritten += 1;
                        }
                        Ok(None) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::Serialization | ErrorKind::Integrity
                            ) =>
                        {
                            tracing::warn!(
                                kind = e.kind().as_str(),
                                "a stored value does not decode or authenticate; left as it is"
                            );
                            done.unreadable.push(key);
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(done)
            })?;
            inner.key_check_recorded();
            Ok(n)
        })
        .await
    }
}
