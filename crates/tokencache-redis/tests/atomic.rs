//! Atomic updates of `RedisCache` against real servers, standalone and cluster: caches on
//! separate connections (separate servers) lose no increment, a write that lands between
//! an update's read and its write makes it read again, endless conflicts end in a
//! temporary error, a tampered value is an error that writes nothing, and prefixes are
//! removed exactly.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{cluster_urls, fresh_namespace, standalone_url, Target, TARGETS};
use tokencache_conformance::support::{counted, increment};
use tokencache_core::{
    Cache, CacheEntry, Cacheable, EntryBody, ErrorKind, KeyManifestEntry, Update, Updated,
    WrappedCacheEntry,
};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_redis::redis;
use tokencache_redis::RedisCache;

const COUNTER: &str = "@@auth0spajs@@::counter::api::n";
/// A token-like secret that must appear in no error.
const SECRET: &str = "rt-SECRET-4f9a";

fn lines(v: Option<Cacheable>) -> Vec<String> {
    match v {
        Some(Cacheable::Manifest(m)) => m.keys,
        other => panic!("the counter must hold a list, found {other:?}"),
    }
}

/// Runs `per_cache` concurrent increments on each of `caches`, as tasks.
async fn increments(caches: &[Arc<RedisCache>], per_cache: usize) {
    let mut tasks = Vec::new();
    for cache in caches {
        for _ in 0..per_cache {
            let cache = cache.clone();
            tasks.push(tokio::spawn(async move {
                cache.update(COUNTER, None, increment()).await
            }));
        }
    }
    for task in tasks {
        let updated = task.await.expect("the task ran").expect("the update");
        assert!(matches!(updated, Updated::Put(_)), "{updated:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_lose_no_increment() {
    for target in TARGETS {
        let ns = fresh_namespace("two-servers");
        // Two connections: two servers of one deployment sharing the store.
        let a = Arc::new(target.connect(RedisCache::builder(ns.clone())).await);
        let b = Arc::new(target.connect(RedisCache::builder(ns)).await);
        assert!(a.atomic_updates() && b.atomic_updates());
        increments(&[a.clone(), b.clone()], 32).await;
        assert_eq!(
            lines(a.get(COUNTER).await.unwrap()),
            counted(64),
            "{target:?}"
        );
        assert_eq!(
            a.all_keys().await.unwrap().unwrap(),
            vec![COUNTER.to_owned()]
        );
        a.clear_namespace().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_on_one_key_lose_no_increment() {
    // Eight caches of one namespace, each with its own in-process gate: every conflict is
    // settled by the compare-and-set and its retries alone.
    for target in TARGETS {
        let ns = fresh_namespace("eight-writers");
        let first = target.connect(RedisCache::builder(ns.clone())).await;
        let mut caches = vec![Arc::new(first)];
        for _ in 1..8 {
            let conn = caches[0].connection();
            caches.push(Arc::new(
                RedisCache::builder(ns.clone())
                    .with_connection(&conn)
                    .unwrap(),
            ));
        }
        increments(&caches, 8).await;
        assert_eq!(
            lines(caches[0].get(COUNTER).await.unwrap()),
            counted(64),
            "{target:?}"
        );
        caches[0].clear_namespace().await.unwrap();
    }
}

/// A blocking connection of its own, to write between an update's read and its write.
fn side_connection(target: Target) -> Box<dyn redis::ConnectionLike + Send> {
    match target {
        Target::Standalone => Box::new(
            redis::Client::open(standalone_url())
                .unwrap()
                .get_connection()
                .unwrap(),
        ),
        Target::Cluster => Box::new(
            redis::cluster::ClusterClient::new(cluster_urls())
                .unwrap()
                .get_connection()
                .unwrap(),
        ),
    }
}

/// The JSON (the default codec) of a counter holding `lines`.
fn counter_json(lines: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "keys": lines })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_between_read_and_write_makes_the_update_read_again() {
    for target in TARGETS {
        let cache = target
            .connect(RedisCache::builder(fresh_namespace("interleaved")))
            .await;
        let storage_key = cache.storage_key(COUNTER);
        let side = std::sync::Mutex::new(side_connection(target));
        let runs = Arc::new(AtomicUsize::new(0));
        let seen = runs.clone();
        // The first run of `f` (only this test's `f` has an effect) lets another writer
        // store a value after the read: the compare-and-set must refuse the first write.
        let updated = cache
            .update(
                COUNTER,
                None,
                Box::new(move |current| {
                    if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        let _: () = redis::cmd("SET")
                            .arg(&storage_key)
                            .arg(counter_json(&["other-server"]))
                            .query(&mut **side.lock().unwrap())
                            .unwrap();
                    }
                    increment()(current)
                }),
            )
            .await
            .unwrap();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "{target:?}: read again once"
        );
        let want = Cacheable::Manifest(KeyManifestEntry {
            keys: vec!["other-server".into(), "n1".into()],
        });
        assert_eq!(updated, Updated::Put(want.clone()), "{target:?}");
        assert_eq!(cache.get(COUNTER).await.unwrap(), Some(want));
        assert_eq!(
            cache.all_keys().await.unwrap().unwrap(),
            vec![COUNTER.to_owned()],
            "{target:?}: the update indexed its key"
        );
        cache.clear_namespace().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_never_stops_changing_is_a_temporary_error() {
    for target in TARGETS {
        let cache = target
            .connect(RedisCache::builder(fresh_namespace("contended")))
            .await;
        let storage_key = cache.storage_key(COUNTER);
        let side = std::sync::Mutex::new(side_connection(target));
        let runs = Arc::new(AtomicUsize::new(0));
        let seen = runs.clone();
        let err = cache
            .update(
                COUNTER,
                None,
                Box::new(move |_| {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    let line = format!("{SECRET}-{n}");
                    let _: () = redis::cmd("SET")
                        .arg(&storage_key)
                        .arg(counter_json(&[&line]))
                        .query(&mut **side.lock().unwrap())
                        .unwrap();
                    Update::Put(Cacheable::Manifest(KeyManifestEntry {
                        keys: vec![SECRET.into()],
                    }))
                }),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{target:?}: {err}");
        assert!(err.is_temporary());
        assert_eq!(runs.load(Ordering::SeqCst), 16, "{target:?}: 16 tries");
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
        }
        // The last value written by the other writer is there, never ours.
        let stored = lines(cache.get(COUNTER).await.unwrap());
        assert_eq!(stored, vec![format!("{SECRET}-15")]);
        let _: i64 = redis::cmd("DEL")
            .arg(cache.storage_key(COUNTER))
            .query_async(&mut cache.connection())
            .await
            .unwrap();
    }
}

fn token(rt: &str) -> Cacheable {
    let e = CacheEntry::new("app", "https://api", "read", "at", 3600.0).with_refresh_token(rt);
    WrappedCacheEntry::new(EntryBody::from(e), 4_000_000_000).into()
}

#[tokio::test]
async fn a_tampered_value_is_an_integrity_error_and_nothing_is_written() {
    const KEY: &str = "@@auth0spajs@@::app::https://api::read";
    const OTHER: &str = "@@auth0spajs@@::app::https://api::write";
    for target in TARGETS {
        let codec = Arc::new(EncryptedCodec::new(
            KeyRing::new(DataKey::generate(1).unwrap()),
            "atomic-test",
        ));
        let cache = target
            .connect(RedisCache::builder(fresh_namespace("tampered")).codec(codec))
            .await;
        cache.set(KEY, token(SECRET)).await.unwrap();
        // KEY's bytes copied to OTHER: they do not authenticate there.
        let mut conn = cache.connection();
        let stolen: Vec<u8> = redis::cmd("GET")
            .arg(cache.storage_key(KEY))
            .query_async(&mut conn)
            .await
            .unwrap();
        let () = redis::cmd("SET")
            .arg(cache.storage_key(OTHER))
            .arg(&stolen)
            .query_async(&mut conn)
            .await
            .unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let seen = runs.clone();
        let err = cache
            .update(
                OTHER,
                None,
                Box::new(move |_| {
                    seen.fetch_add(1, Ordering::SeqCst);
                    Update::Put(token("rt-new"))
                }),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "{target:?}: {err}");
        assert!(!err.to_string().contains(SECRET) && !format!("{err:?}").contains(SECRET));
        assert_eq!(runs.load(Ordering::SeqCst), 0, "f never saw the value");
        let after: Vec<u8> = redis::cmd("GET")
            .arg(cache.storage_key(OTHER))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(after, stolen, "{target:?}: nothing written");
        // A removal is refused the same way.
        let err = cache
            .update(OTHER, None, Box::new(|_| Update::Remove))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);

        assert_eq!(cache.get(KEY).await.unwrap(), Some(token(SECRET)));
        cache.clear_namespace().await.unwrap();
        let _: i64 = redis::cmd("DEL")
            .arg(cache.storage_key(OTHER))
            .query_async(&mut conn)
            .await
            .unwrap();

        // With the JSON codec, bytes that are no value at all are a miss, as for `get`:
        // the update is shown no value and replaces them (compared with the bytes read).
        let plain = target
            .connect(RedisCache::builder(fresh_namespace("garbage")))
            .await;
        let () = redis::cmd("SET")
            .arg(plain.storage_key(OTHER))
            .arg(b"\x00not a value".as_slice())
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(plain.get(OTHER).await.unwrap(), None);
        let updated = plain
            .update(
                OTHER,
                None,
                Box::new(|current| {
                    assert!(current.is_none(), "garbage is shown as no value");
                    Update::Put(token("rt-new"))
                }),
            )
            .await
            .unwrap();
        assert_eq!(updated, Updated::Put(token("rt-new")));
        assert_eq!(plain.get(OTHER).await.unwrap(), Some(token("rt-new")));
        plain.clear_namespace().await.unwrap();
    }
}

#[tokio::test]
async fn updates_keep_remove_and_index_like_set_and_remove() {
    const KEY: &str = "@@auth0spajs@@::app::https://api::read";
    for target in TARGETS {
        let cache = target
            .connect(RedisCache::builder(fresh_namespace("update-kinds")))
            .await;
        // Keep on nothing: nothing written, nothing indexed.
        assert_eq!(
            cache
                .update(KEY, None, Box::new(|_| Update::Keep))
                .await
                .unwrap(),
            Updated::Kept(None)
        );
        assert_eq!(
            cache.all_keys().await.unwrap().unwrap(),
            Vec::<String>::new()
        );
        // Put on nothing (compared with "absent"), then Keep shows it.
        assert_eq!(
            cache
                .update(KEY, None, Box::new(|_| Update::Put(token("rt0"))))
                .await
                .unwrap(),
            Updated::Put(token("rt0"))
        );
        assert_eq!(
            cache.all_keys().await.unwrap().unwrap(),
            vec![KEY.to_owned()]
        );
        assert_eq!(
            cache
                .update(KEY, None, Box::new(|_| Update::Keep))
                .await
                .unwrap(),
            Updated::Kept(Some(token("rt0")))
        );
        // Remove drops the entry and its index member.
        assert_eq!(
            cache
                .update(KEY, None, Box::new(|_| Update::Remove))
                .await
                .unwrap(),
            Updated::Removed
        );
        assert_eq!(cache.get(KEY).await.unwrap(), None);
        assert_eq!(
            cache.all_keys().await.unwrap().unwrap(),
            Vec::<String>::new()
        );
        // An entry without a refresh token gets the TTL `set` gives it (the system clock:
        // valid for an hour, plus the 60 s grace).
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let short: Cacheable = WrappedCacheEntry::new(
            EntryBody::from(CacheEntry::new("app", "https://api", "read", "at", 3600.0)),
            now_s + 3600,
        )
        .into();
        let value = short.clone();
        cache
            .update(KEY, None, Box::new(move |_| Update::Put(value.clone())))
            .await
            .unwrap();
        let pttl: i64 = redis::cmd("PTTL")
            .arg(cache.storage_key(KEY))
            .query_async(&mut cache.connection())
            .await
            .unwrap();
        assert!(pttl > 3_600_000 && pttl <= 3_661_000, "{target:?}: {pttl}");
        // One already past its end is not kept.
        let expired: Cacheable = WrappedCacheEntry::new(
            EntryBody::from(CacheEntry::new("app", "https://api", "read", "at", 1.0)),
            now_s - 3600,
        )
        .into();
        cache
            .update(KEY, None, Box::new(move |_| Update::Put(expired.clone())))
            .await
            .unwrap();
        assert_eq!(cache.get(KEY).await.unwrap(), None, "{target:?}");
        assert_eq!(
            cache.all_keys().await.unwrap().unwrap(),
            Vec::<String>::new()
        );
        cache.clear_namespace().await.unwrap();
    }
}

#[tokio::test]
async fn remove_prefix_removes_exactly_the_prefix() {
    for target in TARGETS {
        let cache = target
            .connect(RedisCache::builder(fresh_namespace("remove-prefix")))
            .await;
        let keys = [
            "@@auth0spajs@@::a::api::read",
            "@@auth0spajs@@::a::api::write",
            "@@auth0spajs@@::a",
            "@@auth0spajs@@::ab::api::read",
            "@@auth0spajs@@::b::api::read",
            "other::a::api::read",
        ];
        for k in keys {
            cache.set(k, token("rt")).await.unwrap();
        }
        assert_eq!(
            cache.remove_prefix("@@auth0spajs@@::a::").await.unwrap(),
            Some(2),
            "{target:?}"
        );
        let mut left = cache.all_keys().await.unwrap().unwrap().to_strings();
        left.sort();
        assert_eq!(
            left,
            vec![
                "@@auth0spajs@@::a",
                "@@auth0spajs@@::ab::api::read",
                "@@auth0spajs@@::b::api::read",
                "other::a::api::read",
            ]
        );
        assert_eq!(
            cache.remove_prefix("@@auth0spajs@@::").await.unwrap(),
            Some(3)
        );
        assert_eq!(cache.remove_prefix("nothing::").await.unwrap(), Some(0));
        assert_eq!(
            cache.all_keys().await.unwrap().unwrap(),
            vec!["other::a::api::read"]
        );
        assert_eq!(
            cache.get("other::a::api::read").await.unwrap(),
            Some(token("rt"))
        );
        assert_eq!(cache.remove_prefix("").await.unwrap(), Some(1));
        let index: i64 = redis::cmd("EXISTS")
            .arg(cache.index_key())
            .query_async(&mut cache.connection())
            .await
            .unwrap();
        assert_eq!(index, 0, "{target:?}: an empty index is gone");
    }
}
