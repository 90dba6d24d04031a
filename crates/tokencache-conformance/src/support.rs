//! Building blocks for a backend's own tests of refresh leases and atomic updates, beside
//! the suite: the values, updates and lease outcomes those tests keep needing, written
//! once.
//!
//! ```
//! use tokencache_conformance::support::{
//!     entry_with_refresh_token, increment, refresh_token_of, replace_refresh_token,
//! };
//! use tokencache_core::{Cacheable, Update};
//!
//! let stored = entry_with_refresh_token("rt0", 4_000_000_000);
//! assert_eq!(refresh_token_of(Some(&stored)).as_deref(), Some("rt0"));
//!
//! // The rotation applies only while the stored refresh token is still `rt0`.
//! let mut rotate = replace_refresh_token("rt0", entry_with_refresh_token("rt1", 4_000_000_000));
//! assert!(matches!(rotate(Some(&stored)), Update::Put(_)));
//! let mut rotate = replace_refresh_token("rt9", entry_with_refresh_token("rt1", 4_000_000_000));
//! assert!(matches!(rotate(Some(&stored)), Update::Keep));
//!
//! // A counter kept as a list: each increment adds the next line.
//! let Update::Put(Cacheable::Manifest(m)) = increment()(None) else { unreachable!() };
//! assert_eq!(m.keys, ["n0"]);
//! ```

use std::time::Duration;

use tokencache_core::{
    Cache, CacheEntry, Cacheable, EntryBody, KeyManifestEntry, Lease, Result, TryAcquire, Update,
    UpdateFn, Updated, WrappedCacheEntry,
};

/// The storage key of the entry that the lease tests rotate (client `app`, audience
/// `https://api`, scope `read`).
pub const ENTRY_KEY: &str = "@@auth0spajs@@::app::https://api::read";

/// The refresh lock's name for that entry's token family.
pub const LOCK_NAME: &str = "refresh::app::https://api";

/// The stored entry of [`ENTRY_KEY`] with refresh token `rt`, access token `at-<rt>`,
/// valid until `expires_at_s` (Unix seconds).
pub fn entry_with_refresh_token(rt: &str, expires_at_s: i64) -> Cacheable {
    let e = CacheEntry::new("app", "https://api", "read", format!("at-{rt}"), 3600.0)
        .with_refresh_token(rt);
    WrappedCacheEntry::new(EntryBody::from(e), expires_at_s).into()
}

/// The refresh token of a stored value, if it is an entry that has one.
pub fn refresh_token_of(value: Option<&Cacheable>) -> Option<String> {
    match value {
        Some(Cacheable::Entry(e)) => e.body.refresh_token.clone(),
        _ => None,
    }
}

/// An update that replaces the entry whose refresh token is `old` by `new`, and keeps
/// anything else: the write of a refresh-token rotation.
pub fn replace_refresh_token(old: &str, new: Cacheable) -> UpdateFn {
    let old = old.to_owned();
    Box::new(move |current| {
        if refresh_token_of(current).as_deref() == Some(old.as_str()) {
            Update::Put(new.clone())
        } else {
            Update::Keep
        }
    })
}

/// The fenced rotation from `old` to `new` at `key`, made under `lease`: it writes only
/// while `lease` still holds the lock and the stored refresh token is still `old`.
pub async fn fenced_rotate(
    cache: &dyn Cache,
    key: &str,
    lease: &Lease,
    old: &str,
    new: Cacheable,
) -> Result<Updated> {
    cache
        .update(key, Some(&lease.fence), replace_refresh_token(old, new))
        .await
}

/// The lease of an acquisition that must have succeeded; panics (naming the wait) if the
/// lock was busy.
pub fn held(acquired: TryAcquire) -> Lease {
    match acquired {
        TryAcquire::Held(lease) => lease,
        TryAcquire::Busy { retry_after } => {
            panic!("expected the lock to be free, busy for {retry_after:?}")
        }
    }
}

/// The wait of an acquisition that must have found the lock busy; panics (naming the
/// epoch taken) if it got the lock.
pub fn busy(acquired: TryAcquire) -> Duration {
    match acquired {
        TryAcquire::Busy { retry_after } => retry_after,
        TryAcquire::Held(lease) => panic!(
            "expected the lock to be held, took epoch {}",
            lease.fence.epoch
        ),
    }
}

/// One increment of a counter kept as a list of lines `n0`, `n1`, ...: each update adds
/// the next line, so a lost update shows as a repeated line or a short list.
pub fn increment() -> UpdateFn {
    Box::new(|current| {
        let mut m = match current {
            Some(Cacheable::Manifest(m)) => m.clone(),
            _ => KeyManifestEntry::default(),
        };
        m.keys.push(format!("n{}", m.keys.len()));
        Update::Put(Cacheable::Manifest(m))
    })
}

/// The lines `n0` to `n<n-1>`: what a counter holds after `n` increments.
pub fn counted(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("n{i}")).collect()
}
