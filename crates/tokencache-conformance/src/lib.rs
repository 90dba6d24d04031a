//! The shared behaviour suite of tokencache: every [`Cache`] backend (memory, SQLite,
//! Redis, browser storage, and third-party caches) runs it from its own tests and so
//! proves that it behaves like every other backend under
//! [`CacheManager`](tokencache_core::CacheManager).
//!
//! A backend describes itself with a [`Fixture`]: how to create a fresh, empty cache,
//! how to tear one down afterwards (delete its Redis namespace, remove its SQLite file),
//! and its [`Capabilities`] (whether it lists its keys, whether it drops expired entries
//! by itself). A [`Suite`] over the fixture then runs
//!
//! - [`Suite::run_all`]: every behaviour check of [`checks`], each on a fresh cache: the
//!   raw [`Cache`] contract (round trips, listing, prefix boundaries, large and Unicode
//!   values, unknown fields, physical expiry) and the manager semantics of the project
//!   design (scope-subset lookup, strict expiry with leeway, refresh-token retention,
//!   MRRT, the key manifest, no lost updates, atomic updates, the cache's own refresh
//!   lock and its fences, and the improvements over auth0-spa-js),
//!   in *listing mode* when the cache lists its keys and always in *manifest mode*, with
//!   the cache wrapped in [`NoListing`]. It returns a [`Report`] of every failure;
//!   [`Suite::assert_all`] panics with all of them.
//! - [`Suite::run_model_test`]: random sequences of manager operations on the backend and
//!   on a small reference model of the design's semantics; every result and the final
//!   state must agree, and a failure is shrunk to a minimal sequence.
//!
//! Both run managers with [`DEFAULT_PREFIX`] unless [`Suite::prefix`] sets another one;
//! run them with [`CUSTOM_PREFIX`] too, to prove that nothing depends on the default.
//!
//! The caches must measure TTLs with the [`Clock`] `create` gets, a
//! [`ManualClock`](tokencache_core::ManualClock) that the checks move. Physical expiry
//! may drop an entry once it is expired and holds no refresh token, never earlier.
//!
//! The suite needs no runtime and no `Send` futures, so it also runs on
//! `wasm32-unknown-unknown`, in a browser. On native targets the no-lost-updates check
//! starts a multi-thread tokio runtime of its own for its concurrent calls, and the lease
//! checks wait real time (on a thread of their own) for locks whose leases run by the
//! store's clock, such as Redis TTLs; on wasm32 a lock must follow the fixture's clock.
//!
//! # Using it from a backend's tests
//!
//! ```
//! // tests/conformance.rs of a backend crate
//! use std::sync::Arc;
//! use tokencache_conformance::{Capabilities, Fixture, Suite, CUSTOM_PREFIX};
//! use tokencache_core::{Cache, Clock, Result};
//! # use tokencache_conformance::MapCache as MyCache;
//!
//! struct MyFixture;
//!
//! impl Fixture for MyFixture {
//!     fn capabilities(&self) -> Capabilities {
//!         Capabilities::new().with_listing()
//!     }
//!     async fn create(&self, _clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
//!         Ok(Arc::new(MyCache::new())) // a fresh, empty cache; use the clock for TTLs
//!     }
//!     // `tear_down` deletes what `create` made (default: nothing to do).
//! }
//!
//! # futures::executor::block_on(async {
//! // #[tokio::test]
//! Suite::new(MyFixture).assert_all().await;
//! Suite::new(MyFixture).prefix(CUSTOM_PREFIX).assert_all().await;
//! // #[tokio::test]
//! Suite::new(MyFixture).run_model_test(16).await;
//! // Or look at the report yourself:
//! let report = Suite::new(MyFixture).run_all().await;
//! assert!(report.is_ok(), "{report}");
//! # });
//! ```
//!
//! Every failure names the check and the mode
//! (`conformance check `get_by_scope_subset` failed (manifest mode): ...`).
//! Set `TOKENCACHE_PROPTEST_CASES` to change the number of model-test cases and
//! `TOKENCACHE_PROPTEST_SEED` (a number) to change its seed (native targets only).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

use std::fmt;
use std::sync::Arc;

use tokencache_core::{Cache, Clock, Result, DEFAULT_PREFIX};

pub mod checks;
mod doubles;
mod harness;
#[cfg(not(target_arch = "wasm32"))]
pub mod idp;
mod model;
mod no_listing;
#[cfg(not(target_arch = "wasm32"))]
pub mod stampede;
pub mod support;

