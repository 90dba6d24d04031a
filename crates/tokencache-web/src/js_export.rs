//! `JsTokenCache`: any Rust cache as auth0-spa-js's custom `cache` option.

use std::sync::Arc;

use js_sys::Promise;
use tokencache_core::{Cache, Cacheable, Error, DEFAULT_PREFIX};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::storage::{LocalStorageCache, SessionStorageCache};

/// A JavaScript class over any Rust [`Cache`], with the interface of auth0-spa-js's
/// custom cache (`ICache`): `get(key)` resolves to the stored object or `undefined`,
/// `set(key, object)`, `remove(key)` and `allKeys()` (the stored keys) resolve when done.
/// Every method returns a Promise and never throws synchronously; a failure rejects it
/// with an `Error` named `TokenCacheError` whose `kind` property is the error kind
/// (`"quota exceeded"`, …), except a `set` value that is not a plain object (`undefined`,
/// `null`, a number, a string, an array, a function, a cyclic object, …), which rejects
/// it with a `TypeError`.
///
/// Give it to auth0-spa-js as the `cache` option:
///
/// ```js
/// import { Auth0Client } from "@auth0/auth0-spa-js";
/// import init, { JsTokenCache } from "./tokencache_web.js";
/// await init();
/// const client = new Auth0Client({ domain, clientId, cache: JsTokenCache.localStorage() });
/// ```
///
/// From Rust, wrap any backend with [`JsTokenCache::new`] and hand the JS object out with
/// [`JsTokenCache::into_js`]:
///
/// ```no_run
/// # #[cfg(target_arch = "wasm32")]
/// # fn example() -> tokencache_core::Result<wasm_bindgen::JsValue> {
/// use std::sync::Arc;
/// use tokencache_web::{JsTokenCache, LocalStorageCache};
///
/// let js = JsTokenCache::new(Arc::new(LocalStorageCache::new()?)).into_js();
/// // pass `js` to JavaScript, e.g. as `new Auth0Client({ ..., cache: js })`
/// # Ok(js)
/// # }
/// ```
///
/// auth0-spa-js keeps a key manifest when its cache has no `allKeys`: [`JsTokenCache::into_js`]
/// hides `allKeys` when the backend cannot list its keys, so auth0-spa-js does just that.
#[wasm_bindgen]
pub struct JsTokenCache {
    cache: Arc<dyn Cache>,
}

impl std::fmt::Debug for JsTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsTokenCache")
            .field("lists_keys", &self.cache.lists_keys())
            .finish_non_exhaustive()
    }
}

impl JsTokenCache {
    /// The JS cache over `cache`.
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        JsTokenCache { cache }
    }

    /// The Rust cache behind this object.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// This cache as a JavaScript object. When the backend cannot list its keys, the
    /// object's `allKeys` is `undefined`, so that auth0-spa-js keeps a key manifest.
    pub fn into_js(self) -> JsValue {
        let lists_keys = self.cache.lists_keys();
        let object = JsValue::from(self);
        if !lists_keys {
            // An own property shadows the prototype's method; setting a property on our
            // own fresh object cannot fail.
            let _ = js_sys::Reflect::set(&object, &"allKeys".into(), &JsValue::UNDEFINED);
        }
        object
    }
}

