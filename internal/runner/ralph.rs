//! The Ralph loop of a task (`run-agent task`): run the root agent, restart it
//! until `<task>/DONE` exists (attempts after the first get the restart prefix), with an
//! exponential restart delay up to a cap; give up after `max_restarts` restarts with a bus
//! ERROR; end without restarting when a run was stopped by the user. When DONE appears, wait
//! for the task's still-running child runs, then post a completion FACT to the project bus.
//! The caller holds the task's [`TaskLoopLock`] around the whole loop, so the task reads as
//! running in its restart gaps and no second loop of the task can start.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::bus::{self, AppendOptions, NewMessage};
use crate::storage::liveness::{read_reconciled, wait_until_ended};
use crate::storage::paths::{DONE_FILE, OUTPUT_FILE, RUN_INFO_FILE};
use crate::storage::time::format_rfc3339_nano;
use crate::storage::{Root, RunInfo, RunStatus};

use super::budget;
use super::error::RunnerError;
use super::job::{run_job, JobRequest, PreparedRun};
use super::loop_lock::TaskLoopLock;
use super::prompt::task_prompt;
use super::stop::{self, STOP_MARKER};
use crate::agent::resume_argv;

mod drive;

pub use drive::{
    drive, LoopObserver, LoopRequest, Waiting, DEFAULT_CHILD_WAIT, DEFAULT_DEPENDENCY_POLL,
    DEFAULT_RESTART_DELAY, DEFAULT_RESTART_DELAY_MAX,
};

/// `meta.kind` of the completion FACT on the project bus.
pub const COMPLETION_KIND: &str = "task_completion";
/// Project-bus messages searched for an earlier completion FACT of the same DONE.
const COMPLETION_LOOKBACK: usize = 500;

/// How many nice levels a task loop steps down for its completion bookkeeping.
const COMPLETION_NICE: i32 = 10;
/// How often an orphaned run is re-read while waiting for it to end (its files may not change).
const ORPHAN_RECHECK: Duration = Duration::from_millis(200);

/// How a task is run.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// The template of every attempt; its `prompt` is the task prompt without prefix. A
    /// template with `previous_run_id` set resumes the task after that run: the first attempt
    /// links to it and already gets the restart prefix.
    pub job: JobRequest,
    /// Restarts allowed after the first attempt (0 = one attempt).
    pub max_restarts: u32,
    /// Delay before the first restart; doubled after each restart.
    pub restart_delay: Duration,
    /// Cap of the restart delay.
    pub restart_delay_max: Duration,
    /// How long to wait for running child runs once DONE exists.
    pub child_wait: Duration,
    /// The agent's own session to continue in the first attempt only (see
    /// [`agent::session_to_resume`](crate::agent::session_to_resume)); later attempts start
    /// a new conversation.
    pub resume_session: Option<String>,
    /// The config's `defaults.budget`; the task's own budget (TASK-CONFIG.yaml) wins.
    pub default_budget: crate::config::Budget,
    /// Where the loop sends the `budget_exceeded` event when it, not a run's supervisor, is
    /// the first to find the budget passed (the config's `webhook`).
    pub webhook: Option<super::webhook::WebhookTarget>,
}

impl TaskRequest {
    /// A loop of `job` with `max_restarts` and the default delays and child wait.
    pub fn new(job: JobRequest, max_restarts: u32) -> Self {
        Self {
            job,
            max_restarts,
            restart_delay: DEFAULT_RESTART_DELAY,
            restart_delay_max: DEFAULT_RESTART_DELAY_MAX,
            child_wait: DEFAULT_CHILD_WAIT,
            resume_session: None,
            default_budget: crate::config::Budget::default(),
            webhook: None,
        }
    }
}

/// How a task's loop ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskEnd {
    /// DONE exists; `last` is the last run of this loop (none if DONE existed before).
    Done {
        /// The last run.
        last: Option<RunInfo>,
    },
    /// A run was stopped by the user (or a stop was requested between runs).
    Stopped {
        /// The stopped run, if the stop hit one.
        last: Option<RunInfo>,
    },
    /// The task's runs (children included) passed its budget: no run is started again.
    BudgetExceeded {
        /// The last run.
        last: Option<RunInfo>,
        /// `budget exceeded: …` with the figures.
        summary: String,
    },
    /// The restart budget ran out without DONE.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last run.
        last: Option<RunInfo>,
    },
}

