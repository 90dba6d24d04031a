//! [`RedisCache`] and its builder.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use tokencache_core::{
    async_trait, decode_or_miss, Cache, Cacheable, Clock, Error, Fence, JsonCodec, Keys,
    RefreshLock, Result, Retention, SystemClock, UpdateFn, Updated, ValueCodec,
};

use crate::conn::{map_connect_error, ConnectOptions, Inner, Password, RedisConnection};
use crate::error::{map_redis_error, timed_out};
use crate::lease::RedisLock;
use crate::near::{NearCache, NearCacheStats, Targets};
use crate::scripts;

/// Default time allowed to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for one cache operation (a command or script round trip).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time an expired entry stays in Redis past its last valid second.
pub const DEFAULT_EXPIRY_GRACE: Duration = Duration::from_secs(60);

/// The first part of every Redis key this crate writes.
pub(crate) const KEY_ROOT: &str = "tokencache:";
/// How many entries one listing script checks, and one clearing script removes.
const BATCH: usize = 256;
/// How many index members found without their entry a cache remembers for upkeep.
const STALE_MAX: usize = 256;
/// How many of those one write removes from the index.
pub(crate) const STALE_PER_WRITE: usize = 32;
/// How many in-process gates serialize the updates of one cache (by key hash).
const GATES: usize = 64;

/// A token cache in Redis: one namespace (tenant, session) of a standalone server or a
/// Redis Cluster.
///
/// - Values are stored with a [`ValueCodec`] (default [`JsonCodec`]: the auth0-spa-js
///   JSON) at `tokencache:{namespace}:v:<cache key>`, the key the codec is given: an
///   encrypting codec binds each value to its namespace and cache key.
/// - The namespace's keys are kept in a sorted set, `tokencache:{namespace}:i`, updated
///   atomically with the entries by Lua scripts, so [`Cache::all_keys`] and
///   [`Cache::keys_with_prefix`] (`ZRANGEBYLEX`) cost what the namespace holds, not what
///   the database holds, and never use `KEYS` or `SCAN`. Reads never write: `get` is a
///   `GET`, a listing a `ZRANGEBYLEX` and a read-only script; index members whose entry
///   expired are left out of listings and removed from the index by the cache's next
///   write (`set`).
/// - Every script declares every key it touches in `KEYS` (the scripting contract of
///   Redis Cluster).
/// - All keys of a namespace share the hash tag `{namespace}`, hence one cluster slot.
/// - Values carry the Redis TTL the core's one policy gives them
///   ([`Retention::time_to_live`], by the builder's [`Clock`]) plus a grace period
///   ([`RedisCacheBuilder::expiry_grace`], default 60 s, which absorbs clock skew and a
///   clock that stands still in tests): a token entry without a refresh token lives to the
///   end of its `expiresAt` second; one with a refresh token the configured retention
///   longer ([`RedisCacheBuilder::refresh_token_retention`], default: no TTL); manifests,
///   ID-token entries and lifetimes beyond [`Retention::MAX_TIME_TO_LIVE`] have no TTL. An
///   entry already past its deadline when written is not kept.
/// - Every operation is bounded by the command timeout; a lost server gives temporary
///   [`ErrorKind::Unavailable`](tokencache_core::ErrorKind::Unavailable) errors, and the
///   connection comes back by itself when the server does.
/// - [`Cache::update`] is atomic per key across every process and server that shares the
///   namespace ([`Cache::atomic_updates`] is `true`): it reads the stored bytes, runs the
///   function, and writes with a compare-and-set script that applies the write only if
///   the entry still holds the bytes read (else it reads again and retries); a fenced
///   update also needs the fence's lease to be the live one of the namespace's
///   [`RedisLock`] ([`Cache::refresh_lock`]). No `WATCH`/`MULTI`: the connection is shared.
/// - [`Cache::remove_prefix`] removes a prefix's entries and index members in one script.
///
/// ```no_run
/// use std::sync::Arc;
/// use tokencache_core::{CacheEntry, CacheKey, CacheManager, GetOptions};
/// use tokencache_redis::RedisCache;
///
/// # async fn run() -> tokencache_core::Result<()> {
/// let cache = RedisCache::connect("redis://127.0.0.1:6379", "tenant-42").await?;
/// let manager = CacheManager::new(Arc::new(cache))?;
/// manager
///     .set(CacheEntry::new("client", "https://api", "openid read", "at", 3600.0))
///     .await?;
/// let key = CacheKey::new("client", Some("https://api"), Some("read"));
/// assert!(manager.get(&key, GetOptions::default()).await?.is_some());
/// # Ok(()) }
/// ```
pub struct RedisCache {
    pub(crate) conn: RedisConnection,
    namespace: String,
    pub(crate) index_key: String,
    entry_prefix: String,
    pub(crate) codec: Arc<dyn ValueCodec>,
    clock: Arc<dyn Clock>,
    retention: Retention,
    grace: Duration,
    command_timeout: Duration,
    /// Index members a listing found without their entry (expired by their TTL), which
    /// the next write removes from the index: listing itself never writes.
    stale: std::sync::Mutex<Vec<Vec<u8>>>,
    /// The namespace's refresh lock.
    pub(crate) lock: Arc<RedisLock>,
    /// Updates of this cache wait for the gate of their key (by hash) in this process, so
    /// that its own concurrent updates of one key do not race each other's
    /// compare-and-set; other processes are kept apart by the compare-and-set alone.
    pub(crate) gates: Box<[tokio::sync::Mutex<()>]>,
    /// The in-process L1 ([`RedisCacheBuilder::near_cache`]), if enabled.
    pub(crate) near: Option<NearCache>,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("namespace", &self.namespace)
            .field("cluster", &self.conn.is_cluster())
            .field("codec", &self.codec)
            .field("clock", &self.clock)
            .field("refresh_token_retention", &self.retention)
            .field("expiry_grace", &self.grace)
            .field("command_timeout", &self.command_timeout)
            .field("near_cache", &self.near)
            .finish()
    }
}