pub use doubles::{MapCache, Yielding};
pub use harness::Subject;
pub use no_listing::NoListing;

/// The number of model-test cases when none is configured.
pub const DEFAULT_CASES: u32 = 256;

/// A key prefix other than [`DEFAULT_PREFIX`] (and not starting with it), for the second
/// run of a backend's suite.
pub const CUSTOM_PREFIX: &str = "@@tokencache-conformance@@";

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

/// What the caches of a [`Fixture`] can do. The checks adapt to it instead of knowing
/// backends, and check that the cache keeps its promises.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The cache lists its keys ([`Cache::lists_keys`] is true): the checks run in
    /// listing mode as well as in manifest mode.
    pub lists_keys: bool,
    /// The cache may drop an entry that expired (by the clock) without a refresh token by
    /// itself: moka's per-entry expiry, a Redis TTL, browser storage on read, SQLite's
    /// purge. Without it, such an entry must stay until a manager removes it.
    pub physical_expiry: bool,
}

impl Capabilities {
    /// A cache that does not list its keys and keeps every entry until it is removed.
    pub const fn new() -> Self {
        Capabilities {
            lists_keys: false,
            physical_expiry: false,
        }
    }

    /// The cache lists its keys.
    pub const fn with_listing(mut self) -> Self {
        self.lists_keys = true;
        self
    }

    /// The cache may drop expired entries without a refresh token by itself.
    pub const fn with_physical_expiry(mut self) -> Self {
        self.physical_expiry = true;
        self
    }
}

/// How a suite gets the caches it checks: a backend's test setup.
///
/// The suite never needs the futures of a fixture to be `Send`.
#[allow(async_fn_in_trait)] // deliberately: the suite also runs in a browser, on one thread
pub trait Fixture {
    /// What the caches of this fixture can do.
    fn capabilities(&self) -> Capabilities;

    /// A fresh, empty cache (a new map, a new SQLite file, a new Redis namespace) whose
    /// physical expiry, if any, follows `clock`.
    async fn create(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>>;

    /// Deletes what [`Fixture::create`] made for `cache` (a Redis namespace, an SQLite
    /// file). The suite calls it once for every cache it created, after the check, also
    /// when the check failed. The default does nothing.
    async fn tear_down(&self, cache: Arc<dyn Cache>) -> Result<()> {
        drop(cache);
        Ok(())
    }
}

/// Whether a run uses the cache's own listing or a key manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The cache lists its keys and the manager uses its listing.
    Listing,
    /// The cache is wrapped in [`NoListing`]: the manager keeps a key manifest.
    Manifest,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Listing => "listing",
            Mode::Manifest => "manifest",
        })
    }
}

/// One failed check of a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The check's name (a function of [`checks`]), or `capabilities`.
    pub check: &'static str,
    /// The mode it ran in.
    pub mode: Mode,
    /// What went wrong.
    pub message: String,
}

/// What [`Suite::run_all`] found: every check run, and every failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// How many checks ran (in all modes).
    pub ran: usize,
    /// Every failure, in the order the checks ran.
    pub failures: Vec<Failure>,
}

impl Report {
    /// No check failed.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// Panics with every failure unless there is none.
    #[track_caller]
    pub fn assert_passed(&self) {
        if !self.is_ok() {
            panic!("{self}");
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ok() {
            return write!(f, "all {} conformance checks passed", self.ran);
        }
        write!(
            f,
            "{} of {} conformance checks failed:",
            self.failures.len(),
            self.ran
        )?;
        for x in &self.failures {
            write!(f, "\n- {} ({} mode): {}", x.check, x.mode, x.message)?;
        }
        Ok(())
    }
}

/// The behaviour suite over a [`Fixture`].
#[derive(Debug)]
pub struct Suite<F> {
    fixture: F,
    prefix: String,
    /// The kit's own mutant tests: managers without the write lock.
    unserialized_writes: bool,
}

impl<F: Fixture> Suite<F> {
    /// The suite over `fixture`, with managers of the default prefix.
    pub fn new(fixture: F) -> Self {
        Suite {
            fixture,
            prefix: DEFAULT_PREFIX.to_owned(),
            unserialized_writes: false,
        }
    }

