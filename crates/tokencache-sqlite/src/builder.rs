//! [`SqliteCacheBuilder`]: the options of a [`SqliteCache`] and how it is opened.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokencache_core::{Clock, Error, JsonCodec, Result, Retention, ValueCodec};

use crate::cache::{Inner, SqliteCache};
use crate::pool::{Connections, Options};
use crate::workers::Workers;

/// The longest busy timeout SQLite takes: `i32::MAX` milliseconds, about 24.8 days.
pub const MAX_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// How hard SQLite works to make a commit durable (`PRAGMA synchronous`, in WAL mode).
///
/// Both survive a process kill: a commit has reached the operating system (the WAL file)
/// before [`Cache::set`](tokencache_core::Cache::set) returns. They differ on power loss
/// or an OS crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// `FULL`: the WAL is fsynced at every commit; an acknowledged write survives power
    /// loss too. The default.
    #[default]
    Full,
    /// `NORMAL`: the WAL is fsynced at checkpoints only; the last writes before a power
    /// loss may be rolled back (never corrupted). Much faster on slow disks.
    Normal,
}

impl Synchronous {
    pub(crate) fn as_sql(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Options of a [`SqliteCache`]; see [`SqliteCache::builder`].
pub struct SqliteCacheBuilder {
    pub(crate) path: PathBuf,
    /// `None` until [`SqliteCacheBuilder::codec`] or [`SqliteCacheBuilder::plaintext`].
    pub(crate) codec: Option<Arc<dyn ValueCodec>>,
    pub(crate) plaintext: bool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) retention: Retention,
    pub(crate) busy_timeout: Duration,
    pub(crate) synchronous: Synchronous,
    pub(crate) threads: usize,
    pub(crate) inline_reads: bool,
}

impl SqliteCacheBuilder {
    /// The codec that turns values into the stored `value` column: an encrypting codec
    /// (`tokencache_crypto::EncryptedCodec`), which is the intended use. There is no
    /// default: a builder given neither a codec nor [`SqliteCacheBuilder::plaintext`]
    /// fails to build.
    ///
    /// With an encrypting codec the database keeps a key check per key id (see
    /// [`SqliteCache`]): opening it with other key material under a key id it already
    /// knows fails with an [`ErrorKind::Integrity`](tokencache_core::ErrorKind::Integrity)
    /// error.
    pub fn codec(mut self, codec: Arc<dyn ValueCodec>) -> Self {
        self.codec = Some(codec);
        self.plaintext = false;
        self
    }

    /// Stores tokens **in plaintext** (the auth0-spa-js JSON,
    /// [`JsonCodec`]): only when asked for by name, e.g. for tests or a
    /// file on an encrypted disk readable by its owner only. The cache's `Debug` says
    /// `plaintext (JsonCodec)`. No key check is recorded.
    ///
    /// ```
    /// use tokencache_sqlite::SqliteCache;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> tokencache_core::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("plain.db");
    /// // Without a codec, opening is a configuration error ...
    /// let err = SqliteCache::builder(&path).build().await.unwrap_err();
    /// assert_eq!(err.kind(), tokencache_core::ErrorKind::Config);
    /// // ... plaintext must be named.
    /// let cache = SqliteCache::builder(&path).plaintext().build().await?;
    /// assert!(format!("{cache:?}").contains("plaintext (JsonCodec)"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn plaintext(mut self) -> Self {
        self.codec = Some(Arc::new(JsonCodec));
        self.plaintext = true;
        self
    }

