//! Read-only views of the tree: projects, tasks, runs, run files.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::error::{off_runtime, ApiError};
use super::index::{IndexState, RunFilter, TaskRuns};
use super::lookup;
use super::range::ByteRange;
use super::state::{AppState, ServerState};
use super::task_files::{Marker, Present};
use crate::runner::inspect::{derive_status, Dependencies, TaskStatus};
use crate::storage::scan::{self, list_projects, Reconcile, RunEntry};
use crate::storage::{paths, ProjectId, RunId, RunStatus, TaskId, UsageTotals};
use crate::wire::{
    ProjectList, ProjectSummary, RunDetail, RunSummary, RunsPage as RunsAnswer, TaskList,
    TaskSummary, TaskView,
};

/// Largest page of runs a client may ask for.
const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;
/// Runs in one page of a task view (`GET /api/v1/projects/{p}/tasks/{t}`) by default.
const DEFAULT_TASK_PAGE: usize = 20;

/// How long a listing that needs the run index waits for it while the server builds it at
/// start; after that it answers 503 `indexing` (with `Retry-After: 1`).
pub const INDEX_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits (at most [`INDEX_WAIT`]) for the run index built in the background at start.
pub async fn index_ready(state: &AppState) -> Result<(), ApiError> {
    index_ready_within(state, INDEX_WAIT).await
}

async fn index_ready_within(state: &AppState, wait: std::time::Duration) -> Result<(), ApiError> {
    if matches!(state.index.state(), IndexState::Ready(_)) {
        return Ok(());
    }
    let index = state.index.clone();
    let ready = tokio::task::spawn_blocking(move || index.wait_ready(wait))
        .await
        .unwrap_or(false);
    if ready {
        return Ok(());
    }
    Err(ApiError {
        status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
        code: "indexing",
        message: format!(
            "the run index is still being built ({} runs so far); retry shortly",
            state.index.len()
        ),
        retry_after: Some(1),
    })
}

/// `GET /api/v1/projects`
#[utoipa::path(
    get,
    path = "/api/v1/projects",
    tag = "projects",
    responses((status = 200, description = "Projects with task counts", body = ProjectList))
)]
pub async fn projects(State(state): State<AppState>) -> Result<Json<ProjectList>, ApiError> {
    let projects = off_runtime("listing projects", move || {
        list_projects(state.root.path())
            .iter()
            .map(|p| ProjectSummary {
                project_id: p.id.to_string(),
                task_count: scan::task_dirs(p).len(),
                usage: state.index.usage_of(Some(p.id.as_str())),
            })
            .collect()
    })
    .await?;
    Ok(Json(ProjectList { projects }))
}

/// A run's summary from its directory entry.
fn run_summary(entry: RunEntry, project_id: &str, task_id: &str) -> RunSummary {
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
        usage: info.as_ref().and_then(|i| i.usage.clone()),
        info,
        error,
    }
}

/// A task's status from its DONE marker, its runs as the index knows them (any running, the
/// newest), its dependencies and its task loop (a loop between two runs keeps the task
/// `running`): the same rule `run-agent list` applies ([`derive_status`]).
/// The derived status of a task; `loop_lock_dir` is the task directory when its loop lock
/// may exist (`None`: no loop holds the task).
fn task_status(
    done: bool,
    runs: &TaskRuns,
    blocked: bool,
    loop_lock_dir: Option<&std::path::Path>,
) -> TaskStatus {
    let mut statuses = Vec::with_capacity(2);
    if runs.any_running {
        statuses.push(RunStatus::Running);
    }
    if let Some((_, newest)) = &runs.newest {
        statuses.push(*newest);
    }
    let loop_active = loop_lock_dir
        .is_some_and(|dir| crate::runner::inspect::loop_active_if_it_matters(done, &statuses, dir));
    derive_status(done, &statuses, blocked, loop_active)
}

/// `GET /api/v1/projects/{p}/tasks`
#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/tasks",
    tag = "tasks",
    params(("project" = String, Path, description = "Project id")),
    responses((status = 200, description = "Tasks with derived status", body = TaskList), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody), (status = 503, description = "The run index is still being built at start (code `indexing`)", body = crate::api::error::ErrorBody))
)]
pub async fn tasks(
    State(state): State<AppState>,
    Path(project): Path<String>,
) -> Result<Json<TaskList>, ApiError> {
    let project = lookup::project_id(&project)?;
    let dir = lookup::project_dir(&state.root, &project)?;
    index_ready(&state).await?;
    let entry = scan::ProjectEntry {
        id: project.clone(),
        dir,
    };
    let tasks = off_runtime("listing tasks", move || {
        state.index.reconcile_stale();
        project_task_summaries(&state, &entry)
    })
    .await?;
    Ok(Json(TaskList {
        project_id: Some(project.to_string()),
        tasks,
    }))
}

