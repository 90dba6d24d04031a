//! Reads on the calling task: a few read connections that answer a point read or a short
//! key range right where the future is polled, without a trip to the worker threads, and
//! give up (so that the worker threads do the read instead) rather than wait.
//!
//! A read that finds its pages in SQLite's or the operating system's page cache takes a
//! few microseconds, less than waking a worker thread and being woken by it. What keeps
//! it from holding up the executor:
//!
//! - **No waiting for a connection**: the connections sit behind `try_lock`; when every one
//!   is in use (by other tasks reading at the same moment), the read goes to the workers.
//! - **No waiting for a lock**: they have a busy timeout of 0, so a database that another
//!   connection or process holds in a way that stops readers (WAL recovery, an exclusive
//!   lock) answers `SQLITE_BUSY` at once, and the read goes to the workers, which wait
//!   with backoff up to the cache's busy timeout.
//! - **A bound on the work**: a progress handler interrupts a statement that has run for
//!   longer than [`INLINE_BUDGET`] (a long key range); the read goes to the workers.
//!
//! What these cannot interrupt: a read of the file that the operating system has to
//! fetch from the disk (a token cache is small and its pages stay cached), and SQLite's own
//! short sleeps while it retries to read the WAL index, which happen only while another
//! process holds the index's locks far longer than SQLite ever does (a process stopped in
//! the middle of a checkpoint). So, after the fact:
//!
//! - **A slow read pauses the inline path**: an inline read that took longer than
//!   [`SLOW_READ`] sends every read to the workers for a while: [`FIRST_PAUSE`], doubled
//!   for every slow read in a row, up to [`LONGEST_PAUSE`]. A read that was not slow ends
//!   the series. A machine so loaded that a read is preempted for that long costs a short
//!   pause; a file whose reads keep blocking is read inline less and less often.
//!
//! [`SqliteCacheBuilder::inline_reads`](crate::SqliteCacheBuilder::inline_reads) turns the
//! whole mechanism off (for a database on a network file system, say).
//!
//! Any error of an inline read sends the read to the workers, which do it again and report
//! their own outcome: the inline path never decides that a read failed.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokencache_core::Result;

use crate::error::map_err;

/// How long one statement may run on the calling task before it is interrupted and the
/// read handed to the worker threads: well under the ~100 µs an async task should run
/// between two awaits, and some ten times a point read.
pub(crate) const INLINE_BUDGET: Duration = Duration::from_micros(50);

/// An inline read that took longer than this pauses the inline path (see [`FIRST_PAUSE`]): the
/// disk or the locks of the file are slow right now.
/// Far above a read's few microseconds, and above the scheduling delays of a loaded machine
/// most of the time (a pause sends reads to the workers for nothing then).
pub(crate) const SLOW_READ: Duration = Duration::from_millis(20);

/// How long every read goes to the workers after a [`SLOW_READ`] that follows a read that
/// was not slow.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_millis(100);

/// The longest pause, after many slow reads in a row.
pub(crate) const LONGEST_PAUSE: Duration = Duration::from_secs(30);

/// How many SQLite virtual-machine instructions run between two looks at the clock (a
/// point read runs a few dozen, so it never looks).
const PROGRESS_INTERVAL: i32 = 256;

/// The statements the inline path runs, prepared (and the schema loaded) when the
/// connection opens, on a worker thread, so that the first inline read does not pay for it.
pub(crate) const INLINE_STATEMENTS: &[&str] = &[
    crate::rows::SELECT_VALUE,
    crate::rows::SELECT_KEY_RANGE,
    crate::rows::SELECT_KEYS_FROM,
    crate::rows::SELECT_RANKED_RANGE,
    crate::rows::SELECT_RANKED_FROM,
];

/// The read connections of the inline path.
pub(crate) struct InlineReaders {
    slots: Vec<Mutex<Slot>>,
    /// The origin of the times below, in nanoseconds.
    epoch: Instant,
    /// Until when every read goes to the workers (after a [`SLOW_READ`]); 0: not paused.
    paused_until: AtomicU64,
    /// How many times a slow read paused the inline path.
    pauses: AtomicU64,
    /// How many reads in a row were slow (each doubles the pause).
    slow_in_a_row: AtomicU32,
}

struct Slot {
    conn: Connection,
    /// When the running statement must stop, in nanoseconds since the epoch; `u64::MAX`
    /// when no inline read is running (the warm-up at open).
    deadline: Arc<AtomicU64>,
}

impl InlineReaders {
    /// `n` connections opened by `open` (blocking: call it on a worker thread).
    pub(crate) fn open(n: usize, open: impl Fn() -> Result<Connection>) -> Result<InlineReaders> {
        let epoch = Instant::now();
        let slots = (0..n)
            .map(|_| Slot::new(open()?, epoch).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(InlineReaders {
            slots,
            epoch,
            paused_until: AtomicU64::new(0),
            pauses: AtomicU64::new(0),
            slow_in_a_row: AtomicU32::new(0),
        })
    }

    /// How many times a slow read paused the inline path.
    pub(crate) fn pauses(&self) -> u64 {
        self.pauses.load(Ordering::Relaxed)
    }

    /// Runs `f` on a free inline connection, under [`INLINE_BUDGET`]. `None` when the
    /// inline path is paused, every connection is in use or `f` failed (busy,
    /// interrupted, anything else): then the caller reads on a worker thread.
    pub(crate) fn try_read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<T> {
        let start = nanos_since(self.epoch);
        if start < self.paused_until.load(Ordering::Relaxed) {
            return None;
        }
        let slot = self.slots.iter().find_map(|slot| match slot.try_lock() {
            Ok(s) => Some(s),
            // A panic during a read leaves no transaction open: the statement was reset
            // when it was dropped.
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        })?;
        let budget = u64::try_from(INLINE_BUDGET.as_nanos()).unwrap_or(u64::MAX);
        slot.deadline
            .store(start.saturating_add(budget), Ordering::Relaxed);
        let out = f(&slot.conn);
        slot.deadline.store(u64::MAX, Ordering::Relaxed);
        drop(slot);
        let took = Duration::from_nanos(nanos_since(self.epoch).saturating_sub(start));
        if took > SLOW_READ {
            self.pause(took);
        } else if self.slow_in_a_row.load(Ordering::Relaxed) != 0 {
            self.slow_in_a_row.store(0, Ordering::Relaxed);
        }
        match out {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::debug!(error = %e, "inline read gave up; reading on a worker thread");
                None
            }
        }
    }
}

