//! The one physical-expiry policy: when a backend may drop a stored value by time.
//!
//! Every backend that drops values by time (memory, SQLite `purge`, Redis TTLs) asks
//! [`Retention`], so they all keep and drop the same entries.

use std::time::Duration;

use crate::stored::Cacheable;

/// How long an entry that still holds a refresh token is kept after its access token
/// expired: for a [`Duration`], or never dropped by time (the default). It is the whole
/// physical-expiry policy of the backends:
///
/// - a token entry without a refresh token may be dropped once the manager sees it
///   expired (with no leeway): from the first second after its `expiresAt`, never before;
/// - a token entry with a refresh token, the retention later, or never;
/// - the key manifest and ID-token entries are never dropped by time.
///
/// After the access token expires, the refresh token is what keeps the user signed in,
/// hence the default.
///
/// ```
/// use std::time::Duration;
/// use tokencache_core::{CacheEntry, Cacheable, EntryBody, Retention, WrappedCacheEntry};
///
/// let entry = |rt: bool| {
///     let mut e = CacheEntry::new("c", "https://api", "read", "at", 60.0);
///     if rt {
///         e = e.with_refresh_token("rt");
///     }
///     Cacheable::from(WrappedCacheEntry::new(EntryBody::from(e), 100))
/// };
/// // Valid through the whole second 100, dropped from 101 s on.
/// assert_eq!(Retention::NEVER.deadline_ms(&entry(false)), Some(101_000));
/// assert_eq!(Retention::NEVER.deadline_ms(&entry(true)), None);
/// let week = Retention::after(Duration::from_secs(7 * 24 * 3600));
/// assert_eq!(week.deadline_ms(&entry(true)), Some(101_000 + 7 * 24 * 3600 * 1000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Retention(Option<Duration>);

impl Retention {
    /// Entries with a refresh token are never dropped by time (the default).
    pub const NEVER: Retention = Retention(None);

    /// A lifetime longer than this (ten years) counts as no deadline at all: stores with
    /// a clock of their own (moka, Redis) could not add it to their clock.
    pub const MAX_TIME_TO_LIVE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

    /// Entries with a refresh token are kept `retention` after their access token expired.
    pub const fn after(retention: Duration) -> Retention {
        Retention(Some(retention))
    }

    /// The retention, `None` for never.
    pub const fn duration(&self) -> Option<Duration> {
        self.0
    }

