//! The shared behaviour suite and model test over an encrypted `SqliteCache`, as the
//! facade builds it, each check on a fresh file that is removed afterwards; with the
//! default key prefix and with a custom one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokencache_conformance::{Capabilities, Fixture, Suite, CUSTOM_PREFIX};
use tokencache_core::{Cache, Clock, Error, Result};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

/// Fresh encrypted caches, one file each in a temporary directory.
struct Sqlite {
    dir: tempfile::TempDir,
    next: AtomicUsize,
    /// The file of every cache not torn down yet, by the cache's address.
    files: Mutex<HashMap<usize, PathBuf>>,
}

impl Sqlite {
    fn new() -> Self {
        Sqlite {
            dir: tempfile::tempdir().expect("a temporary directory"),
            next: AtomicUsize::new(0),
            files: Mutex::default(),
        }
    }

    /// Every file left in the directory: none once every cache is torn down.
    fn files_left(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .expect("read the directory")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }
}

fn address(cache: &Arc<dyn Cache>) -> usize {
    Arc::as_ptr(cache) as *const () as usize
}

impl Fixture for Sqlite {
    /// Expired rows stay until `purge()`, which the suite never calls.
    fn capabilities(&self) -> Capabilities {
        Capabilities::new().with_listing()
    }

    async fn create(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Cache>> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("c{n}.db"));
        let keys = KeyRing::new(DataKey::generate(1)?);
        let cache: Arc<dyn Cache> = Arc::new(
            SqliteCache::builder(&path)
                .codec(Arc::new(EncryptedCodec::new(keys, "conformance")))
                .clock(clock)
                .build()
                .await?,
        );
        self.files.lock().unwrap().insert(address(&cache), path);
        Ok(cache)
    }

    /// Closes the cache and removes its database file (and its WAL and shared-memory files).
    async fn tear_down(&self, cache: Arc<dyn Cache>) -> Result<()> {
        let path = self.files.lock().unwrap().remove(&address(&cache));
        drop(cache);
        let path = path.ok_or_else(|| Error::unexpected("tear_down of a cache never created"))?;
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::unexpected(format!("removing a test file: {e}"))),
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    for prefix in [tokencache_core::DEFAULT_PREFIX, CUSTOM_PREFIX] {
        let suite = Suite::new(Sqlite::new()).prefix(prefix);
        suite.assert_all().await;
        assert_eq!(suite.fixture().files_left(), Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_test() {
    for prefix in [tokencache_core::DEFAULT_PREFIX, CUSTOM_PREFIX] {
        let suite = Suite::new(Sqlite::new()).prefix(prefix);
        suite
            .run_model_test(tokencache_conformance::default_cases())
            .await;
        assert_eq!(suite.fixture().files_left(), Vec::<String>::new());
    }
}
