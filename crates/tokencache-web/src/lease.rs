//! [`WebLock`]: the refresh lock of a browser storage cache, a Web Lock held for the
//! lease plus a lease record in the storage area that fences are checked against.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use js_sys::{Function, Promise};
use serde::{Deserialize, Serialize};
use tokencache_core::{
    async_trait, Clock, Error, Fence, Lease, RefreshLock, Result, SystemClock, TryAcquire,
};
use wasm_bindgen::JsValue;
use web_sys::Storage;

use crate::locks::{clear_timeout, pending, set_timeout, LockManager};
use crate::storage::js_error;

/// The start of every storage key (and Web Lock name) that holds a lease record. Such keys
/// are reserved: the caches never list them ([`Cache::all_keys`], [`Cache::keys_with_prefix`]),
/// never remove them in `clear` or `remove_prefix`, and refuse to write cache values there.
///
/// [`Cache::all_keys`]: tokencache_core::Cache::all_keys
/// [`Cache::keys_with_prefix`]: tokencache_core::Cache::keys_with_prefix
pub const LEASE_KEY_PREFIX: &str = "@@tokencache-lease@@::";

/// The start of the names of the Web Locks that updates of a cache prefix run under.
const UPDATE_LOCK_PREFIX: &str = "@@tokencache-update@@::";

/// How much longer than its lease record a Web Lock is held: the record (what fences are
/// checked against) always ends before the lock is handed on, even when the timer and
/// `Date.now()` disagree by a little.
const LOCK_GRACE_MS: i64 = 25;

/// The least `retry_after` of a `Busy` answer: the Web Lock can outlive an expired record by
/// [`LOCK_GRACE_MS`] (or longer, in a background tab whose timers the browser slows).
const MIN_RETRY_MS: i64 = 20;

/// The longest lease: `setTimeout` takes at most `2^31 - 1` ms, and the Web Lock must not be
/// released before the record expires.
const MAX_TTL_MS: i64 = i32::MAX as i64 - LOCK_GRACE_MS;

/// The storage key of the lease record of lock `name` under the cache prefix `prefix`; the
/// Web Lock of the lease has the same name. The length of the prefix makes the key
/// unambiguous whatever the prefix and the name contain.
pub(crate) fn lease_key(prefix: &str, name: &str) -> String {
    format!("{LEASE_KEY_PREFIX}{}:{prefix}::{name}", prefix.len())
}

/// The name of the Web Lock that updates under the cache prefix `prefix` run under.
pub(crate) fn update_lock_name(prefix: &str) -> String {
    format!("{UPDATE_LOCK_PREFIX}{prefix}")
}

/// Whether `key` is reserved for lease records.
pub(crate) fn is_reserved(key: &str) -> bool {
    key.starts_with(LEASE_KEY_PREFIX)
}

/// The lease record, stored as JSON at the lease key: who holds the lease, its epoch, and
/// until when (ms since the Unix epoch, by `Date.now()`; 0 once released).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaseRecord {
    /// The holder's id, 32 lowercase hex digits.
    holder: String,
    /// The epoch of the acquisition; every acquisition stores a larger one.
    epoch: u64,
    /// When the lease ends unless extended.
    expires_at_ms: i64,
}

impl LeaseRecord {
    /// Whether the record names the holder and epoch of `fence`.
    fn names(&self, fence: &Fence) -> bool {
        self.epoch == fence.epoch && self.holder == hex(&fence.holder)
    }
}

/// Why a stored lease record cannot be used.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    /// Not the JSON of a lease record.
    #[error("not a lease record: {0}")]
    Format(#[from] serde_json::Error),
    /// The holder is not 16 bytes in hex.
    #[error("the holder is not 32 lowercase hex digits")]
    Holder,
}

fn parse_record(item: &str) -> std::result::Result<LeaseRecord, RecordError> {
    let record: LeaseRecord = serde_json::from_str(item)?;
    let hex_ok = record.holder.len() == 32
        && record
            .holder
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex_ok {
        return Err(RecordError::Holder);
    }
    Ok(record)
}

