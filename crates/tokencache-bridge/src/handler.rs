//! [`BridgeHandler`]: serves bridge requests from any [`Cache`].

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use tokencache_core::{
    Cache, Cacheable, Error, ErrorKind, Keys, Result, DEFAULT_PREFIX, SEPARATOR,
};

use crate::protocol::{BridgeError, Op, Request, RequestId, Response, ResponseValue};

/// Default largest value a `set` may store: 64 KiB of JSON.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 64 * 1024;
/// Default largest number of keys under the prefix.
pub const DEFAULT_MAX_KEYS: usize = 1_000;
/// Default longest key, in bytes.
pub const DEFAULT_MAX_KEY_BYTES: usize = 2_048;
/// Bytes a request may hold beyond its key and value (id, op, field names, whitespace).
const REQUEST_OVERHEAD: usize = 4_096;

/// Answers bridge [`Request`]s from a [`Cache`], confined to the keys under one prefix.
///
/// - Only keys `<prefix>::<anything>` are served; others get an `invalid_key` error.
/// - A `set` value must decode as a cache value (a token entry, a key manifest or an ID
///   token entry) and be at most [`max_value_bytes`](BridgeHandlerBuilder::max_value_bytes)
///   of JSON; a `set` of a new key when [`max_keys`](BridgeHandlerBuilder::max_keys) keys
///   exist is `quota_exceeded`. A refused `set` changes nothing.
/// - `allKeys` lists the keys under the prefix if the cache can list keys, and is
///   `unsupported` otherwise (auth0-spa-js then keeps its own key manifest).
/// - Error messages never hold a token, a value or a key.
///
/// ```
/// use std::sync::Arc;
/// use tokencache_bridge::BridgeHandler;
/// use tokencache_memory::MemoryCache;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let handler = BridgeHandler::new(Arc::new(MemoryCache::new()));
/// let key = "@@auth0spajs@@::app::https://api::openid read";
/// let set = format!(r#"{{"id":1,"op":"set","key":"{key}","value":{{"body":{{"access_token":"at"}},"expiresAt":2000000000}}}}"#);
/// assert_eq!(handler.handle_json(&set).await, r#"{"id":1,"ok":true}"#);
/// let get = format!(r#"{{"id":2,"op":"get","key":"{key}"}}"#);
/// assert_eq!(
///     handler.handle_json(&get).await,
///     r#"{"id":2,"ok":true,"value":{"body":{"access_token":"at"},"expiresAt":2000000000}}"#
/// );
/// let outside = handler.handle_json(r#"{"id":3,"op":"get","key":"other-app-secret"}"#).await;
/// assert!(outside.starts_with(r#"{"id":3,"ok":false,"error":{"kind":"invalid_key""#));
/// # });
/// ```
pub struct BridgeHandler {
    cache: Arc<dyn Cache>,
    prefix: String,
    /// `prefix` followed by the separator: every served key starts with it.
    scope: String,
    max_value_bytes: usize,
    max_keys: usize,
    max_key_bytes: usize,
    /// Serializes `set`s, so that the key count is checked and changed in one step.
    write_lock: async_lock::Mutex<()>,
    /// For caches that cannot list keys: the keys seen through this handler.
    seen: Option<Mutex<HashSet<String>>>,
}

impl fmt::Debug for BridgeHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeHandler")
            .field("prefix", &self.prefix)
            .field("lists_keys", &self.lists_keys())
            .field("max_value_bytes", &self.max_value_bytes)
            .field("max_keys", &self.max_keys)
            .field("max_key_bytes", &self.max_key_bytes)
            .finish_non_exhaustive()
    }
}

/// Builds a [`BridgeHandler`]; see [`BridgeHandler::builder`].
#[derive(Clone)]
pub struct BridgeHandlerBuilder {
    cache: Arc<dyn Cache>,
    prefix: String,
    max_value_bytes: usize,
    max_keys: usize,
    max_key_bytes: usize,
}

impl fmt::Debug for BridgeHandlerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeHandlerBuilder")
            .field("prefix", &self.prefix)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("max_keys", &self.max_keys)
            .field("max_key_bytes", &self.max_key_bytes)
            .finish_non_exhaustive()
    }
}

