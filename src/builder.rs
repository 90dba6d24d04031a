//! [`ManagerBuilder`]: a [`CacheManager`] over a built-in cache location or your own cache.

use std::fmt;
use std::sync::Arc;

use tokencache_core::{
    Cache, CacheManager, Clock, RefreshLock, RefreshPolicy, Result, SystemClock,
};

use crate::CacheLocation;

/// A builder of a [`CacheManager`]; see [`ManagerBuilder`].
pub fn builder() -> ManagerBuilder {
    ManagerBuilder::default()
}

/// Builds a [`CacheManager`] the way auth0-spa-js's client options do: over a built-in
/// cache chosen by [`CacheLocation`] (`cacheLocation`), or over your own [`Cache`]
/// (`cache`). When both are given, your cache wins and a warning is logged.
///
/// ```
/// # #[cfg(feature = "memory")]
/// # tokio_test_block_on(async {
/// use tokencache::CacheLocation;
///
/// let manager = tokencache::builder()
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
pub struct ManagerBuilder {
    location: Option<CacheLocation>,
    cache: Option<Arc<dyn Cache>>,
    client_id: Option<String>,
    prefix: Option<String>,
    clock: Option<Arc<dyn Clock>>,
    refresh_policy: Option<RefreshPolicy>,
    refresh_lock: Option<Arc<dyn RefreshLock>>,
}

impl fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("location", &self.location)
            .field("custom_cache", &self.cache.is_some())
            .field("client_id", &self.client_id)
            .field("prefix", &self.prefix)
            .field("refresh_policy", &self.refresh_policy)
            .field("custom_refresh_lock", &self.refresh_lock.is_some())
            .finish_non_exhaustive()
    }
}

impl ManagerBuilder {
    /// A builder with no cache chosen yet (the default location is used); the same as
    /// [`builder()`].
    pub fn new() -> Self {
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

    /// The key prefix (default [`DEFAULT_PREFIX`](crate::DEFAULT_PREFIX)).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The clock that decides expiry (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The timing of [`CacheManager::get_or_refresh`]'s refreshes (default:
    /// [`RefreshPolicy::default`]); `build` checks it. Set the provider's reuse interval
    /// here: see [`tokencache_core::refresh`] for how to size the lease against it.
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.refresh_policy = Some(policy);
        self
    }

    /// The lock refreshes run under (default: the cache's own, shared by every process,
    /// server or tab on the store; else one of this process).
    pub fn refresh_lock(mut self, lock: Arc<dyn RefreshLock>) -> Self {
        self.refresh_lock = Some(lock);
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
        if let Some(policy) = self.refresh_policy {
            b = b.refresh_policy(policy);
        }
        if let Some(lock) = self.refresh_lock {
            b = b.refresh_lock(lock);
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
        Err(tokencache_core::Error::config(
            "no cache given and no built-in cache enabled: enable a backend feature or pass a cache",
        ))
    }
}
