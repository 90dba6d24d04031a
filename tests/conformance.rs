//! Facade level: the shared conformance suite over every built-in cache location this
//! build enables, opened the way users open them (`CacheLocation::open`), with the default
//! key prefix and with a custom one. Every cache is torn down after its check: SQLite
//! files are removed, Redis namespaces deleted.
//!
//! `cargo test -p tokencache` covers the default (memory); `scripts/test.sh` also runs
//! this file with `--features sqlite,redis` under `scripts/redis.sh`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokencache::{Cache, CacheLocation, Clock, Error, Result, DEFAULT_PREFIX};
use tokencache_conformance::{Capabilities, Fixture, Suite, CUSTOM_PREFIX};

/// Which built-in location a fixture opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    #[cfg(feature = "memory")]
    Memory,
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "redis")]
    Redis,
}

const KINDS: &[Kind] = &[
    #[cfg(feature = "memory")]
    Kind::Memory,
    #[cfg(feature = "sqlite")]
    Kind::Sqlite,
    #[cfg(feature = "redis")]
    Kind::Redis,
];

/// Fresh caches of one location kind; remembers what each one made.
struct Locations {
    kind: Kind,
    dir: tempfile::TempDir,
    next: AtomicUsize,
    /// The location of every cache not torn down yet, by the cache's address.
    made: Mutex<HashMap<usize, CacheLocation>>,
}

impl Locations {
    fn new(kind: Kind) -> Self {
        Locations {
            kind,
            dir: tempfile::tempdir().expect("a temporary directory"),
            next: AtomicUsize::new(0),
            made: Mutex::default(),
        }
    }

    /// A fresh location: a new memory cache, a new SQLite file, a new Redis namespace.
    fn fresh(&self) -> CacheLocation {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let _ = n;
        match self.kind {
            #[cfg(feature = "memory")]
            Kind::Memory => CacheLocation::Memory,
            #[cfg(feature = "sqlite")]
            Kind::Sqlite => {
                use tokencache::crypto::{DataKey, KeyRing};
                let key = DataKey::generate(1).expect("random key");
                CacheLocation::Sqlite {
                    path: self.dir.path().join(format!("tokens-{n}.db")),
                    namespace: "facade-test".to_owned(),
                    keys: tokencache::KeySource::keys(KeyRing::new(key)),
                }
            }
            #[cfg(feature = "redis")]
            Kind::Redis => CacheLocation::Redis {
                url: std::env::var("TOKENCACHE_REDIS_URL").expect(
                    "TOKENCACHE_REDIS_URL is not set: run this test under scripts/redis.sh",
                ),
                namespace: format!("facade-{}-{n}", std::process::id()),
                keys: tokencache::KeySource::Plaintext,
                // Through the near cache (`&near=BYTES`): the redis crate's own suite runs
                // both, and this checks that the facade wires it.
                near: Some(1 << 20),
            },
        }
    }

    /// Nothing left behind: no cache waiting for its tear-down, no file in the directory.
    fn assert_clean(&self) {
        assert!(self.made.lock().unwrap().is_empty(), "caches not torn down");
        let files: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("read the directory")
            .map(|e| e.expect("an entry").file_name())
            .collect();
        assert!(files.is_empty(), "files left: {files:?}");
    }
}

fn address(cache: &Arc<dyn Cache>) -> usize {
    Arc::as_ptr(cache) as *const () as usize
}

impl Fixture for Locations {
    fn capabilities(&self) -> Capabilities {
        match self.kind {
            #[cfg(feature = "memory")]
            Kind::Memory => Capabilities::new().with_listing().with_physical_expiry(),
            // Expired rows stay until `purge()`, which the suite never calls.
            #[cfg(feature = "sqlite")]
            Kind::Sqlite => Capabilities::new().with_listing(),
            #[cfg(feature = "redis")]
            Kind::Redis => Capabilities::new().with_listing().with_physical_expiry(),
        }
    }

    async fn create(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
        let location = self.fresh();
        let cache = location.open(clock).await?;
        self.made.lock().unwrap().insert(address(&cache), location);
        Ok(cache)
    }

    async fn tear_down(&self, cache: Arc<dyn Cache>) -> Result<()> {
        let location = self.made.lock().unwrap().remove(&address(&cache));
        drop(cache);
        match location.ok_or_else(|| Error::unexpected("tear_down of a cache never created"))? {
            #[cfg(feature = "memory")]
            CacheLocation::Memory => Ok(()),
            #[cfg(feature = "sqlite")]
            CacheLocation::Sqlite { path, .. } => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    match std::fs::remove_file(&file) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(Error::unexpected(format!("removing a test file: {e}")))
                        }
                    }
                }
                Ok(())
            }
            #[cfg(feature = "redis")]
            CacheLocation::Redis { url, namespace, .. } => {
                let cache = tokencache::redis::RedisCache::builder(namespace.as_str())
                    .connect(&url)
                    .await?;
                cache.clear_namespace().await?;
                match cache.all_keys().await? {
                    Some(keys) if keys.is_empty() => Ok(()),
                    left => Err(Error::unexpected(format!(
                        "namespace {namespace} still lists {left:?}"
                    ))),
                }
            }
            #[allow(unreachable_patterns)]
            _ => Ok(()),
        }
    }
}

#[tokio::test]
async fn every_location_passes_the_conformance_checks() {
    assert!(!KINDS.is_empty(), "no backend feature enabled");
    for &kind in KINDS {
        for prefix in [DEFAULT_PREFIX, CUSTOM_PREFIX] {
            eprintln!("conformance through the facade: {kind:?}, prefix {prefix}");
            let suite = Suite::new(Locations::new(kind)).prefix(prefix);
            suite.assert_all().await;
            suite.fixture().assert_clean();
        }
    }
}
