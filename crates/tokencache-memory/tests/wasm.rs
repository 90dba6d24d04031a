//! The wasm32 `MemoryCache` (its own map; moka panics in the browser) in headless
//! Chromium: the shared conformance suite, the model test, and the browser's clock.
//!
//! `CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_WEBDRIVER_JSON=crates/tokencache-memory/webdriver.json \
//!  cargo test --target wasm32-unknown-unknown -p tokencache-memory`
#![cfg(target_arch = "wasm32")]
// `Cache` is `?Send` on wasm32 and the suite shares caches as `Arc<dyn Cache>`: the
// browser runs everything on one thread.
#![allow(clippy::arc_with_non_send_sync)]

use std::sync::Arc;

use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, Clock, ErrorKind, GetOptions, SystemClock,
};
use tokencache_memory::MemoryCache;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Fresh caches whose physical expiry follows the check's clock.
struct Memory;

impl tokencache_conformance::Fixture for Memory {
    fn capabilities(&self) -> tokencache_conformance::Capabilities {
        tokencache_conformance::Capabilities::new()
            .with_listing()
            .with_physical_expiry()
    }

    async fn create(&self, clock: Arc<dyn Clock>) -> tokencache_core::Result<Arc<dyn Cache>> {
        Ok(Arc::new(MemoryCache::builder().clock(clock).build()))
    }
}

#[wasm_bindgen_test]
async fn conformance_checks() {
    use tokencache_conformance::{Suite, CUSTOM_PREFIX};
    Suite::new(Memory).assert_all().await;
    Suite::new(Memory).prefix(CUSTOM_PREFIX).assert_all().await;
}

#[wasm_bindgen_test]
async fn conformance_model_test() {
    let cases = tokencache_conformance::default_cases();
    tokencache_conformance::Suite::new(Memory)
        .run_model_test(cases)
        .await;
}

/// The default cache on the browser's own clock (`Date.now()`), through the manager.
#[wasm_bindgen_test]
async fn default_cache_in_the_browser() {
    let cache = Arc::new(MemoryCache::new());
    let manager = CacheManager::new(cache.clone()).unwrap();
    manager
        .set(
            CacheEntry::new("app", "https://api", "openid read", "at", 60.0)
                .with_refresh_token("rt"),
        )
        .await
        .unwrap();
    // A negative lifetime is refused; an entry that expired 5 s ago is written directly.
    let e = manager
        .set(CacheEntry::new("app", "https://api", "gone", "at", -5.0))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    let gone = CacheEntry::new("app", "https://api", "gone", "at", 60.0);
    let gone =
        tokencache_core::WrappedCacheEntry::from_entry(gone, SystemClock.now_s() - 65).unwrap();
    cache
        .set("@@auth0spajs@@::app::https://api::gone", gone.into())
        .await
        .unwrap();
    let key = CacheKey::new("app", Some("https://api"), Some("read"));
    let body = manager
        .get(&key, GetOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.access_token.as_deref(), Some("at"));
    // The expired entry without a refresh token is gone physically.
    assert_eq!(
        cache.all_keys().await.unwrap().unwrap(),
        ["@@auth0spajs@@::app::https://api::openid read"]
    );
    assert_eq!(cache.entry_count().await, 1);

    let small = MemoryCache::builder().max_capacity_bytes(1024).build();
    let big = CacheEntry::new("app", "https://api", "s", "x".repeat(2000), 60.0);
    let value = tokencache_core::Cacheable::Entry(tokencache_core::WrappedCacheEntry::new(
        tokencache_core::EntryBody::from(big),
        i64::MAX / 2000,
    ));
    let e = small.set("k", value).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
}