impl BridgeHandlerBuilder {
    /// The key prefix served (default `@@auth0spajs@@`, auth0-spa-js's). Keys must start
    /// with the prefix followed by `::`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The largest value a `set` may store, in bytes of JSON (default 64 KiB).
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// The largest number of keys under the prefix (default 1,000).
    pub fn max_keys(mut self, keys: usize) -> Self {
        self.max_keys = keys;
        self
    }

    /// The longest key, in bytes (default 2,048).
    pub fn max_key_bytes(mut self, bytes: usize) -> Self {
        self.max_key_bytes = bytes;
        self
    }

    /// The handler; a `config` error for an empty prefix, a prefix holding `::`, or a
    /// zero limit.
    pub fn build(self) -> Result<BridgeHandler> {
        if self.prefix.is_empty() || self.prefix.contains(SEPARATOR) {
            return Err(Error::config(
                "the bridge prefix must be non-empty and must not contain '::'",
            ));
        }
        if self.max_value_bytes == 0 || self.max_keys == 0 || self.max_key_bytes == 0 {
            return Err(Error::config("bridge limits must be greater than zero"));
        }
        Ok(self.assemble())
    }

    fn assemble(self) -> BridgeHandler {
        let seen = (!self.cache.lists_keys()).then(|| Mutex::new(HashSet::new()));
        BridgeHandler {
            scope: format!("{}{SEPARATOR}", self.prefix),
            prefix: self.prefix,
            cache: self.cache,
            max_value_bytes: self.max_value_bytes,
            max_keys: self.max_keys,
            max_key_bytes: self.max_key_bytes,
            write_lock: async_lock::Mutex::new(()),
            seen,
        }
    }
}

