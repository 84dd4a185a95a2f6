//! Following one run: its stdout/stderr lines and status changes, for the run stream
//! (`/api/v1/runs/{id}/stream`) and the event stream's `run:` topics alike.
//!
//! A follower is an async task, not a thread: reading a backlog runs on the runtime's blocking
//! pool for the moment it takes (the few new lines of a live run are read in place), and
//! between reads the follower waits on the process's watch hub
//! ([`crate::storage::watch`]) with a coarse re-check as a safety net. A server with hundreds
//! of open run streams therefore holds no thread per stream (each thread start and exit
//! takes the address-space lock every other thread's page faults wait on).

use std::collections::VecDeque;
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::storage::paths::{RUN_INFO_FILE, STDERR_FILE, STDOUT_FILE};
use crate::storage::watch::{Scope, Subscription};
use crate::storage::{liveness, RunInfo, RunStatus};
use crate::wire::RunStatusEvent;

/// Most bytes read from a log file at once: a backlog is read as the client drains it.
const READ_CHUNK: u64 = 256 * 1024;
/// Re-check interval when no notification arrives.
const RECHECK: Duration = Duration::from_secs(2);
/// Longest line sent as one event; longer lines are split.
const MAX_LINE: usize = 64 * 1024;

/// How far a client has read both logs: the byte offsets after the last line sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Position {
    /// Offset in stdout.
    pub stdout: u64,
    /// Offset in stderr.
    pub stderr: u64,
}

impl Position {
    /// Parses `<stdout offset>:<stderr offset>` (as sent in event ids).
    pub fn parse(text: &str) -> Option<Self> {
        let (o, e) = text.split_once(':')?;
        Some(Self {
            stdout: o.trim().parse().ok()?,
            stderr: e.trim().parse().ok()?,
        })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.stdout, self.stderr)
    }
}

/// What a follower has to report next.
#[derive(Debug)]
pub(super) enum RunStep {
    /// New lines of one log (`"stdout"` or `"stderr"`), each with the position after it.
    Lines {
        /// Which log.
        stream: &'static str,
        /// The lines, in order.
        lines: Vec<(String, Position)>,
    },
    /// The run's status changed (the first step after the backlog is always one).
    Status {
        /// The status with its exit code and error (`pos` left empty).
        event: RunStatusEvent,
        /// Where both logs stand.
        pos: Position,
    },
    /// The run ended and both logs were sent to their end; nothing follows.
    End {
        /// Its final status.
        status: RunStatus,
        /// Where both logs end.
        pos: Position,
    },
}

/// One followed log file, kept open once it exists (a log is only appended to).
#[derive(Debug)]
struct LogTail {
    name: &'static str,
    path: PathBuf,
    file: Option<std::fs::File>,
    offset: u64,
    partial: Vec<u8>,
}

impl LogTail {
    fn new(dir: &Path, name: &'static str, file: &str, offset: u64) -> Self {
        Self {
            name,
            path: dir.join(file),
            file: None,
            offset,
            partial: Vec::new(),
        }
    }

