//! [`SqliteCache`] and its builder.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokencache_core::{
    async_trait, decode_or_miss, Cache, Cacheable, Clock, Error, JsonCodec, Result, SystemClock,
    ValueCodec,
};
use tokio::sync::oneshot;

use crate::error::{is_busy, map_err};
use crate::schema::migrate;

/// How hard SQLite works to make a commit durable (`PRAGMA synchronous`, in WAL mode).
///
/// Both survive a process kill: a commit has reached the operating system (the WAL file)
/// before [`Cache::set`] returns. They differ on power loss or an OS crash.
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
    fn as_sql(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Options of a [`SqliteCache`]; see [`SqliteCache::builder`].
pub struct SqliteCacheBuilder {
    path: PathBuf,
    codec: Arc<dyn ValueCodec>,
    clock: Arc<dyn Clock>,
    retention: Option<Duration>,
    busy_timeout: Duration,
    synchronous: Synchronous,
    threads: usize,
}

impl SqliteCacheBuilder {
    /// The codec that turns values into the stored `value` column. Default:
    /// [`JsonCodec`], which stores tokens **in plaintext**; pass an encrypting codec
    /// (`tokencache_crypto::EncryptedCodec`), which is the intended use.
    pub fn codec(mut self, codec: Arc<dyn ValueCodec>) -> Self {
        self.codec = codec;
        self
    }

    /// The clock [`SqliteCache::purge`] compares expiry times with. Default: [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long [`SqliteCache::purge`] keeps an entry that holds a refresh token after its
    /// access token expired. Default: forever (the refresh token keeps the user signed
    /// in; the manager strips or replaces it when it stops working).
    pub fn refresh_token_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// How long an operation waits for a database locked by another process before it
    /// fails with a temporary [`ErrorKind::Unavailable`](tokencache_core::ErrorKind::Unavailable)
    /// error. Default: 10 s.
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
    /// writes share one connection). Default: 2.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Opens (creating if needed) the database file, switches it to WAL mode and migrates
    /// its schema. Works with any async executor.
    pub async fn build(self) -> Result<SqliteCache> {
        let opts = Options {
            busy_timeout: self.busy_timeout,
            synchronous: self.synchronous,
        };
        let workers = Workers::start(self.threads)?;
        let path = self.path;
        let (path, writer) = workers
            .run(move || {
                let writer = open_writer(&path, &opts)?;
                Ok((path, writer))
            })
            .await?;
        Ok(SqliteCache {
            workers,
            inner: Arc::new(Inner {
                path,
                opts,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                max_readers: self.threads,
                codec: self.codec,
                clock: self.clock,
                retention_s: self
                    .retention
                    .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            }),
        })
    }
}

impl fmt::Debug for SqliteCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteCacheBuilder")
            .field("path", &self.path)
            .field("codec", &self.codec)
            .field("retention", &self.retention)
            .field("busy_timeout", &self.busy_timeout)
            .field("synchronous", &self.synchronous)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
struct Options {
    busy_timeout: Duration,
    synchronous: Synchronous,
}

/// A token cache in a SQLite file, safe for several threads and several processes.
///
/// - One row per storage key; the value is whatever the codec makes of it — with
///   `tokencache_crypto::EncryptedCodec`, an AES-256-GCM ciphertext bound to its key. The
///   only plaintext beside it is the entry's expiry time and whether it holds a refresh
///   token (for [`SqliteCache::purge`]); never a token.
/// - It lists its keys ([`Cache::all_keys`], and [`Cache::keys_with_prefix`] as a range
///   scan of the primary-key index), so a [`CacheManager`](tokencache_core::CacheManager)
///   over it keeps no key manifest.
/// - WAL mode, `secure_delete=ON`, a busy timeout; writes are `BEGIN IMMEDIATE`
///   transactions retried with backoff while another process holds the lock, so a
///   busy database surfaces only after the busy timeout, as a temporary error.
/// - All SQLite work (and encryption) runs on the cache's own threads
///   ([`SqliteCacheBuilder::threads`]), fed by a channel, never on the async executor; the
///   futures only wait for the answer, so any executor works. The threads stop when the
///   last clone of the cache is dropped.
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
/// let rekeyed = cache.rotate().await?;    // values under old keys -> the active key
/// assert_eq!((removed, rekeyed), (0, 0));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteCache {
    workers: Workers,
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    opts: Options,
    /// The one connection that writes: in-process writers queue on this mutex instead of
    /// on SQLite's file lock.
    writer: Mutex<Connection>,
    /// Idle read connections.
    readers: Mutex<Vec<Connection>>,
    max_readers: usize,
    codec: Arc<dyn ValueCodec>,
    clock: Arc<dyn Clock>,
    retention_s: Option<i64>,
}

