//! The watchdog of a hand-over: a copy of the previous binary, started just before the exec
//! with the listening socket at fd 3. It waits for the new image to report healthy (the
//! pending record disappears); if the server dies or misses the deadline first, it records
//! the failure, restores the backup and execs it on the same socket, so the previous
//! version serves again and no connection is refused.

use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::audit::{Requester, UpdateAudit};
use super::error::UpdateError;
use super::handoff::{exec_with_listener, LISTEN_FDS_START};
use super::record::{Pending, StateStore};
use super::swap;

const POLL: Duration = Duration::from_millis(50);

struct Fd3;

impl AsRawFd for Fd3 {
    fn as_raw_fd(&self) -> RawFd {
        LISTEN_FDS_START
    }
}

/// What the watchdog concluded.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The hand-over was resolved by someone else (normally: the new image is serving).
    Resolved,
}

/// Watches hand-over `id` recorded in `state_file`. Returns once it is resolved; on a
/// failed start-up it does not return (it execs the restored binary) unless that fails.
pub fn run(state_file: &Path, id: &str) -> Result<Verdict, UpdateError> {
    let dir = state_file.parent().unwrap_or(Path::new("."));
    let store = StateStore::new(dir);
    let root = dir.parent().unwrap_or(Path::new("."));
    let start = Instant::now();
    loop {
        let record = store.load()?;
        let Some(pending) = record.pending.filter(|p| p.id == id) else {
            return Ok(Verdict::Resolved);
        };
        let server = pending.server_pid;
        let gone = nix::unistd::getppid().as_raw() as u32 != server || !alive(server);
        let deadline = Duration::from_secs(pending.deadline_secs);
        let late = start.elapsed() >= deadline;
        if gone || late {
            let reason = if gone {
                "the new image exited before it reported healthy; previous binary restored"
                    .to_string()
            } else {
                format!(
                    "the new image did not report healthy within {}s; previous binary restored",
                    deadline.as_secs()
                )
            };
            return rollback(&store, root, id, &reason, !gone);
        }
        std::thread::sleep(POLL);
    }
}

fn rollback(
    store: &StateStore,
    root: &Path,
    id: &str,
    reason: &str,
    kill_server: bool,
) -> Result<Verdict, UpdateError> {
    let (_, claimed) = store.update(|r| match &r.pending {
        Some(p) if p.id == id => {
            let p = p.clone();
            r.finish(Some(reason.to_string()));
            Some(p)
        }
        _ => None,
    })?;
    let Some(pending) = claimed else {
        return Ok(Verdict::Resolved);
    };
    tracing::error!("self-update failed: {reason}");
    if kill_server {
        stop(&pending);
    }
    swap::restore(&pending.backup, &pending.exe)?;
    UpdateAudit::new(root).event(
        &Requester::server(),
        "failed",
        &store.path().display().to_string(),
        "failed",
        Some(reason),
    );
    let argv: Vec<std::ffi::OsString> = pending.argv.iter().map(Into::into).collect();
    Err(exec_with_listener(&pending.exe, &argv, &Fd3, &[]))
}

fn stop(pending: &Pending) {
    let Ok(raw) = i32::try_from(pending.server_pid) else {
        return;
    };
    let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
    let start = Instant::now();
    while alive(pending.server_pid) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: u32) -> bool {
    crate::process::pid_alive(i64::from(pid))
}
