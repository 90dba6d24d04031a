//! The data every workload stores and looks up: one client, a target entry, `N` other
//! entries, and the keys the lookups use.

use std::fmt;
use std::sync::Arc;

use tokencache_core::{
    Cache, CacheEntry, CacheKey, CacheManager, Clock, ManualClock, Result, SystemClock,
};

/// The client id of every benchmark entry.
pub const CLIENT_ID: &str = "bench-client";
/// The audience of the target entry.
pub const TARGET_AUDIENCE: &str = "https://api.test";
/// The scopes of the target entry.
pub const TARGET_SCOPE: &str = "openid profile email read write";
/// The scopes of every other entry.
pub const OTHER_SCOPE: &str = "openid profile email";
/// The scopes a subset lookup asks for: a subset of [`TARGET_SCOPE`] only.
pub const SUBSET_SCOPE: &str = "read openid";
/// The audience of the miss workload: no entry has it.
pub const ABSENT_AUDIENCE: &str = "https://absent.test";
/// The scopes the miss workload asks for.
pub const MISS_SCOPE: &str = "openid";
/// The scopes of the entry the `set` workload overwrites.
pub const SET_SCOPE: &str = "openid bench-set";
/// Lifetime of every entry, in seconds.
pub const EXPIRES_IN: f64 = 86_400.0;
/// The numbers of other keys of the subset workloads (as in the auth0-spa-js baseline).
pub const SUBSET_SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
/// The number of other keys present for `set` and `exact_hit`.
pub const SMALL_SIZE: usize = 10;
/// The number of other entries the `clear` workload removes (besides the target).
pub const CLEAR_SIZE: usize = 100;

/// An entry of the benchmark client, shaped as the baseline's: `at-<tag>`, `rt-<tag>`,
/// `Bearer`, 86400 s.
///
/// ```
/// let e = tokencache_workloads::entry("https://api.test", "openid", "target");
/// assert_eq!(e.access_token, "at-target");
/// assert_eq!(e.refresh_token.as_deref(), Some("rt-target"));
/// ```
pub fn entry(audience: &str, scope: &str, tag: impl fmt::Display) -> CacheEntry {
    let mut e = CacheEntry::new(CLIENT_ID, audience, scope, format!("at-{tag}"), EXPIRES_IN)
        .with_refresh_token(format!("rt-{tag}"));
    e.token_type = Some("Bearer".to_owned());
    e
}

/// The audience of the `i`-th other entry: `https://other-<i>.test`.
pub fn other_audience(i: usize) -> String {
    format!("https://other-{i}.test")
}

/// The key of the target entry.
pub fn exact_key() -> CacheKey {
    CacheKey::new(CLIENT_ID, Some(TARGET_AUDIENCE), Some(TARGET_SCOPE))
}

/// The key of a subset lookup: the target's audience, scopes [`SUBSET_SCOPE`].
pub fn subset_key() -> CacheKey {
    CacheKey::new(CLIENT_ID, Some(TARGET_AUDIENCE), Some(SUBSET_SCOPE))
}

/// The key the `set` workload overwrites: the target's audience, scopes [`SET_SCOPE`].
pub fn set_key() -> CacheKey {
    CacheKey::new(CLIENT_ID, Some(TARGET_AUDIENCE), Some(SET_SCOPE))
}

/// The key of the miss workload.
pub fn miss_key() -> CacheKey {
    CacheKey::new(CLIENT_ID, Some(ABSENT_AUDIENCE), Some(MISS_SCOPE))
}

/// A clock that stands at the current time and does not move: entries set during a run
/// are valid for a day both for the manager and for a backend that expires entries on
/// its own clock.
pub fn frozen_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(SystemClock.now_ms()))
}

/// A manager over `cache` with `clock`, with a key manifest for [`CLIENT_ID`] if the
/// cache cannot list its keys.
pub fn manager(cache: Arc<dyn Cache>, clock: Arc<dyn Clock>) -> Result<CacheManager> {
    CacheManager::builder(cache)
        .clock(clock)
        .client_id(CLIENT_ID)
        .build()
}

/// Stores `others` other entries and the target entry through `manager`.
pub async fn populate(manager: &CacheManager, others: usize) -> Result<()> {
    for i in 0..others {
        manager
            .set(entry(&other_audience(i), OTHER_SCOPE, i))
            .await?;
    }
    manager
        .set(entry(TARGET_AUDIENCE, TARGET_SCOPE, "target"))
        .await
}