/// Options of a [`RedisCache`]: timeouts, clock, codec, refresh-token retention.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tokencache_core::{JsonCodec, Retention, SystemClock};
/// use tokencache_redis::RedisCache;
///
/// # async fn run() -> tokencache_core::Result<()> {
/// let cache = RedisCache::builder("session-7")
///     .connect_timeout(Duration::from_secs(1))
///     .command_timeout(Duration::from_millis(500))
///     .clock(Arc::new(SystemClock))
///     .codec(Arc::new(JsonCodec))
///     .refresh_token_retention(Retention::after(Duration::from_secs(30 * 24 * 3600)))
///     .connect_cluster(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"])
///     .await?;
/// # drop(cache); Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisCacheBuilder {
    namespace: String,
    connect_timeout: Duration,
    command_timeout: Duration,
    clock: Arc<dyn Clock>,
    codec: Arc<dyn ValueCodec>,
    retention: Retention,
    grace: Duration,
    conn_opts: ConnectOptions,
    near_max_bytes: Option<u64>,
}

impl fmt::Debug for RedisCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheBuilder")
            .field("namespace", &self.namespace)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("clock", &self.clock)
            .field("codec", &self.codec)
            .field("refresh_token_retention", &self.retention)
            .field("expiry_grace", &self.grace)
            .field("connection", &self.conn_opts)
            .field("near_cache_max_bytes", &self.near_max_bytes)
            .finish()
    }
}

impl RedisCacheBuilder {
    /// Options for the cache of `namespace`, all at their defaults.
    pub fn new(namespace: impl Into<String>) -> Self {
        RedisCacheBuilder {
            namespace: namespace.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            clock: Arc::new(SystemClock),
            codec: Arc::new(JsonCodec),
            retention: Retention::NEVER,
            grace: DEFAULT_EXPIRY_GRACE,
            conn_opts: ConnectOptions::default(),
            near_max_bytes: None,
        }
    }

