//! The Go reference's task routes, kept for its clients: `GET /api/v1/tasks[?project_id=]`,
//! `GET /api/v1/tasks/{task}?project_id=` and `DELETE /api/v1/tasks/{task}?project_id=`
//! (which, as there, writes DONE and stops the task's runs). Without `project_id` the task is
//! looked up in every project.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::browse::{index_ready, project_task_summaries, task_view, RunsPage};
use super::error::ApiError;
use super::lookup;
use super::state::AppState;
use crate::storage::scan::{list_projects, ProjectEntry};
use crate::storage::{paths, ProjectId, TaskId};
use crate::wire::{TaskList, TaskStopped, TaskSummary, TaskView};

/// Query of the reference task routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProjectQuery {
    /// Project id (optional).
    pub project_id: Option<String>,
}

fn projects(state: &AppState, project: Option<&str>) -> Result<Vec<ProjectEntry>, ApiError> {
    match project {
        Some(raw) => {
            let id = lookup::project_id(raw)?;
            let dir = lookup::project_dir(&state.root, &id)?;
            Ok(vec![ProjectEntry { id, dir }])
        }
        None => Ok(list_projects(state.root.path())),
    }
}

/// `GET /api/v1/tasks[?project_id=]`
#[utoipa::path(get, path = "/api/v1/tasks", tag = "compat", params(ProjectQuery),
    responses((status = 200, description = "Tasks of one or all projects", body = TaskList), (status = 404, description = "Unknown project", body = crate::api::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ProjectQuery>,
) -> Result<Json<TaskList>, ApiError> {
    let projects = projects(&state, q.project_id.as_deref())?;
    index_ready(&state).await?;
    state.index.reconcile_stale();
    let tasks: Vec<TaskSummary> = projects
        .iter()
        .flat_map(|p| project_task_summaries(&state, p))
        .collect();
    Ok(Json(TaskList {
        project_id: None,
        tasks,
    }))
}

/// The one task called `task`, in `project` or (without it) in any project.
fn find(
    state: &AppState,
    task: &str,
    project: Option<&str>,
) -> Result<(ProjectId, TaskId, std::path::PathBuf), ApiError> {
    let task = lookup::task_id(task)?;
    let mut found: Vec<(ProjectId, std::path::PathBuf)> = projects(state, project)?
        .into_iter()
        .filter_map(|p| {
            let dir = p.dir.join(&task);
            std::fs::symlink_metadata(&dir)
                .ok()
                .filter(|m| m.is_dir())
                .map(|_| (p.id, dir))
        })
        .collect();
    match found.len() {
        0 => Err(ApiError::not_found(format!("task {task} not found"))),
        1 => {
            let (project, dir) = found.remove(0);
            Ok((project, task, dir))
        }
        _ => Err(ApiError::bad_request(format!(
            "task {task} exists in several projects ({}); pass project_id",
            found
                .iter()
                .map(|(p, _)| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `GET /api/v1/tasks/{task}?project_id=`
#[utoipa::path(get, path = "/api/v1/tasks/{task}", tag = "compat",
    params(("task" = String, Path, description = "Task id"), ProjectQuery),
    responses((status = 200, description = "Task view with runs", body = TaskView), (status = 400, description = "Bad id or ambiguous task", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    Path(task): Path<String>,
    Query(q): Query<ProjectQuery>,
) -> Result<Json<TaskView>, ApiError> {
    let (project, task, dir) = find(&state, &task, q.project_id.as_deref())?;
    index_ready(&state).await?;
    Ok(Json(task_view(
        &state,
        &project,
        &task,
        &dir,
        RunsPage::default(),
    )))
}

/// `DELETE /api/v1/tasks/{task}?project_id=`: writes DONE and stops the task's runs (202).
#[utoipa::path(delete, path = "/api/v1/tasks/{task}", tag = "compat",
    params(("task" = String, Path, description = "Task id"), ProjectQuery),
    responses((status = 202, description = "DONE written, runs stopped", body = TaskStopped), (status = 400, description = "Bad id or ambiguous task", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody)))]
pub async fn stop(
    State(state): State<AppState>,
    Path(task): Path<String>,
    Query(q): Query<ProjectQuery>,
) -> Result<Response, ApiError> {
    let (project, task, dir) = find(&state, &task, q.project_id.as_deref())?;
    crate::storage::atomic::write_atomic(&dir.join(paths::DONE_FILE), b"")
        .map_err(|e| ApiError::internal(format!("cannot write DONE: {e}")))?;
    let (stopped, errors) = super::tasks::stop_task_runs(dir).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TaskStopped {
            project_id: project.to_string(),
            task_id: task.to_string(),
            stopped_runs: stopped,
            errors,
        }),
    )
        .into_response())
}
