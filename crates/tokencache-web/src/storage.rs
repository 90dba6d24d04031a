//! `localStorage` / `sessionStorage` caches.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use js_sys::JsString;
use tokencache_core::{
    async_trait, decode_or_miss, Cache, Cacheable, Error, JsonCodec, Result, TextCodec, ValueCodec,
    DEFAULT_PREFIX,
};
use wasm_bindgen::prelude::*;
use web_sys::Storage;

// `getItem` / `setItem` with the item as a JS string, so that `get` can compare it with the
// memo before copying it into wasm memory (web-sys's bindings convert to a Rust `String`).
#[wasm_bindgen(inline_js = r#"
export function get_item(storage, key) { return storage.getItem(key); }
export function set_item(storage, key, item) { storage.setItem(key, item); }
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn get_item(storage: &Storage, key: &str) -> std::result::Result<Option<JsString>, JsValue>;
    #[wasm_bindgen(catch)]
    fn set_item(storage: &Storage, key: &str, item: &JsString) -> std::result::Result<(), JsValue>;
}

/// Most decoded values the read memo keeps; past it the memo starts over.
const MEMO_CAPACITY: usize = 256;

/// The last item read or written at each key (as the JS string) and its decoded value.
type Memo = RefCell<HashMap<String, (JsString, Cacheable)>>;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Local {}
    impl Sealed for super::Session {}
}

/// Which Web Storage area a [`StorageCache`] uses: [`Local`] or [`Session`].
pub trait StorageKind: sealed::Sealed + 'static {
    /// `"localStorage"` or `"sessionStorage"`, for messages.
    const NAME: &'static str;

    /// The storage area of `window` (`Err` when the browser refuses it, `None` when absent).
    fn storage(window: &web_sys::Window) -> std::result::Result<Option<Storage>, JsValue>;
}

/// `window.localStorage`: survives reloads and browser restarts, shared by the origin's tabs.
#[derive(Debug, Clone, Copy)]
pub enum Local {}

/// `window.sessionStorage`: one tab's storage, gone when the tab closes.
#[derive(Debug, Clone, Copy)]
pub enum Session {}

impl StorageKind for Local {
    const NAME: &'static str = "localStorage";
    fn storage(window: &web_sys::Window) -> std::result::Result<Option<Storage>, JsValue> {
        window.local_storage()
    }
}

impl StorageKind for Session {
    const NAME: &'static str = "sessionStorage";
    fn storage(window: &web_sys::Window) -> std::result::Result<Option<Storage>, JsValue> {
        window.session_storage()
    }
}

/// A cache over `window.localStorage`, compatible with auth0-spa-js's `LocalStorageCache`.
pub type LocalStorageCache = StorageCache<Local>;

/// A cache over `window.sessionStorage`.
pub type SessionStorageCache = StorageCache<Session>;

