//! The connections of a cache: opening them (WAL, pragmas, the schema migration), the one
//! writer and the idle readers, and retrying while another process holds the lock.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tokencache_core::{Error, Result};

use crate::builder::Synchronous;
use crate::error::{is_busy, map_err};
use crate::inline::InlineReaders;
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
    /// Idle read connections of the worker threads.
    readers: Mutex<Vec<Connection>>,
    max_readers: usize,
    /// The read connections of the calling tasks (`None`: inline reads are off).
    inline: Option<InlineReaders>,
}

impl Connections {
    /// Opens the writer (creating the file, switching it to WAL mode, migrating the
    /// schema), then `inline_readers` read connections for the calling tasks. Blocking:
    /// run it on a worker.
    pub(crate) fn open(
        path: PathBuf,
        opts: Options,
        max_readers: usize,
        inline_readers: usize,
    ) -> Result<Connections> {
        let writer = open_writer(&path, &opts)?;
        let inline = match inline_readers {
            0 => None,
            n => {
                // A busy timeout of 0: an inline read that meets a lock gives up at once.
                let no_wait = Options {
                    busy_timeout: Duration::ZERO,
                    ..opts
                };
                Some(InlineReaders::open(n, || open_connection(&path, &no_wait))?)
            }
        };
        Ok(Connections {
            path,
            opts,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            max_readers,
            inline,
        })
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer connection and commits,
    /// retrying the whole transaction while the database is busy.
    pub(crate) fn write<T>(
        &self,
        mut f: impl FnMut(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let conn = self.writer();
        retry_busy(self.opts.busy_timeout, || {
            let tx = begin_immediate(&conn)?;
            let out = f(&tx)?;
            tx.commit().map_err(map_err)?;
            Ok(out)
        })
    }

    /// The writer connection, once no other thread of this cache writes.
    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    /// How long a worker waits for a database locked by another process.
    pub(crate) fn busy_timeout(&self) -> Duration {
        self.opts.busy_timeout
    }

    /// The read connections of the calling tasks, unless inline reads are off.
    pub(crate) fn inline(&self) -> Option<&InlineReaders> {
        self.inline.as_ref()
    }

    /// Runs `f` on an idle read connection of the workers (opening one if none is idle).
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

/// Starts a `BEGIN IMMEDIATE` transaction on `conn` (a busy database is an error: retry
/// with [`retry_busy`]).
pub(crate) fn begin_immediate(conn: &Connection) -> Result<rusqlite::Transaction<'_>> {
    rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(map_err)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection leaves no transaction open (rusqlite rolls it
    // back on drop), so the connection is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The file a database name refers to: `path` itself, or the file of a `file:` URI
/// (authority empty or `localhost`, query and fragment dropped, `%XX` decoded); `None` for
/// an in-memory or temporary database, which has no file.
pub(crate) fn file_of(path: &Path) -> Option<PathBuf> {
    let Some(s) = path.to_str() else {
        return Some(path.to_owned());
    };
    if s.is_empty() || s == ":memory:" {
        return None;
    }
    let Some(uri) = s.strip_prefix("file:") else {
        return Some(path.to_owned());
    };
    let (rest, query) = match uri.split_once('?') {
        Some((r, q)) => (r, q),
        None => (uri, ""),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let query = query.split('#').next().unwrap_or_default();
    if query.split('&').any(|p| p == "mode=memory") {
        return None;
    }
    let rest = match rest.strip_prefix("//") {
        Some(authority_and_path) => {
            let slash = authority_and_path.find('/')?;
            let (authority, p) = authority_and_path.split_at(slash);
            if !(authority.is_empty() || authority == "localhost") {
                return None;
            }
            p
        }
        None => rest,
    };
    let decoded = percent_decode(rest)?;
    if decoded.is_empty() || decoded == ":memory:" {
        return None;
    }
    Some(PathBuf::from(decoded))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Creates the file readable by its owner only (tokens live there), unless it exists.
fn create_private(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file);
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// Logs a warning when an existing database file is readable or writable by group or
/// others. The file is opened as it is: its owner may share it on purpose (a group of
/// service accounts), and changing the mode of a file one did not create is not a
/// cache's business; the warning says how to make it private.
fn warn_if_shared(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(file) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %file.display(),
                    mode = format_args!("{mode:o}"),
                    "the token database is readable or writable by group or others \
                     (chmod 600 it to keep the tokens private)"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// Makes the `-wal` and `-shm` files beside `file` readable by their owner only,
/// whatever the umask and the database file's mode (SQLite copies the latter).
fn restrict_wal_files(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["-wal", "-shm"] {
            let mut name = file.as_os_str().to_owned();
            name.push(suffix);
            let side = PathBuf::from(name);
            match std::fs::metadata(&side) {
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                    if let Err(e) =
                        std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600))
                    {
                        tracing::warn!(path = %side.display(), error = %e,
                            "cannot make the database's side file private");
                    }
                }
                _ => {}
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
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
    let file = file_of(path);
    if let Some(file) = &file {
        warn_if_shared(file);
        create_private(file);
    }
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
    if let Some(file) = &file {
        restrict_wal_files(file);
    }
    Ok(conn)
}

/// Calls `f` until it returns something other than a busy error, or until `timeout`
/// has passed, sleeping with jittered exponential backoff (1 ms doubling up to 50 ms).
pub(crate) fn retry_busy<T>(timeout: Duration, mut f: impl FnMut() -> Result<T>) -> Result<T> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_name_their_file() {
        let f = |s: &str| file_of(Path::new(s));
        assert_eq!(f("a/b.db"), Some(PathBuf::from("a/b.db")));
        assert_eq!(f("file:a/b.db"), Some(PathBuf::from("a/b.db")));
        assert_eq!(f("file:/x/b.db?mode=rwc"), Some(PathBuf::from("/x/b.db")));
        assert_eq!(
            f("file:///x/my%20b.db#frag"),
            Some(PathBuf::from("/x/my b.db"))
        );
        assert_eq!(f("file://localhost/x/b.db"), Some(PathBuf::from("/x/b.db")));
        assert_eq!(f("file://elsewhere/x/b.db"), None);
        assert_eq!(f("file:m?mode=memory&cache=shared"), None);
        assert_eq!(f(":memory:"), None);
        assert_eq!(f("file::memory:"), None);
        assert_eq!(f("file:bad%zz"), None);
    }
}
