//! `--rotate-bus`: renaming an oversized message bus to `<bus>.YYYYMMDD-HHMMSS.archived`
//! (UTC) under the bus's own append lock, so no concurrent append is lost.
//!
//! Appenders open the bus with `O_APPEND` and take an exclusive `flock` on that fd before
//! writing. gc takes the same lock on the same file, checks (under the lock) that the path
//! still names the locked file and that it is still oversized, renames it without replacing
//! any existing archive, removes the write bits of the archive (the mark an appender's `fstat`
//! sees, see `bus::append`) and fsyncs the directory before unlocking. An appender that opened
//! the old file before the rename then, under its lock, finds the path naming another file and
//! reopens; without the mark its record could land in the archive (kept, not lost).

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nix::errno::Errno;
use nix::fcntl::{renameat2, RenameFlags};

use super::error::GcError;
use super::report::RotatedBus;
use crate::storage::atomic::sync_dir;
use crate::storage::lock::lock_exclusive;

/// How long gc waits for a bus lock (an appender holds it for one write).
pub const BUS_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The archive name of `bus` rotated at `now`, before collision suffixes.
pub fn archive_name(bus: &Path, now: DateTime<Utc>) -> PathBuf {
    let name = bus
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    bus.with_file_name(format!("{name}.{}.archived", now.format("%Y%m%d-%H%M%S")))
}

/// The `n`-th alternative archive name (`<bus>.<ts>-<n>.archived`) when the plain one exists.
fn alternative(archive: &Path, n: u32) -> PathBuf {
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".archived").unwrap_or(&name);
    archive.with_file_name(format!("{stem}-{n}.archived"))
}

/// Rotates `bus` if it is a regular file larger than `max` bytes. `None` when there is
/// nothing to do (missing, not a regular file, small enough, or rotated by someone else).
/// A dry run only reports the name it would use.
pub fn rotate_bus(
    bus: &Path,
    max: u64,
    now: DateTime<Utc>,
    dry_run: bool,
    timeout: Duration,
) -> Result<Option<RotatedBus>, GcError> {
    let meta = match std::fs::symlink_metadata(bus) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(GcError::io("inspect", bus, e)),
    };
    if !meta.is_file() || meta.len() <= max {
        return Ok(None);
    }
    if dry_run {
        return Ok(Some(RotatedBus {
            path: bus.to_path_buf(),
            archive: free_name(&archive_name(bus, now)),
            bytes: meta.len(),
        }));
    }
    let file = match open_for_append(bus) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(GcError::io("open", bus, e)),
    };
    lock_exclusive(&file, bus, timeout)?;
    let locked = file
        .metadata()
        .map_err(|e| GcError::io("inspect", bus, e))?;
    let same = std::fs::symlink_metadata(bus)
        .map(|now| now.dev() == locked.dev() && now.ino() == locked.ino())
        .unwrap_or(false);
    if !same || locked.len() <= max {
        return Ok(None);
    }
    let archive = rename_no_replace(bus, &archive_name(bus, now))?;
    mark_archived(&file, &locked, &archive);
    let dir = bus.parent().unwrap_or(Path::new("."));
    sync_dir(dir).map_err(|e| GcError::io("fsync", dir, e))?;
    drop(file);
    Ok(Some(RotatedBus {
        path: bus.to_path_buf(),
        archive,
        bytes: locked.len(),
    }))
}

/// Removes the write bits of a just-renamed archive: archives are never written again, and
/// appenders holding the old file take the mode as the sign to re-check the path. A failure
/// (gc running as another user) is only logged: appenders still re-check within milliseconds.
fn mark_archived(file: &File, meta: &std::fs::Metadata, archive: &Path) {
    let mode = meta.mode() & 0o7777 & !0o222;
    if let Err(err) = nix::sys::stat::fchmod(
        std::os::fd::AsRawFd::as_raw_fd(file),
        nix::sys::stat::Mode::from_bits_truncate(mode),
    ) {
        tracing::warn!(archive = %archive.display(), error = %err, "cannot make the rotated bus read-only");
    }
}

/// Opens `bus` for append the way appenders do, without creating it or following a symlink.
fn open_for_append(bus: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(bus)
}

/// The first of `archive`, `<…>-1.archived`, `<…>-2.archived`, … that does not exist.
fn free_name(archive: &Path) -> PathBuf {
    let mut candidate = archive.to_path_buf();
    let mut n = 0;
    while std::fs::symlink_metadata(&candidate).is_ok() {
        n += 1;
        candidate = alternative(archive, n);
    }
    candidate
}

