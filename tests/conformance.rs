//! Facade level: the shared conformance suite over every built-in cache location this
//! build enables, opened the way users open them (`CacheLocation::open`).

use std::sync::Arc;

use tokencache::{Cache, CacheLocation, Clock};

fn locations() -> Vec<CacheLocation> {
    vec![
        #[cfg(feature = "memory")]
        CacheLocation::Memory,
    ]
}

#[tokio::test]
async fn every_location_passes_the_conformance_checks() {
    let locations = locations();
    assert!(!locations.is_empty(), "no backend feature enabled");
    for location in locations {
        eprintln!("conformance: {location:?}");
        let make = move |clock: Arc<dyn Clock>| {
            let location = location.clone();
            async move { location.open(clock).await.expect("open the cache") as Arc<dyn Cache> }
        };
        tokencache_conformance::run_all(make).await;
    }
}
