//! Reads on the calling task: they agree with reads on the cache's threads, do not wait
//! for a writer, and a long listing goes to the cache's threads.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use tokencache_core::{Cache, CacheEntry, Cacheable, EntryBody, WrappedCacheEntry};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

fn codec() -> Arc<EncryptedCodec> {
    Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::new(1, [0x24; 32])),
        "inline-tests",
    ))
}

fn value(tag: &str) -> Cacheable {
    let e = CacheEntry::new("client", "https://api", "read", format!("at-{tag}"), 3600.0);
    WrappedCacheEntry::new(EntryBody::from(e), 1_700_000_000).into()
}

async fn open(path: &Path, inline: bool) -> SqliteCache {
    SqliteCache::builder(path)
        .codec(codec())
        .inline_reads(inline)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn inline_reads_agree_with_worker_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.db");
    let inline = open(&path, true).await;
    let workers = open(&path, false).await;
    for k in ["a::1", "a::2", "ab::1", "b::1"] {
        inline.set(k, value(k)).await.unwrap();
    }
    let mut reads = 0;
    for k in ["a::1", "a::2", "ab::1", "b::1", "missing"] {
        let here = inline.get(k).await.unwrap();
        assert_eq!(here, workers.get(k).await.unwrap(), "{k}");
        assert_eq!(here, (k != "missing").then(|| value(k)));
        reads += 1;
    }
    for prefix in ["a", "a::", "b::", "c", ""] {
        let here = inline.keys_with_prefix(prefix).await.unwrap();
        assert_eq!(here, workers.keys_with_prefix(prefix).await.unwrap());
        reads += 1;
    }
    // A write is seen by the next inline read.
    inline.set("a::1", value("new")).await.unwrap();
    assert_eq!(inline.get("a::1").await.unwrap(), Some(value("new")));
    reads += 1;

    let (i, w) = (inline.stats(), workers.stats());
    assert_eq!(i.inline_reads + i.worker_reads, reads);
    // (A read slowed by a loaded machine pauses the inline path for a second, so not
    // every read need have run inline.)
    assert!(i.inline_reads > 0, "{i:?}");
    assert_eq!((w.inline_reads, w.worker_reads), (0, reads - 1), "{w:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_listing_goes_to_the_workers() {
    const ROWS: usize = 30_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let cache = open(&path, true).await;
    cache.set("k-00000", value("x")).await.unwrap();
    {
        // Rows written straight into the table (a listing reads keys only).
        let mut c = Connection::open(&path).unwrap();
        let tx = c.transaction().unwrap();
        let mut ins = tx
            .prepare("INSERT INTO tokencache_entries (key, value) VALUES (?1, x'00')")
            .unwrap();
        for n in 1..ROWS {
            ins.execute(params![format!("k-{n:05}")]).unwrap();
        }
        drop(ins);
        tx.commit().unwrap();
    }
    let before = cache.stats();
    let keys = cache.keys_with_prefix("k-").await.unwrap().unwrap();
    assert_eq!(keys.len(), ROWS);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    let after = cache.stats();
    assert_eq!(after.worker_reads, before.worker_reads + 1, "{after:?}");
    assert_eq!(after.inline_reads, before.inline_reads, "{after:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn reads_do_not_wait_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let cache = open(&path, true).await;
    cache.set("k", value("committed")).await.unwrap();
    // Another connection writes and does not commit: the cache reads the committed value,
    // at once, on the calling task.
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    other
        .execute(
            "UPDATE tokencache_entries SET value = x'0102' WHERE key = 'k'",
            [],
        )
        .unwrap();
    let before = cache.stats();
    let start = Instant::now();
    assert_eq!(cache.get("k").await.unwrap(), Some(value("committed")));
    assert!(start.elapsed() < Duration::from_secs(1));
    let after = cache.stats();
    assert_eq!(
        after.inline_reads + after.worker_reads,
        before.inline_reads + before.worker_reads + 1
    );
    other.execute_batch("ROLLBACK").unwrap();
}
