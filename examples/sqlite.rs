//! A native app's token cache in an encrypted SQLite file that several processes share.
//! The key comes from `TOKENCACHE_KEY` (64 hex digits or base64 of 32 bytes) when it is
//! set; otherwise the example makes a throwaway one. (Other sources: a private key file,
//! `DataKey::from_file`, and with the `keychain` feature the OS keychain.)
//!
//! The file records a key check: opening it with another key under the same key id fails
//! at once with an `Integrity` error. Plaintext is never a default: a builder without a
//! codec is a `Config` error unless it says `.plaintext()`.
//!
//! ```sh
//! cargo run --example sqlite --features sqlite
//! ```

use std::sync::Arc;

use tokencache::crypto::{DataKey, EncryptedCodec, KeyRing};
use tokencache::sqlite::SqliteCache;
use tokencache::{CacheEntry, CacheKey, CacheManager, ErrorKind, GetOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> tokencache::Result<()> {
    let dir = std::env::temp_dir().join(format!("tokencache-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("tokens.db");

    let key = match std::env::var_os("TOKENCACHE_KEY") {
        Some(_) => DataKey::from_env(1, "TOKENCACHE_KEY")?,
        None => DataKey::generate(1)?,
    };
    let codec = Arc::new(EncryptedCodec::new(KeyRing::new(key), "my-app"));

    {
        let cache = Arc::new(SqliteCache::open(&path, codec.clone()).await?);
        let manager = CacheManager::new(cache)?;
        manager
            .set(
                CacheEntry::new(
                    "my-app",
                    "https://api.example.com",
                    "openid offline_access read:orders",
                    "access-token-1",
                    3600.0,
                )
                .with_refresh_token("refresh-token-1"),
            )
            .await?;
    }

    // The file holds ciphertext only.
    let raw = std::fs::read(&path).expect("the database file");
    let leaked = raw.windows(14).any(|w| w == b"access-token-1");
    println!("plaintext token in {}: {leaked}", path.display());
    assert!(!leaked, "the database must not hold the token in clear");

    // Another process (here: a second handle) opens the same file with the same key.
    let manager = CacheManager::new(Arc::new(SqliteCache::open(&path, codec).await?))?;
    let key = CacheKey::new(
        "my-app",
        Some("https://api.example.com"),
        Some("read:orders"),
    );
    let body = manager
        .get(&key, GetOptions::default())
        .await?
        .expect("cached");
    assert_eq!(body.access_token.as_deref(), Some("access-token-1"));
    println!("read back through a second handle: ok");

    // The wrong key for key id 1 is refused when the file opens, before any read or write.
    let wrong = Arc::new(EncryptedCodec::new(
        KeyRing::new(DataKey::generate(1)?),
        "my-app",
    ));
    let err = SqliteCache::open(&path, wrong).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    println!("another key under id 1: refused at open ({})", err.kind());

    // No codec, no plaintext by name: a configuration error.
    let err = SqliteCache::builder(dir.join("other.db"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    println!("no codec: {}", err.kind());

    manager.clear(None).await?;
    drop(manager);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
