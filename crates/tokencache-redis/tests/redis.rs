//! RedisCache against real servers (standalone and a 3-master cluster) from scripts/redis.sh.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fresh_namespace, Target, TARGETS};
use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, Cacheable, DecodedToken, EntryBody, ErrorKind,
    GetOptions, IdTokenEntry, KeyManifestEntry, ManualClock, Retention, WrappedCacheEntry,
};
use tokencache_redis::redis::{self, AsyncCommands};
use tokencache_redis::RedisCache;

const NOW_MS: i64 = 1_700_000_000_000;
const NOW_S: i64 = NOW_MS / 1000;

fn entry(at: &str, expires_at: i64, rt: Option<&str>) -> Cacheable {
    WrappedCacheEntry::new(
        EntryBody {
            client_id: Some("c".into()),
            access_token: Some(at.into()),
            refresh_token: rt.map(str::to_owned),
            ..Default::default()
        },
        expires_at,
    )
    .into()
}

async fn cache_at(target: Target, tag: &str, now_ms: i64) -> (RedisCache, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now_ms));
    let cache = target
        .connect(RedisCache::builder(fresh_namespace(tag)).clock(clock.clone()))
        .await;
    (cache, clock)
}

async fn raw<T: redis::FromRedisValue>(cache: &RedisCache, cmd: &mut redis::Cmd) -> T {
    cmd.query_async(&mut cache.connection())
        .await
        .expect("raw redis command")
}

#[tokio::test]
async fn values_round_trip_and_are_listed() {
    for target in TARGETS {
        let (cache, _) = cache_at(target, "roundtrip", NOW_MS).await;
        let e = entry("at-1", NOW_S + 60, Some("rt-1"));
        let m: Cacheable = KeyManifestEntry {
            keys: vec!["@@auth0spajs@@::a::b::c".into()],
        }
        .into();
        let id: Cacheable = IdTokenEntry {
            id_token: "idt".into(),
            decoded_token: DecodedToken::default(),
        }
        .into();
        let keys = [
            "@@auth0spajs@@::a::api::read",
            "@@auth0spajs@@::a",
            "@@auth0spajs@@::a::@@user@@",
            "@@auth0spajs@@::ab::api::read",
            "@@auth0spajs@@::ü::api::ß",
        ];
        let values = [e.clone(), m, id, e.clone(), e];
        for (k, v) in keys.iter().zip(&values) {
            cache.set(k, v.clone()).await.unwrap();
        }
        for (k, v) in keys.iter().zip(&values) {
            assert_eq!(
                cache.get(k).await.unwrap().as_ref(),
                Some(v),
                "{target:?} {k}"
            );
        }
        assert!(cache.lists_keys());
        let all: BTreeSet<String> = cache
            .all_keys()
            .await
            .unwrap()
            .unwrap()
            .to_strings()
            .into_iter()
            .collect();
        let expected: BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
        assert_eq!(all, expected, "{target:?}");

        let mut a = cache
            .keys_with_prefix("@@auth0spajs@@::a::")
            .await
            .unwrap()
            .unwrap()
            .to_strings();
        a.sort();
        assert_eq!(
            a,
            [
                "@@auth0spajs@@::a::@@user@@",
                "@@auth0spajs@@::a::api::read"
            ],
            "{target:?}"
        );
        let u = cache
            .keys_with_prefix("@@auth0spajs@@::ü")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u, ["@@auth0spajs@@::ü::api::ß"], "{target:?}");
        assert_eq!(
            cache.keys_with_prefix("").await.unwrap().unwrap().len(),
            keys.len()
        );
        assert!(cache
            .keys_with_prefix("zz")
            .await
            .unwrap()
            .unwrap()
            .is_empty());

        // Overwriting keeps one index member; remove drops entry and member.
        cache
            .set(keys[0], entry("at-2", NOW_S + 60, None))
            .await
            .unwrap();
        let n: usize = raw(&cache, redis::cmd("ZCARD").arg(cache.index_key())).await;
        assert_eq!(n, keys.len());
        cache.remove(keys[0]).await.unwrap();
        cache.remove("never-stored").await.unwrap();
        assert_eq!(cache.get(keys[0]).await.unwrap(), None);
        let all = cache.all_keys().await.unwrap().unwrap();
        assert_eq!(all.len(), keys.len() - 1);
        assert!(!all.iter().any(|k| k == keys[0]));

        assert_eq!(cache.clear_namespace().await.unwrap(), keys.len() - 1);
        assert!(cache.all_keys().await.unwrap().unwrap().is_empty());
        let exists: i64 = raw(&cache, redis::cmd("EXISTS").arg(cache.storage_key(keys[1]))).await;
        assert_eq!(exists, 0);
    }
}

