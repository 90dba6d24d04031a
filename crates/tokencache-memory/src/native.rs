//! `MemoryCache` on moka's sync cache (native targets).

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use moka::notification::RemovalCause;
use moka::policy::{EvictionPolicy, Expiry};
use tokencache_core::{
    async_trait, Cache, Cacheable, Clock, Fence, InProcessLock, KeyFilter, Keys, ReadFn,
    RefreshLock, Result, Retention, UpdateFn, Updated,
};

use crate::weight::weigh_within;
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
///     Some(["@@auth0spajs@@::app::https://api::read"].into_iter().collect())
/// );
/// # Ok::<(), tokencache_core::Error>(())
/// # }).unwrap();
/// ```
///
/// # Reads
///
/// Moka is the engine: it holds every entry, bounds the bytes held (by each entry's
/// weight), and drops entries when they expire or when the capacity needs their room
/// (LRU). A `get` does not go through moka, though: it looks the key up in a lock-free
/// map of the slots moka holds (see `Slots`), checks the value's deadline itself, and
/// reports the read to moka's LRU order once per `TOUCH_EVERY_MS` at most. Moka's own
/// read logs every read in one shared queue, so exact hits from two threads ran no
/// faster than from one; these reads write no shared memory.
///
/// # The key index
///
/// Keys are listed from a `BTreeSet` beside moka, so `keys_with_prefix` walks one range of
/// it. Below, the cache *holds* a key when a `get` of it returns a value at that moment
/// (the read path has a slot for it, of the current generation, not expired). The index
/// is kept consistent without holding any lock across an `.await`:
///
/// - A write (`set`, or an `update` that puts a value) that overwrites a key the read
///   path has a slot for swaps the value into that slot (see `Slot`) and the key stays
///   as it is, listed. Any other write puts a new slot on the read path and in moka and
///   then lists the key: a look under the index's *read* lock finds it already listed
///   (nothing to do), else it is added under the write lock if the cache holds it. A
///   listed key that the cache no longer holds is harmless: listings skip it and prune it.
/// - A removal (`remove`, an `update` that removes) takes the key off the read path and
///   out of moka and then *unlists* it: the key is taken out of the index only if the
///   cache does not hold it, looked at under the index's write lock (a first look under
///   the read lock skips the write lock when the index already agrees). A removal that
///   took the key out without looking could race a write (say a `remove_many`, which
///   takes each key's write stripe in turn, and a `set`): the removal empties the key, a
///   `set` writes it and lists it, then the removal takes it out of the index, and a
///   stored key is never listed again (the concurrency test in `tests/behaviour.rs`
///   catches that variant). With the look, a write that comes before it keeps the key
///   listed, and one that comes after it lists the key once the write lock is let go.
///   So every key the cache holds is listed.
/// - `remove_many` of every indexed key empties moka, the read path and the index
///   together: the cache moves to its next generation (older values are dead for `get`)
///   and moka's `invalidate_all` drops them, holding every write stripe and the index's
///   write lock, so no write of any key is under way (see
///   `MemoryCache::remove_everything`).
/// - Moka's own removals (expiry, eviction for size) take the slot off the read path
///   through moka's eviction listener, but are not reported to the index (the listener
///   runs inside moka's housekeeping, which must not wait for the index's lock). Their
///   keys are pruned lazily: a listing takes out the keys the cache no longer holds,
///   [`MemoryCache::run_pending_tasks`] prunes the whole index, and every
///   `SWEEP_EVERY`-th write of a key that was not listed sweeps the next `SWEEP_BATCH`
///   keys of the index (round robin). Only such a write can grow the index, and each
///   pays for a look at two keys, so every key is looked at again before the index has
///   grown by half: dead keys cannot pile up (the index stays within about twice the most
///   keys ever live at once). An overwrite of a listed key, the common `set`, sweeps
///   nothing. A pruned key is taken out under the write lock only if the cache still
///   does not hold it then.
/// - Listings skip index keys that the cache does not hold, so a listed key is one whose
///   `get` returns a value at that moment. A listing of every key is kept and handed out
///   again while nothing changed (see `Listing`): every write, removal and clear, and every
///   removal by moka's listener, counts a change once it has landed, and the kept listing
///   serves only at the count it was taken at and before the first deadline of its values.
pub struct MemoryCache {
    /// Moka's sync cache, called directly from the async methods: each call is one call
    /// with no future of moka's to poll (a future-cache call costs about a fifth more
    /// instructions). Reads go through it only to report to its LRU order (see
    /// [`Slots`]). Its calls take only moka's short internal locks; a write pauses
    /// (50 µs steps) only while moka's write log is full, i.e. when writes outrun its
    /// housekeeping, where the future cache would yield instead.
    ///
    /// Hashed with foldhash (seeded at random per cache) rather than SipHash: a key is
    /// hashed on every call, and SipHash takes a fifth of a read's instructions for it.
    /// Keys are made of the application's client ids, audiences and scopes.
    moka: moka::sync::Cache<Key, Arc<Slot>, foldhash::fast::RandomState>,
    /// The read path: the slot moka holds for each key, in a map whose reads write no
    /// shared memory (see [`Slots`]).
    slots: Arc<Slots>,
    /// What a value's deadline is counted by (see [`MemoryCache::stored`]).
    clock: Arc<dyn Clock>,
    retention: Retention,
    /// The origin of [`Slot::touched`].
    epoch: Instant,
    /// The generation of the values a `get` returns: a one-step clear moves to the next
    /// (see `MemoryCache::remove_everything`), and moka's copies of older values are
    /// dead from then on, even one that moka's `invalidate_all` let through.
    generation: AtomicU64,
    index: RwLock<BTreeSet<Key>>,
    /// Counts the changes of what a listing shows, other than by time passing: every
    /// write, removal and clear, and moka's own removals (its eviction listener counts
    /// them). Bumped after the change is made, so a listing taken at one count that the
    /// count still equals shows every change made so far.
    changes: Arc<AtomicU64>,
    /// The last listing of every key (see [`Listing`]).
    listing: ArcSwapOption<Listing>,
    /// The last key the previous sweep looked at (`None`: start from the first).
    sweep_from: Mutex<Option<Key>>,
    /// Writes of keys that were not listed so far; every `SWEEP_EVERY`-th sweeps.
    new_keys: AtomicU64,
    capacity: u64,
    /// Write locks striped by key hash: `set`, `remove` and `update` of one key take the
    /// same one, which makes `update` atomic per key. Plain mutexes: what they guard is
    /// short and never awaits (an async mutex cost a `set` some 300 instructions more, to
    /// wake listeners that are never there).
    write_locks: Box<[Mutex<()>]>,
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

/// What moka holds for a key: a cell whose value an overwrite replaces in place.
///
/// Moka replaces an entry on `insert` at a cost of some 10,000 instructions (a new entry
/// record, a write-log op, an epoch flush), five times its `get`. The common `set`
/// overwrites a key already held (a token refreshed), so `MemoryCache::write` swaps the
/// new value into the slot moka already holds instead, when the slot is of the current
/// generation, its old value is still live and the value weighs as much, rounded to
/// [`WEIGHT_STEP`] (see `budget`): moka's bound on the bytes held stays true without a new
/// insert. Unless moka's expiry and LRU order stand (see `MemoryCache::still_held`), the
/// write then reads the key through moka, which tells whether moka still held the slot:
/// if it dropped it meanwhile (evicted, expired), the write inserts anew. A `get` that saw
/// the value in the dropped slot meanwhile saw the value just written, before its
/// deadline.
///
/// Moka learns the new time to live from that read at once (a `get` after it obeys it);
/// its timer wheel is told with the read's log entry, which moka may drop when reads
/// outrun its housekeeping. An entry whose timer is then missing is still never returned
/// once expired, and leaves when the capacity needs its room (LRU) or its key is written.
struct Slot {
    /// The cache's generation when the slot was made (see `MemoryCache::generation`).
    generation: u64,
    /// The weight moka charges for the slot: the first value's, rounded up. A value
    /// swapped in weighs as much, rounded the same way.
    budget: u32,
    /// The value and its deadline. A read loads it without writing to shared memory
    /// (`ArcSwap`'s thread-local debts).
    value: ArcSwap<Stored>,
    /// Set by an overwrite in place: moka's expiry of the entry must be worked out
    /// again from the new value, at its next read (see [`TokenExpiry`]).
    retimed: AtomicBool,
    /// When a read or an overwrite last told moka of the entry (see [`TOUCH_EVERY_MS`]),
    /// in milliseconds since the cache's `epoch`.
    touched: AtomicU64,
}

impl Slot {
    /// The value, if a `get` may return it: the slot is of the cache's current
    /// `generation` and the value has not expired at `now`. The one check of `get`,
    /// listings and the index.
    fn live(&self, generation: u64, now: Instant) -> Option<arc_swap::Guard<Arc<Stored>>> {
        if self.generation != generation {
            return None;
        }
        let stored = self.value.load();
        (!stored.expired(now)).then_some(stored)
    }

