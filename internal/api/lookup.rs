//! Turning path parameters into checked ids and existing directories under the root.
//! Every route with a path parameter goes through here: bad ids answer 400, missing
//! directories 404, directories reached through a symlink 403 (the one rule of
//! [`crate::storage::confined`]), and nothing outside the root is ever touched.

use std::path::PathBuf;

use super::error::ApiError;
use super::state::ServerState;
use crate::storage::paths::is_inside_without_symlinks;
use crate::storage::scan::{list_projects, list_tasks};
use crate::storage::{confined, paths, ProjectId, Root, RunId, TaskId};

/// Parses a project id from a path parameter (400 on a bad id).
pub fn project_id(raw: &str) -> Result<ProjectId, ApiError> {
    ProjectId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Parses a task id from a path parameter (400 on a bad id).
pub fn task_id(raw: &str) -> Result<TaskId, ApiError> {
    TaskId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Parses a run id from a path parameter (400 on a bad id).
pub fn run_id(raw: &str) -> Result<RunId, ApiError> {
    RunId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `path` below the root as an existing real directory: 403 when a component is a symlink,
/// `None` when it does not exist.
fn confined_dir(root: &Root, path: PathBuf) -> Result<Option<PathBuf>, ApiError> {
    match confined::existing_dir(root.path(), &path) {
        Ok(dir) => Ok(Some(dir)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(ApiError::from_confined(err)),
    }
}

/// The project's directory in the canonical or compat layout (404 when absent, 403 when
/// reached through a symlink).
pub fn project_dir(root: &Root, project: &ProjectId) -> Result<PathBuf, ApiError> {
    if let Some(dir) = confined_dir(root, root.project_dir(project))? {
        return Ok(dir);
    }
    confined_dir(root, root.path().join(paths::COMPAT_DIR).join(project))?
        .ok_or_else(|| ApiError::not_found(format!("project {project} not found")))
}

/// The task's directory (404 when absent, 403 when reached through a symlink).
pub fn task_dir(root: &Root, project: &ProjectId, task: &TaskId) -> Result<PathBuf, ApiError> {
    let project_dir = project_dir(root, project)?;
    confined_dir(root, project_dir.join(task))?
        .ok_or_else(|| ApiError::not_found(format!("task {project}/{task} not found")))
}

/// 403 when one of `names` in `dir` exists as a symlink: the run stream and the file route
/// refuse the same files.
pub fn refuse_symlinked_files(dir: &std::path::Path, names: &[&str]) -> Result<(), ApiError> {
    for name in names {
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(ApiError::from_confined(
                crate::storage::ConfinedError::Symlink {
                    root: dir.to_path_buf(),
                    path,
                },
            ));
        }
    }
    Ok(())
}

/// Finds the directory of run `run`: from the index, else (a run too new to be indexed) by
/// walking the tree (404 when absent).
pub fn run_dir(state: &ServerState, run: &RunId) -> Result<PathBuf, ApiError> {
    let root = &state.root;
    let extra = &state.settings.config.storage.extra_roots;
    let trusted = |dir: &PathBuf| {
        std::iter::once(root.path())
            .chain(extra.iter().map(PathBuf::as_path))
            .any(|base| is_inside_without_symlinks(base, dir))
    };
    if let Some(dir) = state.index.find(run.as_str()).filter(trusted) {
        return Ok(dir);
    }
    for project in list_projects(root.path()) {
        for task in list_tasks(&project) {
            if let Some(dir) = confined_dir(root, task.dir.join(paths::RUNS_DIR).join(run))? {
                return Ok(dir);
            }
        }
    }
    Err(ApiError::not_found(format!("run {run} not found")))
}
