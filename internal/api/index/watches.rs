//! The index's file-change watches: one watch (of the process's inotify instance, or polled
//! where inotify cannot watch; see [`crate::storage::watch`]) per directory whose
//! entries can change what the index holds — the root (and its compat `runs/`), each project,
//! each task, each task's `runs/` (new and removed runs), each flat extra root and its `runs/`
//! — plus the run directories whose run-info.yaml is expected to change (running runs, runs
//! whose record is not written yet). Finished runs are not watched: at 100k runs a watch per
//! directory cost seconds to set up and hundreds of MB; a change to a finished run's record is
//! picked up by the periodic rescan.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::storage::paths::{COMPAT_DIR, RUNS_DIR};
use crate::storage::scan::{list_projects, list_tasks};
use crate::storage::watch::{Event, Scope, Subscription, WatchError};

/// How often a watched directory is polled when inotify cannot watch it: the index watches
/// every project, task and `runs/` directory, so polling them is not cheap.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// The subscription and what it watches.
pub(super) struct Watches {
    changes: Subscription,
    structure: HashSet<PathBuf>,
    runs: HashSet<PathBuf>,
    /// Whether a watch was refused (e.g. the inotify watch limit); logged once.
    refused: bool,
}

impl Watches {
    /// Watches nothing yet.
    pub fn new() -> Self {
        Self {
            changes: Subscription::with_events().poll_every(POLL_EVERY),
            structure: HashSet::new(),
            runs: HashSet::new(),
            refused: false,
        }
    }

    /// Waits up to `timeout` for changes; their events (empty when the time is up).
    pub fn events(&self, timeout: Duration) -> Vec<Event> {
        self.changes.events(timeout)
    }

    /// Number of directories watched.
    pub fn len(&self) -> usize {
        self.structure.len() + self.runs.len()
    }

    /// Watches the structural directories of `root` and `extra` that exist now and drops the
    /// watches of those that are gone. Returns the `runs/` directories newly watched (runs
    /// already in them were created before their watch: the caller reads them).
    pub fn sync_structure(&mut self, root: &Path, extra: &[PathBuf]) -> Vec<PathBuf> {
        let wanted = structural_dirs(root, extra);
        let gone: Vec<PathBuf> = self.structure.difference(&wanted).cloned().collect();
        for dir in gone {
            self.changes.unwatch(&dir);
            self.structure.remove(&dir);
        }
        let mut new_runs_dirs = Vec::new();
        for dir in wanted {
            if self.structure.contains(&dir) || !self.add(&dir) {
                continue;
            }
            if dir.file_name().is_some_and(|n| n == RUNS_DIR) {
                new_runs_dirs.push(dir.clone());
            }
            self.structure.insert(dir);
        }
        new_runs_dirs
    }

    /// Watches exactly the run directories in `wanted`; returns the newly watched ones (their
    /// record may have changed before the watch: the caller re-reads them).
    pub fn sync_runs(&mut self, wanted: HashSet<PathBuf>) -> Vec<PathBuf> {
        let gone: Vec<PathBuf> = self.runs.difference(&wanted).cloned().collect();
        for dir in gone {
            self.changes.unwatch(&dir);
            self.runs.remove(&dir);
        }
        let mut added = Vec::new();
        for dir in wanted {
            if !self.runs.contains(&dir) && self.add(&dir) {
                self.runs.insert(dir.clone());
                added.push(dir);
            }
        }
        added
    }

    fn add(&mut self, dir: &Path) -> bool {
        match self.changes.watch(dir, Scope::Dir) {
            Ok(_) => true,
            // A directory removed meanwhile is not worth a warning.
            Err(WatchError::NotFound { .. }) => false,
            Err(err) => {
                if !self.refused {
                    self.refused = true;
                    tracing::warn!(
                        dir = %dir.display(),
                        "run index: {err}; relying on the periodic rescan"
                    );
                }
                false
            }
        }
    }
}

/// How many directories the index watches for the tree's structure (running runs come on
/// top): what `run-agent doctor` compares with the inotify watch limit.
pub fn structure_watch_count(root: &Path, extra: &[PathBuf]) -> usize {
    structural_dirs(root, extra).len()
}

/// The directories whose entries make up the tree's structure (see the module doc).
fn structural_dirs(root: &Path, extra: &[PathBuf]) -> HashSet<PathBuf> {
    let mut out = HashSet::new();
    out.insert(root.to_path_buf());
    let compat = root.join(COMPAT_DIR);
    if compat.is_dir() {
        out.insert(compat);
    }
    for project in list_projects(root) {
        for task in list_tasks(&project) {
            let runs = task.dir.join(RUNS_DIR);
            if runs.is_dir() {
                out.insert(runs);
            }
            out.insert(task.dir);
        }
        out.insert(project.dir);
    }
    for e in extra {
        if e.is_dir() {
            let runs = e.join(RUNS_DIR);
            if runs.is_dir() {
                out.insert(runs);
            }
            out.insert(e.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_is_root_projects_tasks_and_runs_dirs_only() {
        let root = tempfile::tempdir().unwrap();
        let run = root.path().join("p/task-a/runs/20260101-0000000000-1-1");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::create_dir_all(root.path().join("p/task-b")).unwrap();
        let dirs = structural_dirs(root.path(), &[]);
        let rel: HashSet<String> = dirs
            .iter()
            .map(|d| d.strip_prefix(root.path()).unwrap().display().to_string())
            .collect();
        let expected: HashSet<String> = ["", "p", "p/task-a", "p/task-a/runs", "p/task-b"]
            .into_iter()
            .map(str::to_string)
            .collect();
        assert_eq!(rel, expected);
    }
}
