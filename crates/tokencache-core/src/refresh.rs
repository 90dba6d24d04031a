//! Single-flight refresh: [`CacheManager::get_or_refresh`], with its options, its policy
//! (checked when the manager is built) and the errors a refresh function reports.
//!
//! # How an auth client uses it
//!
//! Every call that needs an access token goes through `get_or_refresh` with a closure
//! that exchanges a refresh token at the identity provider:
//!
//! - **The fast path.** A valid access token in the cache costs one `get` and takes no
//!   lock.
//! - **The lock.** Otherwise the refresh of one token family (`client` and `audience`, or
//!   the whole client with multi-resource refresh tokens) runs under a lease of the
//!   store's own [`RefreshLock`]: one refresh per family across the tasks of a process
//!   (they wait together and share its outcome, a failure included), and across the
//!   processes, servers or tabs that share the store. A holder that dies leaves a lease
//!   that ends by itself; its late write is refused (the fence).
//! - **`RefreshFailed`.** The provider refused the refresh token (`invalid_grant`): it
//!   was removed from the cache, so log the user in again. A transient failure (network,
//!   timeout, 5xx) wrote nothing: retry later. `LockTimeout`: another holder kept the
//!   lock for the whole `wait`; no refresh was made without it.
//! - **Sizing the lease.** `refresh_timeout < lease <= the provider's reuse interval`,
//!   and `wait > lease` (checked by [`RefreshPolicy::check`] when the manager is built).
//!   With a reuse interval at least as long as the lease, a holder that crashed after the
//!   provider rotated the token leaves a refresh token that the next holder may still use
//!   once. With the reuse interval off (Auth0's default), such a crash revokes the token
//!   family whatever any client does: the user logs in again.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_channel::oneshot;
use futures_util::future::{self, Either};

use crate::cache::{Fence, Update, Updated};
use crate::error::{BoxError, Error, Result};
use crate::key::{CacheKey, KeyRef, SEPARATOR};
use crate::lock::{Lease, TryAcquire};
use crate::manager::{CacheManager, GetOptions};
use crate::redact::Redacted;
use crate::stored::{CacheEntry, Cacheable, EntryBody, WrappedCacheEntry};
#[cfg(doc)]
use crate::{error::ErrorKind, lock::RefreshLock};

/// What a refresh function is asked to exchange.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshRequest {
    /// The client id.
    pub client_id: String,
    /// The audience of the token family (empty when the key has none).
    pub audience: String,
    /// The scope asked for (empty when the key has none).
    pub scope: String,
    /// The refresh token to exchange: the one stored when the lease was taken.
    pub refresh_token: String,
}

impl fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("refresh_token", &Redacted)
            .finish()
    }
}

/// Why a refresh function failed. Its sources must not contain token values.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant`: expired, revoked,
    /// reused). The manager removes it from the cache.
    #[error("the identity provider refused the refresh token")]
    InvalidGrant(#[source] BoxError),
    /// A failure that may pass (network, timeout, a 5xx answer). Nothing is written.
    #[error("the refresh failed for now")]
    Transient(#[source] BoxError),
    /// Any other failure (a bad request, a misconfigured client). Nothing is written.
    #[error("the refresh failed")]
    Fatal(#[source] BoxError),
}

/// The timing of refreshes, checked when the manager is built
/// ([`RefreshPolicy::check`]).
///
/// ```
/// use std::time::Duration;
/// use tokencache_core::RefreshPolicy;
///
/// let policy = RefreshPolicy::default().reuse_interval(Duration::from_secs(30));
/// assert!(policy.check().is_ok());
/// let bad = RefreshPolicy::default().lease(Duration::from_secs(5)); // below the 10 s timeout
/// assert!(bad.check().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshPolicy {
    /// How long one call of the refresh function may take (default 10 s).
    pub refresh_timeout: Duration,
    /// The lease a refresh runs under (default 15 s): longer than `refresh_timeout`.
    pub lease: Duration,
    /// How long a caller waits for another holder's lease before
    /// [`ErrorKind::LockTimeout`] (default 20 s): longer than `lease`.
    pub wait: Duration,
    /// The identity provider's refresh-token reuse interval, if it has one (Auth0:
    /// "Reuse Interval" of refresh token rotation). When set, `lease` must not exceed it.
    pub reuse_interval: Option<Duration>,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            refresh_timeout: Duration::from_secs(10),
            lease: Duration::from_secs(15),
            wait: Duration::from_secs(20),
            reuse_interval: None,
        }
    }
}

