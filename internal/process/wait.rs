//! Reaping children (`waitpid`), so exited ones do not linger as zombies.

use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

const POLL: Duration = Duration::from_millis(20);

/// Reaps every child of this process that has already exited; never blocks.
pub fn reap_exited_children() {
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Waits up to `limit` for child `pid` to exit, reaping it. Returns whether it was reaped
/// (or is not a child of this process, so nothing is left to wait for).
pub fn reap_within(pid: u32, limit: Duration) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return true;
    };
    let start = Instant::now();
    loop {
        match waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if start.elapsed() < limit => std::thread::sleep(POLL),
            Ok(WaitStatus::StillAlive) => return false,
            _ => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by reap_within, the function under test
    fn reaps_an_exited_child_and_gives_up_on_a_running_one() {
        let exited = std::process::Command::new("true").spawn().unwrap();
        assert!(reap_within(exited.id(), Duration::from_secs(60)));
        let mut running = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(!reap_within(running.id(), Duration::from_millis(50)));
        running.kill().unwrap();
        assert!(reap_within(running.id(), Duration::from_secs(60)));
    }
}