    /// The ACL user to authenticate as (`AUTH username password`); overrides a user in
    /// the URL (`redis://user:password@host`). Without a user, `AUTH password` logs in as
    /// the `default` user.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.conn_opts.username = Some(username.into());
        self
    }

    /// The password to authenticate with; overrides a password in the URL. It never
    /// appears in `Debug` output, errors or logs; a wrong one is an
    /// [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) error at connect.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.conn_opts.password = Some(Password(password.into()));
        self
    }

    /// Trust the certificate authority in `pem` (one or more PEM certificates) for
    /// `rediss://` servers, instead of the system's roots. Certificates are always
    /// verified, host name included: there is no option to turn that off, and a URL
    /// asking for it (`#insecure`) is refused. Requires the `tls` feature.
    #[cfg(feature = "tls")]
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.conn_opts.ca = Some(crate::conn::CaSource::Pem(pem.into()));
        self
    }

    /// As [`tls_ca_pem`](Self::tls_ca_pem), from a PEM file read at connect time.
    /// Requires the `tls` feature.
    #[cfg(feature = "tls")]
    pub fn tls_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.conn_opts.ca = Some(crate::conn::CaSource::File(path.into()));
        self
    }

    /// Time allowed to establish a connection (default 5 s), also for each reconnection attempt.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for each cache operation (default 2 s); past it the operation fails
    /// with a temporary `Unavailable` error.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The clock that Redis TTLs are computed with (default [`SystemClock`]); give the
    /// cache the same clock as its [`CacheManager`](tokencache_core::CacheManager).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How values are stored (default [`JsonCodec`]); e.g. an encrypting codec.
    pub fn codec(mut self, codec: Arc<dyn ValueCodec>) -> Self {
        self.codec = codec;
        self
    }

    /// How long an entry that holds a refresh token is kept after its access token
    /// expired (plus the expiry grace). Default: [`Retention::NEVER`], no TTL, kept until
    /// removed.
    pub fn refresh_token_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// How long an expired token entry stays in Redis past its last valid second
    /// (default 60 s). The manager never returns it meanwhile; the grace absorbs clock
    /// skew between this process and Redis, and real time passing while a test clock
    /// stands still.
    pub fn expiry_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Puts an in-process L1 of at most `max_bytes` in front of Redis (a *near cache*): a
    /// repeated `get` of a key is answered from memory, without a round trip, and stays
    /// consistent with Redis through server-assisted client-side caching (RESP3
    /// `CLIENT TRACKING ... BCAST` on a dedicated connection per server, every master of a
    /// cluster). Needs Redis 6 or later.
    ///
    /// - A write by any other client (another process) leaves the L1 as soon as the
    ///   server's invalidation message arrives (well under 10 ms on a local network); the
    ///   cache's own writes leave it when they return.
    /// - When tracking is lost (a tracking connection drops or stops answering, the
    ///   cluster's masters change) the L1 is emptied and serves nothing until tracking is
    ///   back; it then starts empty.
    /// - Only `get` uses it: updates, listings and the refresh lock always go to Redis.
    /// - The bound counts, per entry, the key, the stored value's bytes and 64 bytes;
    ///   least recently used entries leave first. An entry also ends when its Redis TTL
    ///   would.
    ///
    /// Only [`connect`](Self::connect) and [`connect_cluster`](Self::connect_cluster)
    /// open the tracking connections; [`with_connection`](Self::with_connection) with a
    /// near cache is an [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) error.
    ///
    /// ```no_run
    /// use tokencache_core::Cache;
    /// use tokencache_redis::RedisCache;
    ///
    /// # async fn run() -> tokencache_core::Result<()> {
    /// let cache = RedisCache::builder("tenant-42")
    ///     .near_cache(16 * 1024 * 1024)
    ///     .connect("redis://127.0.0.1:6379")
    ///     .await?;
    /// cache.get("some-key").await?; // a GET, remembered
    /// cache.get("some-key").await?; // from memory
    /// let stats = cache.near_cache_stats().expect("near cache on");
    /// assert!(stats.weighted_bytes <= stats.max_bytes);
    /// # Ok(()) }
    /// ```
    pub fn near_cache(mut self, max_bytes: u64) -> Self {
        self.near_max_bytes = Some(max_bytes);
        self
    }

    /// Connects to the standalone server at `url`
    /// (`redis://[[user]:password@]host:port[/db]`, or `rediss://` for TLS with the `tls`
    /// feature).
    pub async fn connect(self, url: &str) -> Result<RedisCache> {
        let names = Names::new(&self.namespace)?;
        let client = self.conn_opts.standalone_client(url)?;
        // Reconnection attempts are short and few: a command waits for the reconnection
        // in progress, and a failed reconnection is retried by the next command.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(250))
            .set_number_of_retries(2);
        let manager = tokio::time::timeout(
            self.connect_timeout,
            crate::conn::open_standalone(client, config),
        )
        .await
        .map_err(|_| timed_out("connect"))?
        .map_err(map_connect_error)?;
        tracing::debug!(namespace = %self.namespace, "connected to redis");
        let targets = Targets::Standalone {
            url: url.to_owned(),
        };
        let near = self.start_near(targets, &names).await?;
        Ok(self.build(RedisConnection(Inner::Standalone(manager)), names, near))
    }

    /// Connects to the Redis Cluster that `urls` (some or all of its nodes) belong to.
    pub async fn connect_cluster<I, S>(self, urls: I) -> Result<RedisCache>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names = Names::new(&self.namespace)?;
        let nodes: Vec<String> = urls.into_iter().map(|u| u.as_ref().to_owned()).collect();
        if nodes.is_empty() {
            return Err(Error::config("no redis cluster node given"));
        }
        let first_node = nodes[0].clone();
        let client = self
            .conn_opts
            .cluster_builder(nodes)?
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.command_timeout)
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(250)
            .build()
            .map_err(|e| Error::config("invalid redis cluster configuration").with_source(e))?;
        let conn = tokio::time::timeout(
            self.connect_timeout,
            crate::conn::open_cluster(client, &self.conn_opts, &first_node),
        )
        .await
        .map_err(|_| timed_out("connect"))??;
        tracing::debug!(namespace = %self.namespace, "connected to redis cluster");
        let targets = Targets::Cluster {
            conn: conn.clone(),
            url: first_node,
        };
        let near = self.start_near(targets, &names).await?;
        Ok(self.build(RedisConnection(Inner::Cluster(conn)), names, near))
    }

    /// A cache of this builder's namespace on an existing connection (of another
    /// [`RedisCache`], see [`RedisCache::connection`]): many namespaces, one connection.
    /// The connect timeout is not used; the connection keeps its own reconnection settings.
    ///
    /// ```no_run
    /// use tokencache_redis::RedisCache;
    ///
    /// # async fn run() -> tokencache_core::Result<()> {
    /// let tenant_a = RedisCache::connect("redis://127.0.0.1:6379", "tenant-a").await?;
    /// let tenant_b = RedisCache::builder("tenant-b").with_connection(&tenant_a.connection())?;
    /// assert_eq!(tenant_b.namespace(), "tenant-b");
    /// # Ok(()) }
    /// ```
    pub fn with_connection(self, conn: &RedisConnection) -> Result<RedisCache> {
        let names = Names::new(&self.namespace)?;
        if self.near_max_bytes.is_some() {
            return Err(Error::config(
                "a redis near cache needs its own tracking connections: use connect or \
                 connect_cluster, not with_connection",
            ));
        }
        Ok(self.build(conn.clone(), names, None))
    }

    /// Starts the near cache, if enabled.
    async fn start_near(&self, targets: Targets, names: &Names) -> Result<Option<NearCache>> {
        let Some(max_bytes) = self.near_max_bytes else {
            return Ok(None);
        };
        NearCache::start(
            targets,
            self.conn_opts.clone(),
            &self.namespace,
            &names.entry_prefix,
            max_bytes,
            self.connect_timeout,
            self.command_timeout,
        )
        .await
        .map(Some)
    }

    fn build(self, conn: RedisConnection, names: Names, near: Option<NearCache>) -> RedisCache {
        let lock = Arc::new(RedisLock::new(
            conn.clone(),
            &self.namespace,
            self.clock.clone(),
            self.command_timeout,
        ));
        RedisCache {
            lock,
            gates: (0..GATES).map(|_| tokio::sync::Mutex::new(())).collect(),
            conn,
            namespace: self.namespace,
            index_key: names.index_key,
            entry_prefix: names.entry_prefix,
            codec: self.codec,
            clock: self.clock,
            retention: self.retention,
            grace: self.grace,
            command_timeout: self.command_timeout,
            stale: std::sync::Mutex::new(Vec::new()),
            near,
        }
    }
}

