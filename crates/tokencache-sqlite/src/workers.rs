//! The threads that run a cache's blocking SQLite work, off the async executor.
//!
//! They share one queue (a mutex and a condition variable): a queued job wakes one
//! sleeping thread at most, and the thread that takes it wakes no other. (With one
//! channel receiver behind a mutex, as before, the thread that took a job released the
//! mutex before running it, which woke the next idle thread, a futex wake on the path of
//! every job, 8-9 µs on a small virtual machine, only for that thread to poll while the
//! job ran.)
//!
//! An idle thread sleeps at once; it does not poll the queue for a moment first. The
//! thread that answered a job and then polled held a core that the task it had just
//! answered needed: on a 2-vCPU machine that task resumed 40-85 µs after its answer
//! instead of 7-40 µs (a `set` took 1.1-1.2x a raw upsert in `spawn_blocking` instead of
//! 0.9-1.1x), while back-to-back reads on the threads were no faster for the polling
//! (medians 18-35 µs either way).

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};

use tokencache_core::{Error, Result};
use tokio::sync::oneshot;

use crate::pool::lock;

type Job = Box<dyn FnOnce() + Send>;

/// The threads that run a cache's blocking work, fed by one queue. They stop when the
/// last handle on the cache is dropped (once they have run every job queued by then).
#[derive(Clone)]
pub(crate) struct Workers(Arc<Handle>);

/// Shared by the clones of [`Workers`]: closes the queue when the last one is dropped.
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.0.state).closed = true;
        self.0.ready.notify_all();
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when a job is queued while a thread sleeps.
    ready: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Idle threads waiting on [`Shared::ready`].
    sleeping: usize,
    /// Every handle is dropped: the threads stop once the queue is empty.
    closed: bool,
}

impl Workers {
    pub(crate) fn start(n: usize) -> Result<Workers> {
        let shared = Arc::new(Shared::default());
        // Made first, so that the threads already started stop if one cannot start.
        let workers = Workers(Arc::new(Handle(shared.clone())));
        for i in 0..n {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("tokencache-sqlite-{i}"))
                .spawn(move || {
                    while let Some(job) = next_job(&shared) {
                        // A panicking job must not stop the thread: its caller sees the
                        // dropped reply channel instead.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .map_err(|e| {
                    Error::unexpected("cannot start a SQLite worker thread").with_source(e)
                })?;
        }
        Ok(workers)
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
        let shared = &self.0 .0;
        let mut state = lock(&shared.state);
        if state.closed {
            // Unreachable while a handle exists: an error rather than a job never run.
            return Err(Error::unexpected("the SQLite worker threads have stopped"));
        }
        state.jobs.push_back(Box::new(f));
        // A busy thread takes the job when it is done; a sleeping one is woken for it.
        let wake = state.sleeping > 0;
        drop(state);
        if wake {
            shared.ready.notify_one();
        }
        Ok(())
    }
}

/// The next job (`None` once every handle is dropped and the queue is empty), waited for.
fn next_job(shared: &Shared) -> Option<Job> {
    let mut state = lock(&shared.state);
    state.sleeping += 1;
    let mut state = shared
        .ready
        .wait_while(state, |s| s.jobs.is_empty() && !s.closed)
        .unwrap_or_else(|e| e.into_inner());
    state.sleeping -= 1;
    state.jobs.pop_front()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_job_runs_once_from_many_threads_and_a_panic_stops_no_thread() {
        let workers = Workers::start(2).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let (done, finished) = mpsc::channel();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (workers, ran, done) = (workers.clone(), ran.clone(), done.clone());
                s.spawn(move || {
                    for i in 0..500 {
                        let (ran, done) = (ran.clone(), done.clone());
                        workers
                            .spawn(move || {
                                ran.fetch_add(1, Ordering::Relaxed);
                                done.send(()).unwrap();
                                assert!(i % 250 != 7, "a job that panics (on purpose)");
                            })
                            .unwrap();
                        if i % 50 == 0 {
                            // Now and then the threads go idle and must be woken.
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                });
            }
        });
        for _ in 0..2_000 {
            finished
                .recv_timeout(Duration::from_secs(10))
                .expect("a queued job never ran");
        }
        assert_eq!(ran.load(Ordering::Relaxed), 2_000);
    }

    #[test]
    fn jobs_queued_before_the_last_handle_drops_still_run() {
        let workers = Workers::start(1).unwrap();
        let (done, finished) = mpsc::channel();
        let (release, wait) = mpsc::channel::<()>();
        // The one thread is busy while the rest is queued and the handle dropped.
        workers
            .spawn(move || wait.recv_timeout(Duration::from_secs(10)).unwrap())
            .unwrap();
        for i in 0..10 {
            let done = done.clone();
            workers.spawn(move || done.send(i).unwrap()).unwrap();
        }
        let shared = Arc::downgrade(&workers.0 .0);
        drop(workers);
        release.send(()).unwrap();
        let got: Vec<i32> = (0..10)
            .map(|_| finished.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        // Then the thread stops, and lets go of the queue.
        let start = std::time::Instant::now();
        while shared.upgrade().is_some() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the thread runs on"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(done);
    }
}
