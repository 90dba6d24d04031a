//! `MemoryCache` on moka's future cache (native targets).

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::policy::{EvictionPolicy, Expiry};
use tokencache_core::{
    async_trait, Cache, Cacheable, Clock, Fence, InProcessLock, RefreshLock, Result, Retention,
    Update, UpdateFn, Updated,
};

use crate::weight::weigh;
use crate::MemoryCacheBuilder;

/// An in-memory [`Cache`]: a moka future cache of [`Cacheable`] values with an ordered
/// index of its keys (see the [crate docs](crate)).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use tokencache_core::{Cache, Cacheable, KeyManifestEntry};
/// use tokencache_memory::MemoryCache;
///
/// let cache = MemoryCache::new();
/// let value = Cacheable::Manifest(KeyManifestEntry { keys: vec!["k".into()] });
/// cache.set("@@auth0spajs@@::app::https://api::read", value.clone()).await?;
/// cache.set("@@auth0spajs@@::other::https://api::read", value.clone()).await?;
/// assert_eq!(cache.get("@@auth0spajs@@::app::https://api::read").await?, Some(value));
/// assert_eq!(
///     cache.keys_with_prefix("@@auth0spajs@@::app::").await?,
///     Some(vec!["@@auth0spajs@@::app::https://api::read".to_owned()])
/// );
/// # Ok::<(), tokencache_core::Error>(())
/// # }).unwrap();
/// ```
///
/// # The key index
///
/// Keys are listed from a `BTreeSet` beside moka, so `keys_with_prefix` walks one range of
/// it. The index is kept consistent with moka without holding any lock across an `.await`:
///
/// - Every change to moka (an `insert` in `set` or `update`, an `invalidate` in `remove`
///   or `update`) is followed, in the same call, by a *reconcile* of that key: under the
///   index's write lock, the key is put in the index if moka holds it (`contains_key`)
///   and taken out if not. The
///   reconcile that takes the lock last, after the last change to a key, sees moka's final
///   state, so concurrent `set`s and `remove`s of one key cannot leave the index wrong.
///   An index update that only repeated the caller's own operation could: `remove`
///   invalidates in moka, a `set` inserts in moka and in the index, then the `remove`
///   takes the key out of the index, and a stored key is never listed again (the
///   concurrency test in `tests/behaviour.rs` catches that variant).
/// - Moka's own removals (expiry, eviction for size) reach the eviction listener, which
///   queues the key; the queue is reconciled in the same way at the next `set` or
///   listing. The listener never touches the index itself: moka may report the expiry of
///   an old value after a new `set` of the same key.
/// - Listings also skip index keys that moka no longer holds (`contains_key` respects
///   expiry that moka has not processed yet), so a listed key is one whose `get` returns a
///   value at that moment.
pub struct MemoryCache {
    moka: moka::future::Cache<String, Cacheable>,
    index: RwLock<BTreeSet<String>>,
    /// Keys moka removed by itself (expired, evicted), to reconcile.
    evicted: Arc<Mutex<Vec<Arc<String>>>>,
    capacity: u64,
    /// Write locks striped by key hash: `set`, `remove` and `update` of one key take the
    /// same one, which makes `update` atomic per key.
    write_locks: Box<[async_lock::Mutex<()>]>,
    /// The cache's refresh lock; fenced updates check it.
    leases: Arc<InProcessLock>,
}

/// The number of write-lock stripes.
const WRITE_LOCK_STRIPES: usize = 64;

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("capacity_bytes", &self.capacity)
            .field("entries", &self.moka.entry_count())
            .field("weighted_size", &self.moka.weighted_size())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Moka's per-entry expiry: the time to live [`Retention::time_to_live`] gives the value
/// by the configured clock, fixed when it is written.
struct TokenExpiry {
    clock: Arc<dyn Clock>,
    retention: Retention,
}

impl TokenExpiry {
    fn time_to_live(&self, value: &Cacheable) -> Option<Duration> {
        self.retention.time_to_live(value, self.clock.now_ms())
    }
}

