//! One multiplexed event stream per browser: `GET /api/v1/events?topics=…` carries everything
//! a page follows (the run list, one or more runs' logs, message buses) over one connection,
//! so any number of tabs stay within the browser's six connections per host. The topic set
//! changes without reconnecting: `POST /api/v1/events/{stream}/topics` with
//! `{"add": […], "remove": […]}` (the stream id is the `hello` event's data).
//!
//! Topics (a resume position after `@` is optional; `run:` and `bus:` topics may carry a
//! `#tag` so one stream can follow the same run or bus twice, e.g. for two browser tabs):
//! - `runs`: `run_created` / `run_status` of every run in the index;
//! - `run:<run_id>[@<stdout offset>:<stderr offset>]`: `log` batches (`stream`, `lines`,
//!   `pos`), `status` changes and a final `end`;
//! - `bus:<project>[/<task>][@<msg_id>]`: `bus` batches of messages after `msg_id` (without
//!   it, every message), `resync` when `msg_id` is unknown.
//!
//! Every event's data is JSON with a `topic` field. Events queue in one bounded buffer per
//! stream ([`super::sse`], 256 KiB): a client too slow to read blocks only its own followers
//! (log and bus followers wait; a client that drains nothing for the stall limit, or falls
//! behind the run list, is sent `resync` and the stream ends), never the server's memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::bus_follow::{self, BusFollow};
use super::error::ApiError;
use super::index::IndexChange;
use super::lookup;
use super::run_follow::{Position, RunFollower, RunStep};
use super::run_stream::{json_data, run_change};
use super::sse::{self, SseEvent, SseSender};
use super::state::AppState;
use crate::bus::{BusError, FollowFrom};
use crate::storage::paths::{PROJECT_BUS_FILE, STDERR_FILE, STDOUT_FILE, TASK_BUS_FILE};
use crate::storage::{ProjectId, RunId, TaskId};
use crate::wire::{
    BusBatch, LogLines, OnTopic, Resync, RunEnded, StreamHello, StreamTopics, TopicChange,
    TopicError,
};

/// Largest `log` event (bytes of lines); a bigger batch is split.
const MAX_BATCH_BYTES: usize = 64 * 1024;
/// Longest `#tag` of a topic.
const MAX_TAG: usize = 32;
/// Most topics one stream may follow.
pub const MAX_TOPICS: usize = 32;
/// Under steady output, wait this long after a change so lines travel in fewer, larger events.
const COALESCE: Duration = Duration::from_millis(40);
/// How often an idle run-list follower checks whether it was unsubscribed.
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// One subscription of an event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// Runs created and status changes.
    Runs,
    /// One run's log lines and status, from byte offsets of stdout and stderr.
    Run {
        /// The run.
        run: RunId,
        /// Tells apart two subscriptions of one stream to the same run at different positions.
        tag: Option<String>,
        /// Where to start in stdout and stderr.
        from: (u64, u64),
    },
    /// A project or task message bus, after a message id.
    Bus {
        /// The project.
        project: ProjectId,
        /// Tells apart two subscriptions of one stream to the same bus.
        tag: Option<String>,
        /// The task, for a task bus.
        task: Option<TaskId>,
        /// Resume after this message.
        since: Option<String>,
    },
}

