//! The Redis refresh lock (`RedisLock`) against real servers, standalone and cluster: a
//! paused holder loses its fence to the next holder on another connection (another
//! server), lease keys hold `holder:epoch` with a server-side TTL, and leases are not
//! entries: never listed, never cleared.

mod common;

use std::time::Duration;

use common::{fresh_namespace, Target, TARGETS};
use tokencache_conformance::support::{
    busy, entry_with_refresh_token, held, refresh_token_of, replace_refresh_token,
    ENTRY_KEY as KEY, LOCK_NAME as NAME,
};
use tokencache_core::{Cache, Cacheable, RefreshLock, Update, UpdateFn, Updated};
use tokencache_redis::redis;
use tokencache_redis::RedisCache;

fn with_rt(rt: &str) -> Cacheable {
    entry_with_refresh_token(rt, 4_000_000_000)
}

/// Replaces refresh token `old` by `rt`; keeps anything else.
fn rotate(old: &str, rt: &str) -> UpdateFn {
    replace_refresh_token(old, with_rt(rt))
}

async fn raw<T: redis::FromRedisValue>(cache: &RedisCache, cmd: &mut redis::Cmd) -> T {
    cmd.query_async(&mut cache.connection())
        .await
        .expect("raw redis command")
}

/// Two caches of one namespace on two connections: two servers of one deployment.
async fn two_servers(target: Target, tag: &str) -> (RedisCache, RedisCache) {
    let ns = fresh_namespace(tag);
    let a = target.connect(RedisCache::builder(ns.clone())).await;
    let b = target.connect(RedisCache::builder(ns)).await;
    (a, b)
}

#[tokio::test]
async fn a_paused_holder_loses_its_fence_to_the_next_server() {
    for target in TARGETS {
        let (a, b) = two_servers(target, "paused").await;
        let (lock_a, lock_b) = (a.refresh_lock().unwrap(), b.refresh_lock().unwrap());
        a.set(KEY, with_rt("rt0")).await.unwrap();

        let paused = held(
            lock_a
                .try_acquire(NAME, Duration::from_millis(300))
                .await
                .unwrap(),
        );

        // The holder pauses (a GC pause, a slow token endpoint) past its lease.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let live = held(
            lock_b
                .try_acquire(NAME, Duration::from_secs(15))
                .await
                .unwrap(),
        );
        assert!(live.fence.epoch > paused.fence.epoch, "{target:?}");
        assert_ne!(live.fence.holder, paused.fence.holder);
        // One holder store-wide: the first server cannot take it now.
        let left = busy(
            lock_a
                .try_acquire(NAME, Duration::from_secs(15))
                .await
                .unwrap(),
        );
        assert!(left <= Duration::from_secs(15), "{target:?}: {left:?}");
        assert_eq!(
            b.update(KEY, Some(&live.fence), rotate("rt0", "rt1"))
                .await
                .unwrap(),
            Updated::Put(with_rt("rt1")),
            "{target:?}"
        );

        // The late holder wakes up: its write, its removal, even its keep are refused.
        assert_eq!(
            a.update(KEY, Some(&paused.fence), rotate("rt0", "late"))
                .await
                .unwrap(),
            Updated::FenceLost,
            "{target:?}"
        );
        assert_eq!(
            a.update(
                KEY,
                Some(&paused.fence),
                Box::new(|_| Update::Put(with_rt("late")))
            )
            .await
            .unwrap(),
            Updated::FenceLost,
            "{target:?}"
        );
        assert_eq!(
            a.update(KEY, Some(&paused.fence), Box::new(|_| Update::Remove))
                .await
                .unwrap(),
            Updated::FenceLost,
            "{target:?}"
        );
        assert_eq!(
            a.update(KEY, Some(&paused.fence), Box::new(|_| Update::Keep))
                .await
                .unwrap(),
            Updated::FenceLost,
            "{target:?}"
        );
        assert!(!lock_a
            .extend(&paused, Duration::from_secs(15))
            .await
            .unwrap());
        lock_a.release(paused).await.unwrap();

        // The store holds the new holder's refresh token, and the new holder still holds.
        assert_eq!(
            refresh_token_of(a.get(KEY).await.unwrap().as_ref()).as_deref(),
            Some("rt1")
        );
        assert_eq!(
            refresh_token_of(b.get(KEY).await.unwrap().as_ref()).as_deref(),
            Some("rt1")
        );
        busy(
            lock_a
                .try_acquire(NAME, Duration::from_secs(15))
                .await
                .unwrap(),
        );
        assert_eq!(
            b.update(KEY, Some(&live.fence), Box::new(|_| Update::Keep))
                .await
                .unwrap(),
            Updated::Kept(Some(with_rt("rt1"))),
            "{target:?}: a live fence keeps"
        );
        lock_b.release(live).await.unwrap();
        a.clear_namespace().await.unwrap();
    }
}

