//! Deleting one task on request (`run-agent task delete`, `DELETE /api/v1/projects/{p}/tasks/{t}`),
//! the same crash-safe way gc removes directories: the task directory is reached without
//! following a symlink, renamed aside to a hidden `.gc-deleting-<pid>-<task>` sibling, checked
//! again there (a run or task loop that started meanwhile puts it back), and only then removed.
//! A delete that dies halfway leaves a hidden leftover, never a half-deleted task that still
//! lists; the next delete of the same task, or the next gc, removes the leftover.

use std::path::{Path, PathBuf};

use super::error::GcError;
use super::remove::{move_aside, owned_by_live_gc, remove_tree, tree_size, ASIDE_PREFIX};
use crate::storage::liveness::task_loop_active;
use crate::storage::scan::{list_runs, Reconcile};
use crate::storage::{ConfinedError, ProjectId, Root, RunStatus, TaskId};

/// Why a task was not deleted.
#[derive(Debug, thiserror::Error)]
pub enum TaskDeleteError {
    /// The task has no directory.
    #[error("task {task} of project {project} does not exist ({})", path.display())]
    NotFound {
        /// Project id.
        project: String,
        /// Task id.
        task: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The task is reached through a symlink, or is not a directory.
    #[error(transparent)]
    Refused(#[from] ConfinedError),
    /// A run or the task loop is active.
    #[error("task {task} of project {project} {what}; stop it first (run-agent stop --project {project} --task {task})")]
    Running {
        /// Project id.
        project: String,
        /// Task id.
        task: String,
        /// What is active ("has a running task loop", "has a running run R").
        what: String,
    },
    /// Renaming or removing failed.
    #[error(transparent)]
    Gc(#[from] GcError),
}

/// A deleted task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDeleted {
    /// The task directory that was removed (`None` when only leftovers were).
    pub path: Option<PathBuf>,
    /// Bytes of regular files removed (task and leftovers).
    pub bytes: u64,
    /// Leftovers of earlier, interrupted deletes of this task that were removed too.
    pub leftovers: usize,
}

/// Deletes task `task` of `project` under `root` (see the module doc). A task with a running
/// run or an active task loop is refused. When the task is gone but an interrupted delete
/// left it aside, the leftover is removed and that counts as the delete.
pub fn delete_task(
    root: &Root,
    project: &ProjectId,
    task: &TaskId,
) -> Result<TaskDeleted, TaskDeleteError> {
    let dir = root.confined_task_dir(project, task)?;
    let (leftovers, mut bytes) = finish_interrupted(&dir, task)?;
    match std::fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if leftovers > 0 {
                return Ok(TaskDeleted {
                    path: None,
                    bytes,
                    leftovers,
                });
            }
            return Err(TaskDeleteError::NotFound {
                project: project.to_string(),
                task: task.to_string(),
                path: dir,
            });
        }
        Err(e) => return Err(GcError::io("inspect", &dir, e).into()),
        Ok(meta) if !meta.is_dir() => {
            return Err(ConfinedError::NotDirectory { path: dir }.into());
        }
        Ok(_) => {}
    }
    let running = |what: String| TaskDeleteError::Running {
        project: project.to_string(),
        task: task.to_string(),
        what,
    };
    if let Some(what) = activity(&dir) {
        return Err(running(what));
    }
    let aside = move_aside(&dir)?;
    // A run or loop may have started between the check and the rename: look again inside
    // the renamed directory and put it back if so.
    if let Some(what) = activity(&aside) {
        std::fs::rename(&aside, &dir).map_err(|e| GcError::io("restore", &aside, e))?;
        return Err(running(what));
    }
    bytes += tree_size(&aside);
    remove_tree(&aside)?;
    Ok(TaskDeleted {
        path: Some(dir),
        bytes,
        leftovers,
    })
}

/// What keeps the task in `dir` from being deleted, if anything.
fn activity(dir: &Path) -> Option<String> {
    if task_loop_active(dir) {
        return Some("has a running task loop".to_string());
    }
    list_runs(dir, Reconcile::Yes)
        .iter()
        .find(|r| r.status() == RunStatus::Running)
        .map(|r| format!("has a running run {}", r.run_id()))
}

/// Removes the asides of `task` next to `dir` left by deletes that died (their owner process
/// is gone; this process's own asides belong to a delete still in progress, e.g. a
/// concurrent request of the server); returns how many and their size.
fn finish_interrupted(dir: &Path, task: &TaskId) -> Result<(usize, u64), GcError> {
    let Some(project_dir) = dir.parent() else {
        return Ok((0, 0));
    };
    let Ok(entries) = std::fs::read_dir(project_dir) else {
        return Ok((0, 0));
    };
    let (mut count, mut bytes) = (0, 0);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_aside_of(&name, task.as_str())
            || owned_by_live_gc(&name)
            || name.starts_with(&super::remove::aside_name(""))
        {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        bytes += tree_size(&path);
        remove_tree(&path)?;
        count += 1;
    }
    Ok((count, bytes))
}

/// Whether `name` is an aside name (`.gc-deleting-<pid>-<task>` or `…-<task>.<n>`) of `task`.
fn is_aside_of(name: &str, task: &str) -> bool {
    let Some((pid, rest)) = name
        .strip_prefix(ASIDE_PREFIX)
        .and_then(|rest| rest.split_once('-'))
    else {
        return false;
    };
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    match rest.strip_prefix(task) {
        Some("") => true,
        Some(suffix) => suffix
            .strip_prefix('.')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aside_names_of_a_task() {
        assert!(is_aside_of(".gc-deleting-12-t", "t"));
        assert!(is_aside_of(".gc-deleting-12-t.3", "t"));
        assert!(!is_aside_of(".gc-deleting-12-t2", "t"));
        assert!(!is_aside_of(".gc-deleting-x-t", "t"));
        assert!(!is_aside_of("t", "t"));
    }

    #[test]
    fn deletes_refuses_symlinks_and_finishes_interrupted_deletes() {
        let root_dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = Root::new(root_dir.path());
        let p = ProjectId::parse("p").unwrap();
        let t = TaskId::parse("t").unwrap();
        std::fs::create_dir_all(root.runs_dir(&p, &t)).unwrap();
        std::fs::write(root.task_dir(&p, &t).join("TASK.md"), "12345").unwrap();
        let deleted = delete_task(&root, &p, &t).unwrap();
        assert_eq!(deleted.bytes, 5);
        assert!(!root.task_dir(&p, &t).exists());
        assert!(matches!(
            delete_task(&root, &p, &t),
            Err(TaskDeleteError::NotFound { .. })
        ));

        // A delete that died after its rename (pid 0 is never a live owner).
        let leftover = root.project_dir(&p).join(".gc-deleting-0-t");
        std::fs::create_dir_all(leftover.join("runs")).unwrap();
        let deleted = delete_task(&root, &p, &t).unwrap();
        assert_eq!((deleted.path, deleted.leftovers), (None, 1));
        assert!(!leftover.exists());

        std::fs::create_dir_all(outside.path().join("t")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("evil")).unwrap();
        let evil = ProjectId::parse("evil").unwrap();
        let err = delete_task(&root, &evil, &t).unwrap_err();
        assert!(matches!(err, TaskDeleteError::Refused(_)), "{err}");
        assert!(outside.path().join("t").is_dir());
    }
}
