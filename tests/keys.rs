//! Key sources of an SQLite location: a key file, plaintext by name, the key check at
//! open, and (feature `keychain`, run by scripts/keychain-test.sh) the OS keychain.
#![cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]

use std::sync::Arc;

use tokencache::{CacheLocation, ErrorKind, KeyManifestEntry, KeySource, SystemClock};

fn write_key(path: &std::path::Path, byte: u8, mode: u32) {
    let hex: String = std::iter::repeat_n(format!("{byte:02x}"), 32).collect();
    std::fs::write(path, hex).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
}

fn location(db: &std::path::Path) -> CacheLocation {
    format!("sqlite:{}?ns=keys-test", db.display())
        .parse::<CacheLocation>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_opens_and_a_wrong_one_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let (good, bad) = (dir.path().join("good.key"), dir.path().join("bad.key"));
    write_key(&good, 0x11, 0o600);
    write_key(&bad, 0x22, 0o600);

    let cache = location(&db)
        .with_keys(KeySource::file(&good))
        .open(Arc::new(SystemClock))
        .await
        .unwrap();
    let value: tokencache::Cacheable = KeyManifestEntry {
        keys: vec!["a".into()],
    }
    .into();
    cache.set("k", value.clone()).await.unwrap();
    drop(cache);

    let err = location(&db)
        .with_keys(KeySource::file(&bad))
        .open(Arc::new(SystemClock))
        .await
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");

    let again = location(&db)
        .with_keys(KeySource::file(&good))
        .open(Arc::new(SystemClock))
        .await
        .unwrap();
    assert_eq!(again.get("k").await.unwrap(), Some(value));
    assert_eq!(
        format!("{:?}", KeySource::file(&good)),
        format!("KeySource::File({}, id 1)", good.display())
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_open_to_others_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("open.key");
    write_key(&key, 0x33, 0o644);
    let db = dir.path().join("c.db");
    let err = location(&db)
        .with_keys(KeySource::file(&key))
        .open(Arc::new(SystemClock))
        .await
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(!db.exists(), "nothing is created with a refused key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_is_asked_for_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let cache = location(&db)
        .with_keys(KeySource::Plaintext)
        .open(Arc::new(SystemClock))
        .await
        .unwrap();
    let value: tokencache::Cacheable = KeyManifestEntry {
        keys: vec!["plain-marker".into()],
    }
    .into();
    cache.set("k", value).await.unwrap();
    drop(cache);
    let bytes = std::fs::read(&db).unwrap();
    assert!(bytes.windows(12).any(|w| w == b"plain-marker"));
}

#[cfg(feature = "keychain")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keychain_key_is_created_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kc.db");
    let service = format!("tokencache-facade-test-{}", std::process::id());
    let source = KeySource::keychain(&service, "data-key");
    let cache = location(&db)
        .with_keys(source.clone())
        .open(Arc::new(SystemClock))
        .await
        .unwrap_or_else(|e| panic!("no OS keychain here? {e}; run scripts/keychain-test.sh"));
    let value: tokencache::Cacheable = KeyManifestEntry {
        keys: vec!["a".into()],
    }
    .into();
    cache.set("k", value.clone()).await.unwrap();
    drop(cache);
    // The second open finds the same key in the keychain (the key check would refuse
    // another one).
    let again = location(&db)
        .with_keys(source)
        .open(Arc::new(SystemClock))
        .await
        .unwrap();
    // The entry stays in the throw-away keyring of scripts/keychain-test.sh.
    assert_eq!(again.get("k").await.unwrap(), Some(value));
}
