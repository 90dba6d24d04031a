//! One bad value does not take its neighbours down: a value that fails authentication
//! (as a tampered ciphertext does in an encrypted backend) is a typed error for a direct
//! `get` of its key, and is skipped (logged, counted) by every listing operation; `clear`
//! removes it. The real backends' tests tamper with real bytes; here the manager's rules
//! are checked over a map whose marked keys fail as an encrypted store's would.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use common::JsonMapCache;
use tokencache_core::{
    async_trait, Cache, CacheEntry, CacheKey, CacheManager, Cacheable, Error, ErrorKind, Fence,
    GetOptions, Keys, ManualClock, Result, UpdateFn, Updated,
};

/// A map cache whose `tampered` keys fail authentication on every read.
struct Tamperable {
    inner: JsonMapCache,
    tampered: Mutex<HashSet<String>>,
}

impl Tamperable {
    fn new(listing: bool) -> Self {
        Tamperable {
            inner: if listing {
                JsonMapCache::listing()
            } else {
                JsonMapCache::non_listing()
            },
            tampered: Mutex::default(),
        }
    }

    fn tamper(&self, key: &str) {
        self.tampered.lock().unwrap().insert(key.to_owned());
    }

    fn check(&self, key: &str) -> Result<()> {
        if self.tampered.lock().unwrap().contains(key) {
            return Err(Error::integrity("the value fails authentication"));
        }
        Ok(())
    }
}

#[async_trait]
impl Cache for Tamperable {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        self.check(key)?;
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        self.tampered.lock().unwrap().remove(key);
        self.inner.set(key, value).await
    }
    async fn remove(&self, key: &str) -> Result<()> {
        self.tampered.lock().unwrap().remove(key);
        self.inner.remove(key).await
    }
    async fn all_keys(&self) -> Result<Option<Keys>> {
        self.inner.all_keys().await
    }
    fn lists_keys(&self) -> bool {
        self.inner.lists_keys()
    }
    async fn update(&self, key: &str, fence: Option<&Fence>, f: UpdateFn) -> Result<Updated> {
        self.check(key)?;
        // The map's default update; atomicity is not what this test is about.
        let _ = fence;
        tokencache_core::update_by_get_and_set(self, key, f).await
    }
}

const CLIENT: &str = "client";
const AUD: &str = "https://api";

fn entry(scope: &str, at: &str, rt: Option<&str>, expires_in: f64) -> CacheEntry {
    let mut e = CacheEntry::new(CLIENT, AUD, scope, at, expires_in);
    e.refresh_token = rt.map(str::to_owned);
    e
}

fn key(scope: &str) -> String {
    CacheKey::new(CLIENT, Some(AUD), Some(scope)).to_key()
}

fn manager(cache: Arc<Tamperable>, clock: Arc<ManualClock>) -> CacheManager {
    CacheManager::builder(cache)
        .clock(clock)
        .client_id(CLIENT)
        .build()
        .unwrap()
}

async fn scenario(listing: bool) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let cache = Arc::new(Tamperable::new(listing));
    let m = manager(cache.clone(), clock.clone());
    m.set(entry("openid read", "at-bad", Some("rt-1"), 3600.0))
        .await
        .unwrap();
    m.set(entry("openid read write", "at-good", Some("rt-1"), 3600.0))
        .await
        .unwrap();
    cache.tamper(&key("openid read"));

    // A direct get of the bad key: the typed error.
    let err = m
        .get(
            &CacheKey::new(CLIENT, Some(AUD), Some("openid read")),
            GetOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert_eq!(
        m.skipped_values(),
        0,
        "a direct get is not a listing operation"
    );

    // A scope lookup that would consider the bad entry finds the good one.
    let body = m
        .get(
            &CacheKey::new(CLIENT, Some(AUD), Some("openid")),
            GetOptions::default(),
        )
        .await
        .unwrap()
        .expect("the readable entry covers the scope");
    assert_eq!(body.access_token.as_deref(), Some("at-good"));
    assert_eq!(m.skipped_values(), 1);

    // The MRRT fallback skips it too.
    let body = m
        .get(
            &CacheKey::new(CLIENT, Some("https://other"), Some("openid")),
            GetOptions::default().mrrt(true),
        )
        .await
        .unwrap()
        .expect("the readable entry's refresh token");
    assert_eq!(body.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(m.skipped_values(), 2);

    // Refresh-token edits go on past it, and leave it as it is.
    m.update_entry("rt-1", "rt-2", CLIENT, false).await.unwrap();
    assert_eq!(m.skipped_values(), 3);
    assert_eq!(
        m.refresh_tokens_by_audience(AUD, CLIENT).await.unwrap(),
        vec!["rt-2".to_owned()]
    );
    assert_eq!(m.skipped_values(), 4);
    m.strip_refresh_token("rt-2").await.unwrap();
    assert_eq!(m.skipped_values(), 5);
    let good = m
        .get(
            &CacheKey::new(CLIENT, Some(AUD), Some("openid read write")),
            GetOptions::default(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(good.refresh_token, None);
    assert_eq!(good.access_token.as_deref(), Some("at-good"));

    // clear removes the bad value with the rest.
    m.clear(None).await.unwrap();
    assert_eq!(cache.inner.snapshot().len(), 0, "clear left values behind");
}

#[tokio::test]
async fn listing_operations_skip_a_bad_value_with_a_listing_cache() {
    scenario(true).await;
}

#[tokio::test]
async fn listing_operations_skip_a_bad_value_with_a_manifest() {
    scenario(false).await;
}

#[tokio::test]
async fn a_bad_manifest_is_removed_by_clear_and_the_cache_works_again() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let cache = Arc::new(Tamperable::new(false));
    let m = manager(cache.clone(), clock);
    m.set(entry("openid", "at", None, 3600.0)).await.unwrap();
    let manifest = m.manifest_key().unwrap().to_owned();
    cache.tamper(&manifest);

    // A write needs the manifest line first: it fails with the typed error and stores
    // nothing that clear could not find.
    let err = m
        .set(entry("openid read", "at2", None, 3600.0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(cache.inner.raw_json(&key("openid read")).is_none());

    m.clear(None).await.unwrap();
    assert!(cache.inner.raw_json(&manifest).is_none());
    assert!(m.skipped_values() >= 1);
    m.set(entry("openid read", "at2", None, 3600.0))
        .await
        .unwrap();
    assert!(m
        .get(
            &CacheKey::new(CLIENT, Some(AUD), Some("openid read")),
            GetOptions::default()
        )
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_failed_manifest_write_leaves_no_entry_behind() {
    /// A manifest-mode cache whose every write of the manifest fails.
    struct ManifestDown(JsonMapCache, String);
    #[async_trait]
    impl Cache for ManifestDown {
        async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
            self.0.get(key).await
        }
        async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
            if key == self.1 {
                return Err(Error::unavailable("the store went away"));
            }
            self.0.set(key, value).await
        }
        async fn remove(&self, key: &str) -> Result<()> {
            self.0.remove(key).await
        }
    }
    let manifest = CacheKey::new(CLIENT, None, None).to_key();
    let cache = Arc::new(ManifestDown(JsonMapCache::non_listing(), manifest));
    let m = CacheManager::builder(cache.clone())
        .client_id(CLIENT)
        .build()
        .unwrap();
    let err = m
        .set(entry("openid", "at", None, 3600.0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        cache.0.snapshot().is_empty(),
        "an entry was stored without its manifest line"
    );
}
