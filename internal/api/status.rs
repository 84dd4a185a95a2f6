//! Liveness and identity routes: `/healthz`, `/api/v1/health`, `/api/v1/version`,
//! `/api/v1/status`.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

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
    /// sha256 of the running executable.
    pub executable_sha256: Option<String>,
    /// Startup warnings (e.g. auth requested without a key).
    pub warnings: Vec<String>,
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
        executable: state
            .executable
            .as_ref()
            .map(|(p, _)| p.display().to_string()),
        executable_sha256: state.executable.as_ref().map(|(_, h)| h.clone()),
        warnings: settings.warnings.clone(),
    })
}