    /// The clock [`SqliteCache::purge`] compares expiry times with. Default:
    /// [`SystemClock`](tokencache_core::SystemClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long [`SqliteCache::purge`] keeps an entry that holds a refresh token after its
    /// access token expired. Default: [`Retention::NEVER`] (the refresh token keeps the
    /// user signed in; the manager strips or replaces it when it stops working).
    pub fn refresh_token_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// How long an operation waits for a database locked by another process before it
    /// fails with a temporary [`ErrorKind::Unavailable`](tokencache_core::ErrorKind::Unavailable)
    /// error. Default: 10 s; at most [`MAX_BUSY_TIMEOUT`], or
    /// [`SqliteCacheBuilder::build`] fails with an
    /// [`ErrorKind::Config`](tokencache_core::ErrorKind::Config) error.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The durability of commits. Default: [`Synchronous::Full`].
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How many threads of this cache run SQLite work (each with its own read connection;
    /// writes share one connection), and how many read connections serve reads on the
    /// calling tasks (see [`SqliteCacheBuilder::inline_reads`]). Default: 2.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Whether `get`, `keys_with_prefix` and `best_with_prefix` may run on the calling
    /// task. Default: `true`.
    ///
    /// A point read from the page cache takes microseconds, less than a trip to a worker
    /// thread and back. Inline reads do not wait: their connections have a busy timeout of
    /// 0 and sit behind a try-lock, a statement that runs longer than 50 µs is
    /// interrupted, and in each of these cases (or on any error) the read is done again on
    /// the cache's threads. What they cannot bound is a read that the operating system must
    /// fetch from the disk, and SQLite's own short sleeps while another process holds the
    /// WAL index's locks abnormally long; a read that took longer than 20 ms sends every
    /// read to the cache's threads for 100 ms, doubled for each such read in a row. Turn
    /// them off for a database on a slow or network file system, and every read goes to
    /// the cache's threads.
    pub fn inline_reads(mut self, on: bool) -> Self {
        self.inline_reads = on;
        self
    }

    /// Opens (creating if needed) the database file, switches it to WAL mode and migrates
    /// its schema. Works with any async executor.
    pub async fn build(self) -> Result<SqliteCache> {
        if self.busy_timeout > MAX_BUSY_TIMEOUT {
            return Err(Error::config(format!(
                "the SQLite busy timeout is {:?}; SQLite takes at most {MAX_BUSY_TIMEOUT:?}",
                self.busy_timeout
            )));
        }
        let codec = self.codec.ok_or_else(|| {
            Error::config(
                "no codec for the SQLite cache: give an encrypting codec \
                 (SqliteCacheBuilder::codec) or ask for plaintext by name \
                 (SqliteCacheBuilder::plaintext)",
            )
        })?;
        let opts = Options {
            busy_timeout: self.busy_timeout,
            synchronous: self.synchronous,
        };
        let workers = Workers::start(self.threads)?;
        let (path, max_readers) = (self.path, self.threads);
        let inline_readers = if self.inline_reads { self.threads } else { 0 };
        let conns = workers
            .run(move || Connections::open(path, opts, max_readers, inline_readers))
            .await?;
        let cache = SqliteCache {
            workers,
            inner: Arc::new(Inner {
                conns,
                queue: Default::default(),
                stats: Default::default(),
                codec,
                plaintext: self.plaintext,
                pending_check: std::sync::Mutex::new(None),
                clock: self.clock,
                retention: self.retention,
            }),
        };
        // Before anything is read or written: the key must be the one this database
        // knows under its id (or the id is new, and its check is recorded).
        cache
            .with_inner(|inner| {
                let pending = inner.check_key()?;
                *crate::pool::lock(&inner.pending_check) = pending;
                Ok(())
            })
            .await?;
        Ok(cache)
    }
}

impl fmt::Debug for SqliteCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteCacheBuilder")
            .field("path", &self.path)
            .field("codec", &CodecName(self.codec.as_ref(), self.plaintext))
            .field("retention", &self.retention)
            .field("busy_timeout", &self.busy_timeout)
            .field("synchronous", &self.synchronous)
            .field("threads", &self.threads)
            .field("inline_reads", &self.inline_reads)
            .finish_non_exhaustive()
    }
}

/// How `Debug` names a codec: plaintext says so.
pub(crate) struct CodecName<'a>(pub(crate) Option<&'a Arc<dyn ValueCodec>>, pub(crate) bool);

impl fmt::Debug for CodecName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecName(_, true) => fmt::Debug::fmt("plaintext (JsonCodec)", f),
            CodecName(Some(codec), false) => fmt::Debug::fmt(codec, f),
            CodecName(None, false) => f.write_str("None"),
        }
    }
}