/// Query of `GET /api/v1/projects/{p}/tasks/{t}`: a page of the task's runs.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    /// Runs per page, newest first (default 20, at most 1000).
    pub limit: Option<usize>,
    /// Continue after this run id (the `next_cursor` of the previous page).
    pub cursor: Option<String>,
}

/// `GET /api/v1/projects/{p}/tasks/{t}`
#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/tasks/{task}",
    tag = "tasks",
    params(("project" = String, Path, description = "Project id"), ("task" = String, Path, description = "Task id"), TaskQuery),
    responses((status = 200, description = "TASK.md, DONE, run_count and one page of runs (newest first) with next_cursor", body = TaskView), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody), (status = 503, description = "The run index is still being built at start (code `indexing`)", body = crate::api::error::ErrorBody))
)]
pub async fn task(
    State(state): State<AppState>,
    Path((project, task)): Path<(String, String)>,
    Query(query): Query<TaskQuery>,
) -> Result<Json<TaskView>, ApiError> {
    let project = lookup::project_id(&project)?;
    let task = lookup::task_id(&task)?;
    let limit = page_limit(query.limit, DEFAULT_TASK_PAGE)?;
    let cursor = query.cursor.as_deref().map(lookup::run_id).transpose()?;
    let dir = lookup::task_dir(&state.root, &project, &task)?;
    index_ready(&state).await?;
    let view = off_runtime("reading the task", move || {
        let page = RunsPage {
            limit: Some(limit),
            cursor: cursor.as_ref(),
        };
        task_view(&state, &project, &task, &dir, page)
    })
    .await?;
    Ok(Json(view))
}

/// Which of a task's runs a task view holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunsPage<'a> {
    /// At most this many (all when `None`).
    pub limit: Option<usize>,
    /// Only runs older than this one.
    pub cursor: Option<&'a RunId>,
}

/// The view of one task: status, DONE, TASK.md, its run count and one page of its runs,
/// newest first (read from the files, so the newest runs are always current).
pub fn task_view(
    state: &ServerState,
    project: &ProjectId,
    task: &TaskId,
    dir: &std::path::Path,
    page: RunsPage<'_>,
) -> TaskView {
    let read_regular = |name: &str| -> Option<String> {
        let path = dir.join(name);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        meta.is_file()
            .then(|| std::fs::read_to_string(&path).ok())
            .flatten()
    };
    let present = state.task_files.present(dir);
    let done = present.may_have(Marker::Done) && scan::is_done(dir);
    let runs_dir = dir.join(paths::RUNS_DIR);
    let mut names = scan::run_names(&runs_dir);
    names.sort_unstable_by(|a, b| b.cmp(a));
    let start = page
        .cursor
        .map_or(0, |c| names.partition_point(|n| n.as_str() >= c.as_str()));
    let end = page
        .limit
        .map_or(names.len(), |l| start.saturating_add(l).min(names.len()));
    let read = |name: &str| {
        let entry = scan::read_entry(runs_dir.join(name), Reconcile::Yes);
        run_summary(entry, project.as_str(), task.as_str())
    };
    let runs: Vec<RunSummary> = names[start..end].iter().map(|n| read(n)).collect();
    // The newest run decides the status; the index knows whether an older one still runs.
    let newest = match (start, runs.first(), names.first()) {
        (0, Some(first), _) => Some((first.run_id.clone(), first.status)),
        (_, _, Some(name)) => Some((name.clone(), read(name).status)),
        _ => None,
    };
    let indexed = state.index.task_runs(project.as_str(), task.as_str());
    let any_running = runs.iter().any(|r| r.status == RunStatus::Running)
        || newest
            .as_ref()
            .is_some_and(|(_, s)| *s == RunStatus::Running)
        || (indexed.any_running && {
            state
                .index
                .refresh_running_of(project.as_str(), task.as_str());
            state
                .index
                .task_runs(project.as_str(), task.as_str())
                .any_running
        });
    let summary = TaskRuns {
        run_count: names.len(),
        newest,
        any_running,
        last_activity_ns: None,
        usage: Default::default(),
    };
    let deps = if present.may_have(Marker::Config) {
        Dependencies::read(dir)
    } else {
        Dependencies::default()
    };
    let next_cursor = (end < names.len() && end > start).then(|| names[end - 1].clone());
    TaskView {
        project_id: project.to_string(),
        task_id: task.to_string(),
        status: task_status(
            done,
            &summary,
            deps.is_blocked(),
            present.may_have(Marker::LoopLock).then_some(dir),
        )
        .as_str()
        .to_string(),
        done,
        task_md: read_regular(paths::TASK_FILE),
        depends_on: ids_text(&deps.depends_on),
        blocked_by: ids_text(&deps.blocked_by),
        deps_error: deps.error,
        run_count: names.len(),
        usage: task_usage(state, project, task, &indexed),
        runs,
        next_cursor,
        budget_exceeded: present
            .may_have(Marker::Budget)
            .then(|| crate::runner::budget::marked(dir))
            .flatten(),
    }
}

