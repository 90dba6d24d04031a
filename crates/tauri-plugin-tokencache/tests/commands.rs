//! The plugin on Tauri's mock runtime, over real encrypted SQLite in a temporary directory:
//! every bridge operation through `plugin:tokencache|request`, the permission check, typed
//! errors for bad input, and ciphertext only in the database file.

mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use support::{app_with, bytes_under, contains, context, entry, invoke, request, window};
use support::{ACCESS_TOKEN, KEY};
use tauri_plugin_tokencache::{Builder, KeySource, TokenCacheExt};
use tokencache_core::{Cache, Cacheable};
use tokencache_crypto::DataKey;
use tokencache_memory::MemoryCache;

fn sqlite_plugin(dir: &tempfile::TempDir, key: DataKey) -> Builder {
    Builder::new(KeySource::key(key)).database_path(dir.path().join("tokencache.db"))
}

fn error_kind(response: &Value) -> &str {
    assert_eq!(response["ok"], json!(false), "{response}");
    response["error"]["kind"].as_str().expect("an error kind")
}

#[test]
fn every_op_round_trips_through_the_request_command() {
    let dir = tempfile::tempdir().unwrap();
    let key = DataKey::generate(1).unwrap();
    let app = app_with(context(), sqlite_plugin(&dir, key), &["main"]).unwrap();
    let main = window(&app, "main");

    assert_eq!(
        invoke(&main, "plugin:tokencache|lists_keys", json!({})),
        Ok(json!(true))
    );

    // set, then get: the same value, the id echoed
    let set = request(
        &main,
        json!({"id": 1, "op": "set", "key": KEY, "value": entry()}),
    );
    assert_eq!(set, Ok(json!({"id": 1, "ok": true})));
    let got = request(&main, json!({"id": 2, "op": "get", "key": KEY})).unwrap();
    assert_eq!(got, json!({"id": 2, "ok": true, "value": entry()}));

    // the app's Rust side sees what the page stored
    let stored = tauri::async_runtime::block_on(app.tokencache().cache().get(KEY))
        .unwrap()
        .expect("stored in the native cache");
    let access_token = stored.as_entry().unwrap().body.access_token.clone();
    assert_eq!(access_token.as_deref(), Some(ACCESS_TOKEN));

    // allKeys lists it (string ids work too)
    let second = "@@auth0spajs@@::my-client::@@user@@";
    let id_token = json!({"id_token": "id.token.jwt", "decodedToken": {"claims": {"__raw": "id.token.jwt", "sub": "u1"}, "user": {"sub": "u1"}}});
    assert_eq!(
        request(
            &main,
            json!({"id": "s", "op": "set", "key": second, "value": id_token})
        ),
        Ok(json!({"id": "s", "ok": true}))
    );
    let all = request(&main, json!({"id": 3, "op": "allKeys"})).unwrap();
    assert_eq!(all["ok"], json!(true), "{all}");
    let mut keys: Vec<String> = serde_json::from_value(all["value"].clone()).unwrap();
    keys.sort();
    assert_eq!(keys, vec![second.to_owned(), KEY.to_owned()]);

    // remove, then get misses (no value) and allKeys no longer lists it
    assert_eq!(
        request(&main, json!({"id": 4, "op": "remove", "key": KEY})),
        Ok(json!({"id": 4, "ok": true}))
    );
    assert_eq!(
        request(&main, json!({"id": 5, "op": "get", "key": KEY})),
        Ok(json!({"id": 5, "ok": true}))
    );
    assert_eq!(
        request(&main, json!({"op": "allKeys"})),
        Ok(json!({"ok": true, "value": [second]}))
    );
    // removing a missing key succeeds
    assert_eq!(
        request(&main, json!({"op": "remove", "key": KEY})),
        Ok(json!({"ok": true}))
    );
}

