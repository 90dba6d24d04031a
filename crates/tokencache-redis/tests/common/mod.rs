//! Shared helpers of the integration tests: the servers started by scripts/redis.sh.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokencache_redis::{RedisCache, RedisCacheBuilder};

const HOW: &str =
    "run the tests under scripts/redis.sh, e.g. `scripts/redis.sh cargo test -p tokencache-redis`";

/// The standalone server's URL. A missing server is a failure, never a skip.
pub fn standalone_url() -> String {
    std::env::var("TOKENCACHE_REDIS_URL")
        .unwrap_or_else(|_| panic!("TOKENCACHE_REDIS_URL is not set: {HOW}"))
}

/// The cluster nodes' URLs.
pub fn cluster_urls() -> Vec<String> {
    let urls = std::env::var("TOKENCACHE_REDIS_CLUSTER_URLS")
        .unwrap_or_else(|_| panic!("TOKENCACHE_REDIS_CLUSTER_URLS is not set: {HOW}"));
    let urls: Vec<String> = urls
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        !urls.is_empty(),
        "TOKENCACHE_REDIS_CLUSTER_URLS is empty: {HOW}"
    );
    urls
}

/// A namespace no other test (or earlier run) uses.
pub fn fresh_namespace(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "test-{tag}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Where a test runs: the standalone server or the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Standalone,
    Cluster,
}

pub const TARGETS: [Target; 2] = [Target::Standalone, Target::Cluster];

impl Target {
    pub async fn connect(self, builder: RedisCacheBuilder) -> RedisCache {
        match self {
            Target::Standalone => builder.connect(&standalone_url()).await,
            Target::Cluster => builder.connect_cluster(cluster_urls()).await,
        }
        .unwrap_or_else(|e| panic!("cannot connect to the {self:?} redis: {e}"))
    }
}