impl Topic {
    /// Parses `runs`, `run:<id>[@o:e]` or `bus:<project>[/<task>][@msg_id]`.
    pub fn parse(text: &str) -> Result<Topic, String> {
        let text = text.trim();
        let (name, at) = match text.split_once('@') {
            Some((name, at)) => (name, Some(at)),
            None => (text, None),
        };
        let bad = |why: String| Err(format!("invalid topic {text:?}: {why}"));
        let (name, tag) = match name.split_once('#') {
            Some((name, tag)) => (name, Some(tag.to_string())),
            None => (name, None),
        };
        if let Some(tag) = &tag {
            let ok = (1..=MAX_TAG).contains(&tag.len())
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok || name == "runs" {
                return bad(format!(
                    "a `#tag` (on run: and bus: topics only) is 1 to {MAX_TAG} characters of A-Z, a-z, 0-9, `-`, `_`"
                ));
            }
        }
        if name == "runs" {
            if at.is_some() {
                return bad("`runs` takes no position".into());
            }
            return Ok(Topic::Runs);
        }
        if let Some(id) = name.strip_prefix("run:") {
            let run = match RunId::parse(id) {
                Ok(run) => run,
                Err(e) => return bad(e.to_string()),
            };
            let from = match at {
                None => (0, 0),
                Some(pos) => match Position::parse(pos) {
                    Some(p) => (p.stdout, p.stderr),
                    None => {
                        return bad("the position must be <stdout offset>:<stderr offset>".into())
                    }
                },
            };
            return Ok(Topic::Run { run, tag, from });
        }
        if let Some(path) = name.strip_prefix("bus:") {
            let (project, task) = match path.split_once('/') {
                Some((p, t)) => (p, Some(t)),
                None => (path, None),
            };
            let project = match ProjectId::parse(project) {
                Ok(p) => p,
                Err(e) => return bad(e.to_string()),
            };
            let task = match task.map(TaskId::parse).transpose() {
                Ok(t) => t,
                Err(e) => return bad(e.to_string()),
            };
            let since = at.map(str::to_string).filter(|s| !s.is_empty());
            return Ok(Topic::Bus {
                project,
                tag,
                task,
                since,
            });
        }
        bad("allowed: runs, run:<run_id>[@<stdout offset>:<stderr offset>], bus:<project>[/<task>][@<msg_id>]".into())
    }

    /// The topic's name without its position: what events carry and what `remove` takes.
    pub fn key(&self) -> String {
        let tagged = |name: String, tag: &Option<String>| match tag {
            Some(tag) => format!("{name}#{tag}"),
            None => name,
        };
        match self {
            Topic::Runs => "runs".into(),
            Topic::Run { run, tag, .. } => tagged(format!("run:{run}"), tag),
            Topic::Bus {
                project,
                task: Some(task),
                tag,
                ..
            } => tagged(format!("bus:{project}/{task}"), tag),
            Topic::Bus { project, tag, .. } => tagged(format!("bus:{project}"), tag),
        }
    }
}

/// Parses a list of topics (an empty one is allowed: a stream may start idle).
fn parse_topics<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Vec<Topic>, ApiError> {
    let mut topics = Vec::new();
    for item in items {
        if item.trim().is_empty() {
            continue;
        }
        topics.push(Topic::parse(item).map_err(ApiError::bad_request)?);
    }
    Ok(topics)
}

/// An open stream's sender and its followed topics (each with a stop flag).
struct Stream {
    tx: Arc<SseSender>,
    topics: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

/// Open streams by id, for topic changes.
static STREAMS: LazyLock<Mutex<HashMap<String, Arc<Stream>>>> = LazyLock::new(Default::default);

fn streams() -> std::sync::MutexGuard<'static, HashMap<String, Arc<Stream>>> {
    STREAMS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the stream from the registry and stops its followers when the response is dropped.
struct StreamGuard {
    id: String,
    stream: Arc<Stream>,
    _sse: super::metrics::SseGuard,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        streams().remove(&self.id);
        let topics = self.stream.topics.lock().unwrap_or_else(|e| e.into_inner());
        for stop in topics.values() {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// Query of the events route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Comma-separated topics: `runs`, `run:<id>[@o:e]`, `bus:<project>[/<task>][@msg_id]`.
    pub topics: Option<String>,
}

/// `GET /api/v1/events?topics=…`
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(EventsQuery),
    responses((status = 200, description = "SSE: hello (stream id), then run_created, run_status, log, status, end, bus, resync, error events; data is JSON with `topic`", content_type = "text/event-stream"), (status = 400, description = "Bad topic", body = crate::api::error::ErrorBody))
)]
pub async fn events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let topics = parse_topics(query.topics.as_deref().unwrap_or("").split(','))?;
    check_count(topics.len())?;
    let (tx, body) = sse::channel(None);
    let tx = Arc::new(tx);
    let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let stream = Arc::new(Stream {
        tx: tx.clone(),
        topics: Mutex::new(HashMap::new()),
    });
    streams().insert(id.clone(), stream.clone());
    let guard = StreamGuard {
        id: id.clone(),
        stream: stream.clone(),
        _sse: state.metrics.sse_guard(),
    };
    // `hello` is the first event; the buffer is empty, so this cannot fail.
    let _ = tx.try_send(
        SseEvent::new("hello", json_data(&StreamHello { stream: id.clone() })),
        RUNS_RESYNC,
    );
    for topic in topics {
        subscribe(&state, &stream, topic);
    }
    Ok(body.with_guard(guard).into_response())
}