    fn new(generation: u64, budget: u32, value: Arc<Stored>, touched: u64) -> Arc<Slot> {
        Arc::new(Slot {
            generation,
            budget,
            value: ArcSwap::new(value),
            retimed: AtomicBool::new(false),
            touched: AtomicU64::new(touched),
        })
    }
}

/// A value as a slot holds it: with the instant it may no longer be returned.
struct Stored {
    value: Cacheable,
    /// [`Retention::time_to_live`] from the write, by the cache's clock; `None`: no
    /// deadline. Moka's expiry of the entry is set from it too (see [`TokenExpiry`]).
    expires: Option<Instant>,
}

impl Stored {
    fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }
}

/// The read path of the cache: key → the slot moka holds for it (papaya's map, whose
/// reads take no lock and write to no shared memory, so exact hits from several threads
/// scale; moka's `get` logs every read in one shared queue and bumps shared counts).
///
/// It follows moka: a write puts the new slot here before it inserts it in moka, a
/// removal takes it out before it invalidates in moka, and moka's own removals (expiry,
/// eviction for size, the drops after `invalidate_all`) take it out through moka's
/// eviction listener, only if it still holds that very slot. A slot moka dropped and
/// whose removal is not yet through is harmless: it holds a value that was written and
/// has not expired (a read checks the deadline itself), and moka's byte bound counts it
/// until then.
///
/// Reads do not go through moka, so moka's LRU order hears of them in samples: a read
/// that finds the slot's last report older than [`TOUCH_EVERY_MS`] reads the key through
/// moka once more.
type Slots = papaya::HashMap<Key, Arc<Slot>, foldhash::fast::RandomState>;

/// A key as the cache holds it: one allocation shared by moka, the read path and the
/// index.
type Key = Arc<str>;

/// The read path, pinned.
type PinnedSlots<'a> =
    papaya::HashMapRef<'a, Key, Arc<Slot>, foldhash::fast::RandomState, papaya::LocalGuard<'a>>;

/// What `MemoryCache::look` gives: the read path pinned, at one moment.
struct Look<'a> {
    slots: PinnedSlots<'a>,
    generation: u64,
    now: Instant,
}

impl Look<'_> {
    /// Whether a `get` of `key` returns a value (the same checks, without the clone).
    fn live(&self, key: &str) -> bool {
        self.deadline(key).is_some()
    }

    /// The deadline of the value a `get` of `key` returns (`Some(None)`: none), or
    /// `None` when it returns no value.
    fn deadline(&self, key: &str) -> Option<Option<Instant>> {
        let slot = self.slots.get(key)?;
        Some(slot.live(self.generation, self.now)?.expires)
    }
}

/// A listing of every key the cache holds, kept and handed out again (a clone of
/// [`Keys`] copies no key) until the cache changes or one of its values expires (V8
/// caches the key list of an object whose shape did not change in much the same way).
///
/// It holds one more handle (16 bytes) to each key it lists, and keeps a key that was
/// removed since alive until the next listing replaces it; a clear drops it at once.
struct Listing {
    /// Every key the cache held, in order.
    keys: Keys,
    /// [`MemoryCache::changes`] when the listing began.
    changes: u64,
    /// The earliest deadline of the listed values: the listing is stale from then on.
    until: Option<Instant>,
    /// A reading of the coarse clock before which `until` has certainly not come (see
    /// [`COARSE_LAG`]); `None` with no `until`, or where the coarse clock is not monotonic.
    fresh_until: Option<coarsetime::Instant>,
}

impl Listing {
    /// A listing of `keys` taken at `changes`, stale from `until`; `coarse` and `now` are
    /// the coarse and the precise clock read in that order when it began.
    fn new(
        keys: Keys,
        changes: u64,
        until: Option<Instant>,
        coarse: coarsetime::Instant,
        now: Instant,
    ) -> Listing {
        // The coarse reading was taken first, so it is no later than `now`: a coarse
        // reading that has moved less than `until - now - COARSE_LAG` on from it is
        // before `until`.
        let fresh_until = until.filter(|_| COARSE_IS_MONOTONIC).map(|until| {
            let span = until
                .saturating_duration_since(now)
                .saturating_sub(COARSE_LAG);
            coarse.saturating_add(span.into())
        });
        Listing {
            keys,
            changes,
            until,
            fresh_until,
        }
    }

    /// Whether the listing still shows what the cache holds, `changes` being the count
    /// now. The coarse clock answers while the deadline is far (a few nanoseconds, where
    /// `Instant::now` costs some twenty here); the precise clock decides near it.
    fn current(&self, changes: u64) -> bool {
        if self.changes != changes {
            return false;
        }
        let Some(until) = self.until else {
            return true;
        };
        self.fresh_until
            .is_some_and(|fresh| coarsetime::Instant::now_without_cache_update() < fresh)
            || Instant::now() < until
    }
}

/// How far the coarse clock (`CLOCK_MONOTONIC_COARSE` on Linux: the time at the last
/// timer tick) may lag behind the precise one, kept wide: a tick is a few milliseconds.
/// A kept listing checks its deadline against the coarse clock until this much before
/// it, and against the precise clock from then on.
const COARSE_LAG: Duration = Duration::from_secs(1);

/// Whether coarsetime reads a monotonic clock here (elsewhere it reads the wall clock,
/// which may step back): only then does a kept listing trust it.
const COARSE_IS_MONOTONIC: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd",
    target_os = "dragonfly",
    windows
));

/// Reads tell moka of an entry at most once this often (milliseconds): its LRU order is
/// that precise, which is plenty for eviction for size.
const TOUCH_EVERY_MS: u64 = 100;

/// Moka's expiry of an entry is its value's deadline rounded up to a multiple of this
/// many milliseconds since the cache's `epoch` (see [`TokenExpiry`]): moka drops a value
/// up to this much (and a millisecond) after reads stopped returning it, never before,
/// and an overwrite whose deadline rounds to the same step leaves moka's expiry as it
/// is, with no moka read to retime it (see [`MemoryCache::write`]).
const DEADLINE_STEP_MS: u64 = 100;