/// Runs the loop while the caller holds `held`, the task's loop lock (taken with
/// [`TaskLoopLock::acquire`] before any other step of the loop); `on_start` is called as each
/// attempt's run starts.
pub fn run_task(
    req: &TaskRequest,
    held: &TaskLoopLock,
    mut on_start: impl FnMut(&PreparedRun, u32),
) -> Result<TaskEnd, RunnerError> {
    let root = Root::new(&req.job.root);
    let task_dir = root.confined_task_dir(&req.job.project, &req.job.task)?;
    let post = |msg_type: &str, body: String| post_task(req, msg_type, body);
    debug_assert_eq!(held.path().parent(), Some(task_dir.as_path()));
    std::fs::create_dir_all(&task_dir)
        .map_err(|e| RunnerError::io("create directory", &task_dir, e))?;
    let _ = std::fs::remove_file(task_dir.join(STOP_MARKER));
    let attempts = req.max_restarts.saturating_add(1);
    let mut delay = req.restart_delay;
    let mut last: Option<RunInfo> = None;
    let mut attempt: u32 = 0;
    let resuming = req.job.previous_run_id.is_some();
    loop {
        if done(&task_dir)? {
            break;
        }
        if let Some(end) = budget_end(req, &task_dir, &last)? {
            return Ok(end);
        }
        if stop::requested(&task_dir) {
            post("INFO", "task stopped by user; not restarting".to_string());
            return Ok(TaskEnd::Stopped { last });
        }
        if attempt >= attempts {
            post(
                "ERROR",
                format!("task failed: max restarts ({}) exceeded", req.max_restarts),
            );
            return Ok(TaskEnd::GaveUp { attempts, last });
        }
        post("INFO", format!("starting root agent (restart #{attempt})"));
        let mut job = req.job.clone();
        job.prompt = task_prompt(&req.job.prompt, attempt > 0 || resuming);
        job.previous_run_id = last
            .as_ref()
            .map(|r| r.run_id.clone())
            .or_else(|| req.job.previous_run_id.clone());
        job.restart_index = Some(u64::from(attempt));
        if attempt == 0 {
            if let Some(session) = &req.resume_session {
                match resume_argv(job.agent.agent_type, &job.agent.argv, session) {
                    Some(argv) => {
                        job.agent.argv = argv;
                        job.resumes_session = Some(session.clone());
                    }
                    None => tracing::warn!(
                        agent = %job.agent.agent_type,
                        "cannot resume session {session:?} with this agent; starting a new conversation"
                    ),
                }
            }
        }
        let this_attempt = attempt;
        let mut run_dir = None;
        let result = run_job(&job, |run| {
            run_dir = Some(run.run_dir.clone());
            on_start(run, this_attempt)
        });
        match result.and_then(|info| wait_orphan(info, run_dir.as_deref())) {
            Ok(info) => {
                let status = info.status;
                if status == RunStatus::Failed {
                    post(
                        "WARNING",
                        format!(
                            "root agent failed on restart #{attempt}: {}",
                            info.error_summary.as_deref().unwrap_or("failed")
                        ),
                    );
                }
                last = Some(info);
                if let Some(end) = budget_end(req, &task_dir, &last)? {
                    return Ok(end);
                }
                if status == RunStatus::Stopped {
                    post("INFO", "task stopped by user; not restarting".to_string());
                    return Ok(TaskEnd::Stopped { last });
                }
            }
            // A full disk is not retried silently: the loop ends with the error.
            Err(err) if err.is_storage_full() => {
                return Err(RunnerError::NoSpace {
                    source: Box::new(err),
                })
            }
            Err(err) => post(
                "WARNING",
                format!("root agent failed on restart #{attempt}: {err}"),
            ),
        }
        attempt += 1;
        if done(&task_dir)? || attempt >= attempts {
            continue;
        }
        // Sleep in steps so a stop during the delay ends the loop at once.
        let until = Instant::now() + delay;
        while Instant::now() < until && !stop::requested(&task_dir) {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        delay = next_delay(delay, req.restart_delay_max);
    }
    // No run is started from here on: the completion bookkeeping (reading the task's runs
    // and the project bus) yields to request handling, which matters when a server sees
    // hundreds of tasks end together.
    crate::process::lower_thread_priority(COMPLETION_NICE);
    wait_for_children(req, &post)?;
    match post_completion(req, last.as_ref()) {
        Ok(Some(_)) => {}
        Ok(None) => post(
            "INFO",
            "task completion fact already posted for this DONE".to_string(),
        ),
        Err(err) => post(
            "ERROR",
            format!("task completion fact propagation failed: {err}"),
        ),
    }
    Ok(TaskEnd::Done { last })
}

/// The end of the loop when the task's runs passed its budget: reported (once; a run's
/// supervisor usually did already) and posted as the reason the loop does not restart.
fn budget_end(
    req: &TaskRequest,
    task_dir: &Path,
    last: &Option<RunInfo>,
) -> Result<Option<TaskEnd>, RunnerError> {
    let Some(exceeded) = budget::check_task(task_dir, &req.default_budget)? else {
        return Ok(None);
    };
    // The event describes the run that brought the task over; before this loop's first run
    // that is the task's newest run (run ids sort by start time).
    let subject = last.clone().or_else(|| {
        let runs_dir = task_dir.join(crate::storage::paths::RUNS_DIR);
        let newest = crate::storage::scan::run_names(&runs_dir)
            .into_iter()
            .max()?;
        RunInfo::read(
            &runs_dir
                .join(newest)
                .join(crate::storage::paths::RUN_INFO_FILE),
        )
        .ok()
    });
    budget::report(task_dir, &exceeded, subject.as_ref(), req.webhook.as_ref());
    post_task(
        req,
        "ERROR",
        format!("task stopped: {exceeded}; not restarting"),
    );
    Ok(Some(TaskEnd::BudgetExceeded {
        last: last.clone(),
        summary: exceeded.to_string(),
    }))
}

/// A run whose supervisor died while its agent lives is still `running`: wait (reading with
/// liveness reconciliation) until it ends, so two root agents never run at once.
fn wait_orphan(info: RunInfo, run_dir: Option<&Path>) -> Result<RunInfo, RunnerError> {
    let Some(run_dir) = run_dir.filter(|_| info.status == RunStatus::Running) else {
        return Ok(info);
    };
    Ok(wait_until_ended(run_dir, ORPHAN_RECHECK)?)
}

/// Exponential backoff: the delay doubles after each restart, up to `max`.
fn next_delay(delay: Duration, max: Duration) -> Duration {
    delay.saturating_mul(2).min(max)
}

fn done(task_dir: &Path) -> Result<bool, RunnerError> {
    let path = task_dir.join(DONE_FILE);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Err(RunnerError::invalid(
            path.display().to_string(),
            "DONE is a directory; it must be a file",
        )),
        Ok(_) => Ok(true),
        Err(_) => Ok(false),
    }
}

