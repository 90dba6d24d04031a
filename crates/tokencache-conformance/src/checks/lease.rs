//! The checks of a cache's own refresh lock ([`Cache::refresh_lock`]): for caches that
//! have one, per lock name at most one lease is held (invariant I3), a lease ends when its
//! time is up, epochs grow, a former holder can neither extend nor release a newer lease,
//! and a fenced [`Cache::update`] writes only under the live lease (invariant I2). A cache
//! without a lock of its own makes no such promise: the checks return at once.
//!
//! Leases may run by the fixture's clock (memory, SQLite) or by the store's own (a Redis
//! TTL). To end a lease the checks take it for a short time ([`SHORT`]), move the
//! fixture's clock past it and, while the lock still answers `Busy`, wait real time as
//! long as it says. Real waiting needs no runtime (a thread wakes the check, so it works
//! on any executor); on wasm32 it is not available, and a lock there must follow the
//! fixture's clock.
//!
//! [`Cache::refresh_lock`]: tokencache_core::Cache::refresh_lock
//! [`Cache::update`]: tokencache_core::Cache::update

use std::sync::Arc;
use std::time::Duration;

use tokencache_core::{
    Cache, Cacheable, Clock, Fence, Keys, Lease, ManualClock, RefreshLock, TryAcquire, Update,
    Updated,
};

use crate::harness::{entry, raw, set, stored, with_rt, Check, Subject, T0};
use crate::support::fenced_rotate;

/// The lock name the checks use (the kind of name a manager's refresh would use).
const LOCK: &str = "refresh::app::https://api";
/// Another lock name, independent of [`LOCK`].
const OTHER_LOCK: &str = "refresh::other::https://api";
/// The lease that the checks let expire.
const SHORT: Duration = Duration::from_millis(300);
/// The lease that must outlive a check.
const LONG: Duration = Duration::from_secs(60);
/// How many times the checks wait for a lease to end before they call it stuck.
const WAITS: usize = 4;

/// The lock of the cache under test, or `None`: then the check has nothing to check.
///
/// Not in the browser: the suites of one origin's storage run side by side in one page and
/// share its Web Locks, which run by real time, not by the fixture's clock. There
/// tokencache-web's own browser tests (`tests/locks.rs`, `tests/tabs.rs`) check its lease;
/// scripts/web-test.sh says so when it runs the suite.
fn lock_of(cache: &Arc<dyn Cache>) -> Option<Arc<dyn RefreshLock>> {
    if cfg!(target_arch = "wasm32") {
        return None;
    }
    cache.refresh_lock()
}

/// The lease of an acquisition that must succeed.
#[track_caller]
fn held(t: &Check, r: tokencache_core::Result<TryAcquire>, what: &str) -> Lease {
    match t.ok(r, what) {
        TryAcquire::Held(lease) => lease,
        TryAcquire::Busy { retry_after } => t.fail(format_args!(
            "{what}: the lock must be free, but it is busy (retry after {retry_after:?})"
        )),
    }
}

/// Asserts that [`LOCK`] is held by someone: `try_acquire` is `Busy`, within `ttl`.
async fn assert_busy(t: &Check, lock: &dyn RefreshLock, ttl: Duration, what: &str) {
    match t.ok(lock.try_acquire(LOCK, LONG).await, "try_acquire") {
        TryAcquire::Busy { retry_after } => t.that(
            retry_after <= ttl,
            format_args!(
                "{what}: Busy must say to retry within the holder's lease of {ttl:?}, \
                 says {retry_after:?}"
            ),
        ),
        TryAcquire::Held(lease) => t.fail(format_args!(
            "{what}: the lock must still be held (I3: one holder per lock name), but \
             try_acquire took it again (epoch {})",
            lease.fence.epoch
        )),
    }
}

