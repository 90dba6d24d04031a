//! The shared conformance suite and the proptest model test, on LocalStorageCache and
//! SessionStorageCache in headless Chromium, with the JSON codec and with encryption.
//!
//! The suite expects a listing cache to list every key it holds (keys of any prefix), so
//! the caches here list with the empty prefix, and each factory call empties the storage
//! area (each test binary has its own browser profile; the tests of a binary run one after
//! the other).
#![cfg(target_arch = "wasm32")]
// The core shares caches as `Arc<dyn Cache>`; browser values are not `Send` (one thread).
#![allow(clippy::arc_with_non_send_sync)]

use std::sync::Arc;

use tokencache_conformance::{run_all, run_model_test};
use tokencache_core::{Cache, Clock};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_web::{LocalStorageCache, SessionStorageCache};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Model-test cases per mode (listing and manifest) in the browser: the native default,
/// 256. A debug wasm build in headless Chromium runs the 2 x 256 cases in about 7 s.
const BROWSER_CASES: u32 = 256;

async fn local(_clock: Arc<dyn Clock>) -> Arc<dyn Cache> {
    let cache = LocalStorageCache::new().unwrap().with_prefix("");
    cache.clear().unwrap();
    Arc::new(cache)
}

async fn local_without_memo(_clock: Arc<dyn Clock>) -> Arc<dyn Cache> {
    let cache = LocalStorageCache::new()
        .unwrap()
        .with_prefix("")
        .with_read_memo(false);
    cache.clear().unwrap();
    Arc::new(cache)
}

async fn session(_clock: Arc<dyn Clock>) -> Arc<dyn Cache> {
    let cache = SessionStorageCache::new().unwrap().with_prefix("");
    cache.clear().unwrap();
    Arc::new(cache)
}

async fn encrypted(_clock: Arc<dyn Clock>) -> Arc<dyn Cache> {
    let key = DataKey::parse(1, &"42".repeat(32)).unwrap();
    let codec = EncryptedCodec::new(KeyRing::new(key), "tokencache-web-conformance");
    let cache = LocalStorageCache::new()
        .unwrap()
        .with_prefix("")
        .with_codec(Arc::new(codec));
    cache.clear().unwrap();
    Arc::new(cache)
}

#[wasm_bindgen_test]
async fn conformance_local_storage() {
    run_all(local).await;
}

#[wasm_bindgen_test]
async fn conformance_local_storage_without_read_memo() {
    run_all(local_without_memo).await;
}

#[wasm_bindgen_test]
async fn conformance_session_storage() {
    run_all(session).await;
}

#[wasm_bindgen_test]
async fn conformance_encrypted_local_storage() {
    run_all(encrypted).await;
}

#[wasm_bindgen_test]
async fn model_test_local_storage() {
    run_model_test(local, BROWSER_CASES).await;
}

#[wasm_bindgen_test]
async fn model_test_encrypted_local_storage() {
    run_model_test(encrypted, BROWSER_CASES).await;
}
