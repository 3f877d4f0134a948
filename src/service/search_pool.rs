//! The threads that run searches. A search is CPU work that reuses per-thread scratch (a score per
//! article, a visited set over the graph: about 10 MB per thread at a million articles). On tokio's blocking
//! pool, eight concurrent calls ran on eight or more threads sharing two cores, each with scratch of its
//! own, and a call often landed on a thread whose scratch had gone cold. Here a fixed set of threads, one
//! per core by default, takes searches from one queue; calls beyond them wait in it. An idle thread
//! blocks on the queue rather than spinning, so it takes no CPU from the network threads (a rayon pool,
//! tried first, spins while idle and made single calls slower on two cores).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of search threads fed from one queue; they stop when the pool is dropped.
pub struct SearchPool {
    jobs: mpsc::Sender<Job>,
}

impl SearchPool {
    /// Starts `threads` threads (0: one per core).
    pub fn new(threads: usize) -> Result<Self> {
        let threads = match threads {
            0 => thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for number in 0..threads {
            let queue = Arc::clone(&queue);
            thread::Builder::new()
                .name(format!("weitere-search-{number}"))
                .spawn(move || run_jobs(&queue))
                .map_err(|err| Error::invalid("query_threads", format!("cannot start search thread: {err}")))?;
        }
        Ok(Self { jobs })
    }

    /// Queues `job`; it runs on the first free search thread.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        // The threads only stop once this sender is dropped, so the queue is open while `self` lives.
        let _ = self.jobs.send(Box::new(job));
    }
}

/// Runs queued jobs until the pool is dropped. A job that panics is logged and dropped (its caller sees
/// its answer channel close); the thread goes on with the next one.
fn run_jobs(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // Only the receiving is under the lock: the job runs after it is released.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("a search panicked; its call fails with INTERNAL");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_job_and_survives_a_panicking_one() {
        let pool = SearchPool::new(2).unwrap();
        pool.spawn(|| panic!("a failing search"));
        let (sender, answers) = mpsc::channel();
        for n in 0..20 {
            let sender = sender.clone();
            pool.spawn(move || sender.send(n).unwrap());
        }
        let mut received: Vec<i32> = (0..20).map(|_| answers.recv().unwrap()).collect();
        received.sort_unstable();
        assert_eq!(received, (0..20).collect::<Vec<_>>());
    }
}
