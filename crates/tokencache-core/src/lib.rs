//! The core of tokencache: the [`Cache`] trait every backend implements, the values it
//! stores ([`Cacheable`]) in the exact JSON forms auth0-spa-js 2.x writes, [`CacheKey`],
//! and [`CacheManager`], which gives any cache auth0-spa-js's token-cache semantics
//! (scope-subset lookup, expiry with leeway, refresh-token retention, MRRT, a key manifest
//! for caches that cannot list their keys) with the improvements of the project design.
//!
//! The core knows no backend and spawns no tasks. It builds for `wasm32-unknown-unknown`,
//! where [`Cache`] futures are not `Send`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cache;
mod clock;
mod codec;
mod error;
mod json_number;
mod key;
mod manager;
mod redact;
mod retention;
mod stored;

pub use async_trait::async_trait;
pub use cache::{Cache, MaybeSendSync};
pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::{decode_or_miss, JsonCodec, TextCodec, ValueCodec, TEXT_MARKER};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use key::{CacheKey, DEFAULT_PREFIX, ID_TOKEN_SUFFIX, SEPARATOR};
pub use manager::{CacheManager, CacheManagerBuilder, GetOptions};
pub use retention::Retention;
pub use stored::{
    CacheEntry, Cacheable, DecodedToken, EntryBody, IdTokenEntry, KeyManifestEntry,
    WrappedCacheEntry,
};

/// Small helpers for documentation examples. Not part of the API.
#[doc(hidden)]
pub mod doc_support {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use crate::{Cache, Cacheable, Result};

    /// A map that cannot list its keys.
    #[derive(Default, Debug)]
    pub struct MapCache(Mutex<HashMap<String, Cacheable>>);

    #[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
    #[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
    impl Cache for MapCache {
        async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
            Ok(self
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
                .cloned())
        }
        async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.to_owned(), value);
            Ok(())
        }
        async fn remove(&self, key: &str) -> Result<()> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
            Ok(())
        }
    }
}

/// The examples of this crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