    /// Reads up to [`READ_CHUNK`] appended bytes; returns the complete lines (and, when
    /// `flush` and the end of the file was reached, the unterminated rest) with the offset just
    /// after each, and whether the end of the file was reached.
    fn poll(&mut self, flush: bool) -> (Vec<(String, u64)>, bool) {
        let mut out = Vec::new();
        let mut at_end = true;
        if self.file.is_none() {
            // The same rule as the file route: a log that is a symlink is never followed.
            self.file = crate::storage::confined::open_nofollow(&self.path).ok();
        }
        if let Some(file) = self.file.as_mut() {
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

/// The run's record as last read, and when its process was last probed.
struct CachedRecord {
    /// Identity and version of run-info.yaml when read: (inode, mtime ns, size).
    version: (u64, i128, u64),
    info: RunInfo,
    probed: std::time::Instant,
}

impl CachedRecord {
    /// Whether this is still the record (run-info.yaml unchanged, and for a running run its
    /// process probed recently): one `stat`.
    fn is_current(&self, path: &Path) -> bool {
        let settled = self.info.status.is_terminal();
        record_version(path) == Some(self.version)
            && (settled || self.probed.elapsed() < PROBE_EVERY)
    }
}

/// The record of a running run is re-read when run-info.yaml changes, and its process probed
/// (to notice one that vanished without a word) at most this often.
const PROBE_EVERY: Duration = RECHECK;

fn record_version(path: &Path) -> Option<(u64, i128, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    Some((meta.ino(), mtime, meta.size()))
}

/// The run's record: from the cache while run-info.yaml is unchanged and the last probe is
/// recent (the common case while a run writes output: one `stat` instead of reading and
/// parsing the record and probing its process on every new line), else read and reconciled.
fn current_record(dir: &Path, cache: &mut Option<CachedRecord>) -> Option<RunInfo> {
    let path = dir.join(RUN_INFO_FILE);
    if let Some(cached) = cache.as_ref().filter(|c| c.is_current(&path)) {
        return Some(cached.info.clone());
    }
    let info = liveness::read_reconciled(&path).ok();
    // Stat again after reading: a reconcile may have rewritten the file.
    *cache = match (&info, record_version(&path)) {
        (Some(info), Some(version)) => Some(CachedRecord {
            version,
            info: info.clone(),
            probed: std::time::Instant::now(),
        }),
        _ => None,
    };
    info
}

/// What one look at the run directory found.
struct Look {
    tails: [LogTail; 2],
    record: Option<CachedRecord>,
    /// stderr's offset before this look (stdout's lines were read while it stood there).
    stderr_before: u64,
    info: Option<RunInfo>,
    lines: [Vec<(String, u64)>; 2],
    caught_up: bool,
}

/// Reads the record and what the logs gained (blocking: run on the blocking pool).
fn look(dir: &Path, mut tails: [LogTail; 2], mut record: Option<CachedRecord>) -> Look {
    let info = current_record(dir, &mut record);
    let finished = info.as_ref().is_some_and(|i| i.status.is_terminal());
    let stderr_before = tails[1].offset;
    let (out, out_end) = tails[0].poll(finished);
    let (err, err_end) = tails[1].poll(finished);
    Look {
        tails,
        record,
        stderr_before,
        info,
        lines: [out, err],
        caught_up: out_end && err_end,
    }
}

/// Follows one run directory from a position (see the module doc).
pub(super) struct RunFollower {
    dir: PathBuf,
    /// Wakes the follower when the run dir changes; made on the blocking pool: watching waits
    /// for the watcher thread, which a burst of file events keeps busy, and an async worker
    /// waiting there stalls all its other tasks (dropping it does not wait).
    changes: Option<Subscription>,
    /// `None` while a look runs.
    tails: Option<[LogTail; 2]>,
    /// The record as last read (moves with `tails`).
    record: Option<CachedRecord>,
    /// The look running on the blocking pool (the first one also subscribes).
    look: Option<JoinHandle<(Option<Subscription>, Look)>>,
    pending: VecDeque<RunStep>,
    last_status: Option<RunStatus>,
    /// The last look reached the end of both logs: wait for a change before the next.
    wait_next: bool,
    /// The last look found new lines.
    busy: bool,
    /// The last look reached the end of both logs (the backlog is sent).
    live: bool,
    /// Extra wait after a look that found lines, so a chatty run's lines come in batches.
    coalesce: Option<Duration>,
    ended: bool,
}

impl RunFollower {
    /// A follower of the run in `dir`, starting at `from`.
    pub fn new(dir: PathBuf, from: Position) -> Self {
        let tails = [
            LogTail::new(&dir, "stdout", STDOUT_FILE, from.stdout),
            LogTail::new(&dir, "stderr", STDERR_FILE, from.stderr),
        ];
        Self {
            dir,
            changes: None,
            tails: Some(tails),
            record: None,
            look: None,
            pending: VecDeque::new(),
            last_status: None,
            wait_next: false,
            busy: false,
            live: false,
            coalesce: None,
            ended: false,
        }
    }

    /// Waits `pause` after a look that found lines before looking again (batches lines).
    pub fn coalesce(mut self, pause: Duration) -> Self {
        self.coalesce = Some(pause);
        self
    }

    /// The next step, `None` once the run ended and [`RunStep::End`] was returned. Reads only
    /// as fast as it is called: a caller that waits for a slow client reads no further.
    /// Cancel-safe: a caller may race it against other events and call it again.
    pub async fn next(&mut self) -> Option<RunStep> {
        loop {
            if let Some(step) = self.pending.pop_front() {
                return Some(step);
            }
            if self.ended {
                return None;
            }
            if self.look.is_none() {
                if self.wait_next {
                    if let Some(pause) = self.coalesce.filter(|_| self.busy) {
                        tokio::time::sleep(pause).await;
                    }
                    match &self.changes {
                        Some(changes) => {
                            let _ = tokio::time::timeout(RECHECK, changes.changed()).await;
                        }
                        None => tokio::time::sleep(RECHECK).await,
                    }
                    self.wait_next = false;
                }
                let Some(tails) = self.tails.take() else {
                    self.ended = true;
                    continue;
                };
                let record = self.record.take();
                let record_current = record
                    .as_ref()
                    .is_some_and(|r| r.is_current(&self.dir.join(RUN_INFO_FILE)));
                if self.live && record_current {
                    // Caught up and the record unchanged: what is new is a few lines in the
                    // page cache, read here rather than after a hand-off to the blocking pool
                    // (one thread wake-up less for every new line). Reading and reconciling
                    // the record (which may wait for its lock) stays on the pool.
                    let found = look(&self.dir, tails, record);
                    self.take_in(found);
                    continue;
                }
                let dir = self.dir.clone();
                // Watched before the first look reads, so no change after it is missed.
                let subscribe = self.changes.is_none();
                self.look = Some(tokio::task::spawn_blocking(move || {
                    let changes = subscribe.then(|| Subscription::on(&dir, Scope::Dir));
                    (changes, look(&dir, tails, record))
                }));
            }
            let Some(running) = self.look.as_mut() else {
                continue;
            };
            let done = running.await;
            self.look = None;
            match done {
                Ok((changes, found)) => {
                    if changes.is_some() {
                        self.changes = changes;
                    }
                    self.take_in(found);
                }
                Err(err) => {
                    tracing::error!(dir = %self.dir.display(), "following a run failed: {err}");
                    self.ended = true;
                }
            }
        }
    }

    /// Turns what a look found into steps.
    fn take_in(&mut self, found: Look) {
        let Look {
            tails,
            record,
            stderr_before,
            info,
            lines,
            caught_up,
        } = found;
        self.busy = lines.iter().any(|l| !l.is_empty());
        for (i, lines) in lines.into_iter().enumerate() {
            if lines.is_empty() {
                continue;
            }
            // The other log's offset is where it stood when this one was read (stdout is
            // read first), so a resume from any line's position loses nothing.
            let lines = lines
                .into_iter()
                .map(|(line, offset)| {
                    let pos = if i == 0 {
                        Position {
                            stdout: offset,
                            stderr: stderr_before,
                        }
                    } else {
                        Position {
                            stdout: tails[0].offset,
                            stderr: offset,
                        }
                    };
                    (line, pos)
                })
                .collect();
            self.pending.push_back(RunStep::Lines {
                stream: tails[i].name,
                lines,
            });
        }
        let pos = Position {
            stdout: tails[0].offset,
            stderr: tails[1].offset,
        };
        self.tails = Some(tails);
        self.record = record;
        self.live = caught_up;
        if !caught_up {
            return; // more backlog: read on as the caller asks
        }
        let status = info.as_ref().map_or(RunStatus::Unknown, |i| i.status);
        if self.last_status != Some(status) {
            self.last_status = Some(status);
            self.pending.push_back(RunStep::Status {
                event: RunStatusEvent {
                    status,
                    exit_code: info.as_ref().map(|i| i.exit_code),
                    error_summary: info.as_ref().and_then(|i| i.error_summary.clone()),
                    pos: None,
                },
                pos,
            });
        }
        if status.is_terminal() {
            self.pending.push_back(RunStep::End { status, pos });
            self.ended = true;
        }
        self.wait_next = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_finished(dir: &Path, status: RunStatus) {
        let start = chrono::Utc::now();
        let mut info = RunInfo::new_running("20260101-1200000000-1", "demo", "t", "claude", start);
        info.status = status;
        info.exit_code = 0;
        info.end_time = start;
        info.write(&dir.join(RUN_INFO_FILE)).unwrap();
    }

    #[test]
    fn the_record_is_read_again_only_when_its_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = None;
        assert!(current_record(dir.path(), &mut cache).is_none());
        write_finished(dir.path(), RunStatus::Completed);
        let first = current_record(dir.path(), &mut cache).unwrap();
        assert_eq!(first.status, RunStatus::Completed);
        // Unchanged file: the cached record (tampering with the cache shows it was used).
        if let Some(cached) = cache.as_mut() {
            cached.info.exit_code = 99;
        }
        assert_eq!(
            current_record(dir.path(), &mut cache).unwrap().exit_code,
            99
        );
        // A rewritten record (a new file renamed into place) is read again.
        write_finished(dir.path(), RunStatus::Failed);
        let again = current_record(dir.path(), &mut cache).unwrap();
        assert_eq!((again.status, again.exit_code), (RunStatus::Failed, 0));
    }

    #[test]
    fn positions_parse_and_print_alike() {
        let pos = Position::parse(" 12:34").unwrap();
        assert_eq!(
            pos,
            Position {
                stdout: 12,
                stderr: 34
            }
        );
        assert_eq!(pos.to_string(), "12:34");
        for bad in ["", "12", "a:1", "1:-2", "1:2:3"] {
            assert_eq!(Position::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_tail_splits_long_lines_and_flushes_the_rest_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let long = "y".repeat(MAX_LINE + 10);
        std::fs::write(dir.path().join(STDOUT_FILE), format!("a\n{long}\nrest")).unwrap();
        let mut tail = LogTail::new(dir.path(), "stdout", STDOUT_FILE, 0);
        let (lines, at_end) = tail.poll(false);
        assert!(at_end);
        let texts: Vec<usize> = lines.iter().map(|(l, _)| l.len()).collect();
        assert_eq!(texts, vec![1, MAX_LINE, 10]);
        assert_eq!(lines[0].1, 2);
        let (rest, _) = tail.poll(true);
        assert_eq!(
            rest,
            vec![("rest".to_string(), (2 + long.len() + 1 + 4) as u64)]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_finished_run_yields_its_lines_then_status_then_end() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STDOUT_FILE), "one\ntwo\n").unwrap();
        std::fs::write(dir.path().join(STDERR_FILE), "err\n").unwrap();
        write_finished(dir.path(), RunStatus::Completed);
        let mut follower = RunFollower::new(dir.path().to_path_buf(), Position::default());
        let mut seen = Vec::new();
        while let Some(step) = follower.next().await {
            seen.push(match step {
                RunStep::Lines { stream, lines } => {
                    let last = lines.last().map(|l| l.1.to_string()).unwrap_or_default();
                    format!("{stream}:{}@{last}", lines.len())
                }
                RunStep::Status { event, pos } => format!("status:{}@{pos}", event.status),
                RunStep::End { status, pos } => format!("end:{status}@{pos}"),
            });
        }
        assert_eq!(
            seen,
            [
                "stdout:2@8:0",
                "stderr:1@8:4",
                "status:completed@8:4",
                "end:completed@8:4"
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_follower_resumes_from_a_position_without_repeating_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STDOUT_FILE), "one\ntwo\n").unwrap();
        write_finished(dir.path(), RunStatus::Failed);
        let from = Position {
            stdout: 4,
            stderr: 0,
        };
        let mut follower = RunFollower::new(dir.path().to_path_buf(), from);
        match follower.next().await {
            Some(RunStep::Lines { stream, lines }) => {
                assert_eq!(stream, "stdout");
                assert_eq!(
                    lines,
                    vec![(
                        "two".to_string(),
                        Position {
                            stdout: 8,
                            stderr: 0
                        }
                    )]
                );
            }
            other => panic!("expected lines, got {other:?}"),
        }
    }
}