fn ids_text(ids: &[TaskId]) -> Vec<String> {
    ids.iter().map(TaskId::to_string).collect()
}

/// The usage of a task's runs, from the index (its running runs re-read first, so a view
/// shows what they recorded a moment ago).
fn task_usage(
    state: &ServerState,
    project: &ProjectId,
    task: &TaskId,
    indexed: &TaskRuns,
) -> UsageTotals {
    if indexed.any_running {
        state
            .index
            .refresh_running_of(project.as_str(), task.as_str());
        return state.index.task_runs(project.as_str(), task.as_str()).usage;
    }
    indexed.usage.clone()
}

/// The task lines of one project, in task id order (see [`task_summary`]). The marker files
/// of each task are looked up only when the task directory may hold them
/// ([`super::task_files`]).
pub fn project_task_summaries(
    state: &ServerState,
    project: &scan::ProjectEntry,
) -> Vec<TaskSummary> {
    scan::task_dirs(project)
        .into_iter()
        .map(|(id, dir)| {
            let present = state.task_files.present(&dir);
            let task = scan::TaskEntry {
                project: project.id.clone(),
                id,
                done: present.may_have(Marker::Done) && scan::is_done(&dir),
                dir,
            };
            task_summary(state, &task, present)
        })
        .collect()
}

/// One line of a task listing, from the run index: status, DONE, run count, newest run,
/// last activity and the dependencies that are not DONE. `present` tells which marker files
/// of the task directory may exist (the others are not looked up).
pub fn task_summary(state: &ServerState, task: &scan::TaskEntry, present: Present) -> TaskSummary {
    let (project, id) = (task.project.as_str(), task.id.as_str());
    let mut runs = state.index.task_runs(project, id);
    if runs.any_running {
        state.index.refresh_running_of(project, id);
        runs = state.index.task_runs(project, id);
    }
    let deps = if present.may_have(Marker::Config) {
        Dependencies::read(&task.dir)
    } else {
        Dependencies::default()
    };
    let last_activity = runs
        .last_activity_ns
        .map(chrono::DateTime::from_timestamp_nanos)
        .map(|t| crate::storage::time::format_rfc3339_nano(&t));
    TaskSummary {
        project_id: task.project.to_string(),
        task_id: task.id.to_string(),
        status: task_status(
            task.done,
            &runs,
            deps.is_blocked(),
            present
                .may_have(Marker::LoopLock)
                .then_some(task.dir.as_path()),
        )
        .as_str()
        .to_string(),
        done: task.done,
        run_count: runs.run_count,
        latest_run: runs.newest.map(|(id, _)| id),
        last_activity,
        blocked_by: ids_text(&deps.blocked_by),
        usage: runs.usage,
        budget_exceeded: present
            .may_have(Marker::Budget)
            .then(|| crate::runner::budget::marked(&task.dir))
            .flatten(),
    }
}

/// A page size from a query: `default` when absent, 400 outside 1..=1000.
fn page_limit(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "invalid limit {limit}; allowed: 1..={MAX_PAGE}"
        )));
    }
    Ok(limit)
}

/// The `agent` filter of a listing: a non-empty name or type without control characters.
fn agent_filter(text: &str) -> Result<String, ApiError> {
    let agent = text.trim();
    if agent.is_empty() || agent.len() > 200 || agent.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "invalid agent {text:?}; allowed: an agent name or type (1 to 200 characters, no control characters)"
        )));
    }
    Ok(agent.to_string())
}

