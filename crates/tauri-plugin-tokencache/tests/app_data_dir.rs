//! The default store: `<app data dir>/tokencache.db`, its key from an environment variable.
//! One test in its own binary, because it sets process environment variables.

mod support;

use serde_json::json;
use support::{app_with, context, entry, request, window, KEY};
use tauri::Manager;
use tauri_plugin_tokencache::{Builder, KeySource, DEFAULT_FILE_NAME};

const KEY_VAR: &str = "TAURI_PLUGIN_TOKENCACHE_TEST_KEY";
const IDENTIFIER: &str = "com.example.tokencache-test";

#[test]
fn the_default_store_lives_in_the_app_data_dir_with_a_key_from_the_environment() {
    let data_home = tempfile::tempdir().unwrap();
    // dirs::data_dir() on Linux; the app data dir is <data dir>/<identifier>.
    std::env::set_var("XDG_DATA_HOME", data_home.path());
    let app_context = || {
        let mut ctx = context();
        ctx.config_mut().identifier = IDENTIFIER.into();
        ctx
    };
    let plugin = || Builder::new(KeySource::env(KEY_VAR));

    // Without the variable the app does not start (and no store is created).
    std::env::remove_var(KEY_VAR);
    let error = app_with(app_context(), plugin(), &[]).expect_err("no key, no app");
    assert!(error.to_string().contains(KEY_VAR), "{error}");
    let db = data_home.path().join(IDENTIFIER).join(DEFAULT_FILE_NAME);
    assert!(!db.exists());

    // With it, the store is created in the app data dir (the directory too).
    let hex_key = "5e".repeat(32);
    std::env::set_var(KEY_VAR, &hex_key);
    let app = app_with(app_context(), plugin(), &["main"]).unwrap();
    let main = window(&app, "main");
    assert_eq!(
        request(&main, json!({"op": "set", "key": KEY, "value": entry()})),
        Ok(json!({"ok": true}))
    );
    assert!(db.is_file(), "{} missing", db.display());
    assert_eq!(
        app.path().app_data_dir().unwrap(),
        data_home.path().join(IDENTIFIER)
    );
    drop(app);

    // The error of a malformed key names the variable but never repeats its value.
    std::env::set_var(KEY_VAR, "5e5e-not-a-key-5e5e");
    let error = app_with(app_context(), plugin(), &[]).expect_err("a bad key, no app");
    assert!(error.to_string().contains(KEY_VAR), "{error}");
    assert!(!error.to_string().contains("not-a-key"), "{error}");

    // The same key again reads what was stored.
    std::env::set_var(KEY_VAR, &hex_key);
    let app = app_with(app_context(), plugin(), &["main"]).unwrap();
    let got = request(&window(&app, "main"), json!({"op": "get", "key": KEY}));
    assert_eq!(got, Ok(json!({"ok": true, "value": entry()})));
}
