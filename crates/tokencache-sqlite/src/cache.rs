//! [`SqliteCache`]: the cache type, its shared state and the [`Cache`] implementation.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokencache_core::{
    async_trait, Cache, Cacheable, Clock, Fence, Keys, RankFn, Ranked, Result, Retention,
    SystemClock, UpdateFn, Updated, ValueCodec,
};

use crate::batch::{WriteOp, WriteQueue};
use crate::builder::{CodecName, SqliteCacheBuilder, Synchronous};
use crate::pool::Connections;
use crate::stats::{Counters, SqliteStats};
use crate::workers::Workers;

/// A token cache in a SQLite file, safe for several threads and several processes.
///
/// - One row per storage key; the value is whatever the codec makes of it — with
///   `tokencache_crypto::EncryptedCodec`, an AES-256-GCM ciphertext bound to its key. The
///   only plaintext beside it is the entry's expiry time and whether it holds a refresh
///   token (for [`SqliteCache::purge`]); never a token.
/// - A key check per key id: the first time a value is written under a key id (a `set`,
///   a `rotate`), the database records the codec's encryption of a fixed marker at a
///   reserved location; opening and reading with a key never claims its id. Opening with other key
///   material under a known key id is an
///   [`ErrorKind::Integrity`](tokencache_core::ErrorKind::Integrity) error at open, before
///   anything is read or written; a database written before key checks (schema
///   version 1) is checked against one of its values under that id instead. Only the active
///   key is checked at open (it is the one that writes); an older key of the ring that
///   is wrong fails on the values it decrypts. Plaintext caches record no check.
/// - It lists its keys ([`Cache::all_keys`], and [`Cache::keys_with_prefix`] as a range
///   scan of the primary-key index), so a [`CacheManager`](tokencache_core::CacheManager)
///   over it keeps no key manifest. [`Cache::best_with_prefix`] reads a range with the
///   plaintext metadata in one statement and decrypts only the best value, so a lookup by
///   scope subset decrypts one entry however many candidates there are.
/// - WAL mode, `secure_delete=ON`, a busy timeout; writes are `BEGIN IMMEDIATE`
///   transactions retried with backoff while another process holds the lock, so a
///   busy database surfaces only after the busy timeout, as a temporary error.
/// - Group commit: `set`, `remove` and `remove_many` are queued, and one transaction (one
///   fsync with [`Synchronous::Full`]) commits every write queued behind the one before;
///   each is acknowledged once its transaction committed. A group that fails is redone one
///   write per transaction, so that one write's error fails no other. `update` and the
///   lease operations run their own transactions.
/// - Short reads run on the calling task: `get`, `keys_with_prefix` and
///   `best_with_prefix` take a free inline read connection (busy timeout 0, a bound of
///   some tens of microseconds on the statement) and hand the read to the cache's threads
///   when none is free, or when it meets a lock or its bound; they never wait on the executor
///   ([`SqliteCacheBuilder::inline_reads`] turns this off).
/// - Everything else that touches the file (commits, waits for locks, listings of every
///   key, housekeeping) runs on the cache's own threads ([`SqliteCacheBuilder::threads`]),
///   fed by a queue, never on the async executor; the futures only wait for the answer,
///   so any executor works. The threads stop when the last clone of the cache is dropped.
///   Values are encrypted on the calling task, and decrypted where they were read
///   (microseconds either way).
/// - [`SqliteCache::stats`] counts where reads ran and how writes were grouped.
///
/// ```
/// use std::sync::Arc;
/// use tokencache_core::{CacheEntry, CacheKey, CacheManager, GetOptions};
/// use tokencache_crypto::{DataKey, EncryptedCodec, KeyRing};
/// use tokencache_sqlite::SqliteCache;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tokencache_core::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("tokens.db");
/// // The key comes from the OS keychain or a secret manager in real use.
/// let keys = KeyRing::new(DataKey::generate(1)?);
/// let codec = Arc::new(EncryptedCodec::new(keys, "my-app"));
/// let cache = Arc::new(SqliteCache::open(&path, codec).await?);
///
/// let manager = CacheManager::new(cache.clone())?;
/// manager.set(CacheEntry::new("client", "https://api", "read", "at-secret", 3600.0)).await?;
/// let key = CacheKey::new("client", Some("https://api"), Some("read"));
/// let body = manager.get(&key, GetOptions::default()).await?.unwrap();
/// assert_eq!(body.access_token.as_deref(), Some("at-secret"));
///
/// // Housekeeping, e.g. from a CLI or a timer:
/// let removed = cache.purge().await?;     // expired entries without a refresh token
/// let rekeyed = cache.rotate().await?.rewritten; // values under old keys -> the active key
/// assert_eq!((removed, rekeyed), (0, 0));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteCache {
    pub(crate) workers: Workers,
    pub(crate) inner: Arc<Inner>,
}

/// What the worker threads share: the connections, the write queue and the settings of
/// the operations.
pub(crate) struct Inner {
    pub(crate) conns: Connections,
    /// Writes waiting for the next group commit.
    pub(crate) queue: WriteQueue,
    pub(crate) stats: Counters,
    pub(crate) codec: Arc<dyn ValueCodec>,
    /// Asked for by name with [`SqliteCacheBuilder::plaintext`].
    pub(crate) plaintext: bool,
    /// The active key's check, until the first write records it.
    pub(crate) pending_check: std::sync::Mutex<Option<crate::keycheck::PendingCheck>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) retention: Retention,
}

