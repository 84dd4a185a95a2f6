//! The compact in-memory store behind the run index: runs grouped by their `runs/` directory
//! and task ("slots"), each run keyed by its directory name (the run id) and holding only what
//! listings, counters and liveness need. Paths and ids are kept once per slot, never per run.

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::storage::{RunStatus, Usage, UsageTotals};

/// What identifies the version of a run-info.yaml that was read: an atomic rewrite gives a new
/// inode, an in-place rewrite a new size or mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
}

impl FileId {
    /// The identity of a file from its metadata.
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileId {
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        }
    }
}

/// One run, compactly.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub status: RunStatus,
    /// Start time (ns since the epoch), 0 when unknown.
    pub start_ns: i64,
    /// End time (ns since the epoch), 0 while running or unknown.
    pub end_ns: i64,
    pub pid: i32,
    pub pgid: i32,
    pub pid_start_time: Option<u64>,
    /// The configured agent's name (`agent_name`), interned.
    pub agent_name: Option<Arc<str>>,
    /// The agent type (`agent`), interned.
    pub agent: Option<Arc<str>>,
    /// The run-info.yaml that was read (`None` when it is missing).
    pub file: Option<FileId>,
    /// For flat extra-root runs: the project and task the record names.
    pub named: Option<(Arc<str>, Arc<str>)>,
    /// Tokens and cost, when the record has them (boxed: most of a run's bytes otherwise).
    pub usage: Option<Box<Usage>>,
}

impl Run {
    /// A run with nothing known yet: `unknown`, no times, no process, no record read.
    pub fn unknown() -> Self {
        Run {
            status: RunStatus::Unknown,
            start_ns: 0,
            end_ns: 0,
            pid: 0,
            pgid: 0,
            pid_start_time: None,
            agent_name: None,
            agent: None,
            file: None,
            named: None,
            usage: None,
        }
    }

    /// The run's latest start or end time (ns since the epoch, 0 when unknown).
    pub fn activity_ns(&self) -> i64 {
        self.end_ns.max(self.start_ns)
    }

    /// Whether the record is expected to change soon: the run is `running`, or its
    /// run-info.yaml is not written yet (a run directory just created). Only such runs are
    /// watched for file changes.
    pub fn changing(&self) -> bool {
        self.status == RunStatus::Running || self.file.is_none()
    }
}

/// The runs of one task in one `runs/` directory.
#[derive(Debug)]
pub(crate) struct Slot {
    pub runs_dir: Arc<Path>,
    pub project: Arc<str>,
    pub task: Arc<str>,
    pub runs: BTreeMap<Box<str>, Run>,
    pub running: usize,
    /// Runs whose record is expected to change soon (see [`Run::changing`]).
    pub changing: usize,
    /// The latest start or end time of any run (ns since the epoch, 0 when none is known),
    /// kept on every change so a listing never walks the runs.
    pub last_activity_ns: i64,
    /// The sum of the runs' usage, computed on first use after a change (a listing of a
    /// thousand tasks must not walk every run).
    usage: std::sync::OnceLock<UsageTotals>,
}

impl Slot {
    /// The sum of the usage of the slot's runs.
    pub fn usage_totals(&self) -> &UsageTotals {
        self.usage
            .get_or_init(|| UsageTotals::of(self.runs.values().filter_map(|r| r.usage.as_deref())))
    }

    fn recompute_activity(&mut self) {
        self.last_activity_ns = self.runs.values().map(Run::activity_ns).max().unwrap_or(0);
    }
}

/// Where a run lives: its `runs/` directory, the project and task it is listed under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SlotKey {
    pub runs_dir: Arc<Path>,
    pub project: Arc<str>,
    pub task: Arc<str>,
}

