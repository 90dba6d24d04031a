//! The bridge over a real MemoryCache, and over the same cache seen as one that cannot
//! list its keys (the conformance kit's `NoListing`).

use std::sync::Arc;

use serde_json::{json, Value};
use tokencache_bridge::{BridgeHandler, Request, Response, ResponseValue};
use tokencache_conformance::NoListing;
use tokencache_core::{async_trait, Cache, Cacheable, Error, ErrorKind, Result};
use tokencache_memory::MemoryCache;

const KEY: &str = "@@auth0spajs@@::app::https://api::openid read";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.secret-access-token.sig";

fn entry(token: &str) -> Value {
    json!({"body": {"access_token": token, "scope": "openid read", "expires_in": 86400}, "expiresAt": 2_000_000_000})
}

fn listing() -> (Arc<MemoryCache>, BridgeHandler) {
    let cache = Arc::new(MemoryCache::new());
    (cache.clone(), BridgeHandler::new(cache))
}

fn non_listing() -> (Arc<dyn Cache>, BridgeHandler) {
    let cache: Arc<dyn Cache> = Arc::new(NoListing(MemoryCache::new()));
    (cache.clone(), BridgeHandler::new(cache))
}

async fn call(handler: &BridgeHandler, req: Value) -> Value {
    let text = handler.handle_json(&req.to_string()).await;
    serde_json::from_str(&text).expect("every answer is JSON")
}

fn error_kind(answer: &Value) -> &str {
    assert_eq!(answer["ok"], json!(false), "{answer}");
    answer["error"]["kind"].as_str().expect("a kind")
}

