//! `MemoryCache` on moka's sync cache (native targets).

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant};

use moka::policy::{EvictionPolicy, Expiry};
use tokencache_core::{
    async_trait, Cache, Cacheable, Clock, Fence, InProcessLock, RefreshLock, Result, Retention,
    Update, UpdateFn, Updated,
};

use crate::weight::weigh;
use crate::MemoryCacheBuilder;

/// An in-memory [`Cache`]: a moka cache of [`Cacheable`] values with an ordered index of
/// its keys (see the [crate docs](crate)).
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
///   A reconcile first looks under the *read* lock: when the index already agrees with
///   moka (an overwrite of a listed key, the common `set`) there is nothing to change, and
///   that look is as good as a write-locked reconcile that changes nothing. Only a
///   disagreement takes the write lock and looks again, so every change of the index is
///   still decided by a look at moka made under the write lock.
///   An index update that only repeated the caller's own operation could: `remove`
///   invalidates in moka, a `set` inserts in moka and in the index, then the `remove`
///   takes the key out of the index, and a stored key is never listed again (the
///   concurrency test in `tests/behaviour.rs` catches that variant).
/// - `remove_many` of every indexed key empties moka (`invalidate_all`) and the index
///   together, holding every write stripe and the index's write lock, so no write of
///   any key is under way (see `MemoryCache::remove_everything`).
/// - Moka's own removals (expiry, eviction for size) are not reported to the index (an
///   eviction listener would make moka take a per-key lock and build a notification on
///   every write, the costliest part of a `set`). Their keys are pruned lazily: a listing
///   takes out the keys it finds moka no longer holds, [`MemoryCache::run_pending_tasks`]
///   prunes the whole index, and every `SWEEP_EVERY`-th `set` sweeps the next
///   `SWEEP_BATCH` keys of the index (round robin), so the index sweeps two keys per
///   write and dead keys cannot pile up. A pruned key is taken out under the write lock
///   only if moka still does not hold it then.
/// - Listings also skip index keys that moka no longer holds (`contains_key` respects
///   expiry that moka has not processed yet), so a listed key is one whose `get` returns a
///   value at that moment.
pub struct MemoryCache {
    /// Moka's sync cache, called directly from the async methods: a read is one call
    /// with no future of moka's to poll (a future-cache read costs about a fifth more
    /// instructions). Its calls take only moka's short internal locks; a write pauses
    /// (50 µs steps) only while moka's write log is full, i.e. when writes outrun its
    /// housekeeping, where the future cache would yield instead.
    ///
    /// Hashed with foldhash (seeded at random per cache) rather than SipHash: a key is
    /// hashed on every call, and SipHash takes a fifth of a read's instructions for it.
    /// Keys are made of the application's client ids, audiences and scopes.
    moka: moka::sync::Cache<String, Cacheable, foldhash::fast::RandomState>,
    index: RwLock<BTreeSet<String>>,
    /// The last key the previous sweep looked at (`None`: start from the first).
    sweep_from: Mutex<Option<String>>,
    /// `set`s so far; every `SWEEP_EVERY`-th sweeps.
    writes: AtomicU64,
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

/// Every this many `set`s, the index is swept for keys moka dropped by itself.
pub(crate) const SWEEP_EVERY: u64 = 32;
/// The number of index keys a sweep looks at.
pub(crate) const SWEEP_BATCH: usize = 64;

impl MemoryCache {
    pub(crate) fn from_builder(b: MemoryCacheBuilder) -> Self {
        let leases = Arc::new(InProcessLock::with_clock(b.clock.clone()));
        let moka = moka::sync::Cache::builder()
            .max_capacity(b.max_capacity_bytes)
            // Plain LRU: a value just written is always admitted (TinyLFU may refuse a new
            // key while the cache is full, and a token just set would read as a miss).
            .eviction_policy(EvictionPolicy::lru())
            .weigher(|k: &String, v: &Cacheable| u32::try_from(weigh(k, v)).unwrap_or(u32::MAX))
            .expire_after(TokenExpiry {
                clock: b.clock,
                retention: b.refresh_token_retention,
            })
            .build_with_hasher(foldhash::fast::RandomState::default());
        MemoryCache {
            moka,
            index: RwLock::default(),
            sweep_from: Mutex::default(),
            writes: AtomicU64::new(0),
            capacity: b.max_capacity_bytes,
            leases,
            write_locks: (0..WRITE_LOCK_STRIPES)
                .map(|_| async_lock::Mutex::new(()))
                .collect(),
        }
    }

    /// The write lock of `key`'s stripe.
    fn write_lock(&self, key: &str) -> &async_lock::Mutex<()> {
        use std::hash::BuildHasher;
        let hash = foldhash::fast::FixedState::default().hash_one(key);
        &self.write_locks[(hash % WRITE_LOCK_STRIPES as u64) as usize]
    }