/// The run facts a task listing needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskRuns {
    /// Number of runs.
    pub run_count: usize,
    /// The newest run (highest run id) and its status.
    pub newest: Option<(String, RunStatus)>,
    /// Whether any run is `running`.
    pub any_running: bool,
    /// The latest start or end time of any run (ns since the epoch).
    pub last_activity_ns: Option<i64>,
    /// The sum of the runs' usage (child runs live in the same task, so they count).
    pub usage: UsageTotals,
}

/// A run of a listing page.
#[derive(Debug, Clone)]
pub(crate) struct PageEntry {
    pub run_id: String,
    pub slot: usize,
    pub status: RunStatus,
}

/// Everything the index holds.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub slots: Vec<Slot>,
    by_key: HashMap<SlotKey, usize>,
    by_task: HashMap<(Arc<str>, Arc<str>), Vec<usize>>,
    by_runs_dir: HashMap<Arc<Path>, Vec<usize>>,
    counts: [usize; 5],
    names: HashSet<Arc<str>>,
    len: usize,
}

fn status_slot(status: RunStatus) -> usize {
    match status {
        RunStatus::Running => 0,
        RunStatus::Completed => 1,
        RunStatus::Failed => 2,
        RunStatus::Stopped => 3,
        RunStatus::Unknown => 4,
    }
}

const STATUSES: [RunStatus; 5] = [
    RunStatus::Running,
    RunStatus::Completed,
    RunStatus::Failed,
    RunStatus::Stopped,
    RunStatus::Unknown,
];

/// The result of putting a run into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upsert {
    /// The run was not known.
    Created,
    /// The run's status changed.
    Status,
    /// Nothing a listener cares about changed.
    Same,
}

