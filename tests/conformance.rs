//! Facade level: the shared conformance suite over every built-in cache location this
//! build enables, opened the way users open them (`CacheLocation::open`).
//!
//! `cargo test -p tokencache` covers the default (memory); `scripts/test.sh` also runs
//! this file with `--features sqlite,redis` under `scripts/redis.sh`.

use std::sync::Arc;

use tokencache::{Cache, CacheLocation, Clock};

/// A fresh location for one check: a new memory cache, a new SQLite file, a new Redis
/// namespace.
fn fresh_locations(dir: &std::path::Path) -> Vec<CacheLocation> {
    let _ = dir;
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let _ = n;
    #[allow(unused_mut)]
    let mut out = vec![
        #[cfg(feature = "memory")]
        CacheLocation::Memory,
    ];
    #[cfg(feature = "sqlite")]
    {
        use tokencache::crypto::{DataKey, KeyRing};
        let key = DataKey::generate(1).expect("random key");
        out.push(CacheLocation::Sqlite {
            path: dir.join(format!("tokens-{n}.db")),
            namespace: "facade-test".to_owned(),
            keys: tokencache::KeySource::keys(KeyRing::new(key)),
        });
    }
    #[cfg(feature = "redis")]
    {
        let url = std::env::var("TOKENCACHE_REDIS_URL")
            .expect("TOKENCACHE_REDIS_URL is not set: run this test under scripts/redis.sh");
        out.push(CacheLocation::Redis {
            url,
            namespace: format!("facade-{}-{n}", std::process::id()),
            keys: tokencache::KeySource::Plaintext,
        });
    }
    out
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[tokio::test]
async fn every_location_passes_the_conformance_checks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let count = fresh_locations(dir.path()).len();
    assert!(count > 0, "no backend feature enabled");
    for i in 0..count {
        let name = format!("{:?}", fresh_locations(dir.path())[i]);
        eprintln!("conformance through the facade: {name}");
        let base = dir.path().to_owned();
        let make = move |clock: Arc<dyn Clock>| {
            let location = fresh_locations(&base).swap_remove(i);
            async move { location.open(clock).await.expect("open the cache") as Arc<dyn Cache> }
        };
        tokencache_conformance::run_all(make).await;
    }
}
