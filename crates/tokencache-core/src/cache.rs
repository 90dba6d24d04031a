//! The `Cache` trait every backend implements.

use std::sync::Arc;

use crate::error::Result;
use crate::keys::Keys;
use crate::lock::RefreshLock;
use crate::stored::Cacheable;

/// What an update function decides for the value it was shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Leave the stored value (or its absence) as it is.
    Keep,
    /// Store this value instead.
    Put(Cacheable),
    /// Remove the key.
    Remove,
}

impl Update {
    /// Carries out this decision about `current` (the value the function was shown) with a
    /// store's own `write`, which stores the value it is given or, given `None`, removes
    /// the key; and says what was done. The tail of every atomic [`Cache::update`].
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use tokencache_core::{Cacheable, KeyManifestEntry, Update, Updated};
    ///
    /// let mut map = BTreeMap::new();
    /// let v = Cacheable::Manifest(KeyManifestEntry { keys: vec!["k".into()] });
    /// let mut write = |value: Option<&Cacheable>| {
    ///     match value {
    ///         Some(v) => map.insert("key", v.clone()),
    ///         None => map.remove("key"),
    ///     };
    ///     Ok(())
    /// };
    /// let done = Update::Put(v.clone()).apply(None, &mut write)?;
    /// assert_eq!(done, Updated::Put(v.clone()));
    /// let kept = Update::Keep.apply(Some(v.clone()), &mut write)?;
    /// assert_eq!(kept, Updated::Kept(Some(v)));
    /// assert_eq!(Update::Remove.apply(None, &mut write)?, Updated::Removed);
    /// assert!(map.is_empty());
    /// # Ok::<(), tokencache_core::Error>(())
    /// ```
    pub fn apply(
        self,
        current: Option<Cacheable>,
        write: impl FnOnce(Option<&Cacheable>) -> Result<()>,
    ) -> Result<Updated> {
        Ok(match self {
            Update::Keep => Updated::Kept(current),
            Update::Put(value) => {
                write(Some(&value))?;
                Updated::Put(value)
            }
            Update::Remove => {
                write(None)?;
                Updated::Removed
            }
        })
    }
}

/// What [`Cache::update`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Updated {
    /// Nothing was written; the value the function was last shown (`None`: no value).
    Kept(Option<Cacheable>),
    /// This value was stored.
    Put(Cacheable),
    /// The key was removed (or already absent when the function said so).
    Removed,
    /// The update was fenced and the fence is no longer the holder of its lock: nothing
    /// was written.
    FenceLost,
}

/// The proof that a writer holds a refresh lock: the lock's name, the holder's random
/// id and the lock's epoch when it was taken. A backend that keeps its own refresh lock
/// checks the fence inside the update it guards.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The lock's name.
    pub lock: String,
    /// The holder's random id.
    pub holder: [u8; 16],
    /// The lock's epoch when it was taken; it grows with every acquisition.
    pub epoch: u64,
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fence")
            .field("lock", &self.lock)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// The function of [`Cache::update`]: shown the stored value (`None`: no value), it says
/// what to do. It must be pure (no effects, the same answer for the same value): an
/// optimistic or retrying backend may run it more than once.
#[cfg(not(target_arch = "wasm32"))]
pub type UpdateFn = Box<dyn FnMut(Option<&Cacheable>) -> Update + Send + 'static>;

/// The function of [`Cache::update`]: shown the stored value (`None`: no value), it says
/// what to do. It must be pure (no effects, the same answer for the same value): an
/// optimistic or retrying backend may run it more than once.
#[cfg(target_arch = "wasm32")]
pub type UpdateFn = Box<dyn FnMut(Option<&Cacheable>) -> Update + 'static>;