/// A Ralph message on the task bus (`run_id` empty); failures are logged, not fatal.
fn post_task(req: &TaskRequest, msg_type: &str, body: String) {
    let root = Root::new(&req.job.root);
    let msg = NewMessage::new(msg_type, req.job.project.clone())
        .task(req.job.task.clone())
        .body(body);
    let bus_path = root.task_bus(&req.job.project, &req.job.task);
    if let Err(err) = bus::append(&bus_path, &msg, &AppendOptions::default()) {
        tracing::warn!("cannot post {msg_type} to {}: {err}", bus_path.display());
    }
}

/// The runs of the task, oldest first (unreadable records skipped).
fn task_runs(req: &TaskRequest) -> Vec<RunInfo> {
    let runs_dir = Root::new(&req.job.root).runs_dir(&req.job.project, &req.job.task);
    let mut names: Vec<_> = std::fs::read_dir(&runs_dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|dir| read_reconciled(&dir.join(RUN_INFO_FILE)).ok())
        .collect()
}

fn wait_for_children(req: &TaskRequest, post: &dyn Fn(&str, String)) -> Result<(), RunnerError> {
    let active = || -> Vec<String> {
        task_runs(req)
            .into_iter()
            .filter(|r| {
                r.status == RunStatus::Running
                    && r.parent_run_id.as_deref().is_some_and(|p| !p.is_empty())
            })
            .map(|r| r.run_id)
            .collect()
    };
    let children = active();
    if children.is_empty() {
        post(
            "INFO",
            "task completed (DONE marker present, no active children)".to_string(),
        );
        return Ok(());
    }
    post(
        "INFO",
        format!(
            "waiting for {} children to complete: [{}]",
            children.len(),
            children.join(" ")
        ),
    );
    let start = Instant::now();
    loop {
        let children = active();
        if children.is_empty() {
            post("INFO", "task completed (all children finished)".to_string());
            return Ok(());
        }
        if start.elapsed() >= req.child_wait {
            post(
                "WARNING",
                format!(
                    "timeout waiting for children after {:?}: [{}]",
                    req.child_wait,
                    children.join(" ")
                ),
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Posts the completion FACT to the project bus.
/// Posts the completion FACT to the project bus, once per DONE file: a FACT of this task that
/// names the same DONE modification time is not posted again (`Ok(None)`).
fn post_completion(
    req: &TaskRequest,
    last: Option<&RunInfo>,
) -> Result<Option<String>, RunnerError> {
    let root = Root::new(&req.job.root);
    let done_path = root
        .task_dir(&req.job.project, &req.job.task)
        .join(DONE_FILE);
    let done_mtime = std::fs::metadata(&done_path)
        .and_then(|m| m.modified())
        .map(|t| format_rfc3339_nano(&chrono::DateTime::<chrono::Utc>::from(t)))
        .unwrap_or_default();
    let project_bus = root.project_bus(&req.job.project);
    let already = bus::read_tail(&project_bus, COMPLETION_LOOKBACK)
        .unwrap_or_default()
        .iter()
        .any(|m| {
            m.msg_type == "FACT"
                && m.meta.get("kind").map(String::as_str) == Some(COMPLETION_KIND)
                && m.meta.get("source_task_id").map(String::as_str) == Some(req.job.task.as_str())
                && m.meta.get("source_done_mtime") == Some(&done_mtime)
        });
    if already && !done_mtime.is_empty() {
        return Ok(None);
    }
    let runs = task_runs(req);
    let count = |s: RunStatus| runs.iter().filter(|r| r.status == s).count();
    let latest = last.or(runs.last());
    let task_dir = root.task_dir(&req.job.project, &req.job.task);
    let mut body = format!(
        "task {} completed\ntask_dir: {}\nruns: {} (completed {}, failed {}, stopped {}, running {})",
        req.job.task,
        task_dir.display(),
        runs.len(),
        count(RunStatus::Completed),
        count(RunStatus::Failed),
        count(RunStatus::Stopped),
        count(RunStatus::Running),
    );
    let mut msg = NewMessage::new("FACT", req.job.project.clone()).task(req.job.task.clone());
    msg.meta.insert("kind".into(), COMPLETION_KIND.into());
    msg.meta.insert("source_done_mtime".into(), done_mtime);
    msg.meta
        .insert("source_task_id".into(), req.job.task.to_string());
    msg.meta.insert("run_count".into(), runs.len().to_string());
    if let Some(latest) = latest {
        let output = root
            .run_dir(
                &req.job.project,
                &req.job.task,
                &crate::storage::RunId::parse(&latest.run_id)?,
            )
            .join(OUTPUT_FILE);
        body.push_str(&format!(
            "\nlatest_run: {} ({})\noutput: {}",
            latest.run_id,
            latest.status,
            output.display()
        ));
        msg.meta
            .insert("source_latest_run_id".into(), latest.run_id.clone());
        msg.meta
            .insert("source_latest_status".into(), latest.status.to_string());
    }
    msg.body = body;
    Ok(Some(bus::append(
        &project_bus,
        &msg,
        &AppendOptions::default(),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delay_doubles_up_to_the_cap() {
        let max = Duration::from_secs(5);
        let mut delay = Duration::from_secs(1);
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(delay.as_secs());
            delay = next_delay(delay, max);
        }
        assert_eq!(seen, [1, 2, 4, 5, 5]);
        assert_eq!(next_delay(Duration::ZERO, max), Duration::ZERO);
        assert_eq!(next_delay(Duration::MAX, max), max);
    }
}
