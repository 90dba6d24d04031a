//! The connections of a cache: opening them (WAL, pragmas, the schema migration), the one
//! writer and the idle readers, and retrying while another process holds the lock.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tokencache_core::{Error, Result};

use crate::builder::Synchronous;
use crate::error::{is_busy, map_err};
use crate::schema::migrate;

/// The settings every connection of a cache is opened with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// At most [`MAX_BUSY_TIMEOUT`](crate::builder::MAX_BUSY_TIMEOUT), checked by the builder.
    pub(crate) busy_timeout: Duration,
    pub(crate) synchronous: Synchronous,
}

/// The database file's connections.
pub(crate) struct Connections {
    pub(crate) path: PathBuf,
    opts: Options,
    /// The one connection that writes: in-process writers queue on this mutex instead of
    /// on SQLite's file lock.
    writer: Mutex<Connection>,
    /// Idle read connections.
    readers: Mutex<Vec<Connection>>,
    max_readers: usize,
}

impl Connections {
    /// Opens the writer (creating the file, switching it to WAL mode, migrating the
    /// schema). Blocking: run it on a worker.
    pub(crate) fn open(path: PathBuf, opts: Options, max_readers: usize) -> Result<Connections> {
        let writer = open_writer(&path, &opts)?;
        Ok(Connections {
            path,
            opts,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            max_readers,
        })
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer connection and commits,
    /// retrying the whole transaction while the database is busy.
    pub(crate) fn write<T>(
        &self,
        mut f: impl FnMut(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
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
    pub(crate) fn read<T>(&self, mut f: impl FnMut(&Connection) -> Result<T>) -> Result<T> {
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
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
