//! The `Cache` trait every backend implements.

use std::sync::Arc;

use crate::error::Result;
use crate::stored::Cacheable;

/// `Send + Sync` on native targets; nothing on wasm32, where browser values are neither.
///
/// Implemented for every type that qualifies, so implementors never name it.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}

/// `Send + Sync` on native targets; nothing on wasm32, where browser values are neither.
///
/// Implemented for every type that qualifies, so implementors never name it.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}

/// A key-value store for [`Cacheable`] values: auth0-spa-js's `ICache`.
///
/// Implement the three required methods (with the re-exported `async_trait`: `#[async_trait]` on native
/// targets, `#[async_trait(?Send)]` on wasm32), and override [`Cache::all_keys`],
/// [`Cache::lists_keys`] and, if the store keeps keys in order, [`Cache::keys_with_prefix`].
/// The rich behaviour lives in [`CacheManager`](crate::CacheManager), not here.
///
/// A `get` of a value that is stored but does not decode is a miss (logged without its
/// content); a value that fails authentication is an [`ErrorKind::Integrity`](crate::ErrorKind::Integrity)
/// error, never a miss.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use tokencache_core::{async_trait, Cache, Cacheable, Result};
///
/// /// A cache that cannot list its keys: a manager over it keeps a key manifest.
/// #[derive(Default)]
/// struct MapCache(Mutex<HashMap<String, Cacheable>>);
///
/// #[cfg_attr(not(target_arch = "wasm32"), async_trait)]
/// #[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
/// impl Cache for MapCache {
///     async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
///         self.0.lock().unwrap().insert(key.to_owned(), value);
///         Ok(())
///     }
///     async fn remove(&self, key: &str) -> Result<()> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
/// }
/// ```
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait Cache: MaybeSendSync {
    /// The value at `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Cacheable>>;

    /// Stores `value` at `key`, replacing what was there.
    async fn set(&self, key: &str, value: Cacheable) -> Result<()>;

    /// Removes `key`; removing a missing key is not an error.
    async fn remove(&self, key: &str) -> Result<()>;

    /// Removes every key in `keys`. The default removes them one by one; stores that can
    /// remove many keys in one round trip or transaction override it (`clear` uses it).
    async fn remove_many(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            self.remove(key).await?;
        }
        Ok(())
    }

    /// Every key this cache holds, or `None` when it cannot list its keys (then the
    /// manager keeps a key manifest). Override together with [`Cache::lists_keys`].
    async fn all_keys(&self) -> Result<Option<Vec<String>>> {
        Ok(None)
    }

    /// The keys that start with `prefix`. The default filters [`Cache::all_keys`];
    /// backends with an ordered index override it, so that a lookup touches the keys of
    /// one client and audience only.
    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Vec<String>>> {
        Ok(self
            .all_keys()
            .await?
            .map(|keys| keys.into_iter().filter(|k| k.starts_with(prefix)).collect()))
    }

    /// Whether [`Cache::all_keys`] returns the keys (`Some`). Decides, when a manager is
    /// built, whether it keeps a key manifest. Default: `false`.
    fn lists_keys(&self) -> bool {
        false
    }
}

macro_rules! forward_cache {
    ($ty:ty) => {
        #[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
        #[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
        impl<C: Cache + ?Sized> Cache for $ty {
            async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
                (**self).get(key).await
            }
            async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
                (**self).set(key, value).await
            }
            async fn remove(&self, key: &str) -> Result<()> {
                (**self).remove(key).await
            }
            async fn remove_many(&self, keys: &[String]) -> Result<()> {
                (**self).remove_many(keys).await
            }
            async fn all_keys(&self) -> Result<Option<Vec<String>>> {
                (**self).all_keys().await
            }
            async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Vec<String>>> {
                (**self).keys_with_prefix(prefix).await
            }
            fn lists_keys(&self) -> bool {
                (**self).lists_keys()
            }
        }
    };
}

forward_cache!(Arc<C>);
forward_cache!(Box<C>);