impl RefreshPolicy {
    /// With this refresh timeout.
    pub fn refresh_timeout(mut self, d: Duration) -> Self {
        self.refresh_timeout = d;
        self
    }

    /// With this lease.
    pub fn lease(mut self, d: Duration) -> Self {
        self.lease = d;
        self
    }

    /// With this wait.
    pub fn wait(mut self, d: Duration) -> Self {
        self.wait = d;
        self
    }

    /// With the provider's reuse interval.
    pub fn reuse_interval(mut self, d: Duration) -> Self {
        self.reuse_interval = Some(d);
        self
    }

    /// `refresh_timeout < lease <= reuse_interval` (when known) and `wait > lease`; an
    /// [`ErrorKind::Config`] error otherwise.
    pub fn check(&self) -> Result<()> {
        if self.refresh_timeout.is_zero() || self.refresh_timeout >= self.lease {
            return Err(Error::config(
                "refresh policy: the refresh timeout must be above zero and below the lease",
            ));
        }
        if self.wait <= self.lease {
            return Err(Error::config(
                "refresh policy: the wait must be longer than the lease",
            ));
        }
        if self.reuse_interval.is_some_and(|r| self.lease > r) {
            return Err(Error::config(
                "refresh policy: the lease must not exceed the provider's reuse interval",
            ));
        }
        Ok(())
    }
}

/// Options of one [`CacheManager::get_or_refresh`] call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RefreshOptions {
    /// How the cache is read (leeway, multi-resource refresh tokens). `cache_only` is
    /// ignored: this call refreshes.
    pub get: GetOptions,
    /// Refresh even when the cached access token is still valid (unless another holder
    /// refreshed while this call waited).
    pub force: bool,
}

impl RefreshOptions {
    /// With these read options.
    pub fn get(mut self, get: GetOptions) -> Self {
        self.get = get;
        self
    }

    /// Refresh even when the access token is valid.
    pub fn force(mut self, on: bool) -> Self {
        self.force = on;
        self
    }
}

/// What the tasks of one in-process flight share.
type Outcome = Result<Arc<EntryBody>>;

/// The in-process flights, by exact key: the waiters of each.
#[derive(Default)]
pub(crate) struct Flights(Mutex<HashMap<String, Vec<oneshot::Sender<Outcome>>>>);

impl Flights {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<oneshot::Sender<Outcome>>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The leader's claim on a flight: dropped (finished or cancelled), it ends the flight.
/// Waiters of a cancelled flight see their channel closed and try again.
struct Leading<'a> {
    flights: &'a Flights,
    key: String,
    finished: bool,
}

impl Leading<'_> {
    fn finish(mut self, outcome: &Outcome) {
        let waiters = self.flights.map().remove(&self.key).unwrap_or_default();
        self.finished = true;
        for tx in waiters {
            let shared = match outcome {
                Ok(body) => Ok(Arc::clone(body)),
                Err(e) => Err(e.copy_for_waiter()),
            };
            let _ = tx.send(shared);
        }
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.flights.map().remove(&self.key);
        }
    }
}

/// Waits `d` (a timer that works on native targets and in the browser).
async fn sleep(d: Duration) {
    futures_timer::Delay::new(d).await;
}

