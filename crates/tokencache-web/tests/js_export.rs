//! JsTokenCache called from JavaScript, in a real browser (headless Chromium): `set` with a
//! value that is not a plain object returns a Promise rejected with a `TypeError`, and
//! never throws synchronously.
#![cfg(target_arch = "wasm32")]
// The core shares caches as `Arc<dyn Cache>`; browser values are not `Send` (one thread).
#![allow(clippy::arc_with_non_send_sync)]

use std::sync::Arc;

use tokencache_core::Cache;
use tokencache_web::{JsTokenCache, LocalStorageCache};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
// Calls cache.set(key, bad value number i) the way JavaScript would; returns what it
// returned, or {threw: error} when it threw synchronously.
export function set_bad(cache, key, i) {
    const cyclic = {}; cyclic.self = cyclic;
    const values = [undefined, null, 5, "text", true, [], [1, 2], () => 1, Symbol("s"),
                    10n, cyclic, { bigint: 1n }];
    try {
        return cache.set(key, values[i]);
    } catch (e) {
        return { threw: e };
    }
}
export function bad_values() { return 12; }
export function is_promise(v) { return v instanceof Promise; }
export function is_type_error(e) { return e instanceof TypeError; }
"#)]
extern "C" {
    fn set_bad(cache: &JsValue, key: &str, i: u32) -> JsValue;
    fn bad_values() -> u32;
    fn is_promise(v: &JsValue) -> bool;
    fn is_type_error(e: &JsValue) -> bool;
}

#[wasm_bindgen_test]
async fn set_with_a_non_object_rejects_with_a_type_error() {
    let rust = Arc::new(LocalStorageCache::new().unwrap().with_prefix("@@t-bad@@"));
    rust.clear().unwrap();
    let js = JsTokenCache::new(rust.clone()).into_js();
    let key = "@@t-bad@@::client::aud::scope";
    let n = bad_values();
    assert_eq!(n, 12);
    for i in 0..n {
        let returned = set_bad(&js, key, i);
        assert!(
            is_promise(&returned),
            "value {i}: set threw synchronously or returned no Promise: {returned:?}"
        );
        let err = JsFuture::from(js_sys::Promise::from(returned))
            .await
            .expect_err("a bad value must reject");
        assert!(is_type_error(&err), "value {i}: rejected with {err:?}");
        let message = String::from(js_sys::Error::from(err).message());
        assert!(!message.is_empty(), "value {i}");
    }
    // Nothing was stored.
    assert_eq!(rust.get(key).await.unwrap(), None);
    assert_eq!(
        rust.all_keys().await.unwrap().map(Vec::from),
        Some(Vec::<String>::new())
    );
}
