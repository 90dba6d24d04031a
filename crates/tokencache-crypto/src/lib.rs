//! The encryption layer of tokencache: AES-256-GCM over any store of bytes or strings.
//!
//! It is a [`ValueCodec`](tokencache_core::ValueCodec), so every backend that stores bytes
//! or strings (SQLite, Redis, localStorage) gets encryption by taking an
//! `Arc<dyn ValueCodec>`, with no encryption code of its own:
//!
//! - [`EncryptedCodec`] encrypts what an inner codec (default
//!   [`JsonCodec`](tokencache_core::JsonCodec)) writes, with a fresh random nonce per write,
//!   and binds each value to its storage key, its key id and a namespace through the
//!   associated data.
//! - [`KeyRing`] holds the active [`DataKey`] and older keys still accepted for reading;
//!   [`ValueCodec::recode`](tokencache_core::ValueCodec::recode) moves a value to the
//!   active key, which is how backends rotate keys.
//! - For stores of strings, the core's [`TextCodec`](tokencache_core::TextCodec) turns its
//!   bytes into text (marked base64).
//!
//! Keys come from the caller (32 bytes from an OS keychain or secret manager, or a hex or
//! base64 string from an environment variable, [`DataKey::from_env`], or a key file,
//! [`DataKey::from_file`]; with the `keychain` feature, the OS keychain:
//! `DataKey::from_keychain` and `DataKey::keychain_load_or_create`). Key material lives
//! only in the cipher, which is wiped on drop, and appears in no `Debug` output, error or
//! log. A wrong key or a tampered value is an
//! [`ErrorKind::Integrity`](tokencache_core::ErrorKind::Integrity) error, never a miss.
//!
//! ```
//! use std::sync::Arc;
//! use tokencache_core::{Cacheable, ErrorKind, KeyManifestEntry, ValueCodec};
//! use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
//!
//! let old = DataKey::parse(1, &"11".repeat(32))?;
//! let codec_v1 = EncryptedCodec::new(KeyRing::new(old.clone()), "my-app");
//! let value = Cacheable::from(KeyManifestEntry { keys: vec!["k1".into()] });
//! let stored = codec_v1.encode("key", &value)?;
//!
//! // Rotate: key 2 writes, key 1 still reads; recode moves a value to key 2.
//! let mut ring = KeyRing::new(old);
//! ring.rotate(DataKey::generate(2)?)?;
//! let codec_v2 = EncryptedCodec::new(ring, "my-app");
//! assert_eq!(codec_v2.decode("key", &stored)?, value);
//! let moved = codec_v2.recode("key", &stored)?.expect("stored under an old key");
//! assert_eq!(EncryptedCodec::key_id_of(&moved), Some(2));
//! assert_eq!(codec_v2.recode("key", &moved)?, None);
//!
//! // The old codec cannot read what the new key wrote.
//! assert_eq!(codec_v1.decode("key", &moved).unwrap_err().kind(), ErrorKind::Integrity);
//! # Ok::<(), tokencache_core::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod key;
mod source;

pub use codec::{EncryptedCodec, FORMAT_VERSION};
pub use key::{DataKey, KeyRing, KEY_LEN};

/// The examples of this crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