/// The Redis key names of one namespace.
struct Names {
    index_key: String,
    entry_prefix: String,
}

impl Names {
    fn new(namespace: &str) -> Result<Names> {
        // A brace would change the hash tag (or, `{}` being empty, disable it), and the
        // namespace's keys would no longer share one cluster slot.
        if namespace.is_empty() || namespace.contains(['{', '}']) {
            return Err(Error::config(
                "a redis namespace must be non-empty and contain no '{' or '}'",
            ));
        }
        Ok(Names {
            index_key: format!("{KEY_ROOT}{{{namespace}}}:i"),
            entry_prefix: format!("{KEY_ROOT}{{{namespace}}}:v:"),
        })
    }
}

/// What TTL a value gets.
#[derive(Debug, PartialEq, Eq)]
enum Ttl {
    /// No TTL.
    Persist,
    /// Expire after this many milliseconds.
    Millis(i64),
    /// Already past its end: remove it.
    Expired,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The TTL of `value` written at `now_ms`: the policy's time to live plus the grace. A
/// TTL beyond [`Retention::MAX_TIME_TO_LIVE`] (a huge retention or grace) is no TTL, so
/// that the script never gets a `PX` Redis refuses.
fn ttl_for(now_ms: i64, retention: Retention, grace: Duration, value: &Cacheable) -> Ttl {
    match retention.time_to_live(value, now_ms) {
        None => Ttl::Persist,
        Some(left) if left.is_zero() => Ttl::Expired,
        Some(left) => {
            let ttl = millis(left).saturating_add(millis(grace));
            if ttl > millis(Retention::MAX_TIME_TO_LIVE) {
                Ttl::Persist
            } else {
                Ttl::Millis(ttl)
            }
        }
    }
}

impl RedisCache {
    /// Connects to the standalone server at `url` with the cache of `namespace`,
    /// all options at their defaults (see [`RedisCache::builder`]).
    ///
    /// ```no_run
    /// # async fn run() -> tokencache_core::Result<()> {
    /// let cache = tokencache_redis::RedisCache::connect("redis://127.0.0.1:6379", "tenant-1").await?;
    /// assert_eq!(cache.namespace(), "tenant-1");
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str, namespace: &str) -> Result<RedisCache> {
        RedisCacheBuilder::new(namespace).connect(url).await
    }

