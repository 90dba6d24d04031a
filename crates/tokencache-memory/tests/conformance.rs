//! The shared behaviour suite (tokencache-conformance) on `MemoryCache`, as the facade
//! builds it: every check in listing and manifest mode and the model test against the
//! reference model, with the default key prefix and with a custom one.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use tokencache_conformance::{Capabilities, Fixture, Suite, CUSTOM_PREFIX};
use tokencache_core::{Cache, Clock, Result};
use tokencache_memory::MemoryCache;

/// Fresh caches whose physical expiry (moka's per-entry expiry) follows the check's clock.
struct Memory;

impl Fixture for Memory {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new().with_listing().with_physical_expiry()
    }

    async fn create(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
        Ok(Arc::new(MemoryCache::builder().clock(clock).build()))
    }
}

#[tokio::test]
async fn conformance_checks() {
    Suite::new(Memory).assert_all().await;
}

#[tokio::test]
async fn conformance_checks_with_a_custom_prefix() {
    Suite::new(Memory).prefix(CUSTOM_PREFIX).assert_all().await;
}

#[tokio::test]
async fn conformance_model_test() {
    let cases = tokencache_conformance::default_cases();
    Suite::new(Memory).run_model_test(cases).await;
    Suite::new(Memory)
        .prefix(CUSTOM_PREFIX)
        .run_model_test(cases)
        .await;
}
