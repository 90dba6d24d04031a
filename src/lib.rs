#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// On wasm32 (one thread) caches are shared as `Arc<dyn Cache>` though browser values are
// neither `Send` nor `Sync`: the core decides the wasm story once, for every target.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

use std::fmt;
use std::sync::Arc;

pub use tokencache_core::*;

#[cfg(feature = "crypto")]
pub use tokencache_crypto as crypto;
#[cfg(feature = "memory")]
pub use tokencache_memory as memory;
#[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
pub use tokencache_redis as redis;
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
pub use tokencache_sqlite as sqlite;
#[cfg(feature = "web")]
pub use tokencache_web as web;

/// Where a built-in cache keeps the tokens: auth0-spa-js's `cacheLocation`.
///
/// Each variant exists when its backend feature is on (and, for browser storage, on
/// wasm32; for SQLite and Redis, on native targets).
#[derive(Clone)]
#[non_exhaustive]
pub enum CacheLocation {
    /// In this process's memory ([`memory::MemoryCache`]): the default, as in auth0-spa-js.
    #[cfg(feature = "memory")]
    Memory,
    /// The page's `localStorage` (`web::LocalStorageCache`).
    #[cfg(all(feature = "web", target_arch = "wasm32"))]
    LocalStorage,
    /// The page's `sessionStorage` (`web::SessionStorageCache`).
    #[cfg(all(feature = "web", target_arch = "wasm32"))]
    SessionStorage,
    /// An SQLite file whose values go through `codec` (an
    /// [`crypto::EncryptedCodec`] in any real use).
    #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
    Sqlite {
        /// The database file (created when missing).
        path: std::path::PathBuf,
        /// The value codec.
        codec: Arc<dyn ValueCodec>,
    },
    /// One namespace of a standalone Redis server.
    #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
    Redis {
        /// `redis://[:password@]host:port[/db]`.
        url: String,
        /// The namespace (tenant, session) of this cache.
        namespace: String,
        /// The value codec (`None`: the auth0-spa-js JSON).
        codec: Option<Arc<dyn ValueCodec>>,
    },
}

impl fmt::Debug for CacheLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "memory")]
            CacheLocation::Memory => f.write_str("Memory"),
            #[cfg(all(feature = "web", target_arch = "wasm32"))]
            CacheLocation::LocalStorage => f.write_str("LocalStorage"),
            #[cfg(all(feature = "web", target_arch = "wasm32"))]
            CacheLocation::SessionStorage => f.write_str("SessionStorage"),
            #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
            CacheLocation::Sqlite { path, codec } => f
                .debug_struct("Sqlite")
                .field("path", path)
                .field("codec", codec)
                .finish(),
            #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
            CacheLocation::Redis {
                namespace, codec, ..
            } => f
                .debug_struct("Redis")
                .field("url", &"<redacted>")
                .field("namespace", namespace)
                .field("codec", codec)
                .finish(),
        }
    }
}

impl CacheLocation {
    /// Opens the built-in cache at this location. Caches with physical expiry take their
    /// time from `clock`, which must be the manager's.
    pub async fn open(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
        let _ = &clock;
        match self {
            #[cfg(feature = "memory")]
            CacheLocation::Memory => Ok(Arc::new(
                memory::MemoryCache::builder().clock(clock).build(),
            )),
            #[cfg(all(feature = "web", target_arch = "wasm32"))]
            CacheLocation::LocalStorage => Ok(Arc::new(web::LocalStorageCache::new()?)),
            #[cfg(all(feature = "web", target_arch = "wasm32"))]
            CacheLocation::SessionStorage => Ok(Arc::new(web::SessionStorageCache::new()?)),
            #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
            CacheLocation::Sqlite { path, codec } => Ok(Arc::new(
                sqlite::SqliteCache::builder(path)
                    .codec(codec.clone())
                    .clock(clock)
                    .build()
                    .await?,
            )),
            #[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
            CacheLocation::Redis {
                url,
                namespace,
                codec,
            } => {
                let mut b = redis::RedisCache::builder(namespace.as_str()).clock(clock);
                if let Some(codec) = codec {
                    b = b.codec(codec.clone());
                }
                Ok(Arc::new(b.connect(url).await?))
            }
        }
    }
}

/// Builds a [`CacheManager`] the way auth0-spa-js's client options do: a built-in cache
/// chosen by [`CacheLocation`] (`cacheLocation`), or your own [`Cache`] (`cache`). When
/// both are given, your cache wins and a warning is logged.
///
/// ```
/// # #[cfg(feature = "memory")]
/// # tokio_test_block_on(async {
/// use tokencache::{CacheLocation, TokenCache};
///
/// let manager = TokenCache::builder()
///     .client_id("my-app")
///     .cache_location(CacheLocation::Memory)
///     .build()
///     .await?;
/// assert_eq!(manager.prefix(), "@@auth0spajs@@");
/// # Ok::<(), tokencache::Error>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Default)]
pub struct TokenCache {
    location: Option<CacheLocation>,
    cache: Option<Arc<dyn Cache>>,
    client_id: Option<String>,
    prefix: Option<String>,
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("location", &self.location)
            .field("custom_cache", &self.cache.is_some())
            .field("client_id", &self.client_id)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A builder with no cache chosen yet (the default location is used).
    pub fn builder() -> Self {
        Self::default()
    }

    /// Picks a built-in cache (auth0-spa-js's `cacheLocation`).
    pub fn cache_location(mut self, location: CacheLocation) -> Self {
        self.location = Some(location);
        self
    }

    /// Uses your own cache (auth0-spa-js's `cache`). It wins over a location.
    pub fn cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The client id: the manifest is kept under it for caches that cannot list keys.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The key prefix (default [`DEFAULT_PREFIX`]).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The clock that decides expiry (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The cache this builder would use: yours, else the location's, else the default
    /// location's.
    pub async fn open_cache(&self) -> Result<Arc<dyn Cache>> {
        match (&self.cache, &self.location) {
            (Some(cache), Some(location)) => {
                tracing::warn!(
                    ?location,
                    "both a cache and a cache location were given; the cache wins and the location is ignored"
                );
                Ok(cache.clone())
            }
            (Some(cache), None) => Ok(cache.clone()),
            (None, Some(location)) => location.open(self.effective_clock()).await,
            (None, None) => default_location()?.open(self.effective_clock()).await,
        }
    }

    fn effective_clock(&self) -> Arc<dyn Clock> {
        self.clock.clone().unwrap_or_else(|| Arc::new(SystemClock))
    }

    /// The manager over the chosen cache.
    pub async fn build(self) -> Result<CacheManager> {
        let cache = self.open_cache().await?;
        let mut b = CacheManager::builder(cache).clock(self.effective_clock());
        if let Some(c) = self.client_id {
            b = b.client_id(c);
        }
        if let Some(p) = self.prefix {
            b = b.prefix(p);
        }
        b.build()
    }
}

fn default_location() -> Result<CacheLocation> {
    #[cfg(feature = "memory")]
    {
        Ok(CacheLocation::Memory)
    }
    #[cfg(not(feature = "memory"))]
    {
        Err(Error::config(
            "no cache given and no built-in cache enabled: enable a backend feature or pass a cache",
        ))
    }
}
