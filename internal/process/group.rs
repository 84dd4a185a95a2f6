//! Process groups: starting a command in a new session (so it leads its own process group),
//! leading a group of one's own, signalling a whole group, and asking whether a group still
//! has a member that runs.
//! The only `unsafe` of the module lives here.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;

use super::proc_stat;

/// Makes `cmd` call `setsid()` in the child before exec: the child becomes the leader of a
/// new session and process group (pgid = its pid), detached from the caller's terminal.
/// The child's signal mask is also cleared: a foreground `job`/`task` blocks SIGINT/SIGTERM
/// for its signal thread, and a blocked mask would otherwise be inherited by the agent.
pub fn new_session(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure runs between fork and exec and only calls `setsid` and
    // `pthread_sigmask`, which are async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            SigSet::empty()
                .thread_set_mask()
                .map_err(std::io::Error::from)?;
            Ok(())
        })
    }
}

/// Makes the calling process the leader of a new process group (pgid = its pid), without a
/// controlling terminal and with an empty signal mask, while it stays in its starter's session.
///
/// This is what the supervisor does first thing. A long-running process that starts many
/// children (the server) spawns them without a `pre_exec` closure, so the standard library can
/// use `posix_spawn` (no copy of the parent's page tables, no stall of its other threads).
///
/// - Its own group: the terminal's Ctrl-C (sent to the foreground group) does not reach it,
///   and a REST run (the supervisor is the agent) is stopped by signalling that group.
/// - No controlling terminal: writing a warning to an inherited terminal never stops it
///   (`SIGTTOU`), and a hang-up of that terminal is not its concern.
/// - The starter's session: under the kernel's autogroup scheduling every session is one
///   scheduling group weighing as much as any other, so hundreds of supervisors, each in a
///   session of its own, left the server a few hundredths of the CPU when their runs ended
///   together. In the server's session their weight is their threads' (see
///   [`super::priority::lower_thread_priority`]). The agent still gets a session of its own
///   ([`new_session`]).
///
/// Already leading a group or a session is not an error.
pub fn lead_own_group() -> Result<(), Errno> {
    let me = Pid::from_raw(0);
    match nix::unistd::setpgid(me, me) {
        Ok(()) => {}
        // EPERM: a session leader (started with `new_session`) already leads its group.
        Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    give_up_controlling_terminal();
    SigSet::empty().thread_set_mask()
}

/// Detaches the calling process from its controlling terminal, if it has one and does not
/// lead the session (a session leader giving it up would hang up the foreground group).
fn give_up_controlling_terminal() {
    let leads_session = nix::unistd::getsid(None).is_ok_and(|sid| sid == nix::unistd::getpid());
    if leads_session {
        return;
    }
    // SAFETY: `open` of a NUL-terminated literal, then `ioctl(TIOCNOTTY)` and `close` on the
    // descriptor just opened; no memory is shared with Rust code.
    unsafe {
        let fd = libc::open(
            c"/dev/tty".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            libc::ioctl(fd, libc::TIOCNOTTY);
            libc::close(fd);
        }
    }
}

/// Sends `signal` to every process of group `pgid`. A missing group is not an error; group
/// ids 0 and 1 (the caller's own group, init) are refused.
pub fn signal_group(pgid: i64, signal: Signal) -> Result<(), Errno> {
    let raw = group_id(pgid).ok_or(Errno::EINVAL)?;
    match kill(Pid::from_raw(-raw), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether group `pgid` has a member that has not exited. `kill(-pgid, 0)` also succeeds
/// for a group of zombies, so the members are looked up in /proc; where /proc is unreadable,
/// `kill` alone decides.
pub fn group_alive(pgid: i64) -> bool {
    let Some(raw) = group_id(pgid) else {
        return false;
    };
    if !matches!(kill(Pid::from_raw(-raw), None), Ok(()) | Err(Errno::EPERM)) {
        return false;
    }
    let Some(pids) = proc_stat::pids() else {
        return true;
    };
    pids.into_iter()
        .filter_map(proc_stat::read)
        .any(|stat| stat.pgrp == raw && !stat.has_exited())
}

fn group_id(pgid: i64) -> Option<i32> {
    i32::try_from(pgid).ok().filter(|g| *g > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_leads_its_own_group_stays_in_the_session_and_is_signalled_as_a_group() {
        // The child runs the helper itself (here just before exec; the supervisor at start).
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exec sleep 30"]);
        // SAFETY: the closure only calls async-signal-safe functions (setpgid, getsid, open,
        // ioctl, close, sigprocmask).
        unsafe {
            cmd.pre_exec(|| lead_own_group().map_err(std::io::Error::from));
        }
        let mut child = cmd.spawn().unwrap();
        let pid = i64::from(child.id());
        let child_pid = Pid::from_raw(pid as i32);
        assert_eq!(
            i64::from(nix::unistd::getpgid(Some(child_pid)).unwrap().as_raw()),
            pid
        );
        let sid = nix::unistd::getsid(Some(child_pid)).unwrap();
        assert_eq!(sid, nix::unistd::getsid(None).unwrap(), "left the session");
        signal_group(pid, Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        assert!(!group_alive(pid));
    }

    #[test]
    fn session_child_leads_its_group_and_dies_by_group_signal() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut child = new_session(&mut cmd).spawn().unwrap();
        let pid = i64::from(child.id());
        let pgid = nix::unistd::getpgid(Some(Pid::from_raw(pid as i32))).unwrap();
        assert_eq!(i64::from(pgid.as_raw()), pid);
        assert!(group_alive(pid));
        signal_group(pid, Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        assert!(!group_alive(pid));
        assert!(signal_group(1, Signal::SIGTERM).is_err());
        assert!(signal_group(0, Signal::SIGTERM).is_err());
        assert!(!group_alive(1));
    }
}
