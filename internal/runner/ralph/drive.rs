//! The one entry point of a task loop, for `run-agent task`, `run-agent task resume` and the
//! server alike: the task's dependencies (`depends_on` of TASK-CONFIG.yaml), a root-task slot
//! (`defaults.max_concurrent_root_tasks`), then the Ralph loop ([`run_task`]). Callers only
//! build a [`LoopRequest`] and watch the loop through a [`LoopObserver`].

use std::time::Duration;

use crate::storage::ids::TaskId;
use crate::storage::Root;

use super::{post_task, run_task, TaskEnd, TaskRequest};
use crate::runner::budget;
use crate::runner::deps::{self, DepsWait};
use crate::runner::error::RunnerError;
use crate::runner::job::PreparedRun;
use crate::runner::loop_lock::TaskLoopLock;
use crate::runner::slots::{self, TaskSlot};
use crate::runner::stop::{self, STOP_MARKER};

/// Delay before a loop's first restart (doubled after each restart).
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(1);
/// Cap of the restart delay.
pub const DEFAULT_RESTART_DELAY_MAX: Duration = Duration::from_secs(60);
/// How long a loop waits for the task's running child runs once DONE exists.
pub const DEFAULT_CHILD_WAIT: Duration = Duration::from_secs(300);
/// How often a blocked loop checks its dependencies.
pub const DEFAULT_DEPENDENCY_POLL: Duration = Duration::from_secs(2);

/// Why a loop waits before its first run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// These dependencies are not DONE yet.
    Blocked(Vec<TaskId>),
    /// Every root-task slot (`defaults.max_concurrent_root_tasks`) is taken.
    Queued,
}

impl Waiting {
    /// `blocked` or `queued`: the task status a listing shows meanwhile.
    pub fn as_str(&self) -> &'static str {
        match self {
            Waiting::Blocked(_) => "blocked",
            Waiting::Queued => "queued",
        }
    }
}

/// Everything a task loop needs.
#[derive(Debug, Clone)]
pub struct LoopRequest {
    /// The Ralph loop itself.
    pub task: TaskRequest,
    /// `Some`: the task's new `depends_on` (checked and saved in TASK-CONFIG.yaml; empty
    /// clears it); `None`: the saved list.
    pub depends_on: Option<Vec<TaskId>>,
    /// How the caller names `depends_on` in errors (`--depends-on`, `depends_on`).
    pub depends_on_field: &'static str,
    /// How often a blocked loop checks its dependencies.
    pub dependency_poll: Duration,
    /// `defaults.max_concurrent_root_tasks` (0 = no limit).
    pub task_slots: u32,
    /// New budget figures of the task (`--max-cost`/`--max-tokens`, the API's fields), saved in
    /// TASK-CONFIG.yaml over the saved ones; unset figures keep what is saved.
    pub budget: crate::config::Budget,
}

impl LoopRequest {
    /// A loop of `task` with the saved dependencies, the default poll and no slot limit.
    pub fn new(task: TaskRequest) -> Self {
        Self {
            task,
            depends_on: None,
            depends_on_field: "--depends-on",
            dependency_poll: DEFAULT_DEPENDENCY_POLL,
            task_slots: 0,
            budget: crate::config::Budget::default(),
        }
    }
}

/// What a caller learns while its loop runs (every method defaults to nothing).
pub trait LoopObserver {
    /// A notice the loop also posts to the task bus (blocked, queued, dependencies met).
    fn notice(&self, _text: &str) {}
    /// The loop waits before its first run.
    fn waiting(&self, _why: &Waiting) {}
    /// A run of the loop started; `attempt` 0 is the loop's first.
    fn run_started(&self, _run: &PreparedRun, _attempt: u32) {}
}

/// Runs the task loop of `req` to its end while the caller holds `lock`, the task's loop lock.
/// A stop requested while the loop waits (for dependencies or a slot) ends it as
/// [`TaskEnd::Stopped`] without a run.
pub fn drive(
    req: &LoopRequest,
    lock: &TaskLoopLock,
    observer: &dyn LoopObserver,
) -> Result<TaskEnd, RunnerError> {
    let job = &req.task.job;
    let root = Root::new(&job.root);
    let task_dir = root.confined_task_dir(&job.project, &job.task)?;
    std::fs::create_dir_all(&task_dir)
        .map_err(|e| RunnerError::io("create directory", &task_dir, e))?;
    let depends_on = match &req.depends_on {
        Some(list) => {
            deps::check(&root, &job.project, &job.task, list, req.depends_on_field)?;
            deps::write(&task_dir, list)?;
            list.clone()
        }
        None => deps::read(&task_dir)?,
    };
    budget::validate(&req.budget, "budget")?;
    budget::write(&task_dir, &req.budget)?;
    // A new loop checks the budget afresh (a resume may have raised it).
    budget::unmark(&task_dir);
    // An old stop mark must not end the new loop while it waits (run_task clears it too).
    let _ = std::fs::remove_file(task_dir.join(STOP_MARKER));
    let post = |msg_type: &str, body: String| {
        observer.notice(&body);
        post_task(&req.task, msg_type, body);
    };
    let keep_waiting = || !stop::requested(&task_dir);
    if !depends_on.is_empty() {
        let blocked_post = |msg_type: &str, body: String| {
            let blocked: Vec<TaskId> = depends_on
                .iter()
                .filter(|d| !deps::is_done(&root, &job.project, d))
                .cloned()
                .collect();
            if !blocked.is_empty() {
                observer.waiting(&Waiting::Blocked(blocked));
            }
            post(msg_type, body);
        };
        let waited = deps::wait(
            &root,
            &job.project,
            &job.task,
            &depends_on,
            req.dependency_poll,
            &blocked_post,
            keep_waiting,
        );
        if waited == DepsWait::Cancelled {
            return Ok(TaskEnd::Stopped { last: None });
        }
    }
    let limit = req.task_slots;
    let slot = slots::acquire_task_slot(&job.root, &task_dir, limit, || {
        observer.waiting(&Waiting::Queued);
        post(
            "INFO",
            format!(
                "task queued: waiting for a free task slot (max_concurrent_root_tasks = {limit})"
            ),
        );
    })?;
    let _slot = match slot {
        TaskSlot::Go(slot) => slot,
        TaskSlot::Stopped => return Ok(TaskEnd::Stopped { last: None }),
    };
    run_task(&req.task, lock, |run, attempt| {
        observer.run_started(run, attempt);
    })
}