/// [`Cache::update`] by `get`, `f`, then `set` or `remove` of `cache`: the body of the
/// default, **not atomic** update, for wrappers that must fall back to it.
pub async fn update_by_get_and_set<C: Cache + ?Sized>(
    cache: &C,
    key: &str,
    mut f: UpdateFn,
) -> Result<Updated> {
    let current = cache.get(key).await?;
    Ok(match f(current.as_ref()) {
        Update::Keep => Updated::Kept(current),
        Update::Put(value) => {
            cache.set(key, value.clone()).await?;
            Updated::Put(value)
        }
        Update::Remove => {
            cache.remove(key).await?;
            Updated::Removed
        }
    })
}

/// What a store keeps in plaintext beside a value: enough for a lookup to rank token
/// entries without decoding (decrypting) them. Never a token.
///
/// ```
/// use tokencache_core::{CacheEntry, Cacheable, ValueMeta, WrappedCacheEntry};
///
/// let entry = CacheEntry::new("app", "https://api", "read", "at", 60.0).with_refresh_token("rt");
/// let value = Cacheable::Entry(WrappedCacheEntry::from_entry(entry, 1_700_000_000)?);
/// let meta = ValueMeta::of(&value);
/// assert_eq!(meta.expires_at, Some(1_700_000_060));
/// assert!(meta.has_refresh_token);
/// # Ok::<(), tokencache_core::Error>(())
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValueMeta {
    /// [`Cacheable::expires_at`]: the expiry of a token entry, `None` for other values.
    pub expires_at: Option<i64>,
    /// [`Cacheable::has_refresh_token`].
    pub has_refresh_token: bool,
}

impl ValueMeta {
    /// The metadata of `value`.
    pub fn of(value: &Cacheable) -> ValueMeta {
        ValueMeta {
            expires_at: value.expires_at(),
            has_refresh_token: value.has_refresh_token(),
        }
    }
}

/// The function of [`Cache::best_with_prefix`]: the rank of a key and its value's
/// metadata (lower is better), or `None` when the key is no candidate. It must be pure: a
/// backend may call it more than once for a key.
#[cfg(not(target_arch = "wasm32"))]
pub type RankFn<'a> = &'a (dyn Fn(&str, ValueMeta) -> Option<u64> + Send + Sync);

/// The function of [`Cache::best_with_prefix`]: the rank of a key and its value's
/// metadata (lower is better), or `None` when the key is no candidate. It must be pure: a
/// backend may call it more than once for a key.
#[cfg(target_arch = "wasm32")]
pub type RankFn<'a> = &'a dyn Fn(&str, ValueMeta) -> Option<u64>;

/// The function of [`Cache::remove_prefix_matching`]: whether a key is one to remove. It
/// must be pure.
#[cfg(not(target_arch = "wasm32"))]
pub type KeyFilter<'a> = &'a (dyn Fn(&str) -> bool + Send + Sync);

/// The function of [`Cache::remove_prefix_matching`]: whether a key is one to remove. It
/// must be pure.
#[cfg(target_arch = "wasm32")]
pub type KeyFilter<'a> = &'a dyn Fn(&str) -> bool;

/// The function of [`Cache::read_with`]: shown the value at the key (`None`: no value),
/// once, while the cache lends it.
#[cfg(not(target_arch = "wasm32"))]
pub type ReadFn<'a> = &'a mut (dyn FnMut(Option<&Cacheable>) + Send);

/// The function of [`Cache::read_with`]: shown the value at the key (`None`: no value),
/// once, while the cache lends it.
#[cfg(target_arch = "wasm32")]
pub type ReadFn<'a> = &'a mut dyn FnMut(Option<&Cacheable>);

/// What [`Cache::best_with_prefix`] found.
#[derive(Debug)]
pub struct Ranked {
    /// Every key that starts with the prefix, with its value's metadata, in key order.
    pub listed: Vec<(String, ValueMeta)>,
    /// The index in `listed` of the smallest key of the lowest rank, and its value as
    /// [`Cache::get`] answers it (a value that fails authentication is an
    /// [`ErrorKind::Integrity`](crate::ErrorKind::Integrity) error here, and takes no other
    /// value down); `None` when no key has a rank.
    pub best: Option<(usize, Result<Option<Cacheable>>)>,
}

