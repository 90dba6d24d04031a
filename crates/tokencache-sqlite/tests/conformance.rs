//! The shared behaviour suite and model test over an encrypted SqliteCache, each run on
//! a fresh file.

use std::sync::Arc;

use tokencache_core::{Cache, Clock};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

/// A fresh encrypted cache on a fresh file in `dir`, with the suite's clock.
async fn fresh(dir: Arc<tempfile::TempDir>, clock: Arc<dyn Clock>) -> Arc<dyn Cache> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let keys = KeyRing::new(DataKey::generate(1).unwrap());
    SqliteCache::builder(dir.path().join(format!("c{n}.db")))
        .codec(Arc::new(EncryptedCodec::new(keys, "conformance")))
        .clock(clock)
        .build()
        .await
        .map(|c| Arc::new(c) as Arc<dyn Cache>)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    tokencache_conformance::run_all(|clock| fresh(dir.clone(), clock)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_test() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    tokencache_conformance::run_model_test(
        |clock| fresh(dir.clone(), clock),
        tokencache_conformance::default_cases(),
    )
    .await;
}