    /// Connects to the Redis Cluster that `urls` belong to, with the cache of `namespace`,
    /// all options at their defaults.
    ///
    /// ```no_run
    /// # async fn run() -> tokencache_core::Result<()> {
    /// let nodes = ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001", "redis://127.0.0.1:7002"];
    /// let cache = tokencache_redis::RedisCache::connect_cluster(nodes, "tenant-1").await?;
    /// # drop(cache); Ok(()) }
    /// ```
    pub async fn connect_cluster<I, S>(urls: I, namespace: &str) -> Result<RedisCache>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RedisCacheBuilder::new(namespace)
            .connect_cluster(urls)
            .await
    }

    /// Options for the cache of `namespace`.
    pub fn builder(namespace: impl Into<String>) -> RedisCacheBuilder {
        RedisCacheBuilder::new(namespace)
    }

    /// The namespace this cache reads and writes.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Redis key that holds the value of cache key `key`.
    pub fn storage_key(&self, key: &str) -> String {
        format!("{}{key}", self.entry_prefix)
    }

    /// The Redis key of the namespace's index (a sorted set of its cache keys).
    pub fn index_key(&self) -> &str {
        &self.index_key
    }

    /// A handle on the connection the cache uses, for raw commands beside it.
    pub fn connection(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// Removes every entry of the namespace and its index; returns how many keys the
    /// index held. Other namespaces are not touched. It works in batches (each one
    /// atomic: the entries and their index members together), reading the index and
    /// removing what it names, so that every script declares the keys it touches; a key
    /// written meanwhile may survive.
    ///
    /// The refresh lock's keys are not entries and stay: a held lease stays held, and
    /// epochs keep growing (see [`RedisLock`]).
    pub async fn clear_namespace(&self) -> Result<usize> {
        let done = self.clear_batches().await;
        // Also after a failure: some batches may be gone.
        if let Some(near) = &self.near {
            near.flush();
        }
        done
    }

    /// [`RedisCache::clear_namespace`] in Redis.
    async fn clear_batches(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let members: Vec<Vec<u8>> = self
                .query(
                    "clear namespace",
                    redis::cmd("ZRANGE")
                        .arg(&self.index_key)
                        .arg(0)
                        .arg(BATCH - 1)
                        .to_owned(),
                )
                .await?;
            if members.is_empty() {
                break;
            }
            let mut conn = self.conn.clone();
            let mut inv = scripts::REMOVE.key(&self.index_key);
            for m in &members {
                inv.key(self.entry_key_of(m)).arg(m);
            }
            self.run("clear namespace", async move {
                inv.invoke_async::<i64>(&mut conn).await.map(drop)
            })
            .await?;
            total += members.len();
        }
        lock(&self.stale).clear();
        Ok(total)
    }

    /// What the near cache has done, if enabled ([`RedisCacheBuilder::near_cache`]).
    pub fn near_cache_stats(&self) -> Option<NearCacheStats> {
        self.near.as_ref().map(NearCache::stats)
    }

    /// Takes `keys` out of the near cache's L1, if any (this cache wrote them).
    fn near_invalidate<S: AsRef<str>>(&self, keys: &[S]) {
        if let Some(near) = &self.near {
            near.invalidate(keys);
        }
    }

    /// The namespace's refresh lock, the one [`Cache::refresh_lock`] returns, with the
    /// Redis key names of its leases.
    pub fn lease_lock(&self) -> Arc<RedisLock> {
        self.lock.clone()
    }

    /// The `ttl` argument of the write scripts for `value` written now: `0` no TTL,
    /// `-1` already expired (removed), else milliseconds.
    pub(crate) fn ttl_arg(&self, value: &Cacheable) -> i64 {
        match ttl_for(self.clock.now_ms(), self.retention, self.grace, value) {
            Ttl::Persist => 0,
            Ttl::Millis(ms) => ms,
            Ttl::Expired => -1,
        }
    }

    /// Up to [`STALE_PER_WRITE`] index members whose entry a listing found gone, for the
    /// next write to remove from the index; they stay remembered until
    /// [`RedisCache::forget_stale`].
    pub(crate) fn peek_stale(&self) -> Vec<Vec<u8>> {
        let stale = lock(&self.stale);
        stale.iter().take(STALE_PER_WRITE).cloned().collect()
    }

    /// Forgets `done`, removed from the index by a write.
    pub(crate) fn forget_stale(&self, done: &[Vec<u8>]) {
        if !done.is_empty() {
            lock(&self.stale).retain(|m| !done.contains(m));
        }
    }

    /// The gate of `key` (see the `gates` field).
    pub(crate) fn gate(&self, key: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        let i = usize::try_from(h.finish() % self.gates.len() as u64).unwrap_or(0);
        &self.gates[i]
    }

    /// The Redis key of the entry of index member `member` (any bytes).
    pub(crate) fn entry_key_of(&self, member: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.entry_prefix.len() + member.len());
        key.extend_from_slice(self.entry_prefix.as_bytes());
        key.extend_from_slice(member);
        key
    }

    /// Runs one command within the command timeout.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        cmd: redis::Cmd,
    ) -> Result<T> {
        let mut conn = self.conn.clone();
        self.run(what, async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Runs one operation within the command timeout, mapping its error.
    pub(crate) async fn run<T>(
        &self,
        what: &'static str,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        run_bounded(self.command_timeout, what, fut).await
    }

    /// The members in `[min, max]` (ZRANGEBYLEX bounds) whose entry exists. Read only:
    /// a `ZRANGEBYLEX`, then the `no-writes` script that tells which entries exist;
    /// members without their entry are remembered for the next write to remove.
    async fn list(&self, min: Vec<u8>, max: Vec<u8>) -> Result<Keys> {
        let members: Vec<Vec<u8>> = self
            .query(
                "list keys",
                redis::cmd("ZRANGEBYLEX")
                    .arg(&self.index_key)
                    .arg(min)
                    .arg(max)
                    .to_owned(),
            )
            .await?;
        let mut live = Vec::with_capacity(members.len());
        let mut gone = Vec::new();
        for chunk in members.chunks(BATCH) {
            let mut conn = self.conn.clone();
            let mut inv = scripts::EXISTING.prepare_invoke();
            for m in chunk {
                inv.key(self.entry_key_of(m));
            }
            let found: Vec<i64> = self
                .run(
                    "list keys",
                    async move { inv.invoke_async(&mut conn).await },
                )
                .await?;
            for (m, exists) in chunk.iter().zip(found) {
                if exists == 1 {
                    live.push(m);
                } else {
                    gone.push(m.clone());
                }
            }
        }
        if !gone.is_empty() {
            let mut stale = lock(&self.stale);
            for m in gone {
                if stale.len() < STALE_MAX && !stale.contains(&m) {
                    stale.push(m);
                }
            }
        }
        live.into_iter()
            .map(|m| {
                std::str::from_utf8(m).map(Arc::from).map_err(|_| {
                    Error::unexpected(
                        "the namespace's index holds a member that is not UTF-8 (not a cache key)",
                    )
                })
            })
            .collect::<Result<Vec<Arc<str>>>>()
            .map(Keys::from)
    }
}

/// Runs one operation within `timeout`, mapping its error; `what` names it (never data).
pub(crate) async fn run_bounded<T>(
    timeout: Duration,
    what: &'static str,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map_redis_error(what, e)),
        Err(_) => Err(timed_out(what)),
    }
}

