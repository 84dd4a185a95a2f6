//! A thread's CPU priority: background work (index scans, hashing the executable, a
//! supervisor's bookkeeping, a task loop's completion) steps down so it yields to the server's
//! request handling. Linux keeps a nice value per thread.

use nix::errno::Errno;

/// Lowers the calling thread's CPU priority by `steps` nice levels (at most to 19), for work
/// that should yield to the server's request handling. Threads and processes started by the
/// thread afterwards inherit it, and an unprivileged thread cannot raise it again, so call it
/// only once nothing that must run at normal priority is left to start. Failure is logged.
pub fn lower_thread_priority(steps: i32) {
    // -1 is a valid priority: errno tells an error apart.
    Errno::clear();
    // SAFETY: getpriority with PRIO_PROCESS and who = 0 (on Linux: the calling thread) only
    // reads a number.
    let now = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    if now == -1 && Errno::last() != Errno::UnknownErrno {
        tracing::debug!("cannot read the thread's priority: {}", Errno::last());
        return;
    }
    // SAFETY: setpriority with PRIO_PROCESS and who = 0 only sets the calling thread's nice.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, (now + steps).min(19)) } != 0 {
        tracing::debug!("cannot lower the thread's priority: {}", Errno::last());
    }
}
