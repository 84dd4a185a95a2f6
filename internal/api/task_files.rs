//! Which marker files of a task directory certainly do not exist, remembered between listings.
//!
//! A task line of a listing needs the task's `DONE`, `TASK-CONFIG.yaml`, `.loop.lock` and
//! `BUDGET-EXCEEDED`. Looking each one up costs four path lookups per task, most of them
//! answering "no such file"; for a project of 1,000 tasks that was most of the listing. Creating,
//! removing or renaming a file changes its directory's ctime, so while a task directory's
//! identity and ctime stay the same, a name that was absent is still absent. The cache
//! remembers the absent names per directory under that stamp; a listing then costs one `stat`
//! of each task directory, and reads only the files that exist (their content can change in
//! place and is always read).
//!
//! Timestamps have a coarse granularity: a file created in the same clock tick as the stamp
//! was taken would leave the ctime unchanged. A stamp younger than [`SETTLED_AFTER`] is
//! therefore never trusted (the directory is listed again), as git does for "racily clean"
//! index entries.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::runner::budget::EXCEEDED_FILE;
use crate::storage::paths::{DONE_FILE, TASK_CONFIG_FILE, TASK_LOOP_LOCK_FILE};

/// How old a directory's last change must be before its listing is remembered.
pub const SETTLED_AFTER: Duration = Duration::from_secs(1);

/// Remembered directories at most (beyond it the cache starts over).
const MAX_ENTRIES: usize = 200_000;

/// The marker files of a task directory a listing looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `DONE`.
    Done,
    /// `TASK-CONFIG.yaml`.
    Config,
    /// `.loop.lock`.
    LoopLock,
    /// `BUDGET-EXCEEDED`.
    Budget,
}

impl Marker {
    const ALL: [Marker; 4] = [
        Marker::Done,
        Marker::Config,
        Marker::LoopLock,
        Marker::Budget,
    ];

    fn file_name(self) -> &'static str {
        match self {
            Marker::Done => DONE_FILE,
            Marker::Config => TASK_CONFIG_FILE,
            Marker::LoopLock => TASK_LOOP_LOCK_FILE,
            Marker::Budget => EXCEEDED_FILE,
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Which markers of one task directory may exist (a clear bit: certainly absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Present(u8);

impl Present {
    /// Nothing known: every marker may exist (each one is looked up).
    pub const UNKNOWN: Present = Present(0b1111);

    /// Whether `marker` may exist (`false`: it certainly does not).
    pub fn may_have(self, marker: Marker) -> bool {
        self.0 & marker.bit() != 0
    }
}

/// A directory's identity and last change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    ctime_s: i64,
    ctime_ns: i64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            ctime_s: meta.ctime(),
            ctime_ns: meta.ctime_nsec(),
        }
    }

    /// Whether the last change is at least [`SETTLED_AFTER`] before `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let changed = Duration::new(
            self.ctime_s.max(0) as u64,
            self.ctime_ns.clamp(0, 999_999_999) as u32,
        );
        changed + SETTLED_AFTER <= now
    }
}

/// Per task directory: the stamp and which markers were present under it.
#[derive(Debug, Default)]
pub struct TaskFiles {
    entries: Mutex<HashMap<PathBuf, (Stamp, Present)>>,
}

impl TaskFiles {
    /// Which markers of `task_dir` may exist: from the cache when the directory has not
    /// changed since it was listed, else from a fresh listing (remembered once settled).
    /// [`Present::UNKNOWN`] when the directory cannot be read.
    pub fn present(&self, task_dir: &Path) -> Present {
        let Ok(meta) = std::fs::symlink_metadata(task_dir) else {
            return Present::UNKNOWN;
        };
        let stamp = Stamp::of(&meta);
        let cached = self.lock().get(task_dir).copied();
        if let Some((seen, present)) = cached {
            if seen == stamp {
                return present;
            }
        }
        // Listed after the stamp was taken: a change during the listing changes the ctime, so
        // the next call lists again.
        let Some(present) = list_markers(task_dir) else {
            return Present::UNKNOWN;
        };
        if stamp.settled(SystemTime::now()) {
            let mut entries = self.lock();
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(task_dir.to_path_buf(), (stamp, present));
        }
        present
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (Stamp, Present)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Which markers `task_dir` holds, from one read of the directory.
fn list_markers(task_dir: &Path) -> Option<Present> {
    let mut bits = 0u8;
    for entry in std::fs::read_dir(task_dir).ok()? {
        let Ok(entry) = entry else {
            // An entry that cannot be read could be any of them.
            return None;
        };
        let name = entry.file_name();
        if let Some(marker) = Marker::ALL.into_iter().find(|m| name == m.file_name()) {
            bits |= marker.bit();
        }
    }
    Some(Present(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits until a directory changed now counts as settled (a ctime cannot be set back).
    fn settle() {
        std::thread::sleep(SETTLED_AFTER + Duration::from_millis(50));
    }

    #[test]
    fn absent_markers_are_reported_absent_and_present_ones_present() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DONE_FILE), "").unwrap();
        let files = TaskFiles::default();
        let present = files.present(dir.path());
        assert!(present.may_have(Marker::Done));
        assert!(!present.may_have(Marker::Config));
        assert!(!present.may_have(Marker::LoopLock));
        assert!(!present.may_have(Marker::Budget));
    }

    #[test]
    fn a_created_marker_is_seen_after_the_directory_was_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let files = TaskFiles::default();
        settle();
        assert!(!files.present(dir.path()).may_have(Marker::Done));
        assert_eq!(files.lock().len(), 1, "a settled directory is remembered");
        std::fs::write(dir.path().join(DONE_FILE), "").unwrap();
        assert!(files.present(dir.path()).may_have(Marker::Done));
        std::fs::remove_file(dir.path().join(DONE_FILE)).unwrap();
        std::fs::write(dir.path().join(TASK_LOOP_LOCK_FILE), "").unwrap();
        let present = files.present(dir.path());
        assert!(!present.may_have(Marker::Done));
        assert!(present.may_have(Marker::LoopLock));
    }

    #[test]
    fn a_recently_changed_directory_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let files = TaskFiles::default();
        std::fs::write(dir.path().join("TASK.md"), "x").unwrap();
        files.present(dir.path());
        assert!(files.lock().is_empty());
    }

    #[test]
    fn an_unreadable_directory_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let files = TaskFiles::default();
        assert_eq!(files.present(&dir.path().join("gone")), Present::UNKNOWN);
    }
}