#[test]
fn a_webview_without_the_permission_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = DataKey::generate(1).unwrap();

    // Granted to "main" only: "other" is refused, and its set changes nothing.
    let app = app_with(context(), sqlite_plugin(&dir, key.clone()), &["main"]).unwrap();
    let (main, other) = (window(&app, "main"), window(&app, "other"));
    let refused = request(
        &other,
        json!({"id": 1, "op": "set", "key": KEY, "value": entry()}),
    );
    let message = refused.expect_err("no capability covers this window");
    assert!(message.to_string().contains("not allowed"), "{message}");
    assert!(invoke(&other, "plugin:tokencache|lists_keys", json!({})).is_err());
    assert!(request(&other, json!({"op": "get", "key": KEY})).is_err());
    assert_eq!(
        request(&main, json!({"op": "get", "key": KEY})),
        Ok(json!({"ok": true})),
        "the refused set stored nothing"
    );
    drop(app);

    // No capability at all: every window is refused.
    let app = app_with(context(), sqlite_plugin(&dir, key), &[]).unwrap();
    let main = window(&app, "main");
    assert!(request(&main, json!({"op": "allKeys"})).is_err());
    assert!(invoke(&main, "plugin:tokencache|lists_keys", json!({})).is_err());
}

#[test]
fn bad_input_is_a_typed_bridge_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(
        context(),
        sqlite_plugin(&dir, DataKey::generate(1).unwrap()),
        &["main"],
    )
    .unwrap();
    let main = window(&app, "main");

    // Malformed requests: no op, not an object, no request at all. The id is kept when
    // it can be read.
    let no_op = request(&main, json!({"id": 9, "key": KEY})).unwrap();
    assert_eq!(error_kind(&no_op), "serialization");
    assert_eq!(no_op["id"], json!(9));
    let not_object = request(&main, json!("get everything")).unwrap();
    assert_eq!(error_kind(&not_object), "serialization");
    let missing = invoke(&main, "plugin:tokencache|request", json!({})).unwrap();
    assert_eq!(error_kind(&missing), "serialization");
    let unknown_op = request(&main, json!({"id": 10, "op": "clear"})).unwrap();
    assert_eq!(error_kind(&unknown_op), "unsupported");

    // A key outside the prefix: refused for every op, nothing stored.
    for (op, value) in [("get", None), ("set", Some(entry())), ("remove", None)] {
        let mut req = json!({"id": 11, "op": op, "key": "other-app::secret-key"});
        if let Some(value) = value {
            req["value"] = value;
        }
        let answer = request(&main, req).unwrap();
        assert_eq!(error_kind(&answer), "invalid_key", "{op}");
        assert!(!answer.to_string().contains("secret-key"), "{answer}");
    }

    // A value that is not a cache value: refused, the token never echoed.
    let secret = "eyJ-not-a-cache-value-secret";
    let answer = request(
        &main,
        json!({"id": 12, "op": "set", "key": KEY, "value": {"access_token": secret}}),
    )
    .unwrap();
    assert_eq!(error_kind(&answer), "serialization");
    assert_eq!(answer["id"], json!(12));
    assert!(!answer.to_string().contains(secret), "{answer}");

    // A set without a value, a get without a key.
    let answer = request(&main, json!({"op": "set", "key": KEY})).unwrap();
    assert_eq!(error_kind(&answer), "serialization");
    let answer = request(&main, json!({"op": "get"})).unwrap();
    assert_eq!(error_kind(&answer), "invalid_key");

    assert_eq!(
        request(&main, json!({"op": "allKeys"})),
        Ok(json!({"ok": true, "value": []})),
        "no refused request stored anything"
    );
}

