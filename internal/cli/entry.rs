//! The process entry of both binaries, without std's runtime start-up.
//!
//! Both binaries are `#![no_main]` and export a C `main` that calls [`run`]. std's own start
//! (`lang_start`) would also install the main thread's stack-overflow guard, which on glibc
//! asks `pthread_getattr_np`, which reads and `sscanf`s all of `/proc/self/maps`: about a fifth
//! of the instructions of `run-agent --version`, paid again by every `run-agent bus post` an
//! agent runs. [`run`] keeps everything else std's start guarantees:
//! - file descriptors 0, 1 and 2 are open (on `/dev/null` when the parent closed one), so no
//!   file or socket opened later becomes "stdout";
//! - `SIGPIPE` is ignored, so writing to a closed pipe is an `EPIPE` error, not a silent kill
//!   (child processes still start with the default disposition: std resets it on spawn);
//! - a panic escaping the command prints its message (the panic hook) and exits with 101;
//! - stdout is flushed at exit (`std::process::exit` runs std's clean-up).
//!
//! Threads spawned later get std's guard and stack-overflow message as before; only the main
//! thread's overflow ends in a plain `SIGSEGV`, without the message.

use std::process::ExitCode;

/// Prepares the process as std's start would, runs `command` and exits with its status.
pub fn run(command: fn() -> ExitCode) -> ! {
    open_standard_descriptors();
    // SAFETY: setting a signal's disposition to "ignore" before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let status = match std::panic::catch_unwind(command) {
        Ok(code) => status_number(code),
        // The hook has printed the panic; 101 is what std's start returns for it.
        Err(_) => 101,
    };
    // `exit` runs std's clean-up (flushes stdout) before the C `exit`.
    std::process::exit(status)
}

/// The exit status an [`ExitCode`] stands for (std keeps the number private; every code a
/// command returns is `ExitCode::from(u8)` or one of the constants, which are 0 and 1).
fn status_number(code: ExitCode) -> i32 {
    (0..=u8::MAX)
        .find(|&n| ExitCode::from(n) == code)
        .map_or(1, i32::from)
}

/// Opens `/dev/null` on each of the descriptors 0, 1 and 2 that is closed.
fn open_standard_descriptors() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of three pollfd for the duration of the call.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    for entry in fds {
        let closed = if polled < 0 {
            // poll itself failed (for example EINTR): ask each descriptor.
            // SAFETY: F_GETFD only reads the descriptor's flags.
            let flags = unsafe { libc::fcntl(entry.fd, libc::F_GETFD) };
            flags < 0
        } else {
            entry.revents & libc::POLLNVAL != 0
        };
        if closed {
            // SAFETY: a constant NUL-terminated path; the lowest free descriptor is the closed
            // one, as every lower one is open.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if fd < 0 {
                // Without it, a later file would become this descriptor: refuse to run.
                std::process::abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_code_maps_to_its_number() {
        for n in 0..=u8::MAX {
            assert_eq!(status_number(ExitCode::from(n)), i32::from(n));
        }
        assert_eq!(status_number(ExitCode::SUCCESS), 0);
        assert_eq!(status_number(ExitCode::FAILURE), 1);
    }
}