impl SqliteCache {
    /// Opens (creating if needed) the cache at `path` with `codec` and default options.
    pub async fn open(path: impl AsRef<Path>, codec: Arc<dyn ValueCodec>) -> Result<SqliteCache> {
        SqliteCache::builder(path).codec(codec).build().await
    }

    /// A builder for the cache at `path`. Its default codec is [`JsonCodec`]
    /// (plaintext): set an encrypting one with [`SqliteCacheBuilder::codec`].
    pub fn builder(path: impl AsRef<Path>) -> SqliteCacheBuilder {
        SqliteCacheBuilder {
            path: path.as_ref().to_owned(),
            codec: Arc::new(JsonCodec),
            clock: Arc::new(SystemClock),
            retention: None,
            busy_timeout: Duration::from_secs(10),
            synchronous: Synchronous::default(),
            threads: 2,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The codec values are stored with.
    pub fn codec(&self) -> &Arc<dyn ValueCodec> {
        &self.inner.codec
    }

    /// Deletes, by the cache's clock, the entries whose access token expired and that
    /// hold no refresh token, and those with a refresh token whose access token expired
    /// longer ago than the configured retention (default: never). Manifests and ID-token
    /// entries carry no expiry and are never purged. Returns how many rows it deleted.
    pub async fn purge(&self) -> Result<usize> {
        self.with_inner(|inner| {
            let now_s = inner.clock.now_ms().div_euclid(1000);
            inner.write(|tx| {
                tx.prepare_cached(
                    "DELETE FROM tokencache_entries
                     WHERE expires_at IS NOT NULL AND expires_at < ?1
                       AND (has_refresh_token = 0
                            OR (?2 IS NOT NULL AND expires_at < ?1 - ?2))",
                )
                .and_then(|mut s| s.execute(params![now_s, inner.retention_s]))
                .map_err(map_err)
            })
        })
        .await
    }

    /// Re-encodes, in one transaction, every value for which the codec's
    /// [`ValueCodec::recode`] returns new bytes: after a key rotation
    /// (`KeyRing::rotate`), moves every value to the active key. Returns how many values
    /// it rewrote. A value that fails authentication aborts the whole rotation with an
    /// [`ErrorKind::Integrity`](tokencache_core::ErrorKind::Integrity) error (nothing is
    /// changed); a value that does not decode is skipped and logged.
    pub async fn rotate(&self) -> Result<usize> {
        self.with_inner(|inner| {
            inner.write(|tx| {
                let rows: Vec<(String, Vec<u8>)> = {
                    let mut stmt = tx
                        .prepare("SELECT key, value FROM tokencache_entries")
                        .map_err(map_err)?;
                    let rows = stmt
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                        .map_err(map_err)?;
                    rows.collect::<rusqlite::Result<_>>().map_err(map_err)?
                };
                let mut update = tx
                    .prepare_cached("UPDATE tokencache_entries SET value = ?2 WHERE key = ?1")
                    .map_err(map_err)?;
                let mut n = 0;
                for (key, value) in rows {
                    match inner.codec.recode(&key, &value) {
                        Ok(Some(new)) => {
                            update.execute(params![key, new]).map_err(map_err)?;
                            n += 1;
                        }
                        Ok(None) => {}
                        Err(e) if e.kind() == tokencache_core::ErrorKind::Serialization => {
                            tracing::warn!(key, error = %e, "stored value does not decode; not re-encoded");
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(n)
            })
        })
        .await
    }

    async fn with_inner<T: Send + 'static>(
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
            .field("path", &self.inner.path)
            .field("codec", &self.inner.codec)
            .finish_non_exhaustive()
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The threads that run a cache's blocking work, fed by one channel. They stop when the
/// last handle on the cache is dropped (the channel closes).
#[derive(Clone)]
struct Workers(mpsc::Sender<Job>);

impl Workers {
    fn start(n: usize) -> Result<Workers> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("tokencache-sqlite-{i}"))
                .spawn(move || loop {
                    // One idle thread waits in `recv` holding the lock; the others wait for
                    // the lock.
                    let Some(job) = next_job(&lock(&rx)) else {
                        return;
                    };
                    // A panicking job must not stop the thread: its caller sees the dropped
                    // reply channel instead.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                })
                .map_err(|e| {
                    Error::unexpected("cannot start a SQLite worker thread").with_source(e)
                })?;
        }
        Ok(Workers(tx))
    }

    /// Runs `f` on a worker thread and waits, without blocking, for its result.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.0
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| Error::unexpected("the SQLite worker threads have stopped"))?;
        rx.await
            .map_err(|_| Error::unexpected("a SQLite operation panicked"))?
    }
}

/// How long an idle worker polls for the next job before it sleeps. Waking a sleeping
/// thread costs tens of microseconds on small virtual machines, several times a point read;
/// a burst of cache calls finds the worker still awake.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(50);

/// The next job (`None` once the cache is dropped): polled for a moment, then waited for.
fn next_job(rx: &mpsc::Receiver<Job>) -> Option<Job> {
    let start = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if start.elapsed() < SPIN_BEFORE_SLEEP => {
                std::thread::yield_now();
            }
            Err(mpsc::TryRecvError::Empty) => return rx.recv().ok(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection leaves no transaction open (rusqlite rolls it
    // back on drop), so the connection is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates the file readable by its owner only (tokens live there), unless it exists.
fn create_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // SQLite gives the -wal and -shm files the permissions of the database file.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn open_connection(path: &Path, opts: &Options) -> Result<Connection> {
    let conn = Connection::open(path).map_err(map_err)?;
    conn.busy_timeout(opts.busy_timeout).map_err(map_err)?;
    conn.pragma_update(None, "synchronous", opts.synchronous.as_sql())
        .map_err(map_err)?;
    conn.pragma_update(None, "secure_delete", "ON")
        .map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

fn open_writer(path: &Path, opts: &Options) -> Result<Connection> {
    create_private(path);
    let mut conn = open_connection(path, opts)?;
    let mode: String = retry_busy(opts.busy_timeout, || {
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(map_err)
    })?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::config(format!(
            "the database cannot use WAL mode (it is in {mode} mode)"
        )));
    }
    retry_busy(opts.busy_timeout, || migrate(&mut conn))?;
    Ok(conn)
}

/// Calls `f` until it returns something other than a busy error, or until `timeout`
/// has passed, sleeping with jittered exponential backoff (1 ms doubling up to 50 ms).
fn retry_busy<T>(timeout: Duration, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        match f() {
            Err(e) if is_busy(&e) && start.elapsed() < timeout => {
                std::thread::sleep(jitter(delay));
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// A delay between `d / 2` and `d`, so that processes that collided do not collide again.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d / 2 + d / 2 * (nanos % 1024) / 1024
}

impl Inner {
    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer connection and commits,
    /// retrying the whole transaction while the database is busy.
    fn write<T>(&self, mut f: impl FnMut(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = lock(&self.writer);
        retry_busy(self.opts.busy_timeout, || {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let out = f(&tx)?;
            tx.commit().map_err(map_err)?;
            Ok(out)
        })
    }

    /// Runs `f` on an idle read connection (opening one if none is idle).
    fn read<T>(&self, mut f: impl FnMut(&Connection) -> Result<T>) -> Result<T> {
        let idle = lock(&self.readers).pop();
        let conn = match idle {
            Some(c) => c,
            None => open_connection(&self.path, &self.opts)?,
        };
        let out = retry_busy(self.opts.busy_timeout, || f(&conn));
        let mut idle = lock(&self.readers);
        if idle.len() < self.max_readers {
            idle.push(conn);
        }
        out
    }

    fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        let bytes: Option<Vec<u8>> = self.read(|c| {
            c.prepare_cached("SELECT value FROM tokencache_entries WHERE key = ?1")
                .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
                .map_err(map_err)
        })?;
        match bytes {
            Some(b) => decode_or_miss(&*self.codec, key, &b),
            None => Ok(None),
        }
    }

    fn set(&self, key: &str, value: &Cacheable) -> Result<()> {
        let bytes = self.codec.encode(key, value)?;
        let expires_at = value.expires_at();
        let has_rt = value.has_refresh_token();
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO tokencache_entries (key, value, expires_at, has_refresh_token)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                     expires_at = excluded.expires_at,
                     has_refresh_token = excluded.has_refresh_token",
            )
            .and_then(|mut s| s.execute(params![key, bytes, expires_at, has_rt]))
            .map_err(map_err)
        })?;
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("DELETE FROM tokencache_entries WHERE key = ?1")
                .and_then(|mut s| s.execute([key]))
                .map_err(map_err)
        })?;
        Ok(())
    }

    fn remove_many(&self, keys: &[String]) -> Result<()> {
        self.write(|tx| {
            let mut stmt = tx
                .prepare_cached("DELETE FROM tokencache_entries WHERE key = ?1")
                .map_err(map_err)?;
            for key in keys {
                stmt.execute([key]).map_err(map_err)?;
            }
            Ok(())
        })
    }

    /// The keys in `[prefix, successor(prefix))`, in order, read from the primary-key index.
    fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let upper = prefix_upper_bound(prefix);
        self.read(|c| {
            let collect = |mut s: rusqlite::CachedStatement<'_>, p: &[&dyn rusqlite::ToSql]| {
                s.query_map(p, |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            };
            match &upper {
                Some(upper) => c
                    .prepare_cached(
                        "SELECT key FROM tokencache_entries
                         WHERE key >= ?1 AND key < ?2 ORDER BY key",
                    )
                    .and_then(|s| collect(s, params![prefix, upper])),
                None => c
                    .prepare_cached(
                        "SELECT key FROM tokencache_entries WHERE key >= ?1 ORDER BY key",
                    )
                    .and_then(|s| collect(s, params![prefix])),
            }
            .map_err(map_err)
        })
    }
}

