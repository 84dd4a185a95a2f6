//! Reaping children (`waitpid`), so exited ones do not linger as zombies.

use std::process::Child;
use std::sync::{Condvar, Mutex, OnceLock};
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

/// Waits for one child's exit with a timeout, without a thread: a pidfd (Linux 5.3+) that
/// becomes readable when the child exits, or plain sleeping where there is none.
pub struct ExitWatch {
    pidfd: Option<std::os::fd::OwnedFd>,
}

impl ExitWatch {
    /// Watches child `child`.
    pub fn new(child: &Child) -> Self {
        use std::os::fd::FromRawFd;
        let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; nothing else.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = i32::try_from(fd)
            .ok()
            .filter(|fd| *fd >= 0 && pid > 0)
            // SAFETY: the fd was just returned by the kernel and is owned by nobody else.
            .map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        Self { pidfd }
    }

    /// Waits up to `timeout`, returning early once the child exited (it is not reaped).
    pub fn wait(&self, timeout: Duration) {
        let Some(fd) = &self.pidfd else {
            std::thread::sleep(timeout);
            return;
        };
        use std::os::fd::AsRawFd;
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready < 0 {
            std::thread::sleep(timeout.min(POLL));
        }
    }
}

/// How often the background reaper looks at the children left to it.
const REAP_LATER_POLL: Duration = Duration::from_millis(250);

/// Children left to the background reaper, and the signal that one was added.
struct Orphans {
    children: Mutex<Vec<Child>>,
    added: Condvar,
}

/// Leaves `child` (still running, e.g. a supervisor delivering webhooks after its run's
/// record is final) to one process-wide thread that reaps it once it exits, instead of a
/// thread per child. The thread sleeps while it has nothing to reap.
pub fn reap_later(child: Child) {
    static ORPHANS: OnceLock<&'static Orphans> = OnceLock::new();
    let orphans = *ORPHANS.get_or_init(|| {
        let orphans: &'static Orphans = Box::leak(Box::new(Orphans {
            children: Mutex::new(Vec::new()),
            added: Condvar::new(),
        }));
        let started = std::thread::Builder::new()
            .name("reap-later".into())
            .spawn(move || reap_forever(orphans));
        if let Err(err) = started {
            tracing::warn!("cannot start the background reaper: {err}");
        }
        orphans
    });
    let mut children = orphans.children.lock().unwrap_or_else(|e| e.into_inner());
    children.push(child);
    orphans.added.notify_one();
}

fn reap_forever(orphans: &Orphans) {
    let mut children = orphans.children.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        // A child whose status cannot be asked for is not ours to wait for any more.
        children.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
        children = if children.is_empty() {
            orphans
                .added
                .wait(children)
                .unwrap_or_else(|e| e.into_inner())
        } else {
            match orphans.added.wait_timeout(children, REAP_LATER_POLL) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            }
        };
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

    #[test]
    fn an_exit_watch_returns_when_the_child_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.1")
            .spawn()
            .unwrap();
        let watch = ExitWatch::new(&child);
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            watch.wait(Duration::from_secs(20));
            assert!(start.elapsed() < Duration::from_secs(60));
        }
    }

    #[test]
    fn a_child_left_to_the_background_reaper_is_reaped_when_it_exits() {
        let child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let pid = child.id();
        reap_later(child);
        let stat = format!("/proc/{pid}/stat");
        let deadline = Instant::now() + Duration::from_secs(30);
        // Gone from /proc only once reaped (a zombie keeps its entry).
        while std::path::Path::new(&stat).exists() {
            assert!(Instant::now() < deadline, "child {pid} was never reaped");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
