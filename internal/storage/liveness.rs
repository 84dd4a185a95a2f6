//! Liveness of a run's process, and reconciliation of `running` records whose process is
//! gone (or whose pid now belongs to another process) to `failed` / `process vanished`.

use std::path::Path;

use chrono::Utc;
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::error::StorageError;
use super::paths::{SUPERVISOR_LOCK_FILE, TASK_LOOP_LOCK_FILE};
use super::run_info::{RunInfo, RunStatus, UPDATE_LOCK_TIMEOUT};

/// The error summary of a run reconciled because its process disappeared.
pub const VANISHED_SUMMARY: &str = "process vanished";

/// Start time of `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`), if known.
pub fn process_start_time(pid: i64) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parens; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process recorded in `info` still exists and is the same process.
/// A record with neither pid nor pgid cannot be judged and counts as alive.
pub fn is_alive(info: &RunInfo) -> bool {
    process_alive(info.pid, info.pgid, info.pid_start_time)
}

/// [`is_alive`] from the three fields it needs (`pid`, `pgid`, `pid_start_time`).
pub fn process_alive(pid: i64, pgid: i64, pid_start_time: Option<u64>) -> bool {
    if pid <= 0 && pgid <= 0 {
        return true;
    }
    if pid > 0 && pid_exists(pid) {
        return match (pid_start_time, process_start_time(pid)) {
            (Some(recorded), Some(actual)) => recorded == actual,
            _ => true,
        };
    }
    // The leader is gone; members of its process group (the agent's children) keep the run
    // alive, unless the pid was reused (then the group id is not trustworthy either).
    pgid > 0 && pid_start_time.is_none() && group_exists(pgid)
}

fn pid_exists(pid: i64) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if is_zombie(pid) {
        return false;
    }
    matches!(kill(Pid::from_raw(raw), None), Ok(()) | Err(Errno::EPERM))
}

fn is_zombie(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = stat[stat.rfind(')')? + 1..].trim_start().to_string();
            rest.chars().next()
        })
        == Some('Z')
}

fn group_exists(pgid: i64) -> bool {
    let Ok(raw) = i32::try_from(pgid) else {
        return false;
    };
    matches!(kill(Pid::from_raw(-raw), None), Ok(()) | Err(Errno::EPERM))
}

/// Whether some process holds an exclusive `flock` on the presence lock file `path` (a missing
/// file is not held). The probe opens the file read-only (never creating it) and takes a shared
/// lock for an instant; the open/close events it raises are access events, which the followers
/// of [`super::watch`] ignore.
pub fn lock_held(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    match fs2::FileExt::try_lock_shared(&file) {
        Ok(()) => {
            let _ = fs2::FileExt::unlock(&file);
            false
        }
        Err(_) => true,
    }
}

/// Whether a supervisor holds the presence lock of `run_dir` (it is alive and will record the
/// run's result, even if the agent itself has already exited).
pub fn supervisor_active(run_dir: &Path) -> bool {
    lock_held(&run_dir.join(SUPERVISOR_LOCK_FILE))
}

/// Whether a Ralph loop (`run-agent task` or a server task loop) holds the loop lock of
/// `task_dir`: the task is running, even between two runs (restart delay, child wait).
pub fn task_loop_active(task_dir: &Path) -> bool {
    lock_held(&task_dir.join(TASK_LOOP_LOCK_FILE))
}

/// Reads run-info.yaml at `path`; a `running` record whose process is gone (and whose
/// supervisor is gone too) is rewritten (under the lock, re-checked there) as `failed` with
/// `process vanished`.
pub fn read_reconciled(path: &Path) -> Result<RunInfo, StorageError> {
    let info = RunInfo::read(path)?;
    let run_dir = path.parent().unwrap_or(Path::new("."));
    let alive = |i: &RunInfo| is_alive(i) || supervisor_active(run_dir);
    if info.status != RunStatus::Running || alive(&info) {
        return Ok(info);
    }
    let updated = RunInfo::update(path, UPDATE_LOCK_TIMEOUT, |current| {
        // Another process may have finished the record meanwhile; then keep its version.
        if current.status == RunStatus::Running && !alive(current) {
            mark_vanished(current);
        }
        Ok::<(), std::convert::Infallible>(())
    })?;
    match updated {
        Ok(info) => Ok(info),
        Err(never) => match never {},
    }
}

/// Sets the fields of a run whose process vanished.
pub fn mark_vanished(info: &mut RunInfo) {
    info.status = RunStatus::Failed;
    info.end_time = Utc::now();
    if info.exit_code == 0 {
        info.exit_code = -1;
    }
    info.error_summary = Some(VANISHED_SUMMARY.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_has_a_start_time() {
        let pid = i64::from(std::process::id());
        let mut info = RunInfo::new_running("r", "p", "t", "x", Utc::now());
        info.pid = pid;
        info.pid_start_time = process_start_time(pid);
        assert!(info.pid_start_time.is_some());
        assert!(is_alive(&info));
        info.pid_start_time = info.pid_start_time.map(|t| t + 1);
        assert!(!is_alive(&info), "a different start time means pid reuse");
    }

    #[test]
    fn reaped_child_is_dead_and_reconciled() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        child.wait().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run-info.yaml");
        let mut info = RunInfo::new_running("r", "p", "t", "x", Utc::now());
        info.pid = pid;
        info.pgid = pid;
        info.write(&path).unwrap();
        let read = read_reconciled(&path).unwrap();
        assert_eq!(read.status, RunStatus::Failed);
        assert_eq!(read.error_summary.as_deref(), Some(VANISHED_SUMMARY));
        assert_eq!(RunInfo::read(&path).unwrap().status, RunStatus::Failed);
    }
}
