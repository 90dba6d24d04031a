//! The key check: a wrong key fails at open and changes nothing; plaintext must be named.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use rusqlite::Connection;
use tokencache_core::{Cache, ErrorKind, JsonCodec, KeyManifestEntry, ValueCodec};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

fn codec(ring: KeyRing) -> Arc<dyn ValueCodec> {
    Arc::new(EncryptedCodec::new(ring, "keycheck-tests"))
}

fn key(id: u32, byte: u8) -> KeyRing {
    KeyRing::new(DataKey::new(id, [byte; 32]))
}

fn manifest(k: &str) -> tokencache_core::Cacheable {
    KeyManifestEntry {
        keys: vec![k.to_owned()],
    }
    .into()
}

/// The key ids with a recorded check.
fn checked_ids(path: &Path) -> Vec<u32> {
    Connection::open(path)
        .unwrap()
        .prepare("SELECT key_id FROM tokencache_key_checks ORDER BY key_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// The bytes and modification time of the database file and its side files.
fn snapshot(path: &Path) -> Vec<(String, Vec<u8>, SystemTime)> {
    let mut out = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("{}{suffix}", path.display());
        if let Ok(meta) = std::fs::metadata(&name) {
            out.push((
                name.clone(),
                std::fs::read(&name).unwrap(),
                meta.modified().unwrap(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_fails_at_open_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    {
        let cache = SqliteCache::open(&path, codec(key(1, 1))).await.unwrap();
        cache.set("a", manifest("a")).await.unwrap();
    }
    assert_eq!(checked_ids(&path), [1]);
    let before = snapshot(&path);
    assert!(!before.is_empty());
    // Same id, other key material: refused at open, before any read or write.
    let err = SqliteCache::open(&path, codec(key(1, 2)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(err.to_string().contains("key id 1") || err.to_string().contains("id 1"));
    assert_eq!(snapshot(&path), before, "a refused open touched the files");
    assert_eq!(checked_ids(&path), [1]);
    // The right key opens and reads.
    let cache = SqliteCache::open(&path, codec(key(1, 1))).await.unwrap();
    assert_eq!(cache.get("a").await.unwrap(), Some(manifest("a")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_records_the_new_key_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rot.db");
    let cache = SqliteCache::open(&path, codec(key(1, 1))).await.unwrap();
    cache.set("a", manifest("a")).await.unwrap();
    drop(cache);

    let mut ring = key(1, 1);
    ring.rotate(DataKey::new(2, [2; 32])).unwrap();
    let cache = SqliteCache::open(&path, codec(ring)).await.unwrap();
    assert_eq!(cache.rotate().await.unwrap().rewritten, 1);
    assert_eq!(checked_ids(&path), [1, 2]);
    drop(cache);

    // Key id 2 with other material is refused now, even alone in its ring.
    let err = SqliteCache::open(&path, codec(key(2, 3)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    // Key id 2 with its own material opens and reads the rotated value.
    let cache = SqliteCache::open(&path, codec(key(2, 2))).await.unwrap();
    assert_eq!(cache.get("a").await.unwrap(), Some(manifest("a")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_before_key_checks_refuses_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let cache = SqliteCache::open(&path, codec(key(1, 1))).await.unwrap();
        cache.set("a", manifest("a")).await.unwrap();
    }
    // Back to what schema version 1 wrote: no key checks.
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch("DROP TABLE tokencache_key_checks; PRAGMA user_version = 1;")
            .unwrap();
    }
    let err = SqliteCache::open(&path, codec(key(1, 9)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(
        checked_ids(&path).is_empty(),
        "no check recorded for a wrong key"
    );
    let cache = SqliteCache::open(&path, codec(key(1, 1))).await.unwrap();
    assert_eq!(cache.get("a").await.unwrap(), Some(manifest("a")));
    assert!(
        checked_ids(&path).is_empty(),
        "recorded by the first write only"
    );
    cache.set("b", manifest("b")).await.unwrap();
    assert_eq!(checked_ids(&path), [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_and_reading_never_claim_a_key_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claim.db");
    {
        let cache = SqliteCache::open(&path, codec(key(7, 7))).await.unwrap();
        cache.set("a", manifest("a")).await.unwrap();
    }
    // A stranger's key under an unused id opens (nothing under id 1 to check it
    // against), reads nothing it can decrypt, and leaves no trace.
    {
        let stranger = SqliteCache::open(&path, codec(key(1, 9))).await.unwrap();
        assert_eq!(stranger.all_keys().await.unwrap().unwrap(), ["a"]);
        assert_eq!(
            stranger.get("a").await.unwrap_err().kind(),
            ErrorKind::Integrity
        );
    }
    assert_eq!(checked_ids(&path), [7]);
    // So the owner's key for id 1 is still free to be used.
    let mut ring = key(7, 7);
    ring.rotate(DataKey::new(1, [1; 32])).unwrap();
    let owner = SqliteCache::open(&path, codec(ring)).await.unwrap();
    owner.set("b", manifest("b")).await.unwrap();
    assert_eq!(checked_ids(&path), [1, 7]);
    // A second process that opened before the check was recorded cannot write under
    // id 1 with other material: the write itself verifies the check.
    let early = SqliteCache::open(dir.path().join("race.db"), codec(key(3, 3)))
        .await
        .unwrap();
    let late_owner = SqliteCache::open(dir.path().join("race.db"), codec(key(3, 4)))
        .await
        .unwrap();
    early.set("x", manifest("x")).await.unwrap();
    assert_eq!(
        late_owner.set("y", manifest("y")).await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert_eq!(early.all_keys().await.unwrap().unwrap(), ["x"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_must_be_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.db");
    let err = SqliteCache::builder(&path).build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("plaintext"));
    assert!(!path.exists(), "a refused builder created the file");

    let cache = SqliteCache::builder(&path)
        .plaintext()
        .build()
        .await
        .unwrap();
    let debug = format!("{cache:?}");
    assert!(
        debug.contains(r#"codec: "plaintext (JsonCodec)""#),
        "{debug}"
    );
    cache.set("a", manifest("a")).await.unwrap();
    assert!(
        checked_ids(&path).is_empty(),
        "plaintext records no key check"
    );

    // An explicit codec is not called plaintext, and an encrypted one is named.
    let json = SqliteCache::open(&path, Arc::new(JsonCodec)).await.unwrap();
    assert!(!format!("{json:?}").contains("plaintext"));
    let enc = SqliteCache::open(dir.path().join("enc.db"), codec(key(4, 4)))
        .await
        .unwrap();
    assert!(format!("{enc:?}").contains("EncryptedCodec"));
}