/// The smallest string greater than every string that starts with `prefix` (in SQLite's
/// BINARY order, which is byte order of UTF-8, which is code-point order), or `None` when
/// there is none (an empty prefix, or one made only of `U+10FFFF`).
///
/// Computed on characters, not bytes, so the bound stays valid UTF-8: the last character
/// that has a successor is replaced by it and everything after it is dropped.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            char::MAX => None,
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[async_trait]
impl Cache for SqliteCache {
    async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
        let key = key.to_owned();
        self.with_inner(move |inner| inner.get(&key)).await
    }

    async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
        let key = key.to_owned();
        self.with_inner(move |inner| inner.set(&key, &value)).await
    }

    async fn remove(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.with_inner(move |inner| inner.remove(&key)).await
    }

    async fn remove_many(&self, keys: &[String]) -> Result<()> {
        let keys = keys.to_vec();
        self.with_inner(move |inner| inner.remove_many(&keys)).await
    }

    async fn all_keys(&self) -> Result<Option<Vec<String>>> {
        self.with_inner(|inner| inner.keys_with_prefix("").map(Some))
            .await
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Option<Vec<String>>> {
        let prefix = prefix.to_owned();
        self.with_inner(move |inner| inner.keys_with_prefix(&prefix).map(Some))
            .await
    }

    fn lists_keys(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("ab::").as_deref(), Some("ab:;"));
        assert_eq!(
            prefix_upper_bound("x\u{D7FF}").as_deref(),
            Some("x\u{E000}")
        );
        assert_eq!(prefix_upper_bound("x\u{10FFFF}").as_deref(), Some("y"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound("é").as_deref(), Some("ê"));
        assert_eq!(prefix_upper_bound("\u{7F}").as_deref(), Some("\u{80}"));
    }
}
