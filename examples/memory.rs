//! An auth client's token cache in memory: store a token response, find it by a subset of
//! its scopes, watch it expire, keep the refresh token.
//!
//! ```sh
//! cargo run --example memory
//! ```

use std::sync::Arc;

use tokencache::{CacheEntry, CacheKey, CacheManager, GetOptions, ManualClock};

#[tokio::main(flavor = "current_thread")]
async fn main() -> tokencache::Result<()> {
    // A manual clock so the example can move time; real code leaves the default clock.
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let cache = tokencache::memory::MemoryCache::builder()
        .clock(clock.clone())
        .build();
    let manager = CacheManager::builder(Arc::new(cache))
        .clock(clock.clone())
        .client_id("my-app")
        .build()?;

    // What a token endpoint answered, as auth0-spa-js would cache it.
    manager
        .set(
            CacheEntry::new(
                "my-app",
                "https://api.example.com",
                "openid profile read:orders write:orders",
                "access-token-1",
                3600.0,
            )
            .with_refresh_token("refresh-token-1"),
        )
        .await?;

    // A request for fewer scopes finds the entry.
    let key = CacheKey::new(
        "my-app",
        Some("https://api.example.com"),
        Some("read:orders"),
    );
    let body = manager
        .get(&key, GetOptions::default())
        .await?
        .expect("cached");
    println!(
        "before expiry: access token present = {}",
        body.access_token.is_some()
    );
    assert_eq!(body.access_token.as_deref(), Some("access-token-1"));

    // An hour later (60 s of leeway), the access token is gone; the refresh token stays.
    clock.advance_ms(3_600_000);
    let body = manager
        .get(&key, GetOptions::default().leeway(60))
        .await?
        .expect("the refresh token is kept");
    assert_eq!(body.access_token, None);
    assert_eq!(body.refresh_token.as_deref(), Some("refresh-token-1"));
    println!("after expiry: access token present = false, refresh token kept = true");

    // Logout.
    manager.clear(None).await?;
    assert!(manager.get(&key, GetOptions::default()).await?.is_none());
    println!("after clear: nothing cached");
    Ok(())
}
