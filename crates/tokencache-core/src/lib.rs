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
mod keys;
mod lock;
mod manager;
mod redact;
pub mod refresh;
mod retention;
mod stored;

pub use async_trait::async_trait;
pub use cache::{
    update_by_get_and_set, Cache, Fence, KeyFilter, MaybeSend, MaybeSendSync, RankFn, Ranked,
    ReadFn, Update, UpdateFn, Updated, ValueMeta,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::{decode_or_miss, JsonCodec, TextCodec, ValueCodec, TEXT_MARKER};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use key::{CacheKey, KeyRef, DEFAULT_PREFIX, ID_TOKEN_SUFFIX, SEPARATOR};
pub use keys::{Keys, KeysIntoIter, KeysIter};
pub use lock::{InProcessLock, Lease, RefreshLock, TryAcquire};
pub use manager::{CacheManager, CacheManagerBuilder, GetOptions};
pub use refresh::{RefreshError, RefreshOptions, RefreshPolicy, RefreshRequest};
pub use retention::Retention;
pub use stored::{
    CacheEntry, Cacheable, DecodedToken, EntryBody, IdTokenEntry, KeyManifestEntry,
    WrappedCacheEntry,
};

/// The examples of this crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
