//! `localStorage` / `sessionStorage` caches.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use js_sys::JsString;
use tokencache_core::{
    async_trait, decode_or_miss, Cache, Cacheable, Error, Fence, JsonCodec, Keys, RefreshLock,
    Result, TextCodec, UpdateFn, Updated, ValueCodec, DEFAULT_PREFIX,
};
use wasm_bindgen::prelude::*;
use web_sys::Storage;

use crate::lease::{is_reserved, update_lock_name, WebLock, LEASE_KEY_PREFIX};
use crate::locks::{lock_manager, LockManager};

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

    /// Whether other tabs share the area (`localStorage`), so that updates and leases need
    /// Web Locks; `sessionStorage` belongs to one tab, whose single thread is enough.
    const SHARED_BY_TABS: bool;

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
    const SHARED_BY_TABS: bool = true;
    fn storage(window: &web_sys::Window) -> std::result::Result<Option<Storage>, JsValue> {
        window.local_storage()
    }
}

impl StorageKind for Session {
    const NAME: &'static str = "sessionStorage";
    const SHARED_BY_TABS: bool = false;
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
/// # Atomic updates and the refresh lock
///
/// [`Cache::update`] is atomic ([`Cache::atomic_updates`] is `true`): the item is read,
/// decoded, shown to the update function and written (or removed) in one synchronous turn
/// of the page's thread, with no `.await` in between, so nothing else in the tab writes in
/// between. A `localStorage` cache also runs that turn inside an exclusive Web Lock named
/// after its prefix ([`StorageCache::update_lock_name`]), so that updates of the origin's
/// other tabs (which share the storage) take turns with it; [`Cache::remove_prefix`]
/// removes every key under a prefix the same way. A fenced update checks, in the same
/// turn, that its fence still holds its lease (see [`WebLock`]), else writes nothing and
/// answers [`Updated::FenceLost`]. An item that fails authentication is an
/// [`ErrorKind::Integrity`](tokencache_core::ErrorKind::Integrity) error and nothing is
/// written; an item that is not a cache value is shown to the function as a miss, as
/// `get` returns it.
///
/// How soon one tab sees another tab's `localStorage` write is up to the browser, which
/// copies writes between tab processes in the background: the Web Lock orders the tabs'
/// turns, and the re-check of the value shown (what every manager update does) is the
/// last guard. Without the Web Locks API (old browsers, pages that are not a secure
/// context) the turn is atomic inside the tab only.
///
/// [`Cache::refresh_lock`] is a [`WebLock`]: a Web Lock per lease, and a lease record in
/// the storage area at a reserved key ([`LEASE_KEY_PREFIX`]) that listing, `clear` and
/// `remove_prefix` leave alone and that writes of cache values refuse.
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
/// assert_eq!(cache.all_keys().await?.unwrap(), ["@@myapp@@::client"]);
/// # Ok(())
/// # }
/// ```
pub struct StorageCache<K: StorageKind> {
    storage: Storage,
    prefix: String,
    codec: TextCodec,
    memo: Option<Rc<Memo>>,
    /// `navigator.locks` for a `localStorage` cache, when the browser has it.
    locks: Option<LockManager>,
    kind: PhantomData<fn() -> K>,
}

impl<K: StorageKind> fmt::Debug for StorageCache<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageCache")
            .field("storage", &K::NAME)
            .field("prefix", &self.prefix)
            .field("codec", self.codec.inner())
            .field("read_memo", &self.memo.is_some())
            .field("web_locks", &self.locks.is_some())
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
            locks: self.locks.clone(),
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
    ///
    /// A `localStorage` cache uses `navigator.locks` if the page has it at this moment
    /// (see [`StorageCache::uses_web_locks`]).
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
            locks: if K::SHARED_BY_TABS {
                lock_manager()
            } else {
                None
            },
            kind: PhantomData,
        })
    }

    /// Lists the keys that start with `prefix` instead of [`DEFAULT_PREFIX`]. The prefix
    /// also names the cache's Web Lock of updates and its lease records: caches that
    /// share keys across tabs should share the prefix too.
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

    /// Whether updates and leases use Web Locks shared by the origin's tabs: a
    /// `localStorage` cache made where `navigator.locks` exists. `false` for
    /// `sessionStorage` (one tab's storage) and without the Web Locks API.
    pub fn uses_web_locks(&self) -> bool {
        self.locks.is_some()
    }

    /// The name of the exclusive Web Lock that [`Cache::update`] and
    /// [`Cache::remove_prefix`] run under, or `None` when they use none
    /// ([`StorageCache::uses_web_locks`]). Another script of the origin that holds it
    /// keeps the cache's updates waiting.
    pub fn update_lock_name(&self) -> Option<String> {
        self.locks.as_ref().map(|_| update_lock_name(&self.prefix))
    }

    /// The cache's refresh lock (what [`Cache::refresh_lock`] returns), as its own type.
    pub fn web_lock(&self) -> WebLock {
        WebLock::new(
            self.storage.clone(),
            K::NAME,
            self.prefix.clone(),
            self.locks.clone(),
        )
    }

    /// Removes every item whose key starts with the prefix; other items, and the lease
    /// records of the refresh lock, stay.
    pub fn clear(&self) -> Result<()> {
        if let Some(memo) = &self.memo {
            memo.borrow_mut().clear();
        }
        for key in &self.listed_keys()? {
            self.storage
                .remove_item(key)
                .map_err(|e| map_js_error::<K>("remove", &e))?;
        }
        Ok(())
    }

    /// The stored keys with the prefix, in the order the browser lists them
    /// (`Object.keys(storage)`, as auth0-spa-js).
    fn listed_keys(&self) -> Result<Keys> {
        Ok(self.keys_starting_with(&self.prefix))
    }

    /// The stored keys that start with `prefix`, in the order the browser lists them, but
    /// never a lease record.
    fn keys_starting_with(&self, prefix: &str) -> Keys {
        // One call for every key; `Storage::key(i)` would cross into JS once per key.
        let keys = js_sys::Object::keys(&self.storage);
        keys.iter()
            .filter_map(|k| k.as_string())
            .filter(|k| k.starts_with(prefix) && !is_reserved(k))
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

    /// The value at `key`, read and decoded now (through the read memo).
    fn read_now(&self, key: &str) -> Result<Option<Cacheable>> {
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

    /// Stores `value` at `key` now.
    fn write_now(&self, key: &str, value: &Cacheable) -> Result<()> {
        let item = JsString::from(self.encode(key, value)?);
        set_item(&self.storage, key, &item).map_err(|e| map_js_error::<K>("write", &e))?;
        self.remember(key, item, Some(value));
        Ok(())
    }

    /// Removes `key` now.
    fn remove_now(&self, key: &str) -> Result<()> {
        self.forget(key);
        self.storage
            .remove_item(key)
            .map_err(|e| map_js_error::<K>("remove", &e))
    }

    /// The read-modify-write of [`Cache::update`], in one synchronous turn.
    fn update_now(&self, key: &str, fence: Option<&Fence>, mut f: UpdateFn) -> Result<Updated> {
        if let Some(fence) = fence {
            if !self.web_lock().holds_now(fence)? {
                tracing::debug!(
                    storage = K::NAME,
                    lock = %fence.lock,
                    epoch = fence.epoch,
                    "fenced update refused: the fence no longer holds its lease"
                );
                return Ok(Updated::FenceLost);
            }
        }
        let current = self.read_now(key)?;
        f(current.as_ref()).apply(current, |value| match value {
            Some(value) => self.write_now(key, value),
            None => self.remove_now(key),
        })
    }

    /// Removes every key under `prefix` (lease records excepted) in one synchronous turn.
    fn remove_prefix_now(&self, prefix: &str) -> Result<u64> {
        let keys = self.keys_starting_with(prefix);
        for key in &keys {
            self.remove_now(key)?;
        }
        Ok(keys.len() as u64)
    }

    /// Runs `op` in one synchronous turn, inside the exclusive Web Lock of the prefix when
    /// the cache uses Web Locks.
    async fn exclusive<T: 'static>(
        &self,
        op: impl FnOnce(&Self) -> Result<T> + 'static,
    ) -> Result<T> {
        match &self.locks {
            None => op(self),
            Some(locks) => {
                let this = self.clone();
                locks
                    .run_exclusive(&update_lock_name(&self.prefix), move || op(&this))
                    .await?
            }
        }
    }
}

