//! Task loops (Ralph loops) run by the server: their in-memory registry, and their records
//! under `<root>/.conductor/task-loops/` so that a server that exits, crashes or re-execs
//! (self-update handoff) resumes the loops of its unfinished tasks when it starts again.
//!
//! Runs are owned by their supervisors, so a resumed loop first waits for the task's still
//! running run (learning of its end from the files), then continues the restart chain after it.
//!
//! Every loop holds its task's loop lock ([`TaskLoopLock`]) from the request that starts it to
//! its end, so a task can have one loop at a time, whether this server or `run-agent task`
//! runs it, and the task reads as running between its runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::state::AppState;
use crate::runner::{self, LoopRequest, TaskEnd, TaskLoopLock, TaskRequest};
use crate::storage::atomic::write_atomic;
use crate::storage::paths::TASK_FILE;
use crate::storage::scan::{list_runs, Reconcile};
use crate::storage::{ProjectId, RunInfo, RunStatus, TaskId};

/// Directory of loop records under `<root>/.conductor/`.
const RECORDS_DIR: &str = "task-loops";
/// Re-check interval while waiting for a run to end (notification is the main signal).
const RECHECK: Duration = Duration::from_secs(2);

/// Progress of a task loop running in this server.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LoopState {
    /// The loop is preparing (or waiting for) its next run.
    Starting,
    /// The loop waits before its first run.
    Waiting {
        /// `blocked` (dependencies not DONE) or `queued` (no free task slot).
        reason: String,
    },
    /// A run of the loop is active.
    Running {
        /// The current run.
        run_id: String,
    },
    /// The loop ended.
    Ended {
        /// `done`, `stopped`, `budget_exceeded` (the task's runs passed its budget; `error`
        /// has the figures), `gave_up`, `error`, or `no_space` (the file system is full).
        outcome: String,
        /// The last run, if any.
        run_id: Option<String>,
        /// Error text when the loop itself failed.
        error: Option<String>,
    },
}

/// Task loops of this server, keyed by `project/task`.
#[derive(Debug, Default)]
pub struct TaskLoops {
    loops: Mutex<HashMap<String, watch::Receiver<LoopState>>>,
}

impl TaskLoops {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Receiver<LoopState>>> {
        self.loops.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of loops that have not ended.
    pub fn active(&self) -> usize {
        self.lock()
            .values()
            .filter(|rx| !matches!(*rx.borrow(), LoopState::Ended { .. }))
            .count()
    }

    /// Whether the loop of `key` (`project/task`) is running.
    pub fn is_active(&self, key: &str) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|rx| !matches!(*rx.borrow(), LoopState::Ended { .. }))
    }
}

/// What the server needs to resume a loop after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopRecord {
    /// Project id.
    pub project_id: String,
    /// Task id.
    pub task_id: String,
    /// Agent name or type the loop was started with.
    pub agent: String,
    /// Restarts allowed after the first attempt.
    pub max_restarts: u32,
    /// Extra agent environment given at start.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Working directory of the agent (a resume's; `None`: the project's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
}

impl LoopRecord {
    /// The record of a loop about to start.
    pub fn new(request: &TaskRequest, agent: &str) -> Self {
        Self {
            project_id: request.job.project.to_string(),
            task_id: request.job.task.to_string(),
            agent: agent.to_string(),
            max_restarts: request.max_restarts,
            env: request.job.extra_env.clone(),
            cwd: request.job.cwd.clone(),
        }
    }

    fn file_name(&self) -> String {
        format!("{}__{}.json", self.project_id, self.task_id)
    }
}

fn records_dir(state: &AppState) -> PathBuf {
    state.root.state_dir().join(RECORDS_DIR)
}

fn save(state: &AppState, record: &LoopRecord) {
    let dir = records_dir(state);
    let result = std::fs::create_dir_all(&dir).and_then(|()| {
        let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        write_atomic(&dir.join(record.file_name()), &json)
    });
    if let Err(err) = result {
        tracing::warn!(
            "cannot record task loop {}/{}: {err}",
            record.project_id,
            record.task_id
        );
    }
}

fn forget(dir: &Path, record: &LoopRecord) {
    let _ = std::fs::remove_file(dir.join(record.file_name()));
}