    /// The retention in milliseconds (saturated), `None` for never.
    fn millis(&self) -> Option<i64> {
        self.0
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// The millisecond (since the epoch) from which a backend may drop `value`, or `None`
    /// when it must keep it until it is removed.
    pub fn deadline_ms(&self, value: &Cacheable) -> Option<i64> {
        let expires_at = value.expires_at()?;
        self.deadline_of(expires_at, value.has_refresh_token())
    }

    /// [`Retention::deadline_ms`] of a token entry with `expires_at` (seconds since the
    /// epoch) that holds a refresh token or not.
    fn deadline_of(&self, expires_at: i64, has_refresh_token: bool) -> Option<i64> {
        // The manager sees an entry expired once `now_s > expiresAt`, that is from the
        // millisecond `(expiresAt + 1) * 1000` on.
        let expired_from = expires_at.saturating_add(1).saturating_mul(1000);
        let kept_after = if has_refresh_token { self.millis()? } else { 0 };
        Some(expired_from.saturating_add(kept_after))
    }

    /// How long from `now_ms` a backend must keep `value`: `None` when it has no deadline
    /// or one more than [`Retention::MAX_TIME_TO_LIVE`] away, [`Duration::ZERO`] when its
    /// deadline has passed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokencache_core::{Cacheable, KeyManifestEntry, Retention};
    ///
    /// let manifest = Cacheable::from(KeyManifestEntry::default());
    /// assert_eq!(Retention::after(Duration::MAX).time_to_live(&manifest, 0), None);
    /// ```
    pub fn time_to_live(&self, value: &Cacheable, now_ms: i64) -> Option<Duration> {
        let left = self.deadline_ms(value)?.saturating_sub(now_ms).max(0);
        Some(Duration::from_millis(left.unsigned_abs())).filter(|d| *d <= Self::MAX_TIME_TO_LIVE)
    }

    /// For stores that select by a stored `expiresAt` (an SQL `DELETE`): at `now_ms`, the
    /// token entries that hold a refresh token (or not, by `has_refresh_token`) and whose
    /// `expiresAt` is below the returned second are past their deadline; every other one
    /// is not. `None`: no such entry is past its deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokencache_core::Retention;
    ///
    /// let now_ms = 1_000_500;
    /// assert_eq!(Retention::NEVER.expired_before(now_ms, false), Some(1_000));
    /// assert_eq!(Retention::NEVER.expired_before(now_ms, true), None);
    /// let r = Retention::after(Duration::from_secs(100));
    /// assert_eq!(r.expired_before(now_ms, true), Some(900));
    /// ```
    pub fn expired_before(&self, now_ms: i64, has_refresh_token: bool) -> Option<i64> {
        // deadline_of(e) <= now  <=>  (e + 1) * 1000 + kept <= now
        //                        <=>  e < floor((now - kept) / 1000)
        let kept_after = if has_refresh_token { self.millis()? } else { 0 };
        Some(now_ms.saturating_sub(kept_after).div_euclid(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::{CacheEntry, EntryBody, IdTokenEntry, KeyManifestEntry, WrappedCacheEntry};

    fn entry(rt: Option<&str>, expires_at: i64) -> Cacheable {
        let mut e = CacheEntry::new("c", "a", "s", "at", 60.0);
        e.refresh_token = rt.map(str::to_owned);
        Cacheable::Entry(WrappedCacheEntry::new(EntryBody::from(e), expires_at))
    }

    const RETENTIONS: [Retention; 5] = [
        Retention::NEVER,
        Retention::after(Duration::ZERO),
        Retention::after(Duration::from_millis(1_500)),
        Retention::after(Duration::from_secs(100)),
        Retention::after(Duration::MAX),
    ];

    #[test]
    fn the_default_keeps_refresh_tokens_for_ever() {
        assert_eq!(Retention::default(), Retention::NEVER);
        assert_eq!(Retention::NEVER.duration(), None);
        assert_eq!(
            Retention::after(Duration::from_secs(5)).duration(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(Retention::NEVER.deadline_ms(&entry(Some("rt"), 100)), None);
        assert_eq!(
            Retention::NEVER.deadline_ms(&entry(None, 100)),
            Some(101_000)
        );
    }

    #[test]
    fn deadlines_follow_the_rule() {
        for r in RETENTIONS {
            // Without a refresh token (an empty one counts as none): the manager's expiry.
            for rt in [None, Some("")] {
                assert_eq!(r.deadline_ms(&entry(rt, 100)), Some(101_000), "{r:?}");
                assert_eq!(r.deadline_ms(&entry(rt, -2)), Some(-1_000), "{r:?}");
            }
            // With one: the retention later, or never.
            let with_rt = r.deadline_ms(&entry(Some("rt"), 100));
            match r.duration() {
                None => assert_eq!(with_rt, None),
                Some(Duration::MAX) => assert_eq!(with_rt, Some(i64::MAX)),
                Some(d) => assert_eq!(with_rt, Some(101_000 + d.as_millis() as i64)),
            }
            // Manifests and ID tokens: never.
            assert_eq!(
                r.deadline_ms(&Cacheable::Manifest(KeyManifestEntry::default())),
                None
            );
            let id = IdTokenEntry {
                id_token: "id".into(),
                decoded_token: Default::default(),
            };
            assert_eq!(r.deadline_ms(&Cacheable::IdToken(id)), None);
            // Extreme expiry times saturate instead of overflowing.
            assert_eq!(r.deadline_ms(&entry(None, i64::MAX)), Some(i64::MAX));
            assert_eq!(r.deadline_ms(&entry(None, i64::MIN)), Some(i64::MIN));
        }
    }

    #[test]
    fn an_entry_lives_until_the_manager_sees_it_expired() {
        // The manager: expired iff expiresAt < floor(now_ms / 1000).
        let r = Retention::NEVER;
        let e = entry(None, 100);
        for now_ms in [99_000, 100_000, 100_999, 101_000, 101_001, 200_000] {
            let manager_expired = 100 < now_ms / 1000;
            let dropped = r.deadline_ms(&e).is_some_and(|d| now_ms >= d);
            assert_eq!(dropped, manager_expired, "{now_ms}");
        }
    }

    #[test]
    fn time_to_live_counts_from_now_and_caps_at_the_horizon() {
        let r = Retention::after(Duration::from_secs(10));
        assert_eq!(
            r.time_to_live(&entry(None, 100), 100_000),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            r.time_to_live(&entry(Some("rt"), 100), 100_000),
            Some(Duration::from_secs(11))
        );
        assert_eq!(
            r.time_to_live(&entry(None, 10), 100_000),
            Some(Duration::ZERO)
        );
        assert_eq!(r.time_to_live(&entry(None, i64::MAX / 2000), 0), None);
        assert_eq!(
            Retention::after(Duration::MAX).time_to_live(&entry(Some("rt"), 100), 0),
            None
        );
        assert_eq!(
            Retention::NEVER.time_to_live(&entry(Some("rt"), 100), 0),
            None
        );
        let horizon = Retention::MAX_TIME_TO_LIVE.as_millis() as i64;
        let at_horizon = entry(None, horizon / 1000 - 1);
        assert_eq!(
            r.time_to_live(&at_horizon, 0),
            Some(Retention::MAX_TIME_TO_LIVE)
        );
        assert_eq!(r.time_to_live(&at_horizon, -1), None);
    }

    #[test]
    fn expired_before_agrees_with_deadlines() {
        for r in RETENTIONS {
            for has_rt in [false, true] {
                let rt = has_rt.then_some("rt");
                for now_ms in (-5_000..5_000)
                    .step_by(250)
                    .chain([i64::MIN, 4_102_444_800_000])
                {
                    let bound = r.expired_before(now_ms, has_rt);
                    for expires_at in -8..8 {
                        let past = r
                            .deadline_ms(&entry(rt, expires_at))
                            .is_some_and(|d| now_ms >= d);
                        let selected = bound.is_some_and(|b| expires_at < b);
                        assert_eq!(
                            past, selected,
                            "{r:?} rt={has_rt} now_ms={now_ms} expires_at={expires_at}"
                        );
                    }
                }
            }
        }
    }
}
