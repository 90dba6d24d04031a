//! Group commit: concurrent writes share transactions, every acknowledged write is there,
//! and one write that fails does not fail the writes committed with it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokencache_core::{Cache, CacheEntry, Cacheable, EntryBody, WrappedCacheEntry};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::{SqliteCache, Synchronous};

fn codec() -> Arc<EncryptedCodec> {
    Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::new(1, [0x42; 32])),
        "batch-tests",
    ))
}

fn value(tag: &str) -> Cacheable {
    let e = CacheEntry::new("client", "https://api", "read", format!("at-{tag}"), 3600.0)
        .with_refresh_token(format!("rt-{tag}"));
    WrappedCacheEntry::new(EntryBody::from(e), 1_700_000_000).into()
}

async fn open(path: &Path) -> Arc<SqliteCache> {
    Arc::new(
        SqliteCache::builder(path)
            .codec(codec())
            .synchronous(Synchronous::Full)
            .build()
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_transactions_and_all_land() {
    const TASKS: usize = 32;
    const EACH: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir.path().join("b.db")).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let cache = cache.clone();
            tokio::spawn(async move {
                for n in 0..EACH {
                    let key = format!("k{t:02}-{n}");
                    cache.set(&key, value(&key)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = cache.stats();
    assert_eq!(stats.queued_writes, (TASKS * EACH) as u64, "{stats:?}");
    assert!(stats.batches < stats.queued_writes, "{stats:?}");
    assert!(stats.largest_batch > 1, "{stats:?}");
    assert_eq!(stats.batch_retries, 0, "{stats:?}");

    // Every acknowledged write is there, in another connection's view too.
    let reopened = open(&dir.path().join("b.db")).await;
    let keys = reopened.all_keys().await.unwrap().unwrap();
    assert_eq!(keys.len(), TASKS * EACH);
    for key in &keys {
        assert_eq!(reopened.get(key).await.unwrap(), Some(value(key)), "{key}");
    }

    // Removals go through the queue too, concurrently with each other.
    let removals: Vec<_> = (0..TASKS)
        .map(|t| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let keys: Vec<Arc<str>> =
                    (0..EACH).map(|n| format!("k{t:02}-{n}").into()).collect();
                if t % 2 == 0 {
                    cache.remove_many(&keys).await.unwrap();
                } else {
                    cache.remove(&keys[0]).await.unwrap();
                }
            })
        })
        .collect();
    for r in removals {
        r.await.unwrap();
    }
    let left = cache.all_keys().await.unwrap().unwrap();
    assert_eq!(left.len(), TASKS / 2 * (EACH - 1));
    assert!(left
        .iter()
        .all(|k| k[1..3].parse::<usize>().unwrap() % 2 == 1));
    assert_eq!(
        cache.stats().queued_writes,
        (TASKS * EACH + TASKS) as u64,
        "one queued write per call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_write_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    let cache = open(&path).await;
    cache.set("gone", value("gone")).await.unwrap();
    // A trigger refuses one key: that write fails inside SQLite, as a full disk or a
    // too-large value would.
    let other = Connection::open(&path).unwrap();
    other
        .execute_batch(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON tokencache_entries
             WHEN NEW.key = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    // Hold the write lock so that every write below queues behind it and they are
    // committed together.
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let before = cache.stats();
    let mut writes: Vec<_> = (0..12)
        .map(|n| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let key = format!("good-{n:02}");
                cache.set(&key, value(&key)).await
            })
        })
        .collect();
    writes.push({
        let cache = cache.clone();
        tokio::spawn(async move { cache.set("bad", value("bad")).await })
    });
    writes.push({
        let cache = cache.clone();
        tokio::spawn(async move { cache.remove("gone").await })
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    other.execute_batch("COMMIT").unwrap();

    let mut outcomes = Vec::new();
    for w in writes {
        outcomes.push(w.await.unwrap());
    }
    let bad = outcomes.remove(12);
    assert!(bad.is_err(), "the refused write fails");
    assert!(
        outcomes.iter().all(Result::is_ok),
        "its neighbours do not: {outcomes:?}"
    );
    let stats = cache.stats();
    assert!(stats.batch_retries > before.batch_retries, "{stats:?}");
    assert!(stats.largest_batch > 1, "{stats:?}");

    let mut keys = cache.all_keys().await.unwrap().unwrap().to_strings();
    keys.sort();
    let wanted: Vec<String> = (0..12).map(|n| format!("good-{n:02}")).collect();
    assert_eq!(
        keys, wanted,
        "every good write, no bad one, and `gone` removed"
    );
    for key in &wanted {
        assert_eq!(cache.get(key).await.unwrap(), Some(value(key)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_a_busy_timeout_is_a_temporary_error_for_each_queued_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let cache = Arc::new(
        SqliteCache::builder(&path)
            .codec(codec())
            .busy_timeout(Duration::from_millis(200))
            .build()
            .await
            .unwrap(),
    );
    cache.set("warm", value("warm")).await.unwrap();
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let writes: Vec<_> = (0..4)
        .map(|n| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.set(&format!("w{n}"), value("w")).await })
        })
        .collect();
    for w in writes {
        let e = w.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), tokencache_core::ErrorKind::Unavailable, "{e}");
        assert!(e.is_temporary());
    }
    other.execute_batch("ROLLBACK").unwrap();
    // The queue is not stuck: the next write goes through.
    cache.set("after", value("after")).await.unwrap();
    assert_eq!(cache.get("after").await.unwrap(), Some(value("after")));
    assert_eq!(cache.get("w0").await.unwrap(), None);
}
