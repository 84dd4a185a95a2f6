//! The message buses over HTTP: read (since / tail / type), post, and follow as Server-Sent
//! Events that resume from a msg_id (`Last-Event-ID`). Also the reference's
//! `/api/v1/messages` routes for its clients.

use std::path::PathBuf;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::bus_follow::{self, BusFollow};
use super::error::ApiError;
use super::lookup;
use super::sse::{self, SseEvent};
use super::state::AppState;
use crate::bus::{self, AppendOptions, BusError, FollowFrom, NewMessage, Parent, ReadQuery};
use crate::storage::{ProjectId, TaskId};
use crate::wire::{BusMessages, CompatPost, MessagePosted, PostBody};

/// Query of bus reads.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BusQuery {
    /// Only messages after this msg_id.
    pub since: Option<String>,
    /// Only the last N.
    pub tail: Option<usize>,
    /// Only messages of this type.
    #[serde(rename = "type")]
    pub msg_type: Option<String>,
}

/// Which bus a route addresses.
struct BusTarget {
    project: ProjectId,
    task: Option<TaskId>,
    path: PathBuf,
}

fn target(state: &AppState, project: &str, task: Option<&str>) -> Result<BusTarget, ApiError> {
    let project = lookup::project_id(project)?;
    let task = task.map(lookup::task_id).transpose()?;
    let path = match &task {
        Some(task) => lookup::task_dir(&state.root, &project, task)?
            .join(crate::storage::paths::TASK_BUS_FILE),
        None => lookup::project_dir(&state.root, &project)?
            .join(crate::storage::paths::PROJECT_BUS_FILE),
    };
    Ok(BusTarget {
        project,
        task,
        path,
    })
}

fn bus_error(err: BusError) -> ApiError {
    match err {
        BusError::SinceNotFound { .. } | BusError::InvalidMessage { .. } => {
            ApiError::bad_request(err.to_string())
        }
        // A bus that is a symlink (or not a regular file) is refused, never followed.
        BusError::Symlink { .. } | BusError::NotRegularFile { .. } => {
            ApiError::path_refused(err.to_string())
        }
        other => ApiError::internal(other.to_string()),
    }
}

fn read_messages(target: &BusTarget, query: BusQuery) -> Result<Json<BusMessages>, ApiError> {
    let query = ReadQuery {
        since: query.since,
        tail: query.tail,
        msg_type: query.msg_type,
    };
    let messages = bus::read(&target.path, &query).map_err(bus_error)?;
    Ok(Json(BusMessages { messages }))
}

fn post_message(
    state: &AppState,
    target: BusTarget,
    body: Result<Json<PostBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(ApiError::from_json)?;
    let mut msg = NewMessage::new(body.msg_type, target.project).body(body.body);
    msg.task_id = target.task;
    msg.run_id = body.run_id.as_deref().map(lookup::run_id).transpose()?;
    msg.parents = body.parents.into_iter().map(Parent::new).collect();
    let opts = AppendOptions {
        fsync: state.settings.config.bus.fsync,
        ..AppendOptions::default()
    };
    let msg_id = bus::append(&target.path, &msg, &opts).map_err(bus_error)?;
    state.metrics.bus_append();
    Ok((StatusCode::CREATED, Json(MessagePosted { msg_id })).into_response())
}

