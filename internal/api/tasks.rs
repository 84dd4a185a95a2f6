//! Starting and controlling tasks through the API: `POST /api/v1/tasks` runs the task's Ralph
//! loop inside the server (sync-then-async with `wait_seconds`), `POST /api/v1/projects`
//! creates a project bound to a working directory, and stop / resume / delete of a task.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::{off_runtime, ApiError};
use super::lookup;
use super::state::AppState;
use super::task_loops::{spawn_loop, LoopRecord, LoopState};
use crate::gc::TaskDeleteError;
use crate::runner::{self, JobRequest, StopOptions, TaskRequest};
use crate::storage::scan::{list_runs, Reconcile};
use crate::storage::{confined, ids, paths, ProjectId, RunStatus, TaskId};
use crate::wire::{
    CreateProjectBody, ProjectCreated, ResumeBody, RunStopped, StartTaskBody, StopBody,
    TaskDeleted, TaskOutcome, TaskResumed, TaskStarted, TaskStopped,
};

/// Longest `grace_seconds` of a stop.
const MAX_GRACE_SECONDS: u64 = 3600;
/// Longest `wait_seconds` a client may ask for.
const MAX_WAIT_SECONDS: u64 = 3600;
/// How long `POST /api/v1/tasks` waits for the first run to be created.
const FIRST_RUN_WAIT: Duration = Duration::from_secs(15);

/// The budget figures of a request body; 400 naming the field when one is not positive.
fn budget_of(
    max_cost_usd: Option<f64>,
    max_tokens: Option<u64>,
) -> Result<crate::config::Budget, ApiError> {
    if let Some(cost) = max_cost_usd.filter(|c| !c.is_finite() || *c <= 0.0) {
        return Err(ApiError::bad_request(format!(
            "invalid max_cost_usd {cost}; allowed: a positive number of US dollars"
        )));
    }
    if max_tokens == Some(0) {
        return Err(ApiError::bad_request(
            "invalid max_tokens 0; allowed: a positive number of tokens",
        ));
    }
    Ok(crate::config::Budget {
        max_cost_usd,
        max_tokens,
    })
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(ApiError::from_json)
}

fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "task_start_disabled",
        message: message.into(),
        retry_after: None,
    }
}

/// Refuses task starts on a read-only server.
fn check_task_start(state: &AppState) -> Result<(), ApiError> {
    if state.update.drain_in_progress() {
        return Err(ApiError::conflict(crate::update::DRAIN_MESSAGE));
    }
    if state.settings.task_start_disabled.value {
        let why = match &state.settings.config_error {
            Some(err) => format!("task start is disabled because the config failed to load: {err}"),
            None => "task start is disabled on this server (read-only; see CONDUCTOR_DISABLE_TASK_START / --disable-task-start)".to_string(),
        };
        return Err(unavailable(why));
    }
    Ok(())
}

