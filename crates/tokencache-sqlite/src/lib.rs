//! A tokencache backend on SQLite: [`SqliteCache`].
//!
//! Tokens are stored one row per storage key in a WAL-mode SQLite file that several
//! threads and several processes can share. Values go through a
//! [`ValueCodec`](tokencache_core::ValueCodec): give it `tokencache_crypto::EncryptedCodec`
//! so that every row is an AES-256-GCM ciphertext bound to its key — that is the intended
//! use. There is no default codec: plaintext ([`JsonCodec`](tokencache_core::JsonCodec))
//! must be asked for by name with [`SqliteCacheBuilder::plaintext`].
//!
//! An encrypted database records a key check per key id (table `tokencache_key_checks`,
//! with the first write under the id):
//! opening it with other key material under a key id it knows fails at once with an
//! [`ErrorKind::Integrity`](tokencache_core::ErrorKind::Integrity) error, before anything
//! is read or written.
//!
//! On unix the database, `-wal` and `-shm` files are made readable by their owner only
//! (mode 0600, whatever the umask); an existing database file that group or others may
//! read or write is opened as it is, with a `tracing` warning. `file:` URIs get the same
//! treatment as paths.
//!
//! For tools (a CLI):
//! - [`SqliteCache::open`] / [`SqliteCache::builder`] open or create a file and migrate its
//!   schema ([`SCHEMA_VERSION`], kept in `PRAGMA user_version`);
//! - [`Cache::all_keys`](tokencache_core::Cache::all_keys) lists the keys;
//! - [`SqliteCache::purge`] deletes expired entries (those with a refresh token only after
//!   the configured retention);
//! - [`SqliteCache::rotate`] re-encrypts every row under the key ring's active key.
//!
//! ```
//! use std::sync::Arc;
//! use tokencache_core::Cache;
//! use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
//! use tokencache_sqlite::SqliteCache;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tokencache_core::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("tokens.db");
//! # std::env::set_var("TOKENCACHE_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
//! let key = DataKey::from_env(1, "TOKENCACHE_KEY")?; // 64 hex digits or base64
//! let codec = Arc::new(EncryptedCodec::new(KeyRing::new(key), "my-app"));
//! let cache = SqliteCache::open(&path, codec).await?;
//! assert!(cache.all_keys().await?.is_some_and(|keys| keys.is_empty()));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod batch;
mod builder;
mod cache;
mod error;
mod inline;
mod keycheck;
mod lease;
mod maintenance;
mod pool;
mod rows;
mod schema;
mod stats;
mod update;
mod workers;

pub use builder::{SqliteCacheBuilder, Synchronous, MAX_BUSY_TIMEOUT};
pub use cache::SqliteCache;
pub use maintenance::Rotation;
pub use schema::SCHEMA_VERSION;
pub use stats::SqliteStats;

/// The examples of this crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