    /// Puts `key` in the index iff moka holds it (see the type's docs).
    fn reconcile(&self, key: &str) {
        {
            let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
            if self.moka.contains_key(key) == index.contains(key) {
                return;
            }
        }
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        if self.moka.contains_key(key) {
            if !index.contains(key) {
                index.insert(key.to_owned());
            }
        } else {
            index.remove(key);
        }
    }

    /// Takes out of the index those of `candidates` that moka does not hold, deciding
    /// under the write lock.
    fn prune(&self, candidates: Vec<String>) {
        if candidates.is_empty() {
            return;
        }
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        for key in candidates {
            if !self.moka.contains_key(key.as_str()) {
                index.remove(key.as_str());
            }
        }
    }

    /// Looks at the next `batch` keys of the index (after the previous sweep's last,
    /// starting over at the end) and prunes those moka dropped. Skipped while another
    /// thread sweeps.
    fn sweep(&self, batch: usize) {
        let mut from = match self.sweep_from.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let dead: Vec<String> = {
            let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
            let start = from.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let looked: Vec<&String> = index
                .range::<str, _>((start, Bound::Unbounded))
                .take(batch)
                .collect();
            *from = if looked.len() < batch {
                None
            } else {
                looked.last().map(|k| (*k).clone())
            };
            looked
                .into_iter()
                .filter(|k| !self.moka.contains_key(k.as_str()))
                .cloned()
                .collect()
        };
        drop(from);
        self.prune(dead);
    }

    /// The keys that start with `prefix` and that moka holds, in order: one range of the
    /// index. The keys moka no longer holds are pruned.
    fn listed(&self, prefix: &str) -> Vec<String> {
        let mut dead = Vec::new();
        let mut out = Vec::new();
        {
            let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
            for k in index
                .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|k| k.starts_with(prefix))
            {
                if self.moka.contains_key(k.as_str()) {
                    out.push(k.clone());
                } else {
                    dead.push(k.clone());
                }
            }
        }
        self.prune(dead);
        out
    }

    /// Empties the cache in one step when every indexed key is among `keys` (the usual
    /// `clear` of a cache that holds one client), and says whether it did.
    ///
    /// Removing keys one by one costs moka some 5,000 instructions a key; its
    /// `invalidate_all` costs one timestamp (moka drops the values written before it
    /// lazily, and never returns them). It runs under every write stripe, so no `set`,
    /// `remove` or `update` is under way and moka holds no key the index lacks (each
    /// write reconciles before it lets go of its stripe), and under the index's write
    /// lock, so the index is emptied with moka. A value written in the very tick of moka's
    /// clock would survive `invalidate_all`: those are removed one by one.
    async fn remove_everything(&self, keys: &[String]) -> bool {
        let indexed = self
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        if indexed == 0 || keys.len() < indexed {
            return false;
        }
        let mut stripes = Vec::with_capacity(self.write_locks.len());
        for lock in self.write_locks.iter() {
            stripes.push(lock.lock().await);
        }
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        let mut wanted: Vec<&str> = keys.iter().map(String::as_str).collect();
        wanted.sort_unstable();
        if !index
            .iter()
            .all(|k| wanted.binary_search(&k.as_str()).is_ok())
        {
            return false;
        }
        self.moka.invalidate_all();
        for key in std::mem::take(&mut *index) {
            if self.moka.contains_key(key.as_str()) {
                self.moka.invalidate(key.as_str());
            }
        }
        drop(index);
        drop(stripes);
        true
    }

    /// Runs moka's pending housekeeping (eviction for size, expiry) and brings the key
    /// index up to date.
    pub async fn run_pending_tasks(&self) {
        self.moka.run_pending_tasks();
        self.listed("");
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
        Ok(self.moka.get(key))
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        let weight = weigh(key, &value);
        if weight > self.capacity {
            return Err(crate::too_large(weight, self.capacity));
        }
        // Under the key's write lock, like `update`, so that a blind write never lands
        // between the read and the write of an update.
        let _write = self.write_lock(key).lock().await;
        self.moka.insert(key.to_owned(), value);
        self.reconcile(key);
        if self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(SWEEP_BATCH);
        }
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<()> {
        let _write = self.write_lock(key).lock().await;
        self.moka.invalidate(key);
        self.reconcile(key);
        Ok(())
    }

