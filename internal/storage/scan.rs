//! Listing projects, tasks and runs under a root: the canonical layout, the compat layout
//! `<root>/runs/<project>/<task>/…`, and flat extra roots `<extra>/runs/<run>/run-info.yaml`.
//!
//! Symlinks are never followed, names that fail id validation are skipped, and a run whose
//! run-info.yaml is missing or does not parse is listed with status `unknown` and the error.

use std::path::{Path, PathBuf};

use super::ids::{validate_id, IdKind, ProjectId, TaskId};
use super::liveness::read_reconciled;
use super::paths::{COMPAT_DIR, DONE_FILE, RUNS_DIR, RUN_INFO_FILE};
use super::run_info::{RunInfo, RunStatus};

/// A project directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectEntry {
    /// Project id (the directory name).
    pub id: ProjectId,
    /// The project directory.
    pub dir: PathBuf,
}

/// A task directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEntry {
    /// Owning project.
    pub project: ProjectId,
    /// Task id (the directory name).
    pub id: TaskId,
    /// The task directory.
    pub dir: PathBuf,
    /// Whether the DONE marker exists (as a regular file).
    pub done: bool,
}

/// A run directory and what its run-info.yaml says.
#[derive(Debug, Clone)]
pub struct RunEntry {
    /// The run directory.
    pub dir: PathBuf,
    /// The parsed record, or why it could not be read.
    pub info: Result<RunInfo, String>,
}

impl RunEntry {
    /// The run's status; `unknown` when run-info.yaml is missing or broken.
    pub fn status(&self) -> RunStatus {
        self.info
            .as_ref()
            .map(|i| i.status)
            .unwrap_or(RunStatus::Unknown)
    }

    /// The run id: the directory name (what the file claims is never trusted for identity).
    pub fn run_id(&self) -> String {
        file_name(&self.dir)
    }
}

/// Whether liveness reconciliation runs while reading (it may rewrite stale records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconcile {
    /// Reconcile `running` records whose process is gone.
    Yes,
    /// Read records as they are.
    No,
}

/// Sub-directories of `dir` (not symlinks), sorted by name; empty when `dir` is missing.
fn subdirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    out.sort();
    out
}

