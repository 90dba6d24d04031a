//! File modes on unix: the database, `-wal` and `-shm` are private whatever the umask and
//! the database's own mode; an existing file open to group or others is logged; `file:`
//! URIs get the same treatment as paths.
#![cfg(unix)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokencache_core::{Cache, KeyManifestEntry};
use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache_sqlite::SqliteCache;

/// Everything logged, from any thread (the cache logs on its worker threads).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn mode(path: &str) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn open_and_write(name: &str) -> SqliteCache {
    let codec = Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::new(1, [5; 32])),
        "permissions",
    ));
    let cache = SqliteCache::open(name, codec).await.unwrap();
    cache
        .set("k", KeyManifestEntry { keys: vec![] }.into())
        .await
        .unwrap();
    cache
}

fn assert_private(db: &Path) {
    let db = db.display().to_string();
    for name in [db.clone(), format!("{db}-wal"), format!("{db}-shm")] {
        assert_eq!(mode(&name), 0o600, "{name}");
    }
}

// One test: the log subscriber is global to the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_and_side_files_are_private() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let dir = tempfile::tempdir().unwrap();

    // A new file: everything 0600, nothing to warn about.
    let fresh = dir.path().join("fresh.db");
    let cache = open_and_write(fresh.to_str().unwrap()).await;
    assert_private(&fresh);
    assert!(!logs.text().contains("group or others"), "{}", logs.text());
    drop(cache);

    // An existing file readable by group and others: a warning, and SQLite would give
    // the side files the database's mode; they are 0600 anyway.
    let shared = dir.path().join("shared.db");
    std::fs::write(&shared, b"").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cache = open_and_write(shared.to_str().unwrap()).await;
    let text = logs.text();
    assert!(
        text.contains("WARN") && text.contains("group or others"),
        "{text}"
    );
    assert!(text.contains("shared.db"), "{text}");
    assert_eq!(
        mode(shared.to_str().unwrap()),
        0o644,
        "the file's own mode is left alone"
    );
    for side in ["-wal", "-shm"] {
        assert_eq!(
            mode(&format!("{}{side}", shared.display())),
            0o600,
            "{side}"
        );
    }
    drop(cache);

    // A `file:` URI: the file it names is created private (not a file literally named
    // after the URI), with the side files.
    let uri_file = dir.path().join("uri db.db");
    let uri = format!(
        "file:{}?mode=rwc",
        uri_file.display().to_string().replace(' ', "%20")
    );
    let cache = open_and_write(&uri).await;
    assert_private(&uri_file);
    assert!(!Path::new(&uri).exists());
    drop(cache);

    // A group-readable file behind a URI is reported too.
    std::fs::set_permissions(&uri_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = logs.text().matches("group or others").count();
    let _cache = open_and_write(&uri).await;
    assert_eq!(logs.text().matches("group or others").count(), before + 1);
}
