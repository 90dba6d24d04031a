//! The threads that run a cache's blocking SQLite work, off the async executor.

use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tokencache_core::{Error, Result};
use tokio::sync::oneshot;

use crate::pool::lock;

type Job = Box<dyn FnOnce() + Send>;

/// The threads that run a cache's blocking work, fed by one channel. They stop when the
/// last handle on the cache is dropped (the channel closes).
#[derive(Clone)]
pub(crate) struct Workers(mpsc::Sender<Job>);

impl Workers {
    pub(crate) fn start(n: usize) -> Result<Workers> {
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
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.spawn(move || {
            let _ = tx.send(f());
        })?;
        rx.await
            .map_err(|_| Error::unexpected("a SQLite operation panicked"))?
    }

    /// Hands `f` to a worker thread without waiting for it.
    pub(crate) fn spawn(&self, f: impl FnOnce() + Send + 'static) -> Result<()> {
        self.0
            .send(Box::new(f))
            .map_err(|_| Error::unexpected("the SQLite worker threads have stopped"))
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
