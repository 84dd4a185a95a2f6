//! The in-memory index of runs: built by one scan at start, kept current by file-change
//! notification (one recursive inotify watcher) with a periodic full rescan as a safety net.
//! The files remain the truth; the index only saves listing requests from walking the disk.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use tokio::sync::broadcast;

use crate::storage::paths::{is_inside_without_symlinks, RUNS_DIR, RUN_INFO_FILE};
use crate::storage::scan::{read_entry, scan_all_runs, Reconcile, RunEntry};
use crate::storage::{liveness, RunInfo, RunStatus};

/// Full rescan interval (catches anything notification missed).
const RESCAN_EVERY: Duration = Duration::from_secs(30);
/// Events arriving within this window are handled together.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// One run as the index knows it.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Run id.
    pub run_id: String,
    /// Project id (from run-info, else the path).
    pub project_id: String,
    /// Task id (from run-info, else the path).
    pub task_id: String,
    /// The run directory.
    pub dir: PathBuf,
    /// Status (`unknown` when run-info is missing or broken).
    pub status: RunStatus,
    /// The record, when it parses.
    pub info: Option<RunInfo>,
    /// Why run-info could not be read.
    pub error: Option<String>,
}

impl RunRecord {
    fn from_entry(entry: RunEntry) -> Self {
        let run_id = entry.run_id();
        let status = entry.status();
        // Fall back to the canonical path layout `<p>/<t>/runs/<r>` for ids.
        let from_path = |n: usize| {
            entry
                .dir
                .ancestors()
                .nth(n)
                .and_then(Path::file_name)
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let (info, error) = match entry.info {
            Ok(info) => (Some(info), None),
            Err(e) => (None, Some(e)),
        };
        let pick = |v: Option<&String>, n| {
            v.filter(|s| !s.is_empty())
                .cloned()
                .unwrap_or_else(|| from_path(n))
        };
        RunRecord {
            project_id: pick(info.as_ref().map(|i| &i.project_id), 3),
            task_id: pick(info.as_ref().map(|i| &i.task_id), 2),
            run_id,
            dir: entry.dir,
            status,
            info,
            error,
        }
    }
}

/// A change the index observed.
#[derive(Debug, Clone)]
pub enum IndexChange {
    /// A run appeared.
    Created(Arc<RunRecord>),
    /// A run's status changed.
    Status(Arc<RunRecord>),
}

/// Filters of a listing.
#[derive(Debug, Default, Clone)]
pub struct RunFilter {
    /// Only this project.
    pub project: Option<String>,
    /// Only this task.
    pub task: Option<String>,
    /// Only this status.
    pub status: Option<RunStatus>,
}

type Key = (String, PathBuf);

/// Runs under the root and extra roots, keyed by (run id, dir).
#[derive(Debug)]
pub struct RunIndex {
    root: PathBuf,
    extra: Vec<PathBuf>,
    runs: RwLock<BTreeMap<Key, Arc<RunRecord>>>,
    changes: broadcast::Sender<IndexChange>,
}

impl RunIndex {
    /// Scans the tree once and returns the index (not yet watching).
    pub fn build(root: &Path, extra: &[PathBuf]) -> Arc<Self> {
        let (changes, _) = broadcast::channel(1024);
        let index = Arc::new(Self {
            root: root.to_path_buf(),
            extra: extra.to_vec(),
            runs: RwLock::new(BTreeMap::new()),
            changes,
        });
        index.rescan();
        index
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Key, Arc<RunRecord>>> {
        self.runs.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Key, Arc<RunRecord>>> {
        self.runs.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of indexed runs.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Receives every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<IndexChange> {
        self.changes.subscribe()
    }

    /// Re-reads every run, dropping vanished ones.
    pub fn rescan(&self) {
        let entries = scan_all_runs(&self.root, &self.extra, Reconcile::No);
        let mut seen = HashSet::with_capacity(entries.len());
        for entry in entries {
            seen.insert(entry.dir.clone());
            self.upsert(RunRecord::from_entry(entry));
        }
        self.write().retain(|(_, dir), _| seen.contains(dir));
    }

    /// Re-reads one run directory (removes it from the index when it is gone).
    pub fn refresh(&self, dir: &Path) {
        let inside = std::iter::once(&self.root)
            .chain(&self.extra)
            .any(|base| is_inside_without_symlinks(base, dir));
        if inside
            && std::fs::symlink_metadata(dir)
                .map(|m| m.is_dir())
                .unwrap_or(false)
        {
            if dir.join(RUN_INFO_FILE).exists() {
                self.upsert(RunRecord::from_entry(read_entry(
                    dir.to_path_buf(),
                    Reconcile::No,
                )));
            }
        } else {
            self.write().retain(|(_, d), _| d != dir);
        }
    }

    fn upsert(&self, record: RunRecord) {
        let key = (record.run_id.clone(), record.dir.clone());
        let record = Arc::new(record);
        let previous = self.write().insert(key, record.clone());
        let change = match previous {
            None => Some(IndexChange::Created(record)),
            Some(old) if old.status != record.status => Some(IndexChange::Status(record)),
            Some(_) => None,
        };
        if let Some(change) = change {
            // No subscriber is fine.
            let _ = self.changes.send(change);
        }
    }

    /// The directory of run `run_id`, if indexed.
    pub fn find(&self, run_id: &str) -> Option<PathBuf> {
        let runs = self.read();
        runs.range((run_id.to_string(), PathBuf::new())..)
            .next()
            .filter(|((id, _), _)| id == run_id)
            .map(|((_, dir), _)| dir.clone())
    }

    /// Runs matching `filter`, newest (highest run id) first, strictly before `cursor`,
    /// at most `limit`; plus the cursor of the next page when there is one. Records that say
    /// `running` but whose process is gone are reconciled first.
    pub fn page(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> (Vec<Arc<RunRecord>>, Option<String>) {
        self.reconcile_stale();
        let runs = self.read();
        let mut out: Vec<Arc<RunRecord>> = runs
            .iter()
            .rev()
            .filter(|((id, _), _)| cursor.is_none_or(|c| id.as_str() < c))
            .map(|(_, r)| r)
            .filter(|r| matches(filter, r))
            .take(limit + 1)
            .cloned()
            .collect();
        let next = (out.len() > limit).then(|| {
            out.truncate(limit);
            out.last().map(|r| r.run_id.clone())
        });
        (out, next.flatten())
    }

    /// Rewrites `running` records whose process is gone (liveness reconciliation) and
    /// refreshes them in the index.
    pub fn reconcile_stale(&self) {
        let stale: Vec<PathBuf> = self
            .read()
            .values()
            .filter(|r| r.status == RunStatus::Running)
            .filter(|r| r.info.as_ref().is_some_and(|i| !liveness::is_alive(i)))
            .map(|r| r.dir.clone())
            .collect();
        for dir in stale {
            if let Err(err) = liveness::read_reconciled(&dir.join(RUN_INFO_FILE)) {
                tracing::warn!(dir = %dir.display(), "cannot reconcile a stale run: {err}");
            }
            self.refresh(&dir);
        }
    }

    /// Counts of runs by status.
    pub fn status_counts(&self) -> BTreeMap<RunStatus, usize> {
        let mut counts = BTreeMap::new();
        for record in self.read().values() {
            *counts.entry(record.status).or_insert(0) += 1;
        }
        counts
    }

    /// Starts the watcher thread that keeps the index current.
    pub fn watch(self: &Arc<Self>) {
        let index = Arc::clone(self);
        std::thread::Builder::new()
            .name("run-index".into())
            .spawn(move || index.watch_loop())
            .map_err(|e| tracing::error!("cannot start the run index watcher: {e}"))
            .ok();
    }

    fn watch_loop(&self) {
        let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
        let config = notify::Config::default().with_follow_symlinks(false);
        let watcher = crate::storage::watch::watcher(tx, config).and_then(|mut w| {
            w.watch(&self.root, RecursiveMode::Recursive)?;
            for extra in &self.extra {
                if extra.is_dir() {
                    w.watch(extra, RecursiveMode::Recursive)?;
                }
            }
            Ok(w)
        });
        let _watcher = match watcher {
            Ok(w) => Some(w),
            Err(err) => {
                tracing::warn!(
                    "run index: no file notifications ({err}); rescanning every {RESCAN_EVERY:?}"
                );
                None
            }
        };
        let mut last_rescan = Instant::now();
        loop {
            let mut dirs: HashSet<PathBuf> = HashSet::new();
            let mut rescan = false;
            match rx.recv_timeout(RESCAN_EVERY) {
                Ok(event) => {
                    collect(event, &mut dirs, &mut rescan);
                    let until = Instant::now() + DEBOUNCE;
                    while let Some(left) = until.checked_duration_since(Instant::now()) {
                        match rx.recv_timeout(left) {
                            Ok(event) => collect(event, &mut dirs, &mut rescan),
                            Err(_) => break,
                        }
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => rescan = true,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(RESCAN_EVERY);
                    rescan = true;
                }
            }
            if rescan || last_rescan.elapsed() >= RESCAN_EVERY {
                self.rescan();
                last_rescan = Instant::now();
            } else {
                for dir in dirs {
                    self.refresh(&dir);
                }
            }
        }
    }
}

/// Maps a notification to the run directories it touches; structural changes above run
/// level (a task or project removed or renamed) ask for a rescan.
fn collect(event: notify::Result<notify::Event>, dirs: &mut HashSet<PathBuf>, rescan: &mut bool) {
    let Ok(event) = event else {
        *rescan = true;
        return;
    };
    for path in event.paths {
        match run_dir_of(&path) {
            Some(dir) => {
                dirs.insert(dir);
            }
            None => {
                if matches!(
                    event.kind,
                    notify::EventKind::Remove(_)
                        | notify::EventKind::Modify(notify::event::ModifyKind::Name(_))
                ) {
                    *rescan = true;
                }
            }
        }
    }
}

/// `…/runs/<run>` for a path at or below a run directory.
fn run_dir_of(path: &Path) -> Option<PathBuf> {
    let mut current = path;
    loop {
        let parent = current.parent()?;
        if parent.file_name().is_some_and(|n| n == RUNS_DIR) {
            return Some(current.to_path_buf());
        }
        current = parent;
    }
}

fn matches(filter: &RunFilter, record: &RunRecord) -> bool {
    filter
        .project
        .as_deref()
        .is_none_or(|p| p == record.project_id)
        && filter.task.as_deref().is_none_or(|t| t == record.task_id)
        && filter.status.is_none_or(|s| s == record.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_of_paths() {
        assert_eq!(
            run_dir_of(Path::new("/r/p/t/runs/r1/run-info.yaml")),
            Some(PathBuf::from("/r/p/t/runs/r1"))
        );
        assert_eq!(
            run_dir_of(Path::new("/r/p/t/runs/r1")),
            Some(PathBuf::from("/r/p/t/runs/r1"))
        );
        assert_eq!(run_dir_of(Path::new("/r/p/t/TASK.md")), None);
    }
}
