//! The shared conformance suite and the proptest model test in headless Chromium, on
//! `LocalStorageCache` and `SessionStorageCache` as the facade builds them (the default
//! storage prefix), with the JSON codec and with encryption, under managers with the
//! default key prefix and with a custom one.
//!
//! Every cache starts on an empty storage area and empties it when torn down (each test
//! binary has its own browser profile; the tests of a binary run one after the other).
#![cfg(target_arch = "wasm32")]
// The core shares caches as `Arc<dyn Cache>`; browser values are not `Send` (one thread).
#![allow(clippy::arc_with_non_send_sync)]

use std::sync::Arc;

use tokencache_conformance::{Capabilities, Fixture, Suite, CUSTOM_PREFIX};
use tokencache_core::{Cache, Clock, Error, Result};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_web::{LocalStorageCache, SessionStorageCache};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Model-test cases per mode (listing and manifest) in the browser: the native default,
/// 256. A debug wasm build in headless Chromium runs the 2 x 256 cases in about 7 s.
const BROWSER_CASES: u32 = 256;

/// Which cache a fixture makes.
#[derive(Clone, Copy)]
enum Web {
    Local,
    LocalWithoutMemo,
    Session,
    EncryptedLocal,
}

impl Web {
    fn storage(self) -> web_sys::Storage {
        let window = web_sys::window().expect("a window");
        match self {
            Web::Session => window.session_storage(),
            _ => window.local_storage(),
        }
        .expect("storage allowed")
        .expect("storage present")
    }

    /// Empties the whole storage area (keys of every prefix).
    fn empty(self) -> Result<()> {
        self.storage()
            .clear()
            .map_err(|_| Error::unexpected("cannot clear the storage area"))
    }
}

impl Fixture for Web {
    /// Browser storage lists its keys and keeps every item until it is removed.
    fn capabilities(&self) -> Capabilities {
        Capabilities::new().with_listing()
    }

    async fn create(&self, _clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
        self.empty()?;
        Ok(match self {
            Web::Local => Arc::new(LocalStorageCache::new()?),
            Web::LocalWithoutMemo => Arc::new(LocalStorageCache::new()?.with_read_memo(false)),
            Web::Session => Arc::new(SessionStorageCache::new()?),
            Web::EncryptedLocal => {
                let key = DataKey::parse(1, &"42".repeat(32))?;
                let codec = EncryptedCodec::new(KeyRing::new(key), "tokencache-web-conformance");
                Arc::new(LocalStorageCache::new()?.with_codec(Arc::new(codec)))
            }
        })
    }

    async fn tear_down(&self, cache: Arc<dyn Cache>) -> Result<()> {
        drop(cache);
        self.empty()?;
        if self.storage().length().unwrap_or(u32::MAX) != 0 {
            return Err(Error::unexpected("the storage area is not empty"));
        }
        Ok(())
    }
}

/// The atomic-update checks of the suite run only on caches that claim atomic updates:
/// every web cache does, and brings its own refresh lock.
#[wasm_bindgen_test]
async fn every_web_cache_has_atomic_updates_and_a_refresh_lock() {
    use tokencache_conformance::checks::new_clock;
    for web in [
        Web::Local,
        Web::LocalWithoutMemo,
        Web::Session,
        Web::EncryptedLocal,
    ] {
        let cache = web.create(new_clock()).await.unwrap();
        assert!(cache.atomic_updates());
        assert!(cache.refresh_lock().is_some());
        web.tear_down(cache).await.unwrap();
    }
}

// One test per cache and prefix: a test runs as one task on the page's main thread, and
// ChromeDriver gives up on a page that does not answer for 30 s.

#[wasm_bindgen_test]
async fn conformance_local_storage() {
    Suite::new(Web::Local).assert_all().await;
}

#[wasm_bindgen_test]
async fn conformance_local_storage_custom_prefix() {
    Suite::new(Web::Local)
        .prefix(CUSTOM_PREFIX)
        .assert_all()
        .await;
}

#[wasm_bindgen_test]
async fn conformance_local_storage_without_read_memo() {
    Suite::new(Web::LocalWithoutMemo).assert_all().await;
}

#[wasm_bindgen_test]
async fn conformance_local_storage_without_read_memo_custom_prefix() {
    Suite::new(Web::LocalWithoutMemo)
        .prefix(CUSTOM_PREFIX)
        .assert_all()
        .await;
}

#[wasm_bindgen_test]
async fn conformance_session_storage() {
    Suite::new(Web::Session).assert_all().await;
}

#[wasm_bindgen_test]
async fn conformance_session_storage_custom_prefix() {
    Suite::new(Web::Session)
        .prefix(CUSTOM_PREFIX)
        .assert_all()
        .await;
}

#[wasm_bindgen_test]
async fn conformance_encrypted_local_storage() {
    Suite::new(Web::EncryptedLocal).assert_all().await;
}

#[wasm_bindgen_test]
async fn conformance_encrypted_local_storage_custom_prefix() {
    Suite::new(Web::EncryptedLocal)
        .prefix(CUSTOM_PREFIX)
        .assert_all()
        .await;
}

#[wasm_bindgen_test]
async fn model_test_local_storage() {
    Suite::new(Web::Local).run_model_test(BROWSER_CASES).await;
}

#[wasm_bindgen_test]
async fn model_test_local_storage_custom_prefix() {
    Suite::new(Web::Local)
        .prefix(CUSTOM_PREFIX)
        .run_model_test(BROWSER_CASES)
        .await;
}

#[wasm_bindgen_test]
async fn model_test_encrypted_local_storage() {
    Suite::new(Web::EncryptedLocal)
        .run_model_test(BROWSER_CASES)
        .await;
}

#[wasm_bindgen_test]
async fn model_test_encrypted_local_storage_custom_prefix() {
    Suite::new(Web::EncryptedLocal)
        .prefix(CUSTOM_PREFIX)
        .run_model_test(BROWSER_CASES)
        .await;
}
