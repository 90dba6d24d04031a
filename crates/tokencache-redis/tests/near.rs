//! The near cache (`RedisCacheBuilder::near_cache`) against real servers, standalone and
//! cluster: repeated gets are answered from the L1; a write through another, plain
//! connection is invisible to it within 10 ms; after its tracking connection is killed
//! the L1 starts empty; its size stays within its bound in bytes; the cache's own writes
//! are read back at once; values never show in `Debug`.

mod common;

use std::time::{Duration, Instant};

use common::{cluster_urls, fresh_namespace, standalone_url, Target, TARGETS};
use tokencache_core::{
    Cache, Cacheable, EntryBody, ErrorKind, JsonCodec, KeyManifestEntry, Update, ValueCodec,
    WrappedCacheEntry,
};
use tokencache_redis::redis;
use tokencache_redis::{NearCacheStats, RedisCache};

const KEY: &str = "@@auth0spajs@@::client::api::read";
const MAX_BYTES: u64 = 1 << 20;
/// How long a write by another connection may stay invisible.
const INVISIBLE_WITHIN: Duration = Duration::from_millis(10);
/// No round may take longer than this, even on a machine that stalls a thread.
const STALL_LIMIT: Duration = Duration::from_millis(100);

fn value(tag: &str) -> Cacheable {
    Cacheable::Manifest(KeyManifestEntry {
        keys: vec![tag.to_owned()],
    })
}

async fn near(target: Target, max_bytes: u64) -> RedisCache {
    target
        .connect(RedisCache::builder(fresh_namespace("near")).near_cache(max_bytes))
        .await
}

fn stats(cache: &RedisCache) -> NearCacheStats {
    cache.near_cache_stats().expect("the near cache is on")
}

