//! One gc pass over a root: leftovers, then runs (in parallel), then done tasks, then buses.
//! Tasks come after runs so a task whose last runs were just deleted can go in the same pass;
//! buses come last because renaming a task bus touches the task dir's mtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};

use super::error::GcError;
use super::parallel::{default_threads, par_map};
use super::policy::Policy;
use super::remove::{owned_by_live_gc, remove_tree, tree_size};
use super::report::{Failure, GcReport, RemovedLeftover};
use super::rotate::{rotate_bus, BUS_LOCK_TIMEOUT};
use super::runs::{ChunkOutcome, RunPass};
use super::tasks::prune_task;
use super::walk::{walk, RunsDir, TaskDir};
use crate::storage::paths::{PROJECT_BUS_FILE, TASK_BUS_FILE};
use crate::storage::ProjectId;
use crate::units::format_age;

/// Runs judged per unit of parallel work.
const CHUNK: usize = 256;

/// What gc should do.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// The runs root.
    pub root: PathBuf,
    /// Minimum age of a run (and of a done task dir) to be deleted.
    pub older_than: Duration,
    /// "Now"; the cutoff is `now - older_than`.
    pub now: DateTime<Utc>,
    /// Limit to one project.
    pub project: Option<ProjectId>,
    /// Report only; change nothing.
    pub dry_run: bool,
    /// Spare failed runs.
    pub keep_failed: bool,
    /// Rotate buses larger than this many bytes (`None`: no rotation).
    pub rotate_bus_over: Option<u64>,
    /// Delete done tasks with no runs.
    pub delete_done_tasks: bool,
    /// Worker threads (0: the machine's parallelism, at most 8).
    pub threads: usize,
}