/// Renames `from` to `archive` (or its first free alternative) without ever replacing an
/// existing file: `renameat2(RENAME_NOREPLACE)`, or a hard link plus unlink where the file
/// system does not support that flag.
fn rename_no_replace(from: &Path, archive: &Path) -> Result<PathBuf, GcError> {
    let mut candidate = archive.to_path_buf();
    for n in 1..=10_000 {
        let result = match renameat2(None, from, None, &candidate, RenameFlags::RENAME_NOREPLACE) {
            Err(Errno::EINVAL) | Err(Errno::ENOSYS) => link_then_unlink(from, &candidate),
            other => other.map_err(std::io::Error::from),
        };
        match result {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => candidate = alternative(archive, n),
            Err(e) => return Err(GcError::io("rename", from, e)),
        }
    }
    Err(GcError::Refused {
        op: "rotate",
        path: from.to_path_buf(),
        reason: "every archive name for this second is taken",
    })
}

fn link_then_unlink(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{read_all, AppendOptions, BusWriter, NewMessage};
    use crate::storage::ids::ProjectId;

    fn message(body: &str) -> NewMessage {
        NewMessage::new("FACT", ProjectId::parse("p").unwrap()).body(body)
    }

    #[test]
    fn gc_rotation_right_after_an_append_sends_the_next_one_to_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("b.md");
        let mut writer = BusWriter::new(&bus, AppendOptions::default());
        for round in 0..20 {
            writer.append(&message(&format!("old {round}"))).unwrap();
            let rotated = rotate_bus(&bus, 0, Utc::now(), false, BUS_LOCK_TIMEOUT)
                .unwrap()
                .expect("rotated");
            writer.append(&message(&format!("new {round}"))).unwrap();
            let mode = std::fs::metadata(&rotated.archive).unwrap().mode();
            assert_eq!(mode & 0o222, 0, "archives are read-only: {mode:o}");
            let archived = read_all(&rotated.archive).unwrap();
            let bodies: Vec<_> = archived.iter().map(|m| m.body.as_str()).collect();
            let mut expected = vec![format!("old {round}")];
            if round > 0 {
                expected.insert(0, format!("new {}", round - 1));
            }
            assert_eq!(bodies, expected, "round {round}");
            let live = read_all(&bus).unwrap();
            assert_eq!(live.len(), 1, "round {round}");
            assert_eq!(live[0].body, format!("new {round}"));
        }
    }

    #[test]
    fn rotates_only_oversized_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("TASK-MESSAGE-BUS.md");
        let now = Utc::now();
        assert!(rotate_bus(&bus, 10, now, false, BUS_LOCK_TIMEOUT)
            .unwrap()
            .is_none());
        std::fs::write(&bus, "0123456789").unwrap();
        assert!(rotate_bus(&bus, 10, now, false, BUS_LOCK_TIMEOUT)
            .unwrap()
            .is_none());
        std::fs::write(&bus, "0123456789A").unwrap();
        let planned = rotate_bus(&bus, 10, now, true, BUS_LOCK_TIMEOUT)
            .unwrap()
            .unwrap();
        assert!(bus.exists(), "dry run changes nothing");
        let first = rotate_bus(&bus, 10, now, false, BUS_LOCK_TIMEOUT)
            .unwrap()
            .unwrap();
        assert_eq!(first.archive, planned.archive);
        assert_eq!(first.archive, archive_name(&bus, now));
        assert!(!bus.exists());
        std::fs::write(&bus, "second bus content").unwrap();
        let second = rotate_bus(&bus, 10, now, false, BUS_LOCK_TIMEOUT)
            .unwrap()
            .unwrap();
        assert_ne!(second.archive, first.archive);
        assert!(second.archive.to_string_lossy().ends_with("-1.archived"));
        assert_eq!(
            std::fs::read_to_string(&first.archive).unwrap(),
            "0123456789A"
        );
        assert_eq!(
            std::fs::read_to_string(&second.archive).unwrap(),
            "second bus content"
        );
    }

    #[test]
    fn symlinked_bus_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere.md");
        std::fs::write(&target, "x".repeat(100)).unwrap();
        let bus = dir.path().join("PROJECT-MESSAGE-BUS.md");
        std::os::unix::fs::symlink(&target, &bus).unwrap();
        assert!(rotate_bus(&bus, 10, Utc::now(), false, BUS_LOCK_TIMEOUT)
            .unwrap()
            .is_none());
        assert!(target.exists() && bus.exists());
    }
}
