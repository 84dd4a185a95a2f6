//! Reconciliation of `running` records whose process is gone (or whose pid now belongs to
//! another process) to `failed` / `process vanished`, and the presence locks a supervisor or
//! task loop holds. Storage only reads what the files say (pid, process group, start time,
//! who holds a lock); whether a recorded process still runs is asked of [`crate::process`].

use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use super::error::StorageError;
use super::paths::{RUN_INFO_FILE, SUPERVISOR_LOCK_FILE, TASK_LOOP_LOCK_FILE};
use super::run_info::{RunInfo, RunStatus, UPDATE_LOCK_TIMEOUT};

/// The error summary of a run reconciled because its process disappeared.
pub const VANISHED_SUMMARY: &str = "process vanished";

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

/// Blocks until the run in `run_dir` is no longer `running` and returns its record (read with
/// [`read_reconciled`]). Woken by changes in the directory, and at the latest every `recheck`:
/// an agent that dies with its supervisor already gone changes no file.
pub fn wait_until_ended(run_dir: &Path, recheck: Duration) -> Result<RunInfo, StorageError> {
    let changes = super::watch::Subscription::on(run_dir, super::watch::Scope::Dir);
    let path = run_dir.join(RUN_INFO_FILE);
    loop {
        let info = read_reconciled(&path)?;
        if info.status != RunStatus::Running {
            return Ok(info);
        }
        changes.wait(recheck);
    }
}

/// Reads run-info.yaml at `path`; a `running` record whose process is gone (see
/// [`crate::process::recorded_alive`]: a zombie is gone) and whose supervisor is gone too
/// is rewritten (under the lock, re-checked there) as `failed` with `process vanished`.
pub fn read_reconciled(path: &Path) -> Result<RunInfo, StorageError> {
    let info = RunInfo::read(path)?;
    let run_dir = path.parent().unwrap_or(Path::new("."));
    let alive = |i: &RunInfo| i.recorded_process().alive() || supervisor_active(run_dir);
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
