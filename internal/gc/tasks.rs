//! `--delete-done-tasks`: removing a task directory only when `DONE` exists (a regular file),
//! `runs/` is empty or missing, no task loop holds the task, and the directory's mtime is
//! older than the cutoff.

use std::path::Path;
use std::time::SystemTime;

use super::error::GcError;
use super::remove::{move_aside, remove_tree, tree_size};
use super::report::DeletedTask;
use super::walk::TaskDir;
use crate::storage::liveness::task_loop_active;
use crate::storage::paths::{DONE_FILE, RUNS_DIR};

/// Whether the task dir `dir` meets the conditions (`runs_expected`: how many entries a dry
/// run expects `runs/` to still hold; `None` looks at the disk).
fn eligible(dir: &Path, cutoff: SystemTime, runs_expected: Option<usize>) -> Result<bool, GcError> {
    let done = std::fs::symlink_metadata(dir.join(DONE_FILE))
        .map(|m| m.is_file())
        .unwrap_or(false);
    if !done || task_loop_active(dir) {
        return Ok(false);
    }
    let runs_empty = match runs_expected {
        Some(count) => count == 0,
        None => runs_empty_on_disk(dir)?,
    };
    if !runs_empty {
        return Ok(false);
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| GcError::io("inspect", dir, e))?;
    let mtime = meta
        .modified()
        .map_err(|e| GcError::io("read the mtime of", dir, e))?;
    Ok(meta.is_dir() && mtime < cutoff)
}

/// `runs/` is missing, or a real directory with no entries at all.
fn runs_empty_on_disk(task_dir: &Path) -> Result<bool, GcError> {
    let runs = task_dir.join(RUNS_DIR);
    match std::fs::symlink_metadata(&runs) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(GcError::io("inspect", &runs, e)),
        Ok(meta) if !meta.is_dir() => Ok(false),
        Ok(_) => {
            let mut entries =
                std::fs::read_dir(&runs).map_err(|e| GcError::io("list", &runs, e))?;
            Ok(entries.next().is_none())
        }
    }
}

/// Deletes `task` if it qualifies; `None` when it does not. In a dry run, `runs_expected`
/// is how many entries `runs/` would still hold after the run pass (`None` = runs/ is not
/// a directory we can reason about, so the task is kept).
pub fn prune_task(
    task: &TaskDir,
    cutoff: SystemTime,
    dry_run: bool,
    runs_expected: Option<usize>,
) -> Result<Option<DeletedTask>, GcError> {
    let record = |bytes| DeletedTask {
        project: task.project.to_string(),
        task: task.id.to_string(),
        path: task.dir.clone(),
        bytes,
    };
    if dry_run {
        let Some(expected) = runs_expected else {
            return Ok(None);
        };
        return Ok(
            eligible(&task.dir, cutoff, Some(expected))?.then(|| record(tree_size(&task.dir)))
        );
    }
    if !eligible(&task.dir, cutoff, None)? {
        return Ok(None);
    }
    let aside = move_aside(&task.dir)?;
    // A run may have been started in the task between the check and the rename: look again
    // inside the renamed dir and put it back if it no longer qualifies.
    let still = std::fs::symlink_metadata(aside.join(DONE_FILE))
        .map(|m| m.is_file())
        .unwrap_or(false)
        && !task_loop_active(&aside)
        && runs_empty_on_disk(&aside)?;
    if !still {
        std::fs::rename(&aside, &task.dir).map_err(|e| GcError::io("restore", &aside, e))?;
        return Ok(None);
    }
    let bytes = tree_size(&aside);
    remove_tree(&aside)?;
    Ok(Some(record(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{ProjectId, TaskId};
    use std::time::Duration;

    fn task(dir: &Path) -> TaskDir {
        TaskDir {
            project: ProjectId::parse("p").unwrap(),
            id: TaskId::parse("t").unwrap(),
            dir: dir.to_path_buf(),
            done: true,
            runs: super::super::walk::RunsDir::Missing,
        }
    }

    #[test]
    fn conditions() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("t");
        std::fs::create_dir_all(dir.join(RUNS_DIR).join("r1")).unwrap();
        let future = SystemTime::now() + Duration::from_secs(3600);
        let past = SystemTime::now() - Duration::from_secs(3600);
        // No DONE.
        assert!(prune_task(&task(&dir), future, false, None)
            .unwrap()
            .is_none());
        std::fs::write(dir.join(DONE_FILE), "").unwrap();
        // runs/ not empty.
        assert!(prune_task(&task(&dir), future, false, None)
            .unwrap()
            .is_none());
        std::fs::remove_dir(dir.join(RUNS_DIR).join("r1")).unwrap();
        // Too new.
        assert!(prune_task(&task(&dir), past, false, None)
            .unwrap()
            .is_none());
        // Dry run reports it, real run deletes it.
        assert!(prune_task(&task(&dir), future, true, Some(0))
            .unwrap()
            .is_some());
        assert!(prune_task(&task(&dir), future, true, Some(1))
            .unwrap()
            .is_none());
        assert!(dir.exists());
        // A task loop holding the task (between runs) keeps it.
        let lock =
            std::fs::File::create(dir.join(crate::storage::paths::TASK_LOOP_LOCK_FILE)).unwrap();
        fs2::FileExt::lock_exclusive(&lock).unwrap();
        assert!(prune_task(&task(&dir), future, false, None)
            .unwrap()
            .is_none());
        drop(lock);
        let deleted = prune_task(&task(&dir), future, false, None)
            .unwrap()
            .unwrap();
        assert_eq!(deleted.task, "t");
        assert!(!dir.exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