/// A start-time bound (`since`/`until`) of a listing, in ns since the epoch; a time outside
/// what ns since the epoch can hold (years 1677..2262) is clamped to its end of that range.
fn start_bound(name: &str, text: &str) -> Result<i64, ApiError> {
    let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| {
        ApiError::bad_request(format!(
            "invalid {name} {text:?}; allowed: an RFC 3339 time such as 2026-12-05T13:00:00Z"
        ))
    })?;
    Ok(time
        .timestamp_nanos_opt()
        .unwrap_or(if time.timestamp() > 0 {
            i64::MAX
        } else {
            i64::MIN
        }))
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
    /// Only runs of this agent: its configured name (`agent_name`) or its type (`agent`).
    pub agent: Option<String>,
    /// Only runs started at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only runs started before this RFC 3339 time.
    pub until: Option<String>,
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
    responses((status = 200, description = "A page of runs, newest first, and next_cursor", body = RunsAnswer), (status = 400, description = "Bad filter", body = crate::api::error::ErrorBody))
)]
pub async fn runs(
    State(state): State<AppState>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<RunsAnswer>, ApiError> {
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
    let limit = page_limit(query.limit, DEFAULT_PAGE)?;
    let cursor = query.cursor.as_deref().map(lookup::run_id).transpose()?;
    let agent = query.agent.as_deref().map(agent_filter).transpose()?;
    let since_ns = query
        .since
        .as_deref()
        .map(|t| start_bound("since", t))
        .transpose()?;
    let until_ns = query
        .until
        .as_deref()
        .map(|t| start_bound("until", t))
        .transpose()?;
    if let (Some(since), Some(until)) = (since_ns, until_ns) {
        if since >= until {
            return Err(ApiError::bad_request(
                "invalid time range: since must be before until",
            ));
        }
    }
    let filter = RunFilter {
        project: project.map(|p| p.to_string()),
        task: task.map(|t| t.to_string()),
        status,
        agent,
        since_ns,
        until_ns,
    };
    index_ready(&state).await?;
    let index = state.index.clone();
    let (runs, next_cursor) = off_runtime("listing", move || {
        let (page, next) = index.page(&filter, cursor.as_ref().map(|c| c.as_str()), limit);
        let runs: Vec<RunSummary> = page
            .into_iter()
            .map(|r| {
                let entry = scan::read_entry(r.dir, Reconcile::No);
                run_summary(entry, &r.project_id, &r.task_id)
            })
            .collect();
        (runs, next)
    })
    .await?;
    Ok(Json(RunsAnswer { runs, next_cursor }))
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
    responses((status = 200, description = "run-info as JSON (or the raw YAML with format=yaml)", body = RunDetail), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn run(
    State(state): State<AppState>,
    Path(run): Path<String>,
    Query(query): Query<RunQuery>,
) -> Result<Response, ApiError> {
    let run = lookup::run_id(&run)?;
    let dir = lookup::run_dir(&state, &run)?;
    let format = query.format;
    off_runtime("reading the run", move || match format.as_deref() {
        Some("yaml") => {
            let text = std::fs::read_to_string(dir.join(paths::RUN_INFO_FILE))
                .map_err(|e| ApiError::not_found(format!("run-info.yaml of {run}: {e}")))?;
            Ok(([(header::CONTENT_TYPE, "application/yaml")], text).into_response())
        }
        Some("json") | None => {
            let entry = scan::read_entry(dir.clone(), Reconcile::Yes);
            let (p, t) = run_owner(&state, &entry);
            let (previous_run, next_run) = state.index.neighbours(&p, &t, run.as_str());
            let body = RunDetail {
                run: run_summary(entry, &p, &t),
                files: super::run_files::file_sizes(&dir),
                previous_run,
                next_run,
            };
            Ok(Json(body).into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid format {other:?}; allowed: json, yaml"
        ))),
    })
    .await?
}

/// The project and task a run belongs to: from its path `<project>/<task>/runs/<run>`, or for
/// a run of a flat extra root (`<extra>/runs/<run>`) from its record.
fn run_owner(state: &ServerState, entry: &RunEntry) -> (String, String) {
    let runs_dir = entry.dir.parent();
    let base = runs_dir.and_then(std::path::Path::parent);
    let flat = state
        .settings
        .config
        .storage
        .extra_roots
        .iter()
        .any(|e| base == Some(e.as_path()));
    if flat {
        return entry
            .info
            .as_ref()
            .map(|i| (i.project_id.clone(), i.task_id.clone()))
            .unwrap_or_default();
    }
    let name = |p: Option<&std::path::Path>| {
        p.and_then(std::path::Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    (name(base.and_then(std::path::Path::parent)), name(base))
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
    off_runtime("reading the file", move || {
        read_run_file(&path, &label, range.as_deref(), content_type)
    })
    .await?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{resolve_server, ConfigMode, ServerFlags};

    #[tokio::test]
    async fn listings_answer_indexing_until_the_index_is_built() {
        let dir = tempfile::tempdir().unwrap();
        let flags = ServerFlags {
            root: Some(dir.path().to_path_buf()),
            ..ServerFlags::default()
        };
        let env = |k: &str| (k == "HOME").then(|| "/nonexistent".to_string());
        let settings = resolve_server(&flags, ConfigMode::Optional, &env, dir.path()).unwrap();
        // A fresh state's index is not started: it stays `building`.
        let state: AppState = std::sync::Arc::new(ServerState::new(settings));
        let wait = std::time::Duration::from_millis(20);
        let err = index_ready_within(&state, wait).await.unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code, "indexing");
        assert_eq!(err.retry_after, Some(1));
        state.index.start();
        index_ready_within(&state, std::time::Duration::from_secs(60))
            .await
            .unwrap();
    }
}
