//! Live runs as Server-Sent Events, driven by file-change notification
//! ([`crate::storage::watch`]: inotify, or polling where it is not available) with a coarse
//! re-check as a safety net:
//! - `/api/v1/runs/{id}/stream`: stdout/stderr lines and status changes of one run. Each
//!   event's id is `<stdout offset>:<stderr offset>` after it, so a reconnect with
//!   `Last-Event-ID` resumes exactly where the client stopped: no loss, no duplicates.
//! - `/api/v1/runs/stream/all`: runs created and status changes under the root.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::bus::last_event_id;
use super::error::ApiError;
use super::index::{IndexChange, RunRecord};
use super::lookup;
use super::sse::{self, SseEvent, SseSender};
use super::state::AppState;
use crate::storage::paths::{RUN_INFO_FILE, STDERR_FILE, STDOUT_FILE};
use crate::storage::watch::{Scope, Subscription};
use crate::storage::{liveness, RunStatus};
use crate::wire::{RunChange, RunStatusEvent};

/// Most bytes read from a log file at once: a backlog is read as the client drains it.
const READ_CHUNK: u64 = 256 * 1024;
/// Re-check interval when no notification arrives.
const RECHECK: Duration = Duration::from_secs(2);
/// Longest line sent as one event; longer lines are split.
const MAX_LINE: usize = 64 * 1024;

/// Query of the run stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunStreamQuery {
    /// Resume position `<stdout offset>:<stderr offset>` (the `Last-Event-ID` header wins).
    pub from: Option<String>,
}

pub(super) fn parse_position(text: &str) -> Option<(u64, u64)> {
    let (o, e) = text.split_once(':')?;
    Some((o.trim().parse().ok()?, e.trim().parse().ok()?))
}

/// One followed log file.
pub(super) struct LogTail {
    pub(super) name: &'static str,
    pub(super) path: PathBuf,
    pub(super) offset: u64,
    pub(super) partial: Vec<u8>,
}

impl LogTail {
    /// Reads up to [`READ_CHUNK`] appended bytes; returns the complete lines (and, when
    /// `flush` and the end of the file was reached, the unterminated rest) with the offset just
    /// after each, and whether the end of the file was reached.
    pub(super) fn poll(&mut self, flush: bool) -> (Vec<(String, u64)>, bool) {
        let mut out = Vec::new();
        let mut at_end = true;
        // The same rule as the file route: a log that is a symlink is never followed.
        if let Ok(mut file) = crate::storage::confined::open_nofollow(&self.path) {
            let start = self.offset + self.partial.len() as u64;
            if file.seek(SeekFrom::Start(start)).is_ok() {
                let read = file
                    .by_ref()
                    .take(READ_CHUNK)
                    .read_to_end(&mut self.partial)
                    .unwrap_or(0);
                at_end = (read as u64) < READ_CHUNK;
            }
        }
        let mut start = 0;
        while let Some(pos) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let take = pos.min(MAX_LINE);
            let consumed = if take == pos { pos + 1 } else { take };
            let line = String::from_utf8_lossy(&self.partial[start..start + take]).into_owned();
            start += consumed;
            self.offset += consumed as u64;
            out.push((line, self.offset));
        }
        self.partial.drain(..start);
        if ((flush && at_end) || self.partial.len() >= MAX_LINE) && !self.partial.is_empty() {
            let take = self.partial.len().min(MAX_LINE);
            let line = String::from_utf8_lossy(&self.partial[..take]).into_owned();
            self.offset += take as u64;
            self.partial.drain(..take);
            out.push((line, self.offset));
        }
        (out, at_end)
    }
}

/// A subscription to changes of the run directory `dir` (its logs and record).
pub(super) fn watch(dir: &Path) -> Subscription {
    Subscription::on(dir, Scope::Dir)
}

/// Waits for a change (or the re-check interval); a burst of changes is one wakeup.
pub(super) fn wait_change(changes: &Subscription) {
    changes.wait(RECHECK);
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
    let (out_off, err_off) = match resume.as_deref() {
        None => (0, 0),
        Some(text) => parse_position(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid resume position {text:?}; expected <stdout offset>:<stderr offset>"
            ))
        })?,
    };
    let (tx, body) = sse::channel(Some(state.metrics.sse_guard()));
    std::thread::spawn(move || follow_run(dir, out_off, err_off, tx));
    Ok(body.into_response())
}

fn follow_run(dir: PathBuf, out_off: u64, err_off: u64, tx: SseSender) {
    let changes = watch(&dir);
    let mut tails = [
        LogTail {
            name: "stdout",
            path: dir.join(STDOUT_FILE),
            offset: out_off,
            partial: Vec::new(),
        },
        LogTail {
            name: "stderr",
            path: dir.join(STDERR_FILE),
            offset: err_off,
            partial: Vec::new(),
        },
    ];
    let mut last_status: Option<RunStatus> = None;
    loop {
        let info = liveness::read_reconciled(&dir.join(RUN_INFO_FILE)).ok();
        let status = info
            .as_ref()
            .map(|i| i.status)
            .unwrap_or(RunStatus::Unknown);
        let finished = status.is_terminal();
        let mut caught_up = true;
        for i in 0..tails.len() {
            let (lines, at_end) = tails[i].poll(finished);
            caught_up &= at_end;
            for (line, offset) in lines {
                // The other file's offset is where it stood when this line was read.
                let id = if i == 0 {
                    format!("{offset}:{}", tails[1].offset)
                } else {
                    format!("{}:{offset}", tails[0].offset)
                };
                // Waits while the client's buffer is full: the backlog is read as it drains.
                if tx
                    .send_blocking(SseEvent::new(tails[i].name, line).id(id))
                    .is_err()
                {
                    return;
                }
            }
        }
        if !caught_up {
            continue;
        }
        let position = format!("{}:{}", tails[0].offset, tails[1].offset);
        if last_status != Some(status) {
            last_status = Some(status);
            let data = RunStatusEvent {
                status,
                exit_code: info.as_ref().map(|i| i.exit_code),
                error_summary: info.as_ref().and_then(|i| i.error_summary.clone()),
                pos: None,
            };
            let event = SseEvent::new("status", json_data(&data)).id(position.clone());
            if tx.send_blocking(event).is_err() {
                return;
            }
        }
        if finished {
            let _ = tx.send_blocking(SseEvent::new("end", status.as_str()).id(position));
            return;
        }
        if tx.is_closed() {
            return;
        }
        wait_change(&changes);
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