/// A plain connection of its own (another process, as far as the server can tell).
enum Plain {
    Standalone(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

async fn plain(target: Target) -> Plain {
    match target {
        Target::Standalone => Plain::Standalone(
            redis::Client::open(standalone_url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        ),
        Target::Cluster => Plain::Cluster(
            redis::cluster::ClusterClient::new(cluster_urls())
                .unwrap()
                .get_async_connection()
                .await
                .unwrap(),
        ),
    }
}

impl Plain {
    /// Writes `v` at `key` of `cache`'s namespace, as the cache stores it.
    async fn set(&mut self, cache: &RedisCache, key: &str, v: &Cacheable) {
        let storage_key = cache.storage_key(key);
        let bytes = JsonCodec.encode(&storage_key, v).unwrap();
        let cmd = redis::cmd("SET").arg(&storage_key).arg(bytes).to_owned();
        match self {
            Plain::Standalone(c) => cmd.query_async::<()>(c).await,
            Plain::Cluster(c) => cmd.query_async::<()>(c).await,
        }
        .unwrap();
    }
}

#[tokio::test]
async fn repeated_gets_are_answered_from_memory() {
    for target in TARGETS {
        let cache = near(target, MAX_BYTES).await;
        let before = stats(&cache);
        assert!(before.tracking, "{target:?}: {before:?}");
        assert_eq!(before.subscriptions, 1, "{target:?}");
        // Written by another cache (no echo of a write of this one's): the first get
        // reads Redis, the next ones do not.
        let writer = RedisCache::builder(cache.namespace())
            .with_connection(&cache.connection())
            .unwrap();
        writer.set(KEY, value("v1")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = stats(&cache);
        assert_eq!(cache.get(KEY).await.unwrap(), Some(value("v1")));
        for _ in 0..10 {
            assert_eq!(cache.get(KEY).await.unwrap(), Some(value("v1")));
        }
        let after = stats(&cache);
        assert_eq!(after.misses - before.misses, 1, "{target:?}: {after:?}");
        assert_eq!(after.hits - before.hits, 10, "{target:?}: {after:?}");
        assert_eq!(after.entries, 1, "{target:?}: {after:?}");
        // A miss is not remembered as a value.
        assert_eq!(cache.get("absent").await.unwrap(), None);
        assert_eq!(cache.get("absent").await.unwrap(), None);
        assert_eq!(stats(&cache).misses - after.misses, 2, "{target:?}");
        cache.clear_namespace().await.unwrap();
    }
}

/// Sets `v` at `key` and gets it until a get is answered from the L1. (The server's
/// invalidation for the set itself may arrive during the first get, which then is not
/// remembered.)
async fn cached(cache: &RedisCache, key: &str, v: &Cacheable) {
    cache.set(key, v.clone()).await.unwrap();
    for _ in 0..100 {
        let hits = stats(cache).hits;
        assert_eq!(cache.get(key).await.unwrap().as_ref(), Some(v));
        if stats(cache).hits == hits + 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the value never came from the L1: {:?}", stats(cache));
}

/// Gets `key` until a get is not answered from the L1 (every answer of the L1 until
/// then must be `old`, and that get's answer `new`): how long after `since` that get
/// started (the L1 no longer had the old value), and when it returned.
async fn until_dropped(
    cache: &RedisCache,
    key: &str,
    old: &Cacheable,
    new: &Cacheable,
    since: Instant,
) -> (Duration, Duration) {
    loop {
        let started = since.elapsed();
        let hits = stats(cache).hits;
        let got = cache.get(key).await.unwrap();
        if stats(cache).hits == hits {
            assert_eq!(got.as_ref(), Some(new), "read from Redis");
            return (started, since.elapsed());
        }
        assert_eq!(got.as_ref(), Some(old), "answered from the L1");
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "the L1 kept the old value"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_by_another_connection_is_invisible_within_10_ms() {
    for target in TARGETS {
        let cache = near(target, MAX_BYTES).await;
        let mut other = plain(target).await;
        let (mut dropped, mut shown, mut round_trips) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..30 {
            let old = value(&format!("old-{round}"));
            let new = value(&format!("new-{round}"));
            // The old value is in the L1 (a hit answers it) before the other write.
            cached(&cache, KEY, &old).await;
            // From the moment the write is done (its reply came back).
            let sent = Instant::now();
            other.set(&cache, KEY, &new).await;
            let done = Instant::now();
            round_trips.push(done - sent);
            let (gone, new_read) = until_dropped(&cache, KEY, &old, &new, done).await;
            dropped.push(gone);
            shown.push(new_read);
        }
        let median_max = |v: &mut Vec<Duration>| {
            v.sort();
            (v[v.len() / 2], v[v.len() - 1])
        };
        let (median, max) = median_max(&mut dropped);
        println!(
            "{target:?}: after the other connection's write, the L1 dropped the old value \
             within {median:?} (median), {max:?} (max); the new value was read back within \
             {:?}; the write's own round trip: {:?} (median, max)",
            median_max(&mut shown),
            median_max(&mut round_trips),
        );
        // Every round within 10 ms on a quiet machine (max 0.03-4.2 ms standalone, 0.4-8.7 ms
        // cluster on a loaded 2-core one); a CI runner that stalls a thread for a round
        // must not fail the suite, so: 9 rounds in 10 within 10 ms, and none past 100 ms.
        let within = dropped.iter().filter(|d| **d <= INVISIBLE_WITHIN).count();
        assert!(median <= INVISIBLE_WITHIN, "{target:?}: {dropped:?}");
        assert!(within * 10 >= dropped.len() * 9, "{target:?}: {dropped:?}");
        assert!(max <= STALL_LIMIT, "{target:?}: {dropped:?}");
        assert!(stats(&cache).invalidations >= 30, "{target:?}");
        cache.clear_namespace().await.unwrap();
    }
}

/// Kills the near cache's tracking connections of `namespace` on every server of
/// `target`; how many there were (all are listed before the first is killed: killing
/// one makes the cache drop the others).
async fn kill_tracking(target: Target, namespace: &str) -> usize {
    let urls = match target {
        Target::Standalone => vec![standalone_url()],
        Target::Cluster => cluster_urls(),
    };
    let name = format!("name=tokencache-near:{namespace} ");
    let mut found = Vec::new();
    for url in urls {
        let mut conn = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut conn)
            .await
            .unwrap();
        for line in list.lines().filter(|l| l.contains(&name)) {
            let id = line
                .split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .unwrap()
                .to_owned();
            found.push((conn.clone(), id));
        }
    }
    let mut killed = 0;
    for (mut conn, id) in found.iter().cloned() {
        let n: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut conn)
            .await
            .unwrap();
        killed += n;
    }
    assert!(killed >= 1, "no tracking connection killed");
    found.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reconnect_the_l1_starts_empty() {
    for target in TARGETS {
        let cache = near(target, MAX_BYTES).await;
        let mut other = plain(target).await;
        for i in 0..5 {
            cached(&cache, &format!("{KEY}{i}"), &value("before")).await;
        }
        assert_eq!(stats(&cache).entries, 5, "{target:?}");
        let found = kill_tracking(target, cache.namespace()).await;
        let servers = if target == Target::Cluster { 3 } else { 1 };
        assert_eq!(
            found, servers,
            "{target:?}: one tracking connection per master"
        );
        // Written while no tracking connection listens: no invalidation comes for it, yet
        // the L1 (emptied when its connection dropped) does not answer the old value.
        other.set(&cache, &format!("{KEY}0"), &value("after")).await;
        let key0 = format!("{KEY}0");
        let now = Instant::now();
        let (took, _) = until_dropped(&cache, &key0, &value("before"), &value("after"), now).await;
        assert!(took <= INVISIBLE_WITHIN, "{target:?}: {took:?}");
        let start = Instant::now();
        loop {
            let s = stats(&cache);
            if s.subscriptions == 2 && s.tracking {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{target:?}: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        println!(
            "{target:?}: tracking back {:?} after the kill",
            start.elapsed() + took
        );
        // Back, and nothing of before is answered from memory: each get reads Redis.
        let misses = stats(&cache).misses;
        for i in 1..5 {
            let got = cache.get(&format!("{KEY}{i}")).await.unwrap();
            assert_eq!(got, Some(value("before")), "{target:?}");
        }
        assert_eq!(stats(&cache).misses, misses + 4, "{target:?}");
        // Tracking works again: another write is seen.
        other.set(&cache, &format!("{KEY}1"), &value("again")).await;
        let start = Instant::now();
        let key1 = format!("{KEY}1");
        let (took, _) =
            until_dropped(&cache, &key1, &value("before"), &value("again"), start).await;
        assert!(took <= INVISIBLE_WITHIN, "{target:?}: {took:?}");
        cache.clear_namespace().await.unwrap();
    }
}

#[tokio::test]
async fn the_l1_stays_within_its_bound_in_bytes() {
    const BOUND: u64 = 4096;
    for target in TARGETS {
        let cache = near(target, BOUND).await;
        let filler = "x".repeat(300);
        for i in 0..100 {
            let key = format!("{KEY}{i}");
            cache.set(&key, value(&filler)).await.unwrap();
            assert_eq!(cache.get(&key).await.unwrap(), Some(value(&filler)));
        }
        let s = stats(&cache);
        assert_eq!(s.max_bytes, BOUND);
        assert!(s.weighted_bytes <= BOUND, "{target:?}: {s:?}");
        assert!(s.entries > 0 && s.entries < 100, "{target:?}: {s:?}");
        // A value larger than the whole bound is not kept, and still read right.
        let big = "y".repeat(8192);
        cache.set(KEY, value(&big)).await.unwrap();
        for _ in 0..3 {
            assert_eq!(cache.get(KEY).await.unwrap(), Some(value(&big)));
        }
        assert!(stats(&cache).weighted_bytes <= BOUND, "{target:?}");
        cache.clear_namespace().await.unwrap();
    }
}

#[tokio::test]
async fn own_writes_are_read_back_at_once() {
    for target in TARGETS {
        let cache = near(target, MAX_BYTES).await;
        let (a, b) = (format!("{KEY}a"), format!("{KEY}b"));

        cached(&cache, &a, &value("1")).await;
        cache.set(&a, value("2")).await.unwrap();
        assert_eq!(cache.get(&a).await.unwrap(), Some(value("2")), "set");

        cached(&cache, &a, &value("3")).await;
        let put = value("4");
        let f = Box::new(move |_: Option<&Cacheable>| Update::Put(put.clone()));
        cache.update(&a, None, f).await.unwrap();
        assert_eq!(cache.get(&a).await.unwrap(), Some(value("4")), "update");

        // A fenced update, with the namespace's lock.
        cached(&cache, &a, &value("5")).await;
        let lock = cache.refresh_lock().unwrap();
        let lease = match lock.try_acquire("refresh", Duration::from_secs(10)).await {
            Ok(tokencache_core::TryAcquire::Held(lease)) => lease,
            other => panic!("{target:?}: {other:?}"),
        };
        let put = value("6");
        let f = Box::new(move |_: Option<&Cacheable>| Update::Put(put.clone()));
        let updated = cache.update(&a, Some(&lease.fence), f).await.unwrap();
        assert!(
            matches!(updated, tokencache_core::Updated::Put(_)),
            "{updated:?}"
        );
        assert_eq!(cache.get(&a).await.unwrap(), Some(value("6")), "fenced");
        lock.release(lease).await.unwrap();

        cached(&cache, &a, &value("7")).await;
        cache.remove(&a).await.unwrap();
        assert_eq!(cache.get(&a).await.unwrap(), None, "remove");

        cached(&cache, &a, &value("8")).await;
        cached(&cache, &b, &value("8")).await;
        cache
            .remove_many(&[a.as_str().into(), b.as_str().into()])
            .await
            .unwrap();
        assert_eq!(cache.get(&a).await.unwrap(), None, "remove_many");
        assert_eq!(cache.get(&b).await.unwrap(), None, "remove_many");

        cached(&cache, &a, &value("9")).await;
        assert_eq!(cache.remove_prefix(KEY).await.unwrap(), Some(1));
        assert_eq!(cache.get(&a).await.unwrap(), None, "remove_prefix");

        cached(&cache, &b, &value("10")).await;
        assert_eq!(cache.clear_namespace().await.unwrap(), 1);
        assert_eq!(cache.get(&b).await.unwrap(), None, "clear_namespace");
    }
}

#[tokio::test]
async fn values_never_show_in_debug_and_with_connection_is_refused() {
    const SECRET: &str = "at-SECRET-near-51c2";
    for target in TARGETS {
        let cache = near(target, MAX_BYTES).await;
        let entry: Cacheable = WrappedCacheEntry::new(
            EntryBody {
                access_token: Some(SECRET.into()),
                ..Default::default()
            },
            i64::MAX / 2,
        )
        .into();
        cached(&cache, KEY, &entry).await;
        let debug = format!("{cache:?} {:?}", stats(&cache));
        assert!(debug.contains("NearCache"), "{debug}");
        assert!(!debug.contains(SECRET), "{debug}");

        let err = RedisCache::builder(fresh_namespace("near"))
            .near_cache(MAX_BYTES)
            .with_connection(&cache.connection())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        cache.clear_namespace().await.unwrap();
    }
}

/// The near cache over TLS with an ACL user (the servers of scripts/redis.sh): its
/// tracking connections use the same CA and credentials, on every master of the TLS
/// cluster too.
#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_over_tls_with_an_acl_user() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let cluster: Vec<String> = var("TOKENCACHE_REDIS_TLS_CLUSTER_URLS")
        .split(',')
        .map(str::to_owned)
        .collect();
    let namespace = fresh_namespace("near-tls");
    let builder = || {
        RedisCache::builder(namespace.clone())
            .tls_ca_file(var("TOKENCACHE_REDIS_TLS_CA"))
            .username(var("TOKENCACHE_REDIS_TLS_USER"))
            .password(var("TOKENCACHE_REDIS_TLS_PASSWORD"))
    };
    for is_cluster in [false, true] {
        let connect = |b: tokencache_redis::RedisCacheBuilder| {
            let (url, cluster) = (var("TOKENCACHE_REDIS_TLS_URL"), cluster.clone());
            async move {
                if is_cluster {
                    b.connect_cluster(cluster).await
                } else {
                    b.connect(&url).await
                }
                .unwrap()
            }
        };
        let cache = connect(builder().near_cache(MAX_BYTES)).await;
        let writer = connect(builder()).await;
        assert_eq!(stats(&cache).subscriptions, 1);
        cached(&cache, KEY, &value("old")).await;
        writer.set(KEY, value("new")).await.unwrap();
        let now = Instant::now();
        let (took, _) = until_dropped(&cache, KEY, &value("old"), &value("new"), now).await;
        assert!(took <= INVISIBLE_WITHIN, "cluster {is_cluster}: {took:?}");
        cache.clear_namespace().await.unwrap();
    }
}
