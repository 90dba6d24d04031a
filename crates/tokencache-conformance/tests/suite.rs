//! The suite run against the kit's own map cache: in listing mode, in manifest mode
//! (`NoListing`), with physical expiry, with a custom prefix, and against deliberately
//! broken caches that it must catch (the manager without its write lock is caught by the
//! unit tests in `src/mutants.rs`).
#![cfg(not(target_arch = "wasm32"))]

use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokencache_conformance::{
    checks, default_cases, Capabilities, Fixture, MapCache, Mode, NoListing, Report, Subject,
    Suite, CUSTOM_PREFIX,
};
use tokencache_core::{async_trait, Cache, Cacheable, Clock, Keys, Result};

/// How a test cache misbehaves.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Fault {
    #[default]
    None,
    /// `keys_with_prefix` matches on the prefix without its last character.
    SloppyPrefix,
    /// `remove` does nothing.
    NoopRemove,
    /// `get` drops any expired entry without a refresh token, but claims no physical expiry.
    HiddenExpiry,
}

/// How a test cache expires entries.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expiry {
    /// Never by itself.
    Never,
    /// At once (like moka or a Redis TTL): `MapCache::with_physical_expiry`.
    AtOnce,
    /// On read, as browser storage does: a read of an entry that expired (by the clock)
    /// without a refresh token deletes it and is a miss; listing still shows it until then.
    OnRead,
}

/// The kit's `MapCache`, with a fault and an expiry.
#[derive(Debug)]
struct TestCache {
    map: MapCache,
    fault: Fault,
    clock: Arc<dyn Clock>,
    expiry: Expiry,
}

#[async_trait]
impl Cache for TestCache {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        let v = self.map.get(key).await?;
        let drop_on_read = self.expiry == Expiry::OnRead || self.fault == Fault::HiddenExpiry;
        if let (true, Some(v)) = (drop_on_read, &v) {
            let now_s = self.clock.now_ms().div_euclid(1000);
            if v.expires_at().is_some_and(|at| at < now_s) && !v.has_refresh_token() {
                self.map.remove(key).await?;
                return Ok(None);
            }
        }
        Ok(v)
    }
    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        self.map.set(key, value).await
    }
    async fn remove(&self, key: &str) -> Result<()> {
        if self.fault == Fault::NoopRemove {
            return Ok(());
        }
        self.map.remove(key).await
    }
    async fn all_keys(&self) -> Result<Option<Keys>> {
        self.map.all_keys().await
    }
    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Keys>> {
        let prefix = match self.fault {
            Fault::SloppyPrefix => &prefix[..prefix.len().saturating_sub(1)],
            _ => prefix,
        };
        self.map.keys_with_prefix(prefix).await
    }
    fn lists_keys(&self) -> bool {
        true
    }
}

/// Test caches; counts the caches it made and tore down.
#[derive(Debug)]
struct Maps {
    fault: Fault,
    expiry: Expiry,
    listing: bool,
    made: Mutex<(usize, usize)>,
}

impl Maps {
    fn new(expiry: Expiry) -> Self {
        Maps {
            fault: Fault::None,
            expiry,
            listing: true,
            made: Mutex::new((0, 0)),
        }
    }
    fn faulty(fault: Fault) -> Self {
        Maps {
            fault,
            ..Maps::new(Expiry::Never)
        }
    }
    fn unlisted() -> Self {
        Maps {
            listing: false,
            ..Maps::new(Expiry::Never)
        }
    }
    fn made_and_torn_down(&self) -> (usize, usize) {
        *self.made.lock().unwrap()
    }
}

