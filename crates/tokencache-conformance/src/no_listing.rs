//! [`NoListing`]: any cache, seen as one that cannot list its keys (manifest mode).

use std::sync::Arc;

use tokencache_core::{
    async_trait, Cache, Cacheable, Fence, Keys, RefreshLock, Result, UpdateFn, Updated,
};

/// Wraps any [`Cache`] and hides its listing: [`Cache::all_keys`] and
/// [`Cache::keys_with_prefix`] return `None` and [`Cache::lists_keys`] is `false`, so a
/// [`CacheManager`](tokencache_core::CacheManager) over it keeps a key manifest.
///
/// `get`, `set`, `remove`, `update` and `atomic_updates` are forwarded unchanged.
///
/// ```
/// use std::sync::Arc;
/// use tokencache_conformance::{MapCache, NoListing};
/// use tokencache_core::{Cache, CacheManager};
///
/// let cache: Arc<dyn Cache> = Arc::new(NoListing(MapCache::new()));
/// assert!(!cache.lists_keys());
/// // Without a client id for the manifest, a manager cannot be built over it.
/// assert!(CacheManager::new(cache.clone()).is_err());
/// assert!(CacheManager::builder(cache).client_id("app").build().is_ok());
/// ```
#[derive(Debug, Default, Clone)]
pub struct NoListing<C>(pub C);

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl<C: Cache> Cache for NoListing<C> {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        self.0.get(key).await
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        self.0.set(key, value).await
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.0.remove(key).await
    }

    async fn remove_many(&self, keys: &[Arc<str>]) -> Result<()> {
        self.0.remove_many(keys).await
    }

    async fn all_keys(&self) -> Result<Option<Keys>> {
        Ok(None)
    }

    async fn keys_with_prefix(&self, _prefix: &str) -> Result<Option<Keys>> {
        Ok(None)
    }

    fn lists_keys(&self) -> bool {
        false
    }

    async fn update(&self, key: &str, fence: Option<&Fence>, f: UpdateFn) -> Result<Updated> {
        self.0.update(key, fence, f).await
    }

    fn atomic_updates(&self) -> bool {
        self.0.atomic_updates()
    }
    fn refresh_lock(&self) -> Option<Arc<dyn RefreshLock>> {
        self.0.refresh_lock()
    }
}
