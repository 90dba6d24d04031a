//! The cache operations on the `tokencache_entries` rows: point reads and writes, removal,
//! and the key listing by prefix range.

use rusqlite::{params, OptionalExtension};
use tokencache_core::{decode_or_miss, Cacheable, Result};

use crate::cache::Inner;
use crate::error::map_err;

impl Inner {
    pub(crate) fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        let bytes: Option<Vec<u8>> = self.conns.read(|c| {
            c.prepare_cached("SELECT value FROM tokencache_entries WHERE key = ?1")
                .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
                .map_err(map_err)
        })?;
        match bytes {
            Some(b) => decode_or_miss(&*self.codec, key, &b),
            None => Ok(None),
        }
    }

    pub(crate) fn set(&self, key: &str, value: &Cacheable) -> Result<()> {
        let bytes = self.codec.encode(key, value)?;
        let expires_at = value.expires_at();
        let has_rt = value.has_refresh_token();
        self.conns.write(|tx| {
            self.record_key_check(tx)?;
            tx.prepare_cached(
                "INSERT INTO tokencache_entries (key, value, expires_at, has_refresh_token)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                     expires_at = excluded.expires_at,
                     has_refresh_token = excluded.has_refresh_token",
            )
            .and_then(|mut s| s.execute(params![key, bytes, expires_at, has_rt]))
            .map_err(map_err)
        })?;
        self.key_check_recorded();
        Ok(())
    }

    pub(crate) fn remove(&self, key: &str) -> Result<()> {
        self.conns.write(|tx| {
            tx.prepare_cached("DELETE FROM tokencache_entries WHERE key = ?1")
                .and_then(|mut s| s.execute([key]))
                .map_err(map_err)
        })?;
        Ok(())
    }

    pub(crate) fn remove_many(&self, keys: &[String]) -> Result<()> {
        self.conns.write(|tx| {
            let mut stmt = tx
                .prepare_cached("DELETE FROM tokencache_entries WHERE key = ?1")
                .map_err(map_err)?;
            for key in keys {
                stmt.execute([key]).map_err(map_err)?;
            }
            Ok(())
        })
    }

    /// The keys in `[prefix, successor(prefix))`, in order, read from the primary-key index.
    pub(crate) fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let upper = prefix_upper_bound(prefix);
        self.conns.read(|c| {
            let collect = |mut s: rusqlite::CachedStatement<'_>, p: &[&dyn rusqlite::ToSql]| {
                s.query_map(p, |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            };
            match &upper {
                Some(upper) => c
                    .prepare_cached(
                        "SELECT key FROM tokencache_entries
                         WHERE key >= ?1 AND key < ?2 ORDER BY key",
                    )
                    .and_then(|s| collect(s, params![prefix, upper])),
                None => c
                    .prepare_cached(
                        "SELECT key FROM tokencache_entries WHERE key >= ?1 ORDER BY key",
                    )
                    .and_then(|s| collect(s, params![prefix])),
            }
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
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            char::MAX => None,
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
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
