//! Group commit: `set`, `remove` and `remove_many` queue their write and one worker
//! commits every write queued at that moment in one transaction, so that one commit (one
//! fsync of the WAL with `synchronous=FULL`) serves them all.
//!
//! A write is queued with a reply channel; the write that finds no flush scheduled
//! schedules one on a worker thread. The flush takes the writer connection and the
//! database's write lock (`BEGIN IMMEDIATE`, retried while another process holds it)
//! *first*, then takes everything queued by then: writes that arrive while a commit is
//! under way (or while the lock is waited for) wait for the next flush, which takes them
//! all at once. Each write is answered only once the transaction that holds it has
//! committed, so an acknowledged write is as durable as an unbatched one. Before it takes
//! the lock, a flush may wait a moment (at most 1 ms, and the time of the last commit)
//! for as many writes as the groups before it held, so that concurrent writers share one
//! group instead of taking turns in two; a lone writer never waits.
//!
//! Set and remove are idempotent, so a batch that fails (one bad write, or a failed
//! commit) is rolled back and its writes redone one transaction each: every write gets its
//! own outcome, and one write's error never fails its neighbours.
//!
//! `update`, the lease operations, `remove_prefix`, `purge` and `rotate` are not queued:
//! they run their own `BEGIN IMMEDIATE` transaction on the same writer connection.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{params, Transaction};
use tokencache_core::{Error, Result};
use tokio::sync::oneshot;

use crate::cache::{Inner, SqliteCache};
use crate::error::map_err;
use crate::pool::{begin_immediate, lock, retry_busy};
use crate::rows::{DELETE, UPSERT};

/// One queued write.
pub(crate) enum WriteOp {
    /// Stores an encoded value (and the plaintext metadata `purge` reads).
    Put {
        key: String,
        bytes: Vec<u8>,
        expires_at: Option<i64>,
        has_refresh_token: bool,
    },
    /// Removes these keys (missing keys are no error).
    Remove(Vec<Arc<str>>),
}

impl WriteOp {
    fn apply(&self, tx: &Transaction<'_>) -> Result<()> {
        match self {
            WriteOp::Put {
                key,
                bytes,
                expires_at,
                has_refresh_token,
            } => tx
                .prepare_cached(UPSERT)
                .and_then(|mut s| s.execute(params![key, bytes, expires_at, has_refresh_token]))
                .map(drop),
            WriteOp::Remove(keys) => tx.prepare_cached(DELETE).and_then(|mut s| {
                for key in keys {
                    s.execute([&**key])?;
                }
                Ok(())
            }),
        }
        .map_err(map_err)
    }

    /// Whether the write stores a value encoded under the active key (whose key check
    /// it must then record).
    fn writes_value(&self) -> bool {
        matches!(self, WriteOp::Put { .. })
    }
}

/// Where a queued write's outcome goes.
type Reply = oneshot::Sender<Result<()>>;

struct Queued {
    op: WriteOp,
    reply: Reply,
}

/// The longest a flush waits for writers to join its group (see [`WriteQueue::gather`]).
const MAX_GATHER: Duration = Duration::from_millis(1);

/// The writes waiting for a flush.
#[derive(Default)]
pub(crate) struct WriteQueue {
    state: Mutex<QueueState>,
    /// Signalled on every write queued while a flush gathers.
    arrived: Condvar,
}

#[derive(Default)]
struct QueueState {
    queued: Vec<Queued>,
    /// A flush is scheduled that has not yet taken the queue.
    flush_scheduled: bool,
    /// A flush waits in [`WriteQueue::gather`].
    gathering: bool,
    /// How many writes the last two groups held.
    recent: [usize; 2],
    /// How long the last group took to commit.
    last_commit: Duration,
}

impl WriteQueue {
    /// Queues `op`; the receiver gets its outcome. `true` when the caller must schedule a
    /// flush (none is scheduled that will take this write).
    fn push(&self, op: WriteOp) -> (oneshot::Receiver<Result<()>>, bool) {
        let (reply, rx) = oneshot::channel();
        let mut state = lock(&self.state);
        state.queued.push(Queued { op, reply });
        let schedule = !state.flush_scheduled;
        state.flush_scheduled = true;
        let gathering = state.gathering;
        drop(state);
        if gathering {
            self.arrived.notify_one();
        }
        (rx, schedule)
    }

    /// Waits until as many writes are queued as the larger of the last two groups held,
    /// for at most [`MAX_GATHER`] and the last commit's time.
    ///
    /// Writers that were answered a moment ago (those of the group before) queue their
    /// next write while the flush waits; without the wait, concurrent writers split into
    /// two groups that take turns, each waiting for a whole commit of the other. A lone
    /// writer's group holds one write, so it never waits; when writers stop, a group
    /// waits at most one commit's time, twice, before the groups it expects shrink.
    fn gather(&self) {
        let mut state = lock(&self.state);
        let wanted = state.recent[0].max(state.recent[1]);
        let wait = MAX_GATHER.min(state.last_commit);
        if state.queued.len() >= wanted || wait.is_zero() {
            return;
        }
        state.gathering = true;
        let (mut state, _) = self
            .arrived
            .wait_timeout_while(state, wait, |s| s.queued.len() < wanted)
            .unwrap_or_else(|e| e.into_inner());
        state.gathering = false;
    }