/// Whether `body` carries a usable access token.
fn has_access_token(body: &EntryBody) -> bool {
    body.access_token.as_deref().is_some_and(|t| !t.is_empty())
}

impl CacheManager {
    /// The body for `key` with a valid access token: from the cache when it holds one
    /// (one `get`, no lock), else refreshed by `refresh`, once per token family across
    /// every task, process, server or tab that shares the store. See the
    /// [module docs](crate::refresh) for how an auth client uses it.
    ///
    /// 1. In-process callers of one key wait together and share one outcome.
    /// 2. The refresh runs under a lease of the cache's [`RefreshLock`] named
    ///    `refresh::{client}::{audience}` (`refresh::{client}` with multi-resource
    ///    refresh tokens). While another holder has it, the cache is re-read between
    ///    tries; after the policy's `wait`, [`ErrorKind::LockTimeout`].
    /// 3. Under the lease the cache is read again (another holder may have refreshed);
    ///    then `refresh` gets the stored refresh token, within the policy's timeout.
    /// 4. The response is written by fenced updates: only while the lease holds and only
    ///    where the stored refresh token is still the one exchanged, so the store never
    ///    goes back to a spent refresh token. A response without a refresh token keeps
    ///    the old one.
    /// 5. [`RefreshError::InvalidGrant`] removes the refresh token (fenced) and is
    ///    [`ErrorKind::RefreshFailed`], as are the other failures (nothing written).
    ///
    /// No access token and no refresh token: [`ErrorKind::MissingRefreshToken`].
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::sync::Arc;
    /// use tokencache_core::{
    ///     CacheEntry, CacheKey, CacheManager, GetOptions, RefreshOptions, RefreshRequest,
    /// };
    /// # use tokencache_core::{async_trait, Cache, Cacheable, Result};
    /// # use std::{collections::HashMap, sync::Mutex};
    /// # #[derive(Default)] struct MapCache(Mutex<HashMap<String, Cacheable>>);
    /// # #[async_trait] impl Cache for MapCache {
    /// #   async fn get(&self, k: &str) -> Result<Option<Cacheable>> { Ok(self.0.lock().unwrap().get(k).cloned()) }
    /// #   async fn set(&self, k: &str, v: Cacheable) -> Result<()> { self.0.lock().unwrap().insert(k.into(), v); Ok(()) }
    /// #   async fn remove(&self, k: &str) -> Result<()> { self.0.lock().unwrap().remove(k); Ok(()) }
    /// # }
    /// let manager = CacheManager::builder(Arc::new(MapCache::default()))
    ///     .client_id("app")
    ///     .build()?;
    /// // An access token that expires within the 60 s leeway, with a refresh token.
    /// manager
    ///     .set(CacheEntry::new("app", "https://api", "read", "old-at", 30.0).with_refresh_token("rt-1"))
    ///     .await?;
    /// let key = CacheKey::new("app", Some("https://api"), Some("read"));
    /// let opts = RefreshOptions::default().get(GetOptions::default().leeway(60));
    /// let body = manager
    ///     .get_or_refresh(&key, opts, |req: RefreshRequest| async move {
    ///         assert_eq!(req.refresh_token, "rt-1");
    ///         Ok(CacheEntry::new("app", "https://api", "read", "new-at", 3600.0)
    ///             .with_refresh_token("rt-2"))
    ///     })
    ///     .await?;
    /// assert_eq!(body.access_token.as_deref(), Some("new-at"));
    /// assert_eq!(body.refresh_token.as_deref(), Some("rt-2"));
    /// # Ok::<(), tokencache_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn get_or_refresh<F, Fut>(
        &self,
        key: &CacheKey,
        opts: RefreshOptions,
        refresh: F,
    ) -> Result<Arc<EntryBody>>
    where
        F: FnOnce(RefreshRequest) -> Fut,
        Fut: Future<Output = std::result::Result<CacheEntry, RefreshError>>,
    {
        let mut opts = opts;
        opts.get.cache_only = false;
        // The fast path: one get, no lock (the lookup `get` runs, without `get`'s own
        // future around it).
        let first = match self.lookup(key, opts.get, Arc::clone).await? {
            Some(body) if !opts.force && has_access_token(&body) => return Ok(body),
            first => first,
        };
        // The slow path behind a box: the fast path's future stays small.
        Box::pin(self.refresh_flight(key, opts, first, refresh)).await
    }

    /// Everything after the fast path: the in-process flight, then the lease.
    async fn refresh_flight<F, Fut>(
        &self,
        key: &CacheKey,
        opts: RefreshOptions,
        first: Option<Arc<EntryBody>>,
        refresh: F,
    ) -> Result<Arc<EntryBody>>
    where
        F: FnOnce(RefreshRequest) -> Fut,
        Fut: Future<Output = std::result::Result<CacheEntry, RefreshError>>,
    {
        let seen_rt = first
            .as_ref()
            .and_then(|b| b.refresh_token().map(str::to_owned));
        if seen_rt.is_none() {
            return Err(Error::missing_refresh_token(
                "no valid access token and no refresh token in the cache",
            ));
        }

        // In-process single flight, by exact key.
        let flight_key = key.to_key();
        let leading = loop {
            let waiting = {
                let mut flights = self.flights.map();
                match flights.get_mut(&flight_key) {
                    Some(waiters) => {
                        let (tx, rx) = oneshot::channel();
                        waiters.push(tx);
                        Some(rx)
                    }
                    None => {
                        flights.insert(flight_key.clone(), Vec::new());
                        None
                    }
                }
            };
            match waiting {
                Some(rx) => match rx.await {
                    Ok(outcome) => return outcome,
                    Err(oneshot::Canceled) => continue, // the leader was dropped
                },
                None => {
                    break Leading {
                        flights: &self.flights,
                        key: flight_key,
                        finished: false,
                    }
                }
            }
        };
        let outcome = self
            .refresh_under_lease(key, opts, seen_rt.as_deref(), refresh)
            .await;
        leading.finish(&outcome);
        outcome
    }

    /// The name of the refresh lock of `key`'s token family.
    fn lock_name(key: &CacheKey, mrrt: bool) -> String {
        match key.audience() {
            Some(aud) if !mrrt => format!("refresh{SEPARATOR}{}{SEPARATOR}{aud}", key.client_id),
            _ => format!("refresh{SEPARATOR}{}", key.client_id),
        }
    }

    /// The body the cache holds now, if it makes a refresh needless: a valid access
    /// token (with `force`, only one that came with another refresh token than
    /// `seen_rt`, that is, from another holder's refresh).
    async fn refreshed_meanwhile(
        &self,
        key: &CacheKey,
        opts: RefreshOptions,
        seen_rt: Option<&str>,
    ) -> Result<(Option<Arc<EntryBody>>, Option<String>)> {
        let now = self.get(key, opts.get).await?;
        let rt = now
            .as_ref()
            .and_then(|b| b.refresh_token().map(str::to_owned));
        let done =
            now.filter(|b| has_access_token(b) && (!opts.force || b.refresh_token() != seen_rt));
        Ok((done, rt))
    }

    async fn refresh_under_lease<F, Fut>(
        &self,
        key: &CacheKey,
        opts: RefreshOptions,
        seen_rt: Option<&str>,
        refresh: F,
    ) -> Result<Arc<EntryBody>>
    where
        F: FnOnce(RefreshRequest) -> Fut,
        Fut: Future<Output = std::result::Result<CacheEntry, RefreshError>>,
    {
        let policy = self.refresh_policy;
        let name = Self::lock_name(key, opts.get.use_mrrt);
        let mut waited = Duration::ZERO;
        let mut backoff = Duration::from_millis(5);
        let lease = loop {
            match self.lock.try_acquire(&name, policy.lease).await? {
                TryAcquire::Held(lease) => break lease,
                TryAcquire::Busy { retry_after } => {
                    if waited >= policy.wait {
                        return Err(Error::lock_timeout(
                            "another holder kept the refresh lock for the whole wait",
                        ));
                    }
                    let pause = backoff
                        .min(retry_after.max(Duration::from_millis(1)))
                        .min(policy.wait - waited);
                    sleep(pause).await;
                    waited += pause;
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                    if let (Some(body), _) = self.refreshed_meanwhile(key, opts, seen_rt).await? {
                        return Ok(body);
                    }
                }
            }
        };
        let outcome = self.refresh_with(&lease, key, opts, seen_rt, refresh).await;
        if let Err(e) = self.lock.release(lease).await {
            tracing::warn!(error = %e, "could not release a refresh lease; it ends by itself");
        }
        outcome
    }

    async fn refresh_with<F, Fut>(
        &self,
        lease: &Lease,
        key: &CacheKey,
        opts: RefreshOptions,
        seen_rt: Option<&str>,
        refresh: F,
    ) -> Result<Arc<EntryBody>>
    where
        F: FnOnce(RefreshRequest) -> Fut,
        Fut: Future<Output = std::result::Result<CacheEntry, RefreshError>>,
    {
        let policy = self.refresh_policy;
        let (done, rt0) = self.refreshed_meanwhile(key, opts, seen_rt).await?;
        if let Some(body) = done {
            return Ok(body);
        }
        let Some(rt0) = rt0 else {
            return Err(Error::missing_refresh_token(
                "the refresh token is gone from the cache",
            ));
        };
        let request = RefreshRequest {
            client_id: key.client_id.clone(),
            audience: key.audience().unwrap_or_default().to_owned(),
            scope: key.scope().unwrap_or_default().to_owned(),
            refresh_token: rt0.clone(),
        };
        let call = pin!(refresh(request));
        let timer = pin!(sleep(policy.refresh_timeout));
        let response =
            match future::select(call, timer).await {
                Either::Left((response, _)) => response,
                Either::Right(_) => return Err(Error::refresh_failed(
                    "the refresh did not answer within the refresh timeout; nothing was written",
                )
                .temporary()),
            };
        let mut entry = match response {
            Ok(entry) => entry,
            Err(RefreshError::InvalidGrant(source)) => {
                let _guard = self.write_guard().await;
                self.replace_refresh_token(
                    Some(&key.client_id),
                    Some(rt0),
                    None,
                    Some(&lease.fence),
                    "refused refresh token",
                )
                .await?;
                return Err(Error::refresh_failed(
                    "the identity provider refused the refresh token; it was removed from the cache",
                )
                .with_source(source));
            }
            Err(RefreshError::Transient(source)) => {
                return Err(
                    Error::refresh_failed("the refresh failed; nothing was written")
                        .temporary()
                        .with_source(source),
                )
            }
            Err(RefreshError::Fatal(source)) => {
                return Err(
                    Error::refresh_failed("the refresh failed; nothing was written")
                        .with_source(source),
                )
            }
        };
        if entry.client_id.is_empty() {
            entry.client_id = key.client_id.clone();
        }
        if entry.client_id != key.client_id {
            return Err(Error::refresh_failed(
                "the refresh answered for another client id; nothing was written",
            ));
        }
        if entry.refresh_token.as_deref().is_none_or(str::is_empty) {
            entry.refresh_token = Some(rt0.clone()); // never an empty refresh token
        }
        let new_rt = entry.refresh_token.clone().unwrap_or_default();
        let new_key =
            self.key_string(&entry.client_id, Some(&entry.audience), Some(&entry.scope))?;
        let value = WrappedCacheEntry::from_entry(entry, self.now_s())?;
        let body = Arc::clone(&value.body);

        // The writes need the lease: extend it over them (false: lost meanwhile).
        if !self.lock.extend(lease, policy.lease).await? {
            tracing::warn!("the refresh lease ended before the result was written; discarded");
            return self.after_lost_fence(key, opts, body).await;
        }
        let _guard = self.write_guard().await;
        self.manifest_add(&new_key).await?;
        let spent = rt0.clone();
        let written = self
            .cache
            .update(
                &new_key,
                Some(&lease.fence),
                Box::new(move |current| match current {
                    Some(Cacheable::Entry(e))
                        if e.body.refresh_token().is_some_and(|rt| rt != spent) =>
                    {
                        Update::Keep // a newer login wrote its own tokens: it wins
                    }
                    Some(Cacheable::Entry(_)) | None => {
                        Update::Put(Cacheable::Entry(value.clone()))
                    }
                    Some(_) => Update::Keep,
                }),
            )
            .await?;
        match written {
            Updated::FenceLost => {
                tracing::warn!("the refresh lease was lost before the write; result discarded");
                drop(_guard);
                return self.after_lost_fence(key, opts, body).await;
            }
            Updated::Kept(_) => {
                tracing::warn!("another writer stored new tokens meanwhile; they are kept");
            }
            _ => {}
        }
        // The rest of the family that still holds the exchanged token gets the new one.
        self.replace_refresh_token(
            Some(&key.client_id),
            Some(rt0),
            Some(new_rt),
            Some(&lease.fence),
            "refreshed token family",
        )
        .await?;
        Ok(body)
    }

    /// After a lost fence: what the cache holds now, if valid; else the fresh (unstored)
    /// body, whose access token is good.
    async fn after_lost_fence(
        &self,
        key: &CacheKey,
        opts: RefreshOptions,
        fresh: Arc<EntryBody>,
    ) -> Result<Arc<EntryBody>> {
        match self.get(key, opts.get).await? {
            Some(body) if has_access_token(&body) => Ok(body),
            _ => Ok(fresh),
        }
    }

    /// Every listed entry of `client_id` (of any client when `None`) whose refresh token
    /// is `old` (any refresh token when `None`) gets `new` (`None`: loses it); expiry kept. Each entry is one atomic
    /// update that re-checks the token it is shown, fenced by `fence` when given.
    /// Values that do not decode or authenticate are skipped (counted). Returns whether a
    /// fence was lost (then the remaining entries are left alone). Call with the write
    /// lock held.
    pub(crate) async fn replace_refresh_token(
        &self,
        client_id: Option<&str>,
        old: Option<String>,
        new: Option<String>,
        fence: Option<&Fence>,
        op: &'static str,
    ) -> Result<bool> {
        let listing_prefix = format!("{}{SEPARATOR}{}", self.prefix(), client_id.unwrap_or(""));
        for key in self.list(&listing_prefix).await? {
            if let Some(client_id) = client_id {
                if !KeyRef::parse(&key).is_ok_and(|k| k.client_id() == client_id) {
                    continue;
                }
            }
            let (old, new) = (old.clone(), new.clone());
            let f = Box::new(move |current: Option<&Cacheable>| match current {
                Some(Cacheable::Entry(e)) => match e.body.refresh_token() {
                    Some(rt) if old.as_deref().is_none_or(|o| o == rt) => {
                        if new.as_deref() == Some(rt) {
                            return Update::Keep;
                        }
                        let mut body = (*e.body).clone();
                        body.refresh_token = new.clone();
                        Update::Put(Cacheable::Entry(WrappedCacheEntry::new(body, e.expires_at)))
                    }
                    _ => Update::Keep,
                },
                _ => Update::Keep,
            });
            match self.store().update(&key, fence, f).await {
                Ok(Updated::FenceLost) => {
                    tracing::warn!(
                        op,
                        "the refresh lease was lost; remaining entries left alone"
                    );
                    return Ok(true);
                }
                Ok(_) => {}
                Err(e) => {
                    self.skip_bad_value::<()>(&key, op, e)?;
                }
            }
        }
        Ok(false)
    }
}
