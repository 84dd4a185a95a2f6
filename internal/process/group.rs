//! Process groups: starting a command in a new session (so it leads its own process group),
//! signalling a whole group, and asking whether a group still has a member that runs.
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

/// Makes the calling process the leader of a new session and process group (pgid = its pid),
/// detached from any terminal, with an empty signal mask — what [`new_session`] does for a
/// child, done by the child itself. A long-running process that starts many children (the
/// server) spawns them without a `pre_exec` closure, so the standard library can use
/// `posix_spawn` (no copy of the parent's page tables, no stall of its other threads); the
/// child then calls this first thing. Already leading a session is not an error.
pub fn lead_own_session() -> Result<(), Errno> {
    match nix::unistd::setsid() {
        Ok(_) => {}
        // EPERM: already a process-group leader (started with `new_session`, or a shell job).
        Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    SigSet::empty().thread_set_mask()
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
    fn a_child_that_leads_its_own_session_is_signalled_as_a_group() {
        // The child runs the helper itself (here just before exec; the supervisor at start).
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exec sleep 30"]);
        // SAFETY: the closure only calls async-signal-safe functions (setsid, sigprocmask).
        unsafe {
            cmd.pre_exec(|| lead_own_session().map_err(std::io::Error::from));
        }
        let mut child = cmd.spawn().unwrap();
        let pid = i64::from(child.id());
        let sid = nix::unistd::getsid(Some(Pid::from_raw(pid as i32))).unwrap();
        assert_eq!(i64::from(sid.as_raw()), pid);
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
