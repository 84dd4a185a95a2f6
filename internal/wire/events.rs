//! The data of the Server-Sent Events the API streams (each event's `data:` is one of these as
//! JSON): the run streams (`/api/v1/runs/{run}/stream`, `/api/v1/runs/stream/all`) and the
//! topics of the event stream (`/api/v1/events`), whose events also carry their `topic`.

use serde::{Deserialize, Serialize};

use super::bus::Message;
use crate::storage::RunStatus;

/// `run_created` / `run_status`: a run appeared or changed status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunChange {
    /// Run id.
    pub run_id: String,
    /// Project id.
    pub project_id: String,
    /// Task id.
    pub task_id: String,
    /// Its status now.
    #[schema(value_type = String, example = "running")]
    pub status: RunStatus,
}

/// `status` of a run stream: the run's status changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunStatusEvent {
    /// Its status now (`unknown` while run-info.yaml cannot be read).
    #[schema(value_type = String, example = "completed")]
    pub status: RunStatus,
    /// Its exit code (-1 while running), when run-info.yaml reads.
    pub exit_code: Option<i64>,
    /// Why it failed, when it did.
    pub error_summary: Option<String>,
    /// The `stdout:stderr` byte offsets the stream has sent (only on the event stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<String>,
}

/// `log` of the event stream: new lines of a run's stdout or stderr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLines {
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The lines, without their line ends.
    pub lines: Vec<String>,
    /// The `stdout:stderr` byte offsets after them (resume with `run:<id>@<pos>`).
    pub pos: String,
}

/// `end` of a run topic: the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunEnded {
    /// Its final status.
    #[schema(value_type = String, example = "completed")]
    pub status: RunStatus,
    /// The `stdout:stderr` byte offsets at the end.
    pub pos: String,
}

/// `bus` of the event stream: new messages of a bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BusBatch {
    /// The messages, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Message>,
}

/// `resync` of a topic: the client must re-read (e.g. its resume position is unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resync {
    /// Why.
    pub reason: String,
}

/// `error` of a topic: it cannot be followed (the stream goes on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopicError {
    /// What failed.
    pub message: String,
}

/// An event of the event stream: its data with the `topic` it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnTopic<T> {
    /// The topic key (`runs`, `run:<id>`, `bus:<project>[/<task>]`).
    pub topic: String,
    /// The event's own data.
    #[serde(flatten)]
    pub data: T,
}
