//! Reading tasks for the local inspection commands (`list`, `status`, `output`, `watch`): a
//! task's runs (liveness-reconciled), its derived status, its dependencies, finding a run by
//! id anywhere under a root, and the runs of the read-only `storage.extra_roots`.

use std::path::{Path, PathBuf};

use crate::storage::liveness::{mark_vanished, supervisor_active};
use crate::storage::paths::DONE_FILE;
use crate::storage::scan::{self, Reconcile, RunEntry, TaskEntry};
use crate::storage::{ProjectId, RunStatus, TaskId};

use super::{deps, loop_lock, supervisor_lock};

/// The derived status of a task (never stored; computed from DONE, runs and dependencies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// A run of the task is running, or its task loop is (e.g. waiting to restart).
    Running,
    /// The task's DONE file exists.
    Done,
    /// The latest run failed.
    Failed,
    /// The latest run was stopped by a user.
    Stopped,
    /// The latest run completed but the task is not DONE (a loop may restart it).
    Idle,
    /// No runs yet and some dependency is not DONE.
    Blocked,
    /// No runs yet.
    Queued,
    /// The latest run's run-info.yaml is missing or broken.
    Unknown,
}

impl TaskStatus {
    /// Every status, for messages and `--status` validation.
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Running,
        TaskStatus::Done,
        TaskStatus::Failed,
        TaskStatus::Stopped,
        TaskStatus::Idle,
        TaskStatus::Blocked,
        TaskStatus::Queued,
        TaskStatus::Unknown,
    ];

    /// The status as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Running => "running",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Stopped => "stopped",
            TaskStatus::Idle => "idle",
            TaskStatus::Blocked => "blocked",
            TaskStatus::Queued => "queued",
            TaskStatus::Unknown => "unknown",
        }
    }

    /// Parses a printed status.
    pub fn parse(text: &str) -> Option<TaskStatus> {
        TaskStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Derives a task's status: any running run → running; else DONE → done; else a task loop
/// that holds the task (`loop_active`, [`loop_lock::active`](super::loop_lock::active)) after
/// a run → running (its restart gap is not an end); else from the latest run (sorted by run
/// id); with no runs, blocked when a dependency is not DONE, else queued (a loop waiting for
/// its dependencies or a task slot).
pub fn derive_status(
    done: bool,
    runs: &[RunStatus],
    blocked: bool,
    loop_active: bool,
) -> TaskStatus {
    if runs.contains(&RunStatus::Running) {
        return TaskStatus::Running;
    }
    if done {
        return TaskStatus::Done;
    }
    if loop_active && !runs.is_empty() {
        return TaskStatus::Running;
    }
    match runs.last() {
        None if blocked => TaskStatus::Blocked,
        None => TaskStatus::Queued,
        Some(RunStatus::Running) => TaskStatus::Running,
        Some(RunStatus::Completed) => TaskStatus::Idle,
        Some(RunStatus::Failed) => TaskStatus::Failed,
        Some(RunStatus::Stopped) => TaskStatus::Stopped,
        Some(RunStatus::Unknown) => TaskStatus::Unknown,
    }
}

/// Whether the task loop of `task_dir` is active, probed only when [`derive_status`] needs
/// it (a task with runs that is neither DONE nor running); `false` otherwise.
pub fn loop_active_if_it_matters(done: bool, runs: &[RunStatus], task_dir: &Path) -> bool {
    !done && !runs.is_empty() && !runs.contains(&RunStatus::Running) && loop_lock::active(task_dir)
}

/// A task's `depends_on` (TASK-CONFIG.yaml) and which of them are not DONE yet.
#[derive(Debug, Clone, Default)]
pub struct Dependencies {
    /// `depends_on` of TASK-CONFIG.yaml.
    pub depends_on: Vec<TaskId>,
    /// The dependencies without a DONE file.
    pub blocked_by: Vec<TaskId>,
    /// Why TASK-CONFIG.yaml could not be read, if it could not.
    pub error: Option<String>,
}

impl Dependencies {
    /// Reads the dependencies of the task in `task_dir` and checks their DONE files.
    pub fn read(task_dir: &Path) -> Dependencies {
        let (depends_on, error) = match deps::read(task_dir) {
            Ok(list) => (list, None),
            Err(err) => (Vec::new(), Some(err.to_string())),
        };
        let project_dir = task_dir.parent().unwrap_or(Path::new(""));
        let blocked_by = depends_on
            .iter()
            .filter(|dep| !project_dir.join(dep.as_str()).join(DONE_FILE).is_file())
            .cloned()
            .collect();
        Dependencies {
            depends_on,
            blocked_by,
            error,
        }
    }

    /// Whether some dependency is not DONE.
    pub fn is_blocked(&self) -> bool {
        !self.blocked_by.is_empty()
    }
}

/// A task with its runs and dependencies, as the inspection commands show it.
#[derive(Debug, Clone)]
pub struct TaskView {
    /// The task directory entry.
    pub task: TaskEntry,
    /// Its runs, sorted by run id (oldest first), reconciled: all of them, or only the newest
    /// for a listing ([`TaskView::read_newest`]).
    pub runs: Vec<RunEntry>,
    /// How many runs the task has (all of them, also when `runs` holds only the newest).
    pub run_count: usize,
    /// `depends_on` of TASK-CONFIG.yaml.
    pub depends_on: Vec<TaskId>,
    /// The dependencies without a DONE file.
    pub blocked_by: Vec<TaskId>,
    /// Why TASK-CONFIG.yaml could not be read, if it could not.
    pub deps_error: Option<String>,
    /// The derived status.
    pub status: TaskStatus,
}

impl TaskView {
    /// Reads a task: every run (reconciling dead `running` records), dependencies, status.
    pub fn read(task: TaskEntry) -> TaskView {
        let runs = list_runs(&task.dir);
        let count = runs.len();
        Self::with(task, runs, count)
    }

    /// Reads a task for a listing: only its newest run directory (run ids sort by start
    /// time) and the runs marked live (an older run still running behind a newer finished
    /// one, see [`crate::storage::live_marker`]), plus the number of run directories, its DONE
    /// file, dependencies and loop lock — all from one read of `runs/`. A marker whose run has
    /// ended (its supervisor died) or is gone is removed.
    pub fn read_newest(task: TaskEntry) -> TaskView {
        use crate::storage::live_marker;
        let runs_dir = task.dir.join(crate::storage::paths::RUNS_DIR);
        let listing = scan::run_listing(&runs_dir);
        let count = listing.runs.len();
        let newest = listing.runs.iter().max();
        let mut ids: std::collections::BTreeSet<&String> = newest.into_iter().collect();
        for id in &listing.live {
            if listing.runs.contains(id) {
                ids.insert(id);
            } else {
                live_marker::unmark(&runs_dir.join(id));
            }
        }
        let runs: Vec<RunEntry> = ids
            .into_iter()
            .map(|id| {
                let run = read_run(runs_dir.join(id));
                if Some(id) != newest && run.status() != RunStatus::Running {
                    live_marker::unmark(&run.dir);
                }
                run
            })
            .collect();
        Self::with(task, runs, count)
    }

    fn with(task: TaskEntry, runs: Vec<RunEntry>, run_count: usize) -> TaskView {
        let deps = Dependencies::read(&task.dir);
        let statuses: Vec<RunStatus> = runs.iter().map(RunEntry::status).collect();
        let status = derive_status(
            task.done,
            &statuses,
            deps.is_blocked(),
            loop_active_if_it_matters(task.done, &statuses, &task.dir),
        );
        TaskView {
            task,
            runs,
            run_count,
            depends_on: deps.depends_on,
            blocked_by: deps.blocked_by,
            deps_error: deps.error,
            status,
        }
    }

    /// The latest run (by run id), if any.
    pub fn latest(&self) -> Option<&RunEntry> {
        self.runs.last()
    }

    /// Adds runs found outside the task directory (extra roots), keeps the runs sorted by run
    /// id and derives the status again.
    pub fn with_runs(mut self, more: impl IntoIterator<Item = RunEntry>) -> TaskView {
        let before = self.runs.len();
        self.runs.extend(more);
        if self.runs.len() == before {
            return self;
        }
        self.run_count += self.runs.len() - before;
        self.runs.sort_by_key(RunEntry::run_id);
        let statuses: Vec<RunStatus> = self.runs.iter().map(RunEntry::status).collect();
        self.status = derive_status(
            self.task.done,
            &statuses,
            !self.blocked_by.is_empty(),
            loop_active_if_it_matters(self.task.done, &statuses, &self.task.dir),
        );
        self
    }
}

/// A run of an extra root, with the project and task its run-info.yaml names.
#[derive(Debug, Clone)]
pub struct ExtraRun {
    /// `project_id` of the record.
    pub project: ProjectId,
    /// `task_id` of the record.
    pub task: TaskId,
    /// The run.
    pub entry: RunEntry,
}

/// The runs of the flat extra roots (`<extra>/runs/<run>/run-info.yaml`, scanned as the
/// server's index scans them). Extra roots are read-only: a `running` record whose process
/// and supervisor are gone is shown `failed` but never rewritten. A record that does not
/// parse or names no valid project and task cannot be placed and is skipped.
pub fn extra_runs(extra_roots: &[PathBuf]) -> Vec<ExtraRun> {
    scan::scan_flat_roots(extra_roots, Reconcile::No)
        .into_iter()
        .filter_map(|entry| {
            let entry = settle_read_only(entry);
            let info = entry.info.as_ref().ok()?;
            Some(ExtraRun {
                project: ProjectId::parse(&info.project_id).ok()?,
                task: TaskId::parse(&info.task_id).ok()?,
                entry,
            })
        })
        .collect()
}

/// Reads one run dir of an extra root without ever writing it: a `running` record whose
/// process and supervisor are gone is shown `failed` (in memory only).
pub fn read_run_read_only(dir: PathBuf) -> RunEntry {
    settle_read_only(scan::read_entry(dir, Reconcile::No))
}

fn settle_read_only(mut entry: RunEntry) -> RunEntry {
    if let Ok(info) = entry.info.as_mut() {
        if info.status == RunStatus::Running
            && !info.recorded_process().alive()
            && !supervisor_active(&entry.dir)
        {
            mark_vanished(info);
        }
    }
    entry
}

/// Reads one run dir. A `running` record whose process is gone is reconciled to `failed`
/// (and rewritten) unless the run's supervisor is still alive: then the agent has just
/// exited and the supervisor is about to record the real result, so it stays `running`.
pub fn read_run(dir: PathBuf) -> RunEntry {
    let entry = scan::read_entry(dir, Reconcile::No);
    match &entry.info {
        Ok(info)
            if info.status == RunStatus::Running
                && !info.recorded_process().alive()
                && !supervisor_lock::active(&entry.dir) =>
        {
            scan::read_entry(entry.dir, Reconcile::Yes)
        }
        _ => entry,
    }
}

/// The runs of a task dir, sorted by run id, each read by [`read_run`].
pub fn list_runs(task_dir: &Path) -> Vec<RunEntry> {
    scan::list_runs(task_dir, Reconcile::No)
        .into_iter()
        .map(|entry| read_run(entry.dir))
        .collect()
}

/// Finds the run directory named `run_id` anywhere under `root` (both layouts).
pub fn find_run(root: &Path, run_id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for project in scan::list_projects(root) {
        for task in scan::list_tasks(&project) {
            let dir = task.dir.join(crate::storage::paths::RUNS_DIR).join(run_id);
            if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                out.push(dir);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_statuses() {
        use RunStatus::*;
        assert_eq!(derive_status(false, &[], false, false), TaskStatus::Queued);
        assert_eq!(derive_status(false, &[], true, false), TaskStatus::Blocked);
        assert_eq!(derive_status(true, &[], true, false), TaskStatus::Done);
        assert_eq!(
            derive_status(true, &[Running, Completed], false, false),
            TaskStatus::Running
        );
        assert_eq!(
            derive_status(false, &[Completed, Failed], false, false),
            TaskStatus::Failed
        );
        assert_eq!(
            derive_status(false, &[Failed, Completed], false, false),
            TaskStatus::Idle
        );
        assert_eq!(
            derive_status(false, &[Stopped], false, false),
            TaskStatus::Stopped
        );
        assert_eq!(
            derive_status(false, &[Unknown], false, false),
            TaskStatus::Unknown
        );
        // A task loop between two runs (restart delay) keeps the task running; a loop that
        // has not started a run yet leaves it queued or blocked; DONE wins once no run runs.
        assert_eq!(
            derive_status(false, &[Failed], false, true),
            TaskStatus::Running
        );
        assert_eq!(
            derive_status(false, &[Completed], false, true),
            TaskStatus::Running
        );
        assert_eq!(derive_status(false, &[], false, true), TaskStatus::Queued);
        assert_eq!(derive_status(false, &[], true, true), TaskStatus::Blocked);
        assert_eq!(
            derive_status(true, &[Completed], false, true),
            TaskStatus::Done
        );
        assert_eq!(TaskStatus::parse("DONE"), Some(TaskStatus::Done));
        assert_eq!(TaskStatus::parse("nope"), None);
    }
}