/// Ends the lease of [`LOCK`] taken for [`SHORT`] (moves the clock past it, then waits
/// real time while the lock says `Busy`) and takes the lock again for [`LONG`].
async fn take_after_expiry(t: &Check, lock: &dyn RefreshLock, clock: &ManualClock) -> Lease {
    clock.advance(SHORT + Duration::from_millis(1));
    for _ in 0..WAITS {
        match t.ok(
            lock.try_acquire(LOCK, LONG).await,
            "try_acquire after the lease's end",
        ) {
            TryAcquire::Held(lease) => return lease,
            TryAcquire::Busy { retry_after } => {
                t.that(
                    retry_after <= SHORT,
                    format_args!(
                        "a lease taken for {SHORT:?} must end within it, but Busy says retry \
                         after {retry_after:?}"
                    ),
                );
                sleep_real(t, retry_after + Duration::from_millis(25)).await;
            }
        }
    }
    t.fail(format_args!(
        "a lease must end when its time is up: the lock is still busy after its {SHORT:?} \
         (by the clock and in real time)"
    ))
}

/// Waits `d` of real time without a runtime: a thread sleeps and wakes the check.
#[cfg(not(target_arch = "wasm32"))]
async fn sleep_real(_t: &Check, d: Duration) {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(d);
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// Real time cannot be waited for without a runtime on wasm32: a lock there must follow
/// the fixture's clock.
#[cfg(target_arch = "wasm32")]
async fn sleep_real(t: &Check, _d: Duration) {
    t.fail(
        "the lease did not end when the fixture's clock passed it, and real time cannot be \
         waited for on wasm32: a lock here must run by the fixture's clock",
    )
}

/// The stored entry with refresh token `rt` (and access token `at-<rt>`).
fn with_refresh_token(rt: &str) -> Cacheable {
    stored(
        &with_rt(
            entry("app", "https://api", "read", &format!("at-{rt}"), 3600.0),
            rt,
        ),
        T0,
    )
}

/// The refresh token stored at `key`.
async fn stored_rt(t: &Check, cache: &dyn Cache, key: &str) -> Option<String> {
    match raw(t, cache, key).await {
        Some(Cacheable::Entry(e)) => e.body.refresh_token.clone(),
        other => t.fail(format_args!(
            "the entry at {key} must still be stored, found {other:?}"
        )),
    }
}

/// `next`, the acquisition after `before` (`when`), has a larger epoch and a new holder id.
fn assert_next_holder(t: &Check, before: &Lease, next: &Lease, when: &str) {
    t.that(
        next.fence.epoch > before.fence.epoch,
        format_args!(
            "epochs must grow with every acquisition ({when}): {} after {}",
            next.fence.epoch, before.fence.epoch
        ),
    );
    t.that(
        next.fence.holder != before.fence.holder,
        format_args!("every acquisition gets a new holder id ({when})"),
    );
}

/// `lease` with its fence's holder and epoch replaced: a fence that is not the lock's.
fn forged(lease: &Lease, holder: [u8; 16], epoch: u64) -> Lease {
    Lease {
        fence: Fence {
            lock: lease.fence.lock.clone(),
            holder,
            epoch,
        },
        expires_at_ms: lease.expires_at_ms,
    }
}

/// Invariant I3: a held lock is `Busy` for everyone else (`retry_after` within the
/// holder's lease) until released; another lock name is independent; every acquisition
/// gets a larger epoch and a new holder id; a lease's end is within its length of the
/// clock.
pub async fn lease_is_exclusive_until_released(s: Subject) {
    let (t, cache, clock) = Check::new("lease_is_exclusive_until_released", s);
    let Some(lock) = lock_of(&cache) else { return };
    let now = clock.now_ms();
    let first = held(&t, lock.try_acquire(LOCK, LONG).await, "first try_acquire");
    t.eq(first.fence.lock.as_str(), LOCK, "the fence names its lock");
    t.that(
        first.fence.epoch > 0,
        "epochs start above 0 (0 is no holder)",
    );
    let long_ms = i64::try_from(LONG.as_millis()).unwrap_or(i64::MAX);
    t.that(
        first.expires_at_ms > now && first.expires_at_ms <= now + long_ms,
        format_args!(
            "a lease taken for {LONG:?} at {now} must end after it and within its length, \
             ends at {}",
            first.expires_at_ms
        ),
    );
    assert_busy(&t, &*lock, LONG, "a second try_acquire of a held lock").await;
    let other = held(
        &t,
        lock.try_acquire(OTHER_LOCK, LONG).await,
        "another lock name is independent",
    );
    t.ok(lock.release(first.clone()).await, "release");
    let second = held(
        &t,
        lock.try_acquire(LOCK, LONG).await,
        "try_acquire after the holder released",
    );
    assert_next_holder(&t, &first, &second, "after the holder released");
    // A lease released twice leaves the next holder alone.
    t.ok(lock.release(first).await, "release of a released lease");
    assert_busy(
        &t,
        &*lock,
        LONG,
        "after a former holder released its lease again",
    )
    .await;
    t.ok(lock.release(second).await, "release");
    t.ok(lock.release(other).await, "release");
}

/// A lease ends when its time is up and the lock is taken again with a larger epoch; the
/// former holder can then neither extend nor release the new lease, nor can a lease with
/// the new holder's id and the old epoch or the old holder's id and the new epoch; the
/// live holder extends and releases its own.
pub async fn lease_expires_and_a_stale_holder_changes_nothing(s: Subject) {
    let (t, cache, clock) = Check::new("lease_expires_and_a_stale_holder_changes_nothing", s);
    let Some(lock) = lock_of(&cache) else { return };
    let paused = held(&t, lock.try_acquire(LOCK, SHORT).await, "try_acquire");
    let live = take_after_expiry(&t, &*lock, &clock).await;
    assert_next_holder(&t, &paused, &live, "after an expiry");
    t.eq(
        t.ok(lock.extend(&paused, LONG).await, "extend"),
        false,
        "a lease that expired and was taken again cannot be extended",
    );
    t.ok(
        lock.release(paused.clone()).await,
        "release of a stale lease",
    );
    assert_busy(
        &t,
        &*lock,
        LONG,
        "a stale release must leave the new holder's lease alone",
    )
    .await;
    let (old_epoch, new_epoch) = (paused.fence.epoch, live.fence.epoch);
    for (fake, what) in [
        (
            forged(&live, live.fence.holder, old_epoch),
            "the live holder's id with the old epoch",
        ),
        (
            forged(&live, paused.fence.holder, new_epoch),
            "the old holder's id with the live epoch",
        ),
    ] {
        t.eq(
            t.ok(lock.extend(&fake, LONG).await, "extend"),
            false,
            &format!("a lease of {what} is not the live one and cannot be extended"),
        );
        t.ok(lock.release(fake).await, "release");
        assert_busy(
            &t,
            &*lock,
            LONG,
            &format!("a release with {what} must leave the live lease alone"),
        )
        .await;
    }
    t.eq(
        t.ok(lock.extend(&live, LONG).await, "extend"),
        true,
        "the live holder extends its lease",
    );
    assert_busy(&t, &*lock, LONG, "after the live holder extended its lease").await;
    t.ok(lock.release(live.clone()).await, "release");
    let next = held(
        &t,
        lock.try_acquire(LOCK, LONG).await,
        "try_acquire after the live holder released",
    );
    t.that(
        next.fence.epoch > live.fence.epoch,
        "epochs keep growing after a release",
    );
    t.eq(
        t.ok(lock.extend(&live, LONG).await, "extend"),
        false,
        "a released lease cannot be extended",
    );
    t.ok(lock.release(next).await, "release");
}

/// Invariant I2: a fenced update of a holder whose lease expired and was taken again is
/// [`Updated::FenceLost`] and writes nothing (neither a put nor a removal), nor does one
/// whose fence mixes the live holder and an old epoch or the reverse; the live holder's
/// fenced update is stored; once it released, its fence is lost too.
pub async fn lease_fence_lost_writes_nothing(s: Subject) {
    let (t, cache, clock) = Check::new("lease_fence_lost_writes_nothing", s);
    let Some(lock) = lock_of(&cache) else { return };
    let key = t.key(&["app", "https://api", "read"]);
    t.ok(cache.set(&key, with_refresh_token("rt0")).await, "set");
    let paused = held(&t, lock.try_acquire(LOCK, SHORT).await, "try_acquire");
    let live = take_after_expiry(&t, &*lock, &clock).await;

    let late = fenced_rotate(&*cache, &key, &paused, "rt0", with_refresh_token("late")).await;
    t.eq(
        t.ok(late, "a late fenced update"),
        Updated::FenceLost,
        "a fenced update of a holder whose lease was taken again",
    );
    let late_removal = cache
        .update(&key, Some(&paused.fence), Box::new(|_| Update::Remove))
        .await;
    t.eq(
        t.ok(late_removal, "a late fenced removal"),
        Updated::FenceLost,
        "a fenced removal of a holder whose lease was taken again",
    );
    t.eq(
        stored_rt(&t, &*cache, &key).await,
        Some("rt0".to_owned()),
        "a lost fence must write nothing",
    );
    let (old_epoch, new_epoch) = (paused.fence.epoch, live.fence.epoch);
    for (fake, what) in [
        (
            forged(&live, live.fence.holder, old_epoch),
            "the live holder's id with the old epoch",
        ),
        (
            forged(&live, paused.fence.holder, new_epoch),
            "the old holder's id with the live epoch",
        ),
    ] {
        let r = fenced_rotate(&*cache, &key, &fake, "rt0", with_refresh_token("forged")).await;
        t.eq(
            t.ok(r, "a fenced update"),
            Updated::FenceLost,
            &format!("a fence of {what} is not the live lease's"),
        );
    }
    t.eq(
        stored_rt(&t, &*cache, &key).await,
        Some("rt0".to_owned()),
        "a fence that is not the live lease's must write nothing",
    );

    let r = fenced_rotate(&*cache, &key, &live, "rt0", with_refresh_token("rt1")).await;
    t.eq(
        t.ok(r, "the live holder's fenced update"),
        Updated::Put(with_refresh_token("rt1")),
        "the live holder's fenced update is stored",
    );
    t.eq(
        stored_rt(&t, &*cache, &key).await,
        Some("rt1".to_owned()),
        "the store holds the live holder's refresh token",
    );
    t.ok(lock.release(live.clone()).await, "release");
    let r = fenced_rotate(&*cache, &key, &live, "rt1", with_refresh_token("rt2")).await;
    t.eq(
        t.ok(r, "a fenced update after the release"),
        Updated::FenceLost,
        "a released lease's fence is lost",
    );
    t.eq(
        stored_rt(&t, &*cache, &key).await,
        Some("rt1".to_owned()),
        "the store never goes back to a spent refresh token",
    );
}

/// Leases are not entries: the listing (listing mode) shows only what managers wrote, and
/// a manager's `clear` neither frees a held lease nor breaks its fence.
pub async fn lease_is_not_an_entry(s: Subject) {
    let (t, cache, clock) = Check::new("lease_is_not_an_entry", s);
    let Some(lock) = lock_of(&cache) else { return };
    let lease = held(&t, lock.try_acquire(LOCK, LONG).await, "try_acquire");
    let m = t.manager(&cache, &clock);
    set(&t, &m, entry("app", "https://api", "read", "at", 3600.0)).await;
    let key = t.key(&["app", "https://api", "read"]);
    if t.listing() {
        let keys = t.ok(cache.all_keys().await, "all_keys");
        t.eq(
            keys.map(Vec::from),
            Some(vec![key.clone()]),
            "the listing shows the entry and no lease",
        );
    }
    t.ok(m.clear(None).await, "clear");
    if t.listing() {
        let keys = t.ok(cache.all_keys().await, "all_keys");
        t.eq(keys, Some(Keys::new()), "clear leaves no entry");
    }
    assert_busy(
        &t,
        &*lock,
        LONG,
        "a manager's clear must not free a held lease",
    )
    .await;
    let r = cache
        .update(
            &key,
            Some(&lease.fence),
            Box::new(|_| Update::Put(with_refresh_token("rt1"))),
        )
        .await;
    t.eq(
        t.ok(r, "the holder's fenced update after clear"),
        Updated::Put(with_refresh_token("rt1")),
        "the holder's fence still holds after clear",
    );
    t.ok(lock.release(lease).await, "release");
}
