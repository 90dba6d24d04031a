//! An encrypted value is bound to its full storage location (namespace and cache key):
//! raw bytes copied with plain GET/SET to another namespace or another key of the same
//! namespace fail authentication, even when one codec (one key ring, one codec
//! namespace) serves every Redis namespace.

mod common;

use std::sync::Arc;

use common::{fresh_namespace, Target, TARGETS};
use tokencache_core::{
    Cache, CacheEntry, Cacheable, EntryBody, ErrorKind, ValueCodec, WrappedCacheEntry,
};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_redis::redis;
use tokencache_redis::RedisCache;

const KEY: &str = "@@auth0spajs@@::client::api::openid read";
const OTHER_KEY: &str = "@@auth0spajs@@::client::api::openid write";

fn value(at: &str) -> Cacheable {
    let body = EntryBody::from(CacheEntry::new("client", "api", "openid read", at, 3600.0));
    WrappedCacheEntry::new(body, 4_000_000_000).into()
}

async fn raw_get(cache: &RedisCache, key: &str) -> Vec<u8> {
    redis::cmd("GET")
        .arg(cache.storage_key(key))
        .query_async(&mut cache.connection())
        .await
        .expect("raw GET")
}

/// Plain `SET` of `bytes` at `key` of `cache`'s namespace, and the index member so the
/// key is listed like one the cache wrote. Each command touches one namespace, whose keys
/// share its hash tag: this works on the cluster too.
async fn raw_set(cache: &RedisCache, key: &str, bytes: &[u8]) {
    let mut conn = cache.connection();
    let () = redis::cmd("SET")
        .arg(cache.storage_key(key))
        .arg(bytes)
        .query_async(&mut conn)
        .await
        .expect("raw SET");
    let _: i64 = redis::cmd("ZADD")
        .arg(cache.index_key())
        .arg(0)
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("raw ZADD");
}

#[tokio::test]
async fn a_value_copied_to_another_namespace_or_key_fails_authentication() {
    for target in TARGETS {
        // One codec for both namespaces, as an application with one key ring would have.
        let codec: Arc<dyn ValueCodec> = Arc::new(EncryptedCodec::new(
            KeyRing::new(DataKey::generate(1).unwrap()),
            "one-app",
        ));
        let connect = |ns: String| {
            let codec = codec.clone();
            async move { target.connect(RedisCache::builder(ns).codec(codec)).await }
        };
        let user_a = connect(fresh_namespace("user-a")).await;
        let user_b = connect(fresh_namespace("user-b")).await;

        user_a.set(KEY, value("token-of-A")).await.unwrap();
        user_b.set(KEY, value("token-of-B")).await.unwrap();
        assert_eq!(user_a.get(KEY).await.unwrap(), Some(value("token-of-A")));

        // A's bytes over B's value, same cache key.
        let stolen = raw_get(&user_a, KEY).await;
        raw_set(&user_b, KEY, &stolen).await;
        assert_eq!(raw_get(&user_b, KEY).await, stolen, "{target:?}: copied");
        let err = user_b.get(KEY).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "{target:?}: {err}");

        // A's bytes at another key of A's own namespace.
        raw_set(&user_a, OTHER_KEY, &stolen).await;
        let err = user_a.get(OTHER_KEY).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "{target:?}: {err}");

        // The original still reads; B's own value written again reads too.
        assert_eq!(user_a.get(KEY).await.unwrap(), Some(value("token-of-A")));
        user_b.set(KEY, value("token-of-B")).await.unwrap();
        assert_eq!(user_b.get(KEY).await.unwrap(), Some(value("token-of-B")));

        user_a.clear_namespace().await.unwrap();
        user_b.clear_namespace().await.unwrap();
    }
}

#[tokio::test]
async fn the_codec_is_given_the_full_storage_key() {
    // What the cache stores at a key decodes with the storage key as the location, and
    // not with the bare cache key.
    let codec = Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::generate(1).unwrap()),
        "one-app",
    ));
    let cache = Target::Standalone
        .connect(RedisCache::builder(fresh_namespace("location")).codec(codec.clone()))
        .await;
    cache.set(KEY, value("at")).await.unwrap();
    let bytes = raw_get(&cache, KEY).await;
    assert_eq!(
        codec.decode(&cache.storage_key(KEY), &bytes).unwrap(),
        value("at")
    );
    assert_eq!(
        codec.decode(KEY, &bytes).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    cache.clear_namespace().await.unwrap();
}