/// Runs the task loop ([`runner::drive`]) on its own thread, registers it and records it on
/// disk until it ends; `lock` (the task's loop lock) is held by the thread until then.
pub fn spawn_loop(
    state: &AppState,
    key: String,
    mut request: LoopRequest,
    record: LoopRecord,
    lock: TaskLoopLock,
) -> watch::Receiver<LoopState> {
    let (tx, rx) = watch::channel(LoopState::Starting);
    state.task_loops.lock().insert(key.clone(), rx.clone());
    save(state, &record);
    let records = records_dir(state);
    // defaults.max_concurrent_root_tasks: the same slots as `run-agent task` (runner::slots).
    request.task_slots = state.settings.config.defaults.max_concurrent_root_tasks;
    request.task.default_budget = state.settings.config.defaults.budget;
    request.task.webhook =
        crate::runner::webhook::WebhookTarget::from_config(&state.settings.config);
    let index = state.index.clone();
    std::thread::spawn(move || {
        let job = &request.task.job;
        let runs_dir = crate::storage::Root::new(&job.root).runs_dir(&job.project, &job.task);
        let observer = ServerLoop {
            key: &key,
            tx: &tx,
            index: &index,
            runs_dir: &runs_dir,
        };
        let result = runner::drive(&request, &lock, &observer);
        let end = match result {
            Ok(TaskEnd::Done { last }) => ("done", last.map(|r| r.run_id), None),
            Ok(TaskEnd::Stopped { last }) => ("stopped", last.map(|r| r.run_id), None),
            Ok(TaskEnd::BudgetExceeded { last, summary }) => {
                ("budget_exceeded", last.map(|r| r.run_id), Some(summary))
            }
            Ok(TaskEnd::GaveUp { last, .. }) => {
                // Why the last attempt failed (the agent's own reason, see agent::failure).
                let error = last.as_ref().and_then(|r| r.error_summary.clone());
                ("gave_up", last.map(|r| r.run_id), error)
            }
            Err(err) if err.is_storage_full() => ("no_space", None, Some(err.to_string())),
            Err(err) => ("error", None, Some(err.to_string())),
        };
        let run_id = end.1.or_else(|| match &*tx.borrow() {
            LoopState::Running { run_id } => Some(run_id.clone()),
            _ => None,
        });
        forget(&records, &record);
        tracing::info!(task = %key, outcome = end.0, "task loop ended");
        tx.send_replace(LoopState::Ended {
            outcome: end.0.to_string(),
            run_id,
            error: end.2,
        });
        drop(lock);
    });
    rx
}

/// How a server loop reports: its state to the registry, its runs to the index at once.
struct ServerLoop<'a> {
    key: &'a str,
    tx: &'a watch::Sender<LoopState>,
    index: &'a crate::api::index::RunIndex,
    runs_dir: &'a Path,
}

impl runner::LoopObserver for ServerLoop<'_> {
    fn notice(&self, text: &str) {
        tracing::info!(task = %self.key, "{text}");
    }

    fn waiting(&self, why: &runner::Waiting) {
        self.tx.send_replace(LoopState::Waiting {
            reason: why.as_str().to_string(),
        });
    }

    fn run_started(&self, run: &runner::PreparedRun, _attempt: u32) {
        // Listings see the new run at once, not only after its file event.
        self.index.refresh(&self.runs_dir.join(&run.run_id));
        self.tx.send_replace(LoopState::Running {
            run_id: run.run_id.to_string(),
        });
    }
}

/// The task's latest run (highest run id) with a readable record, reconciled.
pub fn latest_run(task_dir: &Path) -> Option<RunInfo> {
    list_runs(task_dir, Reconcile::Yes)
        .into_iter()
        .rev()
        .find_map(|entry| entry.info.ok())
}

/// Blocks until the run in `run_dir` is no longer `running` (file-change driven).
pub fn wait_run_end(run_dir: &Path) -> Option<RunInfo> {
    crate::storage::liveness::wait_until_ended(run_dir, RECHECK).ok()
}

