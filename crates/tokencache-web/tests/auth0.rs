//! Interop with the real @auth0/auth0-spa-js 2.28.3 in the same headless Chromium page:
//! its LocalStorageCache and CacheManager write, the Rust cache reads back equal, and the
//! other way round; and a real `Auth0Client` reads and writes a Rust backend through
//! `JsTokenCache`. Needs `npm ci` in crates/tokencache-web/js (scripts/web-test.sh does it).
#![cfg(target_arch = "wasm32")]
// The core shares caches as `Arc<dyn Cache>`; browser values are not `Send` (one thread).
#![allow(clippy::arc_with_non_send_sync)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokencache_conformance::NoListing;
use tokencache_core::{
    async_trait, Cache, CacheEntry, CacheKey, CacheManager, Cacheable, DecodedToken, GetOptions,
    Keys, ManualClock, Result,
};
use tokencache_web::{JsTokenCache, LocalStorageCache};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(module = "/tests/support/auth0.js")]
extern "C" {
    #[wasm_bindgen(catch)]
    async fn load_auth0() -> std::result::Result<(), JsValue>;
    fn spa_local_storage_cache() -> JsValue;
    fn spa_manifest_mode_cache() -> JsValue;
    fn spa_get_json(cache: &JsValue, key: &str) -> Option<String>;
    fn spa_all_keys(cache: &JsValue) -> Vec<String>;
    fn make_client(cache: &JsValue, client_id: &str, now_ms: f64) -> JsValue;
    #[wasm_bindgen(catch)]
    async fn cm_set(client: &JsValue, entry_json: &str) -> std::result::Result<(), JsValue>;
    #[wasm_bindgen(catch)]
    async fn cm_set_id_token(
        client: &JsValue,
        client_id: &str,
        id_token: &str,
        decoded_json: &str,
    ) -> std::result::Result<(), JsValue>;
    #[wasm_bindgen(catch)]
    async fn cm_get_json(
        client: &JsValue,
        client_id: &str,
        audience: &str,
        scope: &str,
    ) -> std::result::Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn cm_get_id_token_json(
        client: &JsValue,
        client_id: &str,
    ) -> std::result::Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn cm_clear(client: &JsValue, client_id: &str) -> std::result::Result<(), JsValue>;
    #[wasm_bindgen(catch)]
    async fn get_token_cache_only(
        client: &JsValue,
        audience: &str,
        scope: &str,
    ) -> std::result::Result<JsValue, JsValue>;
}

const NOW_MS: i64 = 1_800_000_000_123;
const NOW_S: i64 = NOW_MS / 1000;
const AUD: &str = "https://api.example";

async fn loaded() {
    if let Err(e) = load_auth0().await {
        panic!("cannot load @auth0/auth0-spa-js: {e:?}");
    }
}

fn decoded(client: &str, id_token: &str) -> DecodedToken {
    serde_json::from_value(json!({
        "encoded": {"header": "h", "payload": "p", "signature": "s"},
        "header": {"alg": "RS256", "typ": "JWT"},
        "claims": {"__raw": id_token, "sub": "user-1", "aud": client, "exp": 1_900_000_000},
        "user": {"sub": "user-1", "name": "Ada", "email": "ada@example.test"}
    }))
    .unwrap()
}

/// A token response as auth0-spa-js's CacheManager.set takes it.
fn entry(client: &str, audience: &str, scope: &str, at: &str) -> CacheEntry {
    let mut e = CacheEntry::new(client, audience, scope, at, 3600.0)
        .with_refresh_token(format!("rt-of-{at}"))
        .with_id_token(
            format!("id-of-{at}"),
            decoded(client, &format!("id-of-{at}")),
        );
    e.token_type = Some("Bearer".into());
    e.oauth_token_scope = Some(scope.into());
    e
}

fn value(json: &str) -> Value {
    serde_json::from_str(json).unwrap()
}

fn rust_json(v: &Cacheable) -> Value {
    value(&v.to_json_string().unwrap())
}

fn js_json(v: JsValue) -> Option<Value> {
    v.as_string().map(|s| value(&s))
}

/// A Rust backend that is not Web Storage: a map that lists its keys.
#[derive(Default)]
struct MapCache(Mutex<BTreeMap<String, Cacheable>>);

#[async_trait(?Send)]
impl Cache for MapCache {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        self.0.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    async fn remove(&self, key: &str) -> Result<()> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
    async fn all_keys(&self) -> Result<Option<Keys>> {
        Ok(Some(self.0.lock().unwrap().keys().cloned().collect()))
    }
    fn lists_keys(&self) -> bool {
        true
    }
}

fn manifest_manager(cache: Arc<dyn Cache>, client: &str) -> CacheManager {
    CacheManager::builder(cache)
        .client_id(client)
        .clock(Arc::new(ManualClock::new(NOW_MS)))
        .build()
        .unwrap()
}