/// The `ZRANGEBYLEX` bounds of the members that start with `prefix`: every such member
/// sorts in `[prefix, prefix + 0xFF)`, since no UTF-8 string holds the byte 0xFF.
pub(crate) fn lex_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (b"-".to_vec(), b"+".to_vec());
    }
    let mut min = Vec::with_capacity(prefix.len() + 1);
    min.push(b'[');
    min.extend_from_slice(prefix.as_bytes());
    let mut max = Vec::with_capacity(prefix.len() + 2);
    max.push(b'(');
    max.extend_from_slice(prefix.as_bytes());
    max.push(0xFF);
    (min, max)
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RedisCache {
    /// [`Cache::set`] in Redis.
    async fn set_redis(&self, key: &str, value: Cacheable) -> Result<()> {
        let ttl = self.ttl_arg(&value);
        let bytes = self.codec.encode(&self.storage_key(key), &value)?;
        let stale: Vec<Vec<u8>> = {
            let mut stale = lock(&self.stale);
            let n = stale.len().min(STALE_PER_WRITE);
            stale.drain(..n).collect()
        };
        let mut conn = self.conn.clone();
        let mut inv = scripts::SET.key(&self.index_key);
        inv.key(self.storage_key(key)).arg(key).arg(bytes).arg(ttl);
        for m in &stale {
            inv.key(self.entry_key_of(m)).arg(m);
        }
        self.run("set", async move {
            inv.invoke_async::<i64>(&mut conn).await.map(drop)
        })
        .await
    }

    /// [`Cache::remove_many`] in Redis.
    async fn remove_many_redis(&self, keys: &[Arc<str>]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let mut inv = scripts::REMOVE.key(&self.index_key);
        for key in keys {
            inv.key(self.storage_key(key)).arg(&**key);
        }
        self.run("remove", async move {
            inv.invoke_async::<i64>(&mut conn).await.map(drop)
        })
        .await
    }
}

