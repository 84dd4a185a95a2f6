//! Process-group plumbing: starting a command in a new session (so it leads its own process
//! group), signalling a whole group, and asking whether a group still has members.
//! The only `unsafe` of the runner lives here.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;

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

/// Sends `signal` to every process of group `pgid`. A missing group is not an error.
pub fn signal_group(pgid: i64, signal: Signal) -> Result<(), Errno> {
    let Ok(raw) = i32::try_from(pgid) else {
        return Err(Errno::EINVAL);
    };
    if raw <= 1 {
        return Err(Errno::EINVAL);
    }
    match kill(Pid::from_raw(-raw), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether group `pgid` has a member that is not a zombie.
pub fn group_alive(pgid: i64) -> bool {
    let Ok(raw) = i32::try_from(pgid) else {
        return false;
    };
    if raw <= 1 {
        return false;
    }
    match kill(Pid::from_raw(-raw), None) {
        Ok(()) | Err(Errno::EPERM) => group_has_live_member(raw),
        Err(_) => false,
    }
}

/// `kill(-pgid, 0)` also succeeds for a group of zombies; look in /proc for a member that is
/// not one. When /proc is unreadable, trust `kill`.
fn group_has_live_member(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        // After ") ": state, ppid, pgrp, …
        let mut fields = stat[close + 1..].split_whitespace();
        let state = fields.next();
        let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        if group == Some(pgid) && state != Some("Z") && state != Some("X") {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
