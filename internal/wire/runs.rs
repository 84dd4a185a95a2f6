//! Bodies of the run routes: `GET /api/v1/runs` (a page), `GET /api/v1/runs/{run}` (one run
//! with its file sizes and neighbours) and `POST /api/v1/runs/{run}/stop`.

use serde::{Deserialize, Serialize};

use crate::storage::{RunInfo, RunStatus, Usage};

/// A run in a listing or task view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub info: Option<RunInfo>,
    /// Why run-info.yaml could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Tokens and cost of the run, when its stream reported any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub usage: Option<Usage>,
}

/// The answer of `GET /api/v1/runs`: a page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunsPage {
    /// The runs.
    pub runs: Vec<RunSummary>,
    /// The cursor of the next page, when there is one.
    pub next_cursor: Option<String>,
}

/// The sizes of a run's files in bytes (`null`: no such file), so a client asks only for
/// files that exist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunFiles {
    /// agent-stdout.txt.
    pub stdout: Option<u64>,
    /// agent-stderr.txt.
    pub stderr: Option<u64>,
    /// output.md.
    pub output: Option<u64>,
    /// prompt.md.
    pub prompt: Option<u64>,
}

/// The answer of `GET /api/v1/runs/{run}`: the run, its file sizes, and the task's runs
/// before and after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunSummary,
    /// Sizes of its files.
    pub files: RunFiles,
    /// The task's run before this one.
    pub previous_run: Option<String>,
    /// The task's run after this one.
    pub next_run: Option<String>,
}

/// The answer of `POST /api/v1/runs/{run}/stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunStopped {
    /// Run id.
    pub run_id: String,
    /// Its status now.
    #[schema(value_type = String, example = "stopped")]
    pub status: RunStatus,
}
