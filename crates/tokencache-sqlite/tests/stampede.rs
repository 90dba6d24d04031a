//! Single-flight refresh across processes on one SQLite file, against the mock identity
//! provider on loopback: 50 tasks in each of 4 processes refresh one token family at
//! once, 5 rounds (exactly one refresh per round, no reuse detected); a holder killed
//! with SIGKILL while the provider has its exchange leaves a lease that ends by itself.
//!
//! The processes are this test binary run again (see `tokencache_conformance::stampede`).

use std::sync::Arc;

use tokencache_conformance::stampede::{self, child_role};
use tokencache_core::{CacheManager, RefreshPolicy};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

async fn open(path: String, policy: RefreshPolicy) -> CacheManager {
    let codec = Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::new(1, [0x42; 32])),
        "stampede",
    ));
    let cache = SqliteCache::open(&path, codec).await.unwrap();
    CacheManager::builder(Arc::new(cache))
        .refresh_policy(policy)
        .build()
        .unwrap()
}

#[test]
fn stampede_of_4_processes_makes_one_refresh_per_round() {
    if child_role(open) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stampede.db");
    let outcome = stampede::block_on(stampede::stampede(
        "stampede_of_4_processes_makes_one_refresh_per_round",
        path.to_str().unwrap(),
        4,
        50,
        5,
        open,
    ));
    stampede::assert_one_refresh_per_round(&outcome, 5, 4 * 50 * 5);
}

#[test]
fn a_killed_holder_leaves_a_lease_that_ends_by_itself() {
    if child_role(open) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    let outcome = stampede::block_on(stampede::killed_holder(
        "a_killed_holder_leaves_a_lease_that_ends_by_itself",
        path.to_str().unwrap(),
        open,
    ));
    stampede::assert_the_next_holder_refreshed(&outcome);
}
