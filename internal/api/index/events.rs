//! Mapping file-change notifications to the run directories they touch.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::storage::paths::RUNS_DIR;

/// Adds the run directories `event` touches to `dirs`; structural changes above run level
/// (a task or project removed or renamed) ask for a rescan.
pub(super) fn collect(
    event: notify::Result<notify::Event>,
    dirs: &mut HashSet<PathBuf>,
    rescan: &mut bool,
) {
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
