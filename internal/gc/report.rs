//! What a gc did (or, with `--dry-run`, would do): the report, its JSON shape (`--json`) and
//! its text rendering (a line per deleted item, then a summary).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::policy::KeepReason;
use crate::storage::RunStatus;
use crate::units::format_bytes;

/// The outcome of one gc.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// The runs root.
    pub root: PathBuf,
    /// Nothing was changed; everything below is what would be done.
    pub dry_run: bool,
    /// `--older-than`, as given in canonical form (e.g. `7d`).
    pub older_than: String,
    /// `--older-than` in seconds.
    pub older_than_secs: u64,
    /// Runs started (else ended) before this instant are old enough (RFC 3339, UTC).
    pub cutoff: String,
    /// Run counts.
    pub runs: RunTotals,
    /// Deleted runs (or runs that would be deleted), sorted by path.
    pub deleted_runs: Vec<DeletedRun>,
    /// Runs kept because their run-info.yaml is missing or corrupt.
    pub problem_runs: Vec<ProblemRun>,
    /// Rotated buses (`--rotate-bus`).
    pub rotated_buses: Vec<RotatedBus>,
    /// Deleted task directories (`--delete-done-tasks`).
    pub deleted_tasks: Vec<DeletedTask>,
    /// `.gc-deleting-*` leftovers of an interrupted gc that were removed.
    pub removed_leftovers: Vec<RemovedLeftover>,
    /// Bytes freed in all (runs, tasks, leftovers).
    pub bytes_freed: u64,
    /// Everything that failed; gc went on past each.
    pub errors: Vec<Failure>,
}

/// Run counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunTotals {
    /// Runs looked at.
    pub scanned: u64,
    /// Runs deleted.
    pub deleted: u64,
    /// Deleted runs by status.
    pub deleted_by_status: StatusCounts,
    /// Runs kept.
    pub kept: u64,
    /// Kept runs by reason.
    pub kept_by_reason: KeptCounts,
    /// Bytes freed by deleting runs.
    pub bytes_freed: u64,
}

/// Counts of deleted runs per status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusCounts {
    /// `completed`
    pub completed: u64,
    /// `failed` (including runs reconciled from a vanished process)
    pub failed: u64,
    /// `stopped`
    pub stopped: u64,
}

impl StatusCounts {
    /// Counts one run of `status` (only terminal statuses are ever deleted).
    pub fn add(&mut self, status: RunStatus) {
        match status {
            RunStatus::Completed => self.completed += 1,
            RunStatus::Failed => self.failed += 1,
            RunStatus::Stopped => self.stopped += 1,
            RunStatus::Running | RunStatus::Unknown => {}
        }
    }
}

/// Counts of kept runs per reason; every reason is always present in the JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeptCounts {
    /// Running with a live process.
    pub running: u64,
    /// Younger than the cutoff.
    pub too_new: u64,
    /// Failed, spared by `--keep-failed`.
    pub keep_failed: u64,
    /// Status missing or not recognised.
    pub unknown_status: u64,
    /// No start or end time.
    pub no_timestamp: u64,
    /// No run-info.yaml.
    pub missing_run_info: u64,
    /// run-info.yaml unreadable or not parseable.
    pub corrupt_run_info: u64,
}

impl KeptCounts {
    /// Counts one kept run.
    pub fn add(&mut self, reason: KeepReason) {
        *self.slot(reason) += 1;
    }

    /// Adds all counts of `other`.
    pub fn merge(&mut self, other: &KeptCounts) {
        for reason in KeepReason::ALL {
            *self.slot(reason) += other.get(reason);
        }
    }

    /// The count for `reason`.
    pub fn get(&self, reason: KeepReason) -> u64 {
        match reason {
            KeepReason::Running => self.running,
            KeepReason::TooNew => self.too_new,
            KeepReason::KeepFailed => self.keep_failed,
            KeepReason::UnknownStatus => self.unknown_status,
            KeepReason::NoTimestamp => self.no_timestamp,
            KeepReason::MissingRunInfo => self.missing_run_info,
            KeepReason::CorruptRunInfo => self.corrupt_run_info,
        }
    }

    /// The total over all reasons.
    pub fn total(&self) -> u64 {
        KeepReason::ALL.iter().map(|r| self.get(*r)).sum()
    }

    fn slot(&mut self, reason: KeepReason) -> &mut u64 {
        match reason {
            KeepReason::Running => &mut self.running,
            KeepReason::TooNew => &mut self.too_new,
            KeepReason::KeepFailed => &mut self.keep_failed,
            KeepReason::UnknownStatus => &mut self.unknown_status,
            KeepReason::NoTimestamp => &mut self.no_timestamp,
            KeepReason::MissingRunInfo => &mut self.missing_run_info,
            KeepReason::CorruptRunInfo => &mut self.corrupt_run_info,
        }
    }
}

/// A deleted run.
#[derive(Debug, Clone, Serialize)]
pub struct DeletedRun {
    /// Project id.
    pub project: String,
    /// Task id.
    pub task: String,
    /// Run id (the directory name).
    pub run_id: String,
    /// Its status when judged (after liveness reconciliation).
    pub status: RunStatus,
    /// The run directory.
    pub path: PathBuf,
    /// Bytes of its files.
    pub bytes: u64,
}

