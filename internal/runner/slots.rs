//! Counting semaphores across processes, for `defaults.max_concurrent_runs` (N lock files
//! under `<root>/.conductor/run-slots/`, one held by a run's supervisor while its agent runs)
//! and `defaults.max_concurrent_root_tasks` (`…/root-task-slots/`, one held by a task's loop).
//! A holder takes an exclusive `flock` on one file and waits — never gives up — while all are
//! taken. The kernel releases a slot when its holder exits, even by SIGKILL, so a crashed
//! holder never leaks one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fs2::FileExt;

use super::error::RunnerError;

/// Directory of the run slot lock files, under the runs root's state dir.
pub const SLOTS_DIR: &str = "run-slots";
/// Directory of the root-task slot lock files, under the runs root's state dir.
pub const TASK_SLOTS_DIR: &str = "root-task-slots";
const POLL: Duration = Duration::from_millis(100);

/// A held slot; released on drop.
#[derive(Debug)]
pub struct Slot {
    file: File,
    /// The slot's lock file.
    pub path: PathBuf,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

/// Takes one of `limit` run slots under `state_dir`, waiting while all are held.
/// `keep_waiting` is asked before each wait; when it says no, `Ok(None)` is returned (e.g. the
/// run was stopped while queued). `on_queue` is called once if the caller has to wait.
pub fn acquire(
    state_dir: &Path,
    limit: u32,
    keep_waiting: impl FnMut() -> bool,
    on_queue: impl FnOnce(),
) -> Result<Option<Slot>, RunnerError> {
    acquire_in(&state_dir.join(SLOTS_DIR), limit, keep_waiting, on_queue)
}

/// [`acquire`] on the slot files of `dir` (e.g. `<state dir>/root-task-slots`).
pub fn acquire_in(
    dir: &Path,
    limit: u32,
    mut keep_waiting: impl FnMut() -> bool,
    on_queue: impl FnOnce(),
) -> Result<Option<Slot>, RunnerError> {
    let dir = dir.to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|e| RunnerError::io("create directory", &dir, e))?;
    let mut on_queue = Some(on_queue);
    loop {
        for n in 0..limit.max(1) {
            let path = dir.join(format!("slot-{n}.lock"));
            let file = crate::storage::lock::open_lock_file(&path)
                .map_err(|e| RunnerError::io("open", &path, e))?;
            if file.try_lock_exclusive().is_ok() {
                return Ok(Some(Slot { file, path }));
            }
        }
        if !keep_waiting() {
            return Ok(None);
        }
        if let Some(notify) = on_queue.take() {
            notify();
        }
        std::thread::sleep(POLL);
    }
}

/// The result of asking for a root-task slot.
#[derive(Debug)]
pub enum TaskSlot {
    /// Go ahead; hold the slot (if there is a limit) until the task loop ends.
    Go(Option<Slot>),
    /// The task was stopped while it waited in the queue.
    Stopped,
}

/// Takes one of `limit` root-task slots of the runs root `root` (`defaults.max_concurrent_root_tasks`;
/// 0 = no limit) for the task in `task_dir`, waiting while all are held, until the task is
/// stopped. `on_queue` is called once if the task has to wait.
pub fn acquire_task_slot(
    root: &Path,
    task_dir: &Path,
    limit: u32,
    on_queue: impl FnOnce(),
) -> Result<TaskSlot, RunnerError> {
    if limit == 0 {
        return Ok(TaskSlot::Go(None));
    }
    let dir = crate::storage::Root::new(root)
        .state_dir()
        .join(TASK_SLOTS_DIR);
    let slot = acquire_in(&dir, limit, || !super::stop::requested(task_dir), on_queue)?;
    Ok(slot.map_or(TaskSlot::Stopped, |s| TaskSlot::Go(Some(s))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let a = acquire(dir.path(), 2, || false, || {}).unwrap().unwrap();
        let b = acquire(dir.path(), 2, || false, || {}).unwrap().unwrap();
        assert_ne!(a.path, b.path);
        let mut queued = false;
        assert!(acquire(dir.path(), 2, || false, || queued = true)
            .unwrap()
            .is_none());
        assert!(!queued, "a caller that does not wait is not queued");
        drop(a);
        assert!(acquire(dir.path(), 2, || false, || {}).unwrap().is_some());
    }
}