impl Expiry<String, Cacheable> for TokenExpiry {
    fn expire_after_create(&self, _: &String, value: &Cacheable, _: Instant) -> Option<Duration> {
        self.time_to_live(value)
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Cacheable,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.time_to_live(value)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryCache {
    pub(crate) fn from_builder(b: MemoryCacheBuilder) -> Self {
        let evicted: Arc<Mutex<Vec<Arc<String>>>> = Arc::default();
        let queue = evicted.clone();
        let leases = Arc::new(InProcessLock::with_clock(b.clock.clone()));
        let moka = moka::future::Cache::builder()
            .max_capacity(b.max_capacity_bytes)
            // Plain LRU: a value just written is always admitted (TinyLFU may refuse a new
            // key while the cache is full, and a token just set would read as a miss).
            .eviction_policy(EvictionPolicy::lru())
            .weigher(|k: &String, v: &Cacheable| u32::try_from(weigh(k, v)).unwrap_or(u32::MAX))
            .expire_after(TokenExpiry {
                clock: b.clock,
                retention: b.refresh_token_retention,
            })
            .eviction_listener(move |key, _value, cause| {
                if matches!(cause, RemovalCause::Expired | RemovalCause::Size) {
                    lock(&queue).push(key);
                }
            })
            .build();
        MemoryCache {
            moka,
            index: RwLock::default(),
            evicted,
            capacity: b.max_capacity_bytes,
            leases,
            write_locks: (0..WRITE_LOCK_STRIPES)
                .map(|_| async_lock::Mutex::new(()))
                .collect(),
        }
    }

    /// The write lock of `key`'s stripe.
    fn write_lock(&self, key: &str) -> &async_lock::Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        &self.write_locks[(hash % WRITE_LOCK_STRIPES as u64) as usize]
    }

    /// Puts `key` in the index iff moka holds it (see the type's docs).
    fn reconcile(&self, key: &str) {
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        if self.moka.contains_key(key) {
            if !index.contains(key) {
                index.insert(key.to_owned());
            }
        } else {
            index.remove(key);
        }
    }

    /// Reconciles the keys moka removed by itself.
    fn reconcile_evicted(&self) {
        let keys = std::mem::take(&mut *lock(&self.evicted));
        if keys.is_empty() {
            return;
        }
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            if !self.moka.contains_key(key.as_str()) {
                index.remove(key.as_str());
            }
        }
    }

    /// The keys that start with `prefix` and that moka holds, in order: one range of the
    /// index.
    fn listed(&self, prefix: &str) -> Vec<String> {
        self.reconcile_evicted();
        let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
        index
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|k| k.starts_with(prefix))
            .filter(|k| self.moka.contains_key(k.as_str()))
            .cloned()
            .collect()
    }

    /// Runs moka's pending housekeeping (eviction for size, expiry) and brings the key
    /// index up to date.
    pub async fn run_pending_tasks(&self) {
        self.moka.run_pending_tasks().await;
        self.reconcile_evicted();
    }

    /// The number of entries a `get` returns a value for, after
    /// [`MemoryCache::run_pending_tasks`]. Walks the key index.
    pub async fn entry_count(&self) -> u64 {
        self.run_pending_tasks().await;
        let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
        index
            .iter()
            .filter(|k| self.moka.contains_key(k.as_str()))
            .count() as u64
    }

    /// The estimated bytes held (the sum of the entries' weights, as moka bounds them),
    /// after [`MemoryCache::run_pending_tasks`]. Moka's timer wheel drops expired entries
    /// in steps of about a second, so an entry that expired within the last second or so
    /// may still be counted (it is never returned).
    pub async fn weighted_size(&self) -> u64 {
        self.run_pending_tasks().await;
        self.moka.weighted_size()
    }

    /// The capacity in bytes.
    pub fn max_capacity_bytes(&self) -> u64 {
        self.capacity
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        Ok(self.moka.get(key).await)
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        let weight = weigh(key, &value);
        if weight > self.capacity {
            return Err(crate::too_large(weight, self.capacity));
        }
        // Under the key's write lock, like `update`, so that a blind write never lands
        // between the read and the write of an update.
        let _write = self.write_lock(key).lock().await;
        self.moka.insert(key.to_owned(), value).await;
        self.reconcile(key);
        self.reconcile_evicted();
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<()> {
        let _write = self.write_lock(key).lock().await;
        self.moka.invalidate(key).await;
        self.reconcile(key);
        Ok(())
    }

    async fn all_keys(&self) -> Result<Option<Vec<String>>> {
        Ok(Some(self.listed("")))
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Vec<String>>> {
        Ok(Some(self.listed(prefix)))
    }

    fn lists_keys(&self) -> bool {
        true
    }

    /// Atomic per key: the read, `f` and the write happen under the key's write lock,
    /// which every `set`, `remove` and `update` of the key takes. A fence must hold this
    /// cache's refresh lock ([`Cache::refresh_lock`]) when the update runs.
    async fn update(&self, key: &str, fence: Option<&Fence>, mut f: UpdateFn) -> Result<Updated> {
        let _write = self.write_lock(key).lock().await;
        if fence.is_some_and(|fence| !self.leases.holds(fence)) {
            return Ok(Updated::FenceLost);
        }
        let current = self.moka.get(key).await;
        let outcome = match f(current.as_ref()) {
            Update::Keep => return Ok(Updated::Kept(current)),
            Update::Put(value) => {
                let weight = weigh(key, &value);
                if weight > self.capacity {
                    return Err(crate::too_large(weight, self.capacity));
                }
                self.moka.insert(key.to_owned(), value.clone()).await;
                Updated::Put(value)
            }
            Update::Remove => {
                self.moka.invalidate(key).await;
                Updated::Removed
            }
        };
        self.reconcile(key);
        self.reconcile_evicted();
        Ok(outcome)
    }

    fn atomic_updates(&self) -> bool {
        true
    }

    /// An [`InProcessLock`] of this cache (by its clock): everything that shares the cache
    /// shares it.
    fn refresh_lock(&self) -> Option<Arc<dyn RefreshLock>> {
        Some(self.leases.clone())
    }
}
