//! The task loop's presence marker: an exclusive `flock` on `<task dir>/.loop.lock`, held by a
//! task's Ralph loop (`run-agent task`, `task resume`, or a server task loop) for its whole
//! life — dependency and slot waits, every run, the restart delays and the final child wait.
//! A second loop of the same task is refused; readers ([`active`]) report the task `running`
//! between two runs. The kernel drops the lock when the holder exits (even by SIGKILL), so a
//! crashed loop never leaves a stale "running" behind. Same idea as the per-run
//! [`supervisor_lock`](super::supervisor_lock).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::storage::lock::{lock_exclusive, LockError};
use crate::storage::{ProjectId, Root, TaskId};

use super::error::RunnerError;

pub use crate::storage::liveness::task_loop_active as active;
pub use crate::storage::paths::TASK_LOOP_LOCK_FILE;

/// How long a contended lock is retried: a reader's probe holds a shared lock for an instant,
/// a running loop holds it for good.
const ACQUIRE_WAIT: Duration = Duration::from_millis(500);

/// The held loop lock of one task; the lock is released when this is dropped.
#[derive(Debug)]
pub struct TaskLoopLock {
    _file: File,
    path: PathBuf,
}

impl TaskLoopLock {
    /// Creates the task dir if needed and takes its loop lock, or fails with
    /// [`RunnerError::LoopRunning`] when another loop of the task holds it.
    pub fn acquire(root: &Path, project: &ProjectId, task: &TaskId) -> Result<Self, RunnerError> {
        let task_dir = Root::new(root).confined_task_dir(project, task)?;
        std::fs::create_dir_all(&task_dir)
            .map_err(|e| RunnerError::io("create directory", &task_dir, e))?;
        let path = task_dir.join(TASK_LOOP_LOCK_FILE);
        let file = crate::storage::lock::open_lock_file(&path)
            .map_err(|e| RunnerError::io("open", &path, e))?;
        match lock_exclusive(&file, &path, ACQUIRE_WAIT) {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(LockError::Timeout { .. }) => Err(RunnerError::LoopRunning {
                project: project.to_string(),
                task: task.to_string(),
                path,
            }),
            Err(LockError::Io { path, source }) => Err(RunnerError::io("lock", path, source)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_loop_is_refused_until_the_first_ends() {
        let root = tempfile::tempdir().unwrap();
        let project = ProjectId::parse("p").unwrap();
        let task = TaskId::parse("t").unwrap();
        let task_dir = root.path().join("p").join("t");
        assert!(!active(&task_dir));
        let held = TaskLoopLock::acquire(root.path(), &project, &task).unwrap();
        assert!(active(&task_dir));
        assert_eq!(held.path(), task_dir.join(TASK_LOOP_LOCK_FILE));
        let err = TaskLoopLock::acquire(root.path(), &project, &task).unwrap_err();
        assert!(matches!(err, RunnerError::LoopRunning { .. }), "{err}");
        assert!(err.to_string().contains("task t of project p"), "{err}");
        drop(held);
        assert!(!active(&task_dir));
        TaskLoopLock::acquire(root.path(), &project, &task).unwrap();
    }
}