/// Why a client that fell behind the run list is told to resync.
const RUNS_RESYNC: &str = "changes were dropped; reconnect and re-list with GET /api/v1/runs";

fn check_count(n: usize) -> Result<(), ApiError> {
    if n > MAX_TOPICS {
        return Err(ApiError::bad_request(format!(
            "too many topics ({n}); a stream follows at most {MAX_TOPICS}"
        )));
    }
    Ok(())
}

/// `POST /api/v1/events/{stream}/topics`
#[utoipa::path(
    post,
    path = "/api/v1/events/{stream}/topics",
    tag = "events",
    params(("stream" = String, Path, description = "Stream id (the `hello` event's data)")),
    request_body = TopicChange,
    responses((status = 200, description = "The stream's topics now", body = StreamTopics), (status = 400, description = "Bad topic", body = crate::api::error::ErrorBody), (status = 404, description = "No such open stream", body = crate::api::error::ErrorBody))
)]
pub async fn change_topics(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    body: Result<Json<TopicChange>, JsonRejection>,
) -> Result<Json<StreamTopics>, ApiError> {
    let Json(change) = body.map_err(ApiError::from_json)?;
    let add = parse_topics(change.add.iter().map(String::as_str))?;
    let remove = parse_topics(change.remove.iter().map(String::as_str))?;
    let stream = streams()
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("event stream {id:?} is not open")))?;
    {
        let mut topics = stream.topics.lock().unwrap_or_else(|e| e.into_inner());
        for topic in &remove {
            if let Some(stop) = topics.remove(&topic.key()) {
                stop.store(true, Ordering::Relaxed);
            }
        }
        let new = add
            .iter()
            .filter(|t| !topics.contains_key(&t.key()))
            .count();
        check_count(topics.len() + new)?;
    }
    for topic in add {
        subscribe(&state, &stream, topic);
    }
    let mut names: Vec<String> = stream
        .topics
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .cloned()
        .collect();
    names.sort();
    Ok(Json(StreamTopics {
        stream: id,
        topics: names,
    }))
}

/// Starts following `topic` on `stream` (a topic already followed is left as it is).
fn subscribe(state: &AppState, stream: &Arc<Stream>, topic: Topic) {
    let key = topic.key();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let mut topics = stream.topics.lock().unwrap_or_else(|e| e.into_inner());
        if topics.contains_key(&key) {
            return;
        }
        topics.insert(key.clone(), stop.clone());
    }
    let follower = Follow {
        key,
        tx: stream.tx.clone(),
        stop,
    };
    match topic {
        Topic::Runs => {
            let changes = state.index.subscribe();
            tokio::spawn(follower.runs(changes));
        }
        Topic::Run { run, from, .. } => match lookup::run_dir(state, &run).and_then(|dir| {
            lookup::refuse_symlinked_files(&dir, &[STDOUT_FILE, STDERR_FILE]).map(|()| dir)
        }) {
            Ok(dir) => {
                tokio::spawn(follower.run(dir, from));
            }
            Err(err) => follower.fail(&err.message),
        },
        Topic::Bus {
            project,
            task,
            since,
            ..
        } => match bus_path(state, &project, task.as_ref()) {
            Ok(path) => {
                tokio::spawn(follower.bus(path, since));
            }
            Err(err) => follower.fail(&err.message),
        },
    }
}

