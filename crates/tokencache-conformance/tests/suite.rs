//! The suite run against a plain in-test map cache: in listing mode, in manifest mode
//! (`NoListing`), and against deliberately broken caches that it must catch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokencache_conformance::{checks, default_cases, run_all, run_model_test, NoListing};
use tokencache_core::{async_trait, Cache, Cacheable, Clock, Result};

/// How a test cache misbehaves.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Fault {
    #[default]
    None,
    /// `keys_with_prefix` matches on the prefix without its last character.
    SloppyPrefix,
    /// `remove` does nothing.
    NoopRemove,
}

/// A legal kind of physical expiry, as browser storage does it: a read of an entry that
/// expired (by the clock) without a refresh token deletes it and is a miss; listing
/// still shows it until then.
#[derive(Debug)]
struct ExpireOnRead(Arc<dyn Clock>);

/// A `BTreeMap` cache that lists its keys.
#[derive(Debug, Default)]
struct MapCache {
    map: Mutex<BTreeMap<String, Cacheable>>,
    fault: Fault,
    expiry: Option<ExpireOnRead>,
}

#[async_trait]
impl Cache for MapCache {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        let mut map = self.map.lock().unwrap();
        if let (Some(ExpireOnRead(clock)), Some(v)) = (&self.expiry, map.get(key)) {
            let now_s = clock.now_ms().div_euclid(1000);
            if v.expires_at().is_some_and(|at| at < now_s) && !v.has_refresh_token() {
                map.remove(key);
                return Ok(None);
            }
        }
        Ok(map.get(key).cloned())
    }
    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        self.map.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    async fn remove(&self, key: &str) -> Result<()> {
        if self.fault != Fault::NoopRemove {
            self.map.lock().unwrap().remove(key);
        }
        Ok(())
    }
    async fn all_keys(&self) -> Result<Option<Vec<String>>> {
        Ok(Some(self.map.lock().unwrap().keys().cloned().collect()))
    }
    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Vec<String>>> {
        let prefix = match self.fault {
            Fault::SloppyPrefix => &prefix[..prefix.len().saturating_sub(1)],
            _ => prefix,
        };
        let map = self.map.lock().unwrap();
        Ok(Some(
            map.keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect(),
        ))
    }
    fn lists_keys(&self) -> bool {
        true
    }
}

async fn make(_clock: Arc<dyn Clock>) -> Arc<dyn Cache> {
    Arc::new(MapCache::default())
}

async fn make_expiring(clock: Arc<dyn Clock>) -> Arc<dyn Cache> {
    Arc::new(MapCache {
        expiry: Some(ExpireOnRead(clock)),
        ..Default::default()
    })
}

async fn make_unlisted(_clock: Arc<dyn Clock>) -> Arc<dyn Cache> {
    Arc::new(NoListing(MapCache::default()))
}

#[tokio::test]
async fn all_checks_pass_on_a_listing_map() {
    run_all(make).await;
}

#[tokio::test]
async fn all_checks_pass_on_a_map_that_cannot_list() {
    run_all(make_unlisted).await;
}

#[tokio::test]
async fn model_test_passes_on_a_listing_map() {
    run_model_test(make, default_cases()).await;
}

#[tokio::test]
async fn model_test_passes_on_a_map_that_cannot_list() {
    run_model_test(make_unlisted, default_cases()).await;
}

#[tokio::test]
async fn all_checks_pass_on_a_map_with_physical_expiry() {
    run_all(make_expiring).await;
}

#[tokio::test]
async fn model_test_passes_on_a_map_with_physical_expiry() {
    run_model_test(make_expiring, default_cases()).await;
}

#[test]
fn the_model_test_catches_a_remove_that_does_nothing() {
    let run = std::panic::AssertUnwindSafe(run_model_test(
        |_clock| async {
            Arc::new(MapCache {
                fault: Fault::NoopRemove,
                ..Default::default()
            }) as Arc<dyn Cache>
        },
        64,
    ))
    .catch_unwind();
    let err =
        futures::executor::block_on(run).expect_err("the model test must fail on a no-op remove");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.starts_with("conformance model test failed (listing mode"),
        "{msg}"
    );
    assert!(
        msg.contains("Remove") || msg.contains("Clear") || msg.contains("Get"),
        "{msg}"
    );
}

/// Runs `check` on a cache with `fault` and returns the panic message, if any.
fn failure_of(fault: Fault, check: checks::CheckFn) -> Option<String> {
    let clock = checks::new_clock();
    let cache: Arc<dyn Cache> = Arc::new(MapCache {
        fault,
        ..Default::default()
    });
    let run = std::panic::AssertUnwindSafe(check(cache, clock)).catch_unwind();
    futures::executor::block_on(run).err().map(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[test]
fn the_suite_catches_a_prefix_listing_without_boundary() {
    let msg = failure_of(Fault::SloppyPrefix, |c, k| {
        Box::pin(checks::raw_prefix_listing_respects_boundaries(c, k))
    })
    .expect("a sloppy keys_with_prefix must fail the check");
    assert!(
        msg.contains("`raw_prefix_listing_respects_boundaries` failed (listing mode)"),
        "{msg}"
    );
    assert!(failure_of(Fault::None, |c, k| Box::pin(
        checks::raw_prefix_listing_respects_boundaries(c, k)
    ))
    .is_none());
}

#[test]
fn the_suite_catches_a_remove_that_does_nothing() {
    let msg = failure_of(Fault::NoopRemove, |c, k| {
        Box::pin(checks::raw_remove_deletes_and_missing_key_is_ok(c, k))
    })
    .expect("a no-op remove must fail the check");
    assert!(
        msg.contains("raw_remove_deletes_and_missing_key_is_ok"),
        "{msg}"
    );
    // And run_all, which names the failed check.
    let run = std::panic::AssertUnwindSafe(run_all(|_clock| async {
        Arc::new(MapCache {
            fault: Fault::NoopRemove,
            ..Default::default()
        }) as Arc<dyn Cache>
    }))
    .catch_unwind();
    let err = futures::executor::block_on(run).expect_err("run_all must fail on a no-op remove");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.starts_with("conformance check `"), "{msg}");
}
