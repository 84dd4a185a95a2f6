//! Live runs as Server-Sent Events, driven by file-change notification (inotify) with a coarse
//! re-check as a safety net:
//! - `/api/v1/runs/{id}/stream`: stdout/stderr lines and status changes of one run. Each
//!   event's id is `<stdout offset>:<stderr offset>` after it, so a reconnect with
//!   `Last-Event-ID` resumes exactly where the client stopped: no loss, no duplicates.
//! - `/api/v1/runs/stream/all`: runs created and status changes under the root.

use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use notify::{RecursiveMode, Watcher};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use super::bus::{last_event_id, HEARTBEAT};
use super::error::ApiError;
use super::index::{IndexChange, RunRecord};
use super::lookup;
use super::state::AppState;
use crate::storage::paths::{RUN_INFO_FILE, STDERR_FILE, STDOUT_FILE};
use crate::storage::{liveness, RunStatus};

/// Events buffered per client; a slower client only waits on its own thread.
const BUFFER: usize = 256;
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
    /// Reads what was appended; returns complete lines (or all of it when `flush`) with the
    /// offset just after each.
    pub(super) fn poll(&mut self, flush: bool) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        // The same rule as the file route: a log that is a symlink is never followed.
        if let Ok(mut file) = crate::storage::confined::open_nofollow(&self.path) {
            let start = self.offset + self.partial.len() as u64;
            if file.seek(SeekFrom::Start(start)).is_ok() {
                let _ = file.read_to_end(&mut self.partial);
            }
        }
        while let Some(pos) = self.partial.iter().position(|&b| b == b'\n') {
            let take = pos.min(MAX_LINE);
            let consumed = if take == pos { pos + 1 } else { take };
            let line = String::from_utf8_lossy(&self.partial[..take]).into_owned();
            self.partial.drain(..consumed);
            self.offset += consumed as u64;
            out.push((line, self.offset));
        }
        if (flush || self.partial.len() >= MAX_LINE) && !self.partial.is_empty() {
            let line = String::from_utf8_lossy(&self.partial).into_owned();
            self.offset += self.partial.len() as u64;
            self.partial.clear();
            out.push((line, self.offset));
        }
        out
    }
}

/// A file watcher whose events land in a channel; `None` if notification is unavailable.
pub(super) fn watch(
    path: &Path,
    mode: RecursiveMode,
) -> (Option<notify::RecommendedWatcher>, std_mpsc::Receiver<()>) {
    let (tx, rx) = std_mpsc::channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if crate::storage::watch::is_change(&event) {
            let _ = tx.send(());
        }
    })
    .and_then(|mut w| w.watch(path, mode).map(|()| w));
    match watcher {
        Ok(w) => (Some(w), rx),
        Err(err) => {
            tracing::warn!(path = %path.display(), "no file notifications, re-checking every {RECHECK:?}: {err}");
            (None, rx)
        }
    }
}

/// Waits for a notification (or the re-check interval), then drains queued ones.
pub(super) fn wait_change(rx: &std_mpsc::Receiver<()>) {
    let _ = rx.recv_timeout(RECHECK);
    while rx.try_recv().is_ok() {}
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
    let (tx, rx) = mpsc::channel::<Event>(BUFFER);
    let guard = state.metrics.sse_guard();
    std::thread::spawn(move || {
        let _guard = guard;
        follow_run(dir, out_off, err_off, tx)
    });
    let stream = ReceiverStream::new(rx).map(Ok::<Event, Infallible>);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
        .into_response())
}

fn follow_run(dir: PathBuf, out_off: u64, err_off: u64, tx: mpsc::Sender<Event>) {
    let (_watcher, changes) = watch(&dir, RecursiveMode::NonRecursive);
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
        for i in 0..tails.len() {
            let lines = tails[i].poll(finished);
            for (line, offset) in lines {
                // The other file's offset is where it stood when this line was read.
                let id = if i == 0 {
                    format!("{offset}:{}", tails[1].offset)
                } else {
                    format!("{}:{offset}", tails[0].offset)
                };
                let event = Event::default().event(tails[i].name).id(id).data(line);
                if tx.blocking_send(event).is_err() {
                    return;
                }
            }
        }
        let position = format!("{}:{}", tails[0].offset, tails[1].offset);
        if last_status != Some(status) {
            last_status = Some(status);
            let data = serde_json::json!({
                "status": status,
                "exit_code": info.as_ref().map(|i| i.exit_code),
                "error_summary": info.as_ref().and_then(|i| i.error_summary.clone()),
            });
            let event = Event::default()
                .event("status")
                .id(position.clone())
                .data(data.to_string());
            if tx.blocking_send(event).is_err() {
                return;
            }
        }
        if finished {
            let _ = tx.blocking_send(
                Event::default()
                    .event("end")
                    .id(position)
                    .data(status.as_str()),
            );
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
/// gets a `resync` event (re-list with `GET /api/v1/runs`) and the stream continues.
#[utoipa::path(
    get,
    path = "/api/v1/runs/stream/all",
    tag = "runs",
    responses((status = 200, description = "SSE: ready, run_created, run_status, resync", content_type = "text/event-stream"))
)]
pub async fn all_runs_stream(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut changes = state.index.subscribe();
    let known = state.index.len();
    let (tx, rx) = mpsc::channel::<Event>(BUFFER);
    let guard = state.metrics.sse_guard();
    tokio::spawn(async move {
        let _guard = guard;
        if tx
            .send(Event::default().event("ready").data(known.to_string()))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let event = match changes.recv().await {
                Ok(IndexChange::Created(r)) => change_event("run_created", &r),
                Ok(IndexChange::Status(r)) => change_event("run_status", &r),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Event::default().event("resync").data(format!(
                        "{missed} changes were dropped; re-list with GET /api/v1/runs"
                    ))
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    let stream = ReceiverStream::new(rx).map(Ok::<Event, Infallible>);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
        .into_response())
}

fn change_event(kind: &str, record: &RunRecord) -> Event {
    let data = serde_json::json!({
        "run_id": record.run_id,
        "project_id": record.project_id,
        "task_id": record.task_id,
        "status": record.status,
    });
    Event::default().event(kind).data(data.to_string())
}
