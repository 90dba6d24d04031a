//! Robustness of the reader: arbitrary data written straight into Redis with raw redis-rs
//! commands (any bytes, or the wrong Redis type, at an entry's key; any bytes as an index
//! member) is read through the cache — `get`, the key listings — on the standalone server
//! and the cluster, without a panic, as a valid value, a miss or a typed error. A plaintext
//! cache sees a miss or the JSON's value; an encrypted one an integrity error.
//!
//! 256 cases per property by default (proptest's own); `PROPTEST_CASES=100000` runs more.

mod common;

use std::sync::Arc;

use common::{fresh_namespace, Target, TARGETS};
use proptest::prelude::*;
use tokencache_core::{Cache, Cacheable, ErrorKind};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_redis::redis;
use tokencache_redis::RedisCache;

/// What a test writes where the cache keeps an entry.
#[derive(Debug, Clone)]
enum Raw {
    /// A string value of these bytes (what the cache itself writes, but arbitrary).
    Bytes(Vec<u8>),
    /// A list: the wrong Redis type.
    List(Vec<u8>),
}

fn raw() -> impl Strategy<Value = Raw> {
    prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Raw::Bytes),
        // JSON-looking bytes reach the value decoder.
        3 => "\\{\"(body|keys|id_token|expiresAt)\":[\\[\\]{}0-9a-z\",:]{0,40}\\}"
            .prop_map(|s| Raw::Bytes(s.into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..20).prop_map(Raw::List),
    ]
}

/// A plaintext and an encrypted cache on each target, made once per test thread.
struct Rig {
    rt: tokio::runtime::Runtime,
    caches: Vec<(Target, RedisCache, RedisCache)>,
}

impl Rig {
    fn new() -> Rig {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let caches = rt.block_on(async {
            let codec = Arc::new(EncryptedCodec::new(
                KeyRing::new(DataKey::new(1, [9; 32])),
                "fuzz",
            ));
            let mut caches = Vec::new();
            for target in TARGETS {
                let plain = target
                    .connect(RedisCache::builder(fresh_namespace("fuzz-plain")))
                    .await;
                let encrypted = target
                    .connect(RedisCache::builder(fresh_namespace("fuzz-enc")).codec(codec.clone()))
                    .await;
                caches.push((target, plain, encrypted));
            }
            caches
        });
        Rig { rt, caches }
    }
}

thread_local! {
    static RIG: Rig = Rig::new();
}

async fn query<T: redis::FromRedisValue>(cache: &RedisCache, cmd: &mut redis::Cmd) -> T {
    cmd.query_async(&mut cache.connection())
        .await
        .expect("raw redis command")
}

/// Writes `raw` where `cache` keeps the entry of `key`.
async fn write(cache: &RedisCache, key: &str, raw: &Raw) {
    let storage_key = cache.storage_key(key);
    let _: i64 = query(cache, redis::cmd("DEL").arg(&storage_key)).await;
    match raw {
        Raw::Bytes(b) => {
            let () = query(cache, redis::cmd("SET").arg(&storage_key).arg(b)).await;
        }
        Raw::List(b) => {
            let _: i64 = query(cache, redis::cmd("RPUSH").arg(&storage_key).arg(b)).await;
        }
    }
}