/// Runs gc. `Err` only when the root (or `--project`) is unusable; every other failure is in
/// the report's `errors`.
pub fn gc(opts: &GcOptions) -> Result<GcReport, GcError> {
    let threads = if opts.threads == 0 {
        default_threads()
    } else {
        opts.threads
    };
    let older_than = chrono::Duration::from_std(opts.older_than).unwrap_or(chrono::Duration::MAX);
    let cutoff = opts
        .now
        .checked_sub_signed(older_than)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut report = GcReport {
        root: opts.root.clone(),
        dry_run: opts.dry_run,
        older_than: format_age(opts.older_than),
        older_than_secs: opts.older_than.as_secs(),
        cutoff: cutoff.to_rfc3339_opts(SecondsFormat::Secs, true),
        ..GcReport::default()
    };
    let tree = walk(&opts.root, opts.project.as_ref(), threads)?;
    report.errors.extend(tree.errors.iter().cloned());

    // 1. Leftovers of an interrupted gc.
    let leftovers: Vec<&PathBuf> = tree
        .projects
        .iter()
        .flat_map(|p| p.leftovers.iter())
        .chain(tree.tasks.iter().flat_map(|t| match &t.runs {
            RunsDir::Dir { leftovers, .. } => leftovers.iter(),
            _ => [].iter(),
        }))
        .collect();
    let mut unremoved_leftovers: HashMap<PathBuf, usize> = HashMap::new();
    for path in leftovers {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if owned_by_live_gc(&name) {
            *unremoved_leftovers.entry(parent).or_default() += 1;
            continue;
        }
        let bytes = tree_size(path);
        let removed = if opts.dry_run {
            Ok(())
        } else {
            remove_tree(path)
        };
        match removed {
            Ok(()) => report.removed_leftovers.push(RemovedLeftover {
                path: path.clone(),
                bytes,
            }),
            Err(e) => {
                report.errors.push(Failure::new(path, e));
                *unremoved_leftovers.entry(parent).or_default() += 1;
            }
        }
    }

    // 2. Runs, in chunks on worker threads.
    let pass = RunPass {
        policy: Policy {
            cutoff,
            keep_failed: opts.keep_failed,
        },
        dry_run: opts.dry_run,
    };
    let chunks: Vec<(usize, &Path, &[String])> = tree
        .tasks
        .iter()
        .enumerate()
        .flat_map(|(i, task)| match &task.runs {
            RunsDir::Dir { path, runs, .. } => runs
                .chunks(CHUNK)
                .map(|names| (i, path.as_path(), names))
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    let outcomes: Vec<(usize, ChunkOutcome)> = par_map(&chunks, threads, |(i, runs_dir, names)| {
        let task = &tree.tasks[*i];
        (
            *i,
            pass.process(task.project.as_str(), task.id.as_str(), runs_dir, names),
        )
    });
    let mut deleted_per_task = vec![0usize; tree.tasks.len()];
    for (i, outcome) in outcomes {
        deleted_per_task[i] += outcome.deleted.len();
        let totals = &mut report.runs;
        totals.scanned += outcome.scanned;
        totals.kept_by_reason.merge(&outcome.kept);
        for run in &outcome.deleted {
            totals.deleted_by_status.add(run.status);
            totals.bytes_freed += run.bytes;
        }
        report.deleted_runs.extend(outcome.deleted);
        report.problem_runs.extend(outcome.problems);
        report.errors.extend(outcome.errors);
    }
    report.runs.deleted = report.deleted_runs.len() as u64;
    report.runs.kept = report.runs.kept_by_reason.total();

    // 3. Done tasks.
    let mut gone_tasks = vec![false; tree.tasks.len()];
    if opts.delete_done_tasks {
        let cutoff_sys = system_time(cutoff);
        for (i, task) in tree.tasks.iter().enumerate() {
            if !task.done {
                continue;
            }
            let expected = remaining_entries(task, deleted_per_task[i], &unremoved_leftovers);
            match prune_task(task, cutoff_sys, opts.dry_run, expected) {
                Ok(Some(deleted)) => {
                    gone_tasks[i] = true;
                    report.deleted_tasks.push(deleted);
                }
                Ok(None) => {}
                Err(e) => report.errors.push(Failure::new(&task.dir, e)),
            }
        }
    }

    // 4. Buses.
    if let Some(max) = opts.rotate_bus_over {
        let project_buses = tree.projects.iter().map(|p| p.dir.join(PROJECT_BUS_FILE));
        let task_buses = tree
            .tasks
            .iter()
            .zip(&gone_tasks)
            .filter(|(_, gone)| !**gone)
            .map(|(t, _)| t.dir.join(TASK_BUS_FILE));
        for bus in project_buses.chain(task_buses) {
            match rotate_bus(&bus, max, Utc::now(), opts.dry_run, BUS_LOCK_TIMEOUT) {
                Ok(Some(rotated)) => report.rotated_buses.push(rotated),
                Ok(None) => {}
                Err(e) => report.errors.push(Failure::new(&bus, e)),
            }
        }
    }

    report.deleted_runs.sort_by(|a, b| a.path.cmp(&b.path));
    report.problem_runs.sort_by(|a, b| a.path.cmp(&b.path));
    report.bytes_freed = report.runs.bytes_freed
        + report.deleted_tasks.iter().map(|t| t.bytes).sum::<u64>()
        + report
            .removed_leftovers
            .iter()
            .map(|l| l.bytes)
            .sum::<u64>();
    Ok(report)
}

/// How many entries a dry run expects the task's `runs/` to hold after this pass (`Some(0)`
/// when missing); `None` when `runs/` is not a real directory. A real run re-checks the disk.
fn remaining_entries(
    task: &TaskDir,
    deleted: usize,
    unremoved_leftovers: &HashMap<PathBuf, usize>,
) -> Option<usize> {
    match &task.runs {
        RunsDir::Missing => Some(0),
        RunsDir::NotADir => None,
        RunsDir::Dir {
            path, runs, others, ..
        } => Some(
            runs.len().saturating_sub(deleted)
                + others
                + unremoved_leftovers.get(path).copied().unwrap_or(0),
        ),
    }
}

fn system_time(t: DateTime<Utc>) -> SystemTime {
    SystemTime::from(t)
}
