//! Mapping file-change notifications to the run directories they touch.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::storage::paths::RUNS_DIR;

/// What a batch of notifications asks the index to do.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// Run directories to re-read.
    pub dirs: HashSet<PathBuf>,
    /// A directory above run level appeared (a project, task or `runs/`): watch it.
    pub structure: bool,
    /// Something above run level was removed or renamed (or events were lost): rescan.
    pub rescan: bool,
}

/// Adds what `event` asks for to `batch`: the run directories it touches; a directory
/// created above run level asks for new watches, a removal or rename there for a rescan.
/// `compat` is the root's compat `runs/` directory, whose entries are projects, not runs.
/// An event flagged `need_rescan` (events were lost) asks for a rescan.
pub(super) fn collect(event: crate::storage::watch::Event, compat: &Path, batch: &mut Batch) {
    use notify::event::{CreateKind, ModifyKind};
    use notify::EventKind;
    if event.need_rescan() {
        batch.rescan = true;
        return;
    }
    for path in event.paths {
        match run_dir_of(&path, compat) {
            // Only its record and the directory itself matter to the index, not the logs a
            // running agent appends to many times a second.
            Some(dir)
                if path == dir || path.parent() == Some(dir.as_path()) && is_record(&path) =>
            {
                batch.dirs.insert(dir);
            }
            Some(_) => {}
            None => match event.kind {
                EventKind::Create(CreateKind::Folder | CreateKind::Any) => batch.structure = true,
                EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)) => {
                    batch.structure = true;
                    batch.rescan = true;
                }
                _ => {}
            },
        }
    }
}

/// Whether `path` names a run's record (written by rename, so the event names it too).
fn is_record(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n == crate::storage::paths::RUN_INFO_FILE)
}

/// `…/runs/<run>` for a path at or below a run directory (a project under the root's compat
/// `runs/` directory `compat` is not a run).
fn run_dir_of(path: &Path, compat: &Path) -> Option<PathBuf> {
    let mut current = path;
    loop {
        let parent = current.parent()?;
        if parent.file_name().is_some_and(|n| n == RUNS_DIR) && parent != compat {
            return Some(current.to_path_buf());
        }
        current = parent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "20260101-0000000000-1-1";
    const COMPAT: &str = "/r/runs";

    fn batch_of(kind: notify::EventKind, path: &str) -> Batch {
        let mut batch = Batch::default();
        let event = crate::storage::watch::Event::new(kind).add_path(PathBuf::from(path));
        collect(event, Path::new(COMPAT), &mut batch);
        batch
    }

    #[test]
    fn only_a_runs_record_and_directory_refresh_it() {
        use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind};
        use notify::EventKind;
        let run_dir = PathBuf::from(format!("/r/p/t/runs/{RUN}"));
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let record = batch_of(write, &format!("/r/p/t/runs/{RUN}/run-info.yaml"));
        assert_eq!(record.dirs, HashSet::from([run_dir.clone()]));
        let created = batch_of(
            EventKind::Create(CreateKind::Folder),
            &format!("/r/p/t/runs/{RUN}"),
        );
        assert_eq!(created.dirs, HashSet::from([run_dir]));
        for log in ["stdout.txt", "stderr.txt", "output.md"] {
            let batch = batch_of(write, &format!("/r/p/t/runs/{RUN}/{log}"));
            assert!(
                batch.dirs.is_empty() && !batch.rescan && !batch.structure,
                "{log}"
            );
        }
        let removed = batch_of(
            EventKind::Remove(RemoveKind::File),
            &format!("/r/p/t/runs/{RUN}/stdout.txt"),
        );
        assert!(!removed.rescan, "a file removed inside a run is no rescan");
    }

    #[test]
    fn run_dir_of_paths() {
        assert_eq!(
            run_dir_of(
                Path::new(&format!("/r/p/t/runs/{RUN}/run-info.yaml")),
                Path::new(COMPAT)
            ),
            Some(PathBuf::from(format!("/r/p/t/runs/{RUN}")))
        );
        assert_eq!(
            run_dir_of(Path::new(&format!("/r/p/t/runs/{RUN}")), Path::new(COMPAT)),
            Some(PathBuf::from(format!("/r/p/t/runs/{RUN}")))
        );
        assert_eq!(
            run_dir_of(Path::new("/r/p/t/TASK.md"), Path::new(COMPAT)),
            None
        );
        assert_eq!(
            run_dir_of(Path::new("/r/runs/project"), Path::new(COMPAT)),
            None
        );
        assert_eq!(
            run_dir_of(
                Path::new(&format!("/r/runs/p/t/runs/{RUN}")),
                Path::new(COMPAT)
            ),
            Some(PathBuf::from(format!("/r/runs/p/t/runs/{RUN}")))
        );
    }
}