/// `deadline` rounded up as moka's expiry is (see [`DEADLINE_STEP_MS`]): past its whole
/// milliseconds since `epoch`, to the next step. `None` (no deadline) stays `None`, and
/// so does one too far to count.
fn moka_deadline(epoch: Instant, deadline: Option<Instant>) -> Option<Instant> {
    let since = deadline?.saturating_duration_since(epoch).as_millis();
    let ms = u64::try_from(since).ok()?.checked_add(1)?;
    epoch.checked_add(Duration::from_millis(
        ms.checked_next_multiple_of(DEADLINE_STEP_MS)?,
    ))
}

/// The weights moka charges are multiples of this many bytes (see [`Slot`]): a token
/// refreshed to one a few bytes longer still fits its slot.
const WEIGHT_STEP: u64 = 64;

/// The weight moka charges for a value that weighs `weight` bytes: rounded up to a
/// multiple of [`WEIGHT_STEP`].
fn budget(weight: u64) -> u32 {
    u32::try_from(weight.next_multiple_of(WEIGHT_STEP)).unwrap_or(u32::MAX)
}

/// Moka's per-entry expiry: the deadline the slot's value was stored with (see
/// [`Stored::expires`]) rounded up by [`moka_deadline`], set when it is written, and again
/// when a value whose deadline rounds otherwise is swapped into its slot: the overwrite
/// marks the slot `retimed` and reads it through moka, whose `expire_after_read` then sets
/// the new time to live (other reads leave it as it is).
struct TokenExpiry {
    /// The cache's `epoch`, which [`moka_deadline`] counts from.
    epoch: Instant,
}

impl TokenExpiry {
    fn time_to_live(&self, slot: &Slot, now: Instant) -> Option<Duration> {
        moka_deadline(self.epoch, slot.value.load().expires)
            .map(|e| e.saturating_duration_since(now))
    }
}

impl Expiry<Key, Arc<Slot>> for TokenExpiry {
    fn expire_after_create(&self, _: &Key, slot: &Arc<Slot>, now: Instant) -> Option<Duration> {
        self.time_to_live(slot, now)
    }

    fn expire_after_read(
        &self,
        _: &Key,
        slot: &Arc<Slot>,
        now: Instant,
        duration_until_expiry: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        // The flag is set after the value is swapped in (release), and taken here with
        // acquire: the value loaded below is the new one, or newer.
        if slot.retimed.load(Ordering::Relaxed) && slot.retimed.swap(false, Ordering::AcqRel) {
            self.time_to_live(slot, now)
        } else {
            duration_until_expiry
        }
    }

    fn expire_after_update(
        &self,
        _: &Key,
        slot: &Arc<Slot>,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.time_to_live(slot, now)
    }
}

/// The keys of `index` that start with `prefix`, in order: one range.
fn keys_under<'a>(index: &'a BTreeSet<Key>, prefix: &'a str) -> impl Iterator<Item = &'a Key> {
    index
        .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(move |k| k.starts_with(prefix))
}

/// Whether every key of `index` is among `keys`: one merge walk when `keys` is sorted
/// (a listing is), binary searches otherwise.
fn covers(keys: &[Key], index: &BTreeSet<Key>) -> bool {
    if keys.is_sorted() {
        let mut keys = keys.iter();
        return index.iter().all(|k| keys.any(|w| w == k));
    }
    let mut wanted: Vec<&str> = keys.iter().map(|k| &**k).collect();
    wanted.sort_unstable();
    index.iter().all(|k| wanted.binary_search(&&**k).is_ok())
}

/// Every this many writes of keys that were not listed, the index is swept for keys moka
/// dropped by itself.
pub(crate) const SWEEP_EVERY: u64 = 32;
/// The number of index keys a sweep looks at.
pub(crate) const SWEEP_BATCH: usize = 64;

