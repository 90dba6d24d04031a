//! One bad row does not take its neighbours down (real files, real ciphertext): a value
//! that fails authentication is skipped by the manager's listing operations, is a typed
//! error for a direct `get`, and `clear` removes it.

use std::sync::Arc;

use rusqlite::Connection;
use tokencache_core::{
    CacheEntry, CacheKey, CacheManager, ErrorKind, GetOptions, ManualClock, ValueCodec,
};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

const NOW_MS: i64 = 1_700_000_000_000;

fn codec(id: u32, byte: u8) -> Arc<dyn ValueCodec> {
    Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::new(id, [byte; 32])),
        "tokencache",
    ))
}

async fn manager(path: &std::path::Path, codec: Arc<dyn ValueCodec>) -> CacheManager {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let cache = SqliteCache::builder(path)
        .codec(codec)
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    CacheManager::builder(Arc::new(cache))
        .clock(clock)
        .build()
        .unwrap()
}

fn entry(scope: &str, at: &str) -> CacheEntry {
    CacheEntry::new("app", "https://api", scope, at, 3600.0).with_refresh_token("rt-1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_row_is_skipped_by_lookups_and_removed_by_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.db");
    let m = manager(&path, codec(1, 1)).await;
    m.set(entry("openid read", "at-good")).await.unwrap();
    m.set(entry("openid", "at-other")).await.unwrap();
    // Another writer, under a key id this ring does not hold, stores the best candidate.
    let stranger = manager(&path, codec(9, 9)).await;
    stranger
        .set(entry("openid profile", "at-stranger"))
        .await
        .unwrap();
    // And one row's ciphertext is damaged on disk.
    let bad_key = CacheKey::new("app", Some("https://api"), Some("openid")).to_key();
    let db = Connection::open(&path).unwrap();
    let mut value: Vec<u8> = db
        .query_row(
            "SELECT value FROM tokencache_entries WHERE key = ?1",
            [&bad_key],
            |r| r.get(0),
        )
        .unwrap();
    *value.last_mut().unwrap() ^= 0x01;
    db.execute(
        "UPDATE tokencache_entries SET value = ?2 WHERE key = ?1",
        rusqlite::params![bad_key, value],
    )
    .unwrap();
    drop(db);

    let err = m
        .get(
            &CacheKey::new("app", Some("https://api"), Some("openid")),
            GetOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "a direct get: {err}");

    // The scope lookup for "read" finds the readable entry past the two bad ones.
    let body = m
        .get(
            &CacheKey::new("app", Some("https://api"), Some("read")),
            GetOptions::default(),
        )
        .await
        .unwrap()
        .expect("the readable entry");
    assert_eq!(body.access_token.as_deref(), Some("at-good"));
    m.update_entry("rt-1", "rt-2", "app", false).await.unwrap();
    m.strip_refresh_token("rt-2").await.unwrap();
    assert!(m.skipped_values() >= 4, "{}", m.skipped_values());

    m.clear(None).await.unwrap();
    let rows: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM tokencache_entries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "clear left rows behind");
}
