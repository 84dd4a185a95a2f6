//! The in-memory index of runs: built in the background at server start (listings wait for
//! it briefly, see [`RunIndex::wait_ready`]), kept current by file-change notification
//! (non-recursive watches on the tree's structure and on the runs that are changing, see
//! `watches`) with a periodic rescan as a safety net. The files remain the
//! truth; the index only saves listing requests from walking the disk.
//!
//! Runs are keyed by their directory: the run id is the directory name, the project and task
//! come from the path (flat extra roots: from the record). What a file claims about its own id
//! is never trusted, so a forged, renamed or truncated run-info.yaml cannot create a second or
//! stale entry. Each entry remembers the identity of the file it was read from (inode, size,
//! mtime); a rescan re-reads exactly the files whose identity changed.

mod events;
mod filter;
mod neighbours;
mod read;
mod store;
mod watches;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::storage::paths::{is_inside_without_symlinks, RUN_INFO_FILE};
use crate::storage::{liveness, RunStatus};

pub use filter::RunFilter;
pub use store::TaskRuns;
use store::{Store, Upsert};
pub use watches::structure_watch_count;

/// Full rescan interval (catches anything notification missed).
const RESCAN_EVERY: Duration = Duration::from_secs(30);
/// Events arriving within this window are handled together.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// One run as listeners and listings see it.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Run id (the directory name).
    pub run_id: String,
    /// Project id (from the path; flat extra roots: from run-info).
    pub project_id: String,
    /// Task id (from the path; flat extra roots: from run-info).
    pub task_id: String,
    /// The run directory.
    pub dir: PathBuf,
    /// Status (`unknown` when run-info is missing or broken).
    pub status: RunStatus,
    /// The configured agent's name (`agent_name` of run-info), when recorded.
    pub agent_name: Option<String>,
}

/// A change the index observed.
#[derive(Debug, Clone)]
pub enum IndexChange {
    /// A run appeared.
    Created(Arc<RunRecord>),
    /// A run's status changed.
    Status(Arc<RunRecord>),
}

/// Whether the index has been built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexState {
    /// The first scan is still running.
    Building,
    /// Built; the duration the first scan took.
    Ready(Duration),
}

/// Runs under the root and extra roots, keyed by run directory.
#[derive(Debug)]
pub struct RunIndex {
    root: PathBuf,
    extra: Vec<PathBuf>,
    store: RwLock<Store>,
    state: Mutex<IndexState>,
    ready: Condvar,
    changes: broadcast::Sender<IndexChange>,
}

impl RunIndex {
    /// An empty index in state [`IndexState::Building`]; [`RunIndex::start`] builds it in the
    /// background and keeps it current.
    pub fn new(root: &Path, extra: &[PathBuf]) -> Arc<Self> {
        let (changes, _) = broadcast::channel(1024);
        Arc::new(Self {
            root: root.to_path_buf(),
            extra: extra.to_vec(),
            store: RwLock::new(Store::default()),
            state: Mutex::new(IndexState::Building),
            ready: Condvar::new(),
            changes,
        })
    }

    /// Scans the tree now and returns the built index (not watching).
    pub fn build(root: &Path, extra: &[PathBuf]) -> Arc<Self> {
        let index = Self::new(root, extra);
        index.build_now();
        index
    }

    fn build_now(&self) {
        let started = Instant::now();
        self.rescan();
        self.mark_ready(started.elapsed());
        // Runs whose supervisor died while no server was watching.
        self.reconcile_stale();
    }

    fn mark_ready(&self, took: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state = IndexState::Ready(took);
        self.ready.notify_all();
    }

