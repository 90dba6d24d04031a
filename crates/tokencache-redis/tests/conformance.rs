//! The shared conformance suite (every behaviour check and the model test) on a
//! standalone server and on a 3-master cluster, with the default key prefix and with a
//! custom one; every cache gets a fresh namespace, deleted after its check. The same
//! again with the near cache on (each cache then has connections of its own).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::{fresh_namespace, Target};
use tokencache_conformance::{Capabilities, Fixture, Suite, CUSTOM_PREFIX};
use tokencache_core::{Cache, Clock, Error, Result, DEFAULT_PREFIX};
use tokencache_redis::RedisCache;

/// Fresh caches on one shared connection, each in a namespace of its own; or, with the
/// near cache, each on connections of its own.
struct Redis {
    base: RedisCache,
    target: Target,
    near: bool,
    /// Every cache not torn down yet, by its address.
    made: Mutex<HashMap<usize, Arc<RedisCache>>>,
}

impl Redis {
    async fn new(target: Target, near: bool) -> Redis {
        let base = target
            .connect(RedisCache::builder(fresh_namespace("conformance-base")))
            .await;
        Redis {
            base,
            target,
            near,
            made: Mutex::default(),
        }
    }
}

fn address<T: ?Sized>(cache: &Arc<T>) -> usize {
    Arc::as_ptr(cache) as *const () as usize
}

impl Fixture for Redis {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new().with_listing().with_physical_expiry()
    }

    async fn create(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
        let builder = RedisCache::builder(fresh_namespace("conformance")).clock(clock);
        let cache = Arc::new(if self.near {
            self.target.connect(builder.near_cache(1 << 20)).await
        } else {
            builder.with_connection(&self.base.connection())?
        });
        self.made
            .lock()
            .unwrap()
            .insert(address(&cache), cache.clone());
        Ok(cache)
    }

    /// Deletes the cache's namespace, and checks that nothing of it is left.
    async fn tear_down(&self, cache: Arc<dyn Cache>) -> Result<()> {
        let made = self.made.lock().unwrap().remove(&address(&cache));
        let made = made.ok_or_else(|| Error::unexpected("tear_down of a cache never created"))?;
        made.clear_namespace().await?;
        match made.all_keys().await? {
            Some(keys) if keys.is_empty() => Ok(()),
            left => Err(Error::unexpected(format!(
                "the namespace still lists {left:?} after clear_namespace"
            ))),
        }
    }
}

async fn behaviours(target: Target, near: bool) {
    for prefix in [DEFAULT_PREFIX, CUSTOM_PREFIX] {
        let suite = Suite::new(Redis::new(target, near).await).prefix(prefix);
        // The atomic-update and lease checks return at once for caches without atomic
        // updates or a lock of their own: these must run.
        let base = &suite.fixture().base;
        assert!(base.atomic_updates() && base.refresh_lock().is_some());
        suite.assert_all().await;
        assert!(suite.fixture().made.lock().unwrap().is_empty());
    }
}

async fn model(target: Target, near: bool) {
    for prefix in [DEFAULT_PREFIX, CUSTOM_PREFIX] {
        let suite = Suite::new(Redis::new(target, near).await).prefix(prefix);
        suite
            .run_model_test(tokencache_conformance::default_cases())
            .await;
        assert!(suite.fixture().made.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn conformance_standalone() {
    behaviours(Target::Standalone, false).await;
}

#[tokio::test]
async fn conformance_near_cache_standalone() {
    behaviours(Target::Standalone, true).await;
}

#[tokio::test]
async fn conformance_cluster() {
    behaviours(Target::Cluster, false).await;
}

#[tokio::test]
async fn conformance_near_cache_cluster() {
    behaviours(Target::Cluster, true).await;
}

#[tokio::test]
async fn model_test_standalone() {
    model(Target::Standalone, false).await;
}

#[tokio::test]
async fn model_test_near_cache_standalone() {
    model(Target::Standalone, true).await;
}

#[tokio::test]
async fn model_test_cluster() {
    model(Target::Cluster, false).await;
}

#[tokio::test]
async fn model_test_near_cache_cluster() {
    model(Target::Cluster, true).await;
}
