//! Turning path parameters into checked ids and existing directories under the root.
//! Every route with a path parameter goes through here: bad ids answer 400, missing or
//! symlinked directories 404, and nothing outside the root is ever touched.

use std::path::{Path, PathBuf};

use super::error::ApiError;
use super::state::ServerState;
use crate::storage::paths::is_inside_without_symlinks;
use crate::storage::scan::{list_projects, list_tasks};
use crate::storage::{paths, ProjectId, Root, RunId, TaskId};

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

/// A real (non-symlink) directory, or `None`.
fn real_dir(path: &Path) -> Option<PathBuf> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_dir())
        .map(|_| path.to_path_buf())
}

/// The project's directory in the canonical or compat layout (404 when absent).
pub fn project_dir(root: &Root, project: &ProjectId) -> Result<PathBuf, ApiError> {
    real_dir(&root.project_dir(project))
        .or_else(|| real_dir(&root.path().join(paths::COMPAT_DIR).join(project)))
        .ok_or_else(|| ApiError::not_found(format!("project {project} not found")))
}

/// The task's directory (404 when absent).
pub fn task_dir(root: &Root, project: &ProjectId, task: &TaskId) -> Result<PathBuf, ApiError> {
    let project_dir = project_dir(root, project)?;
    real_dir(&project_dir.join(task))
        .ok_or_else(|| ApiError::not_found(format!("task {project}/{task} not found")))
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
            if let Some(dir) = real_dir(&task.dir.join(paths::RUNS_DIR).join(run)) {
                return Ok(dir);
            }
        }
    }
    Err(ApiError::not_found(format!("run {run} not found")))
}
