//! Commands that only print end quietly when their reader goes away (`run-agent list | head`),
//! as Unix tools do, instead of panicking on a broken pipe.
//!
//! Rust ignores `SIGPIPE`, so a write to a closed pipe is an `EPIPE` error that `println!` turns
//! into a panic. Printing commands restore the default action: the process ends by the signal,
//! which shells treat as a normal end of a pipeline. Commands that supervise agents or serve
//! keep ignoring it — a closed pipe to an agent must be an error they handle, never their death
//! (sockets are unaffected either way: they are written with `MSG_NOSIGNAL`).

/// Restores the default `SIGPIPE` action for a command that only prints.
pub fn die_quietly_on_closed_stdout() {
    // SAFETY: setting a signal disposition to SIG_DFL at start-up, before any thread exists,
    // has no memory-safety requirement.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
