//! Refresh locks: the lease a refresh runs under, so that per lock name at most one
//! refresh is in flight, and the [`Fence`] its writes carry.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::cache::{Fence, MaybeSendSync};
use crate::clock::{Clock, SystemClock};
use crate::error::Result;

/// A held refresh lock: its fence and until when it holds (ms since the epoch, by the
/// lock's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What the holder's writes carry.
    pub fence: Fence,
    /// When the lease ends unless extended.
    pub expires_at_ms: i64,
}

/// The answer of [`RefreshLock::try_acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryAcquire {
    /// The lock is ours.
    Held(Lease),
    /// Another holder has it; try again after about this long.
    Busy {
        /// Until the other holder's lease ends (at most).
        retry_after: Duration,
    },
}

/// A lock with leases, one per name: the refresh of a token family runs under it.
///
/// A lease ends by itself when its time is up, so a holder that crashed or hangs never
/// blocks the others for longer than its lease; every acquisition gets a larger epoch, so
/// a late write of a former holder can be told from the current holder's.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait RefreshLock: MaybeSendSync {
    /// Takes the lock `name` for `ttl` unless someone else holds it. Never waits.
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<TryAcquire>;

    /// Extends `lease` to `ttl` from now if it still holds the lock; `false`: it was lost.
    async fn extend(&self, lease: &Lease, ttl: Duration) -> Result<bool>;

    /// Releases `lease` if it still holds the lock (compare and release): a lease that
    /// expired and was taken by another holder leaves that holder alone.
    async fn release(&self, lease: Lease) -> Result<()>;
}

/// One name's state: the last holder, its epoch and until when it holds (0: released).
struct Slot {
    holder: [u8; 16],
    epoch: u64,
    expires_at_ms: i64,
}

/// The in-process [`RefreshLock`]: a registry of leases by name, shared by the tasks that
/// share the value. It serializes refreshes inside one process only; stores shared by
/// several processes bring a lock of their own.
///
/// ```
/// # futures::executor::block_on(async {
/// use std::time::Duration;
/// use tokencache_core::{InProcessLock, RefreshLock, TryAcquire};
///
/// let lock = InProcessLock::new();
/// let TryAcquire::Held(lease) = lock.try_acquire("refresh::app", Duration::from_secs(15)).await? else {
///     unreachable!("nobody holds it")
/// };
/// assert!(matches!(
///     lock.try_acquire("refresh::app", Duration::from_secs(15)).await?,
///     TryAcquire::Busy { .. }
/// ));
/// assert!(lock.holds(&lease.fence));
/// lock.release(lease).await?;
/// assert!(matches!(
///     lock.try_acquire("refresh::app", Duration::from_secs(15)).await?,
///     TryAcquire::Held(_)
/// ));
/// # Ok::<(), tokencache_core::Error>(())
/// # }).unwrap();
/// ```
pub struct InProcessLock {
    clock: Arc<dyn Clock>,
    slots: Mutex<HashMap<String, Slot>>,
    holders: AtomicU64,
}

impl fmt::Debug for InProcessLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessLock")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Default for InProcessLock {
    fn default() -> Self {
        Self::new()
    }
}

/// `ttl` in milliseconds, saturated.
fn ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

