//! `GET|POST /api/v1/admin/self-update`: status of the self-update, and starting
//! one. Auth (admin key) and the audit of the POST itself are done by the security
//! middleware; the manager audits every state change and result.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::audit::{client_label, key_fingerprint, AuditRecord};
use super::error::ApiError;
use super::security::Caller;
use super::state::AppState;
use crate::update::audit::Requester;
use crate::update::{StartRequest, UpdateError};
use crate::wire::update::{StartBody, StatusView};

fn requester(caller: &Caller) -> Requester {
    Requester {
        client: client_label(caller.addr),
        key_fingerprint: key_fingerprint(caller.key.as_deref()),
        request_id: caller.request_id.clone(),
    }
}

fn api_error(err: UpdateError) -> ApiError {
    match err {
        UpdateError::Candidate(_) | UpdateError::Unsupported(_) => {
            ApiError::bad_request(err.to_string())
        }
        UpdateError::InProgress { .. } => ApiError::conflict(err.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

/// `GET /api/v1/admin/self-update`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/self-update",
    tag = "admin",
    responses((status = 200, description = "Update state and history", body = StatusView))
)]
pub async fn status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let manager = state.update.clone();
    let view = tokio::task::spawn_blocking(move || manager.status())
        .await
        .map_err(|e| ApiError::internal(format!("self-update status task failed: {e}")))?;
    let result = view.map_err(api_error);
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status,
    };
    state.audit.append(&AuditRecord {
        time: crate::storage::time::format_rfc3339_nano(&chrono::Utc::now()),
        request_id: &caller.request_id,
        client: client_label(caller.addr),
        key_fingerprint: key_fingerprint(caller.key.as_deref()),
        action: "GET /api/v1/admin/self-update".to_string(),
        target: "/api/v1/admin/self-update",
        status: status.as_u16(),
        result: if status.is_success() { "ok" } else { "error" },
    });
    Ok(Json(result?).into_response())
}

/// `POST /api/v1/admin/self-update`: 202 when accepted (deferred or applying).
#[utoipa::path(
    post,
    path = "/api/v1/admin/self-update",
    tag = "admin",
    request_body = StartBody,
    responses((status = 202, description = "Accepted: deferred or applying", body = StatusView), (status = 400, description = "Bad candidate", body = crate::api::error::ErrorBody), (status = 409, description = "Update in progress", body = crate::api::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::api::error::ErrorBody))
)]
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<StartBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    if let Err(retry) = state.update.rate_limit() {
        return Err(ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: format!("too many self-update requests; retry in {retry} s"),
            retry_after: Some(retry),
        });
    }
    let Json(body) = body.map_err(|e| {
        let mut err = ApiError::from_json(e);
        err.message = format!(
            "{}; expected {{\"binary_path\": \"/abs/path\", \"sha256\"?: \"<hex>\", \
             \"mode\"?: \"drain\"|\"handoff\"}}",
            err.message
        );
        err
    })?;
    let request = StartRequest {
        binary_path: body.binary_path,
        sha256: body.sha256,
        mode: body.mode.unwrap_or_default(),
    };
    let who = requester(&caller);
    let manager = state.update.clone();
    let accepted = tokio::task::spawn_blocking(move || manager.start(request, who))
        .await
        .map_err(|e| ApiError::internal(format!("self-update task failed: {e}")))?;
    match accepted {
        Ok(view) => Ok((StatusCode::ACCEPTED, Json(view)).into_response()),
        Err(err) => {
            tracing::warn!("self-update request refused: {err}");
            Err(api_error(err))
        }
    }
}
