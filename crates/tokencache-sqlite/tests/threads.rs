//! The cache's own threads: any executor drives it, and they stop with the cache.
//! (Its own test binary: it counts the process's threads, so no other test may run.)
#![cfg(target_os = "linux")]

use std::time::Duration;

use tokencache_core::{Cache, CacheEntry, Cacheable, EntryBody, WrappedCacheEntry};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

fn entry() -> Cacheable {
    let e = CacheEntry::new("client", "https://api", "read", "at", 3600.0);
    WrappedCacheEntry::new(EntryBody::from(e), 1_700_000_000).into()
}

/// The threads of live caches, by name (Linux: /proc/self/task/*/comm).
#[cfg(target_os = "linux")]
fn worker_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("tokencache-sqli"))
        .count()
}

/// No tokio: the cache runs its own threads, so any executor can drive it; its threads
/// stop when the last handle is dropped.
#[cfg(target_os = "linux")]
#[test]
fn works_without_tokio_and_stops_its_threads_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let before = worker_threads();
    futures::executor::block_on(async {
        let cache = SqliteCache::builder(dir.path().join("any.db"))
            .codec(std::sync::Arc::new(EncryptedCodec::new(
                KeyRing::new(DataKey::new(1, [1; 32])),
                "threads",
            )))
            .threads(3)
            .build()
            .await
            .unwrap();
        let clone = cache.clone();
        clone.set("k", entry()).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap(), Some(entry()));
        assert_eq!(worker_threads(), before + 3);
        drop(cache);
        assert_eq!(clone.all_keys().await.unwrap().unwrap(), vec!["k"]);
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while worker_threads() > before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(worker_threads() <= before, "worker threads left running");
}
