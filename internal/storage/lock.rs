//! Advisory exclusive file locks (`flock`) with a bounded wait, shared by run-info updates,
//! the message bus and gc bus rotation.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs2::FileExt;

/// How often a contended lock is retried.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Failure to take a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process held the lock for the whole wait.
    #[error(
        "timed out after {waited:?} waiting for the lock on {path} (another process holds it)"
    )]
    Timeout {
        /// The locked file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// The lock call itself failed.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The locked file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Takes an exclusive `flock` on `file`, polling until `timeout` elapses.
/// The lock is released when the file handle is dropped (or on [`unlock`]).
pub fn lock_exclusive(file: &File, path: &Path, timeout: Duration) -> Result<(), LockError> {
    let start = Instant::now();
    loop {
        match file.try_lock_exclusive() {
            Ok(()) => return Ok(()),
            Err(err) if is_contended(&err) => {
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(LockError::Timeout {
                        path: path.to_path_buf(),
                        waited,
                    });
                }
                std::thread::sleep(POLL_INTERVAL.min(timeout - waited));
            }
            Err(source) => {
                return Err(LockError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Releases a lock taken with [`lock_exclusive`] before the handle is dropped.
pub fn unlock(file: &File) {
    // Dropping the fd releases the lock anyway; an unlock error changes nothing.
    let _ = FileExt::unlock(file);
}

fn is_contended(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::WouldBlock
        || err.raw_os_error() == fs2::lock_contended_error().raw_os_error()
}

/// An open lock file (`<name>.lock`) held exclusively until dropped.
/// Opens (creating, never truncating) a file used only for its `flock`.
pub fn open_lock_file(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
}

#[derive(Debug)]
pub struct LockFile {
    file: File,
}

impl LockFile {
    /// Creates (if needed) and locks `path`, waiting at most `timeout`.
    /// The lock file is never deleted: unlinking a lock file others may be waiting on would
    /// let two holders in at once (a bug of the reference).
    pub fn acquire(path: &Path, timeout: Duration) -> Result<Self, LockError> {
        let file = open_lock_file(path).map_err(|source| LockError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        lock_exclusive(&file, path, timeout)?;
        Ok(Self { file })
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_times_out_then_succeeds_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = LockFile::acquire(&path, Duration::from_secs(1)).unwrap();
        let err = LockFile::acquire(&path, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, LockError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("x.lock"));
        drop(held);
        LockFile::acquire(&path, Duration::from_millis(50)).unwrap();
    }
}
