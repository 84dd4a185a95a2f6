//! Counting active root runs: what a drain waits for.

use std::path::{Path, PathBuf};

use crate::storage::scan::{scan_all_runs, scan_flat_roots, Reconcile};
use crate::storage::RunStatus;

/// Runs under `root` (and the read-only `extra_roots`) that are `running`, whose process is
/// alive, and that were not spawned by another run. Stale records under `root` are
/// reconciled while scanning; extra roots are only read.
pub fn active_root_runs(root: &Path, extra_roots: &[PathBuf]) -> usize {
    let mut runs = scan_all_runs(root, &[], Reconcile::Yes);
    runs.extend(scan_flat_roots(extra_roots, Reconcile::No));
    runs.iter()
        .filter_map(|entry| entry.info.as_ref().ok())
        .filter(|info| info.status == RunStatus::Running)
        .filter(|info| info.recorded_process().alive())
        .filter(|info| info.parent_run_id.as_deref().is_none_or(str::is_empty))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RunInfo;

    fn write_run(root: &Path, run: &str, pid: i64, parent: Option<&str>) {
        let dir = root.join("proj").join("task-1").join("runs").join(run);
        std::fs::create_dir_all(&dir).unwrap();
        let mut info = RunInfo::new_running(run, "proj", "task-1", "fake", chrono::Utc::now());
        info.pid = pid;
        info.pgid = pid;
        info.pid_start_time = crate::process::start_time(pid);
        info.parent_run_id = parent.map(str::to_string);
        info.write(&dir.join("run-info.yaml")).unwrap();
    }

    #[test]
    fn counts_live_root_runs_only() {
        let dir = tempfile::tempdir().unwrap();
        let me = i64::from(std::process::id());
        write_run(dir.path(), "20260101-0000000000-1-aaaa", me, None);
        write_run(dir.path(), "20260101-0000000000-2-bbbb", me, Some("x"));
        assert_eq!(active_root_runs(dir.path(), &[]), 1);
    }
}
