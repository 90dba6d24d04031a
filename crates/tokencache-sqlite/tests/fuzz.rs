//! Robustness of the row reader: arbitrary rows written straight into the database file
//! with rusqlite (any bytes, and any SQLite type, in the `value` and `key` columns) are
//! read through the cache — `get`, the key listings, `purge`, `rotate` — without a panic,
//! as a valid value, a miss or a typed error. A plaintext cache sees a miss or the JSON's
//! value; an encrypted one an integrity error.
//!
//! 256 cases per property by default (proptest's own); `PROPTEST_CASES=100000` runs more.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use rusqlite::types::Value;
use rusqlite::Connection;
use tokencache_core::{Cache, Cacheable, ErrorKind, JsonCodec};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

/// A stored SQLite value of any type but NULL (the column is `NOT NULL`).
fn sql_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Value::Blob),
        2 => any::<String>().prop_map(Value::Text),
        // JSON-looking bytes reach the value decoder.
        2 => "\\{\"(body|keys|id_token|expiresAt)\":[\\[\\]{}0-9a-z\",:]{0,40}\\}"
            .prop_map(|s| Value::Blob(s.into_bytes())),
        1 => any::<i64>().prop_map(Value::Integer),
        1 => any::<f64>().prop_map(Value::Real),
    ]
}

/// A key column: usually text, sometimes a blob (SQLite does not enforce `TEXT`).
fn sql_key() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => "@@auth0spajs@@::[a-z:]{0,12}".prop_map(Value::Text),
        2 => any::<String>().prop_map(Value::Text),
        2 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Blob),
    ]
}

/// A metadata column of any type but NULL.
fn sql_int() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Real),
        "[0-9a-z]{0,4}".prop_map(Value::Text),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::Blob),
    ]
}

/// `expires_at` may also be NULL (values that are not token entries).
fn sql_expiry() -> impl Strategy<Value = Value> {
    prop_oneof![Just(Value::Null), sql_int()]
}

struct Rig {
    rt: tokio::runtime::Runtime,
    raw: Connection,
    plain: SqliteCache,
    encrypted: SqliteCache,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzz.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (plain, encrypted) = rt.block_on(async {
            let plain = SqliteCache::open(&path, Arc::new(JsonCodec)).await.unwrap();
            let keys = KeyRing::new(DataKey::new(1, [7; 32]));
            let encrypted = SqliteCache::open(&path, Arc::new(EncryptedCodec::new(keys, "fuzz")))
                .await
                .unwrap();
            (plain, encrypted)
        });
        Rig {
            rt,
            raw: raw_connection(&path),
            plain,
            encrypted,
            _dir: dir,
        }
    }

    fn write(&self, key: &Value, value: &Value, expires_at: &Value, has_rt: &Value) {
        self.raw
            .execute("DELETE FROM tokencache_entries", [])
            .unwrap();
        self.raw
            .execute(
                "INSERT INTO tokencache_entries (key, value, expires_at, has_refresh_token)
                 VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![key, value, expires_at, has_rt],
            )
            .unwrap();
    }
}

fn raw_connection(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    // The cases need no durability; the cache's own connections keep theirs.
    c.execute_batch("PRAGMA synchronous = OFF; PRAGMA busy_timeout = 10000;")
        .unwrap();
    c
}

thread_local! {
    static RIG: Rig = Rig::new();
}

fn check(
    key: &Value,
    value: &Value,
    expires_at: &Value,
    has_rt: &Value,
) -> Result<(), TestCaseError> {
    RIG.with(|rig| {
        rig.write(key, value, expires_at, has_rt);
        let key_text = match key {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        };
        rig.rt.block_on(async {
            if let Some(k) = &key_text {
                match (value, rig.plain.get(k).await) {
                    // Bytes that parse are the value they hold; the rest is a miss.
                    (Value::Blob(b), Ok(got)) => {
                        prop_assert_eq!(got, Cacheable::from_json(b).ok())
                    }
                    // Text or a number where the bytes belong: the row is not one this
                    // cache wrote, a typed error.
                    (Value::Text(_) | Value::Integer(_) | Value::Real(_), Err(e)) => {
                        prop_assert_eq!(e.kind(), ErrorKind::Unexpected, "{}", e)
                    }
                    (v, got) => prop_assert!(false, "{:?} read as {:?}", v, got),
                }
                match (value, rig.encrypted.get(k).await) {
                    (Value::Blob(_), Err(e)) => {
                        prop_assert_eq!(e.kind(), ErrorKind::Integrity, "{}", e)
                    }
                    (_, Err(e)) => prop_assert_eq!(e.kind(), ErrorKind::Unexpected, "{}", e),
                    (v, Ok(got)) => prop_assert!(false, "{:?} decrypted as {:?}", v, got),
                }
            }
            for cache in [&rig.plain, &rig.encrypted] {
                match (&key_text, cache.all_keys().await) {
                    (Some(k), Ok(keys)) => {
                        prop_assert_eq!(keys.map(Vec::from), Some(vec![k.clone()]))
                    }
                    // A blob where a key belongs is a typed error, not a key.
                    (None, Err(e)) => prop_assert_eq!(e.kind(), ErrorKind::Unexpected, "{}", e),
                    (k, got) => prop_assert!(false, "key {:?} listed as {:?}", k, got),
                }
                if let Some(k) = &key_text {
                    let prefix: String = k.chars().take(5).collect();
                    let listed = cache.keys_with_prefix(&prefix).await;
                    prop_assert_eq!(
                        listed.ok().map(|l| l.map(Vec::from)),
                        Some(Some(vec![k.clone()]))
                    );
                }
            }
            // Maintenance over the row. A forged value is reported by a rotation and left as
            // it is (documented); a row of the wrong types is an unexpected error.
            let forged = key_text.is_some() && matches!(value, Value::Blob(_));
            match rig.encrypted.rotate().await {
                Ok(done) if forged => {
                    prop_assert_eq!(done.rewritten, 0);
                    prop_assert_eq!(done.unreadable, vec![key_text.clone().unwrap()]);
                }
                Err(e) if !forged => prop_assert_eq!(e.kind(), ErrorKind::Unexpected, "{}", e),
                other => prop_assert!(
                    false,
                    "rotation over a forged row: {:?}",
                    other.map(|d| d.rewritten)
                ),
            }
            // Purge reads only the metadata columns, whatever their types.
            let purged = rig.encrypted.purge().await;
            prop_assert!(purged.is_ok(), "{:?}", purged);
            Ok(())
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn arbitrary_rows_read_as_values_misses_or_typed_errors(
        key in sql_key(),
        value in sql_value(),
        expires_at in sql_expiry(),
        has_rt in sql_int(),
    ) {
        check(&key, &value, &expires_at, &has_rt)?;
    }
}

#[test]
fn a_row_the_cache_wrote_reads_back() {
    // The rig reads what the cache writes: the failures above are the rows' fault.
    RIG.with(|rig| {
        rig.rt.block_on(async {
            let v = Cacheable::from(tokencache_core::KeyManifestEntry { keys: vec![] });
            rig.encrypted
                .set("@@auth0spajs@@::k", v.clone())
                .await
                .unwrap();
            assert_eq!(
                rig.encrypted.get("@@auth0spajs@@::k").await.unwrap(),
                Some(v)
            );
            // A plaintext codec over ciphertext: not JSON, a miss.
            assert_eq!(rig.plain.get("@@auth0spajs@@::k").await.unwrap(), None);
        })
    });
}
