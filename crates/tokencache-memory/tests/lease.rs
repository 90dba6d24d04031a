//! The memory cache's refresh lock and fenced updates: a holder that paused past its
//! lease cannot write any more.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;
use std::time::Duration;

use tokencache_core::{
    Cache, CacheEntry, Cacheable, EntryBody, Lease, ManualClock, TryAcquire, Update, Updated,
    WrappedCacheEntry,
};
use tokencache_memory::MemoryCache;

const KEY: &str = "@@auth0spajs@@::app::https://api::read";
const NAME: &str = "refresh::app::https://api";

fn with_rt(rt: &str) -> Cacheable {
    let e = CacheEntry::new("app", "https://api", "read", "at", 3600.0).with_refresh_token(rt);
    WrappedCacheEntry::new(EntryBody::from(e), 1_700_003_600).into()
}

fn held(t: TryAcquire) -> Lease {
    match t {
        TryAcquire::Held(l) => l,
        TryAcquire::Busy { .. } => panic!("expected the lock to be free"),
    }
}

/// A fenced write of `rt`, only where the stored refresh token is still `old`.
async fn rotate(cache: &MemoryCache, lease: &Lease, old: &str, rt: &str) -> Updated {
    let (old, new) = (old.to_owned(), with_rt(rt));
    cache
        .update(
            KEY,
            Some(&lease.fence),
            Box::new(move |current| match current {
                Some(Cacheable::Entry(e)) if e.body.refresh_token.as_deref() == Some(&old) => {
                    Update::Put(new.clone())
                }
                _ => Update::Keep,
            }),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_paused_holder_loses_its_fence() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let cache = MemoryCache::builder().clock(clock.clone()).build();
    let lock = cache.refresh_lock().expect("the memory cache has a lock");
    cache.set(KEY, with_rt("rt0")).await.unwrap();
    let ttl = Duration::from_millis(300);
    let paused = held(lock.try_acquire(NAME, ttl).await.unwrap());
    assert!(matches!(
        lock.try_acquire(NAME, ttl).await.unwrap(),
        TryAcquire::Busy { .. }
    ));
    clock.advance_ms(1_000);
    let live = held(lock.try_acquire(NAME, ttl).await.unwrap());
    assert_eq!(live.fence.epoch, paused.fence.epoch + 1);
    assert_eq!(
        rotate(&cache, &paused, "rt0", "late").await,
        Updated::FenceLost
    );
    assert_eq!(
        rotate(&cache, &live, "rt0", "rt1").await,
        Updated::Put(with_rt("rt1"))
    );
    assert_eq!(cache.get(KEY).await.unwrap(), Some(with_rt("rt1")));
    lock.release(live.clone()).await.unwrap();
    assert_eq!(
        rotate(&cache, &live, "rt1", "rt2").await,
        Updated::FenceLost
    );
    assert_eq!(cache.get(KEY).await.unwrap(), Some(with_rt("rt1")));
}

#[tokio::test]
async fn a_holder_that_sleeps_past_its_lease_cannot_write() {
    // Real time: lease 300 ms, the holder sleeps 1 s.
    let cache = MemoryCache::new();
    let lock = cache.refresh_lock().expect("the memory cache has a lock");
    cache.set(KEY, with_rt("rt0")).await.unwrap();
    let paused = held(
        lock.try_acquire(NAME, Duration::from_millis(300))
            .await
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let live = held(
        lock.try_acquire(NAME, Duration::from_secs(15))
            .await
            .unwrap(),
    );
    assert_eq!(
        rotate(&cache, &paused, "rt0", "late").await,
        Updated::FenceLost
    );
    assert_eq!(
        rotate(&cache, &live, "rt0", "rt1").await,
        Updated::Put(with_rt("rt1"))
    );
}
