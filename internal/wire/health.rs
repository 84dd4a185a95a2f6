//! Bodies of the liveness and identity routes: `/healthz`, `/api/v1/version`,
//! `/api/v1/status`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The body of `GET /healthz` and `GET /api/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

impl Health {
    /// The answer of a live server.
    pub fn ok() -> Self {
        Self {
            status: "ok".to_string(),
        }
    }
}

/// The body of `GET /api/v1/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionBody {
    /// Crate version.
    pub version: String,
    /// Git commit of the build.
    pub commit: String,
}

/// The body of `GET /api/v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusBody {
    /// Crate version.
    pub version: String,
    /// Git commit of the build.
    pub commit: String,
    /// Server process id.
    pub pid: u32,
    /// Runs root.
    pub root: String,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Start time (RFC3339).
    pub started_at: String,
    /// Config file in use, or `defaults`.
    pub config: String,
    /// The config load error, when the server runs on defaults because of one.
    pub config_error: Option<String>,
    /// Whether new tasks may be started.
    pub task_start_enabled: bool,
    /// Whether API-key auth is on.
    pub auth_enabled: bool,
    /// Path of the running executable.
    pub executable: Option<String>,
    /// sha256 of the running executable (`null` until hashed, see `executable_sha256_state`).
    pub executable_sha256: Option<String>,
    /// `pending` while the executable is being hashed in the background (the status never
    /// waits for it), then `ready`, or `unavailable` when it cannot be read.
    pub executable_sha256_state: String,
    /// Startup warnings (e.g. auth requested without a key).
    pub warnings: Vec<String>,
    /// Runs whose status is `running`.
    pub active_runs: usize,
    /// Known runs by status (`running`, `completed`, `failed`, `stopped`, `unknown`).
    pub runs: BTreeMap<String, usize>,
    /// The self-update state (the full view with history is `GET /api/v1/admin/self-update`).
    pub update: UpdateSummary,
    /// The run index (built in the background at start).
    pub index: IndexSummary,
}

/// The run index part of the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IndexSummary {
    /// `building` while the first scan runs (listings wait for it briefly, then answer 503
    /// `indexing`), then `ready`.
    pub state: String,
    /// Runs indexed so far.
    pub runs: usize,
    /// How long the first scan took, once ready.
    pub build_ms: Option<u64>,
}

/// The self-update part of the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UpdateSummary {
    /// `idle`, `deferred`, `applying` or `failed`; `unknown` when the state file is unreadable.
    pub state: String,
    /// `drain` or `handoff` for the current (or last) update.
    pub mode: Option<String>,
    /// When the current (or last) update was requested.
    pub started_at: Option<String>,
    /// Why the last update failed (or why the state is unknown).
    pub last_error: Option<String>,
}

impl UpdateSummary {
    /// The summary when the state file cannot be read.
    pub fn unknown(error: String) -> Self {
        Self {
            state: "unknown".to_string(),
            mode: None,
            started_at: None,
            last_error: Some(error),
        }
    }
}
