//! Judging and deleting the runs of one `runs/` directory (a chunk of it, on one worker).
//!
//! Each run is judged from its own run-info.yaml at the moment it is looked at, and a victim
//! is renamed aside at once, then removed with its run-info.yaml first (see
//! [`super::remove::remove_run_dir`]).

use std::path::{Path, PathBuf};

use super::error::GcError;
use super::policy::{KeepReason, Policy, Verdict};
use super::remove::{dir_size, move_aside, remove_run_dir, tree_size};
use super::report::{DeletedRun, Failure, KeptCounts, ProblemRun};
use crate::storage::liveness::{mark_vanished, read_reconciled};
use crate::storage::paths::{RUN_INFO_FILE, RUN_INFO_LOCK_FILE};
use crate::storage::run_info::RecordReadError;
use crate::storage::{RunInfo, RunStatus};

/// Settings shared by all workers.
#[derive(Debug, Clone, Copy)]
pub struct RunPass {
    /// The retention rule.
    pub policy: Policy,
    /// Judge only; change nothing (not even stale `running` records).
    pub dry_run: bool,
}

/// What a chunk did.
#[derive(Debug, Default)]
pub struct ChunkOutcome {
    /// Runs looked at.
    pub scanned: u64,
    /// Runs deleted (or that would be).
    pub deleted: Vec<DeletedRun>,
    /// Kept runs by reason.
    pub kept: KeptCounts,
    /// Kept runs with a missing or corrupt run-info.yaml.
    pub problems: Vec<ProblemRun>,
    /// Failures.
    pub errors: Vec<Failure>,
}

/// A run's record after liveness (the record gc decides on), or why it is kept without a
/// decision (missing or corrupt run-info.yaml) and what is wrong.
type Judged = Result<RunInfo, (KeepReason, String)>;

impl RunPass {
    /// Processes the runs `names` of the `runs/` directory `runs_dir` of `project`/`task`.
    pub fn process(
        &self,
        project: &str,
        task: &str,
        runs_dir: &Path,
        names: &[String],
    ) -> ChunkOutcome {
        let mut out = ChunkOutcome::default();
        let mut pending: Vec<(PathBuf, DeletedRun)> = Vec::new();
        for name in names {
            out.scanned += 1;
            let dir = runs_dir.join(name);
            let info = match self.judge_liveness(&dir, &mut out.errors) {
                Ok(info) => info,
                Err((reason, detail)) => {
                    out.kept.add(reason);
                    out.problems.push(ProblemRun {
                        path: dir,
                        reason,
                        detail,
                    });
                    continue;
                }
            };
            let verdict =
                self.policy
                    .judge(info.status, info.start_time_opt(), info.end_time_opt());
            if let Verdict::Keep(reason) = verdict {
                out.kept.add(reason);
                continue;
            }
            let record = DeletedRun {
                project: project.to_string(),
                task: task.to_string(),
                run_id: name.clone(),
                status: info.status,
                path: dir.clone(),
                bytes: 0,
            };
            if self.dry_run {
                out.deleted.push(DeletedRun {
                    // A listed run directory: sized without a second stat of it.
                    bytes: dir_size(&dir),
                    ..record
                });
                continue;
            }
            match move_aside(&dir) {
                Ok(aside) => pending.push((aside, record)),
                Err(e) => out.errors.push(Failure::new(&dir, e)),
            }
        }
        for (aside, record) in pending {
            let bytes = tree_size(&aside);
            match remove_run_dir(&aside) {
                Ok(()) => out.deleted.push(DeletedRun { bytes, ..record }),
                Err(e) => out.errors.push(Failure::new(&record.path, e)),
            }
        }
        out
    }

    /// Reads the run's record and applies liveness: a `running` record whose process is gone
    /// is reconciled to failed (rewritten on disk), or in a dry run only judged so in memory.
    fn judge_liveness(&self, dir: &Path, errors: &mut Vec<Failure>) -> Judged {
        let path = dir.join(RUN_INFO_FILE);
        let info = read_record(&path)?;
        if info.status != RunStatus::Running || info.recorded_process().alive() {
            return Ok(info);
        }
        if self.dry_run {
            let mut simulated = info;
            mark_vanished(&mut simulated);
            return Ok(simulated);
        }
        match reconcile(dir, &path) {
            Ok(info) => Ok(info),
            Err(e) => {
                errors.push(Failure::new(dir, e));
                Ok(info)
            }
        }
    }
}

/// Reads a run-info.yaml that must be a regular file ([`RunInfo::read_regular`]: one open,
/// one fstat and one read, as at 100k runs every saved system call counts); what stands in
/// its way is why the run is kept.
fn read_record(path: &Path) -> Judged {
    RunInfo::read_regular(path).map_err(|err| {
        let reason = match err {
            RecordReadError::Missing => KeepReason::MissingRunInfo,
            RecordReadError::NotRegular | RecordReadError::Storage(_) => KeepReason::CorruptRunInfo,
        };
        (reason, err.to_string())
    })
}

/// Rewrites a stale `running` record through the storage layer, after making sure its lock
/// file is not a symlink (taking the lock creates the file, which must stay inside the run).
fn reconcile(dir: &Path, path: &Path) -> Result<RunInfo, GcError> {
    let lock = dir.join(RUN_INFO_LOCK_FILE);
    if let Ok(meta) = std::fs::symlink_metadata(&lock) {
        if !meta.is_file() {
            return Err(GcError::Refused {
                op: "reconcile the stale running record in",
                path: dir.to_path_buf(),
                reason: "run-info.yaml.lock is not a regular file",
            });
        }
    }
    Ok(read_reconciled(path)?)
}
