//! Test doubles: small caches for tests and documentation examples, and a wrapper that
//! makes any cache's calls interleave.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokencache_core::{
    async_trait, update_by_get_and_set, Cache, Cacheable, Clock, Fence, Keys, RankFn, Ranked,
    RefreshLock, Result, UpdateFn, Updated,
};

/// A cache over a `BTreeMap` that lists its keys (wrap it in
/// [`NoListing`](crate::NoListing) for one that does not).
///
/// By default it keeps every value until it is removed; with
/// [`MapCache::with_physical_expiry`] it drops entries the way moka or a Redis TTL does.
///
/// ```
/// # futures::executor::block_on(async {
/// use std::sync::Arc;
/// use tokencache_conformance::MapCache;
/// use tokencache_core::{CacheEntry, CacheKey, CacheManager, GetOptions};
///
/// let manager = CacheManager::new(Arc::new(MapCache::new()))?;
/// manager
///     .set(CacheEntry::new("app", "https://api", "openid read", "at", 60.0))
///     .await?;
/// let key = CacheKey::new("app", Some("https://api"), Some("read"));
/// let body = manager.get(&key, GetOptions::default()).await?.expect("cached");
/// assert_eq!(body.access_token.as_deref(), Some("at"));
/// # Ok::<(), tokencache_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct MapCache {
    map: Mutex<BTreeMap<String, Cacheable>>,
    expiry: Option<Arc<dyn Clock>>,
}

impl MapCache {
    /// An empty map that keeps every value until it is removed.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with physical expiry on `clock`: an entry that expired by the clock
    /// (`expiresAt < now_s`, no leeway) without a refresh token is dropped at once, so
    /// that no call sees it again (neither `get` nor the listing), as moka or a Redis TTL
    /// drop it.
    pub fn with_physical_expiry(clock: Arc<dyn Clock>) -> Self {
        MapCache {
            map: Mutex::default(),
            expiry: Some(clock),
        }
    }

    /// The map, after dropping what physical expiry drops.
    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Cacheable>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(clock) = &self.expiry {
            let now_s = clock.now_ms().div_euclid(1000);
            let dropped = |v: &Cacheable| {
                v.expires_at().is_some_and(|at| at < now_s) && !v.has_refresh_token()
            };
            map.retain(|_, v| !dropped(v));
        }
        map
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl Cache for MapCache {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        Ok(self.map().get(key).cloned())
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        self.map().insert(key.to_owned(), value);
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.map().remove(key);
        Ok(())
    }

    async fn all_keys(&self) -> Result<Option<Keys>> {
        Ok(Some(self.map().keys().cloned().collect()))
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Keys>> {
        let map = self.map();
        Ok(Some(
            map.range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect(),
        ))
    }

    fn lists_keys(&self) -> bool {
        true
    }
}

/// Wraps any [`Cache`] so that every call gives way to other tasks before and after it
/// runs: concurrent calls of a manager then interleave inside their read-modify-write
/// steps even over a cache whose futures never wait (a map behind a mutex). The
/// no-lost-updates check runs its manager over one.
///
/// Every call is forwarded unchanged, except `update` of a cache whose updates are not
/// atomic: that one runs as `get`, `f`, `set` through the yielding calls, so that it
/// interleaves as it would in a real store.
#[derive(Debug, Default, Clone)]
pub struct Yielding<C>(pub C);

/// Pending once (waking itself), then ready: lets the executor run other tasks. Needs no
/// runtime, so it works on any executor and in a browser.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn yield_now() -> YieldNow {
    YieldNow(false)
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl<C: Cache> Cache for Yielding<C> {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        yield_now().await;
        let r = self.0.get(key).await;
        yield_now().await;
        r
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        yield_now().await;
        let r = self.0.set(key, value).await;
        yield_now().await;
        r
    }

    async fn remove(&self, key: &str) -> Result<()> {
        yield_now().await;
        let r = self.0.remove(key).await;
        yield_now().await;
        r
    }

    async fn remove_many(&self, keys: &[Arc<str>]) -> Result<()> {
        yield_now().await;
        let r = self.0.remove_many(keys).await;
        yield_now().await;
        r
    }

    async fn all_keys(&self) -> Result<Option<Keys>> {
        yield_now().await;
        let r = self.0.all_keys().await;
        yield_now().await;
        r
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Keys>> {
        yield_now().await;
        let r = self.0.keys_with_prefix(prefix).await;
        yield_now().await;
        r
    }

    async fn best_with_prefix(&self, prefix: &str, rank: RankFn<'_>) -> Result<Option<Ranked>> {
        yield_now().await;
        let r = self.0.best_with_prefix(prefix, rank).await;
        yield_now().await;
        r
    }

    fn ranks_by_metadata(&self) -> bool {
        self.0.ranks_by_metadata()
    }

    fn lists_keys(&self) -> bool {
        self.0.lists_keys()
    }

    async fn update(&self, key: &str, fence: Option<&Fence>, f: UpdateFn) -> Result<Updated> {
        if !self.0.atomic_updates() {
            return update_by_get_and_set(self, key, f).await;
        }
        yield_now().await;
        let r = self.0.update(key, fence, f).await;
        yield_now().await;
        r
    }

    fn atomic_updates(&self) -> bool {
        self.0.atomic_updates()
    }
    fn refresh_lock(&self) -> Option<Arc<dyn RefreshLock>> {
        self.0.refresh_lock()
    }
}
