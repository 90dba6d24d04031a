//! Time sources for expiry.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A source of the current time in milliseconds since the Unix epoch
/// (auth0-spa-js's `nowProvider`).
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Whole seconds since the Unix epoch, as auth0-spa-js computes them:
    /// `floor(now_ms / 1000)`, also before the epoch. Every expiry comparison with a
    /// stored `expiresAt` uses this.
    ///
    /// ```
    /// use tokencache_core::{Clock, ManualClock};
    ///
    /// assert_eq!(ManualClock::new(1_999).now_s(), 1);
    /// assert_eq!(ManualClock::new(-1).now_s(), -1);
    /// ```
    fn now_s(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The system clock (`Date.now()` in the browser).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[cfg(not(target_arch = "wasm32"))]
    fn now_ms(&self) -> i64 {
        use std::time::{SystemTime, UNIX_EPOCH};
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }

    #[cfg(target_arch = "wasm32")]
    fn now_ms(&self) -> i64 {
        js_sys::Date::now() as i64
    }
}

/// A clock that moves only when told to: for tests and simulations.
///
/// ```
/// use std::time::Duration;
/// use tokencache_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_700_000_000_000);
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now_ms(), 1_700_000_090_000);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `ms` milliseconds since the epoch.
    pub fn new(ms: i64) -> Self {
        ManualClock {
            ms: AtomicI64::new(ms),
        }
    }

    /// Moves the clock to `ms`.
    pub fn set_ms(&self, ms: i64) {
        self.ms.store(ms, Ordering::SeqCst);
    }

    /// Moves the clock forward by `ms` milliseconds (backward when negative).
    pub fn advance_ms(&self, ms: i64) {
        self.ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.advance_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }

    fn now_s(&self) -> i64 {
        (**self).now_s()
    }
}