#[wasm_bindgen_test]
async fn auth0_spa_js_writes_and_rust_reads_back_equal() {
    loaded().await;
    let client_id = "spa-client";
    let rust = LocalStorageCache::new().unwrap();
    rust.clear().unwrap();

    // auth0-spa-js's CacheManager over its LocalStorageCache, in manifest mode, writes an
    // access-token entry, an id-token entry and its key manifest.
    let client = make_client(&spa_manifest_mode_cache(), client_id, NOW_MS as f64);
    let e = entry(client_id, AUD, "openid profile read", "at-spa");
    cm_set(&client, &serde_json::to_string(&e).unwrap())
        .await
        .unwrap();
    let decoded_json = serde_json::to_string(&decoded(client_id, "id-spa")).unwrap();
    cm_set_id_token(&client, client_id, "id-spa", &decoded_json)
        .await
        .unwrap();

    let entry_key = format!("@@auth0spajs@@::{client_id}::{AUD}::openid profile read");
    let id_key = format!("@@auth0spajs@@::{client_id}::@@user@@");
    let manifest_key = format!("@@auth0spajs@@::{client_id}");
    let mut keys = rust.all_keys().await.unwrap().unwrap().to_strings();
    keys.sort();
    let mut expected = vec![entry_key.clone(), id_key.clone(), manifest_key.clone()];
    expected.sort();
    assert_eq!(keys, expected);
    let mut spa_keys = spa_all_keys(&spa_local_storage_cache());
    spa_keys.sort();
    assert_eq!(spa_keys, expected, "auth0-spa-js lists the same keys");

    // Each value reads back equal to what auth0-spa-js reads.
    let spa = spa_local_storage_cache();
    for key in &expected {
        let ours = rust.get(key).await.unwrap().expect("rust reads the entry");
        let theirs = value(&spa_get_json(&spa, key).unwrap());
        assert_eq!(rust_json(&ours), theirs, "{key}");
    }
    let Cacheable::Entry(w) = rust.get(&entry_key).await.unwrap().unwrap() else {
        panic!("not a token entry")
    };
    assert_eq!(w.expires_at, NOW_S + 3600);
    assert_eq!(*w.body, e.clone().into());
    let Cacheable::IdToken(t) = rust.get(&id_key).await.unwrap().unwrap() else {
        panic!("not an id token entry")
    };
    assert_eq!(t.id_token, "id-spa");
    assert_eq!(t.decoded_token, decoded(client_id, "id-spa"));
    let Cacheable::Manifest(m) = rust.get(&manifest_key).await.unwrap().unwrap() else {
        panic!("not a manifest")
    };
    let mut manifest_keys = m.keys.clone();
    manifest_keys.sort();
    assert_eq!(manifest_keys, [id_key.clone(), entry_key.clone()]);

    // The Rust manager finds the entry by a scope subset through auth0-spa-js's manifest.
    let manager = manifest_manager(Arc::new(NoListing(rust.clone())), client_id);
    let body = manager
        .get(
            &CacheKey::new(client_id, Some(AUD), Some("read")),
            GetOptions::default(),
        )
        .await
        .unwrap()
        .expect("found through the manifest");
    assert_eq!(body.access_token.as_deref(), Some("at-spa"));
    let id = manager
        .get_id_token(&CacheKey::new(client_id, None, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id.id_token, "id-spa");
    rust.clear().unwrap();
}

#[wasm_bindgen_test]
async fn rust_writes_and_auth0_spa_js_reads_back_equal() {
    loaded().await;
    let client_id = "rust-client";
    let rust = LocalStorageCache::new().unwrap();
    rust.clear().unwrap();

    // The Rust manager over localStorage, in manifest mode, writes the three kinds.
    let manager = manifest_manager(Arc::new(NoListing(rust.clone())), client_id);
    let e = entry(client_id, AUD, "openid profile write", "at-rust");
    manager.set(e.clone()).await.unwrap();
    manager
        .set_id_token(client_id, "id-rust", decoded(client_id, "id-rust"))
        .await
        .unwrap();
    // And one value written by the cache directly (auth0-spa-js's manifest form).
    let other_key = "@@auth0spajs@@::other-client";
    let manifest =
        Cacheable::from_json(br#"{"keys":["@@auth0spajs@@::other-client::a::s"]}"#).unwrap();
    rust.set(other_key, manifest).await.unwrap();

    let entry_key = format!("@@auth0spajs@@::{client_id}::{AUD}::openid profile write");
    let id_key = format!("@@auth0spajs@@::{client_id}::@@user@@");
    let manifest_key = format!("@@auth0spajs@@::{client_id}");
    let spa = spa_local_storage_cache();
    for key in [&entry_key, &id_key, &manifest_key, &other_key.to_owned()] {
        let theirs = spa_get_json(&spa, key).unwrap_or_else(|| panic!("{key} missing"));
        let ours = rust.get(key).await.unwrap().unwrap();
        assert_eq!(value(&theirs), rust_json(&ours), "{key}");
    }
    let theirs = value(&spa_get_json(&spa, &entry_key).unwrap());
    assert_eq!(theirs["expiresAt"], json!(NOW_S + 3600));
    assert_eq!(theirs["body"], serde_json::to_value(&e).unwrap());

    // auth0-spa-js's own CacheManager finds the entry by a scope subset via the manifest
    // the Rust manager wrote, and reads the id token.
    let client = make_client(&spa_manifest_mode_cache(), client_id, NOW_MS as f64);
    let body = js_json(cm_get_json(&client, client_id, AUD, "write").await.unwrap())
        .expect("auth0-spa-js finds the Rust entry");
    assert_eq!(body, serde_json::to_value(&e).unwrap());
    let id = js_json(cm_get_id_token_json(&client, client_id).await.unwrap()).unwrap();
    assert_eq!(
        id,
        json!({"id_token": "id-rust", "decodedToken": decoded(client_id, "id-rust")})
    );
    rust.clear().unwrap();
}

#[wasm_bindgen_test]
async fn auth0_client_reads_and_writes_a_rust_backend_through_js_token_cache() {
    loaded().await;
    let client_id = "js-client";
    let backend = Arc::new(MapCache::default());
    let js = JsTokenCache::new(backend.clone()).into_js();
    assert!(js_sys::Reflect::get(&js, &"allKeys".into())
        .unwrap()
        .is_function());
    let client = make_client(&js, client_id, NOW_MS as f64);

    // auth0-spa-js writes through JsTokenCache: the Rust backend sees the values.
    let e = entry(client_id, AUD, "openid profile email read", "at-js");
    cm_set(&client, &serde_json::to_string(&e).unwrap())
        .await
        .unwrap();
    cm_set_id_token(
        &client,
        client_id,
        "id-js",
        &serde_json::to_string(&decoded(client_id, "id-js")).unwrap(),
    )
    .await
    .unwrap();
    let entry_key = format!("@@auth0spajs@@::{client_id}::{AUD}::openid profile email read");
    let id_key = format!("@@auth0spajs@@::{client_id}::@@user@@");
    let stored = backend.get(&entry_key).await.unwrap().unwrap();
    assert_eq!(stored.expires_at(), Some(NOW_S + 3600));
    assert_eq!(*stored.as_entry().unwrap().body, e.clone().into());
    assert_eq!(
        backend
            .get(&id_key)
            .await
            .unwrap()
            .unwrap()
            .as_id_token()
            .unwrap()
            .id_token,
        "id-js"
    );
    let mut keys = backend.all_keys().await.unwrap().unwrap().to_strings();
    keys.sort();
    assert_eq!(
        keys,
        [id_key.clone(), entry_key.clone()],
        "no manifest: allKeys lists"
    );

    // auth0-spa-js reads through JsTokenCache, also through its public API.
    let body = js_json(cm_get_json(&client, client_id, AUD, "read").await.unwrap()).unwrap();
    assert_eq!(body["access_token"], json!("at-js"));
    let token = get_token_cache_only(&client, AUD, "read").await.unwrap();
    assert_eq!(token.as_string().as_deref(), Some("at-js"));

    // A value the Rust side writes is what auth0-spa-js's getTokenSilently returns.
    let manager = CacheManager::builder(backend.clone())
        .clock(Arc::new(ManualClock::new(NOW_MS)))
        .build()
        .unwrap();
    manager
        .set(entry(
            client_id,
            "https://other.example",
            "openid profile email write",
            "at-rust",
        ))
        .await
        .unwrap();
    let token = get_token_cache_only(&client, "https://other.example", "write")
        .await
        .unwrap();
    assert_eq!(token.as_string().as_deref(), Some("at-rust"));
    let miss = get_token_cache_only(&client, "https://other.example", "admin")
        .await
        .unwrap();
    assert!(miss.is_undefined(), "no entry has the admin scope");

    // auth0-spa-js's clear() lists and removes through JsTokenCache.
    cm_clear(&client, client_id).await.unwrap();
    assert_eq!(
        backend.all_keys().await.unwrap().unwrap(),
        Vec::<String>::new()
    );
}

#[wasm_bindgen_test]
async fn auth0_client_keeps_a_manifest_when_the_rust_backend_cannot_list() {
    loaded().await;
    let client_id = "manifest-client";
    let map = Arc::new(MapCache::default());
    let js = JsTokenCache::new(Arc::new(NoListing(map.clone()))).into_js();
    assert!(js_sys::Reflect::get(&js, &"allKeys".into())
        .unwrap()
        .is_undefined());
    let client = make_client(&js, client_id, NOW_MS as f64);
    let e = entry(client_id, AUD, "openid read", "at-m");
    cm_set(&client, &serde_json::to_string(&e).unwrap())
        .await
        .unwrap();
    let entry_key = format!("@@auth0spajs@@::{client_id}::{AUD}::openid read");
    let manifest = map
        .get(&format!("@@auth0spajs@@::{client_id}"))
        .await
        .unwrap()
        .expect("auth0-spa-js wrote its key manifest through JsTokenCache");
    assert_eq!(manifest.as_manifest().unwrap().keys, [entry_key]);
    let body = js_json(cm_get_json(&client, client_id, AUD, "read").await.unwrap()).unwrap();
    assert_eq!(body["access_token"], json!("at-m"));
}