#[tokio::test]
async fn namespaces_are_independent_and_share_one_slot() {
    for target in TARGETS {
        let (a, _) = cache_at(target, "ns-a", NOW_MS).await;
        let (b, _) = cache_at(target, "ns-b", NOW_MS).await;
        a.set("k", entry("at-a", NOW_S + 60, None)).await.unwrap();
        b.set("k", entry("at-b", NOW_S + 60, None)).await.unwrap();
        b.set("k2", entry("at-b2", NOW_S + 60, None)).await.unwrap();
        assert_eq!(a.all_keys().await.unwrap().unwrap(), ["k"]);
        assert_eq!(b.all_keys().await.unwrap().unwrap().len(), 2);
        let got = a.get("k").await.unwrap().unwrap();
        assert_eq!(
            got.as_entry().unwrap().body.access_token.as_deref(),
            Some("at-a")
        );
        a.clear_namespace().await.unwrap();
        assert_eq!(a.get("k").await.unwrap(), None);
        assert!(b.get("k").await.unwrap().is_some());

        if target == Target::Cluster {
            let slot = |key: String| {
                let cache = &b;
                async move {
                    let s: i64 = raw(cache, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)).await;
                    s
                }
            };
            let index_slot = slot(b.index_key().to_owned()).await;
            for k in ["k", "k2", "x}y{z", "@@auth0spajs@@::c::a::s"] {
                assert_eq!(slot(b.storage_key(k)).await, index_slot, "{k}");
            }
        }
        b.clear_namespace().await.unwrap();
    }
}

#[tokio::test]
async fn bad_namespaces_are_config_errors() {
    for ns in ["", "a{b}", "x}"] {
        let err = RedisCache::connect(&common::standalone_url(), ns)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{ns:?}");
    }
}

#[tokio::test]
async fn entries_carry_a_ttl_unless_they_hold_a_refresh_token() {
    for target in TARGETS {
        let (cache, _) = cache_at(target, "ttl", NOW_MS).await;
        cache
            .set("plain", entry("at", NOW_S + 100, None))
            .await
            .unwrap();
        cache
            .set("rt", entry("at", NOW_S - 5000, Some("rt")))
            .await
            .unwrap();
        cache
            .set(
                "m",
                KeyManifestEntry {
                    keys: vec!["x".into()],
                }
                .into(),
            )
            .await
            .unwrap();
        let pttl = |k: &str| redis::cmd("PTTL").arg(cache.storage_key(k)).to_owned();
        let plain: i64 = raw(&cache, &mut pttl("plain")).await;
        // Valid through second NOW_S + 100, so about 101 s from the (manual) clock's now,
        // plus the default grace.
        let expected = 101_000 + tokencache_redis::DEFAULT_EXPIRY_GRACE.as_millis() as i64;
        assert!(
            plain > expected - 1000 && plain <= expected,
            "{target:?} pttl {plain}"
        );
        let rt: i64 = raw(&cache, &mut pttl("rt")).await;
        assert_eq!(rt, -1, "{target:?}");
        let m: i64 = raw(&cache, &mut pttl("m")).await;
        assert_eq!(m, -1, "{target:?}");

        // An entry already past its last valid second is not kept.
        cache
            .set("gone", entry("at", NOW_S - 1, None))
            .await
            .unwrap();
        assert_eq!(cache.get("gone").await.unwrap(), None);
        assert!(!cache.all_keys().await.unwrap().unwrap().contains("gone"));

        // With a retention, refresh-token entries expire that long after their access token.
        let retained = target
            .connect(
                RedisCache::builder(cache.namespace())
                    .clock(Arc::new(ManualClock::new(NOW_MS)))
                    .expiry_grace(Duration::ZERO)
                    .refresh_token_retention(Retention::after(Duration::from_secs(3600))),
            )
            .await;
        retained
            .set("rt2", entry("at", NOW_S - 600, Some("rt")))
            .await
            .unwrap();
        let rt2: i64 = raw(&cache, &mut pttl("rt2")).await;
        // Valid through second NOW_S - 600, then 3,600 s of retention: 3,001 s from NOW_MS.
        assert!(rt2 > 2_999_000 && rt2 <= 3_001_000, "{target:?} pttl {rt2}");
        retained
            .set("rt3", entry("at", NOW_S - 5000, Some("rt")))
            .await
            .unwrap();
        assert_eq!(
            retained.get("rt3").await.unwrap(),
            None,
            "past its retention"
        );
        cache.clear_namespace().await.unwrap();
    }
}