/// `Send` on native targets; nothing on wasm32, where browser values are not.
///
/// Implemented for every type that qualifies, so callers never name it.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}

/// `Send` on native targets; nothing on wasm32, where browser values are not.
///
/// Implemented for every type that qualifies, so callers never name it.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

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
/// [`Cache::lists_keys`] and, if the store keeps keys in order, [`Cache::keys_with_prefix`]
/// (and [`Cache::best_with_prefix`] if it also keeps each value's [`ValueMeta`] beside it).
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

    /// Shows `f` the value at `key` (`None`: no value), once, as [`Cache::get`] answers
    /// it. The default calls `get` and shows `f` the value it returned.
    ///
    /// An in-memory cache overrides it to lend the value it holds instead of handing out
    /// a clone: `f` sees it without a reference count being taken, so threads that read
    /// one hot entry write to no memory they share (what
    /// [`CacheManager::get_with`](crate::CacheManager::get_with) reads through). `f` runs
    /// while the value is lent: it must be short and must not call the cache.
    async fn read_with(&self, key: &str, f: ReadFn<'_>) -> Result<()> {
        let value = self.get(key).await?;
        f(value.as_ref());
        Ok(())
    }

    /// Stores `value` at `key`, replacing what was there.
    async fn set(&self, key: &str, value: Cacheable) -> Result<()>;

    /// Removes `key`; removing a missing key is not an error.
    async fn remove(&self, key: &str) -> Result<()>;

    /// Removes every key in `keys`. The default removes them one by one; stores that can
    /// remove many keys in one round trip or transaction override it (`clear` uses it).
    async fn remove_many(&self, keys: &[Arc<str>]) -> Result<()> {
        for key in keys {
            self.remove(key).await?;
        }
        Ok(())
    }

    /// Every key this cache holds, or `None` when it cannot list its keys (then the
    /// manager keeps a key manifest). Override together with [`Cache::lists_keys`].
    ///
    /// A [`Keys`] shares its strings: a cache may keep its listing and hand out clones of
    /// it until its keys change.
    async fn all_keys(&self) -> Result<Option<Keys>> {
        Ok(None)
    }

    /// The keys that start with `prefix`. The default filters [`Cache::all_keys`];
    /// backends with an ordered index override it, so that a lookup touches the keys of
    /// one client and audience only.
    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Keys>> {
        Ok(self
            .all_keys()
            .await?
            .map(|keys| keys.into_iter().filter(|k| k.starts_with(prefix)).collect()))
    }

    /// The keys that start with `prefix` with the metadata of their values, and the value
    /// of the best of them by `rank`, read in one step: for stores that keep
    /// [`ValueMeta`] in plaintext beside each value and their keys in order, so that a
    /// lookup decodes (decrypts) one value instead of every candidate's. `None` (the
    /// default) when this cache cannot; the manager then lists the keys with
    /// [`Cache::keys_with_prefix`] and reads each candidate.
    ///
    /// The metadata is what the store recorded when the value was written, so a caller
    /// that must not trust it checks the value it gets against it. Override together with
    /// [`Cache::ranks_by_metadata`].
    async fn best_with_prefix(&self, prefix: &str, rank: RankFn<'_>) -> Result<Option<Ranked>> {
        let _ = (prefix, rank);
        Ok(None)
    }

    /// Whether [`Cache::best_with_prefix`] answers (`Some`): the manager asks before it
    /// prepares a ranked lookup, so that other caches pay nothing for it. Default: `false`.
    fn ranks_by_metadata(&self) -> bool {
        false
    }

    /// Whether [`Cache::all_keys`] returns the keys (`Some`). Decides, when a manager is
    /// built, whether it keeps a key manifest. Default: `false`.
    fn lists_keys(&self) -> bool {
        false
    }

    /// Reads `key`, runs `f` on its value and applies what `f` decides: the manager's
    /// every read-modify-write goes through it.
    ///
    /// Backends whose [`Cache::atomic_updates`] is `true` do it atomically per key, across
    /// every process that shares the store: no other write of `key` lands between the
    /// read `f` is shown and the write. `f` may run more than once (retries); the result
    /// is that of its last run.
    ///
    /// With a `fence`, a backend that keeps its own refresh lock writes only while the
    /// fence still holds the lock, else answers [`Updated::FenceLost`]; other backends
    /// leave the fence to the lock that issued it.
    ///
    /// The default is **not atomic**: `get`, `f`, then `set` or `remove`. A manager
    /// serializes its own calls, but two managers (or processes) over such a cache can lose
    /// an update.
    async fn update(&self, key: &str, fence: Option<&Fence>, f: UpdateFn) -> Result<Updated> {
        let _ = fence;
        update_by_get_and_set(self, key, f).await
    }

    /// Whether [`Cache::update`] is atomic per key across every writer of the store.
    /// Default: `false`.
    fn atomic_updates(&self) -> bool {
        false
    }

    /// Removes every key that starts with `prefix` in one atomic step and returns how many
    /// it removed, or `None` when this cache cannot (the default; the manager then removes
    /// the keys one by one).
    async fn remove_prefix(&self, prefix: &str) -> Result<Option<u64>> {
        let _ = prefix;
        Ok(None)
    }

    /// Removes every key that starts with `prefix` and that `matches` accepts, in one
    /// atomic step, and returns how many it removed; or `None` when this cache cannot (the
    /// default; the manager then lists the keys and removes those it wants). A manager
    /// clears one client with it: every key under the client's part of the namespace
    /// whose client part parses to exactly that client.
    async fn remove_prefix_matching(
        &self,
        prefix: &str,
        matches: KeyFilter<'_>,
    ) -> Result<Option<u64>> {
        let _ = (prefix, matches);
        Ok(None)
    }

    /// The store's own refresh lock, shared by every process that shares the store, or
    /// `None` (the default): then refreshes are serialized inside one process only, by
    /// an [`InProcessLock`](crate::InProcessLock).
    fn refresh_lock(&self) -> Option<Arc<dyn RefreshLock>> {
        None
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
            async fn read_with(&self, key: &str, f: ReadFn<'_>) -> Result<()> {
                (**self).read_with(key, f).await
            }
            async fn remove(&self, key: &str) -> Result<()> {
                (**self).remove(key).await
            }
            async fn remove_many(&self, keys: &[Arc<str>]) -> Result<()> {
                (**self).remove_many(keys).await
            }
            async fn all_keys(&self) -> Result<Option<Keys>> {
                (**self).all_keys().await
            }
            async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Keys>> {
                (**self).keys_with_prefix(prefix).await
            }
            async fn best_with_prefix(
                &self,
                prefix: &str,
                rank: RankFn<'_>,
            ) -> Result<Option<Ranked>> {
                (**self).best_with_prefix(prefix, rank).await
            }
            fn ranks_by_metadata(&self) -> bool {
                (**self).ranks_by_metadata()
            }
            fn lists_keys(&self) -> bool {
                (**self).lists_keys()
            }
            async fn update(
                &self,
                key: &str,
                fence: Option<&Fence>,
                f: UpdateFn,
            ) -> Result<Updated> {
                (**self).update(key, fence, f).await
            }
            fn atomic_updates(&self) -> bool {
                (**self).atomic_updates()
            }
            async fn remove_prefix(&self, prefix: &str) -> Result<Option<u64>> {
                (**self).remove_prefix(prefix).await
            }
            async fn remove_prefix_matching(
                &self,
                prefix: &str,
                matches: KeyFilter<'_>,
            ) -> Result<Option<u64>> {
                (**self).remove_prefix_matching(prefix, matches).await
            }
            fn refresh_lock(&self) -> Option<Arc<dyn RefreshLock>> {
                (**self).refresh_lock()
            }
        }
    };
}

forward_cache!(Arc<C>);
forward_cache!(Box<C>);
