//! Replacing the executable on disk: keep the current one as `<exe>.rollback-<ts>` (a hard
//! link, else a copy), stage the candidate as `<exe>.update-<ts>.tmp` in the same directory,
//! fsync, rename over `<exe>`, fsync the directory; restore a backup the same way; keep the
//! newest backups.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::UpdateError;
use crate::storage::atomic::sync_dir;

/// Backups kept next to the executable.
pub const KEEP_BACKUPS: usize = 3;
const BACKUP_INFIX: &str = ".rollback-";

/// A timestamp for file names that sorts by time: `20261125-191500-123`.
pub fn file_timestamp() -> String {
    chrono::Utc::now().format("%Y%m%d-%H%M%S-%3f").to_string()
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Copies `from` to the new file `to` (mode `mode`), fsyncs it, and returns the sha256 of
/// the bytes written.
fn copy_synced(from: &Path, to: &Path, mode: u32) -> Result<String, UpdateError> {
    let mut src = File::open(from).map_err(|e| UpdateError::io("cannot read", from, e))?;
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| UpdateError::io("cannot create", to, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UpdateError::io("cannot read", from, e)),
        };
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .map_err(|e| UpdateError::io("cannot write", to, e))?;
    }
    dst.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| UpdateError::io("cannot chmod", to, e))?;
    dst.sync_all()
        .map_err(|e| UpdateError::io("cannot fsync", to, e))?;
    Ok(hex::encode(hasher.finalize()))
}

fn exe_mode(exe: &Path) -> u32 {
    std::fs::metadata(exe)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o755)
        | 0o100
}

/// Links (or, where links are refused, copies) `from` to the new name `to`. A link is
/// instant and safe: the executable is only ever replaced by rename, never written in place.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), UpdateError> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::debug!("cannot hard-link {} ({e}); copying", from.display());
            copy_synced(from, to, exe_mode(from)).map(drop)
        }
    }
}

/// Keeps the current executable as `<exe>.rollback-<ts>` and returns the backup path.
pub fn backup(exe: &Path, ts: &str) -> Result<PathBuf, UpdateError> {
    let path = with_suffix(exe, &format!("{BACKUP_INFIX}{ts}"));
    link_or_copy(exe, &path)?;
    sync_dir(dir_of(exe)).map_err(|e| UpdateError::io("cannot fsync", dir_of(exe), e))?;
    Ok(path)
}

/// Stages `candidate` as `<exe>.update-<ts>.tmp` and renames it over `exe`. The staged copy
/// must hash to `sha256` (the candidate may not change after it was checked).
pub fn install(candidate: &Path, exe: &Path, ts: &str, sha256: &str) -> Result<(), UpdateError> {
    let staged = with_suffix(exe, &format!(".update-{ts}.tmp"));
    let written = match copy_synced(candidate, &staged, exe_mode(exe)) {
        Ok(sum) => sum,
        Err(err) => {
            let _ = std::fs::remove_file(&staged);
            return Err(err);
        }
    };
    if !written.eq_ignore_ascii_case(sha256) {
        let _ = std::fs::remove_file(&staged);
        return Err(UpdateError::Candidate(format!(
            "candidate {} changed since it was checked (sha256 now {written}, expected {sha256})",
            candidate.display()
        )));
    }
    replace(&staged, exe)
}

/// Puts `backup` back at `exe` (link or copy, then atomic rename); the backup stays.
pub fn restore(backup: &Path, exe: &Path) -> Result<(), UpdateError> {
    let staged = with_suffix(exe, &format!(".restore-{}.tmp", file_timestamp()));
    if let Err(err) = link_or_copy(backup, &staged) {
        let _ = std::fs::remove_file(&staged);
        return Err(err);
    }
    replace(&staged, exe)
}

fn replace(staged: &Path, exe: &Path) -> Result<(), UpdateError> {
    if let Err(e) = std::fs::rename(staged, exe) {
        let _ = std::fs::remove_file(staged);
        return Err(UpdateError::io("cannot rename over", exe, e));
    }
    sync_dir(dir_of(exe)).map_err(|e| UpdateError::io("cannot fsync", dir_of(exe), e))
}

/// Backups of `exe`, oldest first.
pub fn backups(exe: &Path) -> Vec<PathBuf> {
    let Some(name) = exe.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let prefix = format!("{name}{BACKUP_INFIX}");
    let Ok(entries) = std::fs::read_dir(dir_of(exe)) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Deletes all but the newest `keep` backups of `exe`; returns the deleted paths.
pub fn prune_backups(exe: &Path, keep: usize) -> Vec<PathBuf> {
    let all = backups(exe);
    let excess = all.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for path in all.into_iter().take(excess) {
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) => tracing::warn!(path = %path.display(), "cannot delete old backup: {e}"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_install_restore_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, b"old").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o750)).unwrap();
        let cand = dir.path().join("cand");
        std::fs::write(&cand, b"new").unwrap();
        let sum = hex::encode(Sha256::digest(b"new"));

        let bak = backup(&exe, "20260101-000000-000").unwrap();
        assert_eq!(std::fs::read(&bak).unwrap(), b"old");
        install(&cand, &exe, "20260101-000000-000", &sum).unwrap();
        assert_eq!(std::fs::read(&exe).unwrap(), b"new");
        let mode = std::fs::metadata(&exe).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o750);
        restore(&bak, &exe).unwrap();
        assert_eq!(std::fs::read(&exe).unwrap(), b"old");

        let err = install(&cand, &exe, "x", &"0".repeat(64)).unwrap_err();
        assert!(err.to_string().contains("changed since"), "{err}");
        assert_eq!(std::fs::read(&exe).unwrap(), b"old");

        for ts in ["20260102-0", "20260103-0", "20260104-0"] {
            backup(&exe, ts).unwrap();
        }
        let removed = prune_backups(&exe, KEEP_BACKUPS);
        assert_eq!(removed, vec![bak]);
        assert_eq!(backups(&exe).len(), KEEP_BACKUPS);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
