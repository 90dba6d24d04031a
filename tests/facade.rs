//! The facade: choosing a cache by location or passing one's own, as auth0-spa-js's
//! `cacheLocation` and `cache` options do.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tokencache::{
    Cache, CacheEntry, CacheKey, CacheLocation, ErrorKind, GetOptions, ManualClock, TokenCache,
};

/// A `MakeWriter` that keeps everything logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn explicit_cache_wins_over_location_with_a_warning() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mine: Arc<dyn Cache> = Arc::new(tokencache_conformance::NoListing(
        tokencache_conformance::MapCache::new(),
    ));
    let manager = TokenCache::builder()
        .client_id("app")
        .cache_location(CacheLocation::Memory)
        .cache(mine.clone())
        .clock(Arc::new(ManualClock::new(1_700_000_000_000)))
        .build()
        .await
        .unwrap();
    manager
        .set(CacheEntry::new(
            "app",
            "aud",
            "openid",
            "secret-access-token",
            60.0,
        ))
        .await
        .unwrap();

    // The write went to my cache (which cannot list keys, so a manifest was kept too).
    assert!(mine
        .get("@@auth0spajs@@::app::aud::openid")
        .await
        .unwrap()
        .is_some());
    assert!(mine.get("@@auth0spajs@@::app").await.unwrap().is_some());

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("WARN"), "no warning logged: {text}");
    assert!(text.contains("the cache wins"), "{text}");
    assert!(!text.contains("secret-access-token"));
}

#[tokio::test]
async fn location_alone_and_default_are_memory() {
    for builder in [
        TokenCache::builder().cache_location(CacheLocation::Memory),
        TokenCache::builder(),
    ] {
        let manager = builder.client_id("app").build().await.unwrap();
        assert!(manager.cache().lists_keys(), "memory lists its keys");
        assert_eq!(manager.manifest_key(), None);
        manager
            .set(CacheEntry::new("app", "aud", "openid profile", "at", 60.0))
            .await
            .unwrap();
        let key = CacheKey::new("app", Some("aud"), Some("profile"));
        let body = manager.get(&key, GetOptions::default()).await.unwrap();
        assert_eq!(body.unwrap().access_token.as_deref(), Some("at"));
    }
}

#[tokio::test]
async fn custom_cache_without_listing_needs_a_client_id() {
    let mine: Arc<dyn Cache> = Arc::new(tokencache_conformance::NoListing(
        tokencache_conformance::MapCache::new(),
    ));
    let err = TokenCache::builder().cache(mine).build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}
