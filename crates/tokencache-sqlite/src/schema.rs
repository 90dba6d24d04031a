//! The schema, versioned with `PRAGMA user_version`, and its migrations.

use rusqlite::{Connection, TransactionBehavior};
use tokencache_core::{Error, Result};

use crate::error::map_err;

/// The schema version this crate writes and reads.
pub const SCHEMA_VERSION: u32 = 3;

/// Migration `i` takes a database from version `i` to `i + 1`. Version 0 is a database
/// without tokencache tables (a new file, or a file holding other tables, which are left
/// alone).
const MIGRATIONS: &[&str] = &[
    // 0 -> 1. One row per storage key. `value` is the codec's output (a ciphertext with
    // an encrypting codec); `expires_at` (seconds since the epoch, token entries only) and
    // `has_refresh_token` are the only plaintext metadata, kept for `purge`. The primary
    // key's index serves point reads and prefix ranges.
    "CREATE TABLE tokencache_entries (
         key TEXT PRIMARY KEY NOT NULL,
         value BLOB NOT NULL,
         expires_at INTEGER,
         has_refresh_token INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX tokencache_entries_expiry
         ON tokencache_entries(expires_at) WHERE expires_at IS NOT NULL;",
    // 1 -> 2. One key check per key id: the codec's encryption of a fixed marker at a
    // reserved location, written the first time the key id is used, so that other key
    // material under a known id is refused when the cache opens.
    "CREATE TABLE IF NOT EXISTS tokencache_key_checks (
         key_id INTEGER PRIMARY KEY NOT NULL,
         canary BLOB NOT NULL
     );",
    // 2 -> 3. The refresh lock's leases, one row per lock name (see `lease.rs`).
    "CREATE TABLE IF NOT EXISTS tokencache_leases (
         name TEXT PRIMARY KEY NOT NULL,
         holder BLOB NOT NULL,
         epoch INTEGER NOT NULL,
         expires_at_ms INTEGER NOT NULL
     );",
];

/// Brings the database on `conn` to [`SCHEMA_VERSION`] in one `BEGIN IMMEDIATE`
/// transaction (so two processes opening a new file at once migrate it once) and returns
/// the version it found. A database of a newer version is a
/// [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) error.
pub(crate) fn migrate(conn: &mut Connection) -> Result<u32> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_err)?;
    let found: u32 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(map_err)?;
    if found > SCHEMA_VERSION {
        return Err(Error::config(format!(
            "the database has schema version {found}; this version of tokencache-sqlite \
             reads version {SCHEMA_VERSION} at most"
        )));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql).map_err(map_err)?;
        tracing::info!(from, to = from + 1, "migrated the token cache schema");
    }
    if found < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(map_err)?;
    }
    tx.commit().map_err(map_err)?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_version_0_file_and_keeps_other_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v0.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE other (x INTEGER); INSERT INTO other VALUES (7);")
                .unwrap();
            let v: u32 = c
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, 0);
        }
        let mut c = Connection::open(&path).unwrap();
        assert_eq!(migrate(&mut c).unwrap(), 0);
        let v: u32 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let x: i64 = c
            .query_row("SELECT x FROM other", [], |r| r.get(0))
            .unwrap();
        assert_eq!(x, 7);
        c.execute(
            "INSERT INTO tokencache_entries (key, value, expires_at, has_refresh_token) \
             VALUES ('k', x'00', 1, 1)",
            [],
        )
        .unwrap();
        // Idempotent: a second run finds the current version and changes nothing.
        assert_eq!(migrate(&mut c).unwrap(), SCHEMA_VERSION);
        let n: i64 = c
            .query_row("SELECT count(*) FROM tokencache_entries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn migrates_a_version_1_file_and_keeps_its_entries() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute(
            "INSERT INTO tokencache_entries (key, value) VALUES ('k', x'01')",
            [],
        )
        .unwrap();
        assert_eq!(migrate(&mut c).unwrap(), 1);
        let checks: i64 = c
            .query_row("SELECT count(*) FROM tokencache_key_checks", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(checks, 0);
        let value: Vec<u8> = c
            .query_row("SELECT value FROM tokencache_entries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(value, [1]);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let e = migrate(&mut c).unwrap_err();
        assert_eq!(e.kind(), tokencache_core::ErrorKind::Config);
        let tables: i64 = c
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }
}