#[tokio::test]
async fn lease_keys_hold_holder_and_epoch_with_a_server_ttl() {
    for target in TARGETS {
        let cache = target
            .connect(RedisCache::builder(fresh_namespace("lease-keys")))
            .await;
        let lock = cache.lease_lock();
        assert_eq!(lock.namespace(), cache.namespace());
        let lease_key = lock.lease_key(NAME);
        let epoch_key = lock.epoch_key(NAME);
        let tag = format!("{{{}}}", cache.namespace());
        assert!(lease_key.contains(&tag) && epoch_key.contains(&tag));

        let lease = held(
            lock.try_acquire(NAME, Duration::from_secs(10))
                .await
                .unwrap(),
        );
        let value: String = raw(&cache, redis::cmd("GET").arg(&lease_key)).await;
        let hex: String = lease
            .fence
            .holder
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(value, format!("{hex}:{}", lease.fence.epoch), "{target:?}");
        let pttl: i64 = raw(&cache, redis::cmd("PTTL").arg(&lease_key)).await;
        assert!(pttl > 0 && pttl <= 10_000, "{target:?}: {pttl}");
        let epoch: u64 = raw(&cache, redis::cmd("GET").arg(&epoch_key)).await;
        assert_eq!(epoch, lease.fence.epoch);

        // Busy answers the lease's PTTL; a refused acquisition takes no epoch.
        let left = busy(
            lock.try_acquire(NAME, Duration::from_secs(60))
                .await
                .unwrap(),
        );
        assert!(left <= Duration::from_secs(10) && left > Duration::from_secs(5));
        let after: u64 = raw(&cache, redis::cmd("GET").arg(&epoch_key)).await;
        assert_eq!(after, lease.fence.epoch, "{target:?}: Busy takes no epoch");

        // Extending sets a new TTL from now; releasing deletes the lease, not the epoch.
        assert!(lock.extend(&lease, Duration::from_secs(100)).await.unwrap());
        let pttl: i64 = raw(&cache, redis::cmd("PTTL").arg(&lease_key)).await;
        assert!(pttl > 10_000 && pttl <= 100_000, "{target:?}: {pttl}");
        lock.release(lease.clone()).await.unwrap();
        let exists: i64 = raw(&cache, redis::cmd("EXISTS").arg(&lease_key)).await;
        assert_eq!(exists, 0);
        let next = held(lock.try_acquire(NAME, Duration::ZERO).await.unwrap());
        assert_eq!(next.fence.epoch, lease.fence.epoch + 1, "{target:?}");
        // A zero TTL is the shortest lease Redis takes: 1 ms.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let last = held(
            lock.try_acquire(NAME, Duration::from_secs(1))
                .await
                .unwrap(),
        );
        assert_eq!(last.fence.epoch, lease.fence.epoch + 2, "{target:?}");
        lock.release(last).await.unwrap();
        let _: i64 = raw(&cache, redis::cmd("DEL").arg(&epoch_key)).await;
    }
}

