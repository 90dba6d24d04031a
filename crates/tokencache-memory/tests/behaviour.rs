//! Behaviour of the moka-based `MemoryCache`: physical expiry, refresh-token retention,
//! capacity, the key index under concurrency, prefix listing.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;
use std::time::Duration;

use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, Cacheable, Clock, DecodedToken, EntryBody,
    ErrorKind, GetOptions, IdTokenEntry, KeyManifestEntry, ManualClock, Retention,
    WrappedCacheEntry,
};
use tokencache_memory::MemoryCache;

/// A whole second, so that `now_s` is exact.
const NOW_MS: i64 = 1_700_000_000_000;
const NOW_S: i64 = NOW_MS / 1000;

fn entry(rt: bool, expires_at: i64) -> Cacheable {
    let mut e = CacheEntry::new("c", "https://api", "read", "at", 60.0);
    if rt {
        e = e.with_refresh_token("rt");
    }
    Cacheable::Entry(WrappedCacheEntry::new(EntryBody::from(e), expires_at))
}

fn cache_at(clock_ms: i64, retention: Retention) -> (MemoryCache, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(clock_ms));
    let cache = MemoryCache::builder()
        .clock(clock.clone())
        .refresh_token_retention(retention)
        .build();
    (cache, clock)
}

async fn listed(cache: &MemoryCache) -> Vec<String> {
    cache.all_keys().await.unwrap().unwrap().to_strings()
}

