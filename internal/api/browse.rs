//! Read-only views of the tree: projects, tasks, runs, run files.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::index::{RunFilter, RunRecord};
use super::lookup;
use super::range::ByteRange;
use super::state::AppState;
use crate::storage::scan::{self, list_projects, list_runs, list_tasks, Reconcile, RunEntry};
use crate::storage::{paths, ProjectId, RunInfo, RunStatus, TaskId};

/// Largest page of runs a client may ask for.
const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

/// A project in a listing.
#[derive(Debug, Serialize)]
pub struct ProjectSummary {
    /// Project id.
    pub project_id: String,
    /// Number of task directories.
    pub task_count: usize,
}

/// `GET /api/v1/projects`
#[utoipa::path(
    get,
    path = "/api/v1/projects",
    tag = "projects",
    responses((status = 200, description = "Projects with task counts"))
)]
pub async fn projects(State(state): State<AppState>) -> Json<serde_json::Value> {
    let projects: Vec<ProjectSummary> = list_projects(state.root.path())
        .iter()
        .map(|p| ProjectSummary {
            project_id: p.id.to_string(),
            task_count: list_tasks(p).len(),
        })
        .collect();
    Json(serde_json::json!({ "projects": projects }))
}

/// A run in a listing or task view.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Project id.
    pub project_id: String,
    /// Task id.
    pub task_id: String,
    /// Status (`unknown` when run-info.yaml is missing or broken).
    #[schema(value_type = String, example = "completed")]
    pub status: RunStatus,
    /// The full record, when it parses.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub info: Option<RunInfo>,
    /// Why run-info.yaml could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunSummary {
    fn from_record(record: &RunRecord) -> Self {
        RunSummary {
            run_id: record.run_id.clone(),
            project_id: record.project_id.clone(),
            task_id: record.task_id.clone(),
            status: record.status,
            info: record.info.clone(),
            error: record.error.clone(),
        }
    }

    fn from_entry(entry: RunEntry, project_id: &str, task_id: &str) -> Self {
        let run_id = entry.run_id();
        let status = entry.status();
        let (info, error) = match entry.info {
            Ok(info) => (Some(info), None),
            Err(e) => (None, Some(e)),
        };
        RunSummary {
            run_id,
            project_id: project_id.to_string(),
            task_id: task_id.to_string(),
            status,
            info,
            error,
        }
    }
}

/// A task's status derived from its marker, its runs and its task loop (a loop between two
/// runs keeps the task `running`), as `run-agent list` derives it.
fn derived_status(done: bool, runs: &[RunSummary], task_dir: &std::path::Path) -> &'static str {
    let statuses: Vec<RunStatus> = runs.iter().map(|r| r.status).collect();
    crate::runner::inspect::derive_status(
        done,
        &statuses,
        false,
        crate::runner::loop_lock::active(task_dir),
    )
    .as_str()
}

