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
            Some(dir) => {
                batch.dirs.insert(dir);
            }
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
