//! The kit tests its lease checks: they pass on a cache with a correct refresh lock, and
//! each fails on a cache whose lock (or fence check) is broken in one way.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokencache_core::{
    async_trait, Cache, Cacheable, Clock, Fence, Keys, Lease, RefreshLock, Result, TryAcquire,
    UpdateFn, Updated,
};

use crate::{checks, Capabilities, Fixture, Suite};

/// How the lock (or the cache's fence check) is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// A correct lock.
    None,
    /// `try_acquire` takes the lock even when it is held.
    NeverBusy,
    /// Fences, `extend` and `release` compare the holder only, not the epoch.
    IgnoresEpoch,
    /// As `IgnoresEpoch`, and every lease gets the same holder id (a process id, say).
    ReusedHolder,
    /// `release` frees the lock whoever asks.
    ReleasesAnyone,
    /// A lease never ends by itself.
    NeverExpires,
    /// `update` writes whatever its fence.
    FenceUnchecked,
    /// A manager's `clear` removes the leases too (they live among the entries).
    LeasesAreEntries,
}

/// One lock name's state.
#[derive(Debug, Clone, Copy)]
struct Slot {
    holder: [u8; 16],
    epoch: u64,
    expires_at_ms: i64,
}

/// A lease lock by the fixture's clock, with a fault.
#[derive(Debug)]
struct FaultyLock {
    clock: Arc<dyn Clock>,
    fault: Fault,
    slots: Mutex<HashMap<String, Slot>>,
    next_holder: Mutex<u8>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaultyLock {
    /// Whether `slot` is the lease of `fence` (as the fault sees it).
    fn is_of(&self, slot: &Slot, fence: &Fence) -> bool {
        let epochs = !matches!(self.fault, Fault::IgnoresEpoch | Fault::ReusedHolder);
        slot.holder == fence.holder && (!epochs || slot.epoch == fence.epoch)
    }

    /// Whether `fence` is the live lease of its name (as the fault sees it).
    fn holds(&self, fence: &Fence) -> bool {
        let now = self.clock.now_ms();
        guard(&self.slots)
            .get(&fence.lock)
            .is_some_and(|s| self.is_of(s, fence) && s.expires_at_ms > now)
    }
}

#[async_trait]
impl RefreshLock for FaultyLock {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<TryAcquire> {
        let now = self.clock.now_ms();
        let holder = if self.fault == Fault::ReusedHolder {
            [7; 16]
        } else {
            let mut n = guard(&self.next_holder);
            *n = n.wrapping_add(1);
            [*n; 16]
        };
        let mut slots = guard(&self.slots);
        let slot = slots.entry(name.to_owned()).or_insert(Slot {
            holder: [0; 16],
            epoch: 0,
            expires_at_ms: 0,
        });
        if slot.expires_at_ms > now && self.fault != Fault::NeverBusy {
            return Ok(TryAcquire::Busy {
                retry_after: Duration::from_millis((slot.expires_at_ms - now) as u64),
            });
        }
        let ttl_ms = ttl.as_millis() as i64;
        *slot = Slot {
            holder,
            epoch: slot.epoch + 1,
            expires_at_ms: if self.fault == Fault::NeverExpires {
                now + 1_000 * ttl_ms
            } else {
                now + ttl_ms
            },
        };
        Ok(TryAcquire::Held(Lease {
            fence: Fence {
                lock: name.to_owned(),
                holder,
                epoch: slot.epoch,
            },
            expires_at_ms: now + ttl_ms,
        }))
    }

    async fn extend(&self, lease: &Lease, ttl: Duration) -> Result<bool> {
        if !self.holds(&lease.fence) {
            return Ok(false);
        }
        let now = self.clock.now_ms();
        if let Some(s) = guard(&self.slots).get_mut(&lease.fence.lock) {
            s.expires_at_ms = now + ttl.as_millis() as i64;
        }
        Ok(true)
    }

    async fn release(&self, lease: Lease) -> Result<()> {
        let mut slots = guard(&self.slots);
        if let Some(s) = slots.get_mut(&lease.fence.lock) {
            if self.is_of(s, &lease.fence) || self.fault == Fault::ReleasesAnyone {
                s.expires_at_ms = 0;
            }
        }
        Ok(())
    }
}

/// A map whose updates are atomic (under its mutex) and checked against its lock.
#[derive(Debug)]
struct LockedMap {
    map: Mutex<BTreeMap<String, Cacheable>>,
    lock: Arc<FaultyLock>,
}

#[async_trait]
impl Cache for LockedMap {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        Ok(guard(&self.map).get(key).cloned())
    }
    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        guard(&self.map).insert(key.to_owned(), value);
        Ok(())
    }
    async fn remove(&self, key: &str) -> Result<()> {
        guard(&self.map).remove(key);
        if self.lock.fault == Fault::LeasesAreEntries {
            // The leases went with the entries.
            guard(&self.lock.slots).clear();
        }
        Ok(())
    }
    async fn all_keys(&self) -> Result<Option<Keys>> {
        Ok(Some(guard(&self.map).keys().cloned().collect()))
    }
    fn lists_keys(&self) -> bool {
        true
    }
    async fn update(&self, key: &str, fence: Option<&Fence>, mut f: UpdateFn) -> Result<Updated> {
        let mut map = guard(&self.map);
        if self.lock.fault != Fault::FenceUnchecked && fence.is_some_and(|f| !self.lock.holds(f)) {
            return Ok(Updated::FenceLost);
        }
        let current = map.get(key).cloned();
        f(current.as_ref()).apply(current, |value| {
            match value {
                Some(v) => map.insert(key.to_owned(), v.clone()),
                None => map.remove(key),
            };
            Ok(())
        })
    }
    fn atomic_updates(&self) -> bool {
        true
    }
    fn refresh_lock(&self) -> Option<Arc<dyn RefreshLock>> {
        Some(self.lock.clone())
    }
}