/// Refuses a write of a cache value to a key reserved for lease records.
fn writable(key: &str) -> Result<()> {
    if is_reserved(key) {
        return Err(Error::invalid_key(format!(
            "keys that start with {LEASE_KEY_PREFIX} are reserved for lease records"
        )));
    }
    Ok(())
}

/// [`js_error`] for the storage area `K`.
fn map_js_error<K: StorageKind>(op: &'static str, e: &JsValue) -> Error {
    js_error(K::NAME, op, e)
}

/// The one mapping from a Web Storage exception to the tokencache error. Uses the
/// exception's name only: Chromium's messages quote the key.
pub(crate) fn js_error(area: &'static str, op: &'static str, e: &JsValue) -> Error {
    let name = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.name()))
        .or_else(|| {
            js_sys::Reflect::get(e, &JsValue::from_str("name"))
                .ok()
                .and_then(|n| n.as_string())
        })
        .unwrap_or_default();
    let message = format!("{area} {op} failed: {name}");
    match name.as_str() {
        "QuotaExceededError" | "NS_ERROR_DOM_QUOTA_REACHED" => Error::quota_exceeded(message),
        "SecurityError" | "InvalidStateError" | "InvalidAccessError" => Error::unavailable(message),
        _ => Error::unexpected(message),
    }
}