fn bus_path(
    state: &AppState,
    project: &ProjectId,
    task: Option<&TaskId>,
) -> Result<PathBuf, ApiError> {
    Ok(match task {
        Some(task) => lookup::task_dir(&state.root, project, task)?.join(TASK_BUS_FILE),
        None => lookup::project_dir(&state.root, project)?.join(PROJECT_BUS_FILE),
    })
}

/// One topic's follower: sends its events until unsubscribed or the stream is gone.
struct Follow {
    key: String,
    tx: Arc<SseSender>,
    stop: Arc<AtomicBool>,
}

impl Follow {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.tx.is_closed()
    }

    fn event<T: serde::Serialize>(&self, kind: &str, data: T) -> SseEvent {
        let data = OnTopic {
            topic: self.key.clone(),
            data,
        };
        SseEvent::new(kind, json_data(&data))
    }

    /// Sends from a follower task, waiting while the client's buffer is full; false when the
    /// stream is gone (or was told to resync) or the topic dropped.
    async fn send<T: serde::Serialize>(&self, kind: &str, data: T) -> bool {
        !self.stopped() && self.tx.send(self.event(kind, data)).await.is_ok()
    }

    /// A topic that cannot be followed: one `error` event, the stream goes on.
    fn fail(&self, message: &str) {
        let event = self.event(
            "error",
            TopicError {
                message: message.to_string(),
            },
        );
        let _ = self.tx.try_send(event, "the client fell behind; reconnect");
    }

    async fn runs(self, mut changes: broadcast::Receiver<IndexChange>) {
        loop {
            let change = tokio::select! {
                change = changes.recv() => change,
                () = self.tx.closed() => return,
                () = tokio::time::sleep(IDLE_CHECK) => {
                    if self.stopped() { return; }
                    continue;
                }
            };
            let event = match change {
                Ok(IndexChange::Created(r)) => ("run_created", run_change(&r)),
                Ok(IndexChange::Status(r)) => ("run_status", run_change(&r)),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.tx.resync(RUNS_RESYNC);
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            // The run list cannot wait: a client over its buffer is told to resync.
            if self.stopped()
                || self
                    .tx
                    .try_send(self.event(event.0, event.1), RUNS_RESYNC)
                    .is_err()
            {
                return;
            }
        }
    }

    async fn run(self, dir: PathBuf, from: (u64, u64)) {
        let from = Position {
            stdout: from.0,
            stderr: from.1,
        };
        let mut follower = RunFollower::new(dir, from).coalesce(COALESCE);
        loop {
            if self.stopped() {
                return;
            }
            let step = tokio::select! {
                () = self.tx.closed() => return,
                step = follower.next() => step,
            };
            let sent = match step {
                None => return,
                Some(RunStep::Lines { stream, lines }) => {
                    let mut sent = true;
                    for (lines, pos) in batches(lines) {
                        let data = LogLines {
                            stream: stream.to_string(),
                            lines,
                            pos: pos.to_string(),
                        };
                        sent = self.send("log", data).await;
                        if !sent {
                            break;
                        }
                    }
                    sent
                }
                Some(RunStep::Status { mut event, pos }) => {
                    event.pos = Some(pos.to_string());
                    self.send("status", event).await
                }
                Some(RunStep::End { status, pos }) => {
                    let pos = pos.to_string();
                    self.send("end", RunEnded { status, pos }).await;
                    return;
                }
            };
            if !sent {
                return;
            }
        }
    }

    async fn bus(self, path: PathBuf, since: Option<String>) {
        let from = since.clone().map_or(FollowFrom::Start, FollowFrom::Since);
        let follower = match bus_follow::open(path.clone(), from, None).await {
            Ok(f) => f,
            Err(BusError::SinceNotFound { .. }) => {
                let reason = "unknown msg_id; replaying the whole bus";
                let resync = Resync {
                    reason: reason.to_string(),
                };
                if !self.send("resync", resync).await {
                    return;
                }
                match bus_follow::open(path, FollowFrom::Start, None).await {
                    Ok(f) => f,
                    Err(err) => return self.fail(&err.to_string()),
                }
            }
            Err(err) => return self.fail(&err.to_string()),
        };
        let mut follower = BusFollow::new(follower);
        while !self.stopped() {
            let batch = tokio::select! {
                () = self.tx.closed() => return,
                // An unsubscribed topic notices within the idle check.
                () = tokio::time::sleep(IDLE_CHECK) => continue,
                batch = follower.next() => batch,
            };
            match batch {
                Ok(batch) => {
                    if !self.send("bus", BusBatch { messages: batch }).await {
                        return;
                    }
                }
                Err(err) => return self.fail(&err.to_string()),
            }
        }
    }
}