/// A [`Cache`] over a Web Storage area; use it as [`LocalStorageCache`] or
/// [`SessionStorageCache`].
///
/// Each value is one storage item at its cache key. With the default [`JsonCodec`] the item
/// is the value's JSON, exactly what auth0-spa-js's `LocalStorageCache` writes
/// (`JSON.stringify(value)`), so either side reads the other's entries. Every codec goes
/// through the core's [`TextCodec`]: one that does not write text ([`ValueCodec::is_text`]
/// false, e.g. the encryption layer's) is stored in its marked base64 form
/// ([`TEXT_MARKER`](tokencache_core::TEXT_MARKER) then standard base64).
///
/// [`Cache::all_keys`] returns the storage keys that start with the cache's prefix
/// ([`DEFAULT_PREFIX`] unless set with [`StorageCache::with_prefix`]), as auth0-spa-js does;
/// the prefix does not change the keys that `get`, `set` and `remove` use, nor the keys
/// [`Cache::keys_with_prefix`] lists (every storage key with the prefix asked for, so that a
/// manager with another key prefix finds its keys).
///
/// `get` keeps, per key, the last item it read or wrote and its decoded value (the *read
/// memo*, see [`StorageCache::with_read_memo`]): it still reads the item on every call, but
/// when the item is the same string as last time it returns the kept value instead of
/// copying the item into wasm memory and decoding it again, which is what makes a `get`
/// cost less than auth0-spa-js's `JSON.parse`.
///
/// Errors: storage the browser refuses (disabled by the user or a policy, no `window` as in
/// a worker) is [`ErrorKind::Unavailable`](tokencache_core::ErrorKind::Unavailable); a full
/// storage (`QuotaExceededError`) is
/// [`ErrorKind::QuotaExceeded`](tokencache_core::ErrorKind::QuotaExceeded) and the
/// previous value stays; an item that does not decode is a miss, but a marked item whose
/// base64 is damaged is [`ErrorKind::Integrity`](tokencache_core::ErrorKind::Integrity),
/// like any tampering.
///
/// ```no_run
/// # #[cfg(target_arch = "wasm32")]
/// # async fn example() -> tokencache_core::Result<()> {
/// use tokencache_core::{Cache, Cacheable, KeyManifestEntry};
/// use tokencache_web::SessionStorageCache;
///
/// let cache = SessionStorageCache::new()?.with_prefix("@@myapp@@");
/// let manifest = Cacheable::Manifest(KeyManifestEntry { keys: vec![] });
/// cache.set("@@myapp@@::client", manifest.clone()).await?;
/// assert_eq!(cache.get("@@myapp@@::client").await?, Some(manifest));
/// assert_eq!(cache.all_keys().await?, Some(vec!["@@myapp@@::client".to_owned()]));
/// # Ok(())
/// # }
/// ```
pub struct StorageCache<K: StorageKind> {
    storage: Storage,
    prefix: String,
    codec: TextCodec,
    memo: Option<Rc<Memo>>,
    kind: PhantomData<fn() -> K>,
}

impl<K: StorageKind> fmt::Debug for StorageCache<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageCache")
            .field("storage", &K::NAME)
            .field("prefix", &self.prefix)
            .field("codec", self.codec.inner())
            .field("read_memo", &self.memo.is_some())
            .finish()
    }
}