/// The TTL Redis holds (PTTL) is the core policy's time to live, for each retention and
/// entry: `-2` (not kept) past the deadline, `-1` (no TTL) without one or beyond the
/// horizon, otherwise the time left. Huge retentions and graces never make a failing script.
#[tokio::test]
async fn ttls_follow_the_retention_policy() {
    let retentions = [
        Retention::NEVER,
        Retention::after(Duration::ZERO),
        Retention::after(Duration::from_millis(1_500)),
        Retention::after(Duration::from_secs(3600)),
        Retention::after(Duration::MAX),
    ];
    let now_ms = NOW_MS + 250;
    for target in TARGETS {
        for retention in retentions {
            for grace in [Duration::ZERO, Duration::MAX] {
                let cache = target
                    .connect(
                        RedisCache::builder(fresh_namespace("policy"))
                            .clock(Arc::new(ManualClock::new(now_ms)))
                            .expiry_grace(grace)
                            .refresh_token_retention(retention),
                    )
                    .await;
                let mut values = vec![(
                    "manifest".to_owned(),
                    Cacheable::from(KeyManifestEntry { keys: vec![] }),
                )];
                for rt in [None, Some("rt")] {
                    for expires_at in [NOW_S - 4000, NOW_S - 1, NOW_S, NOW_S + 100] {
                        values.push((format!("{rt:?} {expires_at}"), entry("at", expires_at, rt)));
                    }
                }
                for (key, value) in &values {
                    cache.set(key, value.clone()).await.unwrap();
                }
                for (key, value) in &values {
                    let what = format!("{target:?} {retention:?} grace {grace:?} {key}");
                    let pttl: i64 =
                        raw(&cache, redis::cmd("PTTL").arg(cache.storage_key(key))).await;
                    match retention.time_to_live(value, now_ms) {
                        Some(left) if left.is_zero() => assert_eq!(pttl, -2, "{what}"),
                        None => assert_eq!(pttl, -1, "{what}"),
                        // A grace that would pass the horizon: no TTL.
                        Some(_) if grace == Duration::MAX => assert_eq!(pttl, -1, "{what}"),
                        Some(left) => {
                            let left = left.as_millis() as i64;
                            assert!(pttl > left - 1000 && pttl <= left, "{what}: {pttl}");
                        }
                    }
                }
                cache.clear_namespace().await.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn entries_expired_by_redis_leave_the_index() {
    for target in TARGETS {
        // The clock stands 700 ms into the entry's last valid second: a 300 ms TTL
        // without grace.
        let cache = target
            .connect(
                RedisCache::builder(fresh_namespace("expire"))
                    .clock(Arc::new(ManualClock::new((NOW_S + 10) * 1000 + 700)))
                    .expiry_grace(Duration::ZERO),
            )
            .await;
        cache
            .set("short", entry("at", NOW_S + 10, None))
            .await
            .unwrap();
        cache
            .set("long", entry("at", NOW_S + 1000, None))
            .await
            .unwrap();
        assert!(cache.get("short").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(cache.get("short").await.unwrap(), None);
        let zcard = || redis::cmd("ZCARD").arg(cache.index_key()).to_owned();
        let before: i64 = raw(&cache, &mut zcard()).await;
        assert_eq!(before, 2, "the index still names the expired entry");
        assert_eq!(
            cache.keys_with_prefix("sh").await.unwrap().unwrap(),
            Vec::<String>::new()
        );
        // A listing never writes; the next write cleans the index.
        let listed: i64 = raw(&cache, &mut zcard()).await;
        assert_eq!(listed, 2, "{target:?}: the listing wrote to the index");
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["long"]);
        cache
            .set("other", entry("at", NOW_S + 1000, None))
            .await
            .unwrap();
        let after: i64 = raw(&cache, &mut zcard()).await;
        assert_eq!(after, 2, "{target:?}: the write cleaned the index");
        let members: Vec<String> = raw(
            &cache,
            redis::cmd("ZRANGE").arg(cache.index_key()).arg(0).arg(-1),
        )
        .await;
        assert_eq!(members, ["long", "other"]);
        cache.clear_namespace().await.unwrap();
    }
}

#[tokio::test]
async fn index_stays_consistent_under_concurrent_writers() {
    for target in TARGETS {
        let ns = fresh_namespace("concurrent");
        let mut caches = Vec::new();
        for _ in 0..4 {
            caches.push(Arc::new(
                target
                    .connect(
                        RedisCache::builder(ns.clone()).clock(Arc::new(ManualClock::new(NOW_MS))),
                    )
                    .await,
            ));
        }
        let mut tasks = Vec::new();
        for (w, cache) in caches.iter().enumerate() {
            for t in 0..4 {
                let cache = cache.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..150u32 {
                        let key = format!("k{}", (i * 7 + t * 3 + w as u32) % 20);
                        if (i + t) % 3 == 0 {
                            cache.remove(&key).await.unwrap();
                        } else {
                            let at = format!("at-{w}-{t}-{i}");
                            cache
                                .set(&key, entry(&at, NOW_S + 600, None))
                                .await
                                .unwrap();
                        }
                    }
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let cache = &caches[0];
        let members: Vec<String> = raw(
            cache,
            redis::cmd("ZRANGE").arg(cache.index_key()).arg(0).arg(-1),
        )
        .await;
        let mut present = Vec::new();
        for i in 0..20 {
            let key = format!("k{i}");
            let exists: i64 = raw(cache, redis::cmd("EXISTS").arg(cache.storage_key(&key))).await;
            assert_eq!(
                exists == 1,
                members.contains(&key),
                "{target:?}: entry and index disagree on {key}"
            );
            if exists == 1 {
                present.push(key);
            }
        }
        let mut listed = cache.all_keys().await.unwrap().unwrap().to_strings();
        listed.sort();
        present.sort();
        assert_eq!(listed, present);
        cache.clear_namespace().await.unwrap();
    }
}

#[tokio::test]
async fn undecodable_values_are_misses() {
    for target in TARGETS {
        let (cache, _) = cache_at(target, "garbage", NOW_MS).await;
        let mut conn = cache.connection();
        let _: () = conn
            .set(cache.storage_key("k"), b"\x00not json")
            .await
            .unwrap();
        assert_eq!(cache.get("k").await.unwrap(), None);
        let _: () = conn
            .set(cache.storage_key("k"), "{\"keys\":[]}")
            .await
            .unwrap();
        assert!(cache
            .get("k")
            .await
            .unwrap()
            .unwrap()
            .as_manifest()
            .is_some());
        cache.clear_namespace().await.unwrap();
        let _: () = conn.del(cache.storage_key("k")).await.unwrap();
    }
}

#[tokio::test]
async fn a_manager_needs_no_manifest_over_redis() {
    for target in TARGETS {
        let (cache, clock) = cache_at(target, "manager", NOW_MS).await;
        let cache = Arc::new(cache);
        let manager = CacheManager::builder(cache.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
        assert_eq!(manager.manifest_key(), None);
        manager
            .set(CacheEntry::new(
                "client",
                "api",
                "openid read write",
                "at-m",
                60.0,
            ))
            .await
            .unwrap();
        let key = CacheKey::new("client", Some("api"), Some("read"));
        let body = manager
            .get(&key, GetOptions::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(body.access_token.as_deref(), Some("at-m"));
        assert_eq!(
            cache.all_keys().await.unwrap().unwrap().len(),
            1,
            "{target:?}: no manifest"
        );
        clock.advance(Duration::from_secs(120));
        assert!(manager
            .get(&key, GetOptions::default())
            .await
            .unwrap()
            .is_none());
        assert!(cache.all_keys().await.unwrap().unwrap().is_empty());
        cache.clear_namespace().await.unwrap();
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_quick_temporary_unavailable_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = RedisCache::builder("t")
        .connect_timeout(Duration::from_millis(300))
        .connect(&format!("redis://:secret-password@127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!format!("{err:?}").contains("secret-password"));

    let err = RedisCache::builder("t")
        .connect("not a url")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn debug_output_names_no_secret() {
    let cache = Target::Standalone
        .connect(RedisCache::builder(fresh_namespace("debug")))
        .await;
    let dbg = format!("{cache:?}");
    assert!(dbg.contains(cache.namespace()), "{dbg}");
    assert!(!dbg.contains("127.0.0.1"), "{dbg}");
}