    /// Managers with `prefix` instead of [`DEFAULT_PREFIX`] (see [`CUSTOM_PREFIX`]).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The fixture.
    pub fn fixture(&self) -> &F {
        &self.fixture
    }

    fn modes(&self) -> &'static [Mode] {
        if self.fixture.capabilities().lists_keys {
            &[Mode::Listing, Mode::Manifest]
        } else {
            &[Mode::Manifest]
        }
    }

    /// A fresh cache for `mode` (wrapped in [`NoListing`] for manifest mode), and the
    /// cache to tear down.
    async fn fresh(
        &self,
        clock: Arc<dyn Clock>,
        mode: Mode,
    ) -> Result<(Arc<dyn Cache>, Arc<dyn Cache>)> {
        let cache = self.fixture.create(clock).await?;
        Ok(match mode {
            Mode::Manifest => (Arc::new(NoListing(cache.clone())), cache),
            Mode::Listing => (cache.clone(), cache),
        })
    }

    /// Runs every check of [`checks`] on fresh caches from the fixture, in listing mode
    /// when the fixture lists its keys and in manifest mode, tears every cache down, and
    /// reports every failure. Also checks that the caches keep the capabilities promised.
    ///
    /// A failing check does not stop the run on native targets (on wasm32 a panic aborts
    /// the test, so the first failure ends it there).
    pub async fn run_all(&self) -> Report {
        let caps = self.fixture.capabilities();
        let mut report = Report::default();
        let mut listing_checked = false;
        for &mode in self.modes() {
            for (name, check) in checks::all() {
                report.ran += 1;
                let clock = checks::new_clock();
                let (cache, made) = match self.fresh(clock.clone(), mode).await {
                    Ok(c) => c,
                    Err(e) => {
                        report.failures.push(Failure {
                            check: name,
                            mode,
                            message: format!("creating the cache: {e}"),
                        });
                        continue;
                    }
                };
                if !listing_checked {
                    listing_checked = true;
                    if made.lists_keys() != caps.lists_keys {
                        report.failures.push(Failure {
                            check: "capabilities",
                            mode,
                            message: format!(
                                "the capabilities say lists_keys = {}, but the cache's lists_keys() is {}",
                                caps.lists_keys,
                                made.lists_keys()
                            ),
                        });
                    }
                }
                let mut subject = Subject::new(cache, clock, caps).with_prefix(self.prefix.clone());
                subject.unserialized_writes = self.unserialized_writes;
                tracing::info!(check = name, %mode, prefix = %self.prefix, "running conformance check");
                if let Err(message) = caught(check(subject)).await {
                    report.failures.push(Failure {
                        check: name,
                        mode,
                        message,
                    });
                }
                if let Err(e) = self.fixture.tear_down(made).await {
                    report.failures.push(Failure {
                        check: name,
                        mode,
                        message: format!("tearing the cache down: {e}"),
                    });
                }
            }
        }
        report
    }

    /// [`Suite::run_all`], then panics listing every failure, if any.
    pub async fn assert_all(&self) {
        let report = self.run_all().await;
        tracing::info!(%report, prefix = %self.prefix, "conformance suite");
        report.assert_passed();
    }

    /// Runs the model test: `cases` random sequences of manager operations (in listing
    /// mode when the fixture lists its keys, and in manifest mode), each on a fresh cache
    /// from the fixture (torn down afterwards) and on the crate's reference model of the
    /// design's semantics. Every result and the final visible state must agree.
    ///
    /// On a mismatch the sequence is shrunk and the test panics with the minimal
    /// sequence. The seed is fixed unless `TOKENCACHE_PROPTEST_SEED` is set (native).
    pub async fn run_model_test(&self, cases: u32) {
        for &mode in self.modes() {
            model::run(self, cases, mode).await;
        }
    }
}

/// Runs a check; a panic becomes its message (native targets).
#[cfg(not(target_arch = "wasm32"))]
async fn caught(
    check: futures::future::LocalBoxFuture<'static, ()>,
) -> std::result::Result<(), String> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(check)
        .catch_unwind()
        .await
        .map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the check panicked".to_owned())
        })
}

/// Runs a check (a panic aborts on wasm32).
#[cfg(target_arch = "wasm32")]
async fn caught(
    check: futures::future::LocalBoxFuture<'static, ()>,
) -> std::result::Result<(), String> {
    check.await;
    Ok(())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod mutants;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod lease_mutants;

/// The examples of this crate's README.md, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
