//! With an encrypting codec, Redis holds no token bytes: the raw values, read with a
//! plain redis client, are checked for every token.

mod common;

use std::sync::Arc;

use common::{fresh_namespace, Target, TARGETS};
use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, DecodedToken, ErrorKind, GetOptions, ManualClock,
};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_redis::redis;
use tokencache_redis::RedisCache;

const AT: &str = "access-token-SECRET-3f9a";
const RT: &str = "refresh-token-SECRET-77c1";
const IDT: &str = "id-token-SECRET-e02b";

/// The namespace's raw values, read with a plain redis-rs client (not the cache's).
async fn raw_values(target: Target, cache: &RedisCache) -> Vec<Vec<u8>> {
    let (members, values) = match target {
        Target::Standalone => {
            let mut c = redis::Client::open(common::standalone_url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            read_namespace(&mut c, cache).await
        }
        Target::Cluster => {
            let mut c = redis::cluster::ClusterClient::new(common::cluster_urls())
                .unwrap()
                .get_async_connection()
                .await
                .unwrap();
            read_namespace(&mut c, cache).await
        }
    };
    assert_eq!(members.len(), 2, "the entry and the id token");
    values
}

/// The index members of `cache`'s namespace and the raw value stored for each.
async fn read_namespace(
    c: &mut impl redis::aio::ConnectionLike,
    cache: &RedisCache,
) -> (Vec<String>, Vec<Vec<u8>>) {
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(cache.index_key())
        .arg(0)
        .arg(-1)
        .query_async(c)
        .await
        .unwrap();
    let mut values = Vec::new();
    for m in &members {
        let v: Vec<u8> = redis::cmd("GET")
            .arg(cache.storage_key(m))
            .query_async(c)
            .await
            .unwrap();
        values.push(v);
    }
    (members, values)
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn no_token_bytes_are_stored_when_encryption_is_on() {
    for target in TARGETS {
        let ns = fresh_namespace("crypto");
        let codec = EncryptedCodec::new(KeyRing::new(DataKey::generate(1).unwrap()), ns.clone());
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let cache = Arc::new(
            target
                .connect(
                    RedisCache::builder(ns.clone())
                        .clock(clock.clone())
                        .codec(Arc::new(codec)),
                )
                .await,
        );
        let manager = CacheManager::builder(cache.clone())
            .clock(clock)
            .build()
            .unwrap();
        let mut decoded = DecodedToken::default();
        decoded.claims.insert("__raw".into(), IDT.into());
        manager
            .set(
                CacheEntry::new("client", "api", "openid read", AT, 3600.0)
                    .with_refresh_token(RT)
                    .with_id_token(IDT, decoded.clone()),
            )
            .await
            .unwrap();
        manager.set_id_token("client", IDT, decoded).await.unwrap();

        let values = raw_values(target, &cache).await;
        for v in &values {
            assert!(!v.is_empty());
            for secret in [AT, RT, IDT, "access_token", "refresh_token"] {
                assert!(
                    !contains(v, secret),
                    "{target:?}: a raw value holds {secret:?}"
                );
            }
        }

        // It reads back through the cache.
        let body = manager
            .get(
                &CacheKey::new("client", Some("api"), Some("read")),
                GetOptions::default(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(body.access_token.as_deref(), Some(AT));

        // Another key cannot read it: an integrity error, never a miss.
        let other = EncryptedCodec::new(KeyRing::new(DataKey::generate(1).unwrap()), ns.clone());
        let wrong = target
            .connect(RedisCache::builder(ns).codec(Arc::new(other)))
            .await;
        let key = cache.all_keys().await.unwrap().unwrap()[0].clone();
        let err = wrong.get(&key).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "{target:?}");
        cache.clear_namespace().await.unwrap();
    }
}
