#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// On wasm32 (one thread) caches are shared as `Arc<dyn Cache>` though browser values are
// neither `Send` nor `Sync`: the core decides the wasm story once, for every target.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

mod builder;
#[cfg(feature = "crypto")]
mod keys;
mod location;
#[cfg(feature = "oauth2")]
pub mod oauth2;

pub use tokencache_core::*;

pub use builder::{builder, ManagerBuilder};
#[cfg(feature = "crypto")]
pub use keys::{env_key, KeySource, KEY_ENV, KEY_ID_ENV};
pub use location::{CacheLocation, DEFAULT_SQLITE_NAMESPACE};

#[cfg(feature = "crypto")]
pub use tokencache_crypto as crypto;
#[cfg(feature = "memory")]
pub use tokencache_memory as memory;
#[cfg(all(feature = "redis", not(target_arch = "wasm32")))]
pub use tokencache_redis as redis;
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
pub use tokencache_sqlite as sqlite;
#[cfg(feature = "web")]
pub use tokencache_web as web;