#[async_trait(?Send)]
impl<K: StorageKind> Cache for StorageCache<K> {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        self.read_now(key)
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        writable(key)?;
        self.write_now(key, &value)
    }

    async fn remove(&self, key: &str) -> Result<()> {
        writable(key)?;
        self.remove_now(key)
    }

    async fn all_keys(&self) -> Result<Option<Keys>> {
        self.listed_keys().map(Some)
    }

    /// Every storage key that starts with `prefix`, whatever the cache's own prefix.
    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Keys>> {
        Ok(Some(self.keys_starting_with(prefix)))
    }

    fn lists_keys(&self) -> bool {
        true
    }

    /// Atomic: read, decode, `f`, write in one synchronous turn, inside the Web Lock of
    /// the prefix for `localStorage` (see the type's docs). `f` runs once, or not at all
    /// when the future is dropped before its turn came.
    async fn update(&self, key: &str, fence: Option<&Fence>, f: UpdateFn) -> Result<Updated> {
        writable(key)?;
        let (key, fence) = (key.to_owned(), fence.cloned());
        self.exclusive(move |cache| cache.update_now(&key, fence.as_ref(), f))
            .await
    }

    fn atomic_updates(&self) -> bool {
        true
    }

    /// Removes every key under `prefix` in one synchronous turn (inside the Web Lock of
    /// the cache prefix for `localStorage`); lease records stay.
    async fn remove_prefix(&self, prefix: &str) -> Result<Option<u64>> {
        let prefix = prefix.to_owned();
        self.exclusive(move |cache| cache.remove_prefix_now(&prefix))
            .await
            .map(Some)
    }

    /// The cache's [`WebLock`].
    fn refresh_lock(&self) -> Option<Arc<dyn RefreshLock>> {
        Some(Arc::new(self.web_lock()))
    }
}
