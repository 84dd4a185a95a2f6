//! Crash-safe, symlink-safe removal of a directory inside the tree.
//!
//! A victim is first renamed aside to a hidden sibling `.gc-deleting-<pid>-<name>` (a leading
//! `.` is never a valid id, so listings skip it) and only then removed, its run-info.yaml
//! first. A crash halfway thus never leaves a half-deleted run that still looks like a run:
//! either the rename is durable (a hidden leftover, removed by the next gc) or, on a file
//! system that reorders metadata updates, the directory is back under its name but without
//! run-info.yaml (listed as a run with a missing record, never as a wrong one). This costs no
//! fsync per run, which matters at 100,000 runs.
//! Removal never follows symlinks: a symlink is unlinked as a link, never its target.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::error::GcError;
use crate::storage::paths::RUN_INFO_FILE;

/// Prefix of directories being deleted (or left over by a gc that crashed).
pub const ASIDE_PREFIX: &str = ".gc-deleting-";

/// The hidden name a directory called `name` is renamed to before removal.
pub fn aside_name(name: &str) -> String {
    format!("{ASIDE_PREFIX}{}-{name}", std::process::id())
}

/// Whether `name` is an aside directory name.
pub fn is_aside(name: &str) -> bool {
    name.starts_with(ASIDE_PREFIX)
}

/// Whether the aside dir `name` belongs to another gc process that is still alive (then it
/// is that process's job to finish removing it).
pub fn owned_by_live_gc(name: &str) -> bool {
    let Some(pid) = name
        .strip_prefix(ASIDE_PREFIX)
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(pid, _)| pid.parse::<i32>().ok())
    else {
        return false;
    };
    if pid <= 0 || pid.unsigned_abs() == std::process::id() {
        return false;
    }
    crate::process::pid_alive(i64::from(pid))
}

/// Total length of the regular files under `path` (symlinks are not followed or counted).
pub fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    dir_size(path)
}

/// Bytes of the regular files under `dir`, known to be a directory (listed as one): like
/// [`tree_size`] without stat-ing `dir` itself. Symlinks below it are not followed.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => dir_size(&entry.path()),
            Ok(t) if t.is_file() => entry.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Renames the real directory `dir` (not a symlink) aside, next to itself, and returns the
/// new path. Nothing is removed yet.
pub fn move_aside(dir: &Path) -> Result<PathBuf, GcError> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| GcError::io("inspect", dir, e))?;
    if !meta.is_dir() {
        return Err(GcError::Refused {
            op: "delete",
            path: dir.to_path_buf(),
            reason: "it is not a directory (symlinks are never followed)",
        });
    }
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(GcError::Refused {
            op: "delete",
            path: dir.to_path_buf(),
            reason: "it has no parent directory",
        });
    };
    let base = aside_name(&name.to_string_lossy());
    let mut target = parent.join(&base);
    let mut n = 0;
    while std::fs::symlink_metadata(&target).is_ok() {
        n += 1;
        target = parent.join(format!("{base}.{n}"));
    }
    std::fs::rename(dir, &target).map_err(|e| GcError::io("rename aside", dir, e))?;
    Ok(target)
}

/// Removes a run directory already moved aside: its run-info.yaml first, then the rest.
pub fn remove_run_dir(aside: &Path) -> Result<(), GcError> {
    let info = aside.join(RUN_INFO_FILE);
    match std::fs::remove_file(&info) {
        Err(e) if !matches!(e.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory) => {
            return Err(GcError::io("remove", info, e))
        }
        _ => {}
    }
    remove_tree(aside)
}

/// Removes `path`: a directory recursively (std's `remove_dir_all` never follows symlinks),
/// anything else (a symlink included) by unlinking it. A path already gone is not an error.
pub fn remove_tree(path: &Path) -> Result<(), GcError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(GcError::io("inspect", path, e)),
    };
    let result = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(GcError::io("remove", path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aside_names_and_owners() {
        let name = aside_name("20260101-1200000000-1-1");
        assert!(is_aside(&name));
        assert!(
            !owned_by_live_gc(&name),
            "our own leftovers are ours to remove"
        );
        assert!(!owned_by_live_gc(".gc-deleting-notapid-x"));
        assert!(owned_by_live_gc(".gc-deleting-1-x"), "pid 1 is alive");
    }

    #[test]
    fn moves_aside_then_removes_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep.txt"), "keep").unwrap();
        let victim = dir.path().join("run-1");
        std::fs::create_dir_all(victim.join("sub")).unwrap();
        std::fs::write(victim.join("sub/a.txt"), "12345").unwrap();
        std::os::unix::fs::symlink(outside.path(), victim.join("link")).unwrap();
        assert_eq!(tree_size(&victim), 5);

        let aside = move_aside(&victim).unwrap();
        assert!(!victim.exists());
        assert!(aside
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(ASIDE_PREFIX));
        remove_tree(&aside).unwrap();
        assert!(!aside.exists());
        assert!(outside.path().join("keep.txt").exists());
        remove_tree(&aside).unwrap();

        let link = dir.path().join("linked-run");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        assert!(matches!(move_aside(&link), Err(GcError::Refused { .. })));
        remove_tree(&link).unwrap();
        assert!(outside.path().join("keep.txt").exists());
    }
}