impl SqliteCache {
    /// Opens (creating if needed) the cache at `path` with `codec` and default options.
    pub async fn open(path: impl AsRef<Path>, codec: Arc<dyn ValueCodec>) -> Result<SqliteCache> {
        SqliteCache::builder(path).codec(codec).build().await
    }

    /// A builder for the cache at `path`. It has no default codec: set an encrypting one
    /// with [`SqliteCacheBuilder::codec`], or ask for plaintext with
    /// [`SqliteCacheBuilder::plaintext`]; otherwise [`SqliteCacheBuilder::build`] is an
    /// [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) error.
    pub fn builder(path: impl AsRef<Path>) -> SqliteCacheBuilder {
        SqliteCacheBuilder {
            path: path.as_ref().to_owned(),
            codec: None,
            plaintext: false,
            clock: Arc::new(SystemClock),
            retention: Retention::NEVER,
            busy_timeout: Duration::from_secs(10),
            synchronous: Synchronous::default(),
            threads: 2,
            inline_reads: true,
        }
    }

    /// What this cache (and its clones) did since it was opened: where its reads ran and
    /// how its writes were grouped into transactions.
    pub fn stats(&self) -> SqliteStats {
        let pauses = self.inner.conns.inline().map_or(0, |i| i.pauses());
        self.inner.stats.snapshot(pauses)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.conns.path
    }

    /// The codec values are stored with.
    pub fn codec(&self) -> &Arc<dyn ValueCodec> {
        &self.inner.codec
    }

    /// Runs `f` on a worker thread.
    pub(crate) async fn with_inner<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        self.workers.run(move || f(&inner)).await
    }
}

impl fmt::Debug for SqliteCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteCache")
            .field("path", &self.inner.conns.path)
            .field(
                "codec",
                &CodecName(Some(&self.inner.codec), self.inner.plaintext),
            )
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Cache for SqliteCache {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        if let Some(found) = self.inner.get_inline(key) {
            self.inner.stats.inline_read();
            return found;
        }
        self.inner.stats.worker_read();
        let key = key.to_owned();
        self.with_inner(move |inner| inner.get(&key)).await
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        let op = self.inner.put(key, &value)?;
        drop(value);
        self.write_queued(op).await
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.write_queued(WriteOp::Remove(vec![key.into()])).await
    }

    async fn remove_many(&self, keys: &[Arc<str>]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.write_queued(WriteOp::Remove(keys.to_vec())).await
    }

    async fn all_keys(&self) -> Result<Option<Keys>> {
        // Every key of the file: a long read, for the workers.
        self.inner.stats.worker_read();
        self.with_inner(|inner| inner.keys_with_prefix("").map(Some))
            .await
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Keys>> {
        if let Some(keys) = self.inner.keys_with_prefix_inline(prefix) {
            self.inner.stats.inline_read();
            return Ok(Some(keys));
        }
        self.inner.stats.worker_read();
        let prefix = prefix.to_owned();
        self.with_inner(move |inner| inner.keys_with_prefix(&prefix).map(Some))
            .await
    }

    async fn best_with_prefix(&self, prefix: &str, rank: RankFn<'_>) -> Result<Option<Ranked>> {
        if let Some(scan) = self.inner.ranked_inline(prefix, rank) {
            self.inner.stats.inline_read();
            let best = scan
                .best
                .map(|(i, _, bytes)| (i, self.inner.decode(&scan.listed[i].0, Some(bytes))));
            return Ok(Some(Ranked {
                listed: scan.listed,
                best,
            }));
        }
        // On the workers the listing, then a read of the best key: the rank cannot go to
        // their threads. The caller checks the value against its metadata.
        self.inner.stats.worker_read();
        let owned = prefix.to_owned();
        let listed = self
            .with_inner(move |inner| inner.listed_with_meta(&owned))
            .await?;
        let mut best: Option<(usize, u64)> = None;
        for (i, (key, meta)) in listed.iter().enumerate() {
            if let Some(r) = rank(key, *meta) {
                if crate::rows::beats(r, best.map(|b| b.1)) {
                    best = Some((i, r));
                }
            }
        }
        let best = match best {
            Some((i, _)) => Some((i, self.get(&listed[i].0).await)),
            None => None,
        };
        Ok(Some(Ranked { listed, best }))
    }

    fn ranks_by_metadata(&self) -> bool {
        true
    }

    fn lists_keys(&self) -> bool {
        true
    }

    async fn update(&self, key: &str, fence: Option<&Fence>, f: UpdateFn) -> Result<Updated> {
        let (key, fence) = (key.to_owned(), fence.cloned());
        self.with_inner(move |inner| inner.update(&key, fence.as_ref(), f))
            .await
    }

    fn atomic_updates(&self) -> bool {
        true
    }

    fn refresh_lock(&self) -> Option<Arc<dyn tokencache_core::RefreshLock>> {
        Some(self.lease_lock())
    }

    async fn remove_prefix(&self, prefix: &str) -> Result<Option<u64>> {
        let prefix = prefix.to_owned();
        self.with_inner(move |inner| inner.remove_prefix(&prefix).map(Some))
            .await
    }
}
