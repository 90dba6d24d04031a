//! [`SqliteStats`]: counts of where a cache's reads ran and how its writes were grouped.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a [`SqliteCache`](crate::SqliteCache) (and its clones) did since it was opened:
/// where its reads ran and how its writes were grouped into transactions. Counters only,
/// no keys or values; for tuning and tests.
///
/// - `get` and `keys_with_prefix` run on the calling task when they can (`inline_reads`),
///   else on the cache's threads (`worker_reads`): inline reads are off, every inline
///   connection was in use, the read met a lock or its time bound, or the inline path
///   was paused after a slow read (`inline_pauses`).
/// - `set`, `remove` and `remove_many` are queued (`queued_writes`) and committed in
///   groups (`batches`: one transaction each); `batch_retries` counts the groups that
///   failed as a whole and were redone one transaction per write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteStats {
    /// Reads answered on the calling task.
    pub inline_reads: u64,
    /// Reads answered by the cache's threads.
    pub worker_reads: u64,
    /// How many times a slow inline read (the disk, a lock SQLite waited for on its own,
    /// or a machine so loaded that the thread was not running) sent every read to the
    /// cache's threads for a while (100 ms, doubled for each slow read in a row).
    pub inline_pauses: u64,
    /// Writes that went through the group-commit queue.
    pub queued_writes: u64,
    /// Transactions that committed queued writes (or tried to: a group whose write lock
    /// could not be had counts too).
    pub batches: u64,
    /// Groups that failed as a whole and were redone one write per transaction.
    pub batch_retries: u64,
    /// The most writes one group held.
    pub largest_batch: u64,
}

/// The counters behind [`SqliteStats`].
#[derive(Default)]
pub(crate) struct Counters {
    inline_reads: AtomicU64,
    worker_reads: AtomicU64,
    queued_writes: AtomicU64,
    batches: AtomicU64,
    batch_retries: AtomicU64,
    largest_batch: AtomicU64,
}

impl Counters {
    pub(crate) fn inline_read(&self) {
        self.inline_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn worker_read(&self) {
        self.worker_reads.fetch_add(1, Ordering::Relaxed);
    }

    /// A group of `writes` queued writes taken by a flush.
    pub(crate) fn batch(&self, writes: usize) {
        let writes = writes as u64;
        self.queued_writes.fetch_add(writes, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.largest_batch.fetch_max(writes, Ordering::Relaxed);
    }

    pub(crate) fn batch_retry(&self) {
        self.batch_retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts, with `inline_pauses` as the inline readers count them.
    pub(crate) fn snapshot(&self, inline_pauses: u64) -> SqliteStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SqliteStats {
            inline_reads: get(&self.inline_reads),
            worker_reads: get(&self.worker_reads),
            inline_pauses,
            queued_writes: get(&self.queued_writes),
            batches: get(&self.batches),
            batch_retries: get(&self.batch_retries),
            largest_batch: get(&self.largest_batch),
        }
    }
}