    /// When `keys` are all the keys the cache holds, empties it at once (see
    /// `MemoryCache::remove_everything`). Otherwise invalidates every key in moka, then
    /// reconciles them all under one write lock of the index (instead of one reconcile
    /// per key).
    async fn remove_many(&self, keys: &[String]) -> Result<()> {
        if self.remove_everything(keys).await {
            return Ok(());
        }
        for key in keys {
            self.moka.invalidate(key.as_str());
        }
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            if !self.moka.contains_key(key.as_str()) {
                index.remove(key.as_str());
            } else if !index.contains(key.as_str()) {
                index.insert(key.clone());
            }
        }
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
        let current = self.moka.get(key);
        let outcome = match f(current.as_ref()) {
            Update::Keep => return Ok(Updated::Kept(current)),
            Update::Put(value) => {
                let weight = weigh(key, &value);
                if weight > self.capacity {
                    return Err(crate::too_large(weight, self.capacity));
                }
                self.moka.insert(key.to_owned(), value.clone());
                Updated::Put(value)
            }
            Update::Remove => {
                self.moka.invalidate(key);
                Updated::Removed
            }
        };
        self.reconcile(key);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokencache_core::{CacheEntry, EntryBody, ManualClock, WrappedCacheEntry};

    const NOW_MS: i64 = 1_700_000_000_000;

    fn value(expires_at: i64) -> Cacheable {
        let e = CacheEntry::new("c", "https://api", "read", "at", 60.0);
        Cacheable::Entry(WrappedCacheEntry::new(EntryBody::from(e), expires_at))
    }

    fn index_len(cache: &MemoryCache) -> usize {
        cache.index.read().unwrap().len()
    }

    #[tokio::test]
    async fn sweeps_keep_dead_keys_from_piling_up_without_any_listing() {
        // The entries expire for the manager from (expires_at + 1) s; the clock stands
        // 1.5 s before that, so moka drops them 1.5 s after they are written (room for a
        // loaded machine to write all of them first).
        let expires_at = NOW_MS / 1000 + 10;
        let clock = Arc::new(ManualClock::new((expires_at + 1) * 1000 - 1_500));
        let cache = MemoryCache::builder().clock(clock).build();
        for i in 0..1_000 {
            cache
                .set(&format!("soon-{i:04}"), value(expires_at))
                .await
                .unwrap();
        }
        assert!(index_len(&cache) >= 900, "written keys are indexed");
        tokio::time::sleep(Duration::from_millis(1_600)).await;
        // More writes (already expired: never indexed), and nothing lists the keys: the
        // sweeps alone take the dead keys out.
        for i in 0..1_000 {
            cache.set(&format!("gone-{i:04}"), value(0)).await.unwrap();
        }
        let left = index_len(&cache);
        assert!(left < SWEEP_BATCH, "{left} dead keys still indexed");
        // A live key stays, and is listed.
        cache.set("live", value(i64::MAX / 2000)).await.unwrap();
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["live"]);
        assert_eq!(index_len(&cache), 1);
    }

    #[tokio::test]
    async fn removing_every_key_empties_the_cache_and_later_writes_stay() {
        let cache = MemoryCache::new();
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        for k in &keys {
            cache.set(k, value(i64::MAX / 2000)).await.unwrap();
        }
        let before = cache.weighted_size().await;
        assert!(before > 0);
        // More keys than stored (one never written): still every stored key.
        let mut all = keys.clone();
        all.push("never".into());
        assert!(cache.remove_everything(&all).await, "the one-step path");
        assert_eq!(index_len(&cache), 0);
        for k in &keys {
            assert!(cache.get(k).await.unwrap().is_none(), "{k}");
        }
        assert_eq!(
            cache.all_keys().await.unwrap().unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(cache.entry_count().await, 0);
        assert_eq!(cache.weighted_size().await, 0, "moka dropped the values");
        // Written after the clear: stored, listed, counted.
        cache.set("k3", value(i64::MAX / 2000)).await.unwrap();
        cache.set("new", value(i64::MAX / 2000)).await.unwrap();
        assert!(cache.get("k3").await.unwrap().is_some());
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["k3", "new"]);
        assert_eq!(cache.entry_count().await, 2);
        // Not every stored key: the one-by-one path, the rest stays.
        assert!(!cache.remove_everything(&["k3".to_owned()]).await);
        cache.remove_many(&["k3".to_owned()]).await.unwrap();
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["new"]);
        cache.remove_many(&["new".to_owned()]).await.unwrap();
        assert_eq!(cache.entry_count().await, 0);
    }

    #[tokio::test]
    async fn remove_many_takes_keys_out_of_moka_and_the_index() {
        let cache = MemoryCache::new();
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        for k in &keys {
            cache.set(k, value(i64::MAX / 2000)).await.unwrap();
        }
        cache.remove_many(&keys[..7]).await.unwrap();
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), &keys[7..]);
        assert_eq!(index_len(&cache), 3);
        assert!(cache.get("k0").await.unwrap().is_none());
    }
}