#[tokio::test]
async fn leases_are_never_listed_nor_cleared() {
    for target in TARGETS {
        let cache = target
            .connect(RedisCache::builder(fresh_namespace("lease-clear")))
            .await;
        let lock = cache.refresh_lock().unwrap();
        let lease = held(
            lock.try_acquire(NAME, Duration::from_secs(30))
                .await
                .unwrap(),
        );
        cache.set(KEY, with_rt("rt0")).await.unwrap();
        let listed = cache.all_keys().await.unwrap().unwrap();
        assert_eq!(listed, vec![KEY.to_owned()], "{target:?}");
        assert_eq!(
            cache.keys_with_prefix("").await.unwrap().unwrap(),
            listed,
            "{target:?}"
        );
        assert_eq!(cache.remove_prefix("").await.unwrap(), Some(1));
        cache.set(KEY, with_rt("rt0")).await.unwrap();
        assert_eq!(cache.clear_namespace().await.unwrap(), 1, "{target:?}");
        assert_eq!(
            cache.all_keys().await.unwrap().unwrap(),
            Vec::<String>::new()
        );

        // The lease is still held, its fence still writes, and epochs keep growing.
        let lease_key = cache.lease_lock().lease_key(NAME);
        let exists: i64 = raw(&cache, redis::cmd("EXISTS").arg(&lease_key)).await;
        assert_eq!(exists, 1, "{target:?}");
        busy(
            lock.try_acquire(NAME, Duration::from_secs(30))
                .await
                .unwrap(),
        );
        assert_eq!(
            cache
                .update(
                    KEY,
                    Some(&lease.fence),
                    Box::new(|_| Update::Put(with_rt("rt1")))
                )
                .await
                .unwrap(),
            Updated::Put(with_rt("rt1"))
        );
        lock.release(lease.clone()).await.unwrap();
        let next = held(
            lock.try_acquire(NAME, Duration::from_secs(30))
                .await
                .unwrap(),
        );
        assert!(next.fence.epoch > lease.fence.epoch, "{target:?}");
        lock.release(next).await.unwrap();
        cache.clear_namespace().await.unwrap();
        let _: i64 = raw(
            &cache,
            redis::cmd("DEL").arg(cache.lease_lock().epoch_key(NAME)),
        )
        .await;
    }
}

#[tokio::test]
async fn a_fence_of_another_namespace_is_lost() {
    for target in TARGETS {
        let a = target
            .connect(RedisCache::builder(fresh_namespace("fence-a")))
            .await;
        let b = RedisCache::builder(fresh_namespace("fence-b"))
            .with_connection(&a.connection())
            .unwrap();
        let lease = held(
            a.refresh_lock()
                .unwrap()
                .try_acquire(NAME, Duration::from_secs(30))
                .await
                .unwrap(),
        );
        // B's lock of the same name is free: the namespaces are independent.
        let other = held(
            b.refresh_lock()
                .unwrap()
                .try_acquire(NAME, Duration::from_secs(30))
                .await
                .unwrap(),
        );
        assert_eq!(
            b.update(
                KEY,
                Some(&lease.fence),
                Box::new(|_| Update::Put(with_rt("x")))
            )
            .await
            .unwrap(),
            Updated::FenceLost,
            "{target:?}"
        );
        assert_eq!(b.get(KEY).await.unwrap(), None);
        a.refresh_lock().unwrap().release(lease).await.unwrap();
        b.refresh_lock().unwrap().release(other).await.unwrap();
    }
}

#[tokio::test]
async fn the_lock_debug_output_names_the_namespace_only() {
    let cache = Target::Standalone
        .connect(RedisCache::builder(fresh_namespace("lease-debug")))
        .await;
    let lock = cache.lease_lock();
    let lease = held(
        lock.try_acquire(NAME, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let debug = format!("{lock:?}");
    assert!(debug.contains(cache.namespace()), "{debug}");
    assert!(debug.starts_with("RedisLock"), "{debug}");
    // A fence's Debug shows its lock and epoch, not its holder.
    let fence = format!("{:?}", lease.fence);
    assert!(fence.contains(NAME) && !fence.contains("holder"), "{fence}");
    lock.release(lease).await.unwrap();
}
