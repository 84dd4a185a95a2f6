//! The polling fallback: what a watched path looks like (a [`Snapshot`] of its entries'
//! inode, size and modification time), and the notifications that two snapshots differ by,
//! shaped like the ones inotify would have sent.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use notify::event::{CreateKind, ModifyKind, RemoveKind};
use notify::{Event, EventKind};

/// Most entries a recursive snapshot looks at (a larger tree is compared by its first ones;
/// the callers' own periodic re-check covers the rest).
const MAX_ENTRIES: usize = 20_000;

/// What one entry looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
    is_dir: bool,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            is_dir: meta.is_dir(),
        }
    }
}

/// The entries of a watched path (the path itself, and for a directory its entries, all the
/// way down when `recursive`), by path. Symlinks are not followed. Empty when it is missing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Snapshot(BTreeMap<PathBuf, Stamp>);

impl Snapshot {
    /// Looks at `path` now.
    pub fn take(path: &Path, recursive: bool) -> Self {
        let mut out = BTreeMap::new();
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return Self(out);
        };
        out.insert(path.to_path_buf(), Stamp::of(&meta));
        if meta.is_dir() {
            let mut dirs = vec![path.to_path_buf()];
            while let Some(dir) = dirs.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    if out.len() >= MAX_ENTRIES {
                        return Self(out);
                    }
                    let Ok(meta) = entry.metadata() else {
                        continue; // removed meanwhile
                    };
                    let stamp = Stamp::of(&meta);
                    if recursive && stamp.is_dir {
                        dirs.push(entry.path());
                    }
                    out.insert(entry.path(), stamp);
                }
            }
        }
        Self(out)
    }

    /// The notifications that lead from `self` to `now`: one per entry created, changed or
    /// removed.
    pub fn changes(&self, now: &Snapshot) -> Vec<Event> {
        let mut out = Vec::new();
        for (path, stamp) in &now.0 {
            let kind = match self.0.get(path) {
                None if stamp.is_dir => EventKind::Create(CreateKind::Folder),
                None => EventKind::Create(CreateKind::File),
                Some(old) if old.ino != stamp.ino => EventKind::Create(if stamp.is_dir {
                    CreateKind::Folder
                } else {
                    CreateKind::File
                }),
                Some(old) if old != stamp => EventKind::Modify(ModifyKind::Any),
                Some(_) => continue,
            };
            out.push(Event::new(kind).add_path(path.clone()));
        }
        for (path, stamp) in &self.0 {
            if !now.0.contains_key(path) {
                let kind = if stamp.is_dir {
                    RemoveKind::Folder
                } else {
                    RemoveKind::File
                };
                out.push(Event::new(EventKind::Remove(kind)).add_path(path.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(events: &[Event]) -> Vec<(EventKind, String)> {
        events
            .iter()
            .map(|e| {
                let name = e.paths[0]
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                (e.kind, name)
            })
            .collect()
    }

    #[test]
    fn changes_name_created_modified_and_removed_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("grows"), "a").unwrap();
        std::fs::write(dir.path().join("goes"), "a").unwrap();
        let before = Snapshot::take(dir.path(), false);
        assert_eq!(before.changes(&Snapshot::take(dir.path(), false)), vec![]);
        std::fs::write(dir.path().join("grows"), "ab").unwrap();
        std::fs::remove_file(dir.path().join("goes")).unwrap();
        std::fs::create_dir(dir.path().join("new")).unwrap();
        let after = Snapshot::take(dir.path(), false);
        let got = kinds(&before.changes(&after));
        assert!(got.contains(&(EventKind::Modify(ModifyKind::Any), "grows".into())));
        assert!(got.contains(&(EventKind::Remove(RemoveKind::File), "goes".into())));
        assert!(got.contains(&(EventKind::Create(CreateKind::Folder), "new".into())));
    }

    #[test]
    fn recursive_snapshots_see_nested_files_and_flat_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let flat = Snapshot::take(dir.path(), false);
        let deep = Snapshot::take(dir.path(), true);
        std::fs::write(dir.path().join("sub/file"), "x").unwrap();
        let got = kinds(&deep.changes(&Snapshot::take(dir.path(), true)));
        assert!(got.contains(&(EventKind::Create(CreateKind::File), "file".into())));
        // The flat one sees only that sub/ changed (its mtime), not the file inside it.
        let got = kinds(&flat.changes(&Snapshot::take(dir.path(), false)));
        assert!(got.iter().all(|(_, name)| name != "file"), "{got:?}");
    }

    #[test]
    fn a_missing_path_is_empty_and_its_creation_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later");
        let before = Snapshot::take(&path, false);
        assert_eq!(before, Snapshot::default());
        std::fs::write(&path, "x").unwrap();
        assert_eq!(before.changes(&Snapshot::take(&path, false)).len(), 1);
    }
}