/// `POST /api/v1/tasks`
#[utoipa::path(
    post,
    path = "/api/v1/tasks",
    tag = "tasks",
    request_body = StartTaskBody,
    responses((status = 201, description = "Started; run ids and status URL", body = TaskStarted), (status = 200, description = "Ended within wait_seconds: outcome and output", body = TaskStarted), (status = 202, description = "Still running after wait_seconds", body = TaskStarted), (status = 400, description = "Bad body", body = crate::api::error::ErrorBody), (status = 409, description = "Task running or self-update drain", body = crate::api::error::ErrorBody), (status = 503, description = "Task start disabled", body = crate::api::error::ErrorBody))
)]
pub async fn start_task(
    State(state): State<AppState>,
    body: Result<Json<StartTaskBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    check_task_start(&state)?;
    let body = json_body(body)?;
    let project = lookup::project_id(&body.project_id)?;
    let task = match body.task_id.as_deref() {
        Some(raw) => lookup::task_id(raw)?,
        None => ids::generate_task_id(chrono::Utc::now(), Some(&body.prompt)),
    };
    if body.prompt.trim().is_empty() {
        return Err(ApiError::bad_request("prompt must not be empty"));
    }
    let wait = body.wait_seconds.unwrap_or(0);
    if wait > MAX_WAIT_SECONDS {
        return Err(ApiError::bad_request(format!(
            "invalid wait_seconds {wait}; allowed: 0..={MAX_WAIT_SECONDS}"
        )));
    }
    for key in body.env.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(ApiError::bad_request(format!(
                "invalid env variable name {key:?}"
            )));
        }
    }
    let config = &state.settings.config;
    let agent_name = body
        .agent
        .clone()
        .or_else(|| config.defaults.agent.clone())
        .ok_or_else(|| {
            ApiError::bad_request("agent is required (no defaults.agent is configured)")
        })?;
    let agent = crate::agent::select(&agent_name, Some(config))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let budget = budget_of(body.max_cost_usd, body.max_tokens)?;
    let start = StartOnDisk {
        project: project.clone(),
        task: task.clone(),
        agent,
        agent_name,
        prompt: body.prompt,
        env: body.env.into_iter().collect(),
        max_restarts: body.max_restarts,
        depends_on: body.depends_on,
        budget,
    };
    // Checking the task's directory, taking its loop lock and recording the loop write and
    // fsync files: on the blocking pool, so a burst of starts does not stall other requests.
    let worker_state = state.clone();
    let mut rx = off_runtime("task start", move || start.run(&worker_state)).await??;
    let first_run =
        tokio::time::timeout(FIRST_RUN_WAIT, rx.wait_for(|s| *s != LoopState::Starting))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|s| s.clone());
    let status_url = format!("/api/v1/projects/{project}/tasks/{task}");
    let answer = |run_id: Option<String>| TaskStarted {
        project_id: project.to_string(),
        task_id: task.to_string(),
        run_id,
        status: None,
        ended: None,
        status_url: status_url.clone(),
    };
    if let Some(LoopState::Ended {
        outcome,
        run_id: None,
        error,
    }) = &first_run
    {
        if outcome == "no_space" {
            remove_unstarted_task(&state, &project, &task);
            return Err(ApiError::insufficient_storage(format!(
                "task {project}/{task} was not started: {}",
                error.as_deref().unwrap_or("no space left on device")
            )));
        }
    }
    let run_id = match &first_run {
        Some(LoopState::Running { run_id }) => Some(run_id.clone()),
        Some(LoopState::Ended { run_id, .. }) => run_id.clone(),
        _ => None,
    };
    // A loop that waits for its dependencies or a task slot answers at once with why.
    if let Some(LoopState::Waiting { reason }) = &first_run {
        let waiting = TaskStarted {
            status: Some(reason.clone()),
            ..answer(None)
        };
        return Ok((StatusCode::CREATED, Json(waiting)).into_response());
    }
    if wait > 0 {
        let ended = tokio::time::timeout(
            Duration::from_secs(wait),
            rx.wait_for(|s| matches!(s, LoopState::Ended { .. })),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map(|s| s.clone());
        if let Some(LoopState::Ended {
            outcome,
            run_id,
            error,
        }) = ended
        {
            let output = run_id
                .as_deref()
                .and_then(|r| read_output(&state, &project, &task, r));
            let ended = TaskStarted {
                ended: Some(TaskOutcome {
                    outcome,
                    error,
                    output,
                }),
                ..answer(run_id)
            };
            return Ok((StatusCode::OK, Json(ended)).into_response());
        }
        return Ok((StatusCode::ACCEPTED, Json(answer(run_id))).into_response());
    }
    Ok((StatusCode::CREATED, Json(answer(run_id))).into_response())
}