impl<K: StorageKind> Clone for StorageCache<K> {
    fn clone(&self) -> Self {
        StorageCache {
            storage: self.storage.clone(),
            prefix: self.prefix.clone(),
            codec: self.codec.clone(),
            memo: self.memo.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: StorageKind> StorageCache<K> {
    /// The cache over the page's storage area, with the default prefix and [`JsonCodec`].
    ///
    /// Fails with [`ErrorKind::Unavailable`](tokencache_core::ErrorKind::Unavailable) when
    /// there is no `window` (a worker) or the browser refuses the storage (disabled
    /// storage, a sandboxed or opaque origin).
    pub fn new() -> Result<Self> {
        let window = web_sys::window()
            .ok_or_else(|| Error::unavailable(format!("{}: no window in this context", K::NAME)))?;
        let storage = K::storage(&window)
            .map_err(|e| map_js_error::<K>("open", &e))?
            .ok_or_else(|| Error::unavailable(format!("{} is not available", K::NAME)))?;
        Ok(StorageCache {
            storage,
            prefix: DEFAULT_PREFIX.to_owned(),
            codec: TextCodec::new(Arc::new(JsonCodec)),
            memo: Some(Rc::default()),
            kind: PhantomData,
        })
    }

    /// Lists the keys that start with `prefix` instead of [`DEFAULT_PREFIX`].
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Stores values through `codec` (default [`JsonCodec`]), wrapped in [`TextCodec`]: a
    /// codec that does not write text is stored in marked base64.
    pub fn with_codec(mut self, codec: Arc<dyn ValueCodec>) -> Self {
        self.codec = TextCodec::new(codec);
        // Values decoded by the previous codec must not answer for the new one (a clone
        // may share the memo).
        if self.memo.is_some() {
            self.memo = Some(Rc::default());
        }
        self
    }

    /// Whether `get` keeps the decoded value of the last item it read or wrote at each key
    /// (default: yes), so that reading an unchanged item again costs one string comparison
    /// in JS instead of copying the item into wasm memory and decoding it. The stored item
    /// is read and compared on every `get`, so a write by another tab or by auth0-spa-js is
    /// always seen. Turn it off to hold no decoded values in memory between calls (with an
    /// encryption codec, the memo holds decrypted values). At most 256 keys are kept.
    pub fn with_read_memo(mut self, on: bool) -> Self {
        self.memo = on.then(Rc::default);
        self
    }

    /// The prefix of the keys [`Cache::all_keys`] returns.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Removes every item whose key starts with the prefix; other items stay.
    pub fn clear(&self) -> Result<()> {
        if let Some(memo) = &self.memo {
            memo.borrow_mut().clear();
        }
        for key in self.listed_keys()? {
            self.storage
                .remove_item(&key)
                .map_err(|e| map_js_error::<K>("remove", &e))?;
        }
        Ok(())
    }

    /// The stored keys with the prefix, in the order the browser lists them
    /// (`Object.keys(storage)`, as auth0-spa-js).
    fn listed_keys(&self) -> Result<Vec<String>> {
        Ok(self.keys_starting_with(&self.prefix))
    }

    /// The stored keys that start with `prefix`, in the order the browser lists them.
    fn keys_starting_with(&self, prefix: &str) -> Vec<String> {
        // One call for every key; `Storage::key(i)` would cross into JS once per key.
        let keys = js_sys::Object::keys(&self.storage);
        keys.iter()
            .filter_map(|k| k.as_string())
            .filter(|k| k.starts_with(prefix))
            .collect()
    }

    fn forget(&self, key: &str) {
        if let Some(memo) = &self.memo {
            memo.borrow_mut().remove(key);
        }
    }

    fn remember(&self, key: &str, item: JsString, value: Option<&Cacheable>) {
        let Some(memo) = &self.memo else { return };
        let mut memo = memo.borrow_mut();
        match value {
            Some(value) => {
                if memo.len() >= MEMO_CAPACITY && !memo.contains_key(key) {
                    memo.clear();
                }
                memo.insert(key.to_owned(), (item, value.clone()));
            }
            None => {
                memo.remove(key);
            }
        }
    }

    fn encode(&self, key: &str, value: &Cacheable) -> Result<String> {
        String::from_utf8(self.codec.encode(key, value)?)
            .map_err(|_| Error::serialization("a text codec wrote bytes that are not UTF-8"))
    }
}

/// The one mapping from a Web Storage exception to the tokencache error. Uses the
/// exception's name only: Chromium's messages quote the key.
fn map_js_error<K: StorageKind>(op: &'static str, e: &JsValue) -> Error {
    let name = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.name()))
        .or_else(|| {
            js_sys::Reflect::get(e, &JsValue::from_str("name"))
                .ok()
                .and_then(|n| n.as_string())
        })
        .unwrap_or_default();
    let message = format!("{} {op} failed: {name}", K::NAME);
    match name.as_str() {
        "QuotaExceededError" | "NS_ERROR_DOM_QUOTA_REACHED" => Error::quota_exceeded(message),
        "SecurityError" | "InvalidStateError" | "InvalidAccessError" => Error::unavailable(message),
        _ => Error::unexpected(message),
    }
}

#[async_trait(?Send)]
impl<K: StorageKind> Cache for StorageCache<K> {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        let item = get_item(&self.storage, key).map_err(|e| map_js_error::<K>("read", &e))?;
        let Some(item) = item else {
            self.forget(key);
            return Ok(None);
        };
        if let Some(memo) = &self.memo {
            if let Some((seen, value)) = memo.borrow().get(key) {
                if *seen == item {
                    return Ok(Some(value.clone()));
                }
            }
        }
        // The item changed (or is new to us): copy it into wasm memory and decode it. The
        // copy dominates this path (tests/bench.rs: about 3/4 of it for a 5 KB entry).
        let text = String::from(&item);
        match decode_or_miss(&self.codec, key, text.as_bytes()) {
            Ok(value) => {
                self.remember(key, item, value.as_ref());
                Ok(value)
            }
            Err(e) => {
                self.forget(key);
                Err(e)
            }
        }
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        let item = JsString::from(self.encode(key, &value)?);
        set_item(&self.storage, key, &item).map_err(|e| map_js_error::<K>("write", &e))?;
        self.remember(key, item, Some(&value));
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.forget(key);
        self.storage
            .remove_item(key)
            .map_err(|e| map_js_error::<K>("remove", &e))
    }

    async fn all_keys(&self) -> Result<Option<Vec<String>>> {
        self.listed_keys().map(Some)
    }

    /// Every storage key that starts with `prefix`, whatever the cache's own prefix.
    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Vec<String>>> {
        Ok(Some(self.keys_starting_with(prefix)))
    }

    fn lists_keys(&self) -> bool {
        true
    }
}
