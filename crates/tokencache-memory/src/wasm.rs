//! `MemoryCache` on wasm32: a small map of its own (moka panics in the browser).

use std::cell::RefCell;
use std::fmt;

use std::sync::Arc;

use tokencache_core::{
    async_trait, Cache, Cacheable, Fence, InProcessLock, Keys, RefreshLock, Result, UpdateFn,
    Updated,
};

use crate::map::MapStore;
use crate::MemoryCacheBuilder;

/// An in-memory [`Cache`] (see the [crate docs](crate)). On wasm32 it is an ordered map
/// (the browser runs it on one thread; no borrow is held across an `.await`), with each
/// entry's expiry checked against the clock when it is read or listed, and least recently
/// used entries evicted for room (never one that holds an unexpired refresh token: a write
/// that would need that fails with `QuotaExceeded`).
pub struct MemoryCache {
    map: RefCell<MapStore>,
    capacity: u64,
    /// The cache's refresh lock; fenced updates check it.
    leases: Arc<InProcessLock>,
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self.map.borrow();
        f.debug_struct("MemoryCache")
            .field("capacity_bytes", &self.capacity)
            .field("entries", &map.len())
            .field("weighted_size", &map.weighted_size())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCache {
    pub(crate) fn from_builder(b: MemoryCacheBuilder) -> Self {
        MemoryCache {
            leases: Arc::new(InProcessLock::with_clock(b.clock.clone())),
            map: RefCell::new(MapStore::new(
                b.max_capacity_bytes,
                b.clock,
                b.refresh_token_retention,
            )),
            capacity: b.max_capacity_bytes,
        }
    }

    /// Drops the expired entries, so that [`MemoryCache::entry_count`] and
    /// [`MemoryCache::weighted_size`] are exact.
    pub async fn run_pending_tasks(&self) {
        self.map.borrow_mut().purge_expired();
    }

    /// The number of entries, after [`MemoryCache::run_pending_tasks`].
    pub async fn entry_count(&self) -> u64 {
        self.run_pending_tasks().await;
        self.map.borrow().len() as u64
    }

    /// The estimated bytes held, after [`MemoryCache::run_pending_tasks`].
    pub async fn weighted_size(&self) -> u64 {
        self.run_pending_tasks().await;
        self.map.borrow().weighted_size()
    }

    /// The capacity in bytes.
    pub fn max_capacity_bytes(&self) -> u64 {
        self.capacity
    }
}

#[async_trait(?Send)]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        Ok(self.map.borrow_mut().get(key))
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        self.map.borrow_mut().set(key, value)
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.map.borrow_mut().remove(key);
        Ok(())
    }

    async fn all_keys(&self) -> Result<Option<Keys>> {
        Ok(Some(self.map.borrow().keys_with_prefix("")))
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Keys>> {
        Ok(Some(self.map.borrow().keys_with_prefix(prefix)))
    }

    fn lists_keys(&self) -> bool {
        true
    }

    /// Atomic: the read, `f` and the write happen in one turn of the single browser
    /// thread, with no `.await` between them.
    async fn update(&self, key: &str, fence: Option<&Fence>, mut f: UpdateFn) -> Result<Updated> {
        if fence.is_some_and(|fence| !self.leases.holds(fence)) {
            return Ok(Updated::FenceLost);
        }
        let mut map = self.map.borrow_mut();
        let current = map.get(key);
        f(current.as_ref()).apply(current, |value| match value {
            Some(value) => map.set(key, value.clone()),
            None => {
                map.remove(key);
                Ok(())
            }
        })
    }

    fn atomic_updates(&self) -> bool {
        true
    }

    fn refresh_lock(&self) -> Option<Arc<dyn RefreshLock>> {
        Some(self.leases.clone())
    }
}
