//! The key check: per key id, the codec's encryption of a fixed marker at a reserved
//! location, recorded the first time the key id is used. It makes a wrong key fail when
//! the cache opens, not later and not silently.

use rusqlite::{params, Connection, OptionalExtension};
use tokencache_core::{Cacheable, Error, ErrorKind, KeyManifestEntry, Result};
use tokencache_crypto::EncryptedCodec;

use crate::cache::Inner;
use crate::error::map_err;

/// The storage location the check is encrypted for (no entry can live there: checks
/// are in their own table).
const CHECK_LOCATION: &str = "tokencache-sqlite:key-check";
/// What the check holds.
const MARKER: &str = "tokencache-sqlite key check v1";

fn marker() -> Cacheable {
    KeyManifestEntry {
        keys: vec![MARKER.to_owned()],
    }
    .into()
}

fn wrong_key(id: u32, source: Option<Error>) -> Error {
    let e = Error::integrity(format!(
        "the key with id {id} is not the key this database was written with under that id \
         (its key check does not authenticate): wrong key material"
    ));
    match source {
        Some(s) => e.with_source(s),
        None => e,
    }
}

impl Inner {
    /// Checks the codec's active key against the database's check for its id, recording
    /// a check when the id is new. Plaintext caches and codecs that do not write
    /// `EncryptedCodec`'s format record none.
    pub(crate) fn check_key(&self) -> Result<()> {
        if self.plaintext {
            return Ok(());
        }
        let canary = self.codec.encode(CHECK_LOCATION, &marker())?;
        let Some(id) = EncryptedCodec::key_id_of(&canary) else {
            tracing::debug!("the codec does not write encrypted values; no key check");
            return Ok(());
        };
        // The common case reads only.
        if let Some(stored) = self.conns.read(|c| stored_check(c, id))? {
            return self.verify(id, &stored);
        }
        self.conns.write(|tx| {
            if let Some(stored) = stored_check(tx, id)? {
                // Another process recorded it meanwhile.
                return self.verify(id, &stored);
            }
            self.verify_existing_entry(tx, id)?;
            tx.execute(
                "INSERT INTO tokencache_key_checks (key_id, canary) VALUES (?1, ?2)",
                params![id, canary],
            )
            .map_err(map_err)?;
            tracing::info!(key_id = id, "recorded the key check of a new key id");
            Ok(())
        })
    }

    fn verify(&self, id: u32, stored: &[u8]) -> Result<()> {
        match self.codec.decode(CHECK_LOCATION, stored) {
            Ok(v) if v == marker() => Ok(()),
            Ok(_) => Err(wrong_key(id, None)),
            Err(e) => Err(wrong_key(id, Some(e))),
        }
    }

    /// A database written before key checks existed (schema version 1) may hold values
    /// under this key id: one of them must authenticate before the check is recorded.
    fn verify_existing_entry(&self, conn: &Connection, id: u32) -> Result<()> {
        let mut header = vec![tokencache_crypto::FORMAT_VERSION];
        header.extend_from_slice(&id.to_be_bytes());
        let row: Option<(String, Vec<u8>)> = conn
            .prepare_cached(
                "SELECT key, value FROM tokencache_entries WHERE substr(value, 1, 5) = ?1 LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row([&header], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(map_err)?;
        match row {
            Some((key, value)) => match self.codec.decode(&key, &value) {
                Err(e) if e.kind() == ErrorKind::Integrity => Err(wrong_key(id, Some(e))),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }
}

fn stored_check(conn: &Connection, id: u32) -> Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT canary FROM tokencache_key_checks WHERE key_id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(map_err)
}