#[test]
fn the_database_holds_no_plaintext_token_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(
        context(),
        sqlite_plugin(&dir, DataKey::generate(1).unwrap()),
        &["main"],
    )
    .unwrap();
    let main = window(&app, "main");
    let set = request(&main, json!({"op": "set", "key": KEY, "value": entry()}));
    assert_eq!(set, Ok(json!({"ok": true})));

    let bytes = bytes_under(dir.path());
    assert!(dir.path().join("tokencache.db").is_file());
    // The row is there (keys are stored in clear, to be listed)...
    assert!(
        contains(&bytes, KEY.as_bytes()),
        "the row was not written to the files read"
    );
    // ...but neither the token nor any other part of the value is.
    assert!(
        !contains(&bytes, ACCESS_TOKEN.as_bytes()),
        "plaintext access token on disk"
    );
    assert!(!contains(&bytes, b"PLAINTEXT-ACCESS-TOKEN"));
    assert!(!contains(&bytes, b"\"access_token\""));
    assert!(!contains(&bytes, b"read:orders\",\""));
}

#[test]
fn another_key_cannot_read_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let right = DataKey::generate(1).unwrap();
    let app = app_with(context(), sqlite_plugin(&dir, right.clone()), &["main"]).unwrap();
    let set = request(
        &window(&app, "main"),
        json!({"op": "set", "key": KEY, "value": entry()}),
    );
    assert_eq!(set, Ok(json!({"ok": true})));
    drop(app);

    // The same file opened with the right key: the value survives a restart.
    let app = app_with(context(), sqlite_plugin(&dir, right), &["main"]).unwrap();
    let got = request(&window(&app, "main"), json!({"op": "get", "key": KEY}));
    assert_eq!(got, Ok(json!({"ok": true, "value": entry()})));
    drop(app);

    // With another key under the same key id: the database's key check refuses it when
    // the plugin starts (an integrity error), before anything is read or written; the
    // app does not start, and the error holds no token.
    let wrong = DataKey::generate(1).unwrap();
    let err = match app_with(context(), sqlite_plugin(&dir, wrong), &["main"]) {
        Ok(_) => panic!("a wrong key must stop the plugin's setup"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("integrity"), "{err}");
    assert!(!err.contains(ACCESS_TOKEN));
}

#[test]
fn an_app_cache_is_served_under_its_own_prefix() {
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new());
    let plugin = Builder::with_cache(cache.clone()).bridge(|b| b.prefix("@@myapp@@").max_keys(1));
    let app = app_with(context(), plugin, &["main"]).unwrap();
    let main = window(&app, "main");

    let key = "@@myapp@@::manifest";
    let manifest = json!({"keys": ["@@myapp@@::a"]});
    assert_eq!(
        request(&main, json!({"op": "set", "key": key, "value": manifest})),
        Ok(json!({"ok": true}))
    );
    // The app's own handle sees it.
    let stored = tauri::async_runtime::block_on(cache.get(key)).unwrap();
    let expected = Cacheable::from_json(manifest.to_string().as_bytes()).unwrap();
    assert_eq!(stored, Some(expected));
    // auth0-spa-js's default prefix is outside this bridge's.
    let answer = request(&main, json!({"op": "get", "key": KEY})).unwrap();
    assert_eq!(error_kind(&answer), "invalid_key");
    // The key limit of the handler applies.
    let answer = request(
        &main,
        json!({"op": "set", "key": "@@myapp@@::b", "value": manifest}),
    )
    .unwrap();
    assert_eq!(error_kind(&answer), "quota_exceeded");
}

#[test]
fn setup_fails_on_a_bad_configuration() {
    // SQLite-only options on an app cache.
    let plugin = Builder::with_cache(Arc::new(MemoryCache::new())).namespace("x");
    assert!(app_with(context(), plugin, &[]).is_err());
    // An invalid bridge setting.
    let dir = tempfile::tempdir().unwrap();
    let plugin = sqlite_plugin(&dir, DataKey::generate(1).unwrap()).bridge(|b| b.prefix("a::b"));
    assert!(app_with(context(), plugin, &[]).is_err());
    // A key function that fails.
    let plugin = Builder::new(KeySource::from_fn(|| DataKey::parse(1, "not a key")))
        .database_path(dir.path().join("never.db"));
    assert!(app_with(context(), plugin, &[]).is_err());
    assert!(
        !dir.path().join("never.db").exists(),
        "no store is opened without a key"
    );
}