    /// Whether the first scan has finished, and how long it took.
    pub fn state(&self) -> IndexState {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits at most `timeout` for the first scan; true when the index is ready.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (state, _) = self
            .ready
            .wait_timeout_while(state, timeout, |s| *s == IndexState::Building)
            .unwrap_or_else(|p| p.into_inner());
        *state != IndexState::Building
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of indexed runs.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Receives every change from now on (none are sent for the first scan).
    pub fn subscribe(&self) -> broadcast::Receiver<IndexChange> {
        self.changes.subscribe()
    }

    /// Re-reads every run whose run-info.yaml changed identity and drops vanished ones.
    pub fn rescan(&self) {
        let found = read::scan(&self.root, &self.extra, |runs_dir, run_id| {
            let store = self.read();
            store.get(runs_dir, run_id).and_then(|(_, run)| run.file)
        });
        let mut seen: std::collections::HashMap<Arc<Path>, HashSet<String>> =
            std::collections::HashMap::new();
        for item in found {
            if let Some(run) = item.run {
                self.put(&item.runs_dir, &item.run_id, run);
            }
            seen.entry(item.runs_dir).or_default().insert(item.run_id);
        }
        self.write()
            .retain(|runs_dir, id| seen.get(runs_dir).is_some_and(|ids| ids.contains(id)));
    }

    /// Re-reads one run directory (removes it from the index when it is gone).
    pub fn refresh(&self, dir: &Path) {
        let (Some(runs_dir), Some(run_id)) = (dir.parent(), dir.file_name()) else {
            return;
        };
        let Some(run_id) = run_id.to_str() else {
            return;
        };
        let inside = std::iter::once(&self.root)
            .chain(&self.extra)
            .any(|base| is_inside_without_symlinks(base, dir));
        let is_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
        if inside && is_dir && read::is_run_id(run_id) {
            if let Some(run) = read::read_run(dir, self.flat_root(runs_dir)) {
                self.put(runs_dir, run_id, run);
            }
        } else {
            self.write().remove(runs_dir, run_id);
        }
    }

    fn flat_root(&self, runs_dir: &Path) -> bool {
        self.extra
            .iter()
            .any(|e| runs_dir.parent() == Some(e.as_path()))
    }

    fn put(&self, runs_dir: &Path, run_id: &str, run: store::Run) {
        let Some((project, task)) = read::place(runs_dir, &run) else {
            return;
        };
        let agent_name = run.agent_name.as_deref().map(str::to_string);
        let status = run.status;
        let outcome = {
            let mut store = self.write();
            let key = store::SlotKey {
                runs_dir: Arc::from(runs_dir),
                project: store.intern(&project),
                task: store.intern(&task),
            };
            let mut run = run;
            run.agent_name = run.agent_name.map(|n| store.intern(&n));
            run.agent = run.agent.map(|a| store.intern(&a));
            store.upsert(key, run_id, run)
        };
        if outcome == Upsert::Same || self.state() == IndexState::Building {
            return;
        }
        let record = Arc::new(RunRecord {
            run_id: run_id.to_string(),
            project_id: project,
            task_id: task,
            dir: runs_dir.join(run_id),
            status,
            agent_name,
        });
        let change = match outcome {
            Upsert::Created => IndexChange::Created(record),
            _ => IndexChange::Status(record),
        };
        // No subscriber is fine.
        let _ = self.changes.send(change);
    }

    /// The directory of run `run_id`, if indexed.
    pub fn find(&self, run_id: &str) -> Option<PathBuf> {
        self.read().find(run_id)
    }

    /// Runs matching `filter`, newest (highest run id) first, strictly before `cursor`,
    /// at most `limit`; plus the cursor of the next page when there is one. Records that say
    /// `running` but whose process is gone are reconciled first.
    pub fn page(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> (Vec<RunRecord>, Option<String>) {
        self.reconcile_stale();
        let store = self.read();
        let mut out: Vec<RunRecord> = store
            .page(
                filter.project.as_deref(),
                filter.task.as_deref(),
                |run| filter.keeps(run),
                cursor,
                limit + 1,
            )
            .into_iter()
            .map(|entry| {
                let slot = &store.slots[entry.slot];
                let agent_name = slot
                    .runs
                    .get(entry.run_id.as_str())
                    .and_then(|r| r.agent_name.as_deref().map(str::to_string));
                RunRecord {
                    dir: slot.runs_dir.join(&entry.run_id),
                    project_id: slot.project.to_string(),
                    task_id: slot.task.to_string(),
                    run_id: entry.run_id,
                    status: entry.status,
                    agent_name,
                }
            })
            .collect();
        let next = (out.len() > limit).then(|| {
            out.truncate(limit);
            out.last().map(|r| r.run_id.clone())
        });
        (out, next.flatten())
    }

    /// The run facts of one task (count, newest run, whether any run is running).
    pub fn task_runs(&self, project: &str, task: &str) -> TaskRuns {
        self.read().task_runs(project, task)
    }

    /// The sum of the usage of `project`'s runs (every run when `None`).
    pub fn usage_of(&self, project: Option<&str>) -> crate::storage::UsageTotals {
        self.read().usage_of(project)
    }

    /// The sum of every run's usage by agent type and model (`""` when unknown).
    pub fn usage_by_agent_model(&self) -> BTreeMap<(String, String), crate::storage::UsageTotals> {
        self.read().usage_by_agent_model()
    }

    /// Rewrites `running` records whose process and supervisor are gone (liveness
    /// reconciliation) and refreshes them in the index. Only the running runs are looked at.
    pub fn reconcile_stale(&self) {
        let candidates = self.read().running();
        for (dir, pid, pgid, start) in candidates {
            if crate::process::recorded_alive(pid.into(), pgid.into(), start) {
                continue;
            }
            if let Err(err) = liveness::read_reconciled(&dir.join(RUN_INFO_FILE)) {
                tracing::warn!(dir = %dir.display(), "cannot reconcile a stale run: {err}");
            }
            self.refresh(&dir);
        }
    }

    /// Re-reads the runs of `project/task` the index holds as running, so a view never
    /// trails a run that ended a moment ago (its file event may still be on its way), and
    /// reconciles the ones whose process is gone.
    pub fn refresh_running_of(&self, project: &str, task: &str) {
        let dirs = self.read().running_of(project, task);
        for dir in dirs {
            self.refresh(&dir);
        }
        self.reconcile_stale();
    }

    /// Counts of runs by status (kept up to date on every change; no scan).
    pub fn status_counts(&self) -> BTreeMap<RunStatus, usize> {
        self.read().counts()
    }

    /// Builds the index on a background thread, then keeps it current from file-change
    /// notification. Returns at once; see [`RunIndex::state`] and [`RunIndex::wait_ready`].
    pub fn start(self: &Arc<Self>) {
        let index = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("run-index".into())
            .spawn(move || index.watch_loop(true));
        if let Err(err) = spawned {
            tracing::error!("cannot start the run index thread ({err}); building it now");
            self.build_now();
        }
    }

    /// Keeps an already built index current (the watcher thread of [`RunIndex::start`]).
    pub fn watch(self: &Arc<Self>) {
        let index = Arc::clone(self);
        std::thread::Builder::new()
            .name("run-index".into())
            .spawn(move || index.watch_loop(false))
            .map_err(|e| tracing::error!("cannot start the run index watcher: {e}"))
            .ok();
    }

    fn watch_loop(&self, build: bool) {
        let mut watches = watches::Watches::new();
        // Watch the structure before the first scan, so no run created meanwhile is missed.
        watches.sync_structure(&self.root, &self.extra);
        if build {
            self.build_now();
            if let IndexState::Ready(took) = self.state() {
                tracing::info!(
                    runs = self.len(),
                    took_ms = took.as_millis() as u64,
                    "run index built"
                );
            }
            release_freed_memory();
        }
        self.sync_run_watches(&mut watches);
        tracing::debug!(dirs = watches.len(), "run index: watching");
        let compat = self.root.join(crate::storage::paths::COMPAT_DIR);
        let mut last_rescan = Instant::now();
        loop {
            let mut batch = events::Batch::default();
            let first = watches.events(RESCAN_EVERY);
            if first.is_empty() {
                batch.rescan = true;
            }
            for event in first {
                events::collect(event, &compat, &mut batch);
            }
            // Gather the rest of a burst into the same batch.
            let until = Instant::now() + DEBOUNCE;
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                if batch.rescan {
                    break;
                }
                let more = watches.events(left);
                if more.is_empty() {
                    break;
                }
                for event in more {
                    events::collect(event, &compat, &mut batch);
                }
            }
            if batch.structure || batch.rescan {
                // Runs already inside a newly watched runs/ directory were created before
                // its watch: read them.
                for runs_dir in watches.sync_structure(&self.root, &self.extra) {
                    for run_id in crate::storage::scan::run_names(&runs_dir) {
                        batch.dirs.insert(runs_dir.join(run_id));
                    }
                }
            }
            if batch.rescan || last_rescan.elapsed() >= RESCAN_EVERY {
                self.rescan();
                last_rescan = Instant::now();
            } else {
                for dir in batch.dirs {
                    self.refresh(&dir);
                }
            }
            self.sync_run_watches(&mut watches);
        }
    }

    /// Watches the run directories whose record is expected to change (running runs, runs
    /// whose record is not written yet) and drops the watches of the others; a newly watched
    /// run is re-read, since its record may have changed before the watch.
    fn sync_run_watches(&self, watches: &mut watches::Watches) {
        let wanted = self.read().changing_dirs();
        for dir in watches.sync_runs(wanted) {
            self.refresh(&dir);
        }
    }
}

/// Hands memory freed after the first scan (parse buffers of the scan threads' allocator
/// arenas) back to the system, so the server's resident size is what the index holds.
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists; no pointer is passed.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RunInfo;

