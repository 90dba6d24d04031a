//! The SQLite refresh lock: leases that expire, epochs that grow, compare-and-release,
//! and fenced updates that a former holder can no longer make.

use std::sync::Arc;
use std::time::Duration;

use tokencache_conformance::support::{
    entry_with_refresh_token, fenced_rotate, held, refresh_token_of, ENTRY_KEY as KEY,
    LOCK_NAME as NAME,
};
use tokencache_core::{
    Cache, Cacheable, Clock, Lease, ManualClock, RefreshLock, SystemClock, TryAcquire, Updated,
};
use tokencache_sqlite::SqliteCache;

fn with_rt(rt: &str) -> Cacheable {
    entry_with_refresh_token(rt, 1_700_003_600)
}

/// A fenced write of `rt`, only where the stored refresh token is still `old` (I2).
async fn rotate(cache: &SqliteCache, lease: &Lease, old: &str, rt: &str) -> Updated {
    fenced_rotate(cache, KEY, lease, old, with_rt(rt))
        .await
        .unwrap()
}

async fn open(path: &std::path::Path, clock: Arc<dyn Clock>) -> SqliteCache {
    SqliteCache::builder(path)
        .plaintext()
        .clock(clock)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn leases_expire_and_a_paused_holder_loses_its_fence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lease.db");
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let a = open(&path, clock.clone()).await;
    // A second handle on the file, as another process would have.
    let b = open(&path, clock.clone()).await;
    let lock = a
        .refresh_lock()
        .expect("SQLite brings its own refresh lock");
    a.set(KEY, with_rt("rt0")).await.unwrap();

    let ttl = Duration::from_millis(300);
    let first = held(lock.try_acquire(NAME, ttl).await.unwrap());
    assert_eq!(first.fence.epoch, 1);
    match b.try_acquire(NAME, ttl).await.unwrap() {
        TryAcquire::Busy { retry_after } => assert_eq!(retry_after, ttl),
        TryAcquire::Held(_) => panic!("the other handle must see the lease"),
    }

    // The holder pauses past its lease; the other handle takes the lock.
    clock.advance_ms(1_000);
    let second = held(b.try_acquire(NAME, ttl).await.unwrap());
    assert_eq!(second.fence.epoch, 2);
    assert_ne!(second.fence.holder, first.fence.holder);

    // The late write of the paused holder is rejected; nothing changed.
    assert_eq!(
        rotate(&a, &first, "rt0", "rt1-late").await,
        Updated::FenceLost
    );
    assert_eq!(
        refresh_token_of(a.get(KEY).await.unwrap().as_ref()).as_deref(),
        Some("rt0")
    );
    // It can neither extend nor release the new holder's lease.
    assert!(!lock.extend(&first, ttl).await.unwrap());
    lock.release(first).await.unwrap();
    assert!(matches!(
        a.try_acquire(NAME, ttl).await.unwrap(),
        TryAcquire::Busy { .. }
    ));

    // The live holder writes; a second rotation from the spent token changes nothing.
    assert_eq!(
        rotate(&b, &second, "rt0", "rt1").await,
        Updated::Put(with_rt("rt1"))
    );
    assert!(matches!(
        rotate(&b, &second, "rt0", "rt2").await,
        Updated::Kept(_)
    ));
    assert_eq!(
        refresh_token_of(a.get(KEY).await.unwrap().as_ref()).as_deref(),
        Some("rt1")
    );

    // Extend, release; the epoch keeps growing.
    clock.advance_ms(200);
    assert!(b.extend(&second, ttl).await.unwrap());
    clock.advance_ms(200);
    assert_eq!(
        rotate(&b, &second, "rt1", "rt2").await,
        Updated::Put(with_rt("rt2"))
    );
    b.release(second.clone()).await.unwrap();
    assert_eq!(rotate(&b, &second, "rt2", "rt3").await, Updated::FenceLost);
    assert_eq!(held(a.try_acquire(NAME, ttl).await.unwrap()).fence.epoch, 3);
}

#[tokio::test]
async fn a_holder_that_sleeps_past_its_lease_cannot_write() {
    // Real time: lease 300 ms, the holder sleeps 1 s.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paused.db");
    let a = open(&path, Arc::new(SystemClock)).await;
    let b = open(&path, Arc::new(SystemClock)).await;
    a.set(KEY, with_rt("rt0")).await.unwrap();
    let ttl = Duration::from_millis(300);
    let paused = held(a.try_acquire(NAME, ttl).await.unwrap());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let live = held(b.try_acquire(NAME, Duration::from_secs(15)).await.unwrap());
    assert!(live.fence.epoch > paused.fence.epoch);
    assert_eq!(
        rotate(&a, &paused, "rt0", "rt-late").await,
        Updated::FenceLost
    );
    assert_eq!(
        rotate(&b, &live, "rt0", "rt1").await,
        Updated::Put(with_rt("rt1"))
    );
    assert_eq!(
        refresh_token_of(b.get(KEY).await.unwrap().as_ref()).as_deref(),
        Some("rt1")
    );
}