/// Builds the request that continues `record`'s task after its latest run.
pub fn continue_request(
    state: &AppState,
    record: &LoopRecord,
) -> Result<(String, LoopRequest), String> {
    let project = ProjectId::parse(&record.project_id).map_err(|e| e.to_string())?;
    let task = TaskId::parse(&record.task_id).map_err(|e| e.to_string())?;
    let task_dir = state.root.task_dir(&project, &task);
    let prompt = std::fs::read_to_string(task_dir.join(TASK_FILE))
        .ok()
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| format!("{} is missing or empty", task_dir.join(TASK_FILE).display()))?;
    let config = &state.settings.config;
    let agent = crate::agent::select(&record.agent, Some(config)).map_err(|e| e.to_string())?;
    let latest = latest_run(&task_dir);
    let used = latest
        .as_ref()
        .and_then(|r| r.restart_index)
        .map(|i| u32::try_from(i).unwrap_or(u32::MAX).saturating_add(1))
        .unwrap_or(0);
    let mut request = super::tasks::task_request(
        state,
        project,
        task,
        agent,
        prompt.trim().to_string(),
        record.env.clone(),
    )?;
    request.job.previous_run_id = latest.map(|r| r.run_id);
    request.job.cwd = record.cwd.clone();
    request.max_restarts = record.max_restarts.saturating_sub(used);
    Ok((
        format!("{}/{}", record.project_id, record.task_id),
        LoopRequest::new(request),
    ))
}

/// Resumes the loops recorded by a previous server process on this root. Each waits for its
/// task's running run (if any), then continues unless the task was stopped meanwhile.
pub fn resume_recorded(state: &AppState) {
    let dir = records_dir(state);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let record: LoopRecord = match std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(r) => r,
            None => {
                tracing::warn!(path = %path.display(), "unreadable task loop record; removing it");
                let _ = std::fs::remove_file(&path);
                continue;
            }
        };
        let state = state.clone();
        std::thread::spawn(move || resume_one(&state, record));
    }
}

fn resume_one(state: &AppState, record: LoopRecord) {
    let (Ok(project), Ok(task)) = (
        ProjectId::parse(&record.project_id),
        TaskId::parse(&record.task_id),
    ) else {
        forget(&records_dir(state), &record);
        return;
    };
    let task_dir = state.root.task_dir(&project, &task);
    if !task_dir.is_dir() {
        forget(&records_dir(state), &record);
        return;
    }
    // A loop started meanwhile (e.g. `run-agent task`) owns the task now.
    let lock = match TaskLoopLock::acquire(state.root.path(), &project, &task) {
        Ok(lock) => lock,
        Err(err) => {
            tracing::warn!(task = %format!("{project}/{task}"), "not resuming the task loop: {err}");
            forget(&records_dir(state), &record);
            return;
        }
    };
    if let Some(running) = latest_run(&task_dir).filter(|r| r.status == RunStatus::Running) {
        if let Ok(run) = crate::storage::RunId::parse(&running.run_id) {
            tracing::info!(task = %format!("{project}/{task}"), run = %running.run_id, "resumed loop waits for its running run");
            wait_run_end(&state.root.run_dir(&project, &task, &run));
        }
    }
    if runner::stop::requested(&task_dir) || !task_dir.is_dir() {
        forget(&records_dir(state), &record);
        return;
    }
    // The loop's last attempt already ran (its run ended after the restart, without DONE):
    // the loop would have ended there, so the new server starts no further run.
    let budget_spent = latest_run(&task_dir)
        .and_then(|r| r.restart_index)
        .is_some_and(|i| i >= u64::from(record.max_restarts));
    if budget_spent && !task_dir.join(crate::storage::paths::DONE_FILE).exists() {
        tracing::info!(task = %format!("{project}/{task}"), "task loop's restarts are used up; not resuming it");
        forget(&records_dir(state), &record);
        return;
    }
    match continue_request(state, &record) {
        Ok((key, request)) => {
            tracing::info!(task = %key, "resuming task loop after a server restart");
            spawn_loop(state, key, request, record, lock);
        }
        Err(err) => {
            tracing::warn!(task = %format!("{project}/{task}"), "cannot resume task loop: {err}");
            forget(&records_dir(state), &record);
        }
    }
}
