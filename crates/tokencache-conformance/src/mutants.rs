//! The kit tests itself: the no-lost-updates check must fail on a manager whose writes
//! are not serialized (`CacheManagerBuilder::unserialized_writes_for_tests`), in both
//! modes, over a cache whose futures never wait.

use std::sync::Arc;

use tokencache_core::{Cache, Clock, Result};

use crate::{checks, Capabilities, Fixture, MapCache, Suite};

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
