//! Live runs as Server-Sent Events (each followed by an async task, see
//! [`super::run_follow`]):
//! - `/api/v1/runs/{id}/stream`: stdout/stderr lines and status changes of one run. Each
//!   event's id is `<stdout offset>:<stderr offset>` after it, so a reconnect with
//!   `Last-Event-ID` resumes exactly where the client stopped: no loss, no duplicates.
//! - `/api/v1/runs/stream/all`: runs created and status changes under the root.

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::bus::last_event_id;
use super::error::ApiError;
use super::index::{IndexChange, RunRecord};
use super::lookup;
use super::run_follow::{Position, RunFollower, RunStep};
use super::sse::{self, SseEvent, SseSender};
use super::state::AppState;
use crate::storage::paths::{STDERR_FILE, STDOUT_FILE};
use crate::wire::RunChange;

/// Query of the run stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunStreamQuery {
    /// Resume position `<stdout offset>:<stderr offset>` (the `Last-Event-ID` header wins).
    pub from: Option<String>,
}

/// `GET /api/v1/runs/{run_id}/stream`
#[utoipa::path(
    get,
    path = "/api/v1/runs/{run}/stream",
    tag = "runs",
    params(("run" = String, Path, description = "Run id"), RunStreamQuery),
    responses((status = 200, description = "SSE: stdout/stderr/status/end events; id = <stdout offset>:<stderr offset>", content_type = "text/event-stream"), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn run_stream(
    State(state): State<AppState>,
    UrlPath(run): UrlPath<String>,
    Query(query): Query<RunStreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let run = lookup::run_id(&run)?;
    let dir = lookup::run_dir(&state, &run)?;
    lookup::refuse_symlinked_files(&dir, &[STDOUT_FILE, STDERR_FILE])?;
    let resume = last_event_id(&headers).or(query.from);
    let from = match resume.as_deref() {
        None => Position::default(),
        Some(text) => Position::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid resume position {text:?}; expected <stdout offset>:<stderr offset>"
            ))
        })?,
    };
    let (tx, body) = sse::channel(Some(state.metrics.sse_guard()));
    tokio::spawn(follow_run(RunFollower::new(dir, from), tx));
    Ok(body.into_response())
}

/// Sends the run's steps until it ends or the client goes; each send waits while the
/// client's buffer is full, so the backlog is read only as the client drains it.
async fn follow_run(mut follower: RunFollower, tx: SseSender) {
    loop {
        let step = tokio::select! {
            () = tx.closed() => return,
            step = follower.next() => step,
        };
        let sent = match step {
            None => return,
            Some(RunStep::Lines { stream, lines }) => {
                let mut sent = Ok(());
                for (line, pos) in lines {
                    sent = tx
                        .send(SseEvent::new(stream, line).id(pos.to_string()))
                        .await;
                    if sent.is_err() {
                        break;
                    }
                }
                sent
            }
            Some(RunStep::Status { event, pos }) => {
                tx.send(SseEvent::new("status", json_data(&event)).id(pos.to_string()))
                    .await
            }
            Some(RunStep::End { status, pos }) => {
                tx.send(SseEvent::new("end", status.as_str()).id(pos.to_string()))
                    .await
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// `GET /api/v1/runs/stream/all`: `ready` (with the number of known runs), then
/// `run_created` and `run_status` events from the run index. A client too slow to keep up
/// (over its buffer cap, or lagging the index's broadcast) gets a `resync` event and the stream
/// ends: reconnect and re-list with `GET /api/v1/runs`.
#[utoipa::path(
    get,
    path = "/api/v1/runs/stream/all",
    tag = "runs",
    responses((status = 200, description = "SSE: ready, run_created, run_status, resync", content_type = "text/event-stream"))
)]
pub async fn all_runs_stream(State(state): State<AppState>) -> Result<Response, ApiError> {
    // `ready` means "re-list, then changes follow": only true once the index is built (no
    // change events are sent for the first scan).
    super::browse::index_ready(&state).await?;
    let mut changes = state.index.subscribe();
    let known = state.index.len();
    let (tx, body) = sse::channel(Some(state.metrics.sse_guard()));
    const RESYNC: &str = "changes were dropped; reconnect and re-list with GET /api/v1/runs";
    tokio::spawn(async move {
        if tx
            .try_send(SseEvent::new("ready", known.to_string()), RESYNC)
            .is_err()
        {
            return;
        }
        loop {
            let event = tokio::select! {
                () = tx.closed() => return,
                change = changes.recv() => match change {
                    Ok(IndexChange::Created(r)) => change_event("run_created", &r),
                    Ok(IndexChange::Status(r)) => change_event("run_status", &r),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        tx.resync(RESYNC);
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.try_send(event, RESYNC).is_err() {
                return;
            }
        }
    });
    Ok(body.into_response())
}

fn change_event(kind: &str, record: &RunRecord) -> SseEvent {
    SseEvent::new(kind, json_data(&run_change(record)))
}

/// The `run_created` / `run_status` data of an index record.
pub fn run_change(record: &RunRecord) -> RunChange {
    RunChange {
        run_id: record.run_id.clone(),
        project_id: record.project_id.clone(),
        task_id: record.task_id.clone(),
        status: record.status,
    }
}

/// `data` as the JSON text of an SSE event.
pub fn json_data(data: &impl serde::Serialize) -> String {
    serde_json::to_string(data).unwrap_or_else(|e| {
        tracing::error!("cannot encode an event: {e}");
        String::new()
    })
}
