//! Single-flight refresh across processes on one Redis, standalone and cluster, against
//! the mock identity provider on loopback: 50 tasks in each of 4 processes (4 "servers")
//! refresh one token family at once, 5 rounds (exactly one refresh per round, no reuse
//! detected); a holder killed with SIGKILL while the provider has its exchange leaves a
//! lease that ends by itself (the Redis key's own TTL).
//!
//! The processes are this test binary run again (see `tokencache_conformance::stampede`);
//! they find the servers through the environment scripts/redis.sh exports.

mod common;

use std::sync::Arc;

use common::{fresh_namespace, Target};
use tokencache_conformance::stampede::{self, child_role};
use tokencache_core::{CacheManager, RefreshPolicy};
use tokencache_redis::RedisCache;

/// `standalone|namespace` or `cluster|namespace`.
async fn open(location: String, policy: RefreshPolicy) -> CacheManager {
    let (target, namespace) = location.split_once('|').unwrap();
    let target = match target {
        "standalone" => Target::Standalone,
        _ => Target::Cluster,
    };
    let cache = target.connect(RedisCache::builder(namespace)).await;
    CacheManager::builder(Arc::new(cache))
        .refresh_policy(policy)
        .build()
        .unwrap()
}

fn run_stampede(test_name: &str, target: &str) {
    let location = format!("{target}|{}", fresh_namespace("stampede"));
    let outcome = stampede::block_on(stampede::stampede(test_name, &location, 4, 50, 5, open));
    stampede::assert_one_refresh_per_round(&outcome, 5, 4 * 50 * 5);
}

fn run_killed_holder(test_name: &str, target: &str) {
    let location = format!("{target}|{}", fresh_namespace("killed"));
    let outcome = stampede::block_on(stampede::killed_holder(test_name, &location, open));
    stampede::assert_the_next_holder_refreshed(&outcome);
}

#[test]
fn stampede_of_4_processes_on_a_standalone_server() {
    if child_role(open) {
        return;
    }
    run_stampede(
        "stampede_of_4_processes_on_a_standalone_server",
        "standalone",
    );
}

#[test]
fn stampede_of_4_processes_on_a_cluster() {
    if child_role(open) {
        return;
    }
    run_stampede("stampede_of_4_processes_on_a_cluster", "cluster");
}

#[test]
fn a_killed_holder_on_a_standalone_server() {
    if child_role(open) {
        return;
    }
    run_killed_holder("a_killed_holder_on_a_standalone_server", "standalone");
}

#[test]
fn a_killed_holder_on_a_cluster() {
    if child_role(open) {
        return;
    }
    run_killed_holder("a_killed_holder_on_a_cluster", "cluster");
}
