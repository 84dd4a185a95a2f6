//! Bodies of the task routes: `POST /api/v1/tasks`, the task listings and views
//! (`/api/v1/projects/{p}/tasks[/{t}]`, the reference's `/api/v1/tasks[/{t}]`), stop, resume,
//! delete, and `POST /api/v1/projects`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::runs::RunSummary;
use crate::storage::UsageTotals;

/// Body of `POST /api/v1/tasks`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartTaskBody {
    /// Project id (created if missing).
    pub project_id: String,
    /// Task id (generated when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The task prompt.
    pub prompt: String,
    /// Agent name or type (default: `defaults.agent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Extra environment for the agent (JRUN_* cannot be overridden).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Answer with the result if the task ends within this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u64>,
    /// Restarts after the first attempt (default: `defaults.max_restarts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<u32>,
    /// Tasks of the project that must be DONE before this one starts (saved in the task's
    /// TASK-CONFIG.yaml; an empty list clears it; absent: the saved list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<String>>,
    /// Stop the task once its runs (child runs included) cost more than this many US dollars
    /// (saved in TASK-CONFIG.yaml; default: the saved figure, else `defaults.budget`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Stop the task once its runs used more than this many tokens (input plus output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
}

/// The answer of `POST /api/v1/tasks`: 201 started (or waiting, with `status`), 202 still
/// running after `wait_seconds`, 200 ended within them (with the outcome fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskStarted {
    /// Project id.
    pub project_id: String,
    /// Task id (the generated one when the request had none).
    pub task_id: String,
    /// The first run, once created (`null` while the loop waits).
    pub run_id: Option<String>,
    /// Why the loop waits (its dependencies, a task slot), when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// How the task ended, when it ended within `wait_seconds`.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<TaskOutcome>,
    /// The task view to poll (`/api/v1/projects/{p}/tasks/{t}`).
    pub status_url: String,
}

/// The outcome part of a task that ended within `wait_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskOutcome {
    /// `done`, `failed`, `stopped`, … (the loop's outcome).
    pub outcome: String,
    /// Why it did not end done.
    pub error: Option<String>,
    /// output.md of the last run, when it has one.
    pub output: Option<String>,
}

/// Body of `POST /api/v1/projects/{p}/tasks/{t}/resume` (all optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeBody {
    /// Remove DONE and continue a finished task.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset_done: bool,
    /// Agent (default: the latest run's agent, by its recorded `agent_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Restarts after the first attempt (default: `defaults.max_restarts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<u32>,
    /// Absolute working directory of the agent (default: the latest run's `cwd`; claude and
    /// gemini keep their conversations per directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cwd: Option<PathBuf>,
    /// A new spending limit in US dollars (raise it to continue a task stopped by its budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// A new token limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
}

/// The answer of a resume (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskResumed {
    /// Project id.
    pub project_id: String,
    /// Task id.
    pub task_id: String,
    /// The task view to poll.
    pub status_url: String,
}

/// Optional body of the stop routes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopBody {
    /// Seconds between SIGTERM and SIGKILL of each run's process group, 0..=3600
    /// (default 30, `runner::stop::DEFAULT_GRACE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 3600)]
    pub grace_seconds: Option<u64>,
}

/// The answer of a task stop (and of the reference's `DELETE /api/v1/tasks/{t}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskStopped {
    /// Project id.
    pub project_id: String,
    /// Task id.
    pub task_id: String,
    /// The runs that were running and are stopped now.
    pub stopped_runs: Vec<String>,
    /// Why some runs could not be stopped.
    pub errors: Vec<String>,
}

/// The answer of `DELETE /api/v1/projects/{p}/tasks/{t}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskDeleted {
    /// Project id.
    pub project_id: String,
    /// Task id.
    pub task_id: String,
    /// Always `true`.
    pub deleted: bool,
}

/// One line of a task listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskSummary {
    /// Project id.
    pub project_id: String,
    /// Task id.
    pub task_id: String,
    /// Derived status (`running`, `done`, `failed`, `blocked`, `queued`, …), the one
    /// `run-agent list` shows.
    pub status: String,
    /// Whether the task has its DONE file.
    pub done: bool,
    /// Number of runs.
    pub run_count: usize,
    /// The newest run's id.
    pub latest_run: Option<String>,
    /// When a run of the task last wrote anything (RFC 3339).
    pub last_activity: Option<String>,
    /// The dependencies that are not DONE.
    pub blocked_by: Vec<String>,
    /// The sum of the usage of the task's runs.
    #[schema(value_type = Object)]
    pub usage: UsageTotals,
    /// What BUDGET-EXCEEDED says, when the task's budget was found passed.
    pub budget_exceeded: Option<String>,
}

/// The answer of the task listings: `project_id` with `GET /api/v1/projects/{p}/tasks`, the
/// tasks of every (or the asked) project with `GET /api/v1/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskList {
    /// The project listed (only in the per-project listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// The tasks.
    pub tasks: Vec<TaskSummary>,
}

/// The view of one task: status, DONE, TASK.md, its run count and one page of its runs,
/// newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskView {
    /// Project id.
    pub project_id: String,
    /// Task id.
    pub task_id: String,
    /// Derived status (as in [`TaskSummary::status`]).
    pub status: String,
    /// Whether the task has its DONE file.
    pub done: bool,
    /// TASK.md, when it is a readable regular file.
    pub task_md: Option<String>,
    /// `depends_on` of TASK-CONFIG.yaml.
    pub depends_on: Vec<String>,
    /// The dependencies that are not DONE.
    pub blocked_by: Vec<String>,
    /// Why TASK-CONFIG.yaml could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deps_error: Option<String>,
    /// Number of runs (all of them, not only this page).
    pub run_count: usize,
    /// The sum of the usage of the task's runs.
    #[schema(value_type = Object)]
    pub usage: UsageTotals,
    /// One page of runs, newest first.
    pub runs: Vec<RunSummary>,
    /// The cursor of the next page, when there is one.
    pub next_cursor: Option<String>,
    /// What BUDGET-EXCEEDED says, when the task's budget was found passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_exceeded: Option<String>,
}

/// Body of `POST /api/v1/projects`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectBody {
    /// The new project's id.
    pub project_id: String,
    /// Existing directory its agents work in.
    #[schema(value_type = String)]
    pub project_root: PathBuf,
}

/// The answer of `POST /api/v1/projects` (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectCreated {
    /// The new project's id.
    pub project_id: String,
    /// Its working directory.
    #[schema(value_type = String)]
    pub project_root: PathBuf,
}

/// A project in a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectSummary {
    /// Project id.
    pub project_id: String,
    /// Number of task directories.
    pub task_count: usize,
    /// The sum of the usage of the project's runs (from the run index).
    #[schema(value_type = Object)]
    pub usage: UsageTotals,
}

/// The answer of `GET /api/v1/projects`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectList {
    /// The projects.
    pub projects: Vec<ProjectSummary>,
}