impl InProcessLock {
    /// A lock whose leases run by the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A lock whose leases run by `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        InProcessLock {
            clock,
            slots: Mutex::default(),
            holders: AtomicU64::new(1),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A holder id unique in this lock: a counter and the time it was made.
    fn new_holder(&self, now_ms: i64) -> [u8; 16] {
        let n = self.holders.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&n.to_be_bytes());
        id[8..].copy_from_slice(&now_ms.to_be_bytes());
        id
    }

    /// Whether `fence` still holds its lock: the same holder and epoch, and not expired.
    pub fn holds(&self, fence: &Fence) -> bool {
        let now = self.clock.now_ms();
        self.slots().get(&fence.lock).is_some_and(|s| {
            s.holder == fence.holder && s.epoch == fence.epoch && s.expires_at_ms > now
        })
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl RefreshLock for InProcessLock {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<TryAcquire> {
        let now = self.clock.now_ms();
        let holder = self.new_holder(now);
        let mut slots = self.slots();
        let slot = slots.entry(name.to_owned()).or_insert(Slot {
            holder: [0; 16],
            epoch: 0,
            expires_at_ms: 0,
        });
        if slot.expires_at_ms > now {
            let left = u64::try_from(slot.expires_at_ms - now).unwrap_or(0);
            return Ok(TryAcquire::Busy {
                retry_after: Duration::from_millis(left),
            });
        }
        slot.holder = holder;
        slot.epoch += 1;
        slot.expires_at_ms = now.saturating_add(ms(ttl));
        Ok(TryAcquire::Held(Lease {
            fence: Fence {
                lock: name.to_owned(),
                holder,
                epoch: slot.epoch,
            },
            expires_at_ms: slot.expires_at_ms,
        }))
    }

    async fn extend(&self, lease: &Lease, ttl: Duration) -> Result<bool> {
        let now = self.clock.now_ms();
        let mut slots = self.slots();
        Ok(match slots.get_mut(&lease.fence.lock) {
            Some(s)
                if s.holder == lease.fence.holder
                    && s.epoch == lease.fence.epoch
                    && s.expires_at_ms > now =>
            {
                s.expires_at_ms = now.saturating_add(ms(ttl));
                true
            }
            _ => false,
        })
    }

    async fn release(&self, lease: Lease) -> Result<()> {
        let mut slots = self.slots();
        if let Some(s) = slots.get_mut(&lease.fence.lock) {
            if s.holder == lease.fence.holder && s.epoch == lease.fence.epoch {
                // The epoch stays: the next holder gets a larger one.
                s.expires_at_ms = 0;
            }
        }
        Ok(())
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn held(t: TryAcquire) -> Lease {
        match t {
            TryAcquire::Held(l) => l,
            TryAcquire::Busy { .. } => panic!("expected the lock to be free"),
        }
    }

    #[test]
    fn leases_expire_epochs_grow_and_late_holders_change_nothing() {
        futures::executor::block_on(async {
            let clock = Arc::new(ManualClock::new(1_000_000));
            let lock = InProcessLock::with_clock(clock.clone());
            let ttl = Duration::from_millis(300);
            let first = held(lock.try_acquire("n", ttl).await.unwrap());
            assert_eq!(first.fence.epoch, 1);
            assert_eq!(first.expires_at_ms, 1_000_300);
            match lock.try_acquire("n", ttl).await.unwrap() {
                TryAcquire::Busy { retry_after } => {
                    assert_eq!(retry_after, Duration::from_millis(300))
                }
                TryAcquire::Held(_) => panic!("the lock is held"),
            }
            // Another name is independent.
            assert_eq!(
                held(lock.try_acquire("m", ttl).await.unwrap()).fence.epoch,
                1
            );
            // The first holder pauses past its lease: the lock is taken again.
            clock.advance_ms(301);
            assert!(!lock.holds(&first.fence));
            let second = held(lock.try_acquire("n", ttl).await.unwrap());
            assert_eq!(second.fence.epoch, 2);
            assert_ne!(second.fence.holder, first.fence.holder);
            // The late holder can neither extend nor release the new lease.
            assert!(!lock.extend(&first, ttl).await.unwrap());
            lock.release(first).await.unwrap();
            assert!(lock.holds(&second.fence));
            // The holder extends, then releases; the epoch keeps growing.
            clock.advance_ms(200);
            assert!(lock.extend(&second, ttl).await.unwrap());
            clock.advance_ms(200);
            assert!(lock.holds(&second.fence));
            lock.release(second.clone()).await.unwrap();
            assert!(!lock.holds(&second.fence));
            assert_eq!(
                held(lock.try_acquire("n", ttl).await.unwrap()).fence.epoch,
                3
            );
        });
    }
}