fn hex(bytes: &[u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A lease's Web Lock as this tab holds it: resolving `release` lets the lock go, after
/// which `request` (the promise of the lock request) settles.
struct Hold {
    holder: [u8; 16],
    epoch: u64,
    release: Function,
    timer: JsValue,
    request: Option<Promise>,
}

impl Hold {
    fn is(&self, fence: &Fence) -> bool {
        self.holder == fence.holder && self.epoch == fence.epoch
    }

    /// Lets the Web Lock go (a second call does nothing); returns the promise that settles
    /// once it is gone.
    fn end(self) -> Option<Promise> {
        clear_timeout(&self.timer);
        let _ = self.release.call0(&JsValue::UNDEFINED);
        self.request
    }
}

thread_local! {
    /// The Web Locks of leases this tab holds, by lease key.
    static HOLDS: RefCell<HashMap<String, Hold>> = RefCell::default();
    /// The largest epoch this tab stored, by storage area and lease key: an acquisition
    /// never goes below it, even over a damaged record.
    static EPOCHS: RefCell<HashMap<(&'static str, String), u64>> = RefCell::default();
}

/// Ends and forgets this tab's hold of `key` if it is the one of `fence`; returns the
/// promise that settles once the Web Lock is gone.
fn end_hold_of(key: &str, fence: &Fence) -> Option<Promise> {
    let hold = HOLDS.with(|holds| {
        let mut holds = holds.borrow_mut();
        match holds.get(key) {
            Some(h) if h.is(fence) => holds.remove(key),
            _ => None,
        }
    });
    hold.and_then(Hold::end)
}

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// `ttl` in whole milliseconds, at most [`MAX_TTL_MS`].
fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).map_or(MAX_TTL_MS, |ms| ms.min(MAX_TTL_MS))
}

/// How long a `Busy` caller should wait: until the record's expiry (`left` ms from now),
/// at least [`MIN_RETRY_MS`], at most the caller's own ttl.
fn retry_after(left: i64, ttl_ms: i64) -> Duration {
    let ms = left.max(MIN_RETRY_MS).min(ttl_ms.max(1));
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// 16 random bytes from `crypto.getRandomValues`.
fn random_holder() -> Result<[u8; 16]> {
    let crypto = web_sys::window()
        .ok_or_else(|| Error::unavailable("no window: cannot draw a holder id"))?
        .crypto()
        .map_err(|_| Error::unavailable("window.crypto is not available"))?;
    let mut id = [0u8; 16];
    crypto
        .get_random_values_with_u8_array(&mut id)
        .map_err(|_| Error::unavailable("crypto.getRandomValues failed"))?;
    Ok(id)
}

/// The refresh lock of a [`StorageCache`](crate::StorageCache), as its
/// [`Cache::refresh_lock`](tokencache_core::Cache::refresh_lock) returns it (or
/// [`StorageCache::web_lock`](crate::StorageCache::web_lock)).
///
/// A lease of lock `name` is two things:
///
/// - **A Web Lock** (`navigator.locks`, exclusive, asked for with `ifAvailable`, never
///   `steal`), shared by every tab, frame and worker of the origin: it decides who gets
///   the lease. [`RefreshLock::try_acquire`] never waits: a lock held elsewhere is
///   [`TryAcquire::Busy`]. The lock is held until [`RefreshLock::release`] or until the
///   lease's ttl (plus a few milliseconds) elapses, by a timer, so a holder that hangs
///   blocks the others no longer than its lease; a tab that closes lets it go at once.
/// - **A lease record** in the storage area, at a reserved key (see [`LEASE_KEY_PREFIX`]
///   and [`WebLock::lease_key`]): the holder's random id (16 bytes from
///   `crypto.getRandomValues`), the epoch (one more than the last at every acquisition)
///   and the expiry (`Date.now()` + ttl). A fenced [`Cache::update`] of the cache checks
///   its [`Fence`] against this record in the same synchronous turn as its write: a
///   holder that paused past its lease, or whose lease was taken again, writes nothing
///   ([`Updated::FenceLost`]). [`RefreshLock::extend`] moves the record's expiry and the
///   timer if the record still names the lease; [`RefreshLock::release`] compares, then
///   releases, so a late holder leaves a newer one alone.
///
/// Where there is no Web Locks API (an old browser, a page that is not a secure
/// context) and for `sessionStorage` (one tab's storage, so nothing to share with other
/// tabs), the lease is the record alone, read and written in one synchronous turn of the
/// page's single thread: exact inside the tab. Across tabs without Web Locks nothing
/// serializes two tabs that read the record at the same moment, and the guard of
/// invariant I2 is then the re-check every manager update makes of the refresh token it
/// is shown.
///
/// `Busy { retry_after }` is the time left on the holder's record, at least 20 ms and at
/// most the ttl asked for.
///
/// [`Cache::update`]: tokencache_core::Cache::update
/// [`Updated::FenceLost`]: tokencache_core::Updated::FenceLost
#[derive(Clone)]
pub struct WebLock {
    storage: Storage,
    area: &'static str,
    prefix: String,
    locks: Option<LockManager>,
}

impl fmt::Debug for WebLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebLock")
            .field("storage", &self.area)
            .field("prefix", &self.prefix)
            .field("web_locks", &self.locks.is_some())
            .finish()
    }
}

