//! The shared conformance suite (every behaviour check and the model test) on a
//! standalone server and on a 3-master cluster, a fresh namespace for every cache.

mod common;

use std::sync::{Arc, Mutex};

use common::{fresh_namespace, Target};
use tokencache_core::{Cache, Clock};
use tokencache_redis::RedisCache;

/// Makes fresh caches on one shared connection, and removes their namespaces at the end.
struct Factory {
    base: RedisCache,
    made: Mutex<Vec<Arc<RedisCache>>>,
}

impl Factory {
    async fn new(target: Target) -> Factory {
        let base = target
            .connect(RedisCache::builder(fresh_namespace("conformance-base")))
            .await;
        Factory {
            base,
            made: Mutex::new(Vec::new()),
        }
    }

    fn make(&self, clock: Arc<dyn Clock>) -> Arc<dyn Cache> {
        let cache = Arc::new(
            RedisCache::builder(fresh_namespace("conformance"))
                .clock(clock)
                .with_connection(&self.base.connection())
                .expect("a valid namespace"),
        );
        self.made.lock().unwrap().push(cache.clone());
        cache
    }

    async fn clean_up(&self) {
        let made: Vec<_> = std::mem::take(&mut *self.made.lock().unwrap());
        for cache in made {
            cache
                .clear_namespace()
                .await
                .expect("clear a test namespace");
        }
    }
}

async fn behaviours(target: Target) {
    let f = Factory::new(target).await;
    tokencache_conformance::run_all(|clock| {
        let cache = f.make(clock);
        async move { cache }
    })
    .await;
    f.clean_up().await;
}

async fn model(target: Target) {
    let f = Factory::new(target).await;
    tokencache_conformance::run_model_test(
        |clock| {
            let cache = f.make(clock);
            async move { cache }
        },
        tokencache_conformance::default_cases(),
    )
    .await;
    f.clean_up().await;
}

#[tokio::test]
async fn conformance_standalone() {
    behaviours(Target::Standalone).await;
}

#[tokio::test]
async fn conformance_cluster() {
    behaviours(Target::Cluster).await;
}

#[tokio::test]
async fn model_test_standalone() {
    model(Target::Standalone).await;
}

#[tokio::test]
async fn model_test_cluster() {
    model(Target::Cluster).await;
}
