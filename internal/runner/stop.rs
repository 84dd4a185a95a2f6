//! Stopping a run: mark it as stopped by the user (a `STOP-REQUESTED` file in the
//! run dir, read by its supervisor, and one in the task dir, read by the task's Ralph loop),
//! SIGTERM the agent's process group, wait a grace period, then SIGKILL the group.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::Signal;

use crate::process::{group_alive, signal_group};
use crate::storage::atomic::write_atomic;
use crate::storage::ids::{ProjectId, RunId, TaskId};
use crate::storage::liveness::read_reconciled;
use crate::storage::paths::{RUN_INFO_FILE, TASK_BUS_FILE};
use crate::storage::run_info::UPDATE_LOCK_TIMEOUT;
use crate::storage::time::format_rfc3339_nano;
use crate::storage::{RunInfo, RunStatus};

use super::classify::{classify, Outcome};
use super::error::RunnerError;
use super::events::RunEvents;

/// Marker file written by a stop, in the run dir and in the task dir.
pub const STOP_MARKER: &str = "STOP-REQUESTED";
/// Default time between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// How long to wait for the group to vanish after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long to wait for the supervisor to record the final status.
const RECORD_WAIT: Duration = Duration::from_secs(10);
/// How long to wait for a just-created run to record its process group.
const START_WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// Whether a stop was requested for the run (or task) in `dir`.
pub fn requested(dir: &Path) -> bool {
    dir.join(STOP_MARKER).exists()
}

/// Writes the stop marker (a timestamp) into `dir`: a run dir (read by its supervisor) or a
/// task dir (read by the task's loop, which then starts no new run).
pub fn request(dir: &Path) -> Result<(), RunnerError> {
    let stamp = format!("{}\n", format_rfc3339_nano(&Utc::now()));
    write_atomic(&dir.join(STOP_MARKER), stamp.as_bytes())
        .map_err(|e| RunnerError::io("write", dir.join(STOP_MARKER), e))
}

/// How to stop.
#[derive(Debug, Clone, Copy)]
pub struct StopOptions {
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// SIGKILL at once.
    pub force: bool,
}

/// Stops the running run in `run_dir` and returns its final run-info.
pub fn stop_run(run_dir: &Path, opts: StopOptions) -> Result<RunInfo, RunnerError> {
    let info_path = run_dir.join(RUN_INFO_FILE);
    let info = read_reconciled(&info_path)?;
    if info.status != RunStatus::Running {
        return Err(RunnerError::NotRunning(format!(
            "run {} is not running (status {})",
            info.run_id, info.status
        )));
    }
    // Mark first: a run still queued for a slot (or starting) ends as stopped by itself.
    request(run_dir)?;
    if let Some(task_dir) = run_dir.parent().and_then(Path::parent) {
        request(task_dir)?;
    }
    let start = Instant::now();
    let info = loop {
        let info = read_reconciled(&info_path)?;
        if info.status.is_terminal() {
            return Ok(info);
        }
        if info.pgid > 1 {
            break info;
        }
        if start.elapsed() >= START_WAIT {
            return Err(RunnerError::NotRunning(format!(
                "run {} has no process group after {START_WAIT:?}; its supervisor did not start the agent",
                info.run_id
            )));
        }
        std::thread::sleep(POLL);
    };
    let pgid = info.pgid;
    let first = if opts.force {
        Signal::SIGKILL
    } else {
        Signal::SIGTERM
    };
    signal_group(pgid, first)
        .map_err(|e| RunnerError::NotRunning(format!("cannot signal process group {pgid}: {e}")))?;
    tracing::info!(run = %info.run_id, pgid, signal = %first, "stop: signalled the process group");
    if !opts.force && !wait_gone(pgid, opts.grace) {
        tracing::info!(pgid, "stop: grace period over; sending SIGKILL");
        let _ = signal_group(pgid, Signal::SIGKILL);
    }
    if !wait_gone(pgid, KILL_WAIT) {
        return Err(RunnerError::NotRunning(format!(
            "process group {pgid} survived SIGKILL"
        )));
    }
    wait_recorded(run_dir, &info)
}

fn wait_gone(pgid: i64, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        if !group_alive(pgid) {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Waits for the supervisor's final record; records `stopped` itself when the supervisor is
/// gone (it was killed too, or the run was started by an older runner).
fn wait_recorded(run_dir: &Path, before: &RunInfo) -> Result<RunInfo, RunnerError> {
    let info_path = run_dir.join(RUN_INFO_FILE);
    let start = Instant::now();
    while start.elapsed() < RECORD_WAIT {
        let info = RunInfo::read(&info_path)?;
        if info.status.is_terminal() {
            return Ok(info);
        }
        std::thread::sleep(POLL);
    }
    let outcome: Outcome = classify(-1, false, true);
    let mut changed = false;
    let info = RunInfo::update(&info_path, UPDATE_LOCK_TIMEOUT, |i| {
        if i.status == RunStatus::Running {
            changed = true;
            i.status = outcome.status;
            i.exit_code = outcome.exit_code;
            i.end_time = Utc::now();
            i.error_summary = outcome.error_summary.clone();
        }
        Ok::<(), std::convert::Infallible>(())
    })?
    .unwrap_or_else(|never| match never {});
    let (Ok(project), Ok(task), Ok(run)) = (
        ProjectId::parse(&before.project_id),
        TaskId::parse(&before.task_id),
        RunId::parse(&before.run_id),
    ) else {
        return Ok(info);
    };
    if !changed {
        return Ok(info);
    }
    if let Some(task_dir) = run_dir.parent().and_then(Path::parent) {
        let bus = task_dir.join(TASK_BUS_FILE);
        let events = RunEvents {
            bus: &bus,
            project: &project,
            task: &task,
            run: &run,
            run_dir,
        };
        if let Err(err) = events.finished(&outcome) {
            tracing::warn!("cannot post the stop event: {err}");
        }
    }
    Ok(info)
}
