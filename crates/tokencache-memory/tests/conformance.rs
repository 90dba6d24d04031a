//! The shared behaviour suite (tokencache-conformance) on `MemoryCache`: every check, in
//! listing and manifest mode, and the model-based test against the reference model.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use tokencache_core::{Cache, Clock};
use tokencache_memory::MemoryCache;

/// A fresh cache whose physical expiry follows the check's clock.
async fn make(clock: Arc<dyn Clock>) -> Arc<dyn Cache> {
    Arc::new(MemoryCache::builder().clock(clock).build())
}

#[tokio::test]
async fn conformance_checks() {
    tokencache_conformance::run_all(make).await;
}

#[tokio::test]
async fn conformance_model_test() {
    tokencache_conformance::run_model_test(make, tokencache_conformance::default_cases()).await;
}
