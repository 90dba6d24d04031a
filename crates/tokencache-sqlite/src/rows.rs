//! The cache operations on the `tokencache_entries` rows: point reads and writes, removal,
//! the key listing by prefix range, and the ranked read of a prefix range.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, Rows};

use tokencache_core::{decode_or_miss, Cacheable, Keys, RankFn, Result, ValueMeta};

use crate::batch::WriteOp;
use crate::cache::Inner;
use crate::error::map_err;

/// The stored value of one key.
pub(crate) const SELECT_VALUE: &str = "SELECT value FROM tokencache_entries WHERE key = ?1";
/// The keys in `[?1, ?2)`, in order: a range of the primary-key index.
pub(crate) const SELECT_KEY_RANGE: &str =
    "SELECT key FROM tokencache_entries WHERE key >= ?1 AND key < ?2 ORDER BY key";
/// The keys from `?1` on, in order (a prefix without an upper bound).
pub(crate) const SELECT_KEYS_FROM: &str =
    "SELECT key FROM tokencache_entries WHERE key >= ?1 ORDER BY key";
/// The rows in `[?1, ?2)`, in order: key, plaintext metadata, value.
pub(crate) const SELECT_RANKED_RANGE: &str =
    "SELECT key, expires_at, has_refresh_token, value FROM tokencache_entries
     WHERE key >= ?1 AND key < ?2 ORDER BY key";
/// The rows from `?1` on, in order: key, plaintext metadata, value.
pub(crate) const SELECT_RANKED_FROM: &str =
    "SELECT key, expires_at, has_refresh_token, value FROM tokencache_entries
     WHERE key >= ?1 ORDER BY key";
/// Writes one row: key, value, expiry, whether it holds a refresh token.
pub(crate) const UPSERT: &str =
    "INSERT INTO tokencache_entries (key, value, expires_at, has_refresh_token)
     VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value,
         expires_at = excluded.expires_at,
         has_refresh_token = excluded.has_refresh_token";
/// Deletes one row.
pub(crate) const DELETE: &str = "DELETE FROM tokencache_entries WHERE key = ?1";

fn select_value(c: &Connection, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    c.prepare_cached(SELECT_VALUE)?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// Runs `f` over the rows of the key range `[prefix, upper)` (from `prefix` on without
/// `upper`): `range` is the statement with both bounds, `from` the one with the lower.
fn in_range<T>(
    c: &Connection,
    (range, from): (&str, &str),
    prefix: &str,
    upper: Option<&str>,
    f: impl FnOnce(Rows<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    match upper {
        Some(upper) => f(c.prepare_cached(range)?.query(params![prefix, upper])?),
        None => f(c.prepare_cached(from)?.query(params![prefix])?),
    }
}

fn select_keys(c: &Connection, prefix: &str, upper: Option<&str>) -> rusqlite::Result<Keys> {
    let statements = (SELECT_KEY_RANGE, SELECT_KEYS_FROM);
    in_range(c, statements, prefix, upper, |rows| {
        rows.mapped(|r| Ok(Arc::<str>::from(r.get_ref(0)?.as_str()?)))
            .collect()
    })
}

/// The rows of a key range: every key with its metadata, and the best row by a rank
/// (its index in `listed`, its rank and its stored bytes).
#[derive(Default)]
pub(crate) struct Scan {
    pub(crate) listed: Vec<(String, ValueMeta)>,
    pub(crate) best: Option<(usize, u64, Vec<u8>)>,
}

/// Whether a key of rank `rank` beats the best one so far: a lower rank, and on a tie the
/// key met first (the smaller: rows come in key order).
pub(crate) fn beats(rank: u64, best: Option<u64>) -> bool {
    best.is_none_or(|b| rank < b)
}

/// The rows in `[prefix, upper)` (from `prefix` on without `upper`), in one statement;
/// with `rank`, the bytes of the best row are kept (only those: a value is copied when its
/// row beats every row before it).
fn select_ranked(
    c: &Connection,
    prefix: &str,
    upper: Option<&str>,
    rank: Option<RankFn<'_>>,
) -> rusqlite::Result<Scan> {
    let statements = (SELECT_RANKED_RANGE, SELECT_RANKED_FROM);
    in_range(c, statements, prefix, upper, |mut rows| {
        let mut scan = Scan::default();
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let meta = ValueMeta {
                expires_at: row.get(1)?,
                has_refresh_token: row.get(2)?,
            };
            if let Some(r) = rank.and_then(|rank| rank(&key, meta)) {
                if beats(r, scan.best.as_ref().map(|b| b.1)) {
                    scan.best = Some((scan.listed.len(), r, row.get(3)?));
                }
            }
            scan.listed.push((key, meta));
        }
        Ok(scan)
    })
}

impl Inner {
    /// The value at `key`, read on a worker thread.
    pub(crate) fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        let bytes = self.conns.read(|c| select_value(c, key).map_err(map_err))?;
        self.decode(key, bytes)
    }

    /// The value at `key`, read on the calling task; `None` when the read must go to a
    /// worker thread (see [`crate::inline`]).
    pub(crate) fn get_inline(&self, key: &str) -> Option<Result<Option<Cacheable>>> {
        let bytes = self.conns.inline()?.try_read(|c| select_value(c, key))?;
        Some(self.decode(key, bytes))
    }

    pub(crate) fn decode(&self, key: &str, bytes: Option<Vec<u8>>) -> Result<Option<Cacheable>> {
        match bytes {
            Some(b) => decode_or_miss(&*self.codec, key, &b),
            None => Ok(None),
        }
    }

    /// The write of `value` at `key`, encoded (encrypted) on the calling thread.
    pub(crate) fn put(&self, key: &str, value: &Cacheable) -> Result<WriteOp> {
        Ok(WriteOp::Put {
            key: key.to_owned(),
            bytes: self.codec.encode(key, value)?,
            expires_at: value.expires_at(),
            has_refresh_token: value.has_refresh_token(),
        })
    }

    /// The keys in `[prefix, successor(prefix))`, in order, read from the primary-key
    /// index on a worker thread.
    pub(crate) fn keys_with_prefix(&self, prefix: &str) -> Result<Keys> {
        let upper = prefix_upper_bound(prefix);
        self.conns
            .read(|c| select_keys(c, prefix, upper.as_deref()).map_err(map_err))
    }

    /// [`Inner::keys_with_prefix`] on the calling task; `None` when the read must go to a
    /// worker thread (a long range, a lock, every inline connection in use).
    pub(crate) fn keys_with_prefix_inline(&self, prefix: &str) -> Option<Keys> {
        let upper = prefix_upper_bound(prefix);
        self.conns
            .inline()?
            .try_read(|c| select_keys(c, prefix, upper.as_deref()))
    }
}

