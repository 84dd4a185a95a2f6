//! Live-run markers: an empty hidden file `.running-<run>` next to the run directories of a
//! task (`<task>/runs/`), created when a run starts and removed when its supervisor has
//! written the final record. A task listing that reads only the newest run directory learns
//! from the `runs/` listing it already reads which older runs may still be running, and reads
//! those too — so a parent run still running behind a newer finished run (a child, or a
//! concurrent job) keeps its task `running`.
//!
//! A marker is a hint, never the status: the run's run-info.yaml (with liveness reconciliation)
//! decides. A marker left behind by a supervisor that died costs one extra read until a reader
//! finds the run ended and removes it.

use std::path::{Path, PathBuf};

/// The prefix of a marker's file name; the rest is the run id.
pub const LIVE_MARKER_PREFIX: &str = ".running-";

/// The marker of the run directory `run_dir` (`None` for a path without a parent or name).
pub fn marker_path(run_dir: &Path) -> Option<PathBuf> {
    let runs_dir = run_dir.parent()?;
    let run_id = run_dir.file_name()?.to_str()?;
    Some(runs_dir.join(format!("{LIVE_MARKER_PREFIX}{run_id}")))
}

/// Marks the run in `run_dir` live. Failing to is logged, not fatal: listings then see the
/// run only while it is the task's newest.
pub fn mark(run_dir: &Path) {
    let Some(path) = marker_path(run_dir) else {
        return;
    };
    if let Err(err) = std::fs::File::create(&path) {
        tracing::warn!(path = %path.display(), "cannot write the live-run marker: {err}");
    }
}

/// Removes the live marker of the run in `run_dir` (absent is fine).
pub fn unmark(run_dir: &Path) {
    let Some(path) = marker_path(run_dir) else {
        return;
    };
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            tracing::warn!(path = %path.display(), "cannot remove the live-run marker: {err}")
        }
    }
}

/// The run id a `runs/` entry named `name` marks live, if it is a marker.
pub fn marked_run(name: &str) -> Option<&str> {
    name.strip_prefix(LIVE_MARKER_PREFIX)
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_and_unmark_a_run() {
        let root = tempfile::tempdir().unwrap();
        let run_dir = root.path().join("runs").join("20260101-0000000000-1-1");
        std::fs::create_dir_all(&run_dir).unwrap();
        mark(&run_dir);
        let marker = root.path().join("runs/.running-20260101-0000000000-1-1");
        assert!(marker.is_file());
        assert_eq!(
            marked_run(".running-20260101-0000000000-1-1"),
            Some("20260101-0000000000-1-1")
        );
        assert_eq!(marked_run("20260101-0000000000-1-1"), None);
        assert_eq!(marked_run(".running-"), None);
        unmark(&run_dir);
        assert!(!marker.exists());
        unmark(&run_dir);
    }
}