/// The caller's `env` plus what agents of this server need: its config file (so a child run
/// an agent starts with `run-agent job` knows the same agents) and `JRUN_CONDUCTOR_URL`. A
/// caller's env cannot replace either.
fn agent_env(mut env: Vec<(String, String)>, state: &AppState) -> Vec<(String, String)> {
    // The server's config is the only one its runs (and their supervisors' webhooks) use.
    env.retain(|(k, _)| k != crate::config::ENV_CONFIG);
    if let Some(path) = &state.settings.config_path {
        env.push((
            crate::config::ENV_CONFIG.to_string(),
            path.display().to_string(),
        ));
    }
    if let Some(url) = &state.conductor_url {
        env.retain(|(k, _)| k != runner::job::CONDUCTOR_URL_VAR);
        env.push((runner::job::CONDUCTOR_URL_VAR.to_string(), url.clone()));
    }
    env
}

/// The loop request for a task of this server, with the config's defaults.
pub fn task_request(
    state: &AppState,
    project: ProjectId,
    task: TaskId,
    agent: runner::AgentSpec,
    prompt: String,
    env: Vec<(String, String)>,
) -> Result<TaskRequest, String> {
    let config = &state.settings.config;
    let exe = crate::runner::exe::current_exe()
        .map_err(|e| format!("cannot locate the server executable: {e}"))?;
    let root = state.root.path().to_path_buf();
    let mut job = JobRequest::fresh(root, project, task, agent, prompt, exe);
    job.idle_timeout =
        (config.defaults.timeout > 0).then(|| Duration::from_secs(config.defaults.timeout));
    job.extra_env = agent_env(env, state);
    job.max_concurrent_runs = config.defaults.max_concurrent_runs;
    Ok(TaskRequest::new(job, config.defaults.max_restarts))
}

/// The task's new `depends_on`, checked like `--depends-on` (400 naming `depends_on`).
fn check_depends_on(
    state: &AppState,
    project: &ProjectId,
    task: &TaskId,
    list: &[String],
) -> Result<Vec<TaskId>, ApiError> {
    let bad = |e: runner::RunnerError| ApiError::bad_request(e.to_string());
    let deps = runner::deps::parse_list(list, task, "depends_on").map_err(bad)?;
    runner::deps::check(&state.root, project, task, &deps, "depends_on").map_err(bad)?;
    Ok(deps)
}