impl Inner {
    /// The keys that start with `prefix` with their metadata, and the bytes of the best by
    /// `rank`, in one statement on the calling task; `None` when the read must go to a
    /// worker thread.
    pub(crate) fn ranked_inline(&self, prefix: &str, rank: RankFn<'_>) -> Option<Scan> {
        let upper = prefix_upper_bound(prefix);
        self.conns
            .inline()?
            .try_read(|c| select_ranked(c, prefix, upper.as_deref(), Some(rank)))
    }

    /// The keys that start with `prefix` with their metadata, read on a worker thread.
    pub(crate) fn listed_with_meta(&self, prefix: &str) -> Result<Vec<(String, ValueMeta)>> {
        let upper = prefix_upper_bound(prefix);
        self.conns.read(|c| {
            select_ranked(c, prefix, upper.as_deref(), None)
                .map(|scan| scan.listed)
                .map_err(map_err)
        })
    }
}

/// The smallest string greater than every string that starts with `prefix` (in SQLite's
/// BINARY order, which is byte order of UTF-8, which is code-point order), or `None` when
/// there is none (an empty prefix, or one made only of `U+10FFFF`).
///
/// Computed on characters, not bytes, so the bound stays valid UTF-8: the last character
/// that has a successor is replaced by it and everything after it is dropped.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    prefix.char_indices().rev().find_map(|(at, last)| {
        let next = match last {
            '\u{D7FF}' => '\u{E000}',
            char::MAX => return None,
            c => char::from_u32(c as u32 + 1)?,
        };
        let mut bound = String::with_capacity(at + next.len_utf8());
        bound.push_str(&prefix[..at]);
        bound.push(next);
        Some(bound)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("ab::").as_deref(), Some("ab:;"));
        assert_eq!(
            prefix_upper_bound("x\u{D7FF}").as_deref(),
            Some("x\u{E000}")
        );
        assert_eq!(prefix_upper_bound("x\u{10FFFF}").as_deref(), Some("y"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound("é").as_deref(), Some("ê"));
        assert_eq!(prefix_upper_bound("\u{7F}").as_deref(), Some("\u{80}"));
    }
}