impl MemoryCache {
    pub(crate) fn from_builder(b: MemoryCacheBuilder) -> Self {
        let leases = Arc::new(InProcessLock::with_clock(b.clock.clone()));
        let slots: Arc<Slots> = Arc::new(
            papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .build(),
        );
        let follower = slots.clone();
        let changes = Arc::new(AtomicU64::new(0));
        let counter = changes.clone();
        let epoch = Instant::now();
        let moka = moka::sync::Cache::builder()
            .max_capacity(b.max_capacity_bytes)
            // Plain LRU: a value just written is always admitted (TinyLFU may refuse a new
            // key while the cache is full, and a token just set would read as a miss).
            .eviction_policy(EvictionPolicy::lru())
            .weigher(|_: &Key, slot: &Arc<Slot>| slot.budget)
            .expire_after(TokenExpiry { epoch })
            // Moka's own removals take the slot off the read path (see [`Slots`]).
            .eviction_listener(move |key: Arc<Key>, slot: Arc<Slot>, _: RemovalCause| {
                let _ = follower
                    .pin()
                    .remove_if(&**key, |_, held| Arc::ptr_eq(held, &slot));
                counter.fetch_add(1, Ordering::Release);
            })
            .build_with_hasher(foldhash::fast::RandomState::default());
        MemoryCache {
            moka,
            slots,
            clock: b.clock,
            retention: b.refresh_token_retention,
            epoch,
            generation: AtomicU64::new(0),
            index: RwLock::default(),
            changes,
            listing: ArcSwapOption::empty(),
            sweep_from: Mutex::default(),
            new_keys: AtomicU64::new(0),
            capacity: b.max_capacity_bytes,
            leases,
            write_locks: (0..WRITE_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The write lock of `key`'s stripe.
    fn write_lock(&self, key: &str) -> MutexGuard<'_, ()> {
        use std::hash::BuildHasher;
        let hash = foldhash::fast::FixedState::default().hash_one(key);
        self.write_locks[(hash % WRITE_LOCK_STRIPES as u64) as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Shows `f` the value of `key` if the read path holds one of the current generation
    /// that has not expired, in place: the slot's value is loaded through `ArcSwap`'s
    /// thread-local debts, so the read writes to no memory another thread reads. Tells
    /// moka of the read when the slot's last report is old enough (see [`Slots`]).
    fn read<R>(&self, key: &str, f: impl FnOnce(Option<&Cacheable>) -> R) -> R {
        let slots = self.slots.pin();
        let Some(slot) = slots.get(key) else {
            return f(None);
        };
        let now = Instant::now();
        let Some(stored) = slot.live(self.generation.load(Ordering::Acquire), now) else {
            return f(None);
        };
        let shown = f(Some(&stored.value));
        let at = self.millis_since_epoch(now);
        if at.saturating_sub(slot.touched.load(Ordering::Relaxed)) >= TOUCH_EVERY_MS {
            slot.touched.store(at, Ordering::Relaxed);
            drop(self.moka.get(key));
        }
        shown
    }

    /// A look at the read path: [`Look::live`] tells whether a `get` of a key returns a
    /// value at that moment.
    fn look(&self) -> Look<'_> {
        Look {
            slots: self.slots.pin(),
            generation: self.generation.load(Ordering::Acquire),
            now: Instant::now(),
        }
    }

    fn millis_since_epoch(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// `value` with its deadline: [`Retention::time_to_live`] by the cache's clock, from
    /// `now`.
    fn stored(&self, value: Cacheable, now: Instant) -> Arc<Stored> {
        let expires = self
            .retention
            .time_to_live(&value, self.clock.now_ms())
            .and_then(|ttl| now.checked_add(ttl));
        Arc::new(Stored { value, expires })
    }

    /// Writes `value` (which weighs `weight`) in the current generation, and lists `key`;
    /// a key that was not listed counts towards the next sweep. The caller holds the
    /// key's write stripe (so no one-step clear moves the generation meanwhile).
    ///
    /// An overwrite swaps the value into the slot moka holds when it fits (see [`Slot`])
    /// and its old value is still live. When the new value's deadline rounds to moka's
    /// expiry of the old one (see [`DEADLINE_STEP_MS`]), no retime is pending and moka
    /// heard of the entry less than [`TOUCH_EVERY_MS`] ago, moka's expiry and LRU order
    /// stand: the write is done if the read path still holds the slot (a slot moka
    /// drops, its listener takes off the read path). Otherwise the write reads the key
    /// through moka: that read sets the entry's time to live from the new value, reports
    /// it to the LRU order, and tells whether moka still held the slot at that point.
    /// Where the slot was dropped meanwhile, or its old value had died, the value is
    /// inserted anew.
    fn write(&self, key: &str, value: Cacheable, weight: u64) {
        let generation = self.generation.load(Ordering::Acquire);
        let budget = budget(weight);
        let now = Instant::now();
        let value = self.stored(value, now);
        {
            let slots = self.slots.pin();
            if let Some(slot) = slots.get(key) {
                if slot.generation == generation && slot.budget == budget {
                    let at = self.millis_since_epoch(now);
                    let old = slot.value.swap(value.clone());
                    // Still listed if the old value was live after the swap: a listing that
                    // prunes dead keys saw it live, or sees the new value.
                    let held = !old.expired(Instant::now())
                        && self.still_held(&slots, key, slot, &old, &value, at);
                    drop(old);
                    if held {
                        // Held before and after, so listed (every key the cache holds is).
                        self.changed();
                        return;
                    }
                }
            }
        }
        let slot = Slot::new(generation, budget, value, self.millis_since_epoch(now));
        let key = Key::from(key);
        // On the read path first: moka's listener takes out only the slot it dropped.
        self.slots.pin().insert(key.clone(), slot.clone());
        self.moka.insert(key.clone(), slot);
        // A key already listed (an overwrite that could not reuse its slot) stays as it
        // is, with no look at the read path (were moka to drop the key at once, listings
        // would skip it and prune it). A new key is listed if the cache holds it, looked at
        // under the write lock (a value that expired before it was written is never
        // listed).
        let listed = self
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&key);
        if !listed {
            let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
            if self.look().live(&key) {
                index.insert(key);
            }
            drop(index);
            self.changed();
            if self.new_keys.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
                self.sweep(SWEEP_BATCH);
            }
        } else {
            self.changed();
        }
    }

    /// After a write swapped `new` into `slot` in place of `old`: whether moka still
    /// holds the slot. Moka's expiry stands when the new deadline rounds to the old one's
    /// (see [`DEADLINE_STEP_MS`]), no retime is pending and moka heard of the entry less
    /// than [`TOUCH_EVERY_MS`] before `at`: then the read path answers (moka's listener
    /// takes a slot moka dropped off it). Otherwise a read through moka sets the entry's
    /// time to live from the new value, reports it to the LRU order, and answers.
    fn still_held(
        &self,
        slots: &PinnedSlots<'_>,
        key: &str,
        slot: &Arc<Slot>,
        old: &Stored,
        new: &Stored,
        at: u64,
    ) -> bool {
        let expiry_stands = moka_deadline(self.epoch, old.expires)
            == moka_deadline(self.epoch, new.expires)
            && !slot.retimed.load(Ordering::Acquire)
            && at.saturating_sub(slot.touched.load(Ordering::Relaxed)) < TOUCH_EVERY_MS;
        if expiry_stands {
            return slots.get(key).is_some_and(|held| Arc::ptr_eq(held, slot));
        }
        slot.retimed.store(true, Ordering::Release);
        slot.touched.store(at, Ordering::Relaxed);
        self.moka
            .get(key)
            .is_some_and(|held| Arc::ptr_eq(&held, slot))
    }

    /// Counts a change of what a listing shows (see [`MemoryCache::changes`]), after it
    /// is made.
    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// Removes `key`: off the read path, then out of moka. The caller holds the key's
    /// write stripe, and unlists the key after.
    fn take_out(&self, key: &str) {
        self.slots.pin().remove(key);
        self.moka.invalidate(key);
        self.changed();
    }

    /// After a removal of `key`: takes it out of the index if the cache does not hold it,
    /// looked at under the index's write lock (see the type's docs).
    fn unlist(&self, key: &str) {
        let listed = self
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(key);
        if listed {
            let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
            if !self.look().live(key) {
                index.remove(key);
            }
        }
    }

    /// Takes out of the index those of `candidates` that the cache does not hold,
    /// deciding under the write lock.
    fn prune(&self, candidates: &[impl AsRef<str>]) {
        if candidates.is_empty() {
            return;
        }
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        let look = self.look();
        for key in candidates.iter().map(AsRef::as_ref) {
            if !look.live(key) {
                index.remove(key);
            }
        }
    }

    /// Looks at the next `batch` keys of the index (after the previous sweep's last,
    /// starting over at the end) and prunes those the cache dropped. Skipped while another
    /// thread sweeps.
    fn sweep(&self, batch: usize) {
        let mut from = match self.sweep_from.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let dead: Vec<Key> = {
            let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
            let start = from.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let looked: Vec<&Key> = index
                .range::<str, _>((start, Bound::Unbounded))
                .take(batch)
                .collect();
            *from = if looked.len() < batch {
                None
            } else {
                looked.last().map(|k| (*k).clone())
            };
            let look = self.look();
            looked
                .into_iter()
                .filter(|k| !look.live(k))
                .cloned()
                .collect()
        };
        drop(from);
        self.prune(&dead);
    }

    /// The keys that start with `prefix` and that the cache holds, in order. From the
    /// kept [`Listing`] while it is current (a range of it found by binary search);
    /// otherwise one range of the index, whose keys the cache no longer holds are pruned.
    /// A listing of every key is kept for the next.
    fn listed(&self, prefix: &str) -> Keys {
        let changes = self.changes.load(Ordering::Acquire);
        if let Some(listing) = &*self.listing.load() {
            if listing.current(changes) {
                let keys = &listing.keys;
                if prefix.is_empty() {
                    return keys.clone();
                }
                let start = keys.partition_point(|k| **k < *prefix);
                let end = start + keys[start..].partition_point(|k| k.starts_with(prefix));
                return keys.slice(start..end);
            }
        }
        // The coarse clock first (see `Listing::new`).
        let coarse = coarsetime::Instant::now_without_cache_update();
        let now = Instant::now();
        let mut dead = Vec::new();
        let mut out = Vec::new();
        let mut until: Option<Instant> = None;
        {
            let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
            let look = self.look();
            for k in keys_under(&index, prefix) {
                match look.deadline(k) {
                    Some(deadline) => {
                        out.push(k.clone());
                        until = match (until, deadline) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    None => dead.push(k.clone()),
                }
            }
        }
        self.prune(&dead);
        let keys = Keys::from(out);
        if prefix.is_empty() {
            let listing = Listing::new(keys.clone(), changes, until, coarse, now);
            self.listing.store(Some(Arc::new(listing)));
        }
        keys
    }

    /// Empties the cache in one step when every indexed key is among `keys` (the usual
    /// `clear` of a cache that holds one client), and says whether it did.
    ///
    /// Removing keys one by one costs moka some 5,000 instructions a key. Here the cache
    /// moves to its next generation, which makes every value written before dead for
    /// `get` and `update` at once, and moka's `invalidate_all` (one timestamp) drops
    /// those values lazily. A value that `invalidate_all` lets through (one written in the
    /// very tick of moka's clock) is of the old generation: never returned, never listed
    /// (the index is emptied, and only a write of the key lists it again, which replaces
    /// the value), and dropped when it expires or is evicted.
    ///
    /// It runs under every write stripe, so no `set`, `remove` or `update` is under way
    /// (each reads the generation it writes with under its stripe), and under the
    /// index's write lock, so the index is emptied with moka.
    async fn remove_everything(&self, keys: &[Key]) -> bool {
        let indexed = self
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        if indexed == 0 || keys.len() < indexed {
            return false;
        }
        let stripes = self.every_stripe();
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        if !covers(keys, &index) {
            return false;
        }
        let unlisted = self.forget_everything(&mut index);
        drop(index);
        drop(stripes);
        drop(unlisted);
        true
    }

    /// Every write stripe: no `set`, `remove` or `update` is under way while they are held.
    fn every_stripe(&self) -> Vec<MutexGuard<'_, ()>> {
        self.write_locks
            .iter()
            .map(|lock| lock.lock().unwrap_or_else(PoisonError::into_inner))
            .collect()
    }

    /// Empties moka and the index in one step (see `MemoryCache::remove_everything`), and
    /// returns the keys that were listed, to drop once the locks are let go. The caller
    /// holds every write stripe and the index's write lock (`index`).
    fn forget_everything(&self, index: &mut BTreeSet<Key>) -> BTreeSet<Key> {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.moka.invalidate_all();
        self.changed();
        self.listing.store(None);
        std::mem::take(index)
    }

    /// Removes the listed keys under `prefix` that `matches` accepts, all in one step
    /// (under every write stripe and the index's write lock), and returns how many. When
    /// they are every listed key, the cache empties at once (`forget_everything`);
    /// otherwise they are invalidated one by one.
    async fn remove_selected(&self, prefix: &str, matches: impl Fn(&str) -> bool) -> u64 {
        let stripes = self.every_stripe();
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        let selected = keys_under(&index, prefix).filter(|k| matches(k)).count();
        if selected == 0 {
            return 0;
        }
        let unlisted = if selected == index.len() {
            self.forget_everything(&mut index)
        } else {
            let chosen: Vec<Key> = keys_under(&index, prefix)
                .filter(|k| matches(k))
                .cloned()
                .collect();
            for key in &chosen {
                self.take_out(key);
                index.remove(key);
            }
            chosen.into_iter().collect()
        };
        drop(index);
        drop(stripes);
        drop(unlisted);
        selected as u64
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
        let look = self.look();
        index.iter().filter(|k| look.live(k)).count() as u64
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
        Ok(self.read(key, |value| value.cloned()))
    }

    /// Lends the value it holds: `f` sees it in place, no reference count is taken.
    async fn read_with(&self, key: &str, f: ReadFn<'_>) -> Result<()> {
        self.read(key, f);
        Ok(())
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        let weight = weigh_within(key, &value, self.capacity)?;
        // Under the key's write lock, like `update`, so that a blind write never lands
        // between the read and the write of an update.
        let _write = self.write_lock(key);
        self.write(key, value, weight);
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<()> {
        let _write = self.write_lock(key);
        self.take_out(key);
        self.unlist(key);
        Ok(())
    }

    /// When `keys` are all the keys the cache holds, empties it at once (see
    /// `MemoryCache::remove_everything`). Otherwise removes them one by one, each under its
    /// write stripe, then unlists them all under one write lock of the index (instead of
    /// one lock per key).
    async fn remove_many(&self, keys: &[Arc<str>]) -> Result<()> {
        if self.remove_everything(keys).await {
            return Ok(());
        }
        for key in keys {
            let _write = self.write_lock(key);
            self.take_out(key);
        }
        self.prune(keys);
        Ok(())
    }

    /// In one step: see `MemoryCache::remove_selected`.
    async fn remove_prefix(&self, prefix: &str) -> Result<Option<u64>> {
        Ok(Some(self.remove_selected(prefix, |_| true).await))
    }

    /// In one step: see `MemoryCache::remove_selected`.
    async fn remove_prefix_matching(
        &self,
        prefix: &str,
        matches: KeyFilter<'_>,
    ) -> Result<Option<u64>> {
        Ok(Some(self.remove_selected(prefix, matches).await))
    }

    async fn all_keys(&self) -> Result<Option<Keys>> {
        Ok(Some(self.listed("")))
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Keys>> {
        Ok(Some(self.listed(prefix)))
    }

    fn lists_keys(&self) -> bool {
        true
    }

    /// Atomic per key: the read, `f` and the write happen under the key's write lock,
    /// which every `set`, `remove` and `update` of the key takes. A fence must hold this
    /// cache's refresh lock ([`Cache::refresh_lock`]) when the update runs.
    async fn update(&self, key: &str, fence: Option<&Fence>, mut f: UpdateFn) -> Result<Updated> {
        let _write = self.write_lock(key);
        if fence.is_some_and(|fence| !self.leases.holds(fence)) {
            return Ok(Updated::FenceLost);
        }
        let current = self.read(key, |value| value.cloned());
        f(current.as_ref()).apply(current, |value| {
            match value {
                Some(value) => {
                    let weight = weigh_within(key, value, self.capacity)?;
                    self.write(key, value.clone(), weight);
                }
                None => {
                    self.take_out(key);
                    self.unlist(key);
                }
            }
            Ok(())
        })
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
    use tokencache_core::{CacheEntry, EntryBody, ManualClock, Update, WrappedCacheEntry};

    use crate::weight::weigh;

    const NOW_MS: i64 = 1_700_000_000_000;

    fn value(expires_at: i64) -> Cacheable {
        sized(2, expires_at)
    }

    /// An entry whose access token is `n` bytes.
    fn sized(n: usize, expires_at: i64) -> Cacheable {
        let e = CacheEntry::new("c", "https://api", "read", "t".repeat(n), 60.0);
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

    #[test]
    fn a_kept_listing_is_current_by_the_coarse_clock_and_near_its_deadline_by_the_precise_one() {
        let keys: Keys = ["k"].into_iter().collect();
        let listing = |until: Option<Duration>| {
            let coarse = coarsetime::Instant::now_without_cache_update();
            let now = Instant::now();
            Listing::new(keys.clone(), 7, until.map(|d| now + d), coarse, now)
        };
        let never = listing(None);
        let far = listing(Some(Duration::from_secs(3_600)));
        assert!(never.current(7) && far.current(7));
        assert!(
            !never.current(8) && !far.current(8),
            "a change makes it stale"
        );
        // After 300 ms the coarse clock no longer answers for this one (its deadline is
        // within the lag), and the precise clock finds it current until its deadline.
        let near = listing(Some(COARSE_LAG + Duration::from_millis(300)));
        // Within the lag of the deadline from the start: only the precise clock answers.
        let short = listing(Some(Duration::from_millis(50)));
        assert!(near.current(7) && short.current(7));
        std::thread::sleep(Duration::from_millis(400));
        assert!(near.current(7), "current until its deadline");
        assert!(!short.current(7), "stale from its deadline");
    }

    #[tokio::test]
    async fn read_with_lends_the_value_it_holds_without_counting_it() {
        let cache = MemoryCache::new();
        let later = i64::MAX / 2000;
        cache.set("k", value(later)).await.unwrap();
        // The cache holds the only count of the body; a clone handed out by `get` is a
        // second one, while `read_with` shows the body in place and takes none.
        let counts = |value: Option<&Cacheable>| match value {
            Some(Cacheable::Entry(e)) => Arc::strong_count(&e.body),
            other => panic!("a token entry was shown: {other:?}"),
        };
        let mut lent = Vec::new();
        cache
            .read_with("k", &mut |value| lent.push(counts(value)))
            .await
            .unwrap();
        assert_eq!(lent, [1], "shown once, in place");
        let got = cache.get("k").await.unwrap();
        assert_eq!(counts(got.as_ref()), 2, "get hands out a counted clone");
        drop(got);
        // What `get` misses, `read_with` shows as `None`: a missing key, a value past
        // its deadline.
        cache.set("old", value(0)).await.unwrap();
        let mut shown = Vec::new();
        for key in ["missing", "old"] {
            cache
                .read_with(key, &mut |value| shown.push(value.is_some()))
                .await
                .unwrap();
        }
        assert_eq!(shown, [false, false]);
    }

    /// The slot moka holds for `key`, found without a moka read (which could apply a
    /// pending retime itself).
    fn slot(cache: &MemoryCache, key: &str) -> Arc<Slot> {
        cache
            .moka
            .iter()
            .find_map(|(k, slot)| (&**k == key).then_some(slot))
            .expect("moka holds the key")
    }

    #[tokio::test]
    async fn an_overwrite_that_keeps_the_deadline_leaves_moka_alone_for_a_while() {
        let clock = Arc::new(ManualClock::new(NOW_MS));
        let cache = MemoryCache::builder().clock(clock).build();
        let later = NOW_MS / 1000 + 3_600;
        cache.set("k", sized(2, later)).await.unwrap();
        let first = slot(&cache, "k");
        let touched = first.touched.load(Ordering::Relaxed);
        // The same deadline (by the frozen clock) a moment later: swapped in, and moka's
        // expiry and LRU order stand (no retime pending, no report to moka).
        tokio::time::sleep(Duration::from_millis(5)).await;
        cache.set("k", sized(3, later)).await.unwrap();
        let same = slot(&cache, "k");
        assert!(
            Arc::ptr_eq(&first, &same),
            "the value was swapped into its slot"
        );
        assert!(!same.retimed.load(Ordering::Acquire));
        assert_eq!(same.touched.load(Ordering::Relaxed), touched);
        assert_eq!(
            cache.get("k").await.unwrap(),
            Some(sized(3, later)),
            "the new value is read"
        );
        // Once moka last heard of the entry long enough ago, an overwrite reports it.
        tokio::time::sleep(Duration::from_millis(TOUCH_EVERY_MS + 20)).await;
        cache.set("k", sized(2, later)).await.unwrap();
        let reported = slot(&cache, "k");
        assert!(Arc::ptr_eq(&first, &reported));
        assert!(reported.touched.load(Ordering::Relaxed) >= touched + TOUCH_EVERY_MS);
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["k"]);
    }

    #[tokio::test]
    async fn an_overwrite_of_a_value_past_its_deadline_is_listed_anew() {
        let clock = Arc::new(ManualClock::new(NOW_MS));
        let cache = MemoryCache::builder().clock(clock).build();
        // Written already expired: held by moka for a moment (its expiry is rounded up),
        // dead for reads, never listed.
        cache.set("k", sized(2, NOW_MS / 1000 - 10)).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap(), None);
        assert!(cache.all_keys().await.unwrap().unwrap().is_empty());
        // A live value of the same weight: not swapped into the dead slot (which no
        // listing shows), but written anew, so listed.
        cache
            .set("k", sized(2, NOW_MS / 1000 + 3_600))
            .await
            .unwrap();
        assert!(cache.get("k").await.unwrap().is_some());
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["k"]);
        assert_eq!(index_len(&cache), 1);
    }

    #[tokio::test]
    async fn an_overwrite_in_place_moves_moka_s_expiry_both_ways() {
        // As above: a value of `soon` is dropped by moka 1 s after it is written.
        let soon = NOW_MS / 1000 + 10;
        let clock = Arc::new(ManualClock::new((soon + 1) * 1000 - 1_000));
        let cache = MemoryCache::builder().clock(clock).build();
        let later = i64::MAX / 2000;
        // Written to expire soon, then overwritten (in place: the same slot) to live on.
        cache.set("kept", value(soon)).await.unwrap();
        cache.set("dropped", value(later)).await.unwrap();
        let (kept, dropped) = (slot(&cache, "kept"), slot(&cache, "dropped"));
        cache.set("kept", value(later)).await.unwrap();
        cache.set("dropped", value(soon)).await.unwrap();
        for (key, before) in [("kept", &kept), ("dropped", &dropped)] {
            let now = slot(&cache, key);
            assert!(Arc::ptr_eq(before, &now), "{key}: overwritten in place");
            assert!(
                !now.retimed.load(Ordering::Acquire),
                "{key}: retimed by the write"
            );
        }
        tokio::time::sleep(Duration::from_millis(1_300)).await;
        // `contains_key` reads no slot, so what it sees is what the writes set.
        assert!(cache.moka.contains_key("kept"));
        assert!(!cache.moka.contains_key("dropped"));
        cache.run_pending_tasks().await;
        assert_eq!(cache.get("kept").await.unwrap(), Some(value(later)));
        assert_eq!(cache.get("dropped").await.unwrap(), None);
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["kept"]);
    }

    #[tokio::test]
    async fn an_overwrite_that_weighs_more_gets_a_new_slot_and_its_weight() {
        let cache = MemoryCache::new();
        let sized = |n: usize| sized(n, i64::MAX / 2000);
        cache.set("k", sized(1_000)).await.unwrap();
        let first = slot(&cache, "k");
        let weight = |cache: &MemoryCache| {
            cache.moka.run_pending_tasks();
            cache.moka.weighted_size()
        };
        let before = weight(&cache);
        assert_eq!(before, u64::from(first.budget));
        // A token one byte longer most often fits the slot; 1 KB more never does.
        cache.set("k", sized(2_000)).await.unwrap();
        let second = slot(&cache, "k");
        assert!(!Arc::ptr_eq(&first, &second), "a new slot");
        assert!(second.budget >= first.budget + 1_000 - 64);
        assert_eq!(
            weight(&cache),
            u64::from(second.budget),
            "moka charges the new weight"
        );
        assert_eq!(cache.get("k").await.unwrap(), Some(sized(2_000)));
        // Back to the first size: a new slot again, charged less.
        cache.set("k", sized(1_000)).await.unwrap();
        assert_eq!(weight(&cache), before);
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["k"]);
    }

    #[tokio::test]
    async fn removing_every_key_empties_the_cache_and_later_writes_stay() {
        let cache = MemoryCache::new();
        let keys: Vec<Key> = (0..10).map(|i| Key::from(format!("k{i}"))).collect();
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
        assert!(
            cache.slots.pin().is_empty(),
            "and took them off the read path"
        );
        // Written after the clear: stored, listed, counted.
        cache.set("k3", value(i64::MAX / 2000)).await.unwrap();
        cache.set("new", value(i64::MAX / 2000)).await.unwrap();
        assert!(cache.get("k3").await.unwrap().is_some());
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["k3", "new"]);
        assert_eq!(cache.entry_count().await, 2);
        // Not every stored key: the one-by-one path, the rest stays.
        assert!(!cache.remove_everything(&["k3".into()]).await);
        cache.remove_many(&["k3".into()]).await.unwrap();
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["new"]);
        cache.remove_many(&["new".into()]).await.unwrap();
        assert_eq!(cache.entry_count().await, 0);
    }

    #[tokio::test]
    async fn a_value_of_an_older_generation_is_dead() {
        let cache = MemoryCache::new();
        cache.set("k", value(i64::MAX / 2000)).await.unwrap();
        assert!(cache.remove_everything(&["k".into()]).await);
        // What a value written in the very tick of moka's `invalidate_all` leaves: moka
        // (and the read path) still hold it, in the generation before the clear.
        let old = Slot::new(
            cache.generation.load(Ordering::Acquire) - 1,
            budget(weigh("k", &value(i64::MAX / 2000))),
            cache.stored(value(i64::MAX / 2000), Instant::now()),
            0,
        );
        cache.slots.pin().insert(Key::from("k"), old.clone());
        cache.moka.insert(Key::from("k"), old);
        assert!(cache.moka.contains_key("k"), "moka holds the survivor");
        assert_eq!(cache.get("k").await.unwrap(), None);
        assert_eq!(
            cache.all_keys().await.unwrap().unwrap(),
            Vec::<String>::new()
        );
        let seen = cache
            .update(
                "k",
                None,
                Box::new(|current| {
                    assert!(current.is_none(), "an update is shown no value");
                    Update::Keep
                }),
            )
            .await
            .unwrap();
        assert!(matches!(seen, Updated::Kept(None)));
        // A write replaces it, and is seen.
        cache.set("k", value(i64::MAX / 2000)).await.unwrap();
        assert!(cache.get("k").await.unwrap().is_some());
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["k"]);
    }

    #[tokio::test]
    async fn a_clear_right_after_a_write_always_removes_it() {
        let cache = MemoryCache::new();
        let keys: [Key; 2] = ["a".into(), "b".into()];
        for round in 0..20_000 {
            for k in &keys {
                cache.set(k, value(i64::MAX / 2000)).await.unwrap();
            }
            cache.remove_many(&keys).await.unwrap();
            for k in &keys {
                assert_eq!(cache.get(k).await.unwrap(), None, "round {round}: {k}");
            }
        }
        assert_eq!(cache.entry_count().await, 0);
    }

    #[tokio::test]
    async fn removing_by_prefix_takes_exactly_the_selected_keys() {
        let cache = MemoryCache::new();
        let keys = [
            "p::a",
            "p::a::x::s",
            "p::a::y",
            "p::a2::x",
            "p::b::x",
            "q::a::x",
        ];
        for k in keys {
            cache.set(k, value(i64::MAX / 2000)).await.unwrap();
        }
        let remaining = |cache: &MemoryCache| cache.listed("");
        // Under the prefix, and only those `matches` accepts.
        let n = cache
            .remove_prefix_matching("p::a", &|k: &str| k != "p::a::y")
            .await
            .unwrap();
        assert_eq!(n, Some(3), "p::a, p::a::x::s and p::a2::x");
        assert_eq!(remaining(&cache), ["p::a::y", "p::b::x", "q::a::x"]);
        assert!(cache.get("p::a::x::s").await.unwrap().is_none());
        assert!(cache.get("p::a::y").await.unwrap().is_some());
        assert_eq!(cache.remove_prefix("p::").await.unwrap(), Some(2));
        assert_eq!(remaining(&cache), ["q::a::x"]);
        assert_eq!(cache.remove_prefix("p::").await.unwrap(), Some(0));
        // Every listed key: the one-step path, after which writes stay.
        let before = cache.generation.load(Ordering::Acquire);
        assert_eq!(cache.remove_prefix("").await.unwrap(), Some(1));
        assert_eq!(cache.generation.load(Ordering::Acquire), before + 1);
        assert!(cache.get("q::a::x").await.unwrap().is_none());
        assert_eq!(cache.entry_count().await, 0);
        cache.set("q::a::x", value(i64::MAX / 2000)).await.unwrap();
        assert_eq!(remaining(&cache), ["q::a::x"]);
        assert!(cache.get("q::a::x").await.unwrap().is_some());
    }

    /// The keys on the read path, and whether each slot is the one moka holds.
    fn read_path(cache: &MemoryCache) -> Vec<(String, bool)> {
        cache.moka.run_pending_tasks();
        let slots = cache.slots.pin();
        let mut keys: Vec<(String, bool)> = slots
            .iter()
            .map(|(k, slot)| {
                let held = cache
                    .moka
                    .iter()
                    .any(|(m, held)| *m == *k && Arc::ptr_eq(&held, slot));
                (k.to_string(), held)
            })
            .collect();
        keys.sort();
        keys
    }

    #[tokio::test]
    async fn the_read_path_follows_moka_s_evictions_and_expiry() {
        let later = i64::MAX / 2000;
        let one = budget(weigh("k000", &sized(1_000, later)));
        let cache = MemoryCache::builder()
            .max_capacity_bytes(10 * u64::from(one))
            .build();
        for i in 0..200 {
            cache
                .set(&format!("k{i:03}"), sized(1_000, later))
                .await
                .unwrap();
        }
        // Moka evicted for size: what it dropped left the read path too, and every slot
        // left there is the one moka holds.
        let left = read_path(&cache);
        assert!(left.len() <= 10, "{} slots for 10 entries", left.len());
        assert!(left.iter().all(|(_, held)| *held), "{left:?}");
        assert_eq!(left.len() as u64, cache.moka.entry_count());
        let listed = cache.all_keys().await.unwrap().unwrap();
        let on_path: Vec<String> = left.into_iter().map(|(k, _)| k).collect();
        assert_eq!(listed, on_path);

        // Moka's expiry empties it as well (a value of `soon` lives 300 ms here).
        let soon = NOW_MS / 1000 + 10;
        let clock = Arc::new(ManualClock::new((soon + 1) * 1000 - 300));
        let cache = MemoryCache::builder().clock(clock).build();
        for i in 0..20 {
            cache
                .set(&format!("s{i:02}"), sized(10, soon))
                .await
                .unwrap();
        }
        cache.set("stays", sized(10, later)).await.unwrap();
        assert_eq!(read_path(&cache).len(), 21);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(read_path(&cache), [("stays".to_owned(), true)]);
        // Removals take the slot off the read path at once.
        cache.remove("stays").await.unwrap();
        assert!(cache.slots.pin().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_read_path_stays_moka_s_under_concurrent_writes() {
        // Tasks race sets (in place and of new weights), removals, gets, `remove_many`
        // and one-step clears on a few keys of a cache small enough to evict for size.
        // After each round, once moka's housekeeping ran, every slot on the read path is
        // the one moka holds, and moka holds nothing the read path misses.
        let cache = Arc::new(MemoryCache::builder().max_capacity_bytes(8 * 1024).build());
        let keys: Arc<Vec<Key>> = Arc::new((0..6).map(|i| Key::from(format!("k{i}"))).collect());
        let sized = |n: usize| sized(n, i64::MAX / 2000);
        for round in 0..100u64 {
            let mut tasks = Vec::new();
            for t in 0..4u64 {
                let (cache, keys) = (cache.clone(), keys.clone());
                tasks.push(tokio::spawn(async move {
                    let mut seed = (round << 8 | t) + 1;
                    for _ in 0..40 {
                        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        let r = seed >> 33;
                        let k = &keys[(r % keys.len() as u64) as usize];
                        match (r >> 8) % 8 {
                            0 => cache.remove(k).await.unwrap(),
                            1 => cache.remove_many(&keys[..2]).await.unwrap(),
                            2 if r % 7 == 0 => cache.remove_many(&keys).await.unwrap(),
                            3 | 4 => cache.set(k, sized(500)).await.unwrap(),
                            5 => cache
                                .set(k, sized(500 + (r % 3) as usize * 400))
                                .await
                                .unwrap(),
                            _ => drop(cache.get(k).await.unwrap()),
                        }
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let path = read_path(&cache);
            assert!(
                path.iter().all(|(_, held)| *held),
                "round {round}: {path:?}"
            );
            let generation = cache.generation.load(Ordering::Acquire);
            let live_in_moka = cache
                .moka
                .iter()
                .filter(|(_, slot)| slot.generation == generation)
                .count();
            let live_on_path = cache
                .slots
                .pin()
                .values()
                .filter(|slot| slot.generation == generation)
                .count();
            assert_eq!(live_on_path, live_in_moka, "round {round}");
            let listed = cache.listed("");
            let mut got = Vec::new();
            for k in keys.iter() {
                if cache.get(k).await.unwrap().is_some() {
                    got.push(k.clone());
                }
            }
            assert_eq!(listed, got, "round {round}");
        }
    }

    #[tokio::test]
    async fn a_read_past_the_deadline_misses_before_moka_drops_the_entry() {
        // A value of `soon` expires 200 ms after it is written.
        let soon = NOW_MS / 1000 + 10;
        let clock = Arc::new(ManualClock::new((soon + 1) * 1000 - 200));
        let cache = MemoryCache::builder().clock(clock).build();
        cache.set("k", value(soon)).await.unwrap();
        assert!(cache.get("k").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Still on the read path (nothing ran moka's housekeeping or its listener), and
        // not returned, listed or counted.
        assert!(cache.slots.pin().contains_key("k"));
        assert_eq!(cache.get("k").await.unwrap(), None);
        assert_eq!(cache.listed(""), Vec::<String>::new());
        assert_eq!(cache.entry_count().await, 0);
    }

    #[tokio::test]
    async fn a_kept_listing_is_handed_out_until_the_cache_changes() {
        let later = i64::MAX / 2000;
        let cache = MemoryCache::new();
        for k in ["b", "a", "c"] {
            cache.set(k, value(later)).await.unwrap();
        }
        let first = cache.all_keys().await.unwrap().unwrap();
        assert_eq!(first, ["a", "b", "c"]);
        let again = cache.all_keys().await.unwrap().unwrap();
        assert_eq!(
            first.as_slice().as_ptr(),
            again.as_slice().as_ptr(),
            "the same listing, no key copied"
        );
        // A prefix listing is a range of it.
        let b = cache.keys_with_prefix("b").await.unwrap().unwrap();
        assert_eq!(b, ["b"]);
        assert!(Arc::ptr_eq(&b[0], &first[1]));
        for (prefix, want) in [
            ("", &["a", "b", "c"][..]),
            ("0", &[]),
            ("c", &["c"]),
            ("d", &[]),
        ] {
            let got = cache.keys_with_prefix(prefix).await.unwrap().unwrap();
            assert_eq!(got, want, "{prefix:?}");
        }
        // Every change is seen at once.
        cache.set("d", value(later)).await.unwrap();
        assert_eq!(
            cache.all_keys().await.unwrap().unwrap(),
            ["a", "b", "c", "d"]
        );
        assert_eq!(cache.keys_with_prefix("d").await.unwrap().unwrap(), ["d"]);
        cache.remove("b").await.unwrap();
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["a", "c", "d"]);
        cache.remove_many(&["c".into()]).await.unwrap();
        assert_eq!(
            cache.keys_with_prefix("").await.unwrap().unwrap(),
            ["a", "d"]
        );
        let removed = cache
            .update("d", None, Box::new(|_| Update::Remove))
            .await
            .unwrap();
        assert_eq!(removed, Updated::Removed);
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["a"]);
        assert_eq!(cache.remove_prefix("").await.unwrap(), Some(1));
        assert_eq!(
            cache.all_keys().await.unwrap().unwrap(),
            Vec::<String>::new()
        );
        cache.set("e", value(later)).await.unwrap();
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["e"]);
    }

    #[tokio::test]
    async fn a_kept_listing_follows_deadlines_and_overwrites() {
        // A value of `soon` expires 200 ms after it is written (the clock does not move);
        // `later` (as many digits, so as heavy) never does here.
        let soon = NOW_MS / 1000 + 10;
        let later = soon + 1_000_000;
        let clock = Arc::new(ManualClock::new((soon + 1) * 1000 - 200));
        let cache = MemoryCache::builder().clock(clock).build();
        cache.set("a", value(later)).await.unwrap();
        cache.set("b", value(soon)).await.unwrap();
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["a", "b"]);
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Nothing was written since: the kept listing went stale at its first deadline.
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["a"]);
        assert_eq!(
            cache.keys_with_prefix("b").await.unwrap().unwrap(),
            Vec::<String>::new()
        );

        // `c` is overwritten in place by a value that expires soon: the listing kept
        // before, which has no deadline, is not used after it.
        cache.set("c", value(later)).await.unwrap();
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["a", "c"]);
        let slot = |cache: &MemoryCache| cache.slots.pin().get("c").cloned().unwrap();
        let before = slot(&cache);
        cache.set("c", value(soon)).await.unwrap();
        assert!(Arc::ptr_eq(&before, &slot(&cache)), "an overwrite in place");
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["a", "c"]);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), ["a"]);
    }

    #[tokio::test]
    async fn a_kept_listing_follows_moka_s_evictions() {
        let e = |n: usize| sized(n, i64::MAX / 2000);
        let one = budget(weigh("k00", &e(1_000)));
        let cache = MemoryCache::builder()
            .max_capacity_bytes(4 * u64::from(one))
            .build();
        for i in 0..8 {
            cache.set(&format!("k{i:02}"), e(1_000)).await.unwrap();
        }
        // Moka has not run its housekeeping yet: the read path holds every slot, and the
        // listing kept now shows them all.
        let before = cache.all_keys().await.unwrap().unwrap();
        assert_eq!(before.len(), 8, "{before:?}");
        // Moka evicts for size; only its listener tells the cache.
        cache.moka.run_pending_tasks();
        let after = cache.all_keys().await.unwrap().unwrap();
        let on_path: Vec<String> = read_path(&cache).into_iter().map(|(k, _)| k).collect();
        assert!(on_path.len() <= 4, "{on_path:?}");
        assert_eq!(after, on_path);
    }

    #[tokio::test]
    async fn reads_reach_moka_s_lru_order() {
        let e = |n: usize| sized(n, i64::MAX / 2000);
        let one = budget(weigh("a", &e(1_000)));
        let cache = MemoryCache::builder()
            .max_capacity_bytes(2 * u64::from(one))
            .build();
        cache.set("a", e(1_000)).await.unwrap();
        cache.set("b", e(1_000)).await.unwrap();
        cache.moka.run_pending_tasks();
        // `a` is the least recently used for moka until a read reports it, which the
        // first read after `TOUCH_EVERY_MS` does.
        tokio::time::sleep(Duration::from_millis(TOUCH_EVERY_MS + 20)).await;
        assert!(cache.get("a").await.unwrap().is_some());
        cache.moka.run_pending_tasks();
        cache.set("c", e(1_000)).await.unwrap();
        cache.run_pending_tasks().await;
        assert_eq!(
            cache.listed(""),
            ["a", "c"],
            "b was the least recently used"
        );
    }

    #[tokio::test]
    async fn remove_many_takes_keys_out_of_moka_and_the_index() {
        let cache = MemoryCache::new();
        let keys: Vec<Key> = (0..10).map(|i| Key::from(format!("k{i}"))).collect();
        for k in &keys {
            cache.set(k, value(i64::MAX / 2000)).await.unwrap();
        }
        cache.remove_many(&keys[..7]).await.unwrap();
        assert_eq!(cache.all_keys().await.unwrap().unwrap(), &keys[7..]);
        assert_eq!(index_len(&cache), 3);
        assert!(cache.get("k0").await.unwrap().is_none());
    }
}
