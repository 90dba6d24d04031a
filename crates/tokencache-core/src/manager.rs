//! `CacheManager`: auth0-spa-js's cache semantics over any [`Cache`].

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_lock::{Mutex, MutexGuard};

use crate::cache::{Cache, MaybeSend, Update, Updated, ValueMeta};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, ErrorKind, Result};
use crate::key::{check_parts, join_parts, CacheKey, KeyRef, DEFAULT_PREFIX, SEPARATOR};
use crate::keys::Keys;
use crate::lock::{InProcessLock, RefreshLock};
use crate::refresh::{Flights, RefreshPolicy};
use crate::stored::{
    CacheEntry, Cacheable, DecodedToken, EntryBody, IdTokenEntry, KeyManifestEntry,
    WrappedCacheEntry,
};

/// Options of [`CacheManager::get`] (auth0-spa-js's `get` arguments).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GetOptions {
    /// Treat the access token as expired this many seconds early (leeway).
    pub expiry_adjustment_seconds: i64,
    /// On a miss, return the refresh token of another entry of the same client
    /// (multi-resource refresh tokens).
    pub use_mrrt: bool,
    /// auth0-spa-js's `cacheMode == "cache-only"`: the caller cannot use a refresh
    /// token, so the MRRT fallback is off.
    pub cache_only: bool,
}

impl GetOptions {
    /// Sets the leeway in seconds.
    pub fn leeway(mut self, seconds: i64) -> Self {
        self.expiry_adjustment_seconds = seconds;
        self
    }

    /// Turns the MRRT fallback on or off.
    pub fn mrrt(mut self, on: bool) -> Self {
        self.use_mrrt = on;
        self
    }

    /// Sets cache-only mode.
    pub fn cache_only(mut self, on: bool) -> Self {
        self.cache_only = on;
        self
    }
}

/// The token cache logic of auth0-spa-js 2.x, with the improvements listed in the
/// project design (order-independent matching, exact-client `clear`, a manifest that
/// stays true, no lost updates), over any [`Cache`].
///
/// All writes of one manager are serialized, and every read-modify-write (the cut-down of
/// an expired entry, `update_entry`, `strip_refresh_token`, manifest edits) is one
/// [`Cache::update`], re-checked on the value it is shown: over a cache whose
/// [`Cache::atomic_updates`] is true (every built-in backend), managers in other tasks,
/// processes or servers never lose an update either, and never write a refresh token back
/// over a newer one. Reads of a valid entry take no lock.
///
/// ```
/// # use std::collections::HashMap;
/// # use std::sync::Mutex;
/// # use tokencache_core::{async_trait, Cache, Cacheable};
/// # #[derive(Default)]
/// # struct MapCache(Mutex<HashMap<String, Cacheable>>);
/// # #[async_trait]
/// # impl Cache for MapCache {
/// #     async fn get(&self, k: &str) -> tokencache_core::Result<Option<Cacheable>> {
/// #         Ok(self.0.lock().unwrap().get(k).cloned())
/// #     }
/// #     async fn set(&self, k: &str, v: Cacheable) -> tokencache_core::Result<()> {
/// #         self.0.lock().unwrap().insert(k.to_owned(), v);
/// #         Ok(())
/// #     }
/// #     async fn remove(&self, k: &str) -> tokencache_core::Result<()> {
/// #         self.0.lock().unwrap().remove(k);
/// #         Ok(())
/// #     }
/// # }
/// # #[cfg(not(target_arch = "wasm32"))]
/// # futures::executor::block_on(async {
/// use std::sync::Arc;
/// use tokencache_core::{CacheEntry, CacheKey, CacheManager, GetOptions, ManualClock};
///
/// // `MapCache` cannot list its keys, so the manager keeps a manifest for client "app".
/// let clock = Arc::new(ManualClock::new(1_700_000_000_000));
/// let manager = CacheManager::builder(Arc::new(MapCache::default()))
///     .clock(clock.clone())
///     .client_id("app")
///     .build()?;
///
/// manager
///     .set(CacheEntry::new("app", "https://api", "openid read write", "at", 60.0).with_refresh_token("rt"))
///     .await?;
///
/// // A lookup by a subset of the scopes finds the entry.
/// let key = CacheKey::new("app", Some("https://api"), Some("read"));
/// let body = manager.get(&key, GetOptions::default()).await?.unwrap();
/// assert_eq!(body.access_token.as_deref(), Some("at"));
///
/// // Once the access token expired, only the refresh token is kept.
/// clock.advance(std::time::Duration::from_secs(61));
/// let body = manager.get(&key, GetOptions::default()).await?.unwrap();
/// assert_eq!(body.access_token, None);
/// assert_eq!(body.refresh_token.as_deref(), Some("rt"));
/// # Ok::<(), tokencache_core::Error>(())
/// # }).unwrap();
/// ```
pub struct CacheManager {
    pub(crate) cache: Arc<dyn Cache>,
    clock: Arc<dyn Clock>,
    prefix: String,
    /// `Some` exactly when the cache cannot list its keys.
    manifest_key: Option<String>,
    /// Serializes every write of this manager.
    write_lock: Mutex<()>,
    /// `false` only through [`CacheManagerBuilder::unserialized_writes_for_tests`].
    serialize_writes: bool,
    /// Values that listing operations skipped because they did not decode or authenticate.
    skipped: AtomicU64,
    /// The lock refreshes run under.
    pub(crate) lock: Arc<dyn RefreshLock>,
    /// The timing of refreshes.
    pub(crate) refresh_policy: RefreshPolicy,
    /// The in-process refresh flights.
    pub(crate) flights: Flights,
}

impl fmt::Debug for CacheManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheManager")
            .field("prefix", &self.prefix)
            .field("manifest_key", &self.manifest_key)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Builds a [`CacheManager`].