impl WebLock {
    pub(crate) fn new(
        storage: Storage,
        area: &'static str,
        prefix: String,
        locks: Option<LockManager>,
    ) -> Self {
        WebLock {
            storage,
            area,
            prefix,
            locks,
        }
    }

    /// Whether leases are Web Locks shared by the origin's tabs (`false`: the lease
    /// record alone, see the type's docs).
    pub fn uses_web_locks(&self) -> bool {
        self.locks.is_some()
    }

    /// The storage key of the lease record of lock `name`, which is also the name of its
    /// Web Lock: [`LEASE_KEY_PREFIX`], the length of the cache prefix, the cache prefix and
    /// `name`.
    pub fn lease_key(&self, name: &str) -> String {
        lease_key(&self.prefix, name)
    }

    /// The record at `key`; a damaged one is logged and counts as none (so it never
    /// fences anything in, and the next acquisition replaces it).
    fn read_record(&self, key: &str) -> Result<Option<LeaseRecord>> {
        let item = self
            .storage
            .get_item(key)
            .map_err(|e| js_error(self.area, "read", &e))?;
        Ok(item.and_then(|item| match parse_record(&item) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::warn!(storage = self.area, key, error = %e, "damaged lease record; treated as no lease");
                None
            }
        }))
    }

    fn write_record(&self, key: &str, record: &LeaseRecord) -> Result<()> {
        let text = serde_json::to_string(record)
            .map_err(|_| Error::serialization("cannot write a lease record"))?;
        self.storage
            .set_item(key, &text)
            .map_err(|e| js_error(self.area, "write", &e))
    }

    /// Whether `fence` still holds its lease: the record names its holder and epoch and
    /// has not expired. Synchronous, so that a fenced update checks and writes in one turn.
    pub(crate) fn holds_now(&self, fence: &Fence) -> Result<bool> {
        let record = self.read_record(&self.lease_key(&fence.lock))?;
        Ok(record.is_some_and(|r| r.names(fence) && r.expires_at_ms > now_ms()))
    }

    /// The `Busy` answer, from the record at `key`.
    fn busy(&self, key: &str, ttl_ms: i64) -> Result<TryAcquire> {
        let now = now_ms();
        let left = self
            .read_record(key)?
            .map_or(0, |r| r.expires_at_ms.saturating_sub(now));
        let retry_after = retry_after(left, ttl_ms);
        tracing::debug!(storage = self.area, key, ?retry_after, "lease busy");
        Ok(TryAcquire::Busy { retry_after })
    }

    /// Takes the lease `name` (record at `key`) for `ttl_ms`: a new holder id, the next
    /// epoch, the record written. The caller decided that nobody else holds it.
    fn take(&self, key: &str, name: &str, ttl_ms: i64) -> Result<Lease> {
        let now = now_ms();
        let record = self.read_record(key)?;
        if record.as_ref().is_some_and(|r| r.expires_at_ms > now) {
            // Only with the Web Lock in hand: the lock is the authority, and a record it
            // contradicts was left by a holder whose lock is gone (a write of another tab
            // that this tab's storage has not seen yet, or a clock that moved).
            tracing::debug!(
                storage = self.area,
                key,
                "replacing a lease record whose Web Lock is gone"
            );
        }
        let seen = EPOCHS.with(|e| {
            e.borrow()
                .get(&(self.area, key.to_owned()))
                .copied()
                .unwrap_or(0)
        });
        let epoch = record.map_or(0, |r| r.epoch).max(seen).saturating_add(1);
        let holder = random_holder()?;
        let expires_at_ms = now.saturating_add(ttl_ms);
        self.write_record(
            key,
            &LeaseRecord {
                holder: hex(&holder),
                epoch,
                expires_at_ms,
            },
        )?;
        EPOCHS.with(|e| e.borrow_mut().insert((self.area, key.to_owned()), epoch));
        tracing::debug!(storage = self.area, key, epoch, ttl_ms, "lease taken");
        Ok(Lease {
            fence: Fence {
                lock: name.to_owned(),
                holder,
                epoch,
            },
            expires_at_ms,
        })
    }

    /// With the Web Lock of `key` just granted: takes the lease and returns the promise
    /// that holds the lock (until released, or the ttl and the grace elapse).
    fn take_and_hold(&self, key: &str, name: &str, ttl_ms: i64) -> Result<(Lease, Promise)> {
        let (hold, release) = pending()?;
        let lease = self.take(key, name, ttl_ms)?;
        let delay = i32::try_from(ttl_ms + LOCK_GRACE_MS).unwrap_or(i32::MAX);
        let timer = set_timeout(&release, delay);
        let replaced = HOLDS.with(|holds| {
            holds.borrow_mut().insert(
                key.to_owned(),
                Hold {
                    holder: lease.fence.holder,
                    epoch: lease.fence.epoch,
                    release,
                    timer,
                    request: None,
                },
            )
        });
        // A hold this tab still kept for the key has lost its lock already (we were just
        // granted it): end its timer.
        if let Some(old) = replaced {
            let _ = old.end();
        }
        Ok((lease, hold))
    }

    /// The whole acquisition without Web Locks: one synchronous turn over the record.
    fn acquire_by_record(&self, name: &str, ttl_ms: i64) -> Result<TryAcquire> {
        let key = self.lease_key(name);
        let now = now_ms();
        match self.read_record(&key)? {
            Some(r) if r.expires_at_ms > now => {
                let retry_after = retry_after(r.expires_at_ms - now, ttl_ms);
                tracing::debug!(storage = self.area, key, ?retry_after, "lease busy");
                Ok(TryAcquire::Busy { retry_after })
            }
            _ => self.take(&key, name, ttl_ms).map(TryAcquire::Held),
        }
    }

    async fn acquire_by_web_lock(
        &self,
        locks: &LockManager,
        name: &str,
        ttl_ms: i64,
    ) -> Result<TryAcquire> {
        let key = self.lease_key(name);
        let (this, granted_key, name) = (self.clone(), key.clone(), name.to_owned());
        let on_grant = move |granted: bool| {
            if !granted {
                return (this.busy(&granted_key, ttl_ms), None);
            }
            match this.take_and_hold(&granted_key, &name, ttl_ms) {
                Ok((lease, hold)) => (Ok(TryAcquire::Held(lease)), Some(hold)),
                // Nothing taken: returning no promise releases the Web Lock.
                Err(e) => (Err(e), None),
            }
        };
        // A caller that drops the future after the lease was taken releases it.
        let this = self.clone();
        let abandon = move |outcome: Result<TryAcquire>| {
            if let Ok(TryAcquire::Held(lease)) = outcome {
                if let (Err(e), _) = this.release_now(&lease) {
                    tracing::warn!(storage = this.area, error = %e, "cannot release an abandoned lease");
                }
            }
        };
        let (outcome, request) = locks.try_exclusive(&key, on_grant, abandon).await?;
        if let Ok(TryAcquire::Held(lease)) = &outcome {
            HOLDS.with(|holds| {
                if let Some(hold) = holds.borrow_mut().get_mut(&key) {
                    if hold.is(&lease.fence) {
                        hold.request = Some(request);
                    }
                }
            });
        }
        outcome
    }

    fn extend_now(&self, lease: &Lease, ttl_ms: i64) -> Result<bool> {
        let key = self.lease_key(&lease.fence.lock);
        let now = now_ms();
        let record = self
            .read_record(&key)?
            .filter(|r| r.names(&lease.fence) && r.expires_at_ms > now);
        let held = self.locks.is_none()
            || HOLDS.with(|h| h.borrow().get(&key).is_some_and(|h| h.is(&lease.fence)));
        let Some(record) = record.filter(|_| held) else {
            // Lost: let this tab's Web Lock of it go, if it still has it.
            let _ = end_hold_of(&key, &lease.fence);
            return Ok(false);
        };
        let expires_at_ms = now.saturating_add(ttl_ms);
        self.write_record(
            &key,
            &LeaseRecord {
                expires_at_ms,
                ..record
            },
        )?;
        if self.locks.is_some() {
            let delay = i32::try_from(ttl_ms + LOCK_GRACE_MS).unwrap_or(i32::MAX);
            HOLDS.with(|holds| {
                if let Some(hold) = holds.borrow_mut().get_mut(&key) {
                    clear_timeout(&hold.timer);
                    hold.timer = set_timeout(&hold.release, delay);
                }
            });
        }
        tracing::debug!(
            storage = self.area,
            key,
            epoch = lease.fence.epoch,
            ttl_ms,
            "lease extended"
        );
        Ok(true)
    }

    /// Releases `lease` (compare and release); returns the promise that settles once this
    /// tab's Web Lock of it is gone, if it held one.
    fn release_now(&self, lease: &Lease) -> (Result<()>, Option<Promise>) {
        let key = self.lease_key(&lease.fence.lock);
        let written = match self.read_record(&key) {
            Ok(Some(record)) if record.names(&lease.fence) => self.write_record(
                &key,
                &LeaseRecord {
                    expires_at_ms: 0,
                    ..record
                },
            ),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        // The Web Lock goes after the record, and goes even if the record could not be
        // written (the record then expires by itself).
        let gone = end_hold_of(&key, &lease.fence);
        tracing::debug!(
            storage = self.area,
            key,
            epoch = lease.fence.epoch,
            "lease released"
        );
        (written, gone)
    }
}

#[async_trait(?Send)]
impl RefreshLock for WebLock {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<TryAcquire> {
        let ttl_ms = ttl_ms(ttl);
        match &self.locks {
            Some(locks) => self.acquire_by_web_lock(locks, name, ttl_ms).await,
            None => self.acquire_by_record(name, ttl_ms),
        }
    }

    async fn extend(&self, lease: &Lease, ttl: Duration) -> Result<bool> {
        self.extend_now(lease, ttl_ms(ttl))
    }

    /// Compare and release; when this tab held the lease's Web Lock, returns once the
    /// browser let it go, so that a `try_acquire` that follows finds it free.
    async fn release(&self, lease: Lease) -> Result<()> {
        let (written, gone) = self.release_now(&lease);
        if let Some(gone) = gone {
            // It settles as the callback's promise did: fulfilled.
            let _ = wasm_bindgen_futures::JsFuture::from(gone).await;
        }
        written
    }
}
