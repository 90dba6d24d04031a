//! [`MemoryCache`]: tokencache's in-memory token cache, the embedded default, as
//! auth0-spa-js's default in-memory cache.
//!
//! - On native targets it is a [moka](https://docs.rs/moka) cache (its sync cache, called
//!   directly: no moka future per call), read through a lock-free map of moka's entries
//!   ([papaya](https://docs.rs/papaya)), so exact hits from several threads scale; on
//!   `wasm32`, where moka panics in the browser, the same type sits on a small map of its
//!   own, so a Rust single-page app gets the same cache.
//! - Values are kept as [`Cacheable`](tokencache_core::Cacheable)s: a read clones the
//!   value, with no JSON on read or write.
//! - It lists its keys ([`Cache::lists_keys`](tokencache_core::Cache::lists_keys) is
//!   `true`) from an ordered index, so a lookup by prefix touches only the keys with that
//!   prefix, whatever else is stored.
//! - It is bounded by an estimate of the bytes it holds
//!   ([`MemoryCacheBuilder::max_capacity_bytes`], 64 MiB by default). An entry larger than
//!   the whole capacity is an [`ErrorKind::QuotaExceeded`](tokencache_core::ErrorKind::QuotaExceeded)
//!   error and leaves the previous value in place.
//! - Values expire physically by the core's one policy, [`Retention`]: a token entry once
//!   the manager would see it expired, never before; an entry that holds a refresh token
//!   [`MemoryCacheBuilder::refresh_token_retention`] later (by default: never).
//!
//! ```
//! # #[cfg(not(target_arch = "wasm32"))]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use tokencache_core::{CacheEntry, CacheKey, CacheManager, GetOptions};
//! use tokencache_memory::MemoryCache;
//!
//! let manager = CacheManager::new(Arc::new(MemoryCache::new()))?;
//! manager
//!     .set(CacheEntry::new("app", "https://api", "openid read write", "at", 3600.0))
//!     .await?;
//! let key = CacheKey::new("app", Some("https://api"), Some("read"));
//! let body = manager.get(&key, GetOptions::default()).await?.unwrap();
//! assert_eq!(body.access_token.as_deref(), Some("at"));
//! # Ok::<(), tokencache_core::Error>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::sync::Arc;

use tokencache_core::{Clock, Retention, SystemClock};

#[cfg(any(target_arch = "wasm32", test))]
mod map;
#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(target_arch = "wasm32")]
mod wasm;
mod weight;

#[cfg(not(target_arch = "wasm32"))]
pub use native::MemoryCache;
#[cfg(target_arch = "wasm32")]
pub use wasm::MemoryCache;

/// The default capacity: 64 MiB, some 15,000 entries of three 1 KB tokens.
pub const DEFAULT_MAX_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

/// Builds a [`MemoryCache`].
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tokencache_core::{Cache, ManualClock, Retention};
/// use tokencache_memory::MemoryCache;
///
/// let cache = MemoryCache::builder()
///     .max_capacity_bytes(8 * 1024 * 1024)
///     .refresh_token_retention(Retention::after(Duration::from_secs(30 * 24 * 3600)))
///     .clock(Arc::new(ManualClock::new(1_700_000_000_000)))
///     .build();
/// assert!(cache.lists_keys());
/// ```
#[derive(Clone)]
pub struct MemoryCacheBuilder {
    max_capacity_bytes: u64,
    refresh_token_retention: Retention,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for MemoryCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCacheBuilder")
            .field("max_capacity_bytes", &self.max_capacity_bytes)
            .field("refresh_token_retention", &self.refresh_token_retention)
            .field("clock", &self.clock)
            .finish()
    }
}

impl Default for MemoryCacheBuilder {
    fn default() -> Self {
        MemoryCacheBuilder {
            max_capacity_bytes: DEFAULT_MAX_CAPACITY_BYTES,
            refresh_token_retention: Retention::NEVER,
            clock: Arc::new(SystemClock),
        }
    }
}

impl MemoryCache {
    /// A cache with the defaults of [`MemoryCacheBuilder`].
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for a cache.
    pub fn builder() -> MemoryCacheBuilder {
        MemoryCacheBuilder::default()
    }
}

impl MemoryCacheBuilder {
    /// The most bytes the cache holds, by the estimate of each entry's heap bytes (its key,
    /// its strings, JSON maps by node slot, and a fixed bookkeeping overhead per entry).
    /// Default: [`DEFAULT_MAX_CAPACITY_BYTES`].
    ///
    /// Past it, the least recently used entries are evicted. On native targets that is
    /// moka's LRU policy, whatever the entry holds, so size the capacity for the refresh
    /// tokens you keep; on wasm32 an entry that holds an unexpired refresh token is never
    /// evicted for room, and a write that would need it fails with
    /// [`ErrorKind::QuotaExceeded`](tokencache_core::ErrorKind::QuotaExceeded). A single
    /// entry larger than the capacity is always that error.
    pub fn max_capacity_bytes(mut self, bytes: u64) -> Self {
        self.max_capacity_bytes = bytes;
        self
    }

    /// How long an entry that holds a refresh token is kept after its access token
    /// expired. [`Retention::NEVER`] (the default): it is never dropped by time, since the
    /// refresh token is what keeps the user signed in.
    pub fn refresh_token_retention(mut self, retention: Retention) -> Self {
        self.refresh_token_retention = retention;
        self
    }

    /// The clock that turns an entry's `expiresAt` into a lifetime (default:
    /// [`SystemClock`]). Give the manager's clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The cache.
    pub fn build(self) -> MemoryCache {
        MemoryCache::from_builder(self)
    }
}

/// The examples of this crate's README.md, compiled and run as doctests (native targets:
/// the example runs on tokio).
#[cfg(all(doctest, not(target_arch = "wasm32")))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