pub struct CacheManagerBuilder {
    cache: Arc<dyn Cache>,
    clock: Arc<dyn Clock>,
    prefix: String,
    client_id: Option<String>,
    serialize_writes: bool,
    lock: Option<Arc<dyn RefreshLock>>,
    refresh_policy: RefreshPolicy,
}

impl CacheManagerBuilder {
    /// The lock [`CacheManager::get_or_refresh`] runs refreshes under. Default: the
    /// cache's own ([`Cache::refresh_lock`]: shared by every process, server or tab on
    /// the store), else an [`InProcessLock`] by the manager's clock.
    pub fn refresh_lock(mut self, lock: Arc<dyn RefreshLock>) -> Self {
        self.lock = Some(lock);
        self
    }

    /// The timing of refreshes (default: [`RefreshPolicy::default`]); `build` checks it.
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.refresh_policy = policy;
        self
    }

    /// The clock that decides expiry (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The key prefix (default: [`DEFAULT_PREFIX`]).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The client id the key manifest is stored under (`prefix::client_id`). Required
    /// when the cache cannot list its keys.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// **For tests of test suites only.** A manager whose writes are *not* serialized,
    /// so that concurrent calls can lose updates: the conformance kit runs its
    /// no-lost-updates check against it to prove that the check can fail. Never use it
    /// for real work.
    #[doc(hidden)]
    pub fn unserialized_writes_for_tests(mut self) -> Self {
        self.serialize_writes = false;
        self
    }

    /// The manager. A cache that cannot list its keys without a client id, or a prefix
    /// or client id that cannot be part of a key, is an error.
    pub fn build(self) -> Result<CacheManager> {
        let manifest_key = if self.cache.lists_keys() {
            None
        } else {
            let client = self.client_id.filter(|c| !c.is_empty()).ok_or_else(|| {
                Error::config(
                    "this cache cannot list its keys: give the manager a client id for its key manifest",
                )
            })?;
            check_parts(&self.prefix, &client, None, None, None)?;
            Some(join_parts(&[Some(&self.prefix), Some(&client)]))
        };
        check_parts(&self.prefix, "c", None, None, None)
            .map_err(|_| Error::config("the key prefix cannot be part of a key"))?;
        self.refresh_policy.check()?;
        let lock = match self.lock {
            Some(lock) => lock,
            None => self
                .cache
                .refresh_lock()
                .unwrap_or_else(|| Arc::new(InProcessLock::with_clock(self.clock.clone()))),
        };
        Ok(CacheManager {
            lock,
            refresh_policy: self.refresh_policy,
            flights: Flights::default(),
            cache: self.cache,
            clock: self.clock,
            prefix: self.prefix,
            manifest_key,
            write_lock: Mutex::new(()),
            serialize_writes: self.serialize_writes,
            skipped: AtomicU64::new(0),
        })
    }
}

/// How good a candidate entry is for a lookup: lower is better.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    /// 0: valid under the leeway; 1: expired with a refresh token. (An entry that expired
    /// without a refresh token is no candidate: `get` removes it.)
    class: u8,
    /// Number of distinct scopes in the key.
    scopes: usize,
}

/// What a scope lookup looks for: the listing prefix of the key's client and audience,
/// and the requested scopes.
struct ScopeQuery<'k> {
    listing_prefix: String,
    audience: &'k str,
    wanted: Vec<&'k str>,
}

impl<'k> ScopeQuery<'k> {
    /// `None` for a key without an audience (a stored key without one has no scope part).
    fn of(prefix: &str, key: &'k CacheKey) -> Option<ScopeQuery<'k>> {
        let audience = key.audience()?;
        let mut listing_prefix = String::with_capacity(
            prefix.len() + key.client_id.len() + audience.len() + 3 * SEPARATOR.len(),
        );
        for part in [prefix, &key.client_id, audience] {
            listing_prefix.push_str(part);
            listing_prefix.push_str(SEPARATOR);
        }
        Some(ScopeQuery {
            listing_prefix,
            audience,
            wanted: key
                .scope()
                .map(|s| s.split(' ').collect())
                .unwrap_or_default(),
        })
    }
}

/// The distinct scopes of a space-separated scope string. A scope string holds a handful,
/// for which linear searches beat hashing or sorting; a long one is sorted.
fn scope_set(scope: &str) -> Vec<&str> {
    let mut scopes: Vec<&str> = scope.split(' ').collect();
    if scopes.len() > 32 {
        scopes.sort_unstable();
        scopes.dedup();
        return scopes;
    }
    let mut distinct = 0;
    for i in 0..scopes.len() {
        if !scopes[..distinct].contains(&scopes[i]) {
            scopes[distinct] = scopes[i];
            distinct += 1;
        }
    }
    scopes.truncate(distinct);
    scopes
}

impl CacheManager {
    /// A manager with the default prefix and the system clock over a cache that lists
    /// its keys. For a cache that cannot, use [`CacheManager::builder`] with a client id.
    pub fn new(cache: Arc<dyn Cache>) -> Result<CacheManager> {
        Self::builder(cache).build()
    }

    /// A builder for a manager over `cache`.
    pub fn builder(cache: Arc<dyn Cache>) -> CacheManagerBuilder {
        CacheManagerBuilder {
            cache,
            clock: Arc::new(SystemClock),
            prefix: DEFAULT_PREFIX.to_owned(),
            client_id: None,
            serialize_writes: true,
            lock: None,
            refresh_policy: RefreshPolicy::default(),
        }
    }

    /// The cache under this manager.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// The cache itself, for calls: through `&dyn Cache` each call is one dynamic
    /// dispatch and one boxed future (through the `Arc`'s forwarding impl it would be two).
    pub(crate) fn store(&self) -> &dyn Cache {
        &*self.cache
    }

