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
//! committed, so an acknowledged write is as durable as an unbatched one.
//!
//! Set and remove are idempotent, so a batch that fails (one bad write, or a failed
//! commit) is rolled back and its writes redone one transaction each: every write gets its
//! own outcome, and one write's error never fails its neighbours.
//!
//! `update`, the lease operations, `remove_prefix`, `purge` and `rotate` are not queued:
//! they run their own `BEGIN IMMEDIATE` transaction on the same writer connection.

use std::sync::Mutex;

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
    Remove(Vec<String>),
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
                    s.execute([key])?;
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

/// The writes waiting for a flush.
#[derive(Default)]
pub(crate) struct WriteQueue(Mutex<QueueState>);

#[derive(Default)]
struct QueueState {
    queued: Vec<Queued>,
    /// A flush is scheduled that has not yet taken the queue.
    flush_scheduled: bool,
}

impl WriteQueue {
    /// Queues `op`; the receiver gets its outcome. `true` when the caller must schedule a
    /// flush (none is scheduled that will take this write).
    fn push(&self, op: WriteOp) -> (oneshot::Receiver<Result<()>>, bool) {
        let (reply, rx) = oneshot::channel();
        let mut state = lock(&self.0);
        state.queued.push(Queued { op, reply });
        let schedule = !state.flush_scheduled;
        state.flush_scheduled = true;
        (rx, schedule)
    }

    /// Everything queued; the next write schedules the next flush.
    fn take(&self) -> Vec<Queued> {
        let mut state = lock(&self.0);
        state.flush_scheduled = false;
        std::mem::take(&mut state.queued)
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
                let replies = inner.flush();
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
        // The write lock first: what arrives while it is waited for joins this batch.
        let began = retry_busy(timeout, || begin_immediate(&conn));
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
