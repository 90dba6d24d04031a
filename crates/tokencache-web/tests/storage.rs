//! LocalStorageCache / SessionStorageCache in a real browser (headless Chromium):
//! stored JSON, key listing, misses, quota and unavailable storage, codecs.
#![cfg(target_arch = "wasm32")]
// The core shares caches as `Arc<dyn Cache>`; browser values are not `Send` (one thread).
#![allow(clippy::arc_with_non_send_sync)]

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, Cacheable, ErrorKind, GetOptions, JsonCodec,
    ValueCodec, TEXT_MARKER,
};
use tokencache_web::{JsTokenCache, LocalStorageCache, SessionStorageCache};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
let saved = {};
export function break_storage(name, how) {
    saved[name] = Object.getOwnPropertyDescriptor(window, name);
    const get = how === "throw"
        ? () => { throw new DOMException("The operation is insecure.", "SecurityError"); }
        : () => null;
    Object.defineProperty(window, name, { configurable: true, get });
}
export function restore_storage(name) {
    Object.defineProperty(window, name, saved[name]);
}
"#)]
extern "C" {
    fn break_storage(name: &str, how: &str);
    fn restore_storage(name: &str);
}

fn local() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

fn session() -> web_sys::Storage {
    web_sys::window()
        .unwrap()
        .session_storage()
        .unwrap()
        .unwrap()
}

/// A token entry as auth0-spa-js 2.x stores it.
fn entry_json(client: &str) -> Value {
    json!({
        "body": {
            "client_id": client,
            "access_token": "at-secret",
            "id_token": "id-secret",
            "scope": "openid profile offline_access",
            "expires_in": 86400,
            "token_type": "Bearer",
            "refresh_token": "rt-secret",
            "audience": "https://api.example",
            "oauthTokenScope": "openid profile offline_access",
            "decodedToken": {
                "encoded": {"header": "h", "payload": "p", "signature": "s"},
                "header": {"alg": "RS256"},
                "claims": {"__raw": "id-secret", "sub": "user-1", "aud": client},
                "user": {"sub": "user-1", "name": "Ada"}
            }
        },
        "expiresAt": 1_900_000_000
    })
}

fn cacheable(v: &Value) -> Cacheable {
    Cacheable::from_json(v.to_string().as_bytes()).unwrap()
}

fn raw_json(storage: &web_sys::Storage, key: &str) -> Value {
    serde_json::from_str(&storage.get_item(key).unwrap().expect("item stored")).unwrap()
}

#[wasm_bindgen_test]
async fn values_are_stored_as_auth0_json_and_read_back() {
    let prefix = "@@t-json@@";
    let cache = LocalStorageCache::new().unwrap().with_prefix(prefix);
    cache.clear().unwrap();
    let key = format!("{prefix}::client::https://api.example::openid profile offline_access");
    let id_key = format!("{prefix}::client::@@user@@");
    let manifest_key = format!("{prefix}::client");
    let values = [
        (key.as_str(), entry_json("client")),
        (
            id_key.as_str(),
            json!({"id_token": "id-secret", "decodedToken": {"claims": {"__raw": "id-secret"}, "user": {"sub": "u"}}}),
        ),
        (
            manifest_key.as_str(),
            json!({"keys": [key.clone(), id_key.clone()]}),
        ),
    ];
    for (k, v) in &values {
        cache.set(k, cacheable(v)).await.unwrap();
        // Exactly the JSON (up to field order) auth0-spa-js writes with JSON.stringify.
        assert_eq!(&raw_json(&local(), k), v, "stored form of {k}");
        assert_eq!(cache.get(k).await.unwrap(), Some(cacheable(v)));
    }
    // An item written the way auth0-spa-js writes it reads back equal.
    local()
        .set_item(&key, &entry_json("other").to_string())
        .unwrap();
    assert_eq!(
        cache.get(&key).await.unwrap(),
        Some(cacheable(&entry_json("other")))
    );
    cache.remove(&key).await.unwrap();
    assert_eq!(local().get_item(&key).unwrap(), None);
    assert_eq!(cache.get(&key).await.unwrap(), None);
    cache.clear().unwrap();
}