/// `POST /api/v1/projects/{p}/tasks/{t}/resume`: continues a task's loop after its latest run;
/// its first run continues the latest run's agent session (`agent_session_id`) when the agent
/// type is unchanged.
#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/tasks/{task}/resume",
    tag = "tasks",
    params(("project" = String, Path, description = "Project id"), ("task" = String, Path, description = "Task id")),
    request_body = ResumeBody,
    responses((status = 202, description = "Loop resumed", body = TaskResumed), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody), (status = 409, description = "Running, or done without reset_done", body = crate::api::error::ErrorBody), (status = 503, description = "Task start disabled", body = crate::api::error::ErrorBody))
)]
pub async fn resume_task(
    State(state): State<AppState>,
    Path((project, task)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let project = lookup::project_id(&project)?;
    let task = lookup::task_id(&task)?;
    check_task_start(&state)?;
    let body: ResumeBody = super::error::optional_json(&body)?;
    let worker_state = state.clone();
    let (p, t) = (project.clone(), task.clone());
    off_runtime("task resume", move || {
        resume_on_disk(&worker_state, p, t, body)
    })
    .await??;
    Ok((
        StatusCode::ACCEPTED,
        Json(TaskResumed {
            project_id: project.to_string(),
            task_id: task.to_string(),
            status_url: format!("/api/v1/projects/{project}/tasks/{task}"),
        }),
    )
        .into_response())
}

/// What starting a task does on disk, after its request was checked.
struct StartOnDisk {
    project: ProjectId,
    task: TaskId,
    agent: runner::AgentSpec,
    agent_name: String,
    prompt: String,
    env: Vec<(String, String)>,
    max_restarts: Option<u32>,
    depends_on: Option<Vec<String>>,
    budget: crate::config::Budget,
}

impl StartOnDisk {
    /// Refuses a symlinked or running task and unknown dependencies, takes the task's loop
    /// lock and starts its loop; returns the loop's state.
    fn run(self, state: &AppState) -> Result<tokio::sync::watch::Receiver<LoopState>, ApiError> {
        let StartOnDisk {
            project,
            task,
            agent,
            agent_name,
            prompt,
            env,
            max_restarts,
            depends_on,
            budget,
        } = self;
        // Nothing of the task is reached through a symlink (403 before anything is written).
        state
            .root
            .confined_task_dir(&project, &task)
            .map_err(ApiError::from_confined)?;
        let key = format!("{project}/{task}");
        if state.task_loops.is_active(&key) || task_has_running_run(state, &project, &task) {
            return Err(ApiError::conflict(format!("task {key} is already running")));
        }
        let depends_on = depends_on
            .as_deref()
            .map(|list| check_depends_on(state, &project, &task, list))
            .transpose()?;
        let mut request = task_request(state, project.clone(), task.clone(), agent, prompt, env)
            .map_err(ApiError::internal)?;
        if let Some(max) = max_restarts {
            request.max_restarts = max;
        }
        let lock = runner::TaskLoopLock::acquire(state.root.path(), &project, &task)
            .map_err(|e| lock_error(&project, &task, e))?;
        let record = LoopRecord::new(&request, &agent_name);
        let mut request = runner::LoopRequest::new(request);
        request.depends_on = depends_on;
        request.depends_on_field = "depends_on";
        request.budget = budget;
        Ok(spawn_loop(state, key, request, record, lock))
    }
}

/// What resuming a task does on disk (its checks, the loop lock, DONE, the loop's start), on
/// the blocking pool like a task start.
fn resume_on_disk(
    state: &AppState,
    project: ProjectId,
    task: TaskId,
    body: ResumeBody,
) -> Result<(), ApiError> {
    let dir = lookup::task_dir(&state.root, &project, &task)?;
    let key = format!("{project}/{task}");
    if state.task_loops.is_active(&key) || task_has_running_run(state, &project, &task) {
        return Err(ApiError::conflict(format!("task {key} is already running")));
    }
    let lock = runner::TaskLoopLock::acquire(state.root.path(), &project, &task)
        .map_err(|e| lock_error(&project, &task, e))?;
    let done = dir.join(paths::DONE_FILE);
    if done.exists() {
        if !body.reset_done {
            return Err(ApiError::conflict(format!(
                "task {key} is done; pass \"reset_done\": true to remove DONE and continue"
            )));
        }
        std::fs::remove_file(&done)
            .map_err(|e| ApiError::internal(format!("cannot remove {}: {e}", done.display())))?;
    }
    let latest = super::task_loops::latest_run(&dir);
    let config = &state.settings.config;
    let agent = match (&body.agent, &latest) {
        (Some(name), _) => crate::agent::select(name, Some(config)),
        (None, Some(run)) if !run.agent.is_empty() => {
            crate::agent::select_for_resume(run, Some(config))
        }
        (None, _) => match &config.defaults.agent {
            Some(name) => crate::agent::select(name, Some(config)),
            None => {
                return Err(ApiError::bad_request(
                    "agent is required (the task has no runs)",
                ))
            }
        },
    }
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let cwd = match &body.cwd {
        Some(cwd) if !cwd.is_absolute() || !cwd.is_dir() => {
            return Err(ApiError::bad_request(format!(
                "cwd {} must be an absolute path of an existing directory",
                cwd.display()
            )))
        }
        Some(cwd) => Some(cwd.clone()),
        None => latest
            .as_ref()
            .and_then(|r| r.cwd.as_deref())
            .filter(|c| !c.trim().is_empty())
            .map(PathBuf::from),
    };
    let record = LoopRecord {
        project_id: project.to_string(),
        task_id: task.to_string(),
        agent: agent.name.clone(),
        max_restarts: body.max_restarts.unwrap_or(config.defaults.max_restarts),
        env: Vec::new(),
        cwd: cwd.clone(),
    };
    let (key, mut request) =
        super::task_loops::continue_request(state, &record).map_err(ApiError::bad_request)?;
    request.task.max_restarts = record.max_restarts;
    request.budget = budget_of(body.max_cost_usd, body.max_tokens)?;
    // The first run continues the agent's own conversation when the agent type is unchanged.
    request.task.resume_session =
        crate::agent::session_to_resume(latest.as_ref(), &request.task.job.agent);
    let _ = std::fs::remove_file(dir.join(runner::stop::STOP_MARKER));
    spawn_loop(state, key, request, record, lock);
    Ok(())
}

/// The answer to a task whose loop lock could not be taken: 409 when another loop (of this
/// server or `run-agent task`) runs the task.
fn lock_error(project: &ProjectId, task: &TaskId, e: runner::RunnerError) -> ApiError {
    match e {
            runner::RunnerError::LoopRunning { .. } => ApiError::conflict(format!(
                "task {project}/{task} is already running (its task loop, of this server or `run-agent task`, holds the task)"
            )),
            other if other.is_storage_full() => ApiError::insufficient_storage(format!(
                "task {project}/{task} was not started: {other}"
            )),
            other => ApiError::internal(other.to_string()),
        }
}

/// Removes the directory of a task whose start failed before anything of it was written
/// (only its loop lock, an empty `runs/` and an empty bus whose first post failed), so it
/// does not list as `queued`.
fn remove_unstarted_task(state: &AppState, project: &ProjectId, task: &TaskId) {
    let Ok(dir) = state.root.confined_task_dir(project, task) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let runs = dir.join(paths::RUNS_DIR);
    let only_ours = entries.flatten().all(|e| {
        let name = e.file_name();
        name == paths::TASK_LOOP_LOCK_FILE
            || (name == paths::TASK_BUS_FILE && e.metadata().is_ok_and(|m| m.len() == 0))
            || (name == paths::RUNS_DIR
                && std::fs::read_dir(&runs).is_ok_and(|mut r| r.next().is_none()))
    });
    if only_ours {
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            tracing::warn!("cannot remove {}: {err}", dir.display());
        }
    }
}