impl InlineReaders {
    /// Sends every read to the workers for a while after a read that took `took`.
    fn pause(&self, took: Duration) {
        let in_a_row = self.slow_in_a_row.fetch_add(1, Ordering::Relaxed);
        let pause = FIRST_PAUSE
            .saturating_mul(1 << in_a_row.min(16))
            .min(LONGEST_PAUSE);
        let until = nanos_since(self.epoch)
            .saturating_add(u64::try_from(pause.as_nanos()).unwrap_or(u64::MAX));
        self.paused_until.fetch_max(until, Ordering::Relaxed);
        self.pauses.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            took = ?took,
            pause = ?pause,
            "a read on the calling task was slow; reads go to the worker threads for a while"
        );
    }
}

impl Slot {
    fn new(mut conn: Connection, epoch: Instant) -> Result<Slot> {
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let watched = deadline.clone();
        conn.progress_handler(
            PROGRESS_INTERVAL,
            Some(move || nanos_since(epoch) > watched.load(Ordering::Relaxed)),
        )
        .map_err(map_err)?;
        for sql in INLINE_STATEMENTS {
            conn.prepare_cached(sql).map_err(map_err)?;
        }
        Ok(Slot { conn, deadline })
    }
}

fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn readers(n: usize) -> InlineReaders {
        InlineReaders::open(n, || {
            let mut c = Connection::open_in_memory().map_err(map_err)?;
            crate::schema::migrate(&mut c)?;
            Ok(c)
        })
        .unwrap()
    }

    fn busy() -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None)
    }

    fn one(c: &Connection) -> rusqlite::Result<i64> {
        c.query_row("SELECT 1", [], |r| r.get(0))
    }

    #[test]
    fn gives_up_on_an_error_or_when_every_connection_is_in_use() {
        let r = readers(1);
        assert_eq!(r.try_read(|_| Err::<i64, _>(busy())), None);
        // Not paused, and the connection is free again.
        assert_eq!(r.try_read(one), Some(1));
        let held = r.slots[0].lock().unwrap();
        let called = Cell::new(false);
        assert_eq!(
            r.try_read(|c| {
                called.set(true);
                one(c)
            }),
            None
        );
        assert!(!called.get(), "no connection was free, so nothing ran");
        drop(held);
        assert_eq!(r.try_read(one), Some(1));
    }

    #[test]
    fn a_long_statement_is_interrupted() {
        let r = readers(2);
        let start = Instant::now();
        // Seconds of work if it were not interrupted.
        let counted = r.try_read(|c| {
            c.query_row(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 50000000)
                 SELECT count(*) FROM n",
                [],
                |row| row.get::<_, i64>(0),
            )
        });
        assert_eq!(counted, None);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        // The bound is for inline reads only: with no read running, nothing is interrupted.
        r.paused_until.store(0, Ordering::Relaxed);
        let slot = r.slots[0].lock().unwrap();
        let n: i64 = slot
            .conn
            .query_row(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 20000)
                 SELECT count(*) FROM n",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(n, 20_000);
    }

    #[test]
    fn a_slow_read_pauses_the_inline_path() {
        let r = readers(1);
        let slow = r.try_read(|c| {
            std::thread::sleep(SLOW_READ * 2);
            one(c)
        });
        assert_eq!(slow, Some(1), "a slow read still answers");
        assert_eq!(r.pauses(), 1);
        let called = Cell::new(false);
        let paused = r.try_read(|c| {
            called.set(true);
            one(c)
        });
        assert_eq!(paused, None);
        assert!(!called.get());
        let first = r
            .paused_until
            .load(Ordering::Relaxed)
            .saturating_sub(nanos_since(r.epoch));
        assert!(
            first > 0 && first <= FIRST_PAUSE.as_nanos() as u64,
            "{first}"
        );
        assert_eq!(r.pauses(), 1);
        // A second slow read in a row pauses twice as long.
        r.paused_until.store(0, Ordering::Relaxed);
        let _ = r.try_read(|c| {
            std::thread::sleep(SLOW_READ * 2);
            one(c)
        });
        let second = r
            .paused_until
            .load(Ordering::Relaxed)
            .saturating_sub(nanos_since(r.epoch));
        assert!(second > FIRST_PAUSE.as_nanos() as u64, "{second}");
        assert!(second <= 2 * FIRST_PAUSE.as_nanos() as u64, "{second}");
        // A read that is not slow ends the series.
        r.paused_until.store(0, Ordering::Relaxed);
        assert_eq!(r.try_read(one), Some(1));
        assert_eq!(r.slow_in_a_row.load(Ordering::Relaxed), 0);
        assert_eq!(r.pauses(), 2);
    }
}