/// Groups `(line, offset after it)` into batches of at most [`MAX_BATCH_BYTES`], each with the
/// offset after its last line.
fn batches<P>(lines: Vec<(String, P)>) -> Vec<(Vec<String>, P)> {
    let mut out: Vec<(Vec<String>, P)> = Vec::new();
    let mut size = 0;
    for (line, offset) in lines {
        match out.last_mut() {
            Some((batch, end)) if size + line.len() <= MAX_BATCH_BYTES => {
                size += line.len();
                batch.push(line);
                *end = offset;
            }
            _ => {
                size = line.len();
                out.push((vec![line], offset));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_with_and_without_positions() {
        assert_eq!(Topic::parse("runs"), Ok(Topic::Runs));
        let run = Topic::parse("run:20260101-1200000000-1@10:20").unwrap();
        assert_eq!(run.key(), "run:20260101-1200000000-1");
        assert!(matches!(run, Topic::Run { from: (10, 20), .. }));
        let bus = Topic::parse("bus:demo/t1@MSG-1").unwrap();
        assert_eq!(bus.key(), "bus:demo/t1");
        assert!(matches!(bus, Topic::Bus { since: Some(ref s), .. } if s == "MSG-1"));
        assert_eq!(Topic::parse("bus:demo").unwrap().key(), "bus:demo");
        let tagged = Topic::parse("run:r1#tab-1@0:0").unwrap();
        assert_eq!(tagged.key(), "run:r1#tab-1");
        assert_eq!(Topic::parse("bus:demo#t2").unwrap().key(), "bus:demo#t2");
    }

    #[test]
    fn bad_topics_name_what_is_allowed() {
        for bad in [
            "nope",
            "runs@1",
            "run:../x",
            "run:x@abc",
            "bus:../p",
            "runs#a",
            "run:x#a b",
            "run:x#",
        ] {
            let err = Topic::parse(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
        assert!(Topic::parse("nope").unwrap_err().contains("allowed: runs"));
    }

    #[test]
    fn batches_split_by_size_and_keep_the_last_offset() {
        let big = "x".repeat(MAX_BATCH_BYTES / 2 + 1);
        let lines = vec![
            ("a".to_string(), 2),
            (big.clone(), 4),
            (big.clone(), 6),
            ("b".to_string(), 8),
        ];
        let out = batches(lines);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].1, 4);
        assert_eq!(out[1].0.len(), 2);
        assert_eq!(out[1].1, 8);
        assert!(batches::<u64>(Vec::new()).is_empty());
    }
}
