//! Browser token caches for tokencache, on `wasm32-unknown-unknown`.
//!
//! - [`LocalStorageCache`] and [`SessionStorageCache`]: a [`Cache`](tokencache_core::Cache)
//!   over the page's Web Storage. Values are stored exactly as auth0-spa-js 2.x's own
//!   `LocalStorageCache` stores them (the JSON of the value, at the same key), so the two
//!   read each other's entries; `all_keys` returns the keys that start with the cache
//!   prefix (`@@auth0spajs@@` by default). Unavailable or disabled storage is an
//!   [`ErrorKind::Unavailable`](tokencache_core::ErrorKind::Unavailable) error, a full one an
//!   [`ErrorKind::QuotaExceeded`](tokencache_core::ErrorKind::QuotaExceeded) error (the
//!   previous value stays), and a stored value that is not a cache value is a miss.
//!   Any [`ValueCodec`](tokencache_core::ValueCodec) can be plugged in (the encryption
//!   layer's, say); a codec that does not write text is stored in the core's
//!   [`TextCodec`](tokencache_core::TextCodec) form (marked base64).
//!   [`Cache::update`](tokencache_core::Cache::update) is atomic: one synchronous turn,
//!   inside an exclusive Web Lock of the cache prefix for `localStorage`, which the
//!   origin's tabs share.
//! - [`WebLock`]: the caches' [`RefreshLock`](tokencache_core::RefreshLock) (what
//!   [`Cache::refresh_lock`](tokencache_core::Cache::refresh_lock) returns): a Web Lock
//!   (`navigator.locks`) held for each lease, and a lease record in the storage area (holder,
//!   epoch, expiry) that fenced updates are checked against. Without the Web Locks API, and
//!   for `sessionStorage`, the record alone.
//! - [`JsTokenCache`]: a JavaScript class whose `get`, `set`, `remove` and `allKeys`
//!   return Promises, so that any Rust cache can be given to auth0-spa-js's `Auth0Client`
//!   as its `cache` option.
//!
//! On every other target this crate is empty.
//!
//! # Tests
//!
//! `scripts/web-test.sh` installs what is missing (the wasm32 target, wasm-bindgen-cli at the
//! locked wasm-bindgen version, Debian's chromium and chromium-driver, and the npm package
//! @auth0/auth0-spa-js 2.28.3 with `npm ci` in `crates/tokencache-web/js`) and runs
//! `cargo test --target wasm32-unknown-unknown -p tokencache-web` in headless Chromium
//! (flags in `webdriver.json`); `scripts/web-test.sh --bench` also runs the benchmark in a
//! release build. The tests cover the stored JSON, errors, codecs and the read memo
//! (`tests/storage.rs`), atomic updates and the refresh lock, with a dedicated worker of the
//! origin holding Web Locks as another tab would (`tests/locks.rs`), the shared conformance
//! suite and model test (`tests/conformance.rs`),
//! interop with the real auth0-spa-js and a real `Auth0Client` over [`JsTokenCache`]
//! (`tests/auth0.rs`), and the benchmark against auth0-spa-js's `LocalStorageCache`
//! (`tests/bench.rs`).
//!
//! `scripts/tabs-test.sh` runs the three-tab test (`tests/tabs.rs`, with the page module
//! `examples/tabs.rs`): three tabs of one origin in headless Chromium, 20 concurrent
//! `CacheManager::get_or_refresh` calls in each, make one refresh call to a mock identity
//! provider; a lease holder closed mid-refresh hands the refresh on.
//!
//! auth0-spa-js is not vendored: its self-contained ES module build is imported at run time
//! by `tests/support/auth0.js` from `/js/node_modules/...`, which wasm-bindgen-test-runner's
//! server serves from the crate directory (the runner's working directory under cargo).
//!
//! ```no_run
//! # #[cfg(target_arch = "wasm32")]
//! # async fn example() -> tokencache_core::Result<()> {
//! use std::sync::Arc;
//! use tokencache_core::{CacheEntry, CacheKey, CacheManager, GetOptions};
//! use tokencache_web::LocalStorageCache;
//!
//! let cache = LocalStorageCache::new()?;
//! let manager = CacheManager::new(Arc::new(cache))?;
//! manager
//!     .set(CacheEntry::new("client", "https://api", "openid read", "at", 3600.0))
//!     .await?;
//! let key = CacheKey::new("client", Some("https://api"), Some("read"));
//! assert!(manager.get(&key, GetOptions::default()).await?.is_some());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// The core's API shares caches as `Arc<dyn Cache>` on every target; on wasm32 (one thread)
// browser values are neither `Send` nor `Sync`, which is what this lint objects to.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

#[cfg(target_arch = "wasm32")]
mod js_export;
#[cfg(target_arch = "wasm32")]
mod lease;
#[cfg(target_arch = "wasm32")]
mod locks;
#[cfg(target_arch = "wasm32")]
mod storage;

#[cfg(target_arch = "wasm32")]
pub use js_export::JsTokenCache;
#[cfg(target_arch = "wasm32")]
pub use lease::{WebLock, LEASE_KEY_PREFIX};
#[cfg(target_arch = "wasm32")]
pub use storage::{
    Local, LocalStorageCache, Session, SessionStorageCache, StorageCache, StorageKind,
};

/// The examples of this crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
