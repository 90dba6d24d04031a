//! A tokencache backend on SQLite: [`SqliteCache`].
//!
//! Tokens are stored one row per storage key in a WAL-mode SQLite file that several
//! threads and several processes can share. Values go through a
//! [`ValueCodec`](tokencache_core::ValueCodec): give it `tokencache_crypto::EncryptedCodec`
//! so that every row is an AES-256-GCM ciphertext bound to its key — that is the intended
//! use; the default [`JsonCodec`](tokencache_core::JsonCodec) stores plaintext.
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
//! assert_eq!(cache.all_keys().await?, Some(vec![]));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod cache;
mod error;
mod lease;
mod maintenance;
mod pool;
mod rows;
mod schema;
mod update;
mod workers;

pub use builder::{SqliteCacheBuilder, Synchronous, MAX_BUSY_TIMEOUT};
pub use cache::SqliteCache;
pub use schema::SCHEMA_VERSION;

/// The examples of this crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