#[tokio::test]
async fn get_set_remove_all_keys_round_trip() {
    let (cache, handler) = listing();
    assert!(handler.lists_keys());
    let miss = call(&handler, json!({"id": 1, "op": "get", "key": KEY})).await;
    assert_eq!(miss, json!({"id": 1, "ok": true}));

    let set = call(
        &handler,
        json!({"id": "a", "op": "set", "key": KEY, "value": entry(TOKEN)}),
    )
    .await;
    assert_eq!(set, json!({"id": "a", "ok": true}));
    let stored = cache
        .get(KEY)
        .await
        .unwrap()
        .expect("stored in the native cache");
    assert_eq!(
        stored.as_entry().unwrap().body.access_token.as_deref(),
        Some(TOKEN)
    );

    let hit = call(&handler, json!({"id": 2, "op": "get", "key": KEY})).await;
    assert_eq!(hit, json!({"id": 2, "ok": true, "value": entry(TOKEN)}));

    let manifest_key = "@@auth0spajs@@::app";
    let manifest = json!({"keys": [KEY]});
    let ok = call(
        &handler,
        json!({"op": "set", "key": manifest_key, "value": manifest}),
    )
    .await;
    assert_eq!(ok, json!({"ok": true}));
    let user_key = "@@auth0spajs@@::app::@@user@@";
    let id_token = json!({"id_token": "id-tok", "decodedToken": {"claims": {"__raw": "id-tok", "sub": "u"}, "user": {"sub": "u"}}});
    let ok = call(
        &handler,
        json!({"op": "set", "key": user_key, "value": id_token}),
    )
    .await;
    assert_eq!(ok, json!({"ok": true}));
    assert_eq!(
        call(&handler, json!({"op": "get", "key": user_key})).await["value"],
        id_token
    );

    // A key of another application in the same store is never listed.
    cache
        .set(
            "other-app::secret",
            Cacheable::from_json(br#"{"keys":[]}"#).unwrap(),
        )
        .await
        .unwrap();
    let all = call(&handler, json!({"id": 3, "op": "allKeys"})).await;
    let mut keys: Vec<String> = serde_json::from_value(all["value"].clone()).unwrap();
    keys.sort();
    let mut expected = vec![KEY.to_owned(), manifest_key.to_owned(), user_key.to_owned()];
    expected.sort();
    assert_eq!(keys, expected);

    let removed = call(&handler, json!({"id": 4, "op": "remove", "key": KEY})).await;
    assert_eq!(removed, json!({"id": 4, "ok": true}));
    assert!(cache.get(KEY).await.unwrap().is_none());
    // Removing a missing key is not an error.
    let again = call(&handler, json!({"op": "remove", "key": KEY})).await;
    assert_eq!(again, json!({"ok": true}));
}

#[tokio::test]
async fn typed_requests_and_responses() {
    let (_, handler) = listing();
    let r = handler
        .handle(Request::set(KEY, entry(TOKEN)).with_id(9))
        .await;
    assert_eq!(r, Response::ok(Some(9.into()), None));
    let r = handler.handle(Request::get(KEY)).await;
    let Ok(Some(ResponseValue::Value(v))) = r.result else {
        panic!("a hit: {r:?}")
    };
    assert_eq!(
        v.as_entry().unwrap().body.access_token.as_deref(),
        Some(TOKEN)
    );
    let r = handler.handle(Request::all_keys()).await;
    assert_eq!(
        r.result,
        Ok(Some(ResponseValue::Keys(vec![KEY.to_owned()])))
    );
    // The Debug forms of requests and responses print no token.
    let dbg = format!(
        "{:?} {:?}",
        Request::set(KEY, entry(TOKEN)),
        handler.handle(Request::get(KEY)).await
    );
    assert!(!dbg.contains(TOKEN), "{dbg}");
}

#[tokio::test]
async fn keys_outside_the_prefix_are_refused() {
    let (cache, handler) = listing();
    let too_long = format!("@@auth0spajs@@::{}", "a".repeat(3000));
    for key in [
        "other-app::x",
        "@@auth0spajs@@",
        "@@auth0spajs@@::",
        "@@auth0spajs@@evil::x",
        "x@@auth0spajs@@::y",
        too_long.as_str(),
    ] {
        for req in [
            json!({"op": "get", "key": key}),
            json!({"op": "set", "key": key, "value": entry(TOKEN)}),
            json!({"op": "remove", "key": key}),
        ] {
            let answer = call(&handler, req).await;
            assert_eq!(error_kind(&answer), "invalid_key", "{key}");
            assert!(!answer.to_string().contains(key), "the key is not echoed");
        }
    }
    assert_eq!(
        error_kind(&call(&handler, json!({"op": "get"})).await),
        "invalid_key"
    );
    assert!(
        cache.all_keys().await.unwrap().unwrap().is_empty(),
        "nothing stored"
    );

    // Another prefix confines to that prefix instead.
    let custom = BridgeHandler::builder(cache.clone())
        .prefix("@@mine@@")
        .build()
        .unwrap();
    let answer = call(
        &custom,
        json!({"op": "set", "key": KEY, "value": entry(TOKEN)}),
    )
    .await;
    assert_eq!(error_kind(&answer), "invalid_key");
    let answer = call(
        &custom,
        json!({"op": "set", "key": "@@mine@@::k", "value": entry(TOKEN)}),
    )
    .await;
    assert_eq!(answer, json!({"ok": true}));
}

#[tokio::test]
async fn values_that_are_not_cache_values_are_refused_without_echo() {
    let (cache, handler) = listing();
    call(
        &handler,
        json!({"op": "set", "key": KEY, "value": entry("old-token")}),
    )
    .await;
    for bad in [
        json!({"body": {"access_token": TOKEN}}),
        json!({"access_token": TOKEN}),
        json!(TOKEN),
        json!([TOKEN]),
        json!({"body": {"access_token": [TOKEN]}, "expiresAt": 1}),
        json!({"id_token": 5, "note": TOKEN}),
    ] {
        let answer = call(
            &handler,
            json!({"id": 1, "op": "set", "key": KEY, "value": bad}),
        )
        .await;
        let kind = error_kind(&answer);
        assert!(
            kind == "serialization" || kind == "invalid_value",
            "{answer}"
        );
        assert_eq!(answer["id"], json!(1));
        assert!(
            !answer.to_string().contains("secret-access-token"),
            "{answer}"
        );
    }
    let missing = call(&handler, json!({"op": "set", "key": KEY})).await;
    assert_eq!(error_kind(&missing), "serialization");
    // Nothing was lost: the old value is still there.
    let old = cache.get(KEY).await.unwrap().unwrap();
    assert_eq!(
        old.as_entry().unwrap().body.access_token.as_deref(),
        Some("old-token")
    );
}

#[tokio::test]
async fn value_size_is_bounded() {
    let cache = Arc::new(MemoryCache::new());
    let handler = BridgeHandler::builder(cache.clone())
        .max_value_bytes(1024)
        .build()
        .unwrap();
    call(
        &handler,
        json!({"op": "set", "key": KEY, "value": entry("small")}),
    )
    .await;
    let big = format!("{TOKEN}{}", "x".repeat(2000));
    let answer = call(
        &handler,
        json!({"op": "set", "key": KEY, "value": entry(&big)}),
    )
    .await;
    assert_eq!(error_kind(&answer), "quota_exceeded");
    assert!(!answer.to_string().contains("secret-access-token"));
    let kept = cache.get(KEY).await.unwrap().unwrap();
    assert_eq!(
        kept.as_entry().unwrap().body.access_token.as_deref(),
        Some("small")
    );

    // A request far beyond every limit is refused before it is parsed.
    let huge = format!(
        r#"{{"id":1,"op":"set","key":"{KEY}","value":"{}"}}"#,
        "y".repeat(10_000)
    );
    let answer: Value = serde_json::from_str(&handler.handle_json(&huge).await).unwrap();
    assert_eq!(error_kind(&answer), "quota_exceeded");
}

async fn key_count_is_bounded(cache: Arc<dyn Cache>) {
    let handler = BridgeHandler::builder(cache.clone())
        .max_keys(2)
        .build()
        .unwrap();
    let k = |i: u32| format!("@@auth0spajs@@::app::aud{i}");
    for i in 0..2 {
        let ok = call(
            &handler,
            json!({"op": "set", "key": k(i), "value": entry("t")}),
        )
        .await;
        assert_eq!(ok, json!({"ok": true}));
    }
    let full = call(
        &handler,
        json!({"op": "set", "key": k(2), "value": entry(TOKEN)}),
    )
    .await;
    assert_eq!(error_kind(&full), "quota_exceeded");
    assert!(
        cache.get(&k(2)).await.unwrap().is_none(),
        "the refused key is not stored"
    );
    for i in 0..2 {
        assert!(cache.get(&k(i)).await.unwrap().is_some(), "nothing lost");
    }
    // Replacing an existing key is not a new key.
    let update = call(
        &handler,
        json!({"op": "set", "key": k(0), "value": entry("t2")}),
    )
    .await;
    assert_eq!(update, json!({"ok": true}));
    // After a remove there is room again.
    call(&handler, json!({"op": "remove", "key": k(1)})).await;
    let ok = call(
        &handler,
        json!({"op": "set", "key": k(2), "value": entry("t3")}),
    )
    .await;
    assert_eq!(ok, json!({"ok": true}));
}

#[tokio::test]
async fn key_count_is_bounded_when_listing() {
    key_count_is_bounded(Arc::new(MemoryCache::new())).await;
}

#[tokio::test]
async fn key_count_is_bounded_without_listing() {
    key_count_is_bounded(Arc::new(NoListing(MemoryCache::new()))).await;
}

#[tokio::test]
async fn all_keys_is_unsupported_when_the_cache_cannot_list() {
    let (cache, handler) = non_listing();
    assert!(!handler.lists_keys());
    let answer = call(&handler, json!({"id": 5, "op": "allKeys"})).await;
    assert_eq!(error_kind(&answer), "unsupported");
    assert_eq!(answer["id"], json!(5));
    // Everything else works, which is all auth0-spa-js's manifest mode needs.
    let manifest_key = "@@auth0spajs@@::app";
    let manifest = json!({"keys": [KEY]});
    call(
        &handler,
        json!({"op": "set", "key": KEY, "value": entry(TOKEN)}),
    )
    .await;
    call(
        &handler,
        json!({"op": "set", "key": manifest_key, "value": manifest}),
    )
    .await;
    let got = call(&handler, json!({"op": "get", "key": manifest_key})).await;
    assert_eq!(got["value"], manifest);
    assert!(cache.get(KEY).await.unwrap().is_some());
}

#[tokio::test]
async fn malformed_requests_are_typed_errors() {
    let (cache, handler) = listing();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_value = format!(
        r#"{{"op":"set","key":"{KEY}","value":{}{}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    for text in [
        "",
        "not json",
        "{",
        "[]",
        "null",
        "42",
        r#"{"id":1}"#,
        r#"{"op":5}"#,
        r#"{"op":"get","key":5}"#,
        r#"{"op":"set","key":"@@auth0spajs@@::a","value":{"body":{"access_token":"eyJ-secret"},"expiresAt":1}"#,
        deep.as_str(),
        deep_value.as_str(),
    ] {
        let answer: Value = serde_json::from_str(&handler.handle_json(text).await).unwrap();
        let kind = error_kind(&answer);
        assert!(
            kind == "serialization" || kind == "quota_exceeded",
            "{text:.40}: {answer}"
        );
        assert!(!answer.to_string().contains("eyJ-secret"));
    }
    // The id survives a request whose other fields are wrong.
    let answer: Value = serde_json::from_str(
        &handler
            .handle_json(r#"{"id":"q","op":"get","key":[]}"#)
            .await,
    )
    .unwrap();
    assert_eq!(answer["id"], json!("q"));
    assert_eq!(error_kind(&answer), "serialization");
    let unknown = call(&handler, json!({"id": 7, "op": "clear"})).await;
    assert_eq!(error_kind(&unknown), "unsupported");
    assert!(cache.all_keys().await.unwrap().unwrap().is_empty());
}

/// A store that is down: its errors reach the webview with their kind and temporary flag.
#[derive(Debug)]
struct Down;

#[async_trait]
impl Cache for Down {
    async fn get(&self, _: &str) -> Result<Option<Cacheable>> {
        Err(Error::unavailable("database busy").temporary())
    }
    async fn set(&self, _: &str, _: Cacheable) -> Result<()> {
        Err(Error::integrity("wrong key"))
    }
    async fn remove(&self, _: &str) -> Result<()> {
        Err(Error::quota_exceeded("full"))
    }
}

#[tokio::test]
async fn cache_errors_keep_their_kind() {
    let handler = BridgeHandler::new(Arc::new(Down));
    let get = call(&handler, json!({"op": "get", "key": KEY})).await;
    assert_eq!(
        get["error"],
        json!({"kind": "unavailable", "message": "database busy", "temporary": true})
    );
    let set = call(
        &handler,
        json!({"op": "set", "key": KEY, "value": entry(TOKEN)}),
    )
    .await;
    assert_eq!(error_kind(&set), "integrity");
    assert_eq!(set["error"]["temporary"], json!(false));
    let remove = call(&handler, json!({"op": "remove", "key": KEY})).await;
    assert_eq!(error_kind(&remove), "quota_exceeded");
    let back: Response = serde_json::from_value(get).unwrap();
    let e = back.result.unwrap_err().into_error();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_temporary());
}

#[test]
fn builder_rejects_bad_configuration() {
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new());
    for b in [
        BridgeHandler::builder(cache.clone()).prefix(""),
        BridgeHandler::builder(cache.clone()).prefix("a::b"),
        BridgeHandler::builder(cache.clone()).max_keys(0),
        BridgeHandler::builder(cache.clone()).max_value_bytes(0),
        BridgeHandler::builder(cache.clone()).max_key_bytes(0),
    ] {
        assert_eq!(b.build().unwrap_err().kind(), ErrorKind::Config);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_new_keys_never_exceed_the_limit() {
    let cache = Arc::new(MemoryCache::new());
    let handler = Arc::new(
        BridgeHandler::builder(cache.clone())
            .max_keys(5)
            .build()
            .unwrap(),
    );
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let handler = handler.clone();
            tokio::spawn(async move {
                let key = format!("@@auth0spajs@@::app::aud{i}");
                handler.handle(Request::set(key, entry("t"))).await.is_ok()
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap());
    }
    assert_eq!(accepted, 5);
    assert_eq!(cache.all_keys().await.unwrap().unwrap().len(), 5);
}
