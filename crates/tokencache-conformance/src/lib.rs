//! The shared behaviour suite of tokencache: every [`Cache`] backend (memory, SQLite,
//! Redis, browser storage, and third-party caches) runs it from its own tests, with its
//! own constructor, and so proves that it behaves like every other backend under
//! [`CacheManager`](tokencache_core::CacheManager).
//!
//! - [`run_all`] runs every behaviour check of [`checks`]: the raw [`Cache`] contract
//!   (round trips, listing, prefix boundaries, large and Unicode values, unknown fields)
//!   and the manager semantics of the project design (scope-subset lookup, strict expiry
//!   with leeway, refresh-token retention, MRRT, the key manifest, and the improvements
//!   over auth0-spa-js). It runs them in *listing mode* when the cache lists its keys, and
//!   always in *manifest mode*, with the cache wrapped in [`NoListing`].
//! - [`run_model_test`] runs random sequences of manager operations on the backend and on
//!   a small reference model of the design's semantics, and compares every result and the
//!   final state; a failure is shrunk to a minimal sequence.
//!
//! Both take a factory: a closure that gets the [`Clock`] of one check and returns a fresh,
//! empty cache (a new map, a new SQLite file, a new Redis namespace). Backends with
//! physical expiry must measure TTLs with that clock; the clock is a
//! [`ManualClock`](tokencache_core::ManualClock) that the checks move. Physical expiry may
//! drop an entry once it is expired and holds no refresh token, never earlier.
//!
//! Nothing here needs a runtime, spawns tasks or requires `Send` futures, so the suite
//! also runs on `wasm32-unknown-unknown`, in a browser.
//!
//! # Using it from a backend's tests
//!
//! ```no_run
//! // tests/conformance.rs of a backend crate
//! use std::sync::Arc;
//! use tokencache_core::{Cache, Clock};
//! # use tokencache_core::doc_support::MapCache as MyCache;
//!
//! async fn make(_clock: Arc<dyn Clock>) -> Arc<dyn Cache> {
//!     Arc::new(MyCache::default()) // a fresh, empty cache; use the clock for TTLs
//! }
//!
//! # async fn tests() {
//! // #[tokio::test]
//! tokencache_conformance::run_all(make).await;
//! // #[tokio::test]
//! tokencache_conformance::run_model_test(make, tokencache_conformance::default_cases()).await;
//! // One check alone:
//! use tokencache_conformance::checks;
//! let clock = checks::new_clock();
//! checks::get_by_scope_subset(make(clock.clone()).await, clock).await;
//! # }
//! ```
//!
//! Every check panics with a message naming the check and the mode
//! (`conformance check `get_by_scope_subset` failed (manifest mode): ...`).
//! Set `TOKENCACHE_PROPTEST_CASES` to change the number of model-test cases and
//! `TOKENCACHE_PROPTEST_SEED` (a number) to change its seed (native targets only).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

use std::future::Future;
use std::sync::Arc;

use tokencache_core::{Cache, Clock};

pub mod checks;
mod model;
mod no_listing;
mod support;

pub use no_listing::NoListing;

/// The number of model-test cases when none is configured.
pub const DEFAULT_CASES: u32 = 256;

/// The number of model-test cases: `TOKENCACHE_PROPTEST_CASES` if set (at run time on
/// native targets, at build time on wasm32), else [`DEFAULT_CASES`].
pub fn default_cases() -> u32 {
    #[cfg(not(target_arch = "wasm32"))]
    let configured = std::env::var("TOKENCACHE_PROPTEST_CASES").ok();
    #[cfg(target_arch = "wasm32")]
    let configured = option_env!("TOKENCACHE_PROPTEST_CASES").map(str::to_owned);
    configured
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Whether a run uses the cache's own listing or a key manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Listing,
    Manifest,
}

/// A fresh cache from `make` for `mode`: wrapped in [`NoListing`] for manifest mode;
/// `None` in listing mode when the cache cannot list its keys.
pub(crate) async fn fresh<F, Fut>(
    make: &F,
    clock: Arc<dyn Clock>,
    mode: Mode,
) -> Option<Arc<dyn Cache>>
where
    F: Fn(Arc<dyn Clock>) -> Fut,
    Fut: Future<Output = Arc<dyn Cache>>,
{
    let cache = make(clock).await;
    match mode {
        Mode::Manifest => Some(Arc::new(NoListing(cache))),
        Mode::Listing if cache.lists_keys() => Some(cache),
        Mode::Listing => None,
    }
}

/// Runs every check of [`checks`] on fresh caches from `make`: in listing mode when the
/// cache lists its keys, and in manifest mode (wrapped in [`NoListing`]).
///
/// Panics at the first failure, naming the check and the mode.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn(Arc<dyn Clock>) -> Fut,
    Fut: Future<Output = Arc<dyn Cache>>,
{
    for mode in [Mode::Listing, Mode::Manifest] {
        for (name, check) in checks::all() {
            let clock = checks::new_clock();
            let Some(cache) = fresh(&make, clock.clone(), mode).await else {
                tracing::info!("the cache does not list its keys: listing mode skipped");
                break;
            };
            tracing::info!(check = name, ?mode, "running conformance check");
            check(cache, clock).await;
        }
    }
}

/// Runs the model test: `cases` random sequences of manager operations (in listing mode
/// when the cache lists its keys, and in manifest mode), each on a fresh cache from
/// `make` and on the crate's reference model of the design's semantics. Every result
/// and the final visible state must agree.
///
/// On a mismatch the sequence is shrunk and the test panics with the minimal sequence.
/// The seed is fixed unless `TOKENCACHE_PROPTEST_SEED` is set (native targets).
pub async fn run_model_test<F, Fut>(make: F, cases: u32)
where
    F: Fn(Arc<dyn Clock>) -> Fut,
    Fut: Future<Output = Arc<dyn Cache>>,
{
    for mode in [Mode::Listing, Mode::Manifest] {
        if !model::run(&make, cases, mode).await {
            tracing::info!("the cache does not list its keys: listing mode skipped");
        }
    }
}

/// The examples of this crate's README.md, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