#[wasm_bindgen_test]
async fn all_keys_lists_the_prefix_only() {
    let a = LocalStorageCache::new()
        .unwrap()
        .with_prefix("@@t-keys-a@@");
    let b = LocalStorageCache::new()
        .unwrap()
        .with_prefix("@@t-keys-b@@");
    a.clear().unwrap();
    b.clear().unwrap();
    let v = cacheable(&json!({"keys": []}));
    for k in ["@@t-keys-a@@::1", "@@t-keys-a@@::2", "@@t-keys-b@@::1"] {
        a.set(k, v.clone()).await.unwrap();
    }
    local().set_item("unrelated", "x").unwrap();
    assert!(a.lists_keys());
    let mut keys = a.all_keys().await.unwrap().unwrap().to_strings();
    keys.sort();
    assert_eq!(keys, ["@@t-keys-a@@::1", "@@t-keys-a@@::2"]);
    assert_eq!(b.all_keys().await.unwrap().unwrap(), ["@@t-keys-b@@::1"]);
    assert_eq!(
        a.keys_with_prefix("@@t-keys-a@@::2")
            .await
            .unwrap()
            .unwrap(),
        ["@@t-keys-a@@::2"]
    );
    // The default prefix is auth0-spa-js's.
    assert_eq!(LocalStorageCache::new().unwrap().prefix(), "@@auth0spajs@@");
    // clear() removes the prefix's items only.
    a.clear().unwrap();
    assert_eq!(a.all_keys().await.unwrap().unwrap(), Vec::<String>::new());
    assert_eq!(b.all_keys().await.unwrap().unwrap().len(), 1);
    assert_eq!(local().get_item("unrelated").unwrap().as_deref(), Some("x"));
    b.clear().unwrap();
    local().remove_item("unrelated").unwrap();
}

#[wasm_bindgen_test]
async fn values_that_do_not_decode_are_misses() {
    let cache = LocalStorageCache::new().unwrap();
    let key = "@@t-bad@@::client::aud::scope";
    for bad in [
        "",
        "not json",
        "{\"body\":",
        "{\"other\":1}",
        "[1,2]",
        "null",
        "{\"body\":{\"access_token\":5},\"expiresAt\":1}",
        "{\"body\":{}}",
    ] {
        local().set_item(key, bad).unwrap();
        assert_eq!(
            cache.get(key).await.unwrap(),
            None,
            "{bad:?} must be a miss"
        );
    }
    local().remove_item(key).unwrap();
}