/// The keys whose `get` returns a value, among `candidates`, sorted.
async fn live(cache: &MemoryCache, candidates: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for k in candidates {
        if cache.get(k).await.unwrap().is_some() {
            out.push(k.clone());
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn an_entry_without_refresh_token_expires_at_its_expires_at_never_before() {
    // The entry is expired for the manager from (expiresAt + 1) s; the clock stands 150 ms
    // before that, so moka's own timer drops it 150 ms from now.
    let expires_at = NOW_S + 10;
    let (cache, clock) = cache_at((expires_at + 1) * 1000 - 150, Retention::NEVER);
    cache.set("k", entry(false, expires_at)).await.unwrap();
    assert!(cache.get("k").await.unwrap().is_some());
    assert_eq!(listed(&cache).await, ["k"]);
    // The logical clock moving on does not matter: the lifetime was fixed on write.
    clock.advance(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(cache.get("k").await.unwrap().is_some(), "dropped early");

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(cache.get("k").await.unwrap().is_none());
    assert!(listed(&cache).await.is_empty());
    assert_eq!(cache.entry_count().await, 0);
    // Moka's timer wheel frees it within about a second.
    let mut waited = 0;
    while cache.weighted_size().await != 0 {
        assert!(waited < 3000, "expired entry never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 100;
    }
}

#[tokio::test]
async fn an_entry_expired_when_written_is_gone_at_once() {
    let (cache, _) = cache_at(NOW_MS, Retention::NEVER);
    cache.set("k", entry(false, NOW_S - 1)).await.unwrap();
    assert!(cache.get("k").await.unwrap().is_none());
    assert!(listed(&cache).await.is_empty());
    // In its last second it is still there.
    cache.set("k", entry(false, NOW_S)).await.unwrap();
    assert!(cache.get("k").await.unwrap().is_some());
}

#[tokio::test]
async fn refresh_token_entries_are_kept_for_ever_by_default() {
    let (cache, _) = cache_at(NOW_MS, Retention::NEVER);
    cache.set("rt", entry(true, NOW_S - 3600)).await.unwrap();
    cache
        .set("plain", entry(false, NOW_S - 3600))
        .await
        .unwrap();
    let manifest = Cacheable::Manifest(KeyManifestEntry {
        keys: vec!["rt".into()],
    });
    cache.set("manifest", manifest.clone()).await.unwrap();
    let id = Cacheable::IdToken(IdTokenEntry {
        id_token: "id".into(),
        decoded_token: DecodedToken::default(),
    });
    cache.set("id", id.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    cache.run_pending_tasks().await;
    assert_eq!(
        cache.get("rt").await.unwrap(),
        Some(entry(true, NOW_S - 3600))
    );
    assert_eq!(cache.get("manifest").await.unwrap(), Some(manifest));
    assert_eq!(cache.get("id").await.unwrap(), Some(id));
    assert!(cache.get("plain").await.unwrap().is_none());
    assert_eq!(listed(&cache).await, ["id", "manifest", "rt"]);
    assert_eq!(cache.entry_count().await, 3);
}

#[tokio::test]
async fn refresh_token_entries_go_after_the_retention() {
    let retention = Duration::from_secs(30 * 24 * 3600);
    let expires_at = NOW_S - 5;
    // 200 ms before the retention ends.
    let clock_ms = (expires_at + 1) * 1000 + retention.as_millis() as i64 - 200;
    let (cache, _) = cache_at(clock_ms, Retention::after(retention));
    cache.set("rt", entry(true, expires_at)).await.unwrap();
    cache.set("plain", entry(false, expires_at)).await.unwrap();
    assert!(cache.get("rt").await.unwrap().is_some());
    assert!(cache.get("plain").await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(cache.get("rt").await.unwrap().is_none());
    assert_eq!(cache.entry_count().await, 0);
}

/// Moka keeps and drops exactly what the core's policy says: for each retention, entries
/// with and without a refresh token, some past their `Retention::deadline_ms`, some not.
#[tokio::test]
async fn moka_follows_the_retention_policy() {
    let retentions = [
        Retention::NEVER,
        Retention::after(Duration::ZERO),
        Retention::after(Duration::from_secs(60)),
        Retention::after(Duration::MAX),
    ];
    for retention in retentions {
        let (cache, clock) = cache_at(NOW_MS, retention);
        let mut keys = Vec::new();
        for rt in [false, true] {
            for expires_at in [NOW_S - 120, NOW_S - 30, NOW_S - 1, NOW_S, NOW_S + 3600] {
                let key = format!("rt={rt} expires_at={expires_at}");
                cache.set(&key, entry(rt, expires_at)).await.unwrap();
                keys.push((key, entry(rt, expires_at)));
            }
        }
        let manifest = Cacheable::Manifest(KeyManifestEntry::default());
        cache.set("manifest", manifest.clone()).await.unwrap();
        keys.push(("manifest".to_owned(), manifest));
        tokio::time::sleep(Duration::from_millis(20)).await;
        cache.run_pending_tasks().await;
        let now_ms = clock.now_ms();
        for (key, value) in &keys {
            let past = retention.deadline_ms(value).is_some_and(|d| now_ms >= d);
            let kept = cache.get(key).await.unwrap().is_some();
            assert_eq!(kept, !past, "{retention:?} {key}");
        }
        // The policy drops entries without a refresh token once expired, keeps the others
        // by default: this test would notice a policy that dropped nothing.
        assert!(cache.get(&keys[0].0).await.unwrap().is_none());
        assert_eq!(
            cache.get(&keys[5].0).await.unwrap().is_some(),
            retention == Retention::NEVER || retention.duration() == Some(Duration::MAX)
        );
    }
}

#[tokio::test]
async fn a_rewrite_sets_a_new_lifetime() {
    let (cache, _) = cache_at((NOW_S + 1) * 1000 - 100, Retention::NEVER);
    cache.set("k", entry(false, NOW_S)).await.unwrap();
    // Rewritten with a later expiry (and, for the other key, stripped of its RT).
    cache.set("k", entry(false, NOW_S + 60)).await.unwrap();
    cache.set("s", entry(true, NOW_S)).await.unwrap();
    cache.set("s", entry(false, NOW_S)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(cache.get("k").await.unwrap().is_some());
    assert!(cache.get("s").await.unwrap().is_none());
}

fn big(n: usize) -> Cacheable {
    let e = CacheEntry::new("c", "https://api", "read", "t".repeat(n), 60.0);
    Cacheable::Entry(WrappedCacheEntry::new(EntryBody::from(e), i64::MAX / 2000))
}

#[tokio::test]
async fn capacity_evicts_and_the_index_follows() {
    let cache = MemoryCache::builder().max_capacity_bytes(20 * 1024).build();
    let keys: Vec<String> = (0..40).map(|i| format!("key-{i:02}")).collect();
    for k in &keys {
        cache.set(k, big(1000)).await.unwrap();
    }
    cache.run_pending_tasks().await;
    let size = cache.weighted_size().await;
    let count = cache.entry_count().await;
    assert!(size <= 20 * 1024, "{size}");
    assert!(count > 5 && count < 20, "{count}");
    // The most recent write is kept (LRU, no admission filter).
    assert!(cache.get("key-39").await.unwrap().is_some());
    let listed = listed(&cache).await;
    assert_eq!(listed, live(&cache, &keys).await);
    assert_eq!(listed.len() as u64, count);
}

#[tokio::test]
async fn an_entry_larger_than_the_capacity_is_quota_exceeded() {
    let cache = MemoryCache::builder().max_capacity_bytes(4096).build();
    cache.set("k", big(10)).await.unwrap();
    let e = cache.set("k", big(5000)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
    let kept = cache.get("k").await.unwrap().unwrap();
    let token = kept.as_entry().unwrap().body.access_token.clone().unwrap();
    assert_eq!(token.len(), 10);
    let e = cache.set("other", big(5000)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(listed(&cache).await, ["k"]);
}

#[tokio::test]
async fn keys_with_prefix_boundaries() {
    let cache = MemoryCache::new();
    let v = Cacheable::Manifest(KeyManifestEntry::default());
    let all = [
        "p::a",
        "p::a::x",
        "p::a:",
        "p::b",
        "p::",
        "p:",
        "q::a",
        "p::a\u{10ffff}",
    ];
    for k in all {
        cache.set(k, v.clone()).await.unwrap();
    }
    let with = |p: &'static str| {
        let cache = &cache;
        async move { cache.keys_with_prefix(p).await.unwrap().unwrap() }
    };
    assert_eq!(with("p::a::").await, ["p::a::x"]);
    assert_eq!(
        with("p::a").await,
        ["p::a", "p::a:", "p::a::x", "p::a\u{10ffff}"]
    );
    assert_eq!(with("p::").await.len(), 6);
    assert_eq!(with("p:").await.len(), 7);
    assert!(with("r").await.is_empty());
    assert_eq!(with("").await.len(), all.len());
    cache.remove("p::a::x").await.unwrap();
    cache.remove("never-there").await.unwrap();
    assert!(with("p::a::").await.is_empty());
    assert!(cache.lists_keys());
}

/// A small deterministic generator, so the test needs no random crate.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_index_stays_true_under_concurrent_set_and_remove() {
    // Many short rounds of tasks racing on a few keys; after each round, the listing must
    // be exactly the keys whose get returns a value. Some entries expire while the tasks
    // run (moka's timer), and the capacity is small enough that moka evicts for size: the
    // index must follow moka's own removals too.
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let cache = Arc::new(
        MemoryCache::builder()
            .clock(clock.clone())
            .max_capacity_bytes(6 * 1024)
            .build(),
    );
    let keys: Arc<Vec<String>> = Arc::new((0..8).map(|i| format!("@@p@@::c::a::s{i}")).collect());
    let mut nonempty_rounds = 0;
    for round in 0..150u64 {
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let (cache, keys) = (cache.clone(), keys.clone());
            tasks.push(tokio::spawn(async move {
                let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (round << 8 | t) ^ 1;
                for _ in 0..30 {
                    let r = xorshift(&mut seed);
                    let k = &keys[(r % keys.len() as u64) as usize];
                    match (r >> 8) % 5 {
                        0 | 1 => cache.remove(k).await.unwrap(),
                        2 => {
                            // already expired, or expiring within a second by moka's clock
                            let at = NOW_S - 1 + ((r >> 16) % 2) as i64;
                            cache.set(k, entry(false, at)).await.unwrap();
                        }
                        3 => cache.set(k, big(300)).await.unwrap(),
                        _ => {
                            let listed =
                                cache.keys_with_prefix("@@p@@::c::").await.unwrap().unwrap();
                            assert!(listed.windows(2).all(|w| w[0] < w[1]));
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut shown = listed(&cache).await;
        if shown != live(&cache, &keys).await {
            // Moka's housekeeping (started by a write, or by a read that reports to its
            // LRU order) can evict for size (the cache is small, and entries that expired
            // within the last second still count) a key just listed. Once it has run, they
            // must agree: a stored key that is not listed stays so.
            cache.run_pending_tasks().await;
            shown = listed(&cache).await;
            assert_eq!(shown, live(&cache, &keys).await, "round {round}");
        }
        nonempty_rounds += usize::from(!shown.is_empty());
    }
    cache.run_pending_tasks().await;
    assert_eq!(cache.entry_count().await, listed(&cache).await.len() as u64);
    assert!(nonempty_rounds > 50, "{nonempty_rounds}");
    for k in keys.iter() {
        cache.remove(k).await.unwrap();
    }
    assert!(listed(&cache).await.is_empty());
    assert_eq!(cache.entry_count().await, 0);
    assert_eq!(clock.now_ms(), NOW_MS);
}

#[tokio::test]
async fn with_the_manager_subset_lookup_among_many_keys() {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let cache = Arc::new(MemoryCache::builder().clock(clock.clone()).build());
    let manager = CacheManager::builder(cache.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(manager.manifest_key(), None);
    for i in 0..2000 {
        manager
            .set(CacheEntry::new(
                "app",
                format!("https://api-{i}"),
                "openid read",
                "x",
                60.0,
            ))
            .await
            .unwrap();
    }
    manager
        .set(
            CacheEntry::new("app", "https://target", "openid read write", "at", 60.0)
                .with_refresh_token("rt"),
        )
        .await
        .unwrap();
    let key = CacheKey::new("app", Some("https://target"), Some("write"));
    let body = manager
        .get(&key, GetOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.access_token.as_deref(), Some("at"));

    // Expired: the manager keeps the refresh token; the cache keeps that entry for ever.
    clock.advance(Duration::from_secs(61));
    let body = manager
        .get(&key, GetOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.access_token, None);
    assert_eq!(body.refresh_token.as_deref(), Some("rt"));
    manager.clear(Some("app")).await.unwrap();
    assert!(listed(&cache).await.is_empty());
}

/// An `expires_in` that is NaN, infinite or negative is refused by the manager with
/// `InvalidValue` (the core's `WrappedCacheEntry::from_entry`), and nothing is stored.
#[tokio::test]
async fn a_bad_expires_in_is_an_invalid_value_and_stores_nothing() {
    let (cache, clock) = cache_at(NOW_MS, Retention::NEVER);
    let cache = Arc::new(cache);
    let manager = CacheManager::builder(cache.clone())
        .clock(clock)
        .build()
        .unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0] {
        let e = manager
            .set(CacheEntry::new("app", "https://api", "read", "at", bad))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue, "{bad}");
    }
    assert!(listed(&cache).await.is_empty());
    manager
        .set(CacheEntry::new("app", "https://api", "read", "at", 0.0))
        .await
        .unwrap();
    assert_eq!(listed(&cache).await.len(), 1);
}

#[tokio::test]
async fn debug_shows_no_keys() {
    let cache = MemoryCache::new();
    cache
        .set("@@auth0spajs@@::secret-client::aud::scope", big(10))
        .await
        .unwrap();
    let dbg = format!("{cache:?}");
    assert!(!dbg.contains("secret-client"), "{dbg}");
    assert!(dbg.contains("capacity_bytes"));
}