impl BridgeHandler {
    /// A handler over `cache` with the default prefix and limits.
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        Self::builder(cache).assemble()
    }

    /// A builder over `cache` for another prefix or other limits.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tokencache_bridge::BridgeHandler;
    /// use tokencache_memory::MemoryCache;
    ///
    /// let handler = BridgeHandler::builder(Arc::new(MemoryCache::new()))
    ///     .prefix("@@myapp@@")
    ///     .max_value_bytes(16 * 1024)
    ///     .max_keys(100)
    ///     .build()?;
    /// assert_eq!(handler.prefix(), "@@myapp@@");
    /// assert!(BridgeHandler::builder(Arc::new(MemoryCache::new())).prefix("").build().is_err());
    /// # Ok::<(), tokencache_core::Error>(())
    /// ```
    pub fn builder(cache: Arc<dyn Cache>) -> BridgeHandlerBuilder {
        BridgeHandlerBuilder {
            cache,
            prefix: DEFAULT_PREFIX.to_owned(),
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_keys: DEFAULT_MAX_KEYS,
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
        }
    }

    /// The prefix served.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether `allKeys` is answered. A transport tells the JavaScript side up front, so
    /// that the cache object it gives auth0-spa-js has an `allKeys` method only then.
    pub fn lists_keys(&self) -> bool {
        self.cache.lists_keys()
    }

    /// The longest request text [`BridgeHandler::handle_json`] parses: the value and key
    /// limits plus 4 KiB for the rest of the message.
    pub fn max_request_bytes(&self) -> usize {
        self.max_value_bytes
            .saturating_add(self.max_key_bytes)
            .saturating_add(REQUEST_OVERHEAD)
    }

    /// Answers one request. Never panics; every failure is an error response.
    pub async fn handle(&self, req: Request) -> Response {
        let op = req.op;
        let id = req.id.clone();
        let result = self.dispatch(req).await;
        match &result {
            Ok(_) => tracing::trace!(op = op.as_str(), "bridge request served"),
            Err(e) => tracing::debug!(op = op.as_str(), kind = ?e.kind(), "bridge request refused"),
        }
        Response {
            id,
            result: result.map_err(BridgeError::from),
        }
    }

    /// Answers one request given as JSON text, with JSON text. Malformed JSON or a request
    /// that does not follow the protocol is a `serialization` error response (with the
    /// request's `id` when it can be read), never a panic.
    pub async fn handle_json(&self, text: &str) -> String {
        if text.len() > self.max_request_bytes() {
            let e = Error::quota_exceeded("the request is larger than the bridge accepts");
            return Response::error(None, e.into()).to_json();
        }
        match serde_json::from_str::<Request>(text) {
            Ok(req) => self.handle(req).await.to_json(),
            Err(e) => {
                #[derive(Deserialize)]
                struct IdOnly {
                    #[serde(default)]
                    id: Option<RequestId>,
                }
                let id = serde_json::from_str::<IdOnly>(text).ok().and_then(|r| r.id);
                // Only the position and category: serde's messages can quote the input.
                let e = Error::serialization(format!(
                    "the request is not a bridge request (line {}, column {}, {:?})",
                    e.line(),
                    e.column(),
                    e.classify()
                ));
                tracing::debug!(error = %e, "bridge request refused");
                Response::error(id, e.into()).to_json()
            }
        }
    }

    async fn dispatch(&self, req: Request) -> Result<Option<ResponseValue>> {
        match req.op {
            Op::Get => {
                let key = self.key(req.key.as_deref())?;
                let value = self.cache.get(key).await?;
                if value.is_some() {
                    self.remember(key);
                }
                Ok(value.map(ResponseValue::Value))
            }
            Op::Set => {
                let key = self.key(req.key.as_deref())?;
                let value = self.value(req.value)?;
                self.set(key, value).await?;
                Ok(None)
            }
            Op::Remove => {
                let key = self.key(req.key.as_deref())?;
                self.cache.remove(key).await?;
                if let Some(seen) = &self.seen {
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(key);
                }
                Ok(None)
            }
            Op::AllKeys => self
                .listed()
                .await
                .map(|keys| Some(ResponseValue::Keys(keys.to_strings()))),
            Op::Unknown => Err(Error::unsupported(
                "unknown op: expected get, set, remove or allKeys",
            )),
        }
    }

    /// The key of a request, if it is served.
    fn key<'a>(&self, key: Option<&'a str>) -> Result<&'a str> {
        let key = key.ok_or_else(|| Error::invalid_key("the request has no key"))?;
        if key.len() > self.max_key_bytes {
            return Err(Error::invalid_key(
                "the key is longer than the bridge accepts",
            ));
        }
        if key.len() <= self.scope.len() || !key.starts_with(&self.scope) {
            return Err(Error::invalid_key(
                "the key is not under the bridge's prefix",
            ));
        }
        Ok(key)
    }

    /// The value of a `set`, if it is a cache value within the size limit.
    fn value(&self, value: Option<serde_json::Value>) -> Result<Cacheable> {
        let value = value.ok_or_else(|| Error::serialization("a set request needs a value"))?;
        let bytes = serde_json::to_vec(&value).map_err(|e| {
            Error::serialization(format!("cannot encode the value: {:?}", e.classify()))
        })?;
        if bytes.len() > self.max_value_bytes {
            return Err(Error::quota_exceeded(format!(
                "the value is larger than the bridge's limit of {} bytes",
                self.max_value_bytes
            )));
        }
        // The core's decoding: the same rules (and secret-free messages) as every backend.
        Cacheable::from_json(&bytes)
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        let is_new = match &self.seen {
            None => {
                let keys = self.listed().await?;
                let is_new = !keys.iter().any(|k| k == key);
                if is_new && keys.len() >= self.max_keys {
                    return Err(self.too_many_keys());
                }
                is_new
            }
            Some(seen) => {
                let seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                let is_new = !seen.contains(key);
                if is_new && seen.len() >= self.max_keys {
                    return Err(self.too_many_keys());
                }
                is_new
            }
        };
        self.cache.set(key, value).await?;
        if is_new {
            self.remember(key);
        }
        Ok(())
    }

    fn too_many_keys(&self) -> Error {
        Error::quota_exceeded(format!(
            "the bridge holds its limit of {} keys; remove one first",
            self.max_keys
        ))
    }

    /// Records a key seen through the handler, for caches that cannot list keys.
    fn remember(&self, key: &str) {
        if let Some(seen) = &self.seen {
            let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
            if !seen.contains(key) {
                seen.insert(key.to_owned());
            }
        }
    }

    /// The keys under the prefix, or `unsupported` when the cache cannot list keys.
    async fn listed(&self) -> Result<Keys> {
        let unsupported = || {
            Error::new(
                ErrorKind::Unsupported,
                "this cache cannot list its keys: keep a key manifest (auth0-spa-js does when the cache has no allKeys)",
            )
        };
        if !self.cache.lists_keys() {
            return Err(unsupported());
        }
        self.cache
            .keys_with_prefix(&self.scope)
            .await?
            .ok_or_else(unsupported)
    }
}