async fn check_get(
    target: Target,
    plain: &RedisCache,
    encrypted: &RedisCache,
    key: &str,
    raw: &Raw,
) -> Result<(), TestCaseError> {
    write(plain, key, raw).await;
    write(encrypted, key, raw).await;
    match (raw, plain.get(key).await) {
        // Bytes that parse are the value they hold; the rest is a miss.
        (Raw::Bytes(b), Ok(got)) => prop_assert_eq!(got, Cacheable::from_json(b).ok()),
        // The wrong type: the server's WRONGTYPE, a typed error.
        (Raw::List(_), Err(e)) => {
            prop_assert_eq!(e.kind(), ErrorKind::Unexpected, "{:?}: {}", target, e)
        }
        (raw, got) => prop_assert!(false, "{:?}: {:?} read as {:?}", target, raw, got),
    }
    match (raw, encrypted.get(key).await) {
        (Raw::Bytes(_), Err(e)) => {
            prop_assert_eq!(e.kind(), ErrorKind::Integrity, "{:?}: {}", target, e)
        }
        (Raw::List(_), Err(e)) => {
            prop_assert_eq!(e.kind(), ErrorKind::Unexpected, "{:?}: {}", target, e)
        }
        (raw, got) => prop_assert!(false, "{:?}: {:?} decrypted as {:?}", target, raw, got),
    }
    for cache in [plain, encrypted] {
        let _: i64 = query(cache, redis::cmd("DEL").arg(cache.storage_key(key))).await;
    }
    Ok(())
}

/// Adds `member` (any bytes) to `cache`'s index with an entry beside it, lists, cleans up.
async fn check_listing(
    target: Target,
    cache: &RedisCache,
    member: &[u8],
) -> Result<(), TestCaseError> {
    let mut storage_key = cache.storage_key("").into_bytes();
    storage_key.extend_from_slice(member);
    let () = query(cache, redis::cmd("SET").arg(&storage_key).arg("x")).await;
    let _: i64 = query(
        cache,
        redis::cmd("ZADD").arg(cache.index_key()).arg(0).arg(member),
    )
    .await;
    let listings = [cache.all_keys().await, cache.keys_with_prefix("").await];
    for listed in listings {
        match (std::str::from_utf8(member), listed) {
            (Ok(m), Ok(keys)) => prop_assert_eq!(
                keys.map(Vec::from),
                Some(vec![m.to_owned()]),
                "{:?}",
                target
            ),
            // A member that is not UTF-8 is not a key of this cache: a typed error.
            (Err(_), Err(e)) => {
                prop_assert_eq!(e.kind(), ErrorKind::Unexpected, "{:?}: {}", target, e)
            }
            (m, got) => prop_assert!(false, "{:?}: member {:?} listed as {:?}", target, m, got),
        }
    }
    let _: i64 = query(
        cache,
        redis::cmd("DEL").arg(&storage_key).arg(cache.index_key()),
    )
    .await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn arbitrary_stored_data_reads_as_a_value_a_miss_or_a_typed_error(
        key in prop_oneof!["@@auth0spajs@@::[a-z:]{0,12}", any::<String>()],
        raw in raw(),
    ) {
        RIG.with(|rig| {
            rig.rt.block_on(async {
                for (target, plain, encrypted) in &rig.caches {
                    check_get(*target, plain, encrypted, &key, &raw).await?;
                }
                Ok::<(), TestCaseError>(())
            })
        })?;
    }

    #[test]
    fn arbitrary_index_members_list_or_fail_typed(
        member in prop_oneof![
            prop::collection::vec(any::<u8>(), 1..40),
            any::<String>().prop_filter("non-empty", |s| !s.is_empty()).prop_map(String::into_bytes),
        ],
    ) {
        RIG.with(|rig| {
            rig.rt.block_on(async {
                for (target, plain, _) in &rig.caches {
                    check_listing(*target, plain, &member).await?;
                }
                Ok::<(), TestCaseError>(())
            })
        })?;
    }
}

#[test]
fn the_rig_reads_what_the_cache_writes() {
    // The failures above are the data's fault, not the rig's.
    RIG.with(|rig| {
        rig.rt.block_on(async {
            let v = Cacheable::from(tokencache_core::KeyManifestEntry { keys: vec![] });
            for (target, plain, encrypted) in &rig.caches {
                for cache in [plain, encrypted] {
                    cache.set("@@auth0spajs@@::k", v.clone()).await.unwrap();
                    assert_eq!(
                        cache.get("@@auth0spajs@@::k").await.unwrap(),
                        Some(v.clone()),
                        "{target:?}"
                    );
                    cache.clear_namespace().await.unwrap();
                }
            }
        })
    });
}