/// Whether the task has a running run (a task reached through a symlink has none here).
fn task_has_running_run(state: &AppState, project: &ProjectId, task: &TaskId) -> bool {
    let Ok(dir) = state.root.confined_task_dir(project, task) else {
        return false;
    };
    list_runs(&dir, Reconcile::Yes)
        .iter()
        .any(|r| r.status() == RunStatus::Running)
}

fn read_output(state: &AppState, project: &ProjectId, task: &TaskId, run: &str) -> Option<String> {
    let run = ids::RunId::parse(run).ok()?;
    let path = state
        .root
        .run_dir(project, task, &run)
        .join(paths::OUTPUT_FILE);
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut confined::open_file(state.root.path(), &path).ok()?,
        &mut text,
    )
    .ok()?;
    Some(text)
}

/// `POST /api/v1/projects`
#[utoipa::path(
    post,
    path = "/api/v1/projects",
    tag = "projects",
    request_body = CreateProjectBody,
    responses((status = 201, description = "Created", body = ProjectCreated), (status = 400, description = "Bad id or project_root", body = crate::api::error::ErrorBody), (status = 409, description = "Project exists", body = crate::api::error::ErrorBody))
)]
pub async fn create_project(
    State(state): State<AppState>,
    body: Result<Json<CreateProjectBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(body)?;
    let project = lookup::project_id(&body.project_id)?;
    if !body.project_root.is_absolute() {
        return Err(ApiError::bad_request(format!(
            "project_root {:?} must be an absolute path",
            body.project_root
        )));
    }
    if !body.project_root.is_dir() {
        return Err(ApiError::bad_request(format!(
            "project_root {} is not an existing directory",
            body.project_root.display()
        )));
    }
    let dir = state
        .root
        .confined_project_dir(&project)
        .map_err(ApiError::from_confined)?;
    if std::fs::symlink_metadata(&dir).is_ok() {
        return Err(ApiError::conflict(format!(
            "project {project} already exists"
        )));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", dir.display())))?;
    let text = format!("{}\n", body.project_root.display());
    crate::storage::atomic::write_atomic(&dir.join(paths::PROJECT_ROOT_FILE), text.as_bytes())
        .map_err(|e| ApiError::internal(format!("cannot write PROJECT-ROOT.txt: {e}")))?;
    Ok((
        StatusCode::CREATED,
        Json(ProjectCreated {
            project_id: project.to_string(),
            project_root: body.project_root,
        }),
    )
        .into_response())
}

/// The grace period asked for by a stop body; an empty body means the default.
fn stop_grace(body: &[u8]) -> Result<Duration, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(runner::stop::DEFAULT_GRACE);
    }
    let body: StopBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid request body: {e}; allowed: empty, or {{\"grace_seconds\": 0..={MAX_GRACE_SECONDS}}}"
        ))
    })?;
    match body.grace_seconds {
        None => Ok(runner::stop::DEFAULT_GRACE),
        Some(secs) if secs <= MAX_GRACE_SECONDS => Ok(Duration::from_secs(secs)),
        Some(secs) => Err(ApiError::bad_request(format!(
            "invalid grace_seconds {secs}; allowed: 0..={MAX_GRACE_SECONDS}"
        ))),
    }
}