#[wasm_bindgen_test]
async fn full_storage_is_quota_exceeded_and_keeps_the_previous_value() {
    let cache = LocalStorageCache::new().unwrap().with_prefix("@@t-quota@@");
    cache.clear().unwrap();
    let key = "@@t-quota@@::client::aud::scope";
    let small = cacheable(&entry_json("client"));
    cache.set(key, small.clone()).await.unwrap();

    // Fill the origin's storage (Chromium: 5 MiB of UTF-16 text), then write a value that
    // does not fit any more.
    let chunk = "x".repeat(256 * 1024);
    let mut fillers = Vec::new();
    for i in 0..64 {
        let k = format!("@@t-quota@@::filler::{i}");
        if local().set_item(&k, &chunk).is_err() {
            break;
        }
        fillers.push(k);
    }
    assert!(fillers.len() < 64, "the storage never filled up");
    let mut big = entry_json("client");
    big["body"]["access_token"] = json!("y".repeat(512 * 1024));
    let err = cache.set(key, cacheable(&big)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    assert!(!err.to_string().contains("yyyy"));
    assert_eq!(cache.get(key).await.unwrap(), Some(small.clone()));

    // Room again: the same write succeeds.
    cache.clear().unwrap();
    cache.set(key, cacheable(&big)).await.unwrap();
    assert_eq!(cache.get(key).await.unwrap(), Some(cacheable(&big)));
    cache.clear().unwrap();
}

#[wasm_bindgen_test]
async fn refused_or_missing_storage_is_unavailable() {
    for name in ["localStorage", "sessionStorage"] {
        for how in ["throw", "null"] {
            break_storage(name, how);
            let err = if name == "localStorage" {
                LocalStorageCache::new().unwrap_err()
            } else {
                SessionStorageCache::new().unwrap_err()
            };
            restore_storage(name);
            assert_eq!(err.kind(), ErrorKind::Unavailable, "{name} {how}: {err}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }
    // Restored: the storage works again.
    assert!(LocalStorageCache::new().is_ok());
    assert!(SessionStorageCache::new().is_ok());
}

#[wasm_bindgen_test]
async fn session_storage_is_its_own_area() {
    let key = "@@t-session@@::c";
    let s = SessionStorageCache::new()
        .unwrap()
        .with_prefix("@@t-session@@");
    let l = LocalStorageCache::new()
        .unwrap()
        .with_prefix("@@t-session@@");
    let v = cacheable(&json!({"keys": ["a"]}));
    s.set(key, v.clone()).await.unwrap();
    assert_eq!(raw_json(&session(), key), json!({"keys": ["a"]}));
    assert_eq!(s.get(key).await.unwrap(), Some(v));
    assert_eq!(l.get(key).await.unwrap(), None);
    assert_eq!(s.all_keys().await.unwrap().unwrap(), [key]);
    s.clear().unwrap();
    assert_eq!(session().get_item(key).unwrap(), None);
}

/// A codec that does not write text: JSON with every byte inverted.
#[derive(Debug)]
struct Inverted;

impl ValueCodec for Inverted {
    fn encode(&self, key: &str, value: &Cacheable) -> tokencache_core::Result<Vec<u8>> {
        Ok(JsonCodec.encode(key, value)?.iter().map(|b| !b).collect())
    }
    fn decode(&self, key: &str, bytes: &[u8]) -> tokencache_core::Result<Cacheable> {
        JsonCodec.decode(key, &bytes.iter().map(|b| !b).collect::<Vec<_>>())
    }
}

#[wasm_bindgen_test]
async fn a_binary_codec_is_stored_as_marked_base64() {
    let cache = LocalStorageCache::new()
        .unwrap()
        .with_prefix("@@t-b64@@")
        .with_codec(Arc::new(Inverted));
    let key = "@@t-b64@@::client::aud::scope";
    let v = cacheable(&entry_json("client"));
    cache.set(key, v.clone()).await.unwrap();
    let item = local().get_item(key).unwrap().unwrap();
    let payload = item
        .strip_prefix(TEXT_MARKER)
        .expect("the TextCodec marker");
    assert!(
        payload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
        "not base64: {item}"
    );
    assert!(!item.contains("at-secret"));
    assert_eq!(cache.get(key).await.unwrap(), Some(v.clone()));
    // Unmarked (not ours), or marked base64 of something that does not decode: a miss.
    for bad in ["%%%", "aGVsbG8=", &format!("{TEXT_MARKER}aGVsbG8=")] {
        local().set_item(key, bad).unwrap();
        assert_eq!(cache.get(key).await.unwrap(), None, "{bad}");
    }
    cache.clear().unwrap();
}

/// A marked item whose base64 is damaged has been tampered with: an Integrity error, as
/// in every other string store (the core's `TextCodec`), never a miss and never data.
#[wasm_bindgen_test]
async fn damaged_base64_is_an_integrity_error() {
    let cache = LocalStorageCache::new()
        .unwrap()
        .with_prefix("@@t-b64-damaged@@")
        .with_codec(Arc::new(Inverted));
    let key = "@@t-b64-damaged@@::client::aud::scope";
    let v = cacheable(&entry_json("client"));
    cache.set(key, v.clone()).await.unwrap();
    let item = local().get_item(key).unwrap().unwrap();
    assert_eq!(cache.get(key).await.unwrap(), Some(v.clone()));
    for damaged in [
        format!("{TEXT_MARKER}%%%"),
        format!("{item}!"),
        item[..item.len() - 1].to_owned(),
        item.replacen(TEXT_MARKER, &format!("{TEXT_MARKER} "), 1),
    ] {
        local().set_item(key, &damaged).unwrap();
        let err = cache.get(key).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "{damaged}: {err}");
        assert!(!err.to_string().contains(&item), "{err}");
    }
    // The intact item reads again (the failed reads left nothing behind in the memo).
    local().set_item(key, &item).unwrap();
    assert_eq!(cache.get(key).await.unwrap(), Some(v));
    cache.clear().unwrap();
}

#[wasm_bindgen_test]
async fn a_manager_over_local_storage() {
    let cache = LocalStorageCache::new().unwrap();
    cache.clear().unwrap();
    let manager = CacheManager::new(Arc::new(cache.clone())).unwrap();
    assert_eq!(
        manager.manifest_key(),
        None,
        "a listing cache needs no manifest"
    );
    manager
        .set(CacheEntry::new(
            "c",
            "https://api",
            "openid read write",
            "at",
            3600.0,
        ))
        .await
        .unwrap();
    let key = CacheKey::new("c", Some("https://api"), Some("read"));
    let body = manager
        .get(&key, GetOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.access_token.as_deref(), Some("at"));
    manager.clear(Some("c")).await.unwrap();
    assert_eq!(
        cache.all_keys().await.unwrap().unwrap(),
        Vec::<String>::new()
    );
}

#[wasm_bindgen_test]
async fn js_token_cache_promises() {
    let rust = Arc::new(LocalStorageCache::new().unwrap().with_prefix("@@t-js@@"));
    rust.clear().unwrap();
    let js = JsTokenCache::new(rust.clone());
    let key = "@@t-js@@::client::aud::scope".to_owned();
    let value = js_sys::JSON::parse(&entry_json("client").to_string()).unwrap();
    JsFuture::from(js.set(key.clone(), value)).await.unwrap();
    assert_eq!(
        rust.get(&key).await.unwrap(),
        Some(cacheable(&entry_json("client")))
    );
    let got = JsFuture::from(js.get(key.clone())).await.unwrap();
    let got: Value =
        serde_json::from_str(&String::from(js_sys::JSON::stringify(&got).unwrap())).unwrap();
    assert_eq!(got, entry_json("client"));
    let keys = JsFuture::from(js.all_keys()).await.unwrap();
    assert_eq!(
        js_sys::Array::from(&keys).to_vec(),
        vec![JsValue::from(&key)]
    );
    JsFuture::from(js.remove(key.clone())).await.unwrap();
    assert!(JsFuture::from(js.get(key.clone()))
        .await
        .unwrap()
        .is_undefined());
    // An object that is not a cache value is rejected with a typed error (values that
    // are not objects: tests/js_export.rs).
    let not_a_value = js_sys::JSON::parse(r#"{"x":5}"#).unwrap();
    let err = JsFuture::from(js.set(key.clone(), not_a_value))
        .await
        .unwrap_err();
    let err: js_sys::Error = err.into();
    assert_eq!(String::from(err.name()), "TokenCacheError");
    assert_eq!(
        js_sys::Reflect::get(&err, &"kind".into()).unwrap(),
        JsValue::from("serialization")
    );
    assert_eq!(rust.get(&key).await.unwrap(), None);
}

#[wasm_bindgen_test]
async fn the_read_memo_never_serves_a_stale_value() {
    for memo in [true, false] {
        let cache = LocalStorageCache::new()
            .unwrap()
            .with_prefix("@@t-memo@@")
            .with_read_memo(memo);
        let key = "@@t-memo@@::client::aud::scope";
        let first = cacheable(&entry_json("first"));
        cache.set(key, first.clone()).await.unwrap();
        assert_eq!(cache.get(key).await.unwrap(), Some(first.clone()));
        assert_eq!(cache.get(key).await.unwrap(), Some(first));
        // Another writer (auth0-spa-js, another tab) replaces the item: the next get sees it.
        local()
            .set_item(key, &entry_json("second").to_string())
            .unwrap();
        assert_eq!(
            cache.get(key).await.unwrap(),
            Some(cacheable(&entry_json("second")))
        );
        local().set_item(key, "garbage").unwrap();
        assert_eq!(cache.get(key).await.unwrap(), None, "memo {memo}");
        local()
            .set_item(key, &entry_json("third").to_string())
            .unwrap();
        assert_eq!(
            cache.get(key).await.unwrap(),
            Some(cacheable(&entry_json("third")))
        );
        local().remove_item(key).unwrap();
        assert_eq!(cache.get(key).await.unwrap(), None, "memo {memo}");
        // A second cache over the same storage sees the first one's writes.
        let other = LocalStorageCache::new().unwrap();
        cache
            .set(key, cacheable(&entry_json("fourth")))
            .await
            .unwrap();
        assert_eq!(
            other.get(key).await.unwrap(),
            Some(cacheable(&entry_json("fourth")))
        );
        other.remove(key).await.unwrap();
        assert_eq!(cache.get(key).await.unwrap(), None, "memo {memo}");
    }
}

fn encrypted(key_hex: &str) -> LocalStorageCache {
    let key = tokencache_crypto::DataKey::parse(1, key_hex).unwrap();
    let codec = tokencache_crypto::EncryptedCodec::new(
        tokencache_crypto::KeyRing::new(key),
        "tokencache-web-tests",
    );
    LocalStorageCache::new()
        .unwrap()
        .with_prefix("@@t-enc@@")
        .with_codec(Arc::new(codec))
}

#[wasm_bindgen_test]
async fn encrypted_values_are_base64_ciphertext_and_tampering_is_an_integrity_error() {
    let cache = encrypted(&"11".repeat(32));
    cache.clear().unwrap();
    let key = "@@t-enc@@::client::aud::scope";
    let moved = "@@t-enc@@::client::aud::other";
    let v = cacheable(&entry_json("client"));
    cache.set(key, v.clone()).await.unwrap();
    let item = local().get_item(key).unwrap().unwrap();
    for secret in [
        "at-secret",
        "rt-secret",
        "id-secret",
        "client_id",
        "expiresAt",
    ] {
        assert!(
            !item.contains(secret),
            "{secret} visible in the stored item"
        );
    }
    let payload = item
        .strip_prefix(TEXT_MARKER)
        .expect("the TextCodec marker");
    let bytes = BASE64
        .decode(payload)
        .expect("the stored item is marked standard base64");
    assert!(bytes.len() > 28);
    assert_eq!(cache.get(key).await.unwrap(), Some(v.clone()));

    // A flipped ciphertext byte: an Integrity error, never a miss and never data.
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    local()
        .set_item(key, &format!("{TEXT_MARKER}{}", BASE64.encode(&tampered)))
        .unwrap();
    let err = cache.get(key).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");

    // The value copied to another key fails too: it is bound to its key.
    local().set_item(moved, &item).unwrap();
    assert_eq!(
        cache.get(moved).await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
    // Another key cannot read it, even through a clone of a cache that just read it.
    local().set_item(key, &item).unwrap();
    let wrong = encrypted(&"22".repeat(32));
    assert_eq!(
        wrong.get(key).await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert_eq!(cache.get(key).await.unwrap(), Some(v.clone()));
    let wrong_key = tokencache_crypto::DataKey::parse(1, &"22".repeat(32)).unwrap();
    let wrong_codec = tokencache_crypto::EncryptedCodec::new(
        tokencache_crypto::KeyRing::new(wrong_key),
        "tokencache-web-tests",
    );
    let wrong_clone = cache.clone().with_codec(Arc::new(wrong_codec));
    assert_eq!(
        wrong_clone.get(key).await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert_eq!(cache.get(key).await.unwrap(), Some(v));
    // Not base64 at all: a miss, as any undecodable item.
    local().set_item(key, "{\"not\":\"base64\"}").unwrap();
    assert_eq!(cache.get(key).await.unwrap(), None);
    cache.clear().unwrap();
}

/// A manager built the facade's way
/// (`tokencache::builder().cache_location(CacheLocation::LocalStorage).prefix(..)`): the
/// cache with its default storage prefix, under a manager with a custom key prefix and the
/// system clock. `clear(None)` removes every key of that prefix in one step.
#[wasm_bindgen_test]
async fn a_custom_prefix_manager_clears_everything_it_wrote() {
    local().clear().unwrap();
    let cache: Arc<dyn Cache> = Arc::new(LocalStorageCache::new().unwrap());
    let manager = CacheManager::builder(cache.clone())
        .clock(Arc::new(tokencache_core::SystemClock))
        .prefix("@@custom-app@@")
        .build()
        .unwrap();
    for (client, audience, scope) in [
        ("c1", "https://api", "openid read"),
        ("c1", "https://other", "openid write"),
        ("c2", "https://api", "openid"),
    ] {
        manager
            .set(CacheEntry::new(client, audience, scope, "at", 3600.0).with_refresh_token("rt"))
            .await
            .unwrap();
    }
    let decoded = cacheable(
        &json!({"id_token": "id", "decodedToken": {"claims": {"__raw": "id", "sub": "u"}, "user": {"sub": "u"}}}),
    );
    let Cacheable::IdToken(id) = decoded else {
        panic!("an id-token entry")
    };
    manager
        .set_id_token("c1", "id", id.decoded_token)
        .await
        .unwrap();
    assert_eq!(local().length().unwrap(), 4);
    let keys = cache
        .keys_with_prefix("@@custom-app@@::")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keys.len(), 4, "{keys:?}");
    manager.clear(None).await.unwrap();
    assert_eq!(local().length().unwrap(), 0, "the storage is empty");
    let key = CacheKey::new("c1", Some("https://api"), Some("read"));
    assert!(manager
        .get(&key, GetOptions::default())
        .await
        .unwrap()
        .is_none());
}
