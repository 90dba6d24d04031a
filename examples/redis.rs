//! Servers sharing one token cache in Redis: each tenant gets its own namespace, values are
//! encrypted, and a second server finds what the first one stored.
//!
//! ```sh
//! TOKENCACHE_REDIS_URL=redis://127.0.0.1:6379 cargo run --example redis --features redis
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokencache::crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache::redis::RedisCache;
use tokencache::{CacheEntry, CacheKey, CacheManager, GetOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> tokencache::Result<()> {
    let url = std::env::var("TOKENCACHE_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let namespace = format!("example-tenant-{}", std::process::id());
    let codec = Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::generate(1)?),
        "my-api",
    ));
    let connect = || {
        RedisCache::builder(namespace.as_str())
            .codec(codec.clone())
            .command_timeout(Duration::from_secs(2))
            .connect(&url)
    };

    // Server A stores a token.
    let server_a = CacheManager::new(Arc::new(connect().await?))?;
    server_a
        .set(CacheEntry::new(
            "backend-client",
            "https://api.example.com",
            "read:orders write:orders",
            "access-token-1",
            600.0,
        ))
        .await?;

    // Server B, another connection, finds it by a subset of its scopes.
    let cache_b = Arc::new(connect().await?);
    let server_b = CacheManager::new(cache_b.clone())?;
    let key = CacheKey::new(
        "backend-client",
        Some("https://api.example.com"),
        Some("read:orders"),
    );
    let body = server_b
        .get(&key, GetOptions::default())
        .await?
        .expect("cached");
    assert_eq!(body.access_token.as_deref(), Some("access-token-1"));
    println!("server B found server A's token in namespace {namespace}");

    let removed = cache_b.clear_namespace().await?;
    println!("removed {removed} keys");
    Ok(())
}