/// `POST /api/v1/projects/{p}/tasks/{t}/stop`: stops the task's running runs and its loop.
/// Answers once the runs have ended (SIGTERM, then SIGKILL after the grace period).
#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/tasks/{task}/stop",
    tag = "tasks",
    params(("project" = String, Path, description = "Project id"), ("task" = String, Path, description = "Task id")),
    request_body(content = Option<StopBody>, description = "Optional; an empty body uses the default grace period (30 s)", content_type = "application/json"),
    responses((status = 200, description = "Runs stopped; the loop will not restart", body = TaskStopped), (status = 400, description = "Bad id, query or body (grace_seconds outside 0..=3600)", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn stop_task(
    State(state): State<AppState>,
    Path((project, task)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<TaskStopped>, ApiError> {
    let project = lookup::project_id(&project)?;
    let task = lookup::task_id(&task)?;
    let grace = stop_grace(&body)?;
    let dir = lookup::task_dir(&state.root, &project, &task)?;
    let (stopped, errors) = stop_task_runs_with(dir, grace).await?;
    Ok(Json(TaskStopped {
        project_id: project.to_string(),
        task_id: task.to_string(),
        stopped_runs: stopped,
        errors,
    }))
}

/// Marks the task in `dir` stopped (its loop will not restart) and stops its running runs
/// with the default grace period. Returns the stopped run ids and the errors of runs that
/// could not be stopped.
pub async fn stop_task_runs(dir: PathBuf) -> Result<(Vec<String>, Vec<String>), ApiError> {
    stop_task_runs_with(dir, runner::stop::DEFAULT_GRACE).await
}

/// [`stop_task_runs`] with `grace` between SIGTERM and SIGKILL.
pub async fn stop_task_runs_with(
    dir: PathBuf,
    grace: Duration,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let running: Vec<PathBuf> = list_runs(&dir, Reconcile::Yes)
        .into_iter()
        .filter(|r| r.status() == RunStatus::Running)
        .map(|r| r.dir)
        .collect();
    // Even with no run active right now, the loop must not start another one.
    let stamp = format!(
        "{}\n",
        crate::storage::time::format_rfc3339_nano(&chrono::Utc::now())
    );
    crate::storage::atomic::write_atomic(&dir.join(runner::stop::STOP_MARKER), stamp.as_bytes())
        .map_err(|e| ApiError::internal(format!("cannot write the stop marker: {e}")))?;
    let results = tokio::task::spawn_blocking(move || {
        running
            .iter()
            .map(|run_dir| {
                let opts = StopOptions {
                    grace,
                    force: false,
                };
                runner::stop_run(run_dir, opts)
                    .map(|i| i.run_id)
                    .map_err(|e| e.to_string())
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::internal(format!("stop failed: {e}")))?;
    let (ok, errors): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    Ok((
        ok.into_iter().flatten().collect(),
        errors.into_iter().filter_map(Result::err).collect(),
    ))
}

/// `POST /api/v1/runs/{run}/stop`: SIGTERM to the run's process group, SIGKILL after the
/// grace period; answers once the run has ended.
#[utoipa::path(
    post,
    path = "/api/v1/runs/{run}/stop",
    tag = "runs",
    params(("run" = String, Path, description = "Run id")),
    request_body(content = Option<StopBody>, description = "Optional; an empty body uses the default grace period (30 s)", content_type = "application/json"),
    responses((status = 200, description = "Stopped", body = RunStopped), (status = 400, description = "Bad id, query or body (grace_seconds outside 0..=3600)", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody), (status = 409, description = "Not running", body = crate::api::error::ErrorBody))
)]
pub async fn stop_run(
    State(state): State<AppState>,
    Path(run): Path<String>,
    body: Bytes,
) -> Result<Json<RunStopped>, ApiError> {
    let run = lookup::run_id(&run)?;
    let grace = stop_grace(&body)?;
    let dir = lookup::run_dir(&state, &run)?;
    let info = off_runtime("stop", move || {
        runner::stop_run(
            &dir,
            StopOptions {
                grace,
                force: false,
            },
        )
    })
    .await?
    .map_err(|e| match e {
        runner::RunnerError::NotRunning(msg) => ApiError::conflict(msg),
        other => ApiError::internal(other.to_string()),
    })?;
    Ok(Json(RunStopped {
        run_id: info.run_id,
        status: info.status,
    }))
}

/// `DELETE /api/v1/projects/{p}/tasks/{t}`: removes a task that has no running run.
#[utoipa::path(
    delete,
    path = "/api/v1/projects/{project}/tasks/{task}",
    tag = "tasks",
    params(("project" = String, Path, description = "Project id"), ("task" = String, Path, description = "Task id")),
    responses((status = 200, description = "Deleted", body = TaskDeleted), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody), (status = 409, description = "Task running", body = crate::api::error::ErrorBody))
)]
pub async fn delete_task(
    State(state): State<AppState>,
    Path((project, task)): Path<(String, String)>,
) -> Result<Json<TaskDeleted>, ApiError> {
    let project = lookup::project_id(&project)?;
    let task = lookup::task_id(&task)?;
    lookup::task_dir(&state.root, &project, &task)?;
    let key = format!("{project}/{task}");
    if state.task_loops.is_active(&key) {
        return Err(ApiError::conflict(format!(
            "task {key} is running; stop it before deleting it"
        )));
    }
    let root = state.root.clone();
    let (p, t) = (project.clone(), task.clone());
    off_runtime("delete", move || crate::gc::delete_task(&root, &p, &t))
        .await?
        .map_err(|e| match e {
            TaskDeleteError::NotFound { .. } => ApiError::not_found(e.to_string()),
            TaskDeleteError::Refused(err) => ApiError::from_confined(err),
            TaskDeleteError::Running { .. } => ApiError::conflict(format!(
                "task {key} is running; stop it before deleting it ({e})"
            )),
            TaskDeleteError::Gc(err) => ApiError::internal(err.to_string()),
        })?;
    Ok(Json(TaskDeleted {
        project_id: project.to_string(),
        task_id: task.to_string(),
        deleted: true,
    }))
}