struct Locked(Fault);

impl Fixture for Locked {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new().with_listing()
    }
    async fn create(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
        Ok(Arc::new(LockedMap {
            map: Mutex::default(),
            lock: Arc::new(FaultyLock {
                clock,
                fault: self.0,
                slots: Mutex::default(),
                next_holder: Mutex::new(0),
            }),
        }))
    }
}

/// The names of the lease checks.
fn lease_checks() -> Vec<(&'static str, checks::CheckFn)> {
    checks::all()
        .into_iter()
        .filter(|(name, _)| name.starts_with("lease_"))
        .collect()
}

/// The lease checks that fail on caches with `fault`, in either mode, and their messages.
fn failing(fault: Fault) -> Vec<(&'static str, String)> {
    let suite = Suite::new(Locked(fault));
    futures::executor::block_on(async {
        let mut out = Vec::new();
        for &mode in suite.modes() {
            for (name, check) in lease_checks() {
                let clock = checks::new_clock();
                let (cache, _) = suite.fresh(clock.clone(), mode).await.unwrap();
                let subject = crate::Subject::new(cache, clock, Locked(fault).capabilities());
                if let Err(msg) = crate::caught(check(subject)).await {
                    out.push((name, msg));
                }
            }
        }
        out
    })
}

/// Asserts that `check` fails on `fault` with a message that holds `says`.
#[track_caller]
fn assert_caught(fault: Fault, check: &str, says: &str) {
    let failures = failing(fault);
    let msgs: Vec<&String> = failures
        .iter()
        .filter(|(name, _)| *name == check)
        .map(|(_, msg)| msg)
        .collect();
    assert!(
        !msgs.is_empty(),
        "{check} must fail on a lock with {fault:?}; failures: {failures:?}"
    );
    for msg in msgs {
        assert!(msg.contains(&format!("`{check}` failed")), "{msg}");
        assert!(msg.contains(says), "{fault:?}: {msg}");
    }
}

#[test]
fn there_are_four_lease_checks() {
    assert_eq!(lease_checks().len(), 4);
}

#[test]
fn every_check_passes_with_a_correct_lock() {
    assert_eq!(failing(Fault::None), Vec::new());
    let report = futures::executor::block_on(Suite::new(Locked(Fault::None)).run_all());
    assert!(report.is_ok(), "{report}");
}

#[test]
fn a_lock_that_is_never_busy_is_caught() {
    assert_caught(
        Fault::NeverBusy,
        "lease_is_exclusive_until_released",
        "I3: one holder per lock name",
    );
}

#[test]
fn a_fence_check_without_epochs_is_caught() {
    // With a new holder id per lease, only a fence of the live holder's id and an old
    // epoch tells.
    assert_caught(
        Fault::IgnoresEpoch,
        "lease_fence_lost_writes_nothing",
        "a fence of the live holder's id with the old epoch is not the live lease's",
    );
    assert_caught(
        Fault::IgnoresEpoch,
        "lease_expires_and_a_stale_holder_changes_nothing",
        "the live holder's id with the old epoch is not the live one and cannot be extended",
    );
    // With one holder id for every lease, the paused holder itself writes.
    assert_caught(
        Fault::ReusedHolder,
        "lease_fence_lost_writes_nothing",
        "a fenced update of a holder whose lease was taken again",
    );
    assert_caught(
        Fault::ReusedHolder,
        "lease_is_exclusive_until_released",
        "every acquisition gets a new holder id",
    );
}

#[test]
fn a_release_that_frees_anyone_is_caught() {
    assert_caught(
        Fault::ReleasesAnyone,
        "lease_expires_and_a_stale_holder_changes_nothing",
        "a stale release must leave the new holder's lease alone",
    );
    assert_caught(
        Fault::ReleasesAnyone,
        "lease_is_exclusive_until_released",
        "after a former holder released its lease again",
    );
}

#[test]
fn a_lease_that_never_ends_is_caught() {
    assert_caught(
        Fault::NeverExpires,
        "lease_expires_and_a_stale_holder_changes_nothing",
        "must end within it",
    );
}

#[test]
fn an_update_that_ignores_its_fence_is_caught() {
    assert_caught(
        Fault::FenceUnchecked,
        "lease_fence_lost_writes_nothing",
        "a fenced update of a holder whose lease was taken again",
    );
}

#[test]
fn leases_that_clear_removes_are_caught() {
    assert_caught(
        Fault::LeasesAreEntries,
        "lease_is_not_an_entry",
        "a manager's clear must not free a held lease",
    );
}
