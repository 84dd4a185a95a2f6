//! Liveness and identity routes: `/healthz`, `/api/v1/health`, `/api/v1/version`,
//! `/api/v1/status`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::index::IndexState;
use super::state::AppState;
use crate::version::{GIT_COMMIT, VERSION};

/// `GET /healthz` and `GET /api/v1/health`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "Alive"))
)]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /api/v1/version`.
#[utoipa::path(
    get,
    path = "/api/v1/version",
    tag = "health",
    responses((status = 200, description = "Version and commit"))
)]
pub async fn version() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "version": VERSION, "commit": GIT_COMMIT }))
}

/// The body of `GET /api/v1/status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusBody {
    /// Crate version.
    pub version: &'static str,
    /// Git commit of the build.
    pub commit: &'static str,
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
    pub executable_sha256_state: &'static str,
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IndexSummary {
    /// `building` while the first scan runs (listings wait for it briefly, then answer 503
    /// `indexing`), then `ready`.
    pub state: &'static str,
    /// Runs indexed so far.
    pub runs: usize,
    /// How long the first scan took, once ready.
    pub build_ms: Option<u64>,
}

/// The self-update part of the status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

/// `GET /api/v1/status`.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    tag = "health",
    responses((status = 200, description = "Server status", body = StatusBody))
)]
pub async fn status(State(state): State<AppState>) -> Json<StatusBody> {
    let settings = &state.settings;
    let index_state = state.index.state();
    let counts = state.index.status_counts();
    // Everything here is cached: the update record is re-read only when its file changed
    // (one stat), the executable hash is computed once in the background, counters come
    // from the index. Nothing waits on a scan or the hash.
    let update = match state.update.record_cached() {
        Ok(record) => UpdateSummary {
            state: record.state.as_str().to_string(),
            mode: record.mode.map(|m| m.as_str().to_string()),
            started_at: record.started_at,
            last_error: record.last_error,
        },
        Err(err) => UpdateSummary::unknown(err.to_string()),
    };
    let digest = state.executable.try_get();
    let executable_sha256_state = match &digest {
        None => "pending",
        Some(Some(_)) => "ready",
        Some(None) => "unavailable",
    };
    let executable = digest.flatten();
    Json(StatusBody {
        version: VERSION,
        commit: GIT_COMMIT,
        pid: std::process::id(),
        root: state.root.path().display().to_string(),
        uptime_seconds: state.started.elapsed().as_secs(),
        started_at: crate::storage::time::format_rfc3339_nano(&state.started_at),
        config: settings
            .config_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "defaults".to_string()),
        config_error: settings.config_error.clone(),
        task_start_enabled: !settings.task_start_disabled.value,
        auth_enabled: settings.auth_enabled,
        executable: executable.as_ref().map(|(p, _)| p.display().to_string()),
        executable_sha256: executable.map(|(_, h)| h),
        executable_sha256_state,
        warnings: settings.warnings.clone(),
        active_runs: counts
            .get(&crate::storage::RunStatus::Running)
            .copied()
            .unwrap_or(0),
        runs: counts
            .iter()
            .map(|(status, n)| (status.as_str().to_string(), *n))
            .collect(),
        update,
        index: IndexSummary {
            state: match index_state {
                IndexState::Building => "building",
                IndexState::Ready(_) => "ready",
            },
            runs: counts.values().sum(),
            build_ms: match index_state {
                IndexState::Building => None,
                IndexState::Ready(took) => Some(took.as_millis() as u64),
            },
        },
    })
}

impl UpdateSummary {
    fn unknown(error: String) -> Self {
        Self {
            state: "unknown".to_string(),
            mode: None,
            started_at: None,
            last_error: Some(error),
        }
    }
}
