//! Redis backend of tokencache: [`RedisCache`], a token cache on redis-rs (tokio) for a
//! standalone server (one multiplexed, auto-reconnecting connection) or a Redis Cluster.
//!
//! - **Namespaces**: one Redis holds many independent caches, one per tenant or session,
//!   named at construction.
//! - **Listing without `KEYS`**: each namespace keeps a sorted-set index of its keys,
//!   updated atomically with the entries (Lua scripts), so listing costs what the namespace
//!   holds and prefix lookups use `ZRANGEBYLEX`. A manager over a `RedisCache` needs no
//!   key manifest.
//! - **Cluster-safe**: a namespace's keys share the hash tag `{namespace}`, and every Lua
//!   script declares each key it touches in `KEYS` (none is built inside a script).
//! - **Reads never write**: `get` is a `GET`; a listing is a `ZRANGEBYLEX` and a script
//!   flagged `no-writes`. Index members whose entry expired are skipped by listings and
//!   removed by the next `set`.
//! - **Native expiry**: token entries without a refresh token expire by Redis TTL when
//!   they stop being valid (plus a grace period); entries with one are kept for a
//!   configurable retention.
//! - **Any codec**: values are stored through a [`ValueCodec`](tokencache_core::ValueCodec)
//!   (default: the auth0-spa-js JSON), e.g. an encrypting one.
//! - **Many writers, one store**: [`Cache::update`](tokencache_core::Cache::update) is
//!   atomic per key across processes and servers (a compare-and-set script, retried), and
//!   [`RedisLock`] is the namespace's refresh lock: one lease key per lock name, epochs that
//!   grow, compare-and-release, and fenced updates that a former holder can no longer make.
//! - **Near cache** (optional, [`RedisCacheBuilder::near_cache`]): an in-process L1 bounded
//!   in bytes answers repeated `get`s from memory, kept consistent by Redis's
//!   server-assisted client-side caching (RESP3 `CLIENT TRACKING`, broadcast mode, on
//!   every master); emptied whenever tracking is lost.
//! - **Bounded and self-healing**: timeouts on connect and on every operation; a lost
//!   server gives temporary `Unavailable` errors until it is back.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tokencache_core::{CacheEntry, CacheKey, CacheManager, GetOptions};
//! use tokencache_redis::RedisCache;
//!
//! # async fn run() -> tokencache_core::Result<()> {
//! let cache = RedisCache::builder("tenant-42")
//!     .command_timeout(Duration::from_millis(500))
//!     .connect("redis://127.0.0.1:6379")
//!     .await?;
//! let manager = CacheManager::new(Arc::new(cache))?;
//! manager
//!     .set(CacheEntry::new("client", "https://api", "openid read", "at", 3600.0))
//!     .await?;
//! let found = manager
//!     .get(&CacheKey::new("client", Some("https://api"), Some("read")), GetOptions::default())
//!     .await?;
//! assert!(found.is_some());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cache;
mod conn;
mod error;
mod lease;
mod near;
mod scripts;
mod update;

pub use cache::{
    RedisCache, RedisCacheBuilder, DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_EXPIRY_GRACE,
};
pub use conn::RedisConnection;
pub use lease::RedisLock;
pub use near::NearCacheStats;
/// The redis-rs crate this backend is built on, for raw commands on
/// [`RedisCache::connection`].
pub use redis;

/// The examples of this crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