/// `GET /api/v1/projects/{p}/tasks`
#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/tasks",
    tag = "tasks",
    params(("project" = String, Path, description = "Project id")),
    responses((status = 200, description = "Tasks with derived status"), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn tasks(
    State(state): State<AppState>,
    Path(project): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let project = lookup::project_id(&project)?;
    let dir = lookup::project_dir(&state.root, &project)?;
    let entry = scan::ProjectEntry {
        id: project.clone(),
        dir,
    };
    let tasks: Vec<serde_json::Value> = list_tasks(&entry).iter().map(task_summary).collect();
    Ok(Json(
        serde_json::json!({ "project_id": project, "tasks": tasks }),
    ))
}

fn task_runs(task_dir: &std::path::Path, project: &str, task: &str) -> Vec<RunSummary> {
    list_runs(task_dir, Reconcile::Yes)
        .into_iter()
        .map(|e| RunSummary::from_entry(e, project, task))
        .collect()
}

/// `GET /api/v1/projects/{p}/tasks/{t}`
#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/tasks/{task}",
    tag = "tasks",
    params(("project" = String, Path, description = "Project id"), ("task" = String, Path, description = "Task id")),
    responses((status = 200, description = "TASK.md, DONE and runs"), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn task(
    State(state): State<AppState>,
    Path((project, task)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let project = lookup::project_id(&project)?;
    let task = lookup::task_id(&task)?;
    let dir = lookup::task_dir(&state.root, &project, &task)?;
    Ok(Json(task_view(&project, &task, &dir)))
}

/// The full view of one task: status, DONE, TASK.md and its runs.
pub fn task_view(project: &ProjectId, task: &TaskId, dir: &std::path::Path) -> serde_json::Value {
    let read_regular = |name: &str| -> Option<String> {
        let path = dir.join(name);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        meta.is_file()
            .then(|| std::fs::read_to_string(&path).ok())
            .flatten()
    };
    let done = std::fs::symlink_metadata(dir.join(paths::DONE_FILE))
        .map(|m| m.is_file())
        .unwrap_or(false);
    let runs = task_runs(dir, project.as_str(), task.as_str());
    serde_json::json!({
        "project_id": project,
        "task_id": task,
        "status": derived_status(done, &runs, dir),
        "done": done,
        "task_md": read_regular(paths::TASK_FILE),
        "runs": runs,
    })
}

/// One line of a task listing.
pub fn task_summary(task: &scan::TaskEntry) -> serde_json::Value {
    let runs = task_runs(&task.dir, task.project.as_str(), task.id.as_str());
    let last_activity = runs
        .iter()
        .filter_map(|r| r.info.as_ref())
        .map(|i| i.end_time_opt().unwrap_or(i.start_time))
        .max()
        .map(|t| crate::storage::time::format_rfc3339_nano(&t));
    serde_json::json!({
        "project_id": task.project,
        "task_id": task.id,
        "status": derived_status(task.done, &runs, &task.dir),
        "done": task.done,
        "run_count": runs.len(),
        "latest_run": runs.last().map(|r| r.run_id.clone()),
        "last_activity": last_activity,
    })
}

/// Query of `GET /api/v1/runs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// Only runs of this project.
    pub project: Option<String>,
    /// Only runs of this task.
    pub task: Option<String>,
    /// Only runs with this status.
    pub status: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Continue after this run id (the `next_cursor` of the previous page).
    pub cursor: Option<String>,
}

/// `GET /api/v1/runs` — newest first, paginated by run id.
#[utoipa::path(
    get,
    path = "/api/v1/runs",
    tag = "runs",
    params(RunsQuery),
    responses((status = 200, description = "A page of runs, newest first, and next_cursor"), (status = 400, description = "Bad filter", body = crate::api::error::ErrorBody))
)]
pub async fn runs(
    State(state): State<AppState>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let project = query
        .project
        .as_deref()
        .map(lookup::project_id)
        .transpose()?;
    let task = query.task.as_deref().map(lookup::task_id).transpose()?;
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => match RunStatus::from_text(text) {
            RunStatus::Unknown if text != "unknown" => {
                return Err(ApiError::bad_request(format!(
                    "invalid status {text:?}; allowed: running, completed, failed, stopped, unknown"
                )))
            }
            s => Some(s),
        },
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "invalid limit {limit}; allowed: 1..={MAX_PAGE}"
        )));
    }
    let cursor = query.cursor.as_deref().map(lookup::run_id).transpose()?;
    let filter = RunFilter {
        project: project.map(|p| p.to_string()),
        task: task.map(|t| t.to_string()),
        status,
    };
    let index = state.index.clone();
    let (page, next_cursor) = tokio::task::spawn_blocking(move || {
        index.page(&filter, cursor.as_ref().map(|c| c.as_str()), limit)
    })
    .await
    .map_err(|e| ApiError::internal(format!("listing failed: {e}")))?;
    let runs: Vec<RunSummary> = page.iter().map(|r| RunSummary::from_record(r)).collect();
    Ok(Json(
        serde_json::json!({ "runs": runs, "next_cursor": next_cursor }),
    ))
}

/// Query of `GET /api/v1/runs/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// `yaml` for the raw run-info.yaml.
    pub format: Option<String>,
}

