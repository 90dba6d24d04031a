//! The memory cache's refresh lock and fenced updates: a holder that paused past its
//! lease cannot write any more.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;
use std::time::Duration;

use tokencache_conformance::support::{
    entry_with_refresh_token, fenced_rotate, held, ENTRY_KEY as KEY, LOCK_NAME as NAME,
};
use tokencache_core::{Cache, Cacheable, Lease, ManualClock, TryAcquire, Updated};
use tokencache_memory::MemoryCache;

fn with_rt(rt: &str) -> Cacheable {
    entry_with_refresh_token(rt, 1_700_003_600)
}

/// A fenced write of `rt`, only where the stored refresh token is still `old`.
async fn rotate(cache: &MemoryCache, lease: &Lease, old: &str, rt: &str) -> Updated {
    fenced_rotate(cache, KEY, lease, old, with_rt(rt))
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