/// A run kept because its run-info.yaml is missing or corrupt.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemRun {
    /// The run directory.
    pub path: PathBuf,
    /// `missing_run_info` or `corrupt_run_info`.
    pub reason: KeepReason,
    /// What is wrong.
    pub detail: String,
}

/// A rotated bus file.
#[derive(Debug, Clone, Serialize)]
pub struct RotatedBus {
    /// The bus file.
    pub path: PathBuf,
    /// Its new name.
    pub archive: PathBuf,
    /// Its size when rotated.
    pub bytes: u64,
}

/// A deleted task directory.
#[derive(Debug, Clone, Serialize)]
pub struct DeletedTask {
    /// Project id.
    pub project: String,
    /// Task id.
    pub task: String,
    /// The task directory.
    pub path: PathBuf,
    /// Bytes of its files.
    pub bytes: u64,
}

/// A removed `.gc-deleting-*` leftover.
#[derive(Debug, Clone, Serialize)]
pub struct RemovedLeftover {
    /// The leftover directory.
    pub path: PathBuf,
    /// Bytes of its files.
    pub bytes: u64,
}

/// One failure.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The item concerned.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    /// A failure on `path`.
    pub fn new(path: &Path, message: impl ToString) -> Self {
        Failure {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

impl GcReport {
    /// Whether anything failed (the exit code is then non-zero).
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
    }

    fn rel<'a>(&self, path: &'a Path) -> std::borrow::Cow<'a, str> {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
    }

    /// Writes one `error: <path>: <message>` line a failure to `err`.
    pub fn render_errors(&self, err: &mut dyn Write) -> std::io::Result<()> {
        for failure in &self.errors {
            writeln!(
                err,
                "error: {}: {}",
                failure.path.display(),
                failure.message
            )?;
        }
        Ok(())
    }

    /// Writes the per-item lines and the summary to `out`; warnings (problem runs) and errors
    /// to `err`. With `quiet`, only errors are written.
    pub fn render_text(
        &self,
        out: &mut dyn Write,
        err: &mut dyn Write,
        quiet: bool,
    ) -> std::io::Result<()> {
        self.render_errors(err)?;
        if quiet {
            return Ok(());
        }
        for problem in &self.problem_runs {
            writeln!(
                err,
                "warning: kept run {}: {}",
                self.rel(&problem.path),
                problem.detail
            )?;
        }
        let (verb, would) = if self.dry_run {
            ("[dry-run] would delete", "Would delete")
        } else {
            ("deleted", "Deleted")
        };
        for leftover in &self.removed_leftovers {
            writeln!(
                out,
                "{verb} leftover {} ({})",
                self.rel(&leftover.path),
                format_bytes(leftover.bytes)
            )?;
        }
        for run in &self.deleted_runs {
            writeln!(
                out,
                "{verb} run {} ({}, {})",
                self.rel(&run.path),
                run.status,
                format_bytes(run.bytes)
            )?;
        }
        for task in &self.deleted_tasks {
            writeln!(
                out,
                "{verb} task {} ({})",
                self.rel(&task.path),
                format_bytes(task.bytes)
            )?;
        }
        let rotate_verb = if self.dry_run {
            "[dry-run] would rotate"
        } else {
            "rotated"
        };
        for bus in &self.rotated_buses {
            writeln!(
                out,
                "{rotate_verb} bus {} -> {} ({})",
                self.rel(&bus.path),
                self.rel(&bus.archive),
                format_bytes(bus.bytes)
            )?;
        }
        self.render_summary(out, would)
    }

    fn render_summary(&self, out: &mut dyn Write, would: &str) -> std::io::Result<()> {
        let runs = &self.runs;
        let s = &runs.deleted_by_status;
        writeln!(
            out,
            "{would} {} runs older than {} (completed {}, failed {}, stopped {}), freeing {}",
            runs.deleted,
            self.older_than,
            s.completed,
            s.failed,
            s.stopped,
            format_bytes(runs.bytes_freed)
        )?;
        let reasons: Vec<String> = KeepReason::ALL
            .iter()
            .filter(|r| runs.kept_by_reason.get(**r) > 0)
            .map(|r| format!("{} {}", r.label(), runs.kept_by_reason.get(*r)))
            .collect();
        if reasons.is_empty() {
            writeln!(out, "Kept {} runs", runs.kept)?;
        } else {
            writeln!(out, "Kept {} runs: {}", runs.kept, reasons.join(", "))?;
        }
        let rotated = if self.dry_run {
            "would rotate"
        } else {
            "rotated"
        };
        let deleted = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        writeln!(
            out,
            "Buses {rotated}: {}; done tasks {deleted}: {}; leftovers {deleted}: {}; total {}: {}; errors: {}",
            self.rotated_buses.len(),
            self.deleted_tasks.len(),
            self.removed_leftovers.len(),
            if self.dry_run { "would free" } else { "freed" },
            format_bytes(self.bytes_freed),
            self.errors.len()
        )?;
        writeln!(
            out,
            "Root: {} (cutoff {})",
            self.root.display(),
            self.cutoff
        )
    }
}
