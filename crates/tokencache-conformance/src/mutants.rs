//! The kit tests itself: the no-lost-updates check must fail on a manager whose writes
//! are not serialized (`CacheManagerBuilder::unserialized_writes_for_tests`), in both
//! modes, over a cache whose futures never wait.

use std::sync::Arc;

use tokencache_core::{Cache, Cacheable, Clock, Keys, Result};

use crate::{checks, Capabilities, Fixture, MapCache, Suite, Yielding};

struct Map;

impl Fixture for Map {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new().with_listing()
    }
    async fn create(&self, _clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
        Ok(Arc::new(MapCache::new()))
    }
}

/// Runs the no-lost-updates check on managers without the write lock, up to `tries`
/// times per mode, and returns the first failure of each mode.
fn failures_without_write_lock(tries: usize) -> Vec<Option<String>> {
    let suite = Suite::new(Map);
    let check = checks::improvement_no_lost_updates_under_concurrency;
    futures::executor::block_on(async {
        let mut out = Vec::new();
        for &mode in suite.modes() {
            let mut failure = None;
            for _ in 0..tries {
                let clock = checks::new_clock();
                let (cache, _) = suite.fresh(clock.clone(), mode).await.unwrap();
                let mut subject = crate::Subject::new(cache, clock, Map.capabilities());
                subject.unserialized_writes = true;
                if let Err(msg) = crate::caught(Box::pin(check(subject))).await {
                    failure = Some(format!("{mode}: {msg}"));
                    break;
                }
            }
            out.push(failure);
        }
        out
    })
}

#[test]
fn the_no_lost_updates_check_fails_without_the_write_lock() {
    let failures = failures_without_write_lock(10);
    assert_eq!(failures.len(), 2, "listing and manifest mode");
    for f in &failures {
        let msg = f
            .as_deref()
            .expect("the check must fail without the write lock");
        assert!(
            msg.contains("`improvement_no_lost_updates_under_concurrency` failed"),
            "{msg}"
        );
    }
    // In manifest mode the lost manifest lines are found; in listing mode, the new entries
    // that a concurrent cut-down overwrote.
    assert!(
        failures[0].as_deref().unwrap().contains("must survive"),
        "{failures:?}"
    );
}

/// A cache that claims atomic updates but keeps the default `update` (`get`, `f`, `set`),
/// over a map whose calls yield: the atomic-update checks must catch it.
struct ClaimsAtomic(Yielding<MapCache>);

#[tokencache_core::async_trait]
impl Cache for ClaimsAtomic {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        self.0.get(key).await
    }
    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        self.0.set(key, value).await
    }
    async fn remove(&self, key: &str) -> Result<()> {
        self.0.remove(key).await
    }
    async fn all_keys(&self) -> Result<Option<Keys>> {
        self.0.all_keys().await
    }
    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Keys>> {
        self.0.keys_with_prefix(prefix).await
    }
    fn lists_keys(&self) -> bool {
        true
    }
    fn atomic_updates(&self) -> bool {
        true
    }
}

struct FakeAtomic;

impl Fixture for FakeAtomic {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new().with_listing()
    }
    async fn create(&self, _clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
        Ok(Arc::new(ClaimsAtomic(Yielding(MapCache::new()))))
    }
}

/// Runs `check` on fresh fake-atomic caches, up to `tries` times per mode, and returns the
/// first failure of each mode.
fn failures_of_fake_atomic(check: checks::CheckFn, tries: usize) -> Vec<Option<String>> {
    let suite = Suite::new(FakeAtomic);
    futures::executor::block_on(async {
        let mut out = Vec::new();
        for &mode in suite.modes() {
            let mut failure = None;
            for _ in 0..tries {
                let clock = checks::new_clock();
                let (cache, _) = suite.fresh(clock.clone(), mode).await.unwrap();
                let subject = crate::Subject::new(cache, clock, FakeAtomic.capabilities());
                if let Err(msg) = crate::caught(check(subject)).await {
                    failure = Some(format!("{mode}: {msg}"));
                    break;
                }
            }
            out.push(failure);
        }
        out
    })
}

fn check_named(name: &str) -> checks::CheckFn {
    checks::all()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| f)
        .expect("the check is registered")
}

#[test]
fn the_increment_check_fails_on_a_non_atomic_update() {
    let name = "atomic_update_loses_no_increment";
    let failures = failures_of_fake_atomic(check_named(name), 10);
    assert_eq!(failures.len(), 2, "listing and manifest mode");
    for f in &failures {
        let msg = f
            .as_deref()
            .expect("the check must fail on a non-atomic update");
        assert!(msg.contains(&format!("`{name}` failed")), "{msg}");
        assert!(msg.contains("must count to 64"), "{msg}");
    }
}

#[test]
fn the_two_managers_check_fails_on_a_non_atomic_update() {
    let name = "atomic_newer_refresh_token_survives_two_managers";
    let failures = failures_of_fake_atomic(check_named(name), 10);
    assert_eq!(failures.len(), 2, "listing and manifest mode");
    for f in &failures {
        let msg = f
            .as_deref()
            .expect("the check must fail on a non-atomic update");
        assert!(msg.contains(&format!("`{name}` failed")), "{msg}");
        // Either lost update: the rotation overwritten by the cut-down (the old refresh
        // token is back), or the cut-down overwritten by the rotation.
        assert!(
            msg.contains("newer refresh token must survive") || msg.contains("must be cut down"),
            "{msg}"
        );
    }
}