impl Fixture for Maps {
    fn capabilities(&self) -> Capabilities {
        let caps = match self.expiry {
            Expiry::Never => Capabilities::new(),
            _ => Capabilities::new().with_physical_expiry(),
        };
        if self.listing {
            caps.with_listing()
        } else {
            caps
        }
    }
    async fn create(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
        self.made.lock().unwrap().0 += 1;
        let map = match self.expiry {
            Expiry::AtOnce => MapCache::with_physical_expiry(clock.clone()),
            _ => MapCache::new(),
        };
        let cache = TestCache {
            map,
            fault: self.fault,
            clock,
            expiry: self.expiry,
        };
        Ok(if self.listing {
            Arc::new(cache)
        } else {
            Arc::new(NoListing(cache))
        })
    }
    async fn tear_down(&self, cache: Arc<dyn Cache>) -> Result<()> {
        self.made.lock().unwrap().1 += 1;
        // What a real fixture's tear-down does to its storage.
        if let Some(keys) = cache.all_keys().await? {
            cache.remove_many(&keys).await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn all_checks_pass_on_a_listing_map_and_every_cache_is_torn_down() {
    let suite = Suite::new(Maps::new(Expiry::Never));
    let report = suite.run_all().await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.ran, 2 * checks::all().len(), "both modes");
    let (made, torn_down) = suite.fixture().made_and_torn_down();
    assert_eq!(made, report.ran);
    assert_eq!(torn_down, made);
}

#[tokio::test]
async fn all_checks_pass_on_a_map_that_cannot_list() {
    let report = Suite::new(Maps::unlisted()).run_all().await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.ran, checks::all().len(), "manifest mode only");
}

#[tokio::test]
async fn all_checks_pass_with_a_custom_prefix() {
    Suite::new(Maps::new(Expiry::Never))
        .prefix(CUSTOM_PREFIX)
        .assert_all()
        .await;
    Suite::new(Maps::new(Expiry::OnRead))
        .prefix(CUSTOM_PREFIX)
        .run_model_test(default_cases() / 4)
        .await;
}

#[tokio::test]
async fn all_checks_pass_on_maps_with_physical_expiry() {
    Suite::new(Maps::new(Expiry::AtOnce)).assert_all().await;
    Suite::new(Maps::new(Expiry::OnRead)).assert_all().await;
}

#[tokio::test]
async fn model_test_passes_on_a_listing_map() {
    Suite::new(Maps::new(Expiry::Never))
        .run_model_test(default_cases())
        .await;
}

#[tokio::test]
async fn model_test_passes_on_a_map_that_cannot_list() {
    Suite::new(Maps::unlisted())
        .run_model_test(default_cases())
        .await;
}

#[tokio::test]
async fn model_test_passes_on_maps_with_physical_expiry() {
    for expiry in [Expiry::AtOnce, Expiry::OnRead] {
        let suite = Suite::new(Maps::new(expiry));
        suite.run_model_test(default_cases()).await;
        let (made, torn_down) = suite.fixture().made_and_torn_down();
        assert_eq!(torn_down, made, "every model-test cache is torn down");
    }
}

/// The panic message of `f`, which must panic.
fn panic_of(f: impl std::future::Future<Output = ()>) -> String {
    let err = futures::executor::block_on(std::panic::AssertUnwindSafe(f).catch_unwind())
        .expect_err("expected a failure");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn report_of(fixture: Maps) -> Report {
    futures::executor::block_on(Suite::new(fixture).run_all())
}

fn failed_checks(report: &Report) -> Vec<&'static str> {
    report.failures.iter().map(|f| f.check).collect()
}

#[test]
fn the_model_test_catches_a_remove_that_does_nothing() {
    let msg = panic_of(Suite::new(Maps::faulty(Fault::NoopRemove)).run_model_test(64));
    assert!(
        msg.starts_with("conformance model test failed (listing mode"),
        "{msg}"
    );
    assert!(
        msg.contains("Remove") || msg.contains("Clear") || msg.contains("Get"),
        "{msg}"
    );
}

#[test]
fn the_model_test_catches_physical_expiry_that_the_capabilities_deny() {
    let msg = panic_of(Suite::new(Maps::faulty(Fault::HiddenExpiry)).run_model_test(64));
    assert!(msg.contains("has no physical expiry"), "{msg}");
}

#[test]
fn the_report_lists_every_failure_of_a_sloppy_prefix_listing() {
    let report = report_of(Maps::faulty(Fault::SloppyPrefix));
    let failed = failed_checks(&report);
    assert!(
        failed.contains(&"raw_prefix_listing_respects_boundaries"),
        "{report}"
    );
    assert!(report
        .failures
        .iter()
        .all(|f| f.mode == Mode::Listing && f.message.contains(f.check)));
    assert!(report.ran == 2 * checks::all().len(), "every check ran");
}

#[test]
fn the_report_lists_every_failure_of_a_remove_that_does_nothing() {
    let report = report_of(Maps::faulty(Fault::NoopRemove));
    let failed = failed_checks(&report);
    for check in [
        "raw_remove_deletes_and_missing_key_is_ok",
        "raw_remove_many_removes_exactly_those_keys",
        "remove_deletes_the_key_and_its_manifest_line",
        "clear_all_removes_every_key_and_the_manifest",
        "improvement_clear_client_removes_exactly_its_keys",
    ] {
        assert!(failed.contains(&check), "{check} missing from: {report}");
    }
    // Both modes, every failure named in the report's text, and the assertion helper
    // panics with all of them.
    assert!(report.failures.iter().any(|f| f.mode == Mode::Manifest));
    let text = report.to_string();
    assert!(
        text.starts_with(&format!(
            "{} of {} conformance checks failed:",
            report.failures.len(),
            report.ran
        )),
        "{text}"
    );
    let msg = panic_of(async { report.assert_passed() });
    assert_eq!(msg, text);
}

#[test]
fn the_suite_catches_physical_expiry_that_the_capabilities_deny() {
    let report = report_of(Maps::faulty(Fault::HiddenExpiry));
    assert!(
        failed_checks(&report).contains(&"raw_physical_expiry_matches_capabilities"),
        "{report}"
    );
}

#[test]
fn the_suite_catches_capabilities_that_claim_a_listing() {
    let fixture = Maps {
        listing: false,
        ..Maps::new(Expiry::Never)
    };
    // Claims a listing, but wraps its caches in NoListing.
    struct Liar(Maps);
    impl Fixture for Liar {
        fn capabilities(&self) -> Capabilities {
            self.0.capabilities().with_listing()
        }
        async fn create(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
            self.0.create(clock).await
        }
    }
    let report = futures::executor::block_on(Suite::new(Liar(fixture)).run_all());
    assert!(failed_checks(&report).contains(&"capabilities"), "{report}");
}

#[test]
fn one_check_runs_alone_on_a_subject() {
    let clock = checks::new_clock();
    let cache: Arc<dyn Cache> = Arc::new(MapCache::new());
    let subject = Subject::new(cache, clock, Capabilities::new().with_listing());
    futures::executor::block_on(checks::raw_prefix_listing_respects_boundaries(subject));
}