    fn write_run(root: &Path, p: &str, t: &str, r: &str, status: RunStatus, claimed_id: &str) {
        let dir = root.join(p).join(t).join("runs").join(r);
        std::fs::create_dir_all(&dir).unwrap();
        let mut info = RunInfo::new_running(claimed_id, p, t, "claude", chrono::Utc::now());
        info.status = status;
        std::fs::write(dir.join(RUN_INFO_FILE), info.to_yaml()).unwrap();
    }

    const A: &str = "20260101-0000000000-1-1";
    const B: &str = "20260101-0000000001-1-2";

    #[test]
    fn entries_are_keyed_by_directory_not_by_what_the_file_claims() {
        let root = tempfile::tempdir().unwrap();
        write_run(root.path(), "p", "t", A, RunStatus::Completed, A);
        // B's file claims to be A.
        write_run(root.path(), "p", "t", B, RunStatus::Failed, A);
        let index = RunIndex::build(root.path(), &[]);
        let (page, _) = index.page(&RunFilter::default(), None, 10);
        let ids: Vec<&str> = page.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, [B, A]);
        assert!(index.find(B).unwrap().ends_with(B));
        assert!(index.find(A).unwrap().ends_with(A));

        // Rewritten with another id, then restored: still one entry per directory.
        write_run(
            root.path(),
            "p",
            "t",
            A,
            RunStatus::Completed,
            "20991231-0000000000-9-9",
        );
        index.rescan();
        write_run(root.path(), "p", "t", A, RunStatus::Completed, A);
        index.rescan();
        assert_eq!(index.len(), 2);
        // A truncated file is listed under its directory name, as unknown.
        let path = root.path().join("p/t/runs").join(A).join(RUN_INFO_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..20]).unwrap();
        index.refresh(&root.path().join("p/t/runs").join(A));
        let (page, _) = index.page(&RunFilter::default(), None, 10);
        assert_eq!(page.len(), 2);
        assert_eq!(page[1].run_id, A);
        assert_eq!(page[1].status, RunStatus::Unknown);
        assert_eq!(index.status_counts()[&RunStatus::Unknown], 1);
    }

    #[test]
    fn background_build_becomes_ready_and_counts_without_a_scan() {
        let root = tempfile::tempdir().unwrap();
        write_run(root.path(), "p", "t", A, RunStatus::Completed, A);
        write_run(root.path(), "p", "u", B, RunStatus::Failed, B);
        let index = RunIndex::new(root.path(), &[]);
        assert_eq!(index.state(), IndexState::Building);
        assert!(!index.wait_ready(Duration::from_millis(1)));
        index.start();
        assert!(index.wait_ready(Duration::from_secs(60)));
        assert!(matches!(index.state(), IndexState::Ready(_)));
        let counts = index.status_counts();
        assert_eq!(counts[&RunStatus::Completed], 1);
        assert_eq!(counts[&RunStatus::Failed], 1);
        let runs = index.task_runs("p", "u");
        assert_eq!(runs.run_count, 1);
        assert_eq!(runs.newest, Some((B.to_string(), RunStatus::Failed)));
    }

    fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
        // Far below the 30 s rescan: only a file notification can satisfy it in time.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Only the structure and the changing runs are watched, yet a run created in a new
    /// project and task, and a running run that ends, are seen from notifications.
    #[test]
    fn new_tasks_and_ending_runs_are_seen_without_a_rescan() {
        let root = tempfile::tempdir().unwrap();
        let me = i64::from(std::process::id());
        let running = |p: &str, t: &str, r: &str| {
            let dir = root.path().join(p).join(t).join("runs").join(r);
            std::fs::create_dir_all(&dir).unwrap();
            let mut info = RunInfo::new_running(r, p, t, "claude", chrono::Utc::now());
            info.pid = me;
            info.pgid = me;
            info.pid_start_time = crate::process::start_time(me);
            info.write(&dir.join(RUN_INFO_FILE)).unwrap();
            (dir, info)
        };
        let (old_dir, mut old) = running("p", "t", A);
        write_run(root.path(), "p", "t", B, RunStatus::Completed, B);
        let index = RunIndex::new(root.path(), &[]);
        index.start();
        assert!(index.wait_ready(Duration::from_secs(60)));
        assert_eq!(index.status_counts()[&RunStatus::Running], 1);

        // A new project, task and run: the new directories are watched as they appear.
        let (new_dir, mut new) = running("q", "u", A);
        wait_for("the new run", || index.task_runs("q", "u").run_count == 1);
        assert!(index.task_runs("q", "u").any_running);
        // Both running runs end: their directories are watched.
        for (dir, info) in [(&old_dir, &mut old), (&new_dir, &mut new)] {
            info.status = RunStatus::Completed;
            info.write(&dir.join(RUN_INFO_FILE)).unwrap();
        }
        wait_for("the runs to end", || {
            !index.status_counts().contains_key(&RunStatus::Running)
        });
        assert_eq!(index.status_counts()[&RunStatus::Completed], 3);
        // A run removed from a finished task is dropped (its runs/ directory is watched).
        std::fs::remove_dir_all(root.path().join("p/t/runs").join(B)).unwrap();
        wait_for("the removed run", || index.len() == 2);
    }

    #[test]
    fn a_dead_running_run_is_reconciled_when_the_index_is_built() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("p/t/runs").join(A);
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        child.wait().unwrap();
        let mut info = RunInfo::new_running(A, "p", "t", "claude", chrono::Utc::now());
        info.pid = pid;
        info.pgid = pid;
        info.write(&dir.join(RUN_INFO_FILE)).unwrap();
        let index = RunIndex::build(root.path(), &[]);
        assert_eq!(index.status_counts().get(&RunStatus::Running), None);
        assert_eq!(index.status_counts()[&RunStatus::Failed], 1);
        let info = RunInfo::read(&dir.join(RUN_INFO_FILE)).unwrap();
        assert_eq!(info.error_summary.as_deref(), Some("process vanished"));
    }
}