    /// The lock [`CacheManager::get_or_refresh`] runs refreshes under: the cache's own
    /// unless the builder was given another.
    pub fn refresh_lock(&self) -> &Arc<dyn RefreshLock> {
        &self.lock
    }

    /// The timing of refreshes.
    pub fn refresh_policy(&self) -> RefreshPolicy {
        self.refresh_policy
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of the manifest, when this manager keeps one.
    pub fn manifest_key(&self) -> Option<&str> {
        self.manifest_key.as_deref()
    }

    /// How many stored values the listing operations of this manager (scope lookup, the
    /// MRRT fallback, [`CacheManager::strip_refresh_token`],
    /// [`CacheManager::update_entry`], [`CacheManager::refresh_tokens_by_audience`],
    /// [`CacheManager::clear`]) skipped so far because they did not decode or failed
    /// authentication. One bad value never takes its neighbours down: a direct `get` of
    /// its key returns the typed error, a listing operation logs a warning (naming the
    /// client id only), counts it here and goes on.
    pub fn skipped_values(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// `Ok(None)` for an error of a stored value that a listing operation skips (an
    /// integrity or serialization failure: logged, counted); any other error is returned.
    pub(crate) fn skip_bad_value<T>(
        &self,
        key: &str,
        op: &'static str,
        e: Error,
    ) -> Result<Option<T>> {
        if !matches!(e.kind(), ErrorKind::Integrity | ErrorKind::Serialization) {
            return Err(e);
        }
        self.skipped.fetch_add(1, Ordering::Relaxed);
        let client = KeyRef::parse(key).map(|k| k.client_id()).ok();
        tracing::warn!(
            op,
            client = client.unwrap_or("<unparsable key>"),
            kind = e.kind().as_str(),
            "a stored value does not decode or authenticate; skipped"
        );
        Ok(None)
    }

    /// `get_entry` for a listing operation: a bad value is skipped (see
    /// [`CacheManager::skipped_values`]).
    async fn listed_entry(&self, key: &str, op: &'static str) -> Result<Option<WrappedCacheEntry>> {
        match self.get_entry(key).await {
            Ok(e) => Ok(e),
            Err(e) => self.skip_bad_value(key, op, e),
        }
    }

    /// Holds every write of this manager (unless built with
    /// [`CacheManagerBuilder::unserialized_writes_for_tests`]).
    pub(crate) async fn write_guard(&self) -> Option<MutexGuard<'_, ()>> {
        if self.serialize_writes {
            Some(self.write_lock.lock().await)
        } else {
            None
        }
    }

    pub(crate) fn now_s(&self) -> i64 {
        self.clock.now_s()
    }

    /// The key string of `client_id`, `audience` and `scope` under this manager's
    /// prefix, checked to parse back to the same parts.
    pub(crate) fn key_string(
        &self,
        client_id: &str,
        audience: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String> {
        let audience = audience.filter(|s| !s.is_empty());
        let scope = scope.filter(|s| !s.is_empty());
        check_parts(&self.prefix, client_id, audience, scope, None)?;
        Ok(join_parts(&[
            Some(&self.prefix),
            Some(client_id),
            audience,
            scope,
        ]))
    }

    // ---- listing and the manifest -------------------------------------------------

    /// The listed keys that start with `prefix` (which starts with this manager's prefix).
    pub(crate) async fn list(&self, prefix: &str) -> Result<Keys> {
        match &self.manifest_key {
            Some(_) => Ok(self
                .manifest()
                .await?
                .keys
                .into_iter()
                .filter(|k| k.starts_with(prefix))
                .collect()),
            None => self.store().keys_with_prefix(prefix).await?.ok_or_else(|| {
                Error::unexpected("the cache said it lists its keys but returned none")
            }),
        }
    }

    async fn manifest(&self) -> Result<KeyManifestEntry> {
        let Some(mk) = &self.manifest_key else {
            return Ok(KeyManifestEntry::default());
        };
        let stored = match self.store().get(mk).await {
            Ok(v) => v,
            Err(e) => self.skip_bad_value(mk, "manifest", e)?,
        };
        Ok(match stored {
            Some(Cacheable::Manifest(m)) => m,
            Some(_) => {
                tracing::warn!(key = %mk, "the manifest key holds another kind of value; ignored");
                KeyManifestEntry::default()
            }
            None => KeyManifestEntry::default(),
        })
    }

    /// Adds `key` to the manifest (one atomic update of the manifest). Call with the write
    /// lock held.
    pub(crate) async fn manifest_add(&self, key: &str) -> Result<()> {
        let Some(mk) = &self.manifest_key else {
            return Ok(());
        };
        let key = key.to_owned();
        self.store()
            .update(
                mk,
                None,
                Box::new(move |current| {
                    let mut m = match current {
                        Some(Cacheable::Manifest(m)) if m.keys.contains(&key) => {
                            return Update::Keep
                        }
                        Some(Cacheable::Manifest(m)) => m.clone(),
                        _ => KeyManifestEntry::default(),
                    };
                    m.keys.push(key.clone());
                    Update::Put(Cacheable::Manifest(m))
                }),
            )
            .await?;
        Ok(())
    }

    /// Removes `keys` from the manifest (one atomic update of the manifest), deleting it
    /// when it ends up empty. Call with the write lock held.
    async fn manifest_remove(&self, keys: &[&str]) -> Result<()> {
        let Some(mk) = &self.manifest_key else {
            return Ok(());
        };
        let gone: HashSet<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.store()
            .update(
                mk,
                None,
                Box::new(move |current| {
                    let mut m = match current {
                        Some(Cacheable::Manifest(m)) => m.clone(),
                        Some(_) => KeyManifestEntry::default(),
                        None => return Update::Keep,
                    };
                    let before = m.keys.len();
                    m.keys.retain(|k| !gone.contains(k));
                    if m.keys.is_empty() {
                        Update::Remove
                    } else if m.keys.len() != before {
                        Update::Put(Cacheable::Manifest(m))
                    } else {
                        Update::Keep
                    }
                }),
            )
            .await?;
        Ok(())
    }

    async fn get_entry(&self, key: &str) -> Result<Option<WrappedCacheEntry>> {
        Ok(match self.store().get(key).await? {
            Some(Cacheable::Entry(e)) => Some(e),
            _ => None,
        })
    }

    // ---- the API --------------------------------------------------------------------

    /// The cached body for `key` (its client id, audience and scope; its prefix is this
    /// manager's), following auth0-spa-js:
    ///
    /// 1. the entry at the exact key;
    /// 2. else the best stored entry of the same client and audience whose scopes include
    ///    every requested scope (valid before expired, then the fewest scopes, then the
    ///    smallest key);
    /// 3. else, with `use_mrrt` and not `cache_only`, `{refresh_token, audience, scope}`
    ///    of the best entry of the client that holds a refresh token (nothing is written).
    ///
    /// An expired entry (under the leeway) with a refresh token is cut down to
    /// `{refresh_token, audience, scope}` where it was found and returned.
    ///
    /// **Deliberate difference from auth0-spa-js:** an expired entry *without* a refresh
    /// token is a miss in every step. `get` removes it (and its manifest line) and goes on
    /// exactly as if it had not been stored: to the scope lookup, then to the MRRT
    /// fallback. auth0-spa-js removes it and returns nothing, so its answer depends on
    /// whether the cache still held the entry: a cache with physical expiry (moka, a Redis
    /// TTL) that already dropped it falls back to MRRT, one that still holds it (SQLite
    /// before `purge`) does not. Here one state gives one answer on every backend.
    pub async fn get(&self, key: &CacheKey, opts: GetOptions) -> Result<Option<Arc<EntryBody>>> {
        self.lookup(key, opts, Arc::clone).await
    }

    /// What [`CacheManager::get`] returns, shown to `f` by reference: `Some` of what `f`
    /// made of it, or `None` where `get` returns `None`. The same steps, the same
    /// answer, the same writes.
    ///
    /// An exact hit is read with [`Cache::read_with`]: over a cache that lends its values
    /// (the memory backend), `f` sees the stored body in place, and no reference count of
    /// it is taken. Threads that read one hot entry then share no written memory, so their
    /// hits scale with the cores; through `get`, every hit on one entry takes and drops a
    /// count of the same `Arc`. `f` runs while the value is lent: keep it short (copy what
    /// you need, such as the `Authorization` header), and do not call the cache from it.
    ///
    /// ```
    /// # #[cfg(not(target_arch = "wasm32"))]
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use tokencache_core::{CacheEntry, CacheKey, CacheManager, GetOptions};
    /// # use tokencache_core::{async_trait, Cache, Cacheable, Result};
    /// # #[derive(Default)]
    /// # struct MapCache(std::sync::Mutex<std::collections::HashMap<String, Cacheable>>);
    /// # #[async_trait]
    /// # impl Cache for MapCache {
    /// #     async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
    /// #         Ok(self.0.lock().unwrap().get(key).cloned())
    /// #     }
    /// #     async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
    /// #         self.0.lock().unwrap().insert(key.to_owned(), value);
    /// #         Ok(())
    /// #     }
    /// #     async fn remove(&self, key: &str) -> Result<()> {
    /// #         self.0.lock().unwrap().remove(key);
    /// #         Ok(())
    /// #     }
    /// # }
    ///
    /// let manager = CacheManager::builder(Arc::new(MapCache::default()))
    ///     .client_id("app")
    ///     .build()?;
    /// manager
    ///     .set(CacheEntry::new("app", "https://api", "read", "at-1", 3600.0))
    ///     .await?;
    /// let key = CacheKey::new("app", Some("https://api"), Some("read"));
    /// let header = manager
    ///     .get_with(&key, GetOptions::default(), |body| {
    ///         format!("Bearer {}", body.access_token.as_deref().unwrap_or_default())
    ///     })
    ///     .await?;
    /// assert_eq!(header.as_deref(), Some("Bearer at-1"));
    /// # Ok::<(), tokencache_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn get_with<R, F>(&self, key: &CacheKey, opts: GetOptions, f: F) -> Result<Option<R>>
    where
        F: FnOnce(&EntryBody) -> R + MaybeSend,
        R: MaybeSend,
    {
        self.lookup(key, opts, |body: &Arc<EntryBody>| f(body))
            .await
    }

    /// The steps of [`CacheManager::get`], with what they found shown to `show`.
    pub(crate) async fn lookup<R, F>(
        &self,
        key: &CacheKey,
        opts: GetOptions,
        show: F,
    ) -> Result<Option<R>>
    where
        F: FnOnce(&Arc<EntryBody>) -> R + MaybeSend,
        R: MaybeSend,
    {
        let exact = self.key_string(&key.client_id, key.audience(), key.scope())?;
        let now_s = self.now_s();
        let leeway = opts.expiry_adjustment_seconds;
        let expired_at = move |at: i64| at.saturating_sub(leeway) < now_s;
        let expired = move |e: &WrappedCacheEntry| expired_at(e.expires_at);

        // Steps 1 and 2 in one read where the cache ranks by metadata (SQLite).
        let one_read =
            self.store().ranks_by_metadata() && key.scope().is_some_and(|s| !s.is_empty());
        let query = one_read
            .then(|| ScopeQuery::of(&self.prefix, key))
            .flatten();
        let ranked = match query {
            Some(query) => {
                self.ranked_lookup(key, &query, Some(&exact), expired_at, expired)
                    .await?
            }
            None => None,
        };
        if let Some(found) = ranked {
            if let Some((found_key, entry)) = found {
                if !expired(&entry) {
                    return Ok(Some(show(&entry.body)));
                }
                if let Some(body) = self.expire(&found_key, expired).await? {
                    return Ok(Some(show(&body)));
                }
            }
            return Ok(self
                .mrrt_fallback(key, opts, &expired)
                .await?
                .map(|b| show(&b)));
        }
        // Step 1: the exact key, shown in place where the cache lends its values.
        let mut show = Some(show);
        let mut exact_found = Exact::Missing;
        self.store()
            .read_with(&exact, &mut |value| {
                if matches!(exact_found, Exact::Hit(_)) {
                    return; // shown twice: the first answer stands
                }
                exact_found = match value {
                    Some(Cacheable::Entry(e)) if !expired(e) => show
                        .take()
                        .map_or(Exact::Other, |show| Exact::Hit(show(&e.body))),
                    Some(Cacheable::Entry(_)) => Exact::Expired,
                    Some(_) => Exact::Other,
                    None => Exact::Missing,
                }
            })
            .await?;
        let show = match (exact_found, show) {
            (Exact::Hit(shown), _) => return Ok(Some(shown)),
            // The manifest or an id token: no fallback.
            (Exact::Other, _) | (_, None) => return Ok(None),
            (Exact::Expired, Some(show)) => {
                if let Some(body) = self.expire(&exact, expired).await? {
                    return Ok(Some(show(&body)));
                }
                // Expired without a refresh token: removed, a miss.
                show
            }
            (Exact::Missing, Some(show)) => show,
        };
        // Step 2: a stored entry whose scopes cover the requested ones.
        // (Ranking again would choose the same value the one read could not use.)
        let rank = !one_read;
        if let Some((found_key, entry)) = self.find_by_scope(key, rank, expired_at, expired).await?
        {
            if !expired(&entry) {
                return Ok(Some(show(&entry.body)));
            }
            if let Some(body) = self.expire(&found_key, expired).await? {
                return Ok(Some(show(&body)));
            }
        }
        Ok(self
            .mrrt_fallback(key, opts, &expired)
            .await?
            .map(|b| show(&b)))
    }

    /// Step 3 of `get`: with `use_mrrt` and not `cache_only`, the MRRT fallback.
    async fn mrrt_fallback(
        &self,
        key: &CacheKey,
        opts: GetOptions,
        expired: &impl Fn(&WrappedCacheEntry) -> bool,
    ) -> Result<Option<Arc<EntryBody>>> {
        if opts.use_mrrt && !opts.cache_only {
            return self.find_refresh_token(key, expired).await;
        }
        Ok(None)
    }

    /// Step 2 of `get`: the best stored entry of the key's client and audience whose
    /// scopes include all requested scopes. Matching entries that expired without a
    /// refresh token are removed on the way, and never chosen.
    ///
    /// With `rank`, over a cache that answers [`Cache::best_with_prefix`], the candidates
    /// are ranked by the metadata stored beside them and only the best one is read (one
    /// read, one decryption, see [`CacheManager::ranked_lookup`]); when its value does not
    /// decode, authenticate or match its metadata, every candidate is read, as over any
    /// other cache.
    async fn find_by_scope<E>(
        &self,
        key: &CacheKey,
        rank: bool,
        expired_at: impl Fn(i64) -> bool + Copy + Send + Sync,
        expired: E,
    ) -> Result<Option<(String, WrappedCacheEntry)>>
    where
        E: Fn(&WrappedCacheEntry) -> bool + Copy + Send + 'static,
    {
        let Some(query) = ScopeQuery::of(&self.prefix, key) else {
            return Ok(None); // a stored key without an audience has no scope part
        };
        if rank {
            if let Some(found) = self
                .ranked_lookup(key, &query, None, expired_at, expired)
                .await?
            {
                return Ok(found);
            }
        }
        let mut best: Best<(Rank, Arc<str>)> = None;
        let mut dead: Vec<String> = Vec::new();
        for stored in self.list(&query.listing_prefix).await? {
            let Some(scopes) = self.candidate(&query, key, &stored) else {
                continue;
            };
            let Some(entry) = self.listed_entry(&stored, "scope lookup").await? else {
                continue;
            };
            let class = match (expired(&entry), entry.body.refresh_token().is_some()) {
                (false, _) => 0,
                (true, true) => 1,
                (true, false) => {
                    dead.push(stored.to_string());
                    continue;
                }
            };
            let cand = (Rank { class, scopes }, stored);
            if best.as_ref().is_none_or(|(b, _)| cand < *b) {
                best = Some((cand, entry));
            }
        }
        if !dead.is_empty() {
            self.remove_expired(&dead, expired).await?;
        }
        Ok(best.map(|((_, k), e)| (k.to_string(), e)))
    }

    /// Steps 1 and 2 of `get` in one read, over a cache that answers
    /// [`Cache::best_with_prefix`] (and with no manifest): the key's client and audience
    /// range is ranked by the metadata stored beside each value, and only the best entry
    /// is read and decoded. With `exact`, the exact key ranks first unless it expired
    /// without a refresh token (then it is removed, as step 1 does, and the scope
    /// candidates rank as in step 2).
    ///
    /// `None` when the full path must answer instead: the cache cannot rank, the chosen
    /// value does not decode, authenticate or match its metadata, or the exact key holds
    /// something other than an entry.
    async fn ranked_lookup<E>(
        &self,
        key: &CacheKey,
        query: &ScopeQuery<'_>,
        exact: Option<&str>,
        expired_at: impl Fn(i64) -> bool + Copy + Send + Sync,
        expired: E,
    ) -> Result<Option<Option<(String, WrappedCacheEntry)>>>
    where
        E: Fn(&WrappedCacheEntry) -> bool + Copy + Send + 'static,
    {
        if self.manifest_key.is_some() || !self.store().ranks_by_metadata() {
            return Ok(None);
        }
        // A candidate's `Rank`, from its key and metadata, as one number (the exact key
        // in a class of its own, before every other).
        let rank = |stored: &str, meta: ValueMeta| -> Option<u64> {
            let class: u64 = match (expired_at(meta.expires_at?), meta.has_refresh_token) {
                (true, false) => return None,
                _ if exact == Some(stored) => return Some(0),
                (false, _) => 1,
                (true, true) => 2,
            };
            let scopes = self.candidate(query, key, stored)?;
            Some(
                class << 32
                    | u64::try_from(scopes)
                        .unwrap_or(u64::MAX)
                        .min(u32::MAX.into()),
            )
        };
        let Some(ranked) = self
            .store()
            .best_with_prefix(&query.listing_prefix, &rank)
            .await?
        else {
            return Ok(None);
        };
        if exact.is_some_and(|x| {
            ranked
                .listed
                .iter()
                .any(|(k, m)| k == x && m.expires_at.is_none())
        }) {
            return Ok(None); // not an entry at the exact key: step 1 answers
        }
        let found = match ranked.best {
            None => None,
            Some((i, Ok(Some(value)))) if ValueMeta::of(&value) == ranked.listed[i].1 => {
                match value {
                    Cacheable::Entry(e) => Some((ranked.listed[i].0.clone(), e)),
                    _ => return Ok(None),
                }
            }
            // Read every candidate instead (skipping and counting bad values).
            Some(_) => return Ok(None),
        };
        if found
            .as_ref()
            .is_some_and(|(k, _)| exact == Some(k.as_str()))
        {
            // Step 1 answers: it leaves the other candidates alone.
            return Ok(Some(found));
        }
        let dead: Vec<String> = ranked
            .listed
            .into_iter()
            .filter(|(k, meta)| {
                meta.expires_at.is_some_and(expired_at)
                    && !meta.has_refresh_token
                    && (exact == Some(k.as_str()) || self.candidate(query, key, k).is_some())
            })
            .map(|(k, _)| k)
            .collect();
        if !dead.is_empty() {
            self.remove_expired(&dead, expired).await?;
        }
        Ok(Some(found))
    }

    /// The number of distinct scopes of `stored` if it is a key of `query`'s client and
    /// audience whose scopes include every requested one; `None` for any other key. The
    /// parts before the scope are checked (by `get`) to parse back, so a key of the
    /// listing prefix whose rest is one non-empty part is a key of this client and
    /// audience.
    fn candidate(&self, query: &ScopeQuery<'_>, key: &CacheKey, stored: &str) -> Option<usize> {
        let found = stored
            .strip_prefix(query.listing_prefix.as_str())
            .filter(|scope| !scope.is_empty() && !scope.contains(SEPARATOR))
            .and_then(|scope| {
                let have = scope_set(scope);
                query
                    .wanted
                    .iter()
                    .all(|s| have.contains(s))
                    .then_some(have.len())
            });
        debug_assert_eq!(
            found,
            self.scope_candidate(stored, key, query.audience, &query.wanted)
        );
        found
    }

    /// `candidate` of [`CacheManager::find_by_scope`] by parsing the stored key: the
    /// reference its fast check is compared with in debug builds.
    fn scope_candidate(
        &self,
        stored: &str,
        key: &CacheKey,
        audience: &str,
        wanted: &[&str],
    ) -> Option<usize> {
        let k = KeyRef::parse(stored).ok()?;
        let stored_scope = k.scope()?;
        if !k.belongs_to(&self.prefix, &key.client_id) || k.audience() != Some(audience) {
            return None;
        }
        let have: HashSet<&str> = stored_scope.split(' ').collect();
        wanted
            .iter()
            .all(|s| have.contains(s))
            .then_some(have.len())
    }

    /// Step 3 of `get`: `{refresh_token, audience, scope}` of the best entry of the
    /// client that holds a refresh token. Nothing is written.
    async fn find_refresh_token(
        &self,
        key: &CacheKey,
        expired: &impl Fn(&WrappedCacheEntry) -> bool,
    ) -> Result<Option<Arc<EntryBody>>> {
        let listing_prefix = format!("{}{SEPARATOR}{}{SEPARATOR}", self.prefix, key.client_id);
        let mut best: Best<(bool, usize, Arc<str>)> = None;
        for stored in self.list(&listing_prefix).await? {
            let Ok(k) = KeyRef::parse(&stored) else {
                continue;
            };
            if !k.belongs_to(&self.prefix, &key.client_id) || k.is_id_token() {
                continue;
            }
            let Some(entry) = self.listed_entry(&stored, "refresh token lookup").await? else {
                continue;
            };
            if entry.body.refresh_token().is_none() {
                continue;
            }
            let scopes = k.scope().map_or(0, |s| scope_set(s).len());
            let cand = (expired(&entry), scopes, stored);
            if best.as_ref().is_none_or(|(b, _)| cand < *b) {
                best = Some((cand, entry));
            }
        }
        Ok(best.map(|(_, e)| Arc::new(e.body.refresh_only())))
    }

    /// Under the write lock, in one atomic update of `key`: if it still holds an expired
    /// entry, cuts it down to its refresh token (returned) or removes it (then its manifest
    /// line too; `None`). An entry that another writer replaced meanwhile by a valid one is
    /// returned as it is, and one whose refresh token another writer replaced keeps the
    /// new one: the decision is made on the value the update is shown.
    async fn expire<E>(&self, key: &str, expired: E) -> Result<Option<Arc<EntryBody>>>
    where
        E: Fn(&WrappedCacheEntry) -> bool + Copy + Send + 'static,
    {
        let _guard = self.write_guard().await;
        let outcome = self
            .cache
            .update(
                key,
                None,
                Box::new(move |current| match current {
                    Some(Cacheable::Entry(e)) if expired(e) => {
                        if e.body.refresh_token().is_none() {
                            return Update::Remove;
                        }
                        let stripped = e.body.refresh_only();
                        if stripped == *e.body {
                            Update::Keep
                        } else {
                            let value = WrappedCacheEntry::new(stripped, e.expires_at);
                            Update::Put(Cacheable::Entry(value))
                        }
                    }
                    _ => Update::Keep,
                }),
            )
            .await?;
        match outcome {
            Updated::Put(Cacheable::Entry(e)) => {
                tracing::debug!(key, "access token expired; keeping the refresh token only");
                Ok(Some(e.body))
            }
            Updated::Kept(Some(Cacheable::Entry(e))) => Ok(Some(e.body)),
            Updated::Removed => {
                tracing::debug!(key, "access token expired without a refresh token; removed");
                self.manifest_remove(&[key]).await?;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Under the write lock: removes those of `keys` that still hold an entry that expired
    /// without a refresh token (each in one atomic update), and their manifest lines.
    async fn remove_expired<E>(&self, keys: &[String], expired: E) -> Result<()>
    where
        E: Fn(&WrappedCacheEntry) -> bool + Copy + Send + 'static,
    {
        let _guard = self.write_guard().await;
        let mut gone: Vec<&str> = Vec::new();
        for key in keys {
            let outcome = self
                .cache
                .update(
                    key,
                    None,
                    Box::new(move |current| match current {
                        Some(Cacheable::Entry(e))
                            if expired(e) && e.body.refresh_token().is_none() =>
                        {
                            Update::Remove
                        }
                        _ => Update::Keep,
                    }),
                )
                .await;
            // A value chosen by its metadata may not authenticate: skipped, as in a listing.
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) => {
                    self.skip_bad_value::<()>(key, "scope lookup", e)?;
                    continue;
                }
            };
            if outcome == Updated::Removed {
                gone.push(key);
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        tracing::debug!(
            count = gone.len(),
            "access tokens expired without a refresh token; removed"
        );
        self.manifest_remove(&gone).await
    }

    /// Stores `entry` at `prefix::client_id::audience::scope`, expiring `expires_in`
    /// seconds from now (rounded down to whole seconds, as auth0-spa-js compares them).
    pub async fn set(&self, entry: CacheEntry) -> Result<()> {
        if entry.audience.is_empty() && entry.scope.is_empty() {
            return Err(Error::invalid_key(
                "an entry without audience and scope would be stored at the manifest's key",
            ));
        }
        let key = self.key_string(&entry.client_id, Some(&entry.audience), Some(&entry.scope))?;
        let value = Cacheable::Entry(WrappedCacheEntry::from_entry(entry, self.now_s())?);
        let _guard = self.write_guard().await;
        // The manifest line first: a failed manifest write then leaves no entry that
        // `clear` cannot find (a line without its entry is harmless).
        self.manifest_add(&key).await?;
        self.store().set(&key, value).await
    }

    /// Stores the ID token of `client_id` at `prefix::client_id::@@user@@`.
    pub async fn set_id_token(
        &self,
        client_id: &str,
        id_token: &str,
        decoded: DecodedToken,
    ) -> Result<()> {
        let key = CacheKey::id_token(&self.prefix, client_id);
        key.validate()?;
        let key = key.to_key();
        let value = Cacheable::IdToken(IdTokenEntry {
            id_token: id_token.to_owned(),
            decoded_token: decoded,
        });
        let _guard = self.write_guard().await;
        // The manifest line first: a failed manifest write then leaves no entry that
        // `clear` cannot find (a line without its entry is harmless).
        self.manifest_add(&key).await?;
        self.store().set(&key, value).await
    }

    /// The ID token of `key.client_id`; failing that, when `key` has a scope and an
    /// audience, the ID token of the token entry [`CacheManager::get`] finds for it.
    pub async fn get_id_token(&self, key: &CacheKey) -> Result<Option<IdTokenEntry>> {
        let id_key = CacheKey::id_token(&self.prefix, &key.client_id);
        id_key.validate()?;
        if let Some(Cacheable::IdToken(t)) = self.store().get(&id_key.to_key()).await? {
            return Ok(Some(t));
        }
        if key.scope().is_none() || key.audience().is_none() {
            return Ok(None);
        }
        let Some(body) = self.get(key, GetOptions::default()).await? else {
            return Ok(None);
        };
        Ok(match (&body.id_token, &body.decoded_token) {
            (Some(t), Some(d)) if !t.is_empty() => Some(IdTokenEntry {
                id_token: t.clone(),
                decoded_token: d.clone(),
            }),
            _ => None,
        })
    }

    /// Removes the entry at `prefix::client_id::audience::scope` and its manifest line.
    /// Without audience and scope that key is the manifest's own: an
    /// [`ErrorKind::InvalidKey`](crate::ErrorKind::InvalidKey) error, and nothing is removed.
    pub async fn remove(
        &self,
        client_id: &str,
        audience: Option<&str>,
        scope: Option<&str>,
    ) -> Result<()> {
        if audience.is_none_or(str::is_empty) && scope.is_none_or(str::is_empty) {
            return Err(Error::invalid_key(
                "remove needs an audience or a scope: the bare client key is the manifest's",
            ));
        }
        let key = self.key_string(client_id, audience, scope)?;
        let _guard = self.write_guard().await;
        self.store().remove(&key).await?;
        self.manifest_remove(&[&key]).await
    }

    /// Removes every listed key (and the manifest) or, with a client id, exactly the
    /// keys of that client (its entries and its ID token) and their manifest lines.
    /// `Some("")` is an [`ErrorKind::InvalidKey`](crate::ErrorKind::InvalidKey) error.
    pub async fn clear(&self, client_id: Option<&str>) -> Result<()> {
        if client_id == Some("") {
            return Err(Error::invalid_key(
                "clear with an empty client id; use None to clear every client",
            ));
        }
        let listing_prefix = match client_id {
            Some(c) => format!("{}{SEPARATOR}{c}", self.prefix),
            None => format!("{}{SEPARATOR}", self.prefix),
        };
        let of_client = |k: &str| {
            client_id.is_none_or(|c| KeyRef::parse(k).is_ok_and(|k| k.belongs_to(&self.prefix, c)))
        };
        let _guard = self.write_guard().await;
        if self.manifest_key.is_none() {
            // Every key of the selection, in one atomic step where the cache can.
            let removed = match client_id {
                None => self.store().remove_prefix(&listing_prefix).await?,
                Some(_) => {
                    self.store()
                        .remove_prefix_matching(&listing_prefix, &of_client)
                        .await?
                }
            };
            if removed.is_some() {
                return Ok(());
            }
        }
        let keys: Vec<Arc<str>> = self
            .list(&listing_prefix)
            .await?
            .into_iter()
            .filter(|k| of_client(k))
            .collect();
        self.store().remove_many(&keys).await?;
        // Exactly the lines of the removed keys: a line another manager added meanwhile
        // (for a key it wrote after the listing) stays.
        let removed: Vec<&str> = keys.iter().map(|k| &**k).collect();
        match (self.manifest_remove(&removed).await, &self.manifest_key) {
            // A manifest that does not decode or authenticate lists nothing: clearing
            // every client removes it too.
            (Err(e), Some(mk)) if client_id.is_none() => {
                self.skip_bad_value::<()>(mk, "clear", e)?;
                self.store().remove(mk).await
            }
            (outcome, _) => outcome,
        }
    }

    /// Every listed entry (any client) whose refresh token is `refresh_token` loses it;
    /// the rest of the entry and its expiry are kept. Each entry is one atomic update
    /// that re-checks the refresh token it is shown: an entry that got a new one meanwhile
    /// keeps it.
    pub async fn strip_refresh_token(&self, refresh_token: &str) -> Result<()> {
        let _guard = self.write_guard().await;
        let old = Some(refresh_token.to_owned());
        self.replace_refresh_token(None, old, None, None, "strip refresh token")
            .await?;
        Ok(())
    }

    /// Every listed entry of `client_id` whose refresh token is `old_rt` (any refresh
    /// token, with `use_mrrt`) gets `new_rt`; expiry kept. Each entry is one atomic update
    /// that re-checks the refresh token it is shown (invariant I2: a refresh token is
    /// replaced only while it is still the one the caller decided on).
    pub async fn update_entry(
        &self,
        old_rt: &str,
        new_rt: &str,
        client_id: &str,
        use_mrrt: bool,
    ) -> Result<()> {
        let _guard = self.write_guard().await;
        let old = (!use_mrrt).then(|| old_rt.to_owned());
        self.replace_refresh_token(
            Some(client_id),
            old,
            Some(new_rt.to_owned()),
            None,
            "update entry",
        )
        .await?;
        Ok(())
    }

    /// The distinct refresh tokens of the listed entries of `client_id` and `audience`,
    /// in the lexicographic order of their keys.
    pub async fn refresh_tokens_by_audience(
        &self,
        audience: &str,
        client_id: &str,
    ) -> Result<Vec<String>> {
        if audience.is_empty() || client_id.is_empty() {
            return Ok(Vec::new());
        }
        let listing_prefix = format!("{}{SEPARATOR}{client_id}{SEPARATOR}{audience}", self.prefix);
        let listed = self.list(&listing_prefix).await?;
        let mut keys: Vec<&str> = listed
            .iter()
            .filter(|k| {
                KeyRef::parse(k).is_ok_and(|k| {
                    k.belongs_to(&self.prefix, client_id) && k.audience() == Some(audience)
                })
            })
            .collect();
        keys.sort_unstable();
        let mut tokens: Vec<String> = Vec::new();
        for key in keys {
            if let Some(entry) = self.listed_entry(key, "refresh tokens by audience").await? {
                if let Some(rt) = entry.body.refresh_token() {
                    if !tokens.iter().any(|t| t == rt) {
                        tokens.push(rt.to_owned());
                    }
                }
            }
        }
        Ok(tokens)
    }
}

/// The best candidate of a lookup so far: its rank (ending with its key) and its entry.
type Best<R> = Option<(R, WrappedCacheEntry)>;

/// What step 1 of [`CacheManager::get`] found at the exact key.
enum Exact<R> {
    /// A valid entry, shown: what the caller made of it.
    Hit(R),
    /// An entry whose access token expired.
    Expired,
    /// A value that is no token entry (the manifest, an id token).
    Other,
    /// Nothing.
    Missing,
}

#[cfg(test)]
mod tests {
    use super::scope_set;
    use std::collections::HashSet;

    #[test]
    fn scope_set_holds_each_distinct_scope_once_as_a_hash_set_would() {
        let long: String = (0..40)
            .map(|i| format!("s{}", i % 35))
            .collect::<Vec<_>>()
            .join(" ");
        for scope in [
            "read",
            "read write read",
            "a  b",
            " a",
            "a b c d e",
            long.as_str(),
        ] {
            let set = scope_set(scope);
            let reference: HashSet<&str> = scope.split(' ').collect();
            assert_eq!(set.len(), reference.len(), "{scope:?}");
            assert_eq!(
                set.iter().copied().collect::<HashSet<_>>(),
                reference,
                "{scope:?}"
            );
        }
        assert_eq!(scope_set(&long).len(), 35);
        assert_eq!(scope_set("read write read"), vec!["read", "write"]);
    }
}
