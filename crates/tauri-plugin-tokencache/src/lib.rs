//! A [Tauri v2](https://v2.tauri.app) plugin that keeps the token cache of
//! [auth0-spa-js](https://github.com/auth0/auth0-spa-js), running in the app's webview, in
//! native storage: by default an encrypted SQLite file in the app's data directory, or any
//! [`Cache`] the app passes.
//!
//! The plugin serves the tokencache bridge protocol (crate `tokencache-bridge`,
//! `docs/bridge-protocol.md` of the repository) as two commands:
//!
//! - `plugin:tokencache|request` takes `{ request }`, one bridge request object, and
//!   returns the bridge response object; every failure (a malformed request, a key outside
//!   the prefix, a value that is not a cache value, a wrong key) is a typed error response;
//! - `plugin:tokencache|lists_keys` returns whether `allKeys` is answered.
//!
//! The `tokencache:default` permission grants both. On the webview side,
//! `createBridgeCache(tauriTransport(invoke))` from the JavaScript package
//! `@tokencache/bridge` is the object to pass as auth0-spa-js's `cache` option.
//!
//! The app's Rust code reaches the same store through [`TokenCacheExt::tokencache`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod commands;
mod key;

use std::fmt;
use std::sync::Arc;

use tauri::{Manager, Runtime};
use tokencache_bridge::BridgeHandler;
use tokencache_core::Cache;

pub use builder::{init, Builder, DEFAULT_FILE_NAME, DEFAULT_NAMESPACE, PLUGIN_NAME};
pub use key::{KeySource, DEFAULT_KEY_ID};

/// The plugin's state: the store and the bridge handler serving the webview.
pub struct TokenCache {
    cache: Arc<dyn Cache>,
    handler: BridgeHandler,
}

impl TokenCache {
    /// The store the webview's tokens are kept in, for the app's Rust code (a
    /// `tokencache_core::CacheManager` over it reads them with auth0-spa-js's rules).
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// The handler answering `plugin:tokencache|request`.
    pub fn handler(&self) -> &BridgeHandler {
        &self.handler
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("handler", &self.handler)
            .finish_non_exhaustive()
    }
}

/// Access to the plugin's [`TokenCache`] from an `App`, `AppHandle`, window or webview.
///
/// ```no_run
/// use tauri::Manager;
/// use tauri_plugin_tokencache::TokenCacheExt;
///
/// async fn signed_in<R: tauri::Runtime>(app: &tauri::AppHandle<R>) -> bool {
///     let keys = app.tokencache().cache().keys_with_prefix("@@auth0spajs@@::").await;
///     matches!(keys, Ok(Some(keys)) if !keys.is_empty())
/// }
/// ```
pub trait TokenCacheExt<R: Runtime> {
    /// The plugin's state. Panics when the plugin is not registered.
    fn tokencache(&self) -> &TokenCache;
}

impl<R: Runtime, T: Manager<R>> TokenCacheExt<R> for T {
    fn tokencache(&self) -> &TokenCache {
        self.state::<TokenCache>().inner()
    }
}

/// The examples of this crate's README.md, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