#[wasm_bindgen]
impl JsTokenCache {
    /// A cache over `window.localStorage` whose `allKeys` lists the keys starting with
    /// `prefix` (default `@@auth0spajs@@`).
    #[wasm_bindgen(js_name = localStorage)]
    pub fn local_storage(prefix: Option<String>) -> Result<JsTokenCache, JsValue> {
        let cache = LocalStorageCache::new()
            .map_err(to_js_error)?
            .with_prefix(prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_owned()));
        Ok(JsTokenCache::new(Arc::new(cache)))
    }

    /// A cache over `window.sessionStorage` whose `allKeys` lists the keys starting with
    /// `prefix` (default `@@auth0spajs@@`).
    #[wasm_bindgen(js_name = sessionStorage)]
    pub fn session_storage(prefix: Option<String>) -> Result<JsTokenCache, JsValue> {
        let cache = SessionStorageCache::new()
            .map_err(to_js_error)?
            .with_prefix(prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_owned()));
        Ok(JsTokenCache::new(Arc::new(cache)))
    }

    /// Resolves to the object stored at `key`, or `undefined`.
    pub fn get(&self, key: String) -> Promise {
        let cache = Arc::clone(&self.cache);
        future_to_promise(async move {
            match cache.get(&key).await.map_err(to_js_error)? {
                Some(value) => to_js_value(&value),
                None => Ok(JsValue::UNDEFINED),
            }
        })
    }

    /// Stores `value` (a token entry, an id-token entry or a key manifest) at `key`.
    /// Rejects a value that is not an object with a `TypeError`, and an object that is
    /// none of these with a `TokenCacheError` (kind `serialization`).
    pub fn set(&self, key: String, value: JsValue) -> Promise {
        let value = match from_js_value(&value) {
            Ok(v) => v,
            Err(e) => return Promise::reject(&e),
        };
        let cache = Arc::clone(&self.cache);
        future_to_promise(async move {
            cache.set(&key, value).await.map_err(to_js_error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Removes `key`.
    pub fn remove(&self, key: String) -> Promise {
        let cache = Arc::clone(&self.cache);
        future_to_promise(async move {
            cache.remove(&key).await.map_err(to_js_error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Resolves to the stored keys (an array of strings), or `undefined` when the
    /// backend cannot list them.
    #[wasm_bindgen(js_name = allKeys)]
    pub fn all_keys(&self) -> Promise {
        let cache = Arc::clone(&self.cache);
        future_to_promise(async move {
            Ok(match cache.all_keys().await.map_err(to_js_error)? {
                Some(keys) => keys
                    .iter()
                    .map(JsValue::from)
                    .collect::<js_sys::Array>()
                    .into(),
                None => JsValue::UNDEFINED,
            })
        })
    }
}

/// The stored value as a plain JS object (the same JSON auth0-spa-js would keep).
fn to_js_value(value: &Cacheable) -> Result<JsValue, JsValue> {
    let json = value.to_json_string().map_err(to_js_error)?;
    js_sys::JSON::parse(&json)
}

/// A JS object as a stored value, through its JSON. Anything but a plain object is a
/// `TypeError` (as is what `JSON.stringify` refuses: a cycle, a BigInt); an object that
/// is not a cache value a `TokenCacheError`.
fn from_js_value(value: &JsValue) -> Result<Cacheable, JsValue> {
    if !value.is_object() || js_sys::Array::is_array(value) {
        let what = if value.is_null() {
            "null".to_owned()
        } else if js_sys::Array::is_array(value) {
            "an array".to_owned()
        } else {
            value.js_typeof().as_string().unwrap_or_default()
        };
        return Err(type_error(&format!(
            "JsTokenCache.set: the value must be an object (a token entry, an ID-token \
             entry or a key manifest), not {what}"
        )));
    }
    // A TypeError from JSON.stringify (a cycle, a BigInt) is passed on as it is.
    let json = js_sys::JSON::stringify(value)?;
    let json = json
        .as_string()
        .ok_or_else(|| type_error("JsTokenCache.set: the value has no JSON form"))?;
    Cacheable::from_json(json.as_bytes()).map_err(to_js_error)
}

fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}

/// A tokencache error as a JS `Error` named `TokenCacheError`, with a `kind` property.
fn to_js_error(e: Error) -> JsValue {
    let error = js_sys::Error::new(&format!("tokencache: {e}"));
    error.set_name("TokenCacheError");
    // Setting a property on a fresh Error cannot fail.
    let _ = js_sys::Reflect::set(&error, &"kind".into(), &e.kind().as_str().into());
    error.into()
}
