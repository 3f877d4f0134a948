//! Background work at a lower CPU priority than serving, when asked for. A rebuild is the cost of
//! `weitere index` on the live corpus and takes every core for minutes; at a higher nice value it still
//! takes every core that queries and writes leave idle but yields them when those want them. Under load
//! that saturates the machine it then hardly progresses, which is why serving's default is 0 (README).

use crate::error::{Error, Result};

/// A thread pool for background work whose threads run at `niceness` (0 to 19, as for `nice`; higher
/// yields more), one thread per core. Parallel work inside [`rayon::ThreadPool::install`] runs on it.
pub fn low_priority_pool(name: &'static str, niceness: i32) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .thread_name(move |thread| format!("{name}-{thread}"))
        .start_handler(move |_| lower_this_thread(niceness))
        .build()
        .map_err(|err| Error::Index(format!("cannot start the {name} threads: {err}")))
}

/// Sets the calling thread's nice value (on Linux a per-thread attribute). An unprivileged thread may
/// raise it but never lower it again, so this is done only on threads made for background work. A
/// refusal is logged, not fatal: the work then competes with serving at the same priority.
fn lower_this_thread(niceness: i32) {
    // SAFETY: setpriority has no memory-safety preconditions; `who` 0 is the calling thread.
    let refused = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, niceness) } != 0;
    if refused {
        let err = std::io::Error::last_os_error();
        tracing::warn!(%err, niceness, "cannot lower the priority of a background thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice_value_of_this_thread() -> i32 {
        // SAFETY: as above; getpriority only reads.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[test]
    fn work_installed_in_the_pool_runs_at_its_nice_value_and_the_caller_keeps_its_own() {
        let caller = nice_value_of_this_thread();
        let pool = low_priority_pool("test", 7.max(caller)).unwrap();
        let inside = pool.install(|| rayon::join(nice_value_of_this_thread, nice_value_of_this_thread));
        assert_eq!(inside, (7.max(caller), 7.max(caller)));
        assert_eq!(nice_value_of_this_thread(), caller);
    }
}