impl Store {
    /// Number of runs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Interns a string used by many runs (agent names, project and task ids).
    pub fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(known) = self.names.get(text) {
            return known.clone();
        }
        let new: Arc<str> = Arc::from(text);
        self.names.insert(new.clone());
        new
    }

    fn slot_for(&mut self, key: SlotKey) -> usize {
        if let Some(&i) = self.by_key.get(&key) {
            return i;
        }
        let i = self.slots.len();
        self.slots.push(Slot {
            runs_dir: key.runs_dir.clone(),
            project: key.project.clone(),
            task: key.task.clone(),
            runs: BTreeMap::new(),
            running: 0,
            changing: 0,
            last_activity_ns: 0,
            usage: std::sync::OnceLock::new(),
        });
        self.by_task
            .entry((key.project.clone(), key.task.clone()))
            .or_default()
            .push(i);
        self.by_runs_dir
            .entry(key.runs_dir.clone())
            .or_default()
            .push(i);
        self.by_key.insert(key, i);
        i
    }

    /// The slot and record of the run `run_id` in `runs_dir`, if known.
    pub fn get(&self, runs_dir: &Path, run_id: &str) -> Option<(usize, &Run)> {
        self.by_runs_dir
            .get(runs_dir)?
            .iter()
            .find_map(|&i| self.slots[i].runs.get(run_id).map(|r| (i, r)))
    }

    /// Puts a run under `key`, removing it from another slot of the same `runs/` directory
    /// (a flat run whose record now names another task).
    pub fn upsert(&mut self, key: SlotKey, run_id: &str, run: Run) -> Upsert {
        let target = self.slot_for(key);
        let runs_dir = self.slots[target].runs_dir.clone();
        let moved = match self.get(&runs_dir, run_id) {
            Some((i, _)) if i != target => self.remove_from(i, run_id),
            _ => None,
        };
        let status = run.status;
        let changing = run.changing();
        let activity = run.activity_ns();
        let slot = &mut self.slots[target];
        slot.usage = std::sync::OnceLock::new();
        let replaced = slot.runs.insert(run_id.into(), run);
        if status == RunStatus::Running {
            slot.running += 1;
        }
        slot.changing += usize::from(changing);
        let lowered = replaced.as_ref().is_some_and(|old| {
            old.activity_ns() > activity && old.activity_ns() >= slot.last_activity_ns
        });
        if lowered {
            slot.recompute_activity();
        } else {
            slot.last_activity_ns = slot.last_activity_ns.max(activity);
        }
        self.counts[status_slot(status)] += 1;
        match &replaced {
            Some(old) => {
                self.counts[status_slot(old.status)] -= 1;
                if old.status == RunStatus::Running {
                    slot.running -= 1;
                }
                slot.changing -= usize::from(old.changing());
            }
            None => self.len += 1,
        }
        match replaced.or(moved) {
            None => Upsert::Created,
            Some(old) if old.status == status => Upsert::Same,
            Some(_) => Upsert::Status,
        }
    }

    fn remove_from(&mut self, slot: usize, run_id: &str) -> Option<Run> {
        let run = self.slots[slot].runs.remove(run_id)?;
        self.slots[slot].usage = std::sync::OnceLock::new();
        if run.status == RunStatus::Running {
            self.slots[slot].running -= 1;
        }
        self.slots[slot].changing -= usize::from(run.changing());
        if run.activity_ns() >= self.slots[slot].last_activity_ns {
            self.slots[slot].recompute_activity();
        }
        self.counts[status_slot(run.status)] -= 1;
        self.len -= 1;
        Some(run)
    }

    /// Forgets the run directory `runs_dir/run_id`.
    pub fn remove(&mut self, runs_dir: &Path, run_id: &str) {
        if let Some((i, _)) = self.get(runs_dir, run_id) {
            self.remove_from(i, run_id);
        }
    }

    /// Keeps only the runs whose directory `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&Path, &str) -> bool) {
        let mut gone = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            for id in slot.runs.keys() {
                if !keep(&slot.runs_dir, id) {
                    gone.push((i, id.clone()));
                }
            }
        }
        for (i, id) in gone {
            self.remove_from(i, &id);
        }
    }

    /// Runs by status.
    pub fn counts(&self) -> BTreeMap<RunStatus, usize> {
        STATUSES
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| (*s, n))
            .collect()
    }

    /// The directories of the runs whose record is expected to change (see [`Run::changing`]).
    pub fn changing_dirs(&self) -> HashSet<PathBuf> {
        self.slots
            .iter()
            .filter(|s| s.changing > 0)
            .flat_map(|s| {
                s.runs
                    .iter()
                    .filter(|(_, r)| r.changing())
                    .map(|(id, _)| s.runs_dir.join(&**id))
            })
            .collect()
    }

    /// The directories of `running` runs with their liveness fields.
    pub fn running(&self) -> Vec<(PathBuf, i32, i32, Option<u64>)> {
        self.slots
            .iter()
            .filter(|s| s.running > 0)
            .flat_map(|s| {
                s.runs
                    .iter()
                    .filter(|(_, r)| r.status == RunStatus::Running)
                    .map(|(id, r)| (s.runs_dir.join(&**id), r.pid, r.pgid, r.pid_start_time))
            })
            .collect()
    }

    /// The directories of the `running` runs of task `project/task`.
    pub fn running_of(&self, project: &str, task: &str) -> Vec<PathBuf> {
        self.slots_of(Some(project), Some(task))
            .into_iter()
            .map(|i| &self.slots[i])
            .filter(|s| s.running > 0)
            .flat_map(|s| {
                s.runs
                    .iter()
                    .filter(|(_, r)| r.status == RunStatus::Running)
                    .map(|(id, _)| s.runs_dir.join(&**id))
            })
            .collect()
    }

    /// The run facts of task `project/task` over every slot that lists runs under it.
    pub fn task_runs(&self, project: &str, task: &str) -> TaskRuns {
        let key: (Arc<str>, Arc<str>) = (Arc::from(project), Arc::from(task));
        let mut out = TaskRuns::default();
        for &i in self.by_task.get(&key).map(Vec::as_slice).unwrap_or(&[]) {
            let slot = &self.slots[i];
            out.run_count += slot.runs.len();
            out.any_running |= slot.running > 0;
            if let Some((id, run)) = slot.runs.last_key_value() {
                if out.newest.as_ref().is_none_or(|(n, _)| **id > **n) {
                    out.newest = Some((id.to_string(), run.status));
                }
            }
            let latest = Some(slot.last_activity_ns).filter(|t| *t != 0);
            out.last_activity_ns = out.last_activity_ns.max(latest);
            out.usage.merge(slot.usage_totals());
        }
        out
    }

    /// The sum of the usage of `project`'s runs (all runs when `None`).
    pub fn usage_of(&self, project: Option<&str>) -> UsageTotals {
        let mut totals = UsageTotals::default();
        for i in self.slots_of(project, None) {
            totals.merge(self.slots[i].usage_totals());
        }
        totals
    }

    /// The sum of every run's usage by agent type and model (`""` when unknown).
    pub fn usage_by_agent_model(&self) -> BTreeMap<(String, String), UsageTotals> {
        let mut out: BTreeMap<(String, String), UsageTotals> = BTreeMap::new();
        for slot in &self.slots {
            for run in slot.runs.values() {
                let Some(usage) = run.usage.as_deref() else {
                    continue;
                };
                let key = (
                    run.agent.as_deref().unwrap_or("").to_string(),
                    usage.model.clone().unwrap_or_default(),
                );
                out.entry(key).or_default().add(usage);
            }
        }
        out
    }

    /// The slot ids of `project` (all slots when `None`) and `task`.
    fn slots_of(&self, project: Option<&str>, task: Option<&str>) -> Vec<usize> {
        match (project, task) {
            (Some(p), Some(t)) => self
                .by_task
                .get(&(Arc::from(p), Arc::from(t)))
                .cloned()
                .unwrap_or_default(),
            _ => (0..self.slots.len())
                .filter(|&i| {
                    let s = &self.slots[i];
                    project.is_none_or(|p| *s.project == *p) && task.is_none_or(|t| *s.task == *t)
                })
                .collect(),
        }
    }

    /// Up to `limit` runs of `project`/`task` that `keep` accepts, newest (highest run id)
    /// first, strictly before `cursor`: a merge of the slots' ordered runs.
    pub fn page(
        &self,
        project: Option<&str>,
        task: Option<&str>,
        keep: impl Fn(&Run) -> bool,
        cursor: Option<&str>,
        limit: usize,
    ) -> Vec<PageEntry> {
        let upper = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        let mut iters: Vec<_> = self
            .slots_of(project, task)
            .into_iter()
            .map(|i| {
                (
                    i,
                    self.slots[i]
                        .runs
                        .range::<str, _>((Bound::Unbounded, upper))
                        .rev(),
                )
            })
            .collect();
        let mut heads: Vec<Option<&Run>> = vec![None; iters.len()];
        let mut heap = BinaryHeap::new();
        for (pos, (_, it)) in iters.iter_mut().enumerate() {
            if let Some((id, run)) = it.next() {
                heads[pos] = Some(run);
                heap.push((&**id, pos));
            }
        }
        let mut out = Vec::new();
        while let Some((id, pos)) = heap.pop() {
            if let Some(run) = heads[pos].filter(|run| keep(run)) {
                out.push(PageEntry {
                    run_id: id.to_string(),
                    slot: iters[pos].0,
                    status: run.status,
                });
                if out.len() >= limit {
                    break;
                }
            }
            heads[pos] = None;
            if let Some((next, run)) = iters[pos].1.next() {
                heads[pos] = Some(run);
                heap.push((&**next, pos));
            }
        }
        out
    }

    /// The directory of a run named `run_id` in any slot.
    pub fn find(&self, run_id: &str) -> Option<PathBuf> {
        self.slots
            .iter()
            .find(|s| s.runs.contains_key(run_id))
            .map(|s| s.runs_dir.join(run_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: RunStatus, start: i64) -> Run {
        Run {
            status,
            start_ns: start,
            ..Run::unknown()
        }
    }

    fn key(store: &mut Store, dir: &str, p: &str, t: &str) -> SlotKey {
        SlotKey {
            runs_dir: Arc::from(Path::new(dir)),
            project: store.intern(p),
            task: store.intern(t),
        }
    }

    #[test]
    fn pages_merge_slots_newest_first_and_counts_follow_changes() {
        let mut s = Store::default();
        let a = key(&mut s, "/r/p/a/runs", "p", "a");
        let b = key(&mut s, "/r/p/b/runs", "p", "b");
        assert_eq!(
            s.upsert(a.clone(), "r1", run(RunStatus::Completed, 1)),
            Upsert::Created
        );
        s.upsert(b.clone(), "r2", run(RunStatus::Running, 2));
        s.upsert(a.clone(), "r3", run(RunStatus::Failed, 3));
        s.upsert(b.clone(), "r4", run(RunStatus::Completed, 4));
        let ids = |page: Vec<PageEntry>| page.into_iter().map(|e| e.run_id).collect::<Vec<_>>();
        assert_eq!(
            ids(s.page(None, None, |_| true, None, 10)),
            ["r4", "r3", "r2", "r1"]
        );
        assert_eq!(ids(s.page(None, None, |_| true, Some("r3"), 1)), ["r2"]);
        assert_eq!(
            ids(s.page(Some("p"), Some("a"), |_| true, None, 10)),
            ["r3", "r1"]
        );
        assert_eq!(
            ids(s.page(None, None, |r| r.status == RunStatus::Completed, None, 10)),
            ["r4", "r1"]
        );
        assert_eq!(s.counts()[&RunStatus::Running], 1);
        let b_runs = s.task_runs("p", "b");
        assert!(b_runs.any_running);
        assert_eq!(b_runs.newest, Some(("r4".into(), RunStatus::Completed)));
        assert_eq!(b_runs.last_activity_ns, Some(4));
        assert_eq!(
            s.upsert(b.clone(), "r2", run(RunStatus::Failed, 2)),
            Upsert::Status
        );
        assert!(!s.task_runs("p", "b").any_running);
        assert_eq!(s.counts().get(&RunStatus::Running), None);
        s.remove(Path::new("/r/p/a/runs"), "r3");
        assert_eq!(s.len(), 3);
        assert_eq!(s.find("r4"), Some(PathBuf::from("/r/p/b/runs/r4")));
        s.retain(|_, id| id != "r4");
        assert_eq!(ids(s.page(None, None, |_| true, None, 10)), ["r2", "r1"]);
        // The kept last activity follows removals and rewrites, down as well as up.
        assert_eq!(s.task_runs("p", "b").last_activity_ns, Some(2));
        s.upsert(b.clone(), "r2", run(RunStatus::Failed, 1));
        assert_eq!(s.task_runs("p", "b").last_activity_ns, Some(1));
        s.upsert(b.clone(), "r5", run(RunStatus::Failed, 7));
        assert_eq!(s.task_runs("p", "b").last_activity_ns, Some(7));
        assert_eq!(s.task_runs("p", "zzz"), TaskRuns::default());
    }

    #[test]
    fn a_flat_run_moves_when_its_record_names_another_task() {
        let mut s = Store::default();
        let one = key(&mut s, "/extra/runs", "p", "one");
        let two = key(&mut s, "/extra/runs", "p", "two");
        s.upsert(one, "r1", run(RunStatus::Completed, 1));
        assert_eq!(
            s.upsert(two, "r1", run(RunStatus::Completed, 1)),
            Upsert::Same
        );
        assert_eq!(s.len(), 1);
        assert_eq!(s.task_runs("p", "one").run_count, 0);
        assert_eq!(s.task_runs("p", "two").run_count, 1);
    }
}
