//! The facade: choosing a cache by location or passing one's own, as auth0-spa-js's
//! `cacheLocation` and `cache` options do.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tokencache::{Cache, CacheEntry, CacheKey, CacheLocation, ErrorKind, GetOptions, ManualClock};

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
    let manager = tokencache::builder()
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
        tokencache::builder().cache_location(CacheLocation::Memory),
        tokencache::builder(),
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
    let err = tokencache::builder().cache(mine).build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

/// A location parsed from a spec opens, and keeps values where a second open finds them.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_parsed_sqlite_location_opens_with_its_key_source() {
    use tokencache::crypto::{DataKey, KeyRing};
    use tokencache::{KeySource, SystemClock};

    let dir = tempfile::tempdir().unwrap();
    let spec = format!("sqlite:{}?ns=app", dir.path().join("t.db").display());
    let location: CacheLocation = spec.parse().unwrap();
    // The default source is TOKENCACHE_KEY; this test gives its own ring instead.
    let ring = KeyRing::new(DataKey::generate(1).unwrap());
    let location = location.with_keys(KeySource::keys(ring.clone()));
    let manager = tokencache::builder()
        .cache_location(location.clone())
        .build()
        .await
        .unwrap();
    manager
        .set(CacheEntry::new("app", "aud", "openid", "at", 60.0))
        .await
        .unwrap();
    drop(manager);
    let cache = location.open(Arc::new(SystemClock)).await.unwrap();
    assert_eq!(
        cache.all_keys().await.unwrap().unwrap(),
        ["@@auth0spajs@@::app::aud::openid"]
    );
    // Another key, or no encryption, does not read the values.
    let other = location
        .clone()
        .with_keys(KeySource::keys(KeyRing::new(DataKey::generate(1).unwrap())));
    let err = match other.open(Arc::new(SystemClock)).await {
        Ok(c) => c.get("@@auth0spajs@@::app::aud::openid").await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    // Re-keying: afterwards only the new key reads.
    let new_key = DataKey::generate(2).unwrap();
    assert_eq!(
        location
            .rotate_key(new_key.clone())
            .await
            .unwrap()
            .rewritten,
        1
    );
    let rotated = location
        .clone()
        .with_keys(KeySource::keys(KeyRing::new(new_key)));
    let cache = rotated.open(Arc::new(SystemClock)).await.unwrap();
    assert!(cache
        .get("@@auth0spajs@@::app::aud::openid")
        .await
        .unwrap()
        .is_some());
}