    /// Everything queued; the next write schedules the next flush.
    fn take(&self) -> Vec<Queued> {
        let mut state = lock(&self.state);
        state.flush_scheduled = false;
        let taken = std::mem::take(&mut state.queued);
        state.recent = [taken.len(), state.recent[0]];
        taken
    }

    /// Records how long a group took to commit.
    fn committed(&self, took: Duration) {
        lock(&self.state).last_commit = took;
    }
}

/// An error of the same kind and message as `e`, for each of the writes it fails.
fn same_error(e: &Error) -> Error {
    let copy = Error::new(e.kind(), e.message().to_owned());
    if e.is_temporary() {
        copy.temporary()
    } else {
        copy
    }
}

impl SqliteCache {
    /// Queues `op` for the next group commit and waits, without blocking, until the
    /// transaction that holds it has committed (or it failed).
    pub(crate) async fn write_queued(&self, op: WriteOp) -> Result<()> {
        let (outcome, schedule) = self.inner.queue.push(op);
        if schedule {
            let inner = self.inner.clone();
            let flush = move || {
                let replies = std::panic::catch_unwind(AssertUnwindSafe(|| inner.flush()))
                    .unwrap_or_else(|_| {
                        // Whatever it had taken is answered by the dropped reply channels;
                        // what it had not is answered here, or it would wait forever for a
                        // flush that is scheduled no more.
                        let failed = || Error::unexpected("a SQLite write panicked");
                        let queued = inner.queue.take().into_iter();
                        queued.map(|q| (q.reply, Err(failed()))).collect()
                    });
                // Answer only once this thread no longer holds the cache, so that a cache
                // dropped after its last write has closed its connections.
                drop(inner);
                for (reply, outcome) in replies {
                    let _ = reply.send(outcome);
                }
            };
            if let Err(e) = self.workers.spawn(flush) {
                for q in self.inner.queue.take() {
                    let _ = q.reply.send(Err(same_error(&e)));
                }
            }
        }
        outcome
            .await
            .map_err(|_| Error::unexpected("a SQLite write panicked"))?
    }
}

impl Inner {
    /// On a worker thread: commits everything queued, in one transaction if it can, and
    /// returns each write's reply channel with its outcome.
    fn flush(&self) -> Vec<(Reply, Result<()>)> {
        let conn = self.conns.writer();
        let timeout = self.conns.busy_timeout();
        self.queue.gather();
        // The write lock first: what arrives while it is waited for joins this batch.
        let began = retry_busy(timeout, || begin_immediate(&conn));
        let start = Instant::now();
        let batch = self.queue.take();
        if batch.is_empty() {
            return Vec::new(); // (`began` rolls back when dropped)
        }
        self.stats.batch(batch.len());
        let tx = match began {
            Ok(tx) => tx,
            Err(e) => {
                return batch
                    .into_iter()
                    .map(|q| (q.reply, Err(same_error(&e))))
                    .collect()
            }
        };
        let outcome = self.commit(tx, &batch);
        self.queue.committed(start.elapsed());
        match outcome {
            Ok(()) => batch.into_iter().map(|q| (q.reply, Ok(()))).collect(),
            Err(e) if batch.len() == 1 => batch
                .into_iter()
                .zip([Err(e)])
                .map(|(q, outcome)| (q.reply, outcome))
                .collect(),
            Err(e) => {
                // Rolled back (the transaction was dropped): one transaction per write.
                tracing::debug!(
                    writes = batch.len(),
                    error = %e,
                    "a batch of writes failed; committing them one by one"
                );
                self.stats.batch_retry();
                batch
                    .into_iter()
                    .map(|q| {
                        let one = std::slice::from_ref(&q);
                        let outcome =
                            retry_busy(timeout, || self.commit(begin_immediate(&conn)?, one));
                        (q.reply, outcome)
                    })
                    .collect()
            }
        }
    }

    /// Applies `batch` in `tx` and commits; on an error, `tx` rolls back.
    fn commit(&self, tx: Transaction<'_>, batch: &[Queued]) -> Result<()> {
        let writes_value = batch.iter().any(|q| q.op.writes_value());
        if writes_value {
            self.record_key_check(&tx)?;
        }
        for q in batch {
            q.op.apply(&tx)?;
        }
        tx.commit().map_err(map_err)?;
        if writes_value {
            self.key_check_recorded();
        }
        Ok(())
    }
}
