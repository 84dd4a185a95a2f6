//! Liveness and identity routes: `/healthz`, `/api/v1/health`, `/api/v1/version`,
//! `/api/v1/status`.

use axum::extract::State;
use axum::Json;

use super::index::IndexState;
use super::state::AppState;
use crate::version::{GIT_COMMIT, VERSION};
use crate::wire::{Health, IndexSummary, StatusBody, UpdateSummary, VersionBody};

/// `GET /healthz` and `GET /api/v1/health`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health::ok())
}

/// `GET /api/v1/version`.
#[utoipa::path(
    get,
    path = "/api/v1/version",
    tag = "health",
    responses((status = 200, description = "Version and commit", body = VersionBody))
)]
pub async fn version() -> Json<VersionBody> {
    Json(VersionBody {
        version: VERSION.to_string(),
        commit: GIT_COMMIT.to_string(),
    })
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
        version: VERSION.to_string(),
        commit: GIT_COMMIT.to_string(),
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
        executable_sha256_state: executable_sha256_state.to_string(),
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
            }
            .to_string(),
            runs: counts.values().sum(),
            build_ms: match index_state {
                IndexState::Building => None,
                IndexState::Ready(took) => Some(took.as_millis() as u64),
            },
        },
    })
}