#[async_trait]
impl Cache for RedisCache {
    /// A plain `GET`: reads never write. With a near cache, a value in the L1 is
    /// answered from memory, and a value read is kept there.
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        let ticket = match &self.near {
            Some(near) => match near.get(key) {
                Some(value) => return Ok(Some(value)),
                None => Some(near.ticket(key)),
            },
            None => None,
        };
        let storage_key = self.storage_key(key);
        let bytes: Option<Vec<u8>> = self
            .query("get", redis::cmd("GET").arg(&storage_key).to_owned())
            .await?;
        let Some(b) = bytes else { return Ok(None) };
        // The codec sees the full storage key (namespace included): an encrypting codec
        // binds the value to it, so a value copied elsewhere does not decrypt.
        let value = decode_or_miss(self.codec.as_ref(), &storage_key, &b)?;
        if let (Some(near), Some(ticket), Some(v)) = (&self.near, ticket, &value) {
            near.populate(ticket, key, v, b.len(), self.ttl_arg(v));
        }
        Ok(value)
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        let done = self.set_redis(key, value).await;
        self.near_invalidate(&[key]);
        done
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.remove_many(&[key.into()]).await
    }

    /// One script removes every key and its index member atomically (all keys of a
    /// namespace share one cluster slot).
    async fn remove_many(&self, keys: &[Arc<str>]) -> Result<()> {
        let done = self.remove_many_redis(keys).await;
        self.near_invalidate(keys);
        done
    }

    async fn all_keys(&self) -> Result<Option<Keys>> {
        self.list(b"-".to_vec(), b"+".to_vec()).await.map(Some)
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Keys>> {
        let (min, max) = lex_range(prefix);
        self.list(min, max).await.map(Some)
    }

    fn lists_keys(&self) -> bool {
        true
    }

    /// Atomic per key across every process and server on the namespace: a `GET` of the
    /// stored bytes, `f` on their value (decoded as [`Cache::get`] does: bytes that do not
    /// decode are no value, a value that fails authentication is an
    /// [`ErrorKind::Integrity`](tokencache_core::ErrorKind::Integrity) error and nothing is
    /// written), then a compare-and-set script that writes (value and TTL as
    /// [`Cache::set`], with the index) or removes only if the entry still holds exactly
    /// the bytes read, or is still absent. When it does not, the update starts again (`f`
    /// runs again), up to 16 tries with a short jittered backoff, then fails with a
    /// temporary [`ErrorKind::Unavailable`](tokencache_core::ErrorKind::Unavailable)
    /// error.
    ///
    /// With a `fence` (from this cache's [`Cache::refresh_lock`]), the same script first
    /// checks that the fence's lease key still holds exactly its `holder:epoch`; if not,
    /// nothing is written and the answer is [`Updated::FenceLost`]. A fenced update whose
    /// function keeps the value checks the fence too.
    async fn update(&self, key: &str, fence: Option<&Fence>, f: UpdateFn) -> Result<Updated> {
        let done = self.update_cas(key, fence, f).await;
        self.near_invalidate(&[key]);
        done
    }

    fn atomic_updates(&self) -> bool {
        true
    }

    /// Removes every entry whose key starts with `prefix`, and its index members, in one
    /// script; returns how many entries it removed. The members are read first
    /// (`ZRANGEBYLEX`) and declared with their entries in `KEYS`; the script removes them
    /// only if the prefix's range of the index still holds exactly those members, else
    /// the removal reads again and retries (as [`Cache::update`] does). A prefix of more
    /// than 10,000 keys gives `None`: the manager then removes the keys one by one.
    async fn remove_prefix(&self, prefix: &str) -> Result<Option<u64>> {
        let done = self.remove_prefix_cas(prefix).await;
        if let Some(near) = &self.near {
            near.flush();
        }
        done
    }

    /// The namespace's [`RedisLock`]: shared by every process on the namespace.
    fn refresh_lock(&self) -> Option<Arc<dyn RefreshLock>> {
        Some(self.lock.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokencache_core::{EntryBody, KeyManifestEntry, WrappedCacheEntry};

    #[test]
    fn namespaces_with_braces_are_refused() {
        assert!(Names::new("").is_err());
        assert!(Names::new("a{b").is_err());
        assert!(Names::new("a}b").is_err());
        let n = Names::new("t1").unwrap();
        assert_eq!(n.index_key, "tokencache:{t1}:i");
        assert_eq!(n.entry_prefix, "tokencache:{t1}:v:");
    }

    /// The hash tag of a Redis key, as Redis Cluster finds it: the bytes between the first
    /// `{` and the first `}` after it, if not empty.
    fn hash_tag(key: &str) -> Option<&str> {
        let open = key.find('{')?;
        let close = open + 1 + key[open + 1..].find('}')?;
        (close > open + 1).then(|| &key[open + 1..close])
    }

    #[test]
    fn every_key_of_a_namespace_has_its_hash_tag() {
        let ns = "t1";
        let n = Names::new(ns).unwrap();
        let lease = crate::lease::lease_prefix(ns);
        let epoch = crate::lease::epoch_prefix(ns);
        // Cache keys and lock names with braces of their own do not move the tag.
        for key in [
            n.index_key.clone(),
            format!("{}{}", n.entry_prefix, "@@auth0spajs@@::app::{api}::read"),
            format!("{lease}refresh::{{app}}"),
            format!("{epoch}refresh::{{app}}"),
            format!("{lease}}}{{"),
        ] {
            assert_eq!(hash_tag(&key), Some(ns), "{key}");
        }
        // Entries, index, leases and epochs never share a key name.
        let prefixes = [n.index_key.clone(), n.entry_prefix, lease, epoch];
        for (i, a) in prefixes.iter().enumerate() {
            for (j, b) in prefixes.iter().enumerate() {
                assert!(i == j || !a.starts_with(b.as_str()), "{a} / {b}");
            }
        }
    }

    fn entry(expires_at: i64, rt: bool) -> Cacheable {
        let mut body = EntryBody {
            access_token: Some("at".into()),
            ..Default::default()
        };
        if rt {
            body.refresh_token = Some("rt".into());
        }
        WrappedCacheEntry::new(body, expires_at).into()
    }

    const NO_GRACE: Duration = Duration::ZERO;

    #[test]
    fn ttl_ends_with_the_last_valid_second_plus_grace() {
        let now = 1_700_000_000_250;
        // Valid through second 1_700_000_010: TTL to 1_700_000_011_000.
        assert_eq!(
            ttl_for(
                now,
                Retention::NEVER,
                NO_GRACE,
                &entry(1_700_000_010, false)
            ),
            Ttl::Millis(10_750)
        );
        assert_eq!(
            ttl_for(
                now,
                Retention::NEVER,
                DEFAULT_EXPIRY_GRACE,
                &entry(1_700_000_010, false)
            ),
            Ttl::Millis(70_750)
        );
        // expiresAt == now_s is still valid: a short TTL, never an expired one.
        assert_eq!(
            ttl_for(
                now,
                Retention::NEVER,
                NO_GRACE,
                &entry(1_700_000_000, false)
            ),
            Ttl::Millis(750)
        );
        assert_eq!(
            ttl_for(
                now,
                Retention::NEVER,
                DEFAULT_EXPIRY_GRACE,
                &entry(1_699_999_999, false)
            ),
            Ttl::Expired
        );
    }

    #[test]
    fn refresh_token_entries_stay_for_the_retention() {
        let now = 1_700_000_000_000;
        assert_eq!(
            ttl_for(now, Retention::NEVER, NO_GRACE, &entry(1_600_000_000, true)),
            Ttl::Persist
        );
        let day = Duration::from_secs(86_400);
        // Expired 1,000 s ago: kept for the rest of the day after its expiry, plus grace.
        assert_eq!(
            ttl_for(
                now,
                Retention::after(day),
                DEFAULT_EXPIRY_GRACE,
                &entry(1_699_999_000, true)
            ),
            Ttl::Millis(86_400_000 - 999_000 + 60_000)
        );
        // Valid for 100 more seconds: kept that long plus the retention.
        assert_eq!(
            ttl_for(
                now,
                Retention::after(Duration::from_secs(1)),
                NO_GRACE,
                &entry(1_700_000_099, true)
            ),
            Ttl::Millis(101_000)
        );
        // Expired longer ago than the retention: not kept.
        assert_eq!(
            ttl_for(
                now,
                Retention::after(day),
                NO_GRACE,
                &entry(1_600_000_000, true)
            ),
            Ttl::Expired
        );
    }

    #[test]
    fn huge_retentions_and_graces_are_no_ttl() {
        let now = 1_700_000_000_000;
        let rt = entry(1_700_000_000, true);
        let plain = entry(1_700_000_000, false);
        let max = Retention::after(Duration::MAX);
        assert_eq!(ttl_for(now, max, NO_GRACE, &rt), Ttl::Persist);
        assert_eq!(ttl_for(now, max, Duration::MAX, &rt), Ttl::Persist);
        assert_eq!(ttl_for(now, max, Duration::MAX, &plain), Ttl::Persist);
        assert_eq!(
            ttl_for(now, Retention::NEVER, NO_GRACE, &entry(i64::MAX, false)),
            Ttl::Persist
        );
        // Right at the horizon: still a TTL Redis takes.
        let horizon = Retention::MAX_TIME_TO_LIVE;
        let r = Retention::after(horizon - Duration::from_secs(1));
        assert_eq!(ttl_for(now, r, NO_GRACE, &rt), Ttl::Millis(millis(horizon)));
        // An expired entry stays expired whatever the grace.
        assert_eq!(
            ttl_for(now, Retention::NEVER, Duration::MAX, &entry(1, false)),
            Ttl::Expired
        );
    }

    #[test]
    fn manifests_have_no_ttl() {
        let m: Cacheable = KeyManifestEntry { keys: vec![] }.into();
        assert_eq!(
            ttl_for(0, Retention::NEVER, DEFAULT_EXPIRY_GRACE, &m),
            Ttl::Persist
        );
    }
}
