//! A fixed set of worker threads that several chunked writers share, so the
//! episode and the segments together never run more encoders than there are
//! cores. Jobs are plain closures, each with a priority: a free worker takes
//! the queued job of lowest priority value, the earliest of equals. Writers
//! that know their length pass how far along it a chunk starts, so the
//! writer furthest behind is served first and writers sharing the pool
//! finish together. Each writer gets its results back on its own channels.

use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::error::{Error, Result};

/// A unit of work: it reports its own result (and its own panic) to whoever
/// waits for it, so the pool only runs it.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Worker threads for [`ChunkedMp3Writer`](super::ChunkedMp3Writer)s.
///
/// Dropping the pool lets the workers finish the jobs already queued, then
/// joins them. Writers borrow the pool, so none can outlive it.
pub struct EncodePool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    /// Queued jobs with their priority and submission number.
    queue: Vec<(f64, u64, Job)>,
    submitted: u64,
    closing: bool,
}

impl State {
    /// Removes and returns the job to run next: lowest priority value, then
    /// earliest submitted.
    fn take(&mut self) -> Option<Job> {
        let next = self
            .queue
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map(|(i, _)| i)?;
        Some(self.queue.swap_remove(next).2)
    }
}

impl Shared {
    /// The queue; a poisoned lock is taken over (jobs run outside it, so
    /// its contents are always consistent).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for EncodePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodePool")
            .field("threads", &self.workers.len())
            .field("queued", &self.shared.lock().queue.len())
            .finish()
    }
}

impl EncodePool {
    /// Starts `threads` worker threads (at least one).
    pub fn new(threads: usize) -> Result<Self> {
        if threads == 0 {
            return Err(Error::Settings(
                "the encoder pool needs at least one thread".into(),
            ));
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: Vec::new(),
                submitted: 0,
                closing: false,
            }),
            wake: Condvar::new(),
        });
        let mut pool = EncodePool {
            shared,
            workers: Vec::with_capacity(threads),
        };
        for i in 0..threads {
            let shared = Arc::clone(&pool.shared);
            let worker = std::thread::Builder::new()
                .name(format!("podstitch-encode-{i}"))
                .spawn(move || work(&shared))
                .map_err(|e| Error::io("encoder pool", "start a thread", e))?;
            pool.workers.push(worker);
        }
        Ok(pool)
    }

    /// Starts one worker per core (`std::thread::available_parallelism`,
    /// or one when that is unknown).
    pub fn with_available_parallelism() -> Result<Self> {
        EncodePool::new(std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Queues a job; queued jobs run lowest `priority` first, equals in
    /// the order submitted.
    pub(crate) fn submit(&self, job: Job, priority: f64) {
        let mut state = self.shared.lock();
        let n = state.submitted;
        state.submitted += 1;
        state.queue.push((priority, n, job));
        drop(state);
        self.shared.wake.notify_one();
    }
}

impl Drop for EncodePool {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_all();
        for worker in self.workers.drain(..) {
            // A worker cannot panic (jobs run under catch_unwind), so there
            // is no payload to pass on.
            let _ = worker.join();
        }
    }
}

/// A worker: runs jobs until the pool closes and the queue is empty.
fn work(shared: &Shared) {
    loop {
        let job = {
            let mut state = shared.lock();
            loop {
                if let Some(job) = state.take() {
                    break Some(job);
                }
                if state.closing {
                    break None;
                }
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        match job {
            // A job reports its own panics; this catch only keeps the
            // worker alive for the next job if one slips through.
            Some(job) => drop(catch_unwind(AssertUnwindSafe(job))),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_jobs_on_its_threads_and_survives_panics() {
        let pool = EncodePool::new(2).unwrap();
        assert_eq!(pool.threads(), 2);
        let (tx, rx) = mpsc::channel();
        for i in 0..20 {
            let tx = tx.clone();
            let job = Box::new(move || {
                if i == 3 {
                    panic!("job {i} fails");
                }
                let name = std::thread::current().name().map(str::to_owned);
                tx.send((i, name)).unwrap();
            });
            pool.submit(job, 0.0);
        }
        drop(tx);
        let mut got: Vec<_> = rx.iter().collect();
        got.sort();
        assert_eq!(got.len(), 19, "every job but the panicking one reported");
        assert!(got.iter().all(|(_, n)| n
            .as_deref()
            .is_some_and(|n| n.starts_with("podstitch-encode-"))));
    }

    #[test]
    fn drop_finishes_queued_jobs_and_joins() {
        let done = Arc::new(Mutex::new(0));
        {
            let pool = EncodePool::new(1).unwrap();
            for _ in 0..5 {
                let done = Arc::clone(&done);
                let job = Box::new(move || {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    *done.lock().unwrap() += 1;
                });
                pool.submit(job, 0.0);
            }
        }
        assert_eq!(*done.lock().unwrap(), 5);
        assert!(EncodePool::new(0).is_err());
        assert!(EncodePool::with_available_parallelism().unwrap().threads() >= 1);
    }

    #[test]
    fn runs_lowest_priority_value_first_then_in_order() {
        let pool = EncodePool::new(1).unwrap();
        // Hold the only worker until everything is queued.
        let (go_tx, go_rx) = mpsc::channel::<()>();
        pool.submit(
            Box::new(move || {
                go_rx.recv().unwrap();
            }),
            0.0,
        );
        let order = Arc::new(Mutex::new(Vec::new()));
        for (name, priority) in [("a", 0.5), ("b", 0.25), ("c", 0.5), ("d", 0.0), ("e", 0.25)] {
            let order = Arc::clone(&order);
            pool.submit(Box::new(move || order.lock().unwrap().push(name)), priority);
        }
        go_tx.send(()).unwrap();
        drop(pool);
        assert_eq!(*order.lock().unwrap(), ["d", "b", "e", "a", "c"]);
    }
}