/// Projects under `root`: `<root>/<p>` and compat `<root>/runs/<p>`, sorted by id.
/// A project present in both layouts is listed once (the canonical directory wins).
pub fn list_projects(root: &Path) -> Vec<ProjectEntry> {
    let mut out: Vec<ProjectEntry> = Vec::new();
    let canonical = subdirs(root)
        .into_iter()
        .filter(|(name, _)| name != COMPAT_DIR);
    let compat = subdirs(&root.join(COMPAT_DIR));
    for (name, dir) in canonical.chain(compat) {
        let Ok(id) = ProjectId::parse(&name) else {
            continue;
        };
        if !out.iter().any(|p| p.id == id) {
            out.push(ProjectEntry { id, dir });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Tasks of a project directory, sorted by id.
pub fn list_tasks(project: &ProjectEntry) -> Vec<TaskEntry> {
    task_dirs(project)
        .into_iter()
        .map(|(id, dir)| TaskEntry {
            project: project.id.clone(),
            id,
            done: is_done(&dir),
            dir,
        })
        .collect()
}

/// The task directories of `project` (valid task ids), sorted by id; reads only the project
/// directory.
pub fn task_dirs(project: &ProjectEntry) -> Vec<(TaskId, PathBuf)> {
    subdirs(&project.dir)
        .into_iter()
        .filter_map(|(name, dir)| Some((TaskId::parse(&name).ok()?, dir)))
        .collect()
}

/// Whether the task in `task_dir` has its DONE marker (a regular file).
pub fn is_done(task_dir: &Path) -> bool {
    std::fs::symlink_metadata(task_dir.join(DONE_FILE)).is_ok_and(|m| m.is_file())
}

/// Runs of a task directory, sorted by run id (which sorts by start time).
pub fn list_runs(task_dir: &Path, reconcile: Reconcile) -> Vec<RunEntry> {
    runs_in(&task_dir.join(RUNS_DIR), reconcile)
}

/// The names of the run directories in `runs_dir` (real directories with a valid run id),
/// unsorted; empty when `runs_dir` is missing. Reads only the directory itself.
pub fn run_names(runs_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(runs_dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| validate_id(IdKind::Run, name).is_ok())
        .collect()
}

/// What one read of a `runs/` directory tells: its run directories (unsorted) and the runs
/// marked live there (see [`crate::storage::live_marker`]).
#[derive(Debug, Default)]
pub struct RunListing {
    /// Names of the run directories (real directories with a valid run id).
    pub runs: Vec<String>,
    /// Run ids with a live marker (their directory may be gone).
    pub live: Vec<String>,
}

/// Reads `runs_dir` once into a [`RunListing`]; empty when it is missing.
pub fn run_listing(runs_dir: &Path) -> RunListing {
    let mut out = RunListing::default();
    let Ok(entries) = std::fs::read_dir(runs_dir) else {
        return out;
    };
    for entry in entries.filter_map(Result::ok) {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if kind.is_dir() {
            if validate_id(IdKind::Run, &name).is_ok() {
                out.runs.push(name);
            }
        } else if kind.is_file() {
            if let Some(id) = crate::storage::live_marker::marked_run(&name) {
                out.live.push(id.to_string());
            }
        }
    }
    out
}

fn runs_in(runs_dir: &Path, reconcile: Reconcile) -> Vec<RunEntry> {
    subdirs(runs_dir)
        .into_iter()
        .filter(|(name, _)| validate_id(IdKind::Run, name).is_ok())
        .map(|(_, dir)| read_entry(dir, reconcile))
        .collect()
}

/// Reads one run directory into an entry (never fails: errors go into the entry).
pub fn read_entry(dir: PathBuf, reconcile: Reconcile) -> RunEntry {
    let path = dir.join(RUN_INFO_FILE);
    let info = match RunInfo::read_regular(&path) {
        Err(err) => Err(err.to_string()),
        // Only a `running` record can need reconciling (it reads the record again, locked).
        Ok(info) if reconcile == Reconcile::Yes && info.status == RunStatus::Running => {
            read_reconciled(&path).map_err(|e| e.to_string())
        }
        Ok(info) => Ok(info),
    };
    RunEntry { dir, info }
}

/// Every run under `root` (both layouts) and under each extra root (flat layout).
pub fn scan_all_runs(root: &Path, extra_roots: &[PathBuf], reconcile: Reconcile) -> Vec<RunEntry> {
    let mut out = Vec::new();
    for project in list_projects(root) {
        for task in list_tasks(&project) {
            out.extend(list_runs(&task.dir, reconcile));
        }
    }
    out.extend(scan_flat_roots(extra_roots, reconcile));
    out
}

/// Runs of extra roots in the flat layout `<extra>/runs/<run>/run-info.yaml`.
pub fn scan_flat_roots(extra_roots: &[PathBuf], reconcile: Reconcile) -> Vec<RunEntry> {
    extra_roots
        .iter()
        .flat_map(|extra| runs_in(&extra.join(RUNS_DIR), reconcile))
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn make_run(root: &Path, p: &str, t: &str, r: &str, status: RunStatus) {
        let dir = root.join(p).join(t).join("runs").join(r);
        std::fs::create_dir_all(&dir).unwrap();
        let mut info = RunInfo::new_running(r, p, t, "claude", Utc::now());
        info.status = status;
        info.write(&dir.join(RUN_INFO_FILE)).unwrap();
    }

    #[test]
    fn lists_layouts_and_reports_broken_runs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        make_run(root, "alpha", "task-1", "r1", RunStatus::Completed);
        make_run(
            &root.join("runs"),
            "beta",
            "task-2",
            "r2",
            RunStatus::Failed,
        );
        let broken = root.join("alpha/task-1/runs/r3");
        std::fs::create_dir_all(&broken).unwrap();
        std::fs::write(broken.join(RUN_INFO_FILE), "pid: [oops\n").unwrap();
        std::fs::create_dir_all(root.join("alpha/task-1/runs/r4")).unwrap();
        std::fs::create_dir_all(root.join("_audit")).unwrap();
        std::fs::create_dir_all(root.join(".conductor")).unwrap();
        let extra = tempfile::tempdir().unwrap();
        make_run(extra.path(), "x", "y", "ignored", RunStatus::Completed);
        let flat = extra.path().join("runs/r5");
        std::fs::create_dir_all(&flat).unwrap();
        RunInfo::new_running("r5", "gamma", "task-5", "codex", Utc::now())
            .write(&flat.join(RUN_INFO_FILE))
            .unwrap();

        let projects: Vec<String> = list_projects(root)
            .iter()
            .map(|p| p.id.to_string())
            .collect();
        assert_eq!(projects, ["alpha", "beta"]);
        let runs = scan_all_runs(root, &[extra.path().to_path_buf()], Reconcile::No);
        let summary: Vec<(String, RunStatus)> =
            runs.iter().map(|r| (r.run_id(), r.status())).collect();
        assert_eq!(
            summary,
            [
                ("r1".to_string(), RunStatus::Completed),
                ("r3".to_string(), RunStatus::Unknown),
                ("r4".to_string(), RunStatus::Unknown),
                ("r2".to_string(), RunStatus::Failed),
                ("r5".to_string(), RunStatus::Running),
            ]
        );
        assert!(runs[1].info.as_ref().unwrap_err().contains("invalid YAML"));
        assert!(runs[2].info.as_ref().unwrap_err().contains("missing"));
    }

    #[test]
    fn symlinked_dirs_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        make_run(outside.path(), "evil", "task-1", "r1", RunStatus::Completed);
        std::os::unix::fs::symlink(outside.path().join("evil"), dir.path().join("evil")).unwrap();
        assert!(list_projects(dir.path()).is_empty());
    }
}
