//! The key check: per key id, the codec's encryption of a fixed marker at a reserved
//! location, recorded with the first write under the key id (never by opening or
//! reading). It makes a wrong key fail when the cache opens, not later and not silently,
//! and a write under a known id with other key material impossible.

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

/// The check of a key id the database does not know yet, recorded with the first write
/// under it.
pub(crate) struct PendingCheck {
    id: u32,
    canary: Vec<u8>,
}

impl Inner {
    /// At open, read only: checks the codec's active key against the database's check
    /// for its id. When the id has no check yet (and no value under it that fails to
    /// authenticate), returns the check that the first write records
    /// ([`Inner::record_key_check`]): a read with a key never claims its id. Plaintext
    /// caches and codecs that do not write `EncryptedCodec`'s format have no check.
    pub(crate) fn check_key(&self) -> Result<Option<PendingCheck>> {
        if self.plaintext {
            return Ok(None);
        }
        let canary = self.codec.encode(CHECK_LOCATION, &marker())?;
        let Some(id) = EncryptedCodec::key_id_of(&canary) else {
            tracing::debug!("the codec does not write encrypted values; no key check");
            return Ok(None);
        };
        match self.conns.read(|c| stored_check(c, id))? {
            Some(stored) => self.verify(id, &stored).map(|()| None),
            None => {
                self.conns.read(|c| self.verify_existing_entry(c, id))?;
                Ok(Some(PendingCheck { id, canary }))
            }
        }
    }

    /// In a write transaction that encrypts under the active key: records its check if
    /// it is still pending (verifying the one another process may have recorded
    /// meanwhile). Cheap once recorded.
    pub(crate) fn record_key_check(&self, tx: &Connection) -> Result<()> {
        let pending = crate::pool::lock(&self.pending_check);
        let Some(PendingCheck { id, canary }) = pending.as_ref() else {
            return Ok(());
        };
        let id = *id;
        if let Some(stored) = stored_check(tx, id)? {
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
    }

    /// After the transaction that called [`Inner::record_key_check`] committed.
    pub(crate) fn key_check_recorded(&self) {
        crate::pool::lock(&self.pending_check).take();
    }

    fn verify(&self, id: u32, stored: &[u8]) -> Result<()> {
        match self.codec.decode(CHECK_LOCATION, stored) {
            Ok(v) if v == marker() => Ok(()),
            Ok(_) => Err(wrong_key(id, None)),
            Err(e) => Err(wrong_key(id, Some(e))),
        }
    }

    /// A database written before key checks existed (schema version 1) may hold values
    /// under this key id: one of them must authenticate.
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
