//! The facade wires each backend's own refresh lock by default: two managers built by the
//! facade over one SQLite file share leases (an in-process lock would not), and a bad
//! refresh policy is refused when the manager is built.
#![cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]

use std::time::Duration;

use tokencache::crypto::{DataKey, KeyRing};
use tokencache::{CacheLocation, ErrorKind, KeySource, RefreshPolicy, TryAcquire};

async fn manager(location: &CacheLocation) -> tokencache::CacheManager {
    tokencache::builder()
        .cache_location(location.clone())
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn managers_on_one_sqlite_file_share_the_file_s_leases() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("sqlite:{}", dir.path().join("leases.db").display());
    let location: CacheLocation = spec.parse().unwrap();
    let location = location.with_keys(KeySource::keys(KeyRing::new(DataKey::new(1, [7; 32]))));
    let (a, b) = (manager(&location).await, manager(&location).await);
    let ttl = Duration::from_secs(30);
    let TryAcquire::Held(lease) = a
        .refresh_lock()
        .try_acquire("refresh::app", ttl)
        .await
        .unwrap()
    else {
        panic!("the lock is free")
    };
    assert!(matches!(
        b.refresh_lock()
            .try_acquire("refresh::app", ttl)
            .await
            .unwrap(),
        TryAcquire::Busy { .. }
    ));
    a.refresh_lock().release(lease).await.unwrap();
    assert!(matches!(
        b.refresh_lock()
            .try_acquire("refresh::app", ttl)
            .await
            .unwrap(),
        TryAcquire::Held(_)
    ));

    let err = tokencache::builder()
        .cache_location(location)
        .refresh_policy(RefreshPolicy::default().wait(Duration::from_secs(1)))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}