/// `GET /api/v1/projects/{p}/bus`
#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/bus",
    tag = "bus",
    params(("project" = String, Path, description = "Project id"), BusQuery),
    responses((status = 200, description = "Messages", body = BusMessages), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn read_project_bus(
    State(state): State<AppState>,
    Path(project): Path<String>,
    Query(query): Query<BusQuery>,
) -> Result<Json<BusMessages>, ApiError> {
    read_messages(&target(&state, &project, None)?, query)
}

/// `GET /api/v1/projects/{p}/tasks/{t}/bus`
#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/tasks/{task}/bus",
    tag = "bus",
    params(("project" = String, Path, description = "Project id"), ("task" = String, Path, description = "Task id"), BusQuery),
    responses((status = 200, description = "Messages", body = BusMessages), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn read_task_bus(
    State(state): State<AppState>,
    Path((project, task)): Path<(String, String)>,
    Query(query): Query<BusQuery>,
) -> Result<Json<BusMessages>, ApiError> {
    read_messages(&target(&state, &project, Some(&task))?, query)
}

/// `POST /api/v1/projects/{p}/bus`
#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/bus",
    tag = "bus",
    params(("project" = String, Path, description = "Project id")),
    request_body = PostBody,
    responses((status = 201, description = "msg_id of the new message", body = MessagePosted), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn post_project_bus(
    State(state): State<AppState>,
    Path(project): Path<String>,
    body: Result<Json<PostBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let target = target(&state, &project, None)?;
    post_message(&state, target, body)
}

/// `POST /api/v1/projects/{p}/tasks/{t}/bus`
#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/tasks/{task}/bus",
    tag = "bus",
    params(("project" = String, Path, description = "Project id"), ("task" = String, Path, description = "Task id")),
    request_body = PostBody,
    responses((status = 201, description = "msg_id of the new message", body = MessagePosted), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn post_task_bus(
    State(state): State<AppState>,
    Path((project, task)): Path<(String, String)>,
    body: Result<Json<PostBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let target = target(&state, &project, Some(&task))?;
    post_message(&state, target, body)
}

/// Query of bus streams.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Resume after this msg_id (the `Last-Event-ID` header wins).
    pub since: Option<String>,
    /// Only messages of this type.
    #[serde(rename = "type")]
    pub msg_type: Option<String>,
}

/// `GET /api/v1/projects/{p}/bus/stream`
#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/bus/stream",
    tag = "bus",
    params(("project" = String, Path, description = "Project id"), StreamQuery),
    responses((status = 200, description = "SSE: message events with id = msg_id; resume with Last-Event-ID", content_type = "text/event-stream"), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn stream_project_bus(
    State(state): State<AppState>,
    Path(project): Path<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = target(&state, &project, None)?;
    stream(&state, target.path, query, &headers).await
}

/// `GET /api/v1/projects/{p}/tasks/{t}/bus/stream`
#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/tasks/{task}/bus/stream",
    tag = "bus",
    params(("project" = String, Path, description = "Project id"), ("task" = String, Path, description = "Task id"), StreamQuery),
    responses((status = 200, description = "SSE: message events with id = msg_id", content_type = "text/event-stream"), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn stream_task_bus(
    State(state): State<AppState>,
    Path((project, task)): Path<(String, String)>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = target(&state, &project, Some(&task))?;
    stream(&state, target.path, query, &headers).await
}

/// The `Last-Event-ID` header, when present and non-empty.
pub fn last_event_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Follows the bus at `path` as SSE: every message is an event `message` with `id: msg_id`.
/// An unknown resume id answers a `resync` event (then the whole bus) instead of failing.
async fn stream(
    state: &AppState,
    path: PathBuf,
    query: StreamQuery,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let guard = state.metrics.sse_guard();
    let resume = last_event_id(headers).or(query.since);
    let from = match &resume {
        Some(id) => FollowFrom::Since(id.clone()),
        None => FollowFrom::Start,
    };
    let (follower, resync) =
        match bus_follow::open(path.clone(), from, query.msg_type.clone()).await {
            Ok(f) => (f, false),
            Err(BusError::SinceNotFound { .. }) => (
                bus_follow::open(path, FollowFrom::Start, query.msg_type)
                    .await
                    .map_err(bus_error)?,
                true,
            ),
            Err(err) => return Err(bus_error(err)),
        };
    let (tx, body) = sse::channel(Some(guard));
    tokio::spawn(async move {
        if resync {
            let event = SseEvent::new("resync", "unknown Last-Event-ID; replaying the whole bus");
            if tx.send(event).await.is_err() {
                return;
            }
        }
        // The follower hands out the backlog in bounded batches; a full client buffer makes
        // `send` wait, so the rest of the file is read only as the client drains.
        let mut follower = BusFollow::new(follower);
        loop {
            let batch = tokio::select! {
                () = tx.closed() => return,
                batch = follower.next() => batch,
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(err) => {
                    let _ = tx.send(SseEvent::new("error", err.to_string())).await;
                    return;
                }
            };
            for msg in batch {
                let Ok(data) = serde_json::to_string(&msg) else {
                    continue;
                };
                let event = SseEvent::new("message", data).id(msg.msg_id.clone());
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(body.into_response())
}

/// Query of the reference's `/api/v1/messages`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompatQuery {
    /// Project id (required).
    pub project_id: Option<String>,
    /// Task id (task bus when given).
    pub task_id: Option<String>,
    /// Only messages after this msg_id.
    pub since: Option<String>,
}

fn compat_target(state: &AppState, q: &CompatQuery) -> Result<BusTarget, ApiError> {
    let project = q
        .project_id
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("project_id is required"))?;
    target(state, project, q.task_id.as_deref())
}

/// `GET /api/v1/messages?project_id=&task_id=&since=` (reference compatibility).
#[utoipa::path(
    get,
    path = "/api/v1/messages",
    tag = "compat",
    params(CompatQuery),
    responses((status = 200, description = "Messages (reference compatibility)", body = BusMessages), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn compat_read(
    State(state): State<AppState>,
    Query(q): Query<CompatQuery>,
) -> Result<Json<BusMessages>, ApiError> {
    let target = compat_target(&state, &q)?;
    read_messages(
        &target,
        BusQuery {
            since: q.since,
            tail: None,
            msg_type: None,
        },
    )
}

/// `POST /api/v1/messages` (reference compatibility).
#[utoipa::path(
    post,
    path = "/api/v1/messages",
    tag = "compat",
    request_body = CompatPost,
    responses((status = 201, description = "msg_id", body = MessagePosted), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn compat_post(
    State(state): State<AppState>,
    body: Result<Json<CompatPost>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(ApiError::from_json)?;
    let task = body.task_id.as_deref().filter(|t| !t.is_empty());
    let target = target(&state, &body.project_id, task)?;
    let post = PostBody {
        msg_type: body.msg_type,
        body: body.body,
        run_id: body.run_id.filter(|r| !r.is_empty()),
        parents: Vec::new(),
    };
    post_message(&state, target, Ok(Json(post)))
}

/// `GET /api/v1/messages/stream?project_id=&task_id=` (reference compatibility).
#[utoipa::path(
    get,
    path = "/api/v1/messages/stream",
    tag = "compat",
    params(CompatQuery),
    responses((status = 200, description = "SSE (reference compatibility)", content_type = "text/event-stream"), (status = 400, description = "Bad id, query or body", body = crate::api::error::ErrorBody), (status = 404, description = "Not found", body = crate::api::error::ErrorBody))
)]
pub async fn compat_stream(
    State(state): State<AppState>,
    Query(q): Query<CompatQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = compat_target(&state, &q)?;
    stream(
        &state,
        target.path,
        StreamQuery {
            since: q.since,
            msg_type: None,
        },
        &headers,
    )
    .await
}