/// `GET /api/v1/runs/{run_id}` (JSON, or the raw file with `?format=yaml`).
#[utoipa::path(
    get,
    path = "/api/v1/runs/{run}",
    tag = "runs",
    params(("run" = String, Path, description = "Run id"), RunQuery),
    responses((status = 200, description = "run-info as JSON (or the raw YAML with format=yaml)", body = RunSummary), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn run(
    State(state): State<AppState>,
    Path(run): Path<String>,
    Query(query): Query<RunQuery>,
) -> Result<Response, ApiError> {
    let run = lookup::run_id(&run)?;
    let dir = lookup::run_dir(&state, &run)?;
    let entry = scan::read_entry(dir.clone(), Reconcile::Yes);
    match query.format.as_deref() {
        Some("yaml") => {
            let text = std::fs::read_to_string(dir.join(paths::RUN_INFO_FILE))
                .map_err(|e| ApiError::not_found(format!("run-info.yaml of {run}: {e}")))?;
            Ok(([(header::CONTENT_TYPE, "application/yaml")], text).into_response())
        }
        Some("json") | None => {
            let (p, t) = entry
                .info
                .as_ref()
                .map(|i| (i.project_id.clone(), i.task_id.clone()))
                .unwrap_or_default();
            Ok(Json(RunSummary::from_entry(entry, &p, &t)).into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid format {other:?}; allowed: json, yaml"
        ))),
    }
}

/// `GET /api/v1/runs/{run_id}/files/{name}` with `Range: bytes=…` support.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{run}/files/{name}",
    tag = "runs",
    params(("run" = String, Path, description = "Run id"), ("name" = String, Path, description = "stdout, stderr, prompt or output")),
    responses((status = 200, description = "File contents"), (status = 206, description = "Requested Range"), (status = 416, description = "Range not satisfiable"), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn run_file(
    State(state): State<AppState>,
    Path((run, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file_name = match name.as_str() {
        "stdout" => paths::STDOUT_FILE,
        "stderr" => paths::STDERR_FILE,
        "prompt" => paths::PROMPT_FILE,
        "output" => paths::OUTPUT_FILE,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid file {other:?}; allowed: stdout, stderr, prompt, output"
            )))
        }
    };
    let run = lookup::run_id(&run)?;
    let path = lookup::run_dir(&state, &run)?.join(file_name);
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let label = format!("{file_name} of run {run}");
    let content_type = if file_name.ends_with(".md") {
        "text/markdown; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    tokio::task::spawn_blocking(move || {
        read_run_file(&path, &label, range.as_deref(), content_type)
    })
    .await
    .map_err(|e| ApiError::internal(format!("file read task failed: {e}")))?
}

/// Answers with the file at `path` (never through a symlink), or the part `range` asks for;
/// only the bytes sent are read.
fn read_run_file(
    path: &std::path::Path,
    label: &str,
    range: Option<&str>,
    content_type: &'static str,
) -> Result<Response, ApiError> {
    use std::io::{Read, Seek, SeekFrom};

    let not_found = || ApiError::not_found(format!("{label} not found"));
    let file = crate::storage::confined::open_nofollow(path).map_err(|e| {
        if e.is_not_found() {
            not_found()
        } else if e.is_refusal() {
            ApiError::from_confined(e)
        } else {
            ApiError::internal(format!("cannot open {label}: {e}"))
        }
    })?;
    let meta = file
        .metadata()
        .map_err(|e| ApiError::internal(format!("cannot inspect {label}: {e}")))?;
    if !meta.is_file() {
        return Err(not_found());
    }
    let len = meta.len();
    let read = |mut file: &std::fs::File, start: u64, count: u64| {
        let mut bytes = Vec::with_capacity(count.min(16 << 20) as usize);
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.take(count).read_to_end(&mut bytes))
            .map_err(|e| ApiError::internal(format!("cannot read {label}: {e}")))?;
        Ok::<_, ApiError>(bytes)
    };
    match ByteRange::parse(range, len) {
        ByteRange::Full => Ok((
            [
                (header::CONTENT_TYPE, content_type),
                (header::ACCEPT_RANGES, "bytes"),
            ],
            read(&file, 0, len)?,
        )
            .into_response()),
        ByteRange::Part { start, end } => {
            let bytes = read(&file, start, end - start + 1)?;
            let end = start + (bytes.len() as u64).max(1) - 1;
            Ok((
                StatusCode::PARTIAL_CONTENT,
                [
                    (header::CONTENT_TYPE, content_type.to_string()),
                    (header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")),
                ],
                bytes,
            )
                .into_response())
        }
        ByteRange::Unsatisfiable => Ok((
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{len}"))],
        )
            .into_response()),
    }
}
