//! The path of the running executable, for starting supervisors and for self-update.

use std::io;
use std::path::{Path, PathBuf};

/// Linux names the executable of a process whose file was replaced or removed `<path> (deleted)`.
const DELETED_SUFFIX: &str = " (deleted)";

/// [`std::env::current_exe`], except that when the file this process runs was replaced on disk
/// (a package upgrade, a rebuild), the path where the new file now is. Starting a supervisor
/// from `… (deleted)` would fail for every run until the server restarts.
pub fn current_exe() -> io::Result<PathBuf> {
    Ok(live_path(std::env::current_exe()?))
}

fn live_path(exe: PathBuf) -> PathBuf {
    let Some(text) = exe.to_str() else {
        return exe;
    };
    match text.strip_suffix(DELETED_SUFFIX).map(Path::new) {
        Some(replaced) if replaced.is_file() => replaced.to_path_buf(),
        _ => exe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_binary_is_found_at_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("run-agent");
        let deleted = PathBuf::from(format!("{} (deleted)", bin.display()));
        assert_eq!(live_path(deleted.clone()), deleted, "nothing there yet");
        std::fs::write(&bin, "new build").unwrap();
        assert_eq!(live_path(deleted), bin);
        assert_eq!(live_path(bin.clone()), bin);
    }
}
